#!/bin/bash
# Container health check without curl (the runtime images carry no HTTP client):
#   httvps-healthcheck http ADDR PATH   GET http://ADDR/PATH must answer 200
#   httvps-healthcheck tcp ADDR         ADDR must accept a TCP connection
# ADDR is host:port as the service binds it; a wildcard host (0.0.0.0, [::]) is probed on
# loopback. Exits 0 when healthy.
set -euo pipefail

mode=${1:?usage: httvps-healthcheck http ADDR PATH | tcp ADDR}
addr=${2:?missing ADDR}
port=${addr##*:}
host=${addr%:*}
host=${host#[}
host=${host%]}
case $host in
  "" | 0.0.0.0) host=127.0.0.1 ;;
  ::) host=::1 ;;
esac

exec 3<>"/dev/tcp/$host/$port"
case $mode in
  tcp) exit 0 ;;
  http)
    path=${3:?missing PATH}
    printf 'GET %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n\r\n' "$path" >&3
    IFS= read -r -t 5 status <&3
    case $status in
      "HTTP/1."?" 200"*) exit 0 ;;
      *) echo "unhealthy: ${status:-no answer}" >&2; exit 1 ;;
    esac
    ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
