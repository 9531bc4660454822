# syntax=docker/dockerfile:1
# httvps-control-plane. Build from the repository root (BuildKit, for the cache mounts):
#   docker build -f deploy/docker/control-plane.Dockerfile -t httvps-control-plane .
# The default command is `serve`; `migrate` and the operator commands (`gateway create`,
# `node import`, ...) run from the same image. Settings: DATABASE_URL and HTTVPS_CP_* (see
# .env.example). The REST API, /healthz, /readyz and /metrics are on 8080.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim
# Where the binary comes from: `builder` compiles it here (releases); `prebuilt` copies
# prebuilt/httvps-control-plane from the build context instead (deploy/images/build.sh --prebuilt, for
# tests: a context holding only that file and deploy/docker/healthcheck.sh).
ARG BINARY_FROM=builder

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY . .
# The target directory is a cache mount, so the binary is copied out in the same step.
RUN --mount=type=cache,id=httvps-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=httvps-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id=httvps-target,target=/src/target,sharing=locked \
    cargo build --release --locked -p httvps-control-plane \
 && install -D -m 0755 target/release/httvps-control-plane /out/httvps-control-plane

FROM scratch AS prebuilt
COPY prebuilt/httvps-control-plane /out/httvps-control-plane

FROM ${BINARY_FROM} AS binary

FROM ${RUNTIME_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 httvps \
 && useradd --system --uid 10001 --gid httvps --home-dir /var/lib/httvps --shell /usr/sbin/nologin httvps \
 && install -d -o httvps -g httvps -m 0750 /var/lib/httvps
COPY --from=binary /out/httvps-control-plane /usr/local/bin/httvps-control-plane
COPY --chmod=0755 deploy/docker/healthcheck.sh /usr/local/bin/httvps-healthcheck
# Inside a container the API must bind every interface (the binary's default is loopback only).
ENV HTTVPS_CP_LISTEN=0.0.0.0:8080
WORKDIR /var/lib/httvps
USER 10001:10001
EXPOSE 8080
# Liveness only (/readyz also checks the database). One-shot commands such as `migrate` exit
# before the first check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["/bin/sh", "-c", "exec httvps-healthcheck http \"$HTTVPS_CP_LISTEN\" /healthz"]
ENTRYPOINT ["httvps-control-plane"]
CMD ["serve"]
