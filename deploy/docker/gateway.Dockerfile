# syntax=docker/dockerfile:1
# httvps-gateway. Build from the repository root (BuildKit, for the cache mounts):
#   docker build -f deploy/docker/gateway.Dockerfile -t httvps-gateway .
# Settings are HTTVPS_GATEWAY_* environment variables (see .env.example). The image listens for
# clients on 8443 (TLS) and serves Prometheus metrics and /health on 9464.

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim
# Where the binary comes from: `builder` compiles it here (releases); `prebuilt` copies
# prebuilt/httvps-gateway from the build context instead (deploy/images/build.sh --prebuilt, for
# tests: a context holding only that file and deploy/docker/healthcheck.sh).
ARG BINARY_FROM=builder

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY . .
# The target directory is a cache mount, so the binary is copied out in the same step.
RUN --mount=type=cache,id=httvps-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=httvps-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id=httvps-target,target=/src/target,sharing=locked \
    cargo build --release --locked -p httvps-gateway \
 && install -D -m 0755 target/release/httvps-gateway /out/httvps-gateway

FROM scratch AS prebuilt
COPY prebuilt/httvps-gateway /out/httvps-gateway

FROM ${BINARY_FROM} AS binary

FROM ${RUNTIME_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 httvps \
 && useradd --system --uid 10001 --gid httvps --home-dir /var/lib/httvps --shell /usr/sbin/nologin httvps \
 && install -d -o httvps -g httvps -m 0750 /var/lib/httvps \
 && install -d -o httvps -g httvps -m 0750 /var/spool/httvps
COPY --from=binary /out/httvps-gateway /usr/local/bin/httvps-gateway
COPY --chmod=0755 deploy/docker/healthcheck.sh /usr/local/bin/httvps-healthcheck
# Inside a container both listeners must bind every interface (the binary's metrics default is
# loopback only). Port 8443 rather than 443: the process runs without privileges.
ENV HTTVPS_GATEWAY_LISTEN=0.0.0.0:8443 \
    HTTVPS_GATEWAY_METRICS_LISTEN=0.0.0.0:9464
WORKDIR /var/lib/httvps
USER 10001:10001
EXPOSE 8443 9464
# The metrics listener answers /health; it starts before the TLS listener.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/bin/sh", "-c", "exec httvps-healthcheck http \"$HTTVPS_GATEWAY_METRICS_LISTEN\" /health"]
# SIGTERM: GOAWAY to every session, HTTVPS_GATEWAY_SHUTDOWN_GRACE to drain, then the usage flush
# (up to HTTVPS_GATEWAY_USAGE_FLUSH_TIMEOUT): give the container at least their sum plus 5 s to stop.
STOPSIGNAL SIGTERM
ENTRYPOINT ["httvps-gateway"]
