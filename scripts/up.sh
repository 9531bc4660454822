#!/usr/bin/env bash
# Starts the whole httvps stack on this machine with embedded defaults.
#
# The gateway is not in the workspace yet, so a working stack cannot be started: this script says
# so, then runs the in-memory protocol demo (a client and a server session back to back).
set -euo pipefail
cd "$(dirname "$0")/.."
cat <<'MSG'
httvps: what exists today
  - httvps-proto: the HTTVPS/1 codec and session state machine (proto-spec/)
  - httvps-control-plane (cargo run -p httvps-control-plane -- serve), httvps-sdk, httvps-client
not in the workspace yet: the gateway, so no end-to-end stack can start
Running the in-memory protocol demo instead:
MSG
exec cargo run --release --locked -q -p httvps-proto --example loopback "$@"
