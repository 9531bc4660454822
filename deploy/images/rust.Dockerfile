# The stand-in for rust:1-bookworm (deploy/images/base.sh): the build context holds a Rust
# toolchain's sysroot (`rustc --print sysroot`) as rust/. CARGO_HOME is where the release
# Dockerfiles mount their registry caches, as in the official image.
ARG BASE_IMAGE=localhost/httvps-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev make cmake pkg-config perl git \
 && rm -rf /var/lib/apt/lists/*
COPY rust /usr/local/rust
ENV CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:/usr/local/rust/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
RUN mkdir -p /usr/local/cargo/bin && rustc --version && cargo --version
