#!/usr/bin/env bash
# Starts the whole httvps stack on this machine with embedded defaults.
#
# Today only the protocol core exists (crate httvps-proto). The control plane, the gateway and the
# SDK/client are separate issues and are not built yet, so this script starts no services: it says
# so, then runs the in-memory protocol demo (a client and a server session back to back).
set -euo pipefail
cd "$(dirname "$0")/.."
cat <<'MSG'
httvps: what exists today
  - httvps-proto: the HTTVPS/1 codec and session state machine (proto-spec/)
not built yet (nothing to start): control plane, gateway, httvps-client
Running the in-memory protocol demo instead:
MSG
exec cargo run --release --locked -q -p httvps-proto --example loopback "$@"
