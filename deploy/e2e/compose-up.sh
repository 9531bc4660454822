#!/usr/bin/env bash
# docker-compose.yml up for real, with podman-compose (PyPI) on podman, plus the override
# deploy/e2e/compose.podman.yml (local stand-ins of the third-party images, no Grafana: see
# deploy/images/third-party/README.md). Checks, each printed:
#   - migrate and bootstrap exit 0; the bootstrap created the first admin and both gateway tokens;
#   - every long-running service runs, and those with a health check are healthy;
#   - the first admin logs in to the API and sees gw-1 and gw-2 registered;
#   - nginx answers the site on HTTPS; a device made with the CLI connects with httvps-client
#     (image, host network) through nginx to a gateway, and a download through it matches SHA-256;
#   - Prometheus scrapes both gateways, the control plane and the collector (targets up);
#   - every query of the provisioned Grafana dashboard evaluates on that Prometheus (Grafana
#     itself cannot run here);
#   - the OTLP receiver got spans of the gateway and of the control plane in one trace.
# With podman 4.3 podman-compose cannot honour depends_on: it ignores `service_healthy` (podman
# below 4.6), its `service_completed_successfully` (`podman wait --condition=stopped`) never
# returns for an exited container, and without systemd no timer runs the health checks. So this
# script runs every health check each 2 s itself and starts the services stage by stage
# (`up -d --no-deps`) in depends_on's order, waiting for health and for the one-shots' exit 0.
# Host ports (127.0.0.1 only, chosen not to collide with the test suite's services): HTTPS
# 18443, control plane 18081, Prometheus 19090, PostgreSQL 15432, Redis 16379.
# CI runs it through deploy/e2e/all.sh (about a minute with the images built). Usage: deploy/e2e/compose-up.sh
source "$(dirname "$0")/../images/lib.sh"

project=httvps-e2e
work=$(mktemp -d /var/tmp/httvps-e2e-compose.XXXXXX)
tools=${HTTVPS_TOOLS_DIR:-$HOME/.cache/httvps/tools}
socks=${HTTVPS_E2E_SOCKS_PORT:-11081}
ticker=

compose() { "$tools/compose-venv/bin/podman-compose" -p $project --env-file "$work/env" \
  -f "$root/docker-compose.yml" -f "$root/deploy/e2e/compose.podman.yml" "$@"; }
cleanup() {
  local status=$?
  set +e
  [ -z "$ticker" ] || kill "$ticker" 2>/dev/null || true
  if [ $status -ne 0 ]; then
    for c in $(podman ps -a --filter label=io.podman.compose.project=$project --format '{{.Names}}'); do
      echo "--- logs of $c (last 15 lines)" >&2
      podman logs --tail 15 "$c" >&2 2>&1 || true
    done
  fi
  podman rm -f -t 0 $project-client >/dev/null 2>&1 || true
  if [ -z "${HTTVPS_E2E_KEEP:-}" ]; then
    (cd "$root" && compose down -v -t 5) >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT

ensure_podman
if [ ! -x "$tools/compose-venv/bin/podman-compose" ]; then
  step "installing podman-compose (PyPI) into $tools/compose-venv"
  python3 -m venv "$tools/compose-venv" || { apt_install python3-venv; python3 -m venv "$tools/compose-venv"; }
  "$tools/compose-venv/bin/pip" install -q podman-compose || die "pip install podman-compose"
fi
ok "$("$tools/compose-venv/bin/podman-compose" --version 2>/dev/null | head -n1)"
[ "${HTTVPS_E2E_SKIP_BUILD:-}" = 1 ] || "$root/deploy/images/build.sh" --prebuilt --third-party
start_all=$SECONDS

admin_password=$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')
mkdir -p "$work/site"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$work/site/blob"
want_sha=$(sha256sum "$work/site/blob" | cut -d ' ' -f 1)
cat >"$work/env" <<ENV
HTTVPS_IMAGE_TAG=$TAG
HTTVPS_PUBLIC_ADDRESS=127.0.0.1:18443
HTTVPS_HTTPS_PORT=18443
HTTVPS_HTTP_PORT=18080
HTTVPS_CP_PORT=18081
PROMETHEUS_PORT=19090
GRAFANA_PORT=13000
PGPORT=15432
REDIS_PORT=16379
POSTGRES_PASSWORD=$(head -c 12 /dev/urandom | base64 | tr '+/' '-_')
HTTVPS_ADMIN_PASSWORD=$admin_password
HTTVPS_GATEWAY_SHUTDOWN_GRACE=5s
HTTVPS_E2E_SITE=$work/site
ENV
cd "$root"
compose down -v -t 0 >/dev/null 2>&1 || true

# The health checks podman would run from systemd timers.
(while sleep 2; do
  for c in $(podman ps --filter label=io.podman.compose.project=$project --format '{{.Names}}'); do
    podman healthcheck run "$c" >/dev/null 2>&1 || true
  done
done) &
ticker=$!
healthy() { [ "$(podman inspect --format '{{.State.Health.Status}}' "$1" 2>/dev/null)" = healthy ]; }
c() { echo "${project}_$1_1"; }

# In the order of docker-compose.yml's depends_on, one stage at a time (see the top).
up() { # service...
  compose up -d --no-deps "$@" >>"$work/up.log" 2>&1 || { cat "$work/up.log" >&2; die "compose up $*"; }
}
exited_0() { [ "$(podman wait "$(c "$1")")" = 0 ] || die "$1 exited non-zero"; ok "$1 exited 0"; }
step "podman-compose up, in the order of depends_on"
up postgres redis
wait_until "postgres healthy" 90 healthy "$(c postgres)" || die "postgres not healthy"
wait_until "redis healthy" 60 healthy "$(c redis)" || die "redis not healthy"
up migrate
exited_0 migrate
up bootstrap
exited_0 bootstrap
boot=$(podman logs "$(c bootstrap)" 2>&1)
for line in "admin admin (admin) created" "gateway gw-1: token written" "gateway gw-2: token written" \
  "secret path: generated" "nginx certificate: self-signed"; do
  grep -q "$line" <<<"$boot" || die "bootstrap log lacks '$line'"
done
ok "bootstrap: first admin, gw-1 and gw-2 tokens, secret path, nginx certificate"
up control-plane ss-node-1 ss-node-2 otel-collector e2e-web
wait_until "control-plane healthy (the image's HEALTHCHECK)" 90 healthy "$(c control-plane)" || die "control-plane not healthy"
up gateway-1 gateway-2
for s in gateway-1 gateway-2; do
  wait_until "$s healthy (the image's HEALTHCHECK)" 90 healthy "$(c $s)" || die "$s not healthy"
done
# Grafana stays down: no image here (profile `unavailable` in the override).
up nginx prometheus

step "every service up; health checks"
for s in postgres redis control-plane gateway-1 gateway-2; do healthy "$(c $s)" || die "$s is not healthy"; done
for s in nginx ss-node-1 ss-node-2 prometheus otel-collector e2e-web; do
  [ "$(podman inspect --format '{{.State.Status}}' "$(c $s)")" = running ] || die "$s is not running"
done
ok "postgres, redis, control-plane, gateway-1, gateway-2 healthy; nginx, ss-node-1/2, prometheus, otel-collector running"

step "the first admin: login, gateways registered"
jwt=$(curl -sS --fail -H 'Content-Type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$admin_password\"}" http://127.0.0.1:18081/v1/admin/login |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])') || die "admin login"
gateways=$(curl -sS --fail -H "Authorization: Bearer $jwt" http://127.0.0.1:18081/v1/admin/gateways) ||
  die "GET /v1/admin/gateways"
grep -q '"gw-1"' <<<"$gateways" && grep -q '"gw-2"' <<<"$gateways" || die "gw-1/gw-2 not registered: $gateways"
ok "admin logged in; gw-1 and gw-2 registered"

step "a client through nginx and a gateway"
site=$(curl -sS -k --fail https://127.0.0.1:18443/) || die "nginx's site on HTTPS"
[ "$site" = "$(cat deploy/nginx/site/index.html)" ] || die "nginx answered something else than deploy/nginx/site/index.html"
ok "nginx serves the site on https://127.0.0.1:18443/"
cp_cli() { podman exec "$(c control-plane)" sh /etc/httvps/control-plane.sh "$@"; }
cp_cli plan create --name e2e --reset none >/dev/null || die "plan create"
cp_cli user create --name e2e-user --plan e2e >/dev/null || die "user create"
link=$(cp_cli device create --user e2e-user --name laptop --no-qr | sed -n 's/^connection link: //p')
[ -n "$link" ] || die "device create printed no link"
podman run -d --name $project-client --network host --read-only -e HTTVPS_LINK="$link" \
  localhost/httvps-client:$TAG --socks 127.0.0.1:$socks --http 127.0.0.1:$((socks + 1)) >/dev/null
curl_get() { curl -sS --fail --max-time 60 --socks5-hostname 127.0.0.1:$socks "$@"; }
wait_until "first request through the tunnel" 60 curl_get -o /dev/null http://e2e-web:8000/blob ||
  die "no request got through the client"
curl_get -o "$work/got" http://e2e-web:8000/blob || die "download"
[ "$(sha256sum "$work/got" | cut -d ' ' -f 1)" = "$want_sha" ] || die "SHA-256 differs"
ok "4 MiB through client -> nginx -> gateway -> ss-node: SHA-256 $want_sha matches"

step "Prometheus scrapes both services (scrape interval 15 s)"
targets_up() {
  curl -sS --fail http://127.0.0.1:19090/api/v1/targets | python3 -c '
import json, sys
up = {}
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    up.setdefault(t["labels"]["job"], []).append(t["health"] == "up")
want = {"httvps-gateway": 2, "httvps-control-plane": 1, "otel-collector": 1}
sys.exit(0 if all(up.get(j, []).count(True) == n for j, n in want.items()) else 1)'
}
wait_until "targets up: httvps-gateway x2, httvps-control-plane, otel-collector" 90 targets_up ||
  die "Prometheus targets not all up: $(curl -sS http://127.0.0.1:19090/api/v1/targets)"

step "the provisioned Grafana dashboard's queries on that Prometheus"
python3 - deploy/grafana/dashboards/httvps.json <<'PY' || die "dashboard queries"
import json, sys, urllib.parse, urllib.request
dashboard = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if "expr" in t]
with_data = 0
for expr in exprs:
    q = expr.replace("$gateway", ".*").replace("$__rate_interval", "1m").replace("$__interval", "1m").replace("$__range", "1h")
    url = "http://127.0.0.1:19090/api/v1/query?" + urllib.parse.urlencode({"query": q})
    answer = json.load(urllib.request.urlopen(url))
    if answer["status"] != "success":
        sys.exit(f"query failed: {q}: {answer}")
    with_data += bool(answer["data"]["result"])
print(f"   ok: {len(exprs)} dashboard queries evaluated; {with_data} returned series now")
PY

step "traces at the OTLP receiver (stand-in for the collector)"
spans_of_both() {
  podman logs "$(c otel-collector)" 2>&1 | python3 -c '
import re, sys
traces = {}
for m in re.finditer(r"span service=(\S+) name=.* trace=(\w+)", sys.stdin.read()):
    traces.setdefault(m.group(2), set()).add(m.group(1))
sys.exit(0 if any({"httvps-gateway", "httvps-control-plane"} <= s for s in traces.values()) else 1)'
}
wait_until "one trace with spans of httvps-gateway and httvps-control-plane" 60 spans_of_both ||
  die "no trace spans both services: $(podman logs --tail 5 "$(c otel-collector)" 2>&1)"

echo "deploy/e2e/compose-up.sh: all checks passed in $((SECONDS - start_all)) s (Grafana not run: no image here)"
