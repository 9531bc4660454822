#!/usr/bin/env bash
# Every benchmark of the project, one after the other (docs/benchmarks.md):
#   1. deploy-bench: the deployment as separate processes — httvps vs Shadowsocks alone vs the
#      wstunnel chain, curl downloads from nginx (deploy/bench/);
#   2. gateway/examples/bench.rs: gateway throughput and stream-open latency, in one process;
#   3. deploy-bench idle: memory per idle session of the gateway binary in its own process;
#      gateway/examples/sessions_bench.rs: the same in one process, and HELLO throughput;
#   4. control-plane/examples/validate_bench.rs: the device-validation endpoint (the server as its
#      own process);
#   5. deploy/local-stack/examples/compare.rs: direct vs Shadowsocks vs httvps, in one process;
#   6. sdk/client/examples/tun_bench.rs: httvps-client --tun against its SOCKS mode on the same
#      path, in a network namespace (needs root).
#
#   deploy/bench/run-all.sh           full: release builds, 3 runs of 256 MiB per stream; installs
#                                     the comparison tools (ssserver/sslocal, wstunnel) when
#                                     missing and fails if it cannot
#   deploy/bench/run-all.sh --quick   short (CI): small sizes, one run, dev profile (the builds
#                                     `cargo test` already made), comparison tools only if present
#
# BENCH_PROFILE=release|dev overrides the profile (quick + release gives figures worth reading).
# Arguments after --quick (or after --) go to deploy-bench, e.g. `-- --runs 5`.
set -euo pipefail
cd "$(dirname "$0")/../.."

quick=0
if [[ "${1:-}" == "--quick" ]]; then
    quick=1
    shift
fi
[[ "${1:-}" == "--" ]] && shift

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/httvps/target}"
export CARGO_TERM_COLOR=never
profile="${BENCH_PROFILE:-$([[ $quick == 1 ]] && echo dev || echo release)}"
case "$profile" in
    release) profile_flag=(--release) ;;
    dev) profile_flag=() ;;
    *) echo "BENCH_PROFILE must be release or dev, not $profile" >&2; exit 2 ;;
esac
run() { cargo run "${profile_flag[@]}" --locked -q "$@"; }

echo "== deploy-bench ($profile profile)"
cargo build "${profile_flag[@]}" --locked -q -p httvps-bench -p httvps-gateway -p httvps-client
bench_args=("$@")
[[ $quick == 1 ]] && bench_args=(--quick "${bench_args[@]}")
run -p httvps-bench --bin deploy-bench -- "${bench_args[@]}"

echo
echo "== gateway/examples/bench.rs ($profile profile)"
if [[ $quick == 1 ]]; then
    BENCH_MIB=16 OPEN_SAMPLES=200 run -p httvps-gateway --example bench
else
    run -p httvps-gateway --example bench
fi

echo
if [[ $quick == 1 ]]; then
    export SESSIONS=500 HELLOS=200 DEVICES=50
fi
sessions="${SESSIONS:-10000}"
ulimit -n $((sessions + 2000)) 2>/dev/null || echo "(could not raise the open-file limit to $((sessions + 2000)))"
echo "== deploy-bench idle ($profile profile)"
run -p httvps-bench --bin deploy-bench -- idle --sessions "$sessions"

echo
echo "== gateway/examples/sessions_bench.rs ($profile profile)"
run -p httvps-gateway --example sessions_bench

echo
echo "== control-plane/examples/validate_bench.rs ($profile profile)"
# It starts the server binary as its own process: build it beside the example.
cargo build "${profile_flag[@]}" --locked -q -p httvps-control-plane --bin httvps-control-plane
database="${DATABASE_URL_TEST:-postgres://postgres@127.0.0.1:5432/test}"
if (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    store=(--postgres "$database")
else
    echo "(PostgreSQL on 127.0.0.1:5432 does not answer: SQLite)"
    store=(--sqlite)
fi
if [[ $quick == 1 ]]; then
    run -p httvps-control-plane --example validate_bench -- "${store[@]}" --seconds 2 --devices 100 --concurrency 16
else
    run -p httvps-control-plane --example validate_bench -- "${store[@]}"
fi

echo
echo "== deploy/local-stack/examples/compare.rs ($profile profile)"
if [[ $quick == 1 ]]; then
    run -p httvps-local-stack --example compare -- 16 1
else
    run -p httvps-local-stack --example compare -- 256 3
fi

echo
echo "== sdk/client/examples/tun_bench.rs ($profile profile; VPN mode against SOCKS mode)"
cargo build "${profile_flag[@]}" --locked -q -p httvps-client --bin httvps-client --example tun_bench
tun_bench="$CARGO_TARGET_DIR/$([[ $profile == release ]] && echo release || echo debug)/examples/tun_bench"
if [[ $quick == 1 ]]; then
    "$tun_bench" --quick
else
    "$tun_bench"
fi
echo
echo "all benchmarks ran"
