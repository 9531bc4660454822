# syntax=docker/dockerfile:1
# httvps-client, the local SOCKS5/HTTP proxy. Build from the repository root (BuildKit):
#   docker build -f deploy/docker/client.Dockerfile -t httvps-client .
# Run with the device's connection link, publishing the proxies on loopback only:
#   docker run --rm -e HTTVPS_LINK='httvps://...' -p 127.0.0.1:1080:1080 -p 127.0.0.1:8118:8118 httvps-client

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim
# Where the binary comes from: `builder` compiles it here (releases); `prebuilt` copies
# prebuilt/httvps-client from the build context instead (deploy/images/build.sh --prebuilt, for
# tests: a context holding only that file and deploy/docker/healthcheck.sh).
ARG BINARY_FROM=builder

FROM ${RUST_IMAGE} AS builder
WORKDIR /src
COPY . .
# The target directory is a cache mount, so the binary is copied out in the same step.
RUN --mount=type=cache,id=httvps-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=httvps-cargo-git,target=/usr/local/cargo/git \
    --mount=type=cache,id=httvps-target,target=/src/target,sharing=locked \
    cargo build --release --locked -p httvps-client \
 && install -D -m 0755 target/release/httvps-client /out/httvps-client

FROM scratch AS prebuilt
COPY prebuilt/httvps-client /out/httvps-client

FROM ${BINARY_FROM} AS binary

FROM ${RUNTIME_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 httvps \
 && useradd --system --uid 10001 --gid httvps --home-dir /var/lib/httvps --shell /usr/sbin/nologin httvps \
 && install -d -o httvps -g httvps -m 0750 /var/lib/httvps
COPY --from=binary /out/httvps-client /usr/local/bin/httvps-client
COPY --chmod=0755 deploy/docker/healthcheck.sh /usr/local/bin/httvps-healthcheck
WORKDIR /var/lib/httvps
USER 10001:10001
EXPOSE 1080 8118
# The link comes from HTTVPS_LINK (or --link / --config). The proxies bind every interface of
# the container, which is only reachable through the ports published above.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["httvps-healthcheck", "tcp", "127.0.0.1:1080"]
ENTRYPOINT ["httvps-client"]
CMD ["--socks", "0.0.0.0:1080", "--http", "0.0.0.0:8118"]
