#!/usr/bin/env bash
# Builds the images with podman (no Docker engine here), on the local base images of
# deploy/images/base.sh (no registry is reachable here):
#
#   deploy/images/build.sh [--prebuilt]   the three httvps images (localhost/httvps-gateway,
#                                         -control-plane, -client, tag $HTTVPS_IMAGE_TAG or dev)
#                                         from release binaries already built in
#                                         $CARGO_TARGET_DIR/release (default target/release;
#                                         HTTVPS_BINARIES_DIR names another folder):
#                                         deploy/docker/*.Dockerfile with BINARY_FROM=prebuilt.
#                                         Seconds; what the end-to-end tests use.
#   deploy/images/build.sh --release      the same images from deploy/docker/*.Dockerfile as
#                                         releases build them: multi-stage, cargo inside the
#                                         build container (crates from crates.io, or with
#                                         --vendor from `cargo vendor` in the build context)
#   deploy/images/build.sh --third-party  the stand-ins of deploy/images/third-party/ (postgres,
#                                         redis, nginx, Shadowsocks node, Prometheus, OTLP receiver)
# Options combine; each image's build time and size are printed.
source "$(dirname "$0")/lib.sh"

mode=prebuilt third_party= vendor= httvps=1
for arg in "$@"; do
  case $arg in
    --prebuilt) mode=prebuilt ;;
    --release) mode=release ;;
    --vendor) vendor=1 ;;
    --third-party) third_party=1 ;;
    --third-party-only) third_party=1 httvps= ;;
    *) die "unknown argument $arg (see the comment at the top of $0)" ;;
  esac
done
ensure_podman
if [ "$mode" = release ]; then "$root/deploy/images/base.sh" --rust; else "$root/deploy/images/base.sh"; fi
work=$(mktemp -d /var/tmp/httvps-images.XXXXXX)
trap 'rm -rf "$work"' EXIT

build() { # image dockerfile context [podman build options...]
  local image=$1 dockerfile=$2 context=$3 start=$SECONDS
  shift 3
  # Docker format: OCI images cannot carry a HEALTHCHECK (podman drops it with a warning).
  podman build --format docker --layers -t "$image" -f "$dockerfile" --build-arg BASE_IMAGE="$BASE_IMAGE" \
    --build-arg RUNTIME_IMAGE="$BASE_IMAGE" --build-arg RUST_IMAGE="$RUST_BUILD_IMAGE" "$@" "$context" \
    >"$work/build.log" 2>&1 || {
    tail -n 40 "$work/build.log" >&2
    die "podman build $image ($dockerfile)"
  }
  ok "$image built in $((SECONDS - start)) s, $(image_size "$image")"
}

components=(gateway:httvps-gateway control-plane:httvps-control-plane client:httvps-client)

if [ -n "$httvps" ] && [ "$mode" = prebuilt ]; then
  bin=${HTTVPS_BINARIES_DIR:-${CARGO_TARGET_DIR:-$root/target}/release}
  step "httvps images from the release binaries in $bin (BINARY_FROM=prebuilt)"
  mkdir -p "$work/ctx/prebuilt" "$work/ctx/deploy/docker"
  cp "$root/deploy/docker/healthcheck.sh" "$work/ctx/deploy/docker/"
  for c in "${components[@]}"; do
    [ -x "$bin/${c#*:}" ] || die "$bin/${c#*:} is missing: cargo build --release -p ${c#*:} first"
    cp "$bin/${c#*:}" "$work/ctx/prebuilt/"
  done
  for c in "${components[@]}"; do
    build "localhost/${c#*:}:$TAG" "$root/deploy/docker/${c%%:*}.Dockerfile" "$work/ctx" --build-arg BINARY_FROM=prebuilt
  done
fi

if [ -n "$httvps" ] && [ "$mode" = release ]; then
  context=$root
  if [ -n "$vendor" ]; then
    # The build container then needs no registry: the crates come with the context.
    step "cargo vendor into a copy of the build context"
    context=$work/src
    mkdir -p "$context"
    git -C "$root" ls-files -z --cached --others --exclude-standard | (cd "$root" && xargs -0 cp --parents -t "$context")
    # Crates may have source folders named target (cc does), which `**/target` would drop.
    { cat "$root/.dockerignore"; echo '!vendor/**'; } >"$context/.dockerignore"
    mkdir -p "$context/.cargo"
    (cd "$context" && cargo vendor --locked --versioned-dirs vendor >"$context/.cargo/config.toml" 2>"$work/vendor.log") || {
      tail -n 20 "$work/vendor.log" >&2
      die "cargo vendor"
    }
    ok "$(ls "$context/vendor" | wc -l) crates vendored"
  fi
  step "httvps images, multi-stage (cargo build --release --locked inside $RUST_BUILD_IMAGE)"
  for c in "${components[@]}"; do
    # Given explicitly: buildah follows `FROM ${BINARY_FROM}` to a stage only for a --build-arg
    # value, not for the ARG's default (it then looks for an image named builder).
    build "localhost/${c#*:}:$TAG" "$root/deploy/docker/${c%%:*}.Dockerfile" "$context" --build-arg BINARY_FROM=builder
  done
fi

if [ -n "$third_party" ]; then
  step "stand-ins of the third-party images (deploy/images/third-party/README.md)"
  for name in postgres redis nginx ss-node prometheus otel-receiver; do
    build "localhost/httvps-$name:latest" "$root/deploy/images/third-party/$name.Dockerfile" "$root/deploy/images/third-party"
  done
fi
