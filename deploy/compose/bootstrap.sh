#!/bin/sh
# One-shot setup of the docker-compose stack, run by its `bootstrap` service after the
# migrations. Safe to run again: it only adds what is missing.
#  - registers gateways gw-1 and gw-2 with the control plane and keeps each one's service token
#    in the shared volume (/var/lib/httvps/<name>.token, read by the gateway containers);
#  - imports the two Shadowsocks pool nodes of the stack (ss-node-1, ss-node-2) by name;
#  - generates the secret WebSocket path once (/var/lib/httvps/secret-path, 192 random bits,
#    read by nginx, the gateways and the control plane at their start);
#  - unless deploy/compose/tls/ holds a certificate, generates a self-signed one for nginx once
#    (/var/lib/httvps/tls/, subject HTTVPS_SERVER_NAME, 90 days: replace it with a real one).
#  - creates the first admin while there is none: HTTVPS_ADMIN_USERNAME with
#    HTTVPS_ADMIN_PASSWORD, or, when that is empty, a generated password printed once here
#    (`docker compose logs bootstrap`).
# It uses the operator CLI of the control-plane image, on DATABASE_URL.
set -eu

cli=httvps-control-plane
dir=/var/lib/httvps
umask 077

if [ -s "$dir/secret-path" ]; then
  echo "secret path: kept in $dir/secret-path"
else
  # 24 bytes are 32 base64url characters without padding.
  path="/$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')"
  printf '%s\n' "$path" > "$dir/secret-path.tmp"
  mv "$dir/secret-path.tmp" "$dir/secret-path"
  echo "secret path: generated into $dir/secret-path"
fi

if [ -s /etc/httvps/tls/tls.crt ]; then
  echo "nginx certificate: deploy/compose/tls/tls.crt"
elif [ -s "$dir/tls/tls.crt" ]; then
  echo "nginx certificate: self-signed, kept in $dir/tls"
else
  mkdir -p "$dir/tls"
  name=${HTTVPS_SERVER_NAME:-localhost}
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 90 \
    -subj "/CN=$name" -addext "subjectAltName=DNS:$name" \
    -keyout "$dir/tls/tls.key" -out "$dir/tls/tls.crt" 2>/dev/null
  echo "nginx certificate: self-signed for $name generated into $dir/tls (90 days)"
fi

# The JSON list (the table has a header even when empty): "[]" when there is no admin.
if [ "$($cli admin list --json | tr -d '[:space:]')" != "[]" ]; then
  echo "admin: one exists already"
else
  admin=${HTTVPS_ADMIN_USERNAME:-admin}
  generated=
  if [ -z "${HTTVPS_ADMIN_PASSWORD:-}" ]; then
    HTTVPS_ADMIN_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
    generated=1
  fi
  HTTVPS_ADMIN_PASSWORD=$HTTVPS_ADMIN_PASSWORD $cli admin create --username "$admin" --role admin
  if [ -n "$generated" ]; then
    echo "admin $admin: generated password (shown once): $HTTVPS_ADMIN_PASSWORD"
  fi
fi

for gw in gw-1 gw-2; do
  file="$dir/$gw.token"
  if [ -s "$file" ]; then
    echo "gateway $gw: token already in $file"
    continue
  fi
  if ! out=$($cli gateway create --name "$gw"); then
    # Registered before, but the token file is gone: issue a new token, revoking the old one.
    out=$($cli gateway rotate --name "$gw" --overlap-secs 0)
  fi
  token=$(printf '%s\n' "$out" | sed -n 's/^.*(shown once[^)]*): *//p')
  if [ -z "$token" ]; then
    echo "gateway $gw: no token in the CLI's output" >&2
    exit 1
  fi
  printf '%s\n' "$token" > "$file.tmp"
  mv "$file.tmp" "$file"
  echo "gateway $gw: token written to $file"
done

import_node() { # name host port password
  if $cli node show "$1" >/dev/null 2>&1; then
    echo "node $1: already in the pool"
    return
  fi
  # ss://BASE64URL(cipher:password)@host:port#name, the Outline access-key form.
  userinfo=$(printf '%s:%s' "$SS_NODE_CIPHER" "$4" | base64 -w0 | tr '+/' '-_' | tr -d '=')
  $cli node import "ss://$userinfo@$2:$3#$1" --name "$1"
}

import_node ss-node-1 ss-node-1 8388 "$SS_NODE_1_PASSWORD"
import_node ss-node-2 ss-node-2 8388 "$SS_NODE_2_PASSWORD"
