#!/usr/bin/env python3
"""Checks that the observability artefacts use the metric names the code exports.

    python3 deploy/check-metrics.py [--promql-out FILE]

- The names exported: the `pub const ...: &str = "httvps_..."` values of gateway/src/metrics.rs
  and the "httvps_cp_..." / "httvps_node_..." string literals in control-plane/src, plus PENDING below (metrics of work
  in progress that the rules and the dashboard already use).
- Every httvps_* name in deploy/prometheus/alerts.yml, the Grafana dashboards and
  docs/operations.md must be exported (a `_bucket`, `_sum` or `_count` suffix is allowed).
- Every exported name must appear in docs/operations.md (its table of metrics).
- With --promql-out, every dashboard query is written to FILE as a Prometheus recording rule
  ($__rate_interval replaced by 5m) so that `promtool check rules FILE` checks its syntax.
"""

import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Being added with the Redis shared state; remove from here once the gateway exports them.
PENDING: set[str] = set()
NAME = re.compile(r"\bhttvps_[a-z0-9_]*[a-z0-9]")
SUFFIXES = ("_bucket", "_sum", "_count")


def exported():
    names = set(re.findall(r'"(httvps_[a-z0-9_]+)"', (ROOT / "gateway/src/metrics.rs").read_text()))
    # The control plane's metrics are httvps_cp_* and httvps_node_*; its other httvps_* strings
    # (the console's cookie names) are not metrics.
    for path in (ROOT / "control-plane/src").rglob("*.rs"):
        names.update(re.findall(r'"(httvps_(?:cp|node)_[a-z0-9_]+)"', path.read_text()))
    if len(names) < 20:
        sys.exit(f"found only {len(names)} metric names in the source; has the layout changed?")
    return names


def used_names(text):
    # Crate and binary names (httvps_proto, ...) are not metrics: only names with a metric
    # prefix count.
    return {n for n in NAME.findall(text) if n.startswith(("httvps_gateway_", "httvps_cp_", "httvps_node_"))}


def base(name, known):
    if name in known:
        return name
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in known:
            return name[: -len(suffix)]
    return None


def main():
    source = exported()
    known = source | PENDING
    dashboards = sorted((ROOT / "deploy/grafana/dashboards").glob("*.json"))
    files = [ROOT / "deploy/prometheus/alerts.yml", ROOT / "docs/operations.md", *dashboards]
    errors = []
    for path in files:
        for name in sorted(used_names(path.read_text())):
            if base(name, known) is None:
                errors.append(f"{path.relative_to(ROOT)}: {name} is not a metric the code exports")
    documented = used_names((ROOT / "docs/operations.md").read_text())
    for name in sorted(known - documented):
        errors.append(f"docs/operations.md: {name} is exported but not documented")

    exprs = []
    for path in dashboards:
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                exprs.append((f"{path.name}: {panel['title']}", target["expr"]))
    if "--promql-out" in sys.argv:
        out = pathlib.Path(sys.argv[sys.argv.index("--promql-out") + 1])
        rules = [{"record": f"dashboard:query_{i}", "expr": e.replace("$__rate_interval", "5m")}
                 for i, (_, e) in enumerate(exprs)]
        # JSON is YAML: promtool reads this as a rule file.
        out.write_text(json.dumps({"groups": [{"name": "dashboard-queries", "rules": rules}]}, indent=1))

    if errors:
        print("\n".join(errors), file=sys.stderr)
        sys.exit(1)
    print(f"metric names: {len(source)} exported (+{len(PENDING)} pending), "
          f"all used names exist, all documented; {len(exprs)} dashboard queries")


main()
