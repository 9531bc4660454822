#!/usr/bin/env bash
# Starts the whole httvps stack on this machine with embedded defaults: the control plane on an
# SQLite file (.httvps-local/), a gateway with a self-signed certificate on 127.0.0.1:8443, and an
# embedded Shadowsocks pool node, with a demo device whose connection link it prints together with
# the command that starts httvps-client. Extra flags go to httvps-local-stack (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --release --locked -q -p httvps-local-stack -- "$@"
