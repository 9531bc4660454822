#!/usr/bin/env bash
# The whole test suite: every crate's unit, integration, property and doc tests, against the real
# PostgreSQL and Redis on this machine (see scripts/services.sh), then the control plane's
# OpenAPI conformance run (scripts/api-conformance.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services
export DATABASE_URL_TEST="${DATABASE_URL_TEST:-postgres://postgres@$PG_HOST:$PG_PORT/test}"
export REDIS_URL_TEST="${REDIS_URL_TEST:-redis://$REDIS_HOST:$REDIS_PORT}"
cargo test --workspace --locked "$@"
# The OpenAPI document against the running service (schemathesis; installs it when missing).
scripts/api-conformance.sh
