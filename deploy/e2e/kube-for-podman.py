#!/usr/bin/env python3
"""Turns `helm template` output into files `podman kube play` (4.3) runs, one per workload.

    kube-for-podman.py RENDERED.yaml OUTDIR ALIASES

podman kube play runs Pods, Deployments (one replica), ConfigMaps and Secrets; it has no
Services, Jobs, HPAs, PDBs or ServiceMonitors. So:
  - each Deployment becomes OUTDIR/<name>.yaml with every ConfigMap and Secret of the rendering;
  - each Job becomes a Pod (restartPolicy Never) in OUTDIR/job-<name>.yaml;
  - Services are what kube-proxy and cluster DNS would make of them: ALIASES (JSON, host name ->
    IP: the Service names and the external services' names) become hostAliases of every pod;
  - env from secretKeyRef gets the Secret's value (podman 4.3 fails to read its own Secrets for
    env), and `$(VAR)` references between env entries are expanded as the kubelet does;
  - secret volumes become configMap volumes of the same items (podman 4.3 panics on secret
    volumes: nil pointer in kube.VolumeFromSecret), from ConfigMaps `<secret>-secret-data`;
  - a configMap key mounted with subPath becomes a hostPath file OUTDIR/files/<map>/<key>
    (podman 4.3 mounts the whole map's folder onto the file path and fails);
  - an emptyDir becomes a hostPath folder OUTDIR/empty/<workload>/<volume>, mode 0777 as the
    kubelet makes it (podman 4.3 makes a root-owned 0755 volume, unwritable for uid 10001);
  - containerPorts are dropped (podman 4.3 publishes each on the same host port);
  - every probe of every container is written to OUTDIR/probes.json for the script to run from
    the host against the pod's address, as the kubelet does (podman would run httpGet probes with
    curl inside the container, and the images carry no curl);
  - what is dropped is listed on standard output.
"""

import json
import pathlib
import re
import sys

import yaml


def expand_env(container):
    values = {}
    for entry in container.get("env", []):
        if "value" in entry:
            entry["value"] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                                    lambda m: values.get(m.group(1), m.group(0)), str(entry["value"]))
            values[entry["name"]] = entry["value"]


def secret_values(docs):
    import base64
    out = {}
    for d in docs:
        if d["kind"] == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in (d.get("data") or {}).items()}
            data.update(d.get("stringData") or {})
            out[d["metadata"]["name"]] = data
    return out


def main():
    rendered, outdir, aliases = sys.argv[1], pathlib.Path(sys.argv[2]), json.loads(sys.argv[3])
    outdir.mkdir(parents=True, exist_ok=True)
    docs = [d for d in yaml.safe_load_all(open(rendered)) if d]
    secrets = secret_values(docs)
    shared = [d for d in docs if d["kind"] == "ConfigMap"] + [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name + "-secret-data"}, "data": data}
        for name, data in secrets.items()]
    host_aliases = [{"ip": ip, "hostnames": [name]} for name, ip in sorted(aliases.items())]
    probes = {}
    for d in docs:
        kind, name = d["kind"], d["metadata"]["name"]
        if kind not in ("Deployment", "Job"):
            if kind not in ("ConfigMap", "Secret"):
                print(f"not run by podman kube play: {kind} {name}")
            continue
        template = d["spec"]["template"]
        spec = template["spec"]
        for volume in spec.get("volumes", []):
            if "emptyDir" in volume:
                folder = outdir / "empty" / name / volume["name"]
                folder.mkdir(parents=True, exist_ok=True)
                folder.chmod(0o777)
                volume.pop("emptyDir")
                volume["hostPath"] = {"path": str(folder), "type": "Directory"}
            source = volume.pop("secret", None)
            if source:
                volume["configMap"] = {"name": source["secretName"] + "-secret-data",
                                       **{k: v for k, v in source.items() if k != "secretName"}}
        spec["hostAliases"] = host_aliases + spec.get("hostAliases", [])
        maps = {m["metadata"]["name"]: m.get("data", {}) for m in shared}
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for c in spec.get("initContainers", []) + spec["containers"]:
            for mount in c.get("volumeMounts", []):
                source = volumes.get(mount["name"], {}).get("configMap")
                if not source or "subPath" not in mount:
                    continue
                key = mount.pop("subPath")
                path = outdir / "files" / source["name"] / key
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(maps[source["name"]][key])
                volume_name = f"{mount['name']}-{re.sub('[^a-z0-9]+', '-', key.lower())}"
                spec["volumes"].append({"name": volume_name, "hostPath": {"path": str(path), "type": "File"}})
                mount["name"] = volume_name
            # secretKeyRef entries get their values: podman 4.3 cannot read env from the Secrets
            # it makes of the YAML ("secret ... is not valid JSON"), and $(VAR) must expand.
            for entry in c.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["key"] in secrets.get(ref["name"], {}):
                    entry.pop("valueFrom")
                    entry["value"] = secrets[ref["name"]][ref["key"]]
            expand_env(c)
            ports = {p["name"]: p["containerPort"] for p in c.get("ports", []) if "name" in p}
            for kind_of_probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = c.pop(kind_of_probe, None)
                if not probe:
                    continue
                check = probe.get("httpGet") or probe.get("tcpSocket")
                port = check["port"]
                port = ports.get(port, port)
                probes.setdefault(name, []).append({
                    "container": c["name"], "probe": kind_of_probe,
                    "type": "http" if "httpGet" in probe else "tcp",
                    "port": int(port), "path": probe.get("httpGet", {}).get("path")})
            # podman 4.3 publishes every containerPort on the host (8080 twice is a clash); the
            # pods are reached at their own addresses instead.
            c.pop("ports", None)
        if kind == "Job":
            spec["restartPolicy"] = "Never"
            pod = {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "labels": template.get("metadata", {}).get("labels", {})},
                   "spec": spec}
            out = outdir / f"job-{name}.yaml"
            yaml.safe_dump_all(shared + [pod], open(out, "w"), sort_keys=False)
        else:
            d["spec"]["replicas"] = 1
            d["spec"].pop("strategy", None)
            out = outdir / f"{name}.yaml"
            yaml.safe_dump_all(shared + [d], open(out, "w"), sort_keys=False)
        print(f"wrote {out}")
    json.dump(probes, open(outdir / "probes.json", "w"), indent=1)


main()
