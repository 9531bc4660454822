#!/usr/bin/env bash
# Every deployment run end to end on podman (CI runs it after the tests, .ci/run):
#   1. deploy/images/build.sh --prebuilt --third-party: the httvps images from binaries already
#      built (--debug: $CARGO_TARGET_DIR/debug, which the test suite has just built; default:
#      .../release) and the third-party stand-ins;
#   2. deploy/e2e/images.sh, 3. deploy/e2e/compose-up.sh, 4. deploy/e2e/helm-pods.sh.
# Prints each step's time; stops at the first failure. The release images (multi-stage, cargo
# inside the build container) are `deploy/images/build.sh --release --vendor`, run before a
# release, not here (a cold release build: tens of minutes on 2 cores).
source "$(dirname "$0")/../images/lib.sh"

profile=release
for arg in "$@"; do
  case $arg in
    --debug) profile=debug ;;
    --release) profile=release ;;
    *) die "unknown argument $arg" ;;
  esac
done
target=${CARGO_TARGET_DIR:-$root/target}
export HTTVPS_BINARIES_DIR=${HTTVPS_BINARIES_DIR:-$target/$profile}
times=()
run() { # name command...
  local start=$SECONDS
  "${@:2}" || die "$1"
  times+=("$1 $((SECONDS - start)) s")
}
run build "$root/deploy/images/build.sh" --prebuilt --third-party
export HTTVPS_E2E_SKIP_BUILD=1
run images "$root/deploy/e2e/images.sh"
run compose "$root/deploy/e2e/compose-up.sh"
run helm "$root/deploy/e2e/helm-pods.sh"
echo "deploy/e2e/all.sh: all passed (binaries from $HTTVPS_BINARIES_DIR): ${times[*]}"
