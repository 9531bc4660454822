#!/usr/bin/env bash
# The Helm chart's pods, run: `helm template` output played with `podman kube play` (podman 4.3),
# once with the chart's defaults and once with ci/full-values.yaml, each on a fresh database.
# Only what an installation must give is set: externalDatabase.url, the gateway's control-plane
# token (made with the image's CLI first), and the image repositories (local images here).
# deploy/e2e/kube-for-podman.py adapts the rendering to what kube play runs (it prints what it
# drops: Services, HPA, PDBs, ServiceMonitors); Services are emulated with hostAliases to static
# pod addresses. Checks, each printed:
#   - the migration Job (as a Pod) exits 0;
#   - the control-plane and gateway pods (gateway + nginx front) start, and every probe of every
#     container (liveness, readiness) passes, run from the host as the kubelet does;
#   - every container runs as uid 10001 with a read-only root file system (the chart's
#     securityContext);
#   - the gateway registered with the control plane (its token works), and nginx's front answers
#     the site on 8443;
#   - full-values only: spans reach the OTLP endpoint (otel.endpoint) from both components (with
#     otel.samplerArg=1 on top, so that no trace is sampled away).
# Usage: deploy/e2e/helm-pods.sh   (root, podman; HTTVPS_E2E_SKIP_BUILD=1 uses the images as built)
source "$(dirname "$0")/../images/lib.sh"

net=httvps-helm
subnet=10.90.7
tools=${HTTVPS_TOOLS_DIR:-$HOME/.cache/httvps/tools}
export PATH="$tools/bin:$PATH"
chart=$root/deploy/helm/httvps
work=$(mktemp -d /var/tmp/httvps-e2e-helm.XXXXXX)

teardown_pods() {
  for f in "$work"/kube-*/*.yaml; do [ ! -f "$f" ] || podman kube down "$f" >/dev/null 2>&1 || true; done
  podman pod rm -f -t 0 $(podman pod ps --filter label=app.kubernetes.io/instance=httvps -q) >/dev/null 2>&1 || true
  podman secret rm httvps httvps-migrate httvps-gateway-tls >/dev/null 2>&1 || true
  # The volumes kube play made of the ConfigMaps.
  podman volume rm -f $(podman volume ls -q | grep -E '^httvps-(gateway-nginx|.*secret-data)$') >/dev/null 2>&1 || true
}
cleanup() {
  local status=$?
  set +e
  if [ $status -ne 0 ]; then
    for c in $(podman ps -a --format '{{.Names}}' | grep -E '^httvps-(control-plane|gateway|migrate)' || true); do
      echo "--- logs of $c (last 15 lines)" >&2
      podman logs --tail 15 "$c" >&2 2>&1 || true
    done
  fi
  teardown_pods
  podman rm -f -t 0 $net-postgresql $net-redis $net-otel >/dev/null 2>&1 || true
  podman network rm -f $net >/dev/null 2>&1 || true
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT

ensure_podman
if ! command -v helm >/dev/null; then
  get_helm=${HTTVPS_GET_HELM:-$root/../shared/tools/get-helm.sh}
  [ -f "$get_helm" ] || die "helm is missing and $get_helm does not exist (set HTTVPS_GET_HELM)"
  bash "$get_helm" "$tools/bin" >/dev/null || die "installing helm"
fi
python3 -c 'import yaml' 2>/dev/null || apt_install python3-yaml
[ "${HTTVPS_E2E_SKIP_BUILD:-}" = 1 ] || "$root/deploy/images/build.sh" --prebuilt --third-party
start_all=$SECONDS
teardown_pods
podman rm -f -t 0 $net-postgresql $net-redis $net-otel >/dev/null 2>&1 || true
podman network rm -f $net >/dev/null 2>&1 || true
podman network create --subnet $subnet.0/24 $net >/dev/null

step "outside the chart: PostgreSQL, Redis, an OTLP receiver (fixed addresses, as Services)"
pg_password=$(head -c 12 /dev/urandom | base64 | tr '+/' '-_')
podman run -d --name $net-postgresql --network $net --ip $subnet.10 -e POSTGRES_PASSWORD="$pg_password" \
  localhost/httvps-postgres:latest >/dev/null
podman run -d --name $net-redis --network $net --ip $subnet.11 localhost/httvps-redis:latest >/dev/null
podman run -d --name $net-otel --network $net --ip $subnet.12 localhost/httvps-otel-receiver:latest >/dev/null
wait_until "PostgreSQL ready" 60 podman exec $net-postgresql pg_isready -U postgres || die "PostgreSQL"
aliases="{\"postgresql\": \"$subnet.10\", \"redis-master\": \"$subnet.11\", \"otel-collector\": \"$subnet.12\", \"httvps-control-plane\": \"$subnet.20\"}"

probe() { # type ip port [path]
  if [ "$1" = http ]; then
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$2:$3$4") && [ "$code" -ge 200 ] && [ "$code" -lt 400 ]
  else
    (exec 3<>"/dev/tcp/$2/$3") 2>/dev/null
  fi
}
all_probes_pass() { # deployment ip
  python3 -c 'import json, sys; [print(p["container"], p["probe"], p["type"], p["port"], p["path"] or "") for p in json.load(open(sys.argv[1])).get(sys.argv[2], [])]' \
    "$kube/probes.json" "$1" >"$work/probes.txt"
  [ -s "$work/probes.txt" ] || return 1
  while read -r container kind type port path; do
    probe "$type" "$2" "$port" "$path" || return 1
  done <"$work/probes.txt"
}
pod_of() { podman pod ps --format '{{.Name}}' | grep "^$1" | head -n1; }

run_case() { # name [helm options...]
  local name=$1 db=httvps_$1
  shift
  step "$name: database $db, gateway token from the image's CLI"
  podman exec $net-postgresql createdb -U postgres "$db"
  local url=postgres://postgres:$pg_password@postgresql:5432/$db
  local cli=(podman run --rm --network $net --add-host postgresql:$subnet.10 -e DATABASE_URL="$url" localhost/httvps-control-plane:$TAG)
  "${cli[@]}" migrate >/dev/null || die "migrate (for the token)"
  local token
  token=$("${cli[@]}" gateway create --name "gw-$name" | sed -n 's/^.*(shown once[^)]*): *//p')
  [ -n "$token" ] || die "gateway create"
  ok "gateway gw-$name registered"

  kube=$work/kube-$name
  helm template httvps "$chart" --namespace httvps "$@" \
    --set-string externalDatabase.url="$url" --set-string gateway.controlPlaneToken="$token" \
    --set controlPlane.image.repository=localhost/httvps-control-plane --set-string controlPlane.image.tag="$TAG" \
    --set gateway.image.repository=localhost/httvps-gateway --set-string gateway.image.tag="$TAG" \
    --set gateway.front.image.repository=localhost/httvps-nginx --set-string gateway.front.image.tag=latest \
    >"$work/$name.yaml" || die "helm template ($name)"
  if grep -q 'secretName: httvps-gateway-tls' "$work/$name.yaml"; then
    # ci/full-values.yaml names a TLS Secret that cert-manager would make; make it here.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=vpn.example.com \
      -keyout "$work/tls.key" -out "$work/tls.crt" 2>/dev/null
    printf -- '---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: httvps-gateway-tls\ntype: kubernetes.io/tls\ndata:\n  tls.crt: %s\n  tls.key: %s\n' \
      "$(base64 -w0 "$work/tls.crt")" "$(base64 -w0 "$work/tls.key")" >>"$work/$name.yaml"
  fi
  python3 "$root/deploy/e2e/kube-for-podman.py" "$work/$name.yaml" "$kube" "$aliases" | sed 's/^/   /' ||
    die "kube-for-podman.py ($name)"

  step "$name: the migration Job as a Pod"
  podman kube play --network $net "$kube/job-httvps-migrate.yaml" >"$work/play.log" 2>&1 || { cat "$work/play.log" >&2; die "kube play migrate"; }
  local migrate
  migrate=$(podman ps -a --format '{{.Names}}' | grep '^httvps-migrate-migrate' | head -n1)
  [ "$(podman wait "$migrate")" = 0 ] || die "the migration pod's container exited non-zero"
  ok "migrate exited 0"
  podman kube down "$kube/job-httvps-migrate.yaml" >/dev/null 2>&1 || true

  step "$name: control plane and gateway pods"
  podman kube play --network $net --ip $subnet.20 "$kube/httvps-control-plane.yaml" >"$work/play.log" 2>&1 ||
    { cat "$work/play.log" >&2; die "kube play control plane"; }
  wait_until "control plane: every probe passes ($(python3 -c 'import json,sys; print(", ".join(p["probe"]+" "+(p["path"] or str(p["port"])) for p in json.load(open(sys.argv[1]))["httvps-control-plane"]))' "$kube/probes.json"))" \
    90 all_probes_pass httvps-control-plane $subnet.20 || die "control-plane probes"
  podman kube play --network $net --ip $subnet.30 "$kube/httvps-gateway.yaml" >"$work/play.log" 2>&1 ||
    { cat "$work/play.log" >&2; die "kube play gateway"; }
  wait_until "gateway pod: every probe passes ($(python3 -c 'import json,sys; print(", ".join(p["container"]+" "+p["probe"]+" "+(p["path"] or str(p["port"])) for p in json.load(open(sys.argv[1]))["httvps-gateway"]))' "$kube/probes.json"))" \
    90 all_probes_pass httvps-gateway $subnet.30 || die "gateway probes"

  for pod in $(pod_of httvps-control-plane) $(pod_of httvps-gateway); do
    for c in $(podman pod inspect "$pod" --format '{{range .Containers}}{{.Name}} {{end}}'); do
      case $c in *-infra) continue ;; esac
      [ "$(podman inspect --format '{{.State.Status}}' "$c")" = running ] || die "$c is not running"
      [ "$(podman exec "$c" id -u)" = 10001 ] || die "$c does not run as uid 10001"
      [ "$(podman inspect --format '{{.HostConfig.ReadonlyRootfs}}' "$c")" = true ] || die "$c has a writable root"
    done
  done
  ok "every container running as uid 10001 on a read-only root"
  curl -sk --fail --max-time 5 https://$subnet.30:8443/ >/dev/null || die "nginx front on 8443"
  ok "the gateway pod's nginx front serves the site on 8443"
  seen() { "${cli[@]}" gateway list --json 2>/dev/null | gateway_seen_in "gw-$name"; }
  wait_until "gw-$name seen by the control plane (the pod's token works)" 60 seen || die "gw-$name never seen"
  if [ "$name" = full ]; then
    spans_of_both() {
      local log
      log=$(podman logs $net-otel 2>&1)
      grep -q 'service=httvps-control-plane' <<<"$log" && grep -q 'service=httvps-gateway' <<<"$log"
    }
    wait_until "spans of both components at otel.endpoint" 60 spans_of_both || die "no spans from both components"
  fi
  teardown_pods
}

run_case defaults
# Every trace kept (ci/full-values.yaml keeps a quarter), so the span check cannot be unlucky.
run_case full -f "$chart/ci/full-values.yaml" --set-string otel.samplerArg=1
echo "deploy/e2e/helm-pods.sh: all checks passed in $((SECONDS - start_all)) s"
