#!/usr/bin/env bash
# The three httvps images, run: the control plane on PostgreSQL, a gateway, a real Shadowsocks
# node (ss-server) and httvps-client, each in its own container on one podman network, and a
# file downloaded through the client's SOCKS5 proxy compared by SHA-256. Checks, each printed:
#   - every httvps container runs as uid 10001 (the image's USER) with a read-only root file system;
#   - the images' HEALTHCHECKs: healthy when serving; the check itself fails on a closed port;
#   - the control plane's CLI in the same image: migrate, admin, plan, user, device + link, node
#     import, gateway token;
#   - the download's SHA-256, and the usage the gateway reported for it;
#   - SIGTERM (podman stop): the gateway sends GOAWAY and drains (a download in flight finishes),
#     flushes usage and exits 0 within its grace; the control plane (SIGTERM) and the client
#     (SIGTERM) exit 0 at once.
# Images: deploy/images/build.sh (it runs it with --prebuilt --third-party unless
# HTTVPS_E2E_SKIP_BUILD=1). Everything it starts is removed at the end, also on failure.
# Usage: deploy/e2e/images.sh   (root, podman; about a minute with the images built)
source "$(dirname "$0")/../images/lib.sh"

p=httvps-e2e-img
net=$p-net
port=${HTTVPS_E2E_SOCKS_PORT:-11080}
grace=10
work=$(mktemp -d /var/tmp/httvps-e2e-images.XXXXXX)
cleanup() {
  local status=$?
  set +e
  if [ $status -ne 0 ]; then
    for c in $(podman ps -a --format '{{.Names}}' | grep "^$p-" || true); do
      echo "--- logs of $c (last 20 lines)" >&2
      podman logs --tail 20 "$c" >&2 2>&1 || true
    done
  fi
  podman rm -f -t 0 $(podman ps -a --format '{{.Names}}' | grep "^$p-" || true) >/dev/null 2>&1 || true
  podman volume rm -f $p-spool >/dev/null 2>&1 || true
  podman network rm -f $net >/dev/null 2>&1 || true
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT

ensure_podman
[ "${HTTVPS_E2E_SKIP_BUILD:-}" = 1 ] || "$root/deploy/images/build.sh" --prebuilt --third-party
start_all=$SECONDS
podman rm -f -t 0 $(podman ps -a --format '{{.Names}}' | grep "^$p-" || true) >/dev/null 2>&1 || true
podman network rm -f $net >/dev/null 2>&1 || true
# Fixed addresses in /etc/hosts, no DNS server: aardvark-dns (1.4 in Debian 12) reloads on every
# container start and stop and loses queries meanwhile, and the CLI containers below come and go
# (in CI the control plane then stopped reaching PostgreSQL, the node and the gateway).
subnet=${HTTVPS_E2E_SUBNET:-10.89.177}
podman network create --disable-dns --subnet $subnet.0/24 $net >/dev/null
declare -A ip=([postgres]=$subnet.201 [ss-node]=$subnet.202 [web]=$subnet.203 [cp]=$subnet.204
  [gateway]=$subnet.205 [client]=$subnet.206)
hosts=()
for name in "${!ip[@]}"; do hosts+=(--add-host "$p-$name:${ip[$name]}"); done
# on_net NAME: the network options of the long-running container $p-NAME.
on_net() { echo --network $net --ip "${ip[$1]}"; }

pg_password=$(head -c 12 /dev/urandom | base64 | tr '+/' '-_')
ss_password=$(head -c 12 /dev/urandom | base64 | tr '+/' '-_')
secret_path="/$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')"
db=postgres://postgres:$pg_password@$p-postgres:5432/httvps
cp_image=localhost/httvps-control-plane:$TAG
gw_image=localhost/httvps-gateway:$TAG
client_image=localhost/httvps-client:$TAG

step "third parties: PostgreSQL, a Shadowsocks node (ss-server), a web server with the file"
podman run -d --name $p-postgres $(on_net postgres) "${hosts[@]}" -e POSTGRES_PASSWORD="$pg_password" -e POSTGRES_DB=httvps \
  localhost/httvps-postgres:latest >/dev/null
podman run -d --name $p-ss-node $(on_net ss-node) "${hosts[@]}" localhost/httvps-ss-node:latest \
  ssserver -s 0.0.0.0:8388 -m chacha20-ietf-poly1305 -k "$ss_password" -U >/dev/null
mkdir -p "$work/site"
head -c $((8 * 1024 * 1024)) /dev/urandom >"$work/site/blob"
want_sha=$(sha256sum "$work/site/blob" | cut -d ' ' -f 1)
# Larger than every buffer on the way (flow-control windows grow to 16 MiB), so that a slow
# download of it is still streaming through the gateway when SIGTERM arrives.
head -c $((48 * 1024 * 1024)) /dev/urandom >"$work/site/big"
big_sha=$(sha256sum "$work/site/big" | cut -d ' ' -f 1)
podman run -d --name $p-web $(on_net web) "${hosts[@]}" -v "$work/site:/srv:ro" --entrypoint python3 \
  localhost/httvps-otel-receiver:latest -m http.server 8000 -d /srv >/dev/null
wait_until "PostgreSQL ready" 60 podman exec $p-postgres pg_isready -U postgres

# The gateway's certificate, pinned in the links (HTTVPS_CP_GATEWAY_CERT_SHA256).
mkdir -p "$work/tls"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=$p-gateway" \
  -addext "subjectAltName=DNS:$p-gateway" -keyout "$work/tls/tls.key" -out "$work/tls/tls.crt" 2>/dev/null
chmod 0644 "$work/tls/tls.key"
cert_sha=$(openssl x509 -in "$work/tls/tls.crt" -outform DER | sha256sum | cut -d ' ' -f 1)

cp_env=(-e DATABASE_URL="$db" -e HTTVPS_CP_PUBLIC_GATEWAY="$p-gateway:8443$secret_path"
  -e HTTVPS_CP_GATEWAY_CERT_SHA256="$cert_sha")
cli() { podman run --rm --read-only --network $net "${hosts[@]}" "${cp_env[@]}" -e HTTVPS_ADMIN_PASSWORD=e2e-admin-password "$cp_image" "$@"; }

step "control plane ($cp_image): migrate and the operator CLI"
cli migrate | grep -q 'migrations applied' || die "migrate"
ok "migrate"
cli admin create --username admin --role admin | grep -q 'admin admin (admin) created' || die "admin create"
cli plan create --name e2e --device-limit 2 --session-limit 2 --reset none >/dev/null || die "plan create"
cli user create --name alice --plan e2e >/dev/null || die "user create"
link=$(cli device create --user alice --name phone --no-qr | sed -n 's/^connection link: //p')
[ -n "$link" ] || die "device create printed no connection link"
userinfo=$(printf 'chacha20-ietf-poly1305:%s' "$ss_password" | base64 -w0 | tr '+/' '-_' | tr -d '=')
cli node import "ss://$userinfo@$p-ss-node:8388#node-1" --name node-1 >/dev/null || die "node import"
token=$(cli gateway create --name gw-1 | sed -n 's/^.*(shown once[^)]*): *//p')
[ -n "$token" ] || die "gateway create printed no token"
ok "admin, plan, user, device (link to $p-gateway:8443, certificate pinned), node, gateway token"

step "control plane serving, gateway, client"
podman run -d --name $p-cp $(on_net cp) "${hosts[@]}" --read-only "${cp_env[@]}" "$cp_image" >/dev/null
wait_until "control plane healthy (the image's HEALTHCHECK)" 60 podman healthcheck run $p-cp
podman run -d --name $p-gateway $(on_net gateway) "${hosts[@]}" --read-only --stop-timeout $((grace + 20)) \
  -v "$work/tls:/etc/httvps/tls:ro" -v $p-spool:/var/spool/httvps \
  -e HTTVPS_GATEWAY_CONTROL_PLANE_URL=http://$p-cp:8080/ -e HTTVPS_GATEWAY_CONTROL_PLANE_TOKEN="$token" \
  -e HTTVPS_GATEWAY_ID=gw-1 -e HTTVPS_GATEWAY_PATH="$secret_path" \
  -e HTTVPS_GATEWAY_TLS_CERT=/etc/httvps/tls/tls.crt -e HTTVPS_GATEWAY_TLS_KEY=/etc/httvps/tls/tls.key \
  -e HTTVPS_GATEWAY_USAGE_SPOOL=/var/spool/httvps/usage.spool -e HTTVPS_GATEWAY_SHUTDOWN_GRACE=${grace}s \
  -e HTTVPS_GATEWAY_ALLOW_PRIVATE_TARGETS=true "$gw_image" >/dev/null
wait_until "gateway healthy (the image's HEALTHCHECK: /health on 9464)" 60 podman healthcheck run $p-gateway
# The client starts once the gateway has reached the control plane (its first pool refresh), so a
# slow first answer on a loaded machine is not a refused first HELLO.
gateway_seen() { cli gateway list --json | gateway_seen_in gw-1; }
wait_until "the control plane has seen the gateway" 90 gateway_seen || die "the gateway never reached the control plane"
podman run -d --name $p-client $(on_net client) "${hosts[@]}" --read-only -p 127.0.0.1:$port:1080 -e HTTVPS_LINK="$link" \
  "$client_image" >/dev/null
wait_until "client healthy (the image's HEALTHCHECK: SOCKS5 port open)" 60 podman healthcheck run $p-client
! podman exec $p-gateway httvps-healthcheck http 127.0.0.1:1 /health 2>/dev/null ||
  die "the health check passes on a closed port"
ok "the health check fails on a closed port"

step "non-root, read-only root file system"
for c in cp gateway client; do
  user=$(podman inspect --format '{{.Config.User}}' $p-$c)
  uid=$(podman exec $p-$c sh -c 'id -u')
  [ "$user" = 10001:10001 ] && [ "$uid" = 10001 ] || die "$p-$c runs as $uid (image USER $user)"
  [ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' $p-$c)" = true ] || die "$p-$c root is writable"
  ! podman exec $p-$c sh -c 'touch /usr/local/bin/x' 2>/dev/null || die "$p-$c can write to its root"
done
ok "control plane, gateway and client run as uid 10001 on read-only roots"

step "download through the client (SOCKS5 127.0.0.1:$port -> gateway -> ss-server -> web server)"
curl_get() { curl -sS --fail --max-time 60 --socks5-hostname 127.0.0.1:$port "$@"; }
wait_until "first request through the tunnel" 60 curl_get -o /dev/null http://$p-web:8000/blob
start=$SECONDS
curl_get -o "$work/got" http://$p-web:8000/blob || die "download through the client"
got_sha=$(sha256sum "$work/got" | cut -d ' ' -f 1)
[ "$got_sha" = "$want_sha" ] || die "SHA-256 differs: got $got_sha, want $want_sha"
ok "8 MiB downloaded in $((SECONDS - start)) s, SHA-256 $got_sha matches"

step "SIGTERM: the gateway drains a download in flight, flushes usage, exits 0"
# 48 MiB at 6 MiB/s: 8 s, still streaming when SIGTERM arrives after 2 s, done within the grace.
curl_get --limit-rate 6M -o "$work/slow" http://$p-web:8000/big &
slow=$!
sleep 2
start=$SECONDS
podman stop -t $((grace + 20)) $p-gateway >/dev/null
took=$((SECONDS - start))
wait $slow || die "the download in flight failed when the gateway got SIGTERM"
[ "$(sha256sum "$work/slow" | cut -d ' ' -f 1)" = "$big_sha" ] || die "the drained download's SHA-256 differs"
[ $took -ge 3 ] || die "the gateway stopped after $took s: it did not wait for the download in flight"
ok "the 48 MiB download in flight kept streaming for $took s after SIGTERM and finished with the right SHA-256"
code=$(podman inspect --format '{{.State.ExitCode}}' $p-gateway)
[ "$code" = 0 ] || die "gateway exit code $code after SIGTERM"
logs=$(podman logs $p-gateway 2>&1)
for line in "shutting down: GOAWAY to every session" "usage flushed" "bye"; do
  grep -q "$line" <<<"$logs" || die "gateway log lacks '$line'"
done
[ $took -le $((grace + 5)) ] || die "gateway took $took s to stop (grace ${grace} s)"
ok "gateway exited 0 in $took s (grace ${grace} s), logged GOAWAY, 'usage flushed', 'bye'"
usage=$(cli usage --by device --days 1 --json | python3 -c 'import json, sys; print(sum(r["bytes_down"] for r in json.load(sys.stdin)))')
[ "$usage" -ge $(((8 + 8 + 48) * 1024 * 1024)) ] || die "usage at the control plane is $usage bytes down, want at least the three downloads"
ok "usage reported: $usage bytes down for the device (8 + 8 + 48 MiB downloaded)"

for c in client cp; do
  start=$SECONDS
  podman stop -t 20 $p-$c >/dev/null
  code=$(podman inspect --format '{{.State.ExitCode}}' $p-$c)
  [ "$code" = 0 ] && [ $((SECONDS - start)) -lt 10 ] || die "$c: exit code $code after $((SECONDS - start)) s"
  ok "$c exited 0 on podman stop (the image's STOPSIGNAL) in $((SECONDS - start)) s"
done

echo "deploy/e2e/images.sh: all checks passed in $((SECONDS - start_all)) s"
