# Sourced by deploy/images/*.sh and deploy/e2e/*.sh: podman with the settings that work on these
# machines (runc, cgroupfs, explicit ulimits: deploy/images/containers.conf), installed from
# Debian's packages when missing, and small helpers that print what they check and fail loudly.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export CONTAINERS_CONF=$root/deploy/images/containers.conf
# Base images are made here from Debian's apt mirror (no container registry is reachable from
# these machines): see deploy/images/base.sh.
BASE_IMAGE=${HTTVPS_BASE_IMAGE:-localhost/httvps-base:bookworm}
RUST_BUILD_IMAGE=${HTTVPS_RUST_IMAGE:-localhost/httvps-rust:bookworm}
TAG=${HTTVPS_IMAGE_TAG:-dev}

step() { echo "== $(basename "$0"): $*"; }
ok() { echo "   ok: $*"; }
die() {
  echo "$(basename "$0"): FAILED: $*" >&2
  exit 1
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "needs root: $*"; fi
}

apt_install() { # package...
  command -v apt-get >/dev/null || die "missing $*, and no apt-get to install them"
  if [ -z "${HTTVPS_APT_UPDATED:-}" ]; then
    as_root apt-get update -qq || die "apt-get update"
    HTTVPS_APT_UPDATED=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
    die "apt-get install $*"
}

# podman (4.3 in Debian 12) with runc, netavark and aardvark-dns (container names resolve on a
# user-defined network), iptables (netavark's firewall driver runs it: without it every container
# with a network fails with "netavark: No such file or directory"; podman only suggests it), and
# catatonit (the init of the pause image `podman kube play` builds; podman only recommends it),
# and debootstrap for the base image.
ensure_podman() {
  local want=()
  command -v podman >/dev/null || want+=(podman)
  command -v runc >/dev/null || want+=(runc)
  [ -x /usr/lib/podman/netavark ] || want+=(netavark)
  [ -x /usr/lib/podman/aardvark-dns ] || want+=(aardvark-dns)
  command -v iptables >/dev/null || [ -x /usr/sbin/iptables ] || want+=(iptables)
  command -v catatonit >/dev/null || want+=(catatonit)
  command -v debootstrap >/dev/null || want+=(debootstrap)
  command -v curl >/dev/null || want+=(curl)
  [ ${#want[@]} -eq 0 ] || { echo "installing ${want[*]} (Debian packages)"; apt_install "${want[@]}" uidmap slirp4netns fuse-overlayfs; }
}

# Whether `gateway list --json` on stdin shows gateway NAME seen by the control plane (the CLI's
# tables are for people; scripts read its JSON).
gateway_seen_in() { # name
  python3 -c 'import json, sys
sys.exit(0 if any(g["name"] == sys.argv[1] and g["last_seen_at"] for g in json.load(sys.stdin)) else 1)' "$1"
}

image_exists() { podman image exists "$1"; }

image_size() { podman image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.1f MB", $1 / 1e6 }'; }

# wait_until DESCRIPTION SECONDS COMMAND...: polls COMMAND every second until it succeeds.
wait_until() {
  local what=$1 limit=$2 start=$SECONDS
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ $((SECONDS - start)) -lt "$limit" ] || return 1
    sleep 1
  done
  ok "$what (after $((SECONDS - start)) s)"
}
