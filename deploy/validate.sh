#!/usr/bin/env bash
# Validates the deployment artefacts without a Docker engine or a cluster, installing the tools
# it lacks (cached in $HTTVPS_TOOLS_DIR, default ~/.cache/httvps/tools; a tool already on PATH
# is used as is):
#   helm + kubectl   ../shared/tools/get-helm.sh (override with HTTVPS_GET_HELM)
#   promtool         from Debian's prometheus package (extracted, so no daemon is installed)
#   kubernetes-validate and PyYAML   pip, in a virtualenv under the tools folder
#   docker compose / docker-compose  the docker CLI plugin if present, else Debian's docker-compose
# Checks: the Dockerfiles (statically), docker-compose.yml (`config` with and without
# .env.example, every variable documented, mounted files present), the Prometheus config, alert
# rules and their unit tests, the Grafana dashboard (generated, metric names real, queries
# parse), the OpenTelemetry and Grafana provisioning files (YAML), the nginx template copy in the
# chart, and the Helm chart (lint,
# template with defaults and with each ci/ values file, cross-references, kubernetes-validate
# against Kubernetes 1.29 and the newest schema it has). Any failure stops the script non-zero.
# Installing with apt needs root (or sudo). Run from anywhere: deploy/validate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

tools=${HTTVPS_TOOLS_DIR:-$HOME/.cache/httvps/tools}
mkdir -p "$tools/bin"
export PATH="$tools/bin:$PATH"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The rendered chart is validated against this Kubernetes version and against the newest one
# kubernetes-validate knows (Chart.yaml: kubeVersion >= 1.25).
K8S_OLDEST=1.29.0
KUBERNETES_VALIDATE_VERSION=1.37.0

step() { echo "== validate: $*"; }
die() {
  echo "deploy/validate.sh: FAILED: $*" >&2
  exit 1
}
as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "needs root (or sudo) to run: $*"
  fi
}
apt_updated=
apt_update() {
  [ -n "$apt_updated" ] && return 0
  as_root apt-get update -qq || die "apt-get update failed"
  apt_updated=1
}

# --- tools -----------------------------------------------------------------------------------
step "tools"
if ! command -v helm >/dev/null; then
  get_helm=${HTTVPS_GET_HELM:-$root/../shared/tools/get-helm.sh}
  [ -f "$get_helm" ] || die "helm is missing and $get_helm does not exist (set HTTVPS_GET_HELM)"
  echo "installing helm with $get_helm"
  bash "$get_helm" "$tools/bin" || die "installing helm failed"
fi

if ! command -v promtool >/dev/null; then
  echo "installing promtool from Debian's prometheus package"
  command -v apt-get >/dev/null || die "promtool is missing and there is no apt-get to fetch it"
  (cd "$work" && apt-get download prometheus >/dev/null 2>&1) || {
    apt_update
    (cd "$work" && apt-get download prometheus >/dev/null) || die "apt-get download prometheus failed"
  }
  dpkg-deb -x "$work"/prometheus_*.deb "$work/prometheus" || die "unpacking the prometheus package failed"
  install -m 0755 "$work/prometheus/usr/bin/promtool" "$tools/bin/promtool"
fi

venv=$tools/venv
if ! "$venv/bin/python" -c 'import yaml, kubernetes_validate' 2>/dev/null; then
  echo "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION and PyYAML into $venv"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    rm -rf "$venv"
    apt_update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null ||
      die "installing python3-venv failed"
    python3 -m venv "$venv" || die "creating the virtualenv $venv failed"
  fi
  "$venv/bin/pip" install -q "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" pyyaml ||
    die "pip install kubernetes-validate failed"
fi
kubernetes_validate=$venv/bin/kubernetes-validate
vpython=$venv/bin/python

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
else
  if ! command -v docker-compose >/dev/null; then
    echo "installing docker-compose (Debian package)"
    apt_update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null ||
      die "installing docker-compose failed"
  fi
  compose=(docker-compose)
fi
echo "helm $(helm version --short), $(promtool --version 2>&1 | head -n1),"
echo "kubernetes-validate $("$kubernetes_validate" --version 2>&1 | tail -n1), $("${compose[@]}" version 2>&1 | head -n1)"

# --- images ----------------------------------------------------------------------------------
step "Dockerfiles"
python3 deploy/docker/check-dockerfiles.py || die "Dockerfile checks"
bash -n deploy/docker/healthcheck.sh || die "deploy/docker/healthcheck.sh does not parse"
for script in deploy/images/*.sh deploy/e2e/*.sh deploy/images/third-party/*.sh; do
  bash -n "$script" || die "$script does not parse"
done
python3 -c 'import ast, sys; [ast.parse(open(f).read(), f) for f in sys.argv[1:]]' \
  deploy/e2e/kube-for-podman.py deploy/images/third-party/otel-receiver.py ||
  die "the e2e Python helpers do not compile"

# --- docker-compose --------------------------------------------------------------------------
step "docker-compose.yml"
# With .env.example's values, then with the file's own defaults (no .env in a clean clone).
"${compose[@]}" --env-file .env.example config -q || die "docker-compose.yml with .env.example"
(cd "$work" && cp "$root/docker-compose.yml" . && ln -s "$root/deploy" deploy &&
  "${compose[@]}" --project-directory "$work" config -q) || die "docker-compose.yml with its defaults"
missing=()
for var in $(grep -o '\${[A-Za-z_][A-Za-z0-9_]*' docker-compose.yml | cut -c3- | sort -u); do
  grep -Eq "^(# ?)?$var=" .env.example || missing+=("$var")
done
[ ${#missing[@]} -eq 0 ] || die "docker-compose.yml uses variables missing from .env.example: ${missing[*]}"
for path in $(grep -Eo '\./deploy/[A-Za-z0-9_./-]+' docker-compose.yml | sort -u); do
  [ -e "$path" ] || die "docker-compose.yml mounts $path, which does not exist"
done
sh -n deploy/compose/bootstrap.sh || die "deploy/compose/bootstrap.sh does not parse"
echo "docker-compose.yml: valid; every variable in .env.example; every mounted file present"

# --- Prometheus, Grafana, OpenTelemetry ------------------------------------------------------
step "Prometheus config and alert rules"
promtool check config deploy/prometheus/prometheus.yml || die "promtool check config"
(cd deploy/prometheus && promtool test rules alerts.test.yml) || die "promtool test rules"

step "metric names, Grafana dashboard, YAML files"
python3 deploy/grafana/generate.py --check || die "the dashboard JSON is not what generate.py writes"
python3 deploy/check-metrics.py --promql-out "$work/dashboard-queries.yml" || die "metric names"
promtool check rules "$work/dashboard-queries.yml" >/dev/null || die "a dashboard query does not parse"
echo "every dashboard query parses"
"$vpython" - deploy/otel/collector.yaml deploy/grafana/provisioning/*/*.yml <<'EOF' || die "YAML files"
import sys, yaml
for path in sys.argv[1:]:
    doc = yaml.safe_load(open(path))
    assert isinstance(doc, dict), f"{path}: not a mapping"
otel = yaml.safe_load(open(sys.argv[1]))
for name, pipeline in otel["service"]["pipelines"].items():
    for kind in ("receivers", "processors", "exporters"):
        for component in pipeline.get(kind, []):
            assert component in otel.get(kind, {}), f"otel pipeline {name}: {kind[:-1]} {component} is not defined"
print(f"{len(sys.argv) - 1} YAML files parse; the collector's pipelines use defined components")
EOF

# --- Helm ------------------------------------------------------------------------------------
step "Helm chart"
chart=deploy/helm/httvps
cmp -s deploy/nginx/templates/httvps.conf.template "$chart/files/httvps.conf.template" ||
  die "$chart/files/httvps.conf.template differs from deploy/nginx/templates/httvps.conf.template (copy it)"
helm lint --strict "$chart" || die "helm lint"
for values in "$chart"/ci/*-values.yaml; do
  helm lint --strict "$chart" -f "$values" >/dev/null || die "helm lint -f $values"
done
render() { # name [helm template options...]
  local name=$1
  shift
  helm template httvps "$chart" --namespace httvps "$@" >"$work/$name.yaml" || die "helm template ($name)"
  "$vpython" deploy/helm/check-rendered.py "$work/$name.yaml" "$work/$name.k8s.yaml" || die "rendered chart ($name)"
  "$kubernetes_validate" --strict --quiet -k "$K8S_OLDEST" "$work/$name.k8s.yaml" ||
    die "kubernetes-validate $K8S_OLDEST ($name)"
  "$kubernetes_validate" --strict --quiet "$work/$name.k8s.yaml" ||
    die "kubernetes-validate, newest version ($name)"
}
render defaults
! grep -q '^kind: ServiceMonitor' "$work/defaults.yaml" || die "a ServiceMonitor is rendered with the default values"
for values in "$chart"/ci/*-values.yaml; do
  render "$(basename "$values" -values.yaml)" -f "$values"
done
grep -q '^kind: ServiceMonitor' "$work/full.yaml" || die "ci/full-values.yaml renders no ServiceMonitor"
grep -q 'name: nginx$' "$work/defaults.yaml" || die "the default values render no nginx front"
! grep -q 'name: nginx$' "$work/standalone.yaml" || die "ci/standalone-values.yaml renders an nginx front"
grep -q 'key: secret-path' "$work/defaults.yaml" || die "the gateway does not read the generated secret path"
[ "$(grep -c 'name: OTEL_TRACES_SAMPLER_ARG' "$work/full.yaml")" = 2 ] || die "ci/full-values.yaml: both components should get the OTEL_* variables"
! grep -q 'OTEL_' "$work/defaults.yaml" || die "OTEL_* variables are rendered without otel.endpoint"
# NOTES.txt is rendered only by install; --dry-run=client needs no cluster.
helm install httvps "$chart" --namespace httvps --dry-run=client >"$work/notes.txt" || die "helm install --dry-run (NOTES.txt)"
grep -q '^NOTES:' "$work/notes.txt" || die "NOTES.txt did not render"
echo "chart renders valid manifests for Kubernetes $K8S_OLDEST and the newest kubernetes-validate knows"

echo "deploy/validate.sh: all checks passed"
