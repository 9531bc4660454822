#!/usr/bin/env python3
"""Checks a `helm template` rendering of the httvps chart beyond what the schemas cover, and
splits it for kubernetes-validate.

    check-rendered.py RENDERED.yaml OUT.yaml

Writes every document except the ServiceMonitors (a CRD kubernetes-validate has no schema for)
to OUT.yaml and checks, failing loudly:
- each ServiceMonitor: monitoring.coreos.com/v1, its selector matches exactly one rendered
  Service, its endpoint ports are named ports of that Service, and it sets the job label;
- each Deployment's selector matches its pod template's labels;
- each Service, PodDisruptionBudget and HorizontalPodAutoscaler points at a rendered workload,
  and each Service's target ports are named container ports of the pods it selects;
- the gateway's terminationGracePeriodSeconds exceeds its preStop pause plus its drain
  (HTTVPS_GATEWAY_SHUTDOWN_GRACE) plus its usage flush (HTTVPS_GATEWAY_USAGE_FLUSH_TIMEOUT).
Needs PyYAML (installed with kubernetes-validate).
"""

import sys

import yaml

errors = []


def fail(message):
    errors.append(message)


def subset(selector, labels):
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def seconds(text):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit) and text[: -len(unit)].isdigit():
            return int(text[: -len(unit)]) * units[unit]
    return int(text)


def main(rendered, out):
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    monitors = [d for d in docs if d.get("kind") == "ServiceMonitor"]
    rest = [d for d in docs if d.get("kind") != "ServiceMonitor"]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    workloads = by_kind.get("Deployment", [])
    services = by_kind.get("Service", [])

    for dep in workloads:
        name = dep["metadata"]["name"]
        sel = dep["spec"]["selector"]["matchLabels"]
        if not subset(sel, dep["spec"]["template"]["metadata"]["labels"]):
            fail(f"Deployment {name}: selector does not match its pod labels")

    def pods_selected(selector):
        return [w for w in workloads if subset(selector, w["spec"]["template"]["metadata"]["labels"])]

    for svc in services:
        name = svc["metadata"]["name"]
        targets = pods_selected(svc["spec"].get("selector", {}))
        if len(targets) != 1:
            fail(f"Service {name}: selects {len(targets)} Deployments, expected 1")
            continue
        ports = {p["name"] for c in targets[0]["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort")
            if isinstance(target, str) and target not in ports:
                fail(f"Service {name}: targetPort {target} is not a container port of {targets[0]['metadata']['name']}")

    for pdb in by_kind.get("PodDisruptionBudget", []):
        if len(pods_selected(pdb["spec"]["selector"]["matchLabels"])) != 1:
            fail(f"PodDisruptionBudget {pdb['metadata']['name']}: does not select exactly one Deployment")

    names = {w["metadata"]["name"] for w in workloads}
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        ref = hpa["spec"]["scaleTargetRef"]
        if ref["kind"] != "Deployment" or ref["name"] not in names:
            fail(f"HorizontalPodAutoscaler {hpa['metadata']['name']}: target {ref['name']} is not rendered")
        target = next(w for w in workloads if w["metadata"]["name"] == ref["name"])
        if "replicas" in target["spec"]:
            fail(f"Deployment {ref['name']}: sets replicas although an HPA scales it")

    for dep in workloads:
        if dep["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") != "gateway":
            continue
        pod = dep["spec"]["template"]["spec"]
        container = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        grace = seconds(env["HTTVPS_GATEWAY_SHUTDOWN_GRACE"])
        flush = seconds(env["HTTVPS_GATEWAY_USAGE_FLUSH_TIMEOUT"])
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        pause = int(command[1]) if command[0] == "sleep" else 0
        # The gateway waits grace + 3 s for sessions to close, then flushes usage.
        needed = pause + grace + 3 + flush
        if pod["terminationGracePeriodSeconds"] <= needed:
            fail(f"Deployment {dep['metadata']['name']}: terminationGracePeriodSeconds "
                 f"{pod['terminationGracePeriodSeconds']} must exceed {needed}")

    for sm in monitors:
        name = sm["metadata"]["name"]
        if sm.get("apiVersion") != "monitoring.coreos.com/v1":
            fail(f"ServiceMonitor {name}: apiVersion {sm.get('apiVersion')}")
        matched = [s for s in services if subset(sm["spec"]["selector"]["matchLabels"], s["metadata"].get("labels", {}))]
        if len(matched) != 1:
            fail(f"ServiceMonitor {name}: selects {len(matched)} Services, expected 1")
            continue
        ports = {p.get("name") for p in matched[0]["spec"]["ports"]}
        for endpoint in sm["spec"]["endpoints"]:
            if endpoint.get("port") not in ports:
                fail(f"ServiceMonitor {name}: port {endpoint.get('port')} is not a port of Service {matched[0]['metadata']['name']}")
            if not any(r.get("targetLabel") == "job" for r in endpoint.get("relabelings", [])):
                fail(f"ServiceMonitor {name}: does not set the job label")

    with open(out, "w") as f:
        yaml.safe_dump_all(rest, f, sort_keys=False)
    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(1)
    kinds = ", ".join(f"{len(v)} {k}" for k, v in sorted(by_kind.items()))
    print(f"{rendered}: {kinds}: consistent ({len(monitors)} ServiceMonitor checked here, "
          f"{len(rest)} documents left for kubernetes-validate)")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
