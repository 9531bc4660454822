#!/bin/sh
# shadowsocks-rust's `ssserver -s HOST:PORT -m CIPHER -k PASSWORD [-U] [--log-without-time]`
# as shadowsocks-libev's ss-server. In ssserver -U is TCP and UDP, ss-server's -u.
set -eu
args=""
while [ $# -gt 0 ]; do
  case $1 in
    -s) host=${2%:*}; port=${2##*:}; shift 2 ;;
    -m) cipher=$2; shift 2 ;;
    -k) password=$2; shift 2 ;;
    -U) args="$args -u"; shift ;;
    --log-without-time) shift ;;
    *) echo "ssserver (stand-in): unsupported argument $1" >&2; exit 2 ;;
  esac
done
echo "ss-server on $host:$port ($cipher)"
exec ss-server -s "$host" -p "$port" -m "$cipher" -k "$password" $args
