# Stand-in for ghcr.io/shadowsocks/ssserver-rust (README.md beside this file): Debian's
# shadowsocks-libev ss-server, started by an `ssserver` command taking shadowsocks-rust's flags.
ARG BASE_IMAGE=localhost/httvps-base:bookworm
FROM ${BASE_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends shadowsocks-libev \
 && rm -rf /var/lib/apt/lists/*
COPY --chmod=0755 ssserver.sh /usr/local/bin/ssserver
USER nobody
EXPOSE 8388
CMD ["ssserver", "-s", "0.0.0.0:8388", "-m", "chacha20-ietf-poly1305", "-k", "change-me", "-U"]
