#!/usr/bin/env bash
# Makes the base images the Dockerfiles build on, from Debian's apt mirror, because no container
# registry (Docker Hub, ghcr.io, quay.io, ...) is reachable from these machines:
#   localhost/httvps-base:bookworm  debootstrap --variant=minbase bookworm, docs and apt lists
#                                   removed (the stand-in for debian:bookworm-slim)
#   localhost/httvps-rust:bookworm  (with --rust) the base plus a C toolchain, cmake and
#                                   pkg-config, and this machine's Rust toolchain (rustc --print
#                                   sysroot) under /usr/local/rust: the stand-in for rust:1-bookworm
# Each is made once and kept (--force makes them again). Usage: deploy/images/base.sh [--rust] [--force]
source "$(dirname "$0")/lib.sh"

want_rust=
force=
for arg in "$@"; do
  case $arg in
    --rust) want_rust=1 ;;
    --force) force=1 ;;
    *) die "unknown argument $arg" ;;
  esac
done
ensure_podman
mirror=${HTTVPS_DEBIAN_MIRROR:-http://deb.debian.org/debian}
work=$(mktemp -d /var/tmp/httvps-base.XXXXXX)
trap 'rm -rf "$work"' EXIT

if [ -n "$force" ] || ! image_exists "$BASE_IMAGE"; then
  step "base image $BASE_IMAGE: debootstrap bookworm from $mirror"
  start=$SECONDS
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 || {
    tail -n 20 "$work/debootstrap.log" >&2
    die "debootstrap"
  }
  chroot "$work/rootfs" apt-get clean
  rm -rf "$work"/rootfs/var/lib/apt/lists/* "$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/man/* \
    "$work"/rootfs/usr/share/info/* "$work"/rootfs/var/log/* "$work"/rootfs/var/cache/debconf/*-old
  tar -C "$work/rootfs" -c . | podman import --change 'CMD ["bash"]' - "$BASE_IMAGE" >/dev/null || die "podman import"
  rm -rf "$work/rootfs"
  ok "$BASE_IMAGE made in $((SECONDS - start)) s ($(image_size "$BASE_IMAGE"))"
else
  ok "$BASE_IMAGE exists (--force makes it again)"
fi

if [ -n "$want_rust" ] && { [ -n "$force" ] || ! image_exists "$RUST_BUILD_IMAGE"; }; then
  command -v rustc >/dev/null || die "no rustc on this machine to put into $RUST_BUILD_IMAGE"
  sysroot=$(rustc --print sysroot)
  step "Rust build image $RUST_BUILD_IMAGE: $BASE_IMAGE + $(rustc --version) from $sysroot"
  start=$SECONDS
  mkdir -p "$work/ctx"
  # Hard links where possible (same file system), a copy otherwise; the documentation stays out.
  cp -al "$sysroot" "$work/ctx/rust" 2>/dev/null || cp -a "$sysroot" "$work/ctx/rust"
  rm -rf "$work/ctx/rust/share/doc" "$work/ctx/rust/share/man"
  podman build -q -t "$RUST_BUILD_IMAGE" --build-arg BASE_IMAGE="$BASE_IMAGE" \
    -f "$root/deploy/images/rust.Dockerfile" "$work/ctx" >/dev/null || die "building $RUST_BUILD_IMAGE"
  ok "$RUST_BUILD_IMAGE made in $((SECONDS - start)) s ($(image_size "$RUST_BUILD_IMAGE"))"
elif [ -n "$want_rust" ]; then
  ok "$RUST_BUILD_IMAGE exists (--force makes it again)"
fi
