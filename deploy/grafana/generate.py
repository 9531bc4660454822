#!/usr/bin/env python3
"""Writes dashboards/httvps.json, the Grafana dashboard of httvps, from the panel list below.

    python3 deploy/grafana/generate.py          # regenerate
    python3 deploy/grafana/generate.py --check  # fail if the committed JSON differs

Edit the panels here, not the JSON. The metric names are the ones the gateway
(gateway/src/metrics.rs) and the control plane (control-plane/src) export; deploy/validate.sh
checks that every httvps_* name used here exists in the source. The gateway's histograms are
Prometheus histograms (`_bucket` series); the control plane's (HTTP durations, probe latency) are
exported as summaries with `quantile` labels, because its exporter sets no buckets.
"""

import json
import pathlib
import sys

OUT = pathlib.Path(__file__).resolve().parent / "dashboards" / "httvps.json"
DS = {"type": "prometheus", "uid": "${datasource}"}
GW = 'instance=~"$gateway"'  # the gateway filter of the dashboard

panels = []
_y = 0
_x = 0
_row_height = 0
_next_id = 1


def _id():
    global _next_id
    _next_id += 1
    return _next_id - 1


def row(title):
    global _y, _x, _row_height
    if _x:
        _y += _row_height
    _x, _row_height = 0, 0
    panels.append({
        "type": "row", "id": _id(), "title": title, "collapsed": False, "panels": [],
        "gridPos": {"h": 1, "w": 24, "x": 0, "y": _y},
    })
    _y += 1


def _place(w, h):
    global _y, _x, _row_height
    if _x + w > 24:
        _y += _row_height
        _x, _row_height = 0, 0
    pos = {"h": h, "w": w, "x": _x, "y": _y}
    _x += w
    _row_height = max(_row_height, h)
    return pos


def _targets(queries):
    return [
        {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": chr(ord("A") + i)}
        for i, (expr, legend) in enumerate(queries)
    ]


def timeseries(title, queries, unit="short", description="", w=8, h=8, stack=False):
    custom = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never"}
    if stack:
        custom["stacking"] = {"mode": "normal", "group": "A"}
    panels.append({
        "type": "timeseries", "id": _id(), "title": title, "description": description,
        "datasource": DS, "gridPos": _place(w, h), "targets": _targets(queries),
        "fieldConfig": {"defaults": {"unit": unit, "custom": custom}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
    })


def stat(title, expr, unit="short", description="", w=4, h=4, thresholds=None):
    steps = thresholds or [{"color": "green", "value": None}]
    panels.append({
        "type": "stat", "id": _id(), "title": title, "description": description,
        "datasource": DS, "gridPos": _place(w, h), "targets": _targets([(expr, "")]),
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
                        "overrides": []},
        "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                    "colorMode": "value", "graphMode": "area", "textMode": "auto"},
    })


def rate(metric, by, extra="", window="$__rate_interval"):
    sel = GW if metric.startswith("httvps_gateway_") else ""
    sel = ",".join(s for s in (sel, extra) if s)
    series = f"{metric}{{{sel}}}" if sel else metric
    return f"sum by ({by}) (rate({series}[{window}]))" if by else f"sum(rate({series}[{window}]))"


def quantile(q, metric, by, extra=""):
    sel = ",".join(s for s in (GW, extra) if s)
    return f"histogram_quantile({q}, sum by ({by}le) (rate({metric}_bucket{{{sel}}}[$__rate_interval])))"


RED_AT_ZERO = [{"color": "red", "value": None}, {"color": "green", "value": 1}]

# --- overview --------------------------------------------------------------------------------
row("Overview")
stat("Gateways up", 'sum(up{job="httvps-gateway"})', thresholds=RED_AT_ZERO,
     description="Gateways answering Prometheus (scrape job httvps-gateway).")
stat("Control-plane replicas up", 'sum(up{job="httvps-control-plane"})', thresholds=RED_AT_ZERO,
     description="Control-plane replicas answering Prometheus (scrape job httvps-control-plane).")
stat("Sessions", f"sum(httvps_gateway_sessions_active{{{GW}}})",
     description="Established sessions (one per connected device connection), all selected gateways.")
stat("Streams", f"sum(httvps_gateway_streams_active{{{GW}}})", description="Live TCP and UDP streams.")
stat("Throughput", f"8 * {rate('httvps_gateway_bytes_total', '')}", unit="bps",
     description="Payload relayed both ways, bits per second.")
stat("Nodes passing probes",
     'count(sum by (node) (rate(httvps_node_probes_total{result="ok"}[5m])) > 0)',
     thresholds=RED_AT_ZERO,
     description="Pool nodes with at least one successful health probe in the last 5 minutes.")

# --- sessions --------------------------------------------------------------------------------
row("Sessions")
timeseries("Active sessions by gateway",
           [(f"sum by (instance) (httvps_gateway_sessions_active{{{GW}}})", "{{instance}}")],
           stack=True, description="httvps_gateway_sessions_active")
timeseries("HELLOs by result", [(rate("httvps_gateway_hello_duration_seconds_count", "result"), "{{result}}")],
           unit="reqps", description="accepted, or the HELLO_ERROR code sent (auth_failed, quota_exceeded, internal, ...).")
timeseries("Sessions ended by close code", [(rate("httvps_gateway_sessions_total", "close_code"), "{{close_code}}")],
           unit="ops", description="httvps_gateway_sessions_total by the WebSocket close code.")
timeseries("Sessions ended by the control plane",
           [(rate("httvps_gateway_sessions_ended_by_control_plane_total", "reason"), "{{reason}}")],
           unit="ops", description="Kills, revocations and expiries that arrived with session heartbeats.")
timeseries("Entitlement cache", [(rate("httvps_gateway_entitlement_cache_total", "result"), "{{result}}")],
           unit="ops", description="Device checks answered from the gateway's cache (hit) or asked of the control plane (miss).")
timeseries("Failed-HELLO rate limiting", [(rate("httvps_gateway_hello_rate_limited_total", "instance"), "{{instance}}")],
           unit="ops", description="HELLOs refused by the per-address and per-device failure limits.")

# --- streams ---------------------------------------------------------------------------------
row("Streams")
timeseries("Active streams by kind", [(f"sum by (kind) (httvps_gateway_streams_active{{{GW}}})", "{{kind}}")],
           stack=True, description="httvps_gateway_streams_active")
timeseries("Stream opens by result", [(rate("httvps_gateway_stream_opens_total", "kind, result"), "{{kind}} {{result}}")],
           unit="ops", description="ok, or the STREAM_RESET code (refused, unreachable, timeout, not_allowed, node_unavailable, ...).")
timeseries("UDP", [(f"sum(httvps_gateway_udp_sockets_active{{{GW}}})", "sockets toward nodes"),
                   (rate("httvps_gateway_datagrams_total", "direction"), "datagrams/s {{direction}}")],
           description="Open UDP sockets (NAT entries) and datagrams relayed per second.")

# --- throughput ------------------------------------------------------------------------------
row("Throughput")
timeseries("Throughput by direction", [(f"8 * {rate('httvps_gateway_bytes_total', 'direction')}", "{{direction}}")],
           unit="bps", description="up: client to target; down: target to client.")
timeseries("Throughput by gateway", [(f"8 * {rate('httvps_gateway_bytes_total', 'instance')}", "{{instance}}")],
           unit="bps", stack=True)
timeseries("Buffered bytes",
           [(f"sum by (instance) (httvps_gateway_buffered_bytes{{{GW}}})", "buffered {{instance}}")],
           unit="bytes",
           description="Bytes the gateway holds for its sessions (bounded by the flow-control windows).")
timeseries("Flow-control stalls", [(rate("httvps_gateway_flow_control_stalls_total", "instance"), "{{instance}}")],
           unit="ops", description="Times a stream waited for client credit, plus the protocol core's own stalls.")

# --- errors ----------------------------------------------------------------------------------
row("Errors")
timeseries("HELLO errors", [(rate("httvps_gateway_hello_duration_seconds_count", "result", 'result!="accepted"'), "{{result}}")],
           unit="reqps")
timeseries("Protocol errors", [(rate("httvps_gateway_protocol_errors_total", "code"), "{{code}}")],
           unit="ops", description="Sessions ended with an ERROR frame, by code.")
timeseries("Control-plane calls failing at gateways",
           [(rate("httvps_gateway_control_plane_errors_total", "call"), "{{call}}")],
           unit="ops", description="httvps_gateway_control_plane_errors_total by call.")
timeseries("Control-plane 5xx by route",
           [('sum by (route) (rate(httvps_cp_http_requests_total{status=~"5.."}[$__rate_interval]))', "{{route}}")],
           unit="reqps")
timeseries("Usage reports", [(rate("httvps_gateway_usage_reports_total", "result"), "gateway {{result}}"),
                             (rate("httvps_cp_usage_reports_total", "result"), "control plane {{result}}")],
           unit="ops", description="Gateway: sent, failed (retried), rejected (given up). Control plane: accepted, duplicate.")
timeseries("Usage queued and lost",
           [(f"sum by (instance) (httvps_gateway_usage_reports_queued{{{GW}}})", "queued {{instance}}"),
            (f"sum by (instance) (increase(httvps_gateway_usage_bytes_dropped_total{{{GW}}}[$__rate_interval]))",
             "bytes dropped {{instance}}")],
           description="Reports waiting for the control plane, and usage bytes given up (never billed).")
timeseries("Decoy responses", [(rate("httvps_gateway_decoy_responses_total", "status"), "{{status}}")],
           unit="reqps", description="Requests that were not a valid upgrade on the secret path (scanners, browsers).")

# --- nodes -----------------------------------------------------------------------------------
row("Node health")
timeseries("Node health (last probe result per control-plane replica)",
           [("max by (node) (httvps_node_healthy)", "{{node}}")],
           description="httvps_node_healthy: 1 healthy, 0 not. With several control-plane replicas a replica's value is that of the last probe round it ran.")
timeseries("Health probes by result", [(rate("httvps_node_probes_total", "node, result"), "{{node}} {{result}}")],
           unit="ops", description="ok, or why the probe through the node failed (timeout, connect, send, no_reply, bad_config).")
timeseries("Node failures at gateways", [(rate("httvps_gateway_node_failures_total", "node"), "{{node}}")],
           unit="ops", description="Connections through a node that failed at the gateways.")
timeseries("Health transitions and failover",
           [("sum by (node, to) (increase(httvps_node_health_transitions_total[$__rate_interval]))", "{{node}} to {{to}}"),
            ("sum by (same_group) (increase(httvps_cp_failover_moves_total[$__rate_interval]))", "sessions moved (same group: {{same_group}})")])
timeseries("Node assignments", [(rate("httvps_cp_node_assignments_total", "result"), "{{result}}")],
           unit="ops", description="assigned, or unavailable (no node fits).")
timeseries("Device validations", [(rate("httvps_cp_device_validations_total", "result, code"), "{{result}} {{code}}")],
           unit="reqps")

# --- latency ---------------------------------------------------------------------------------
row("Latency")
timeseries("HELLO latency (accepted)",
           [(quantile(q, "httvps_gateway_hello_duration_seconds", "", 'result="accepted"'), f"p{int(q * 100)}")
            for q in (0.5, 0.95, 0.99)],
           unit="s", description="From HELLO received to HELLO_ACK queued: includes the device check.")
timeseries("Node connect latency p95",
           [(quantile(0.95, "httvps_gateway_node_connect_duration_seconds", "node, "), "{{node}}")],
           unit="s", description="Connecting through a node and sending the Shadowsocks header.")
timeseries("Node probe latency (p99 per replica)",
           [('max by (node) (httvps_node_probe_latency_seconds{quantile="0.99"})', "{{node}}")],
           unit="s", description="Summary of successful health probes (control plane).")
timeseries("Control-plane request latency p99",
           [('max by (route) (httvps_cp_http_request_duration_seconds{quantile="0.99"})', "{{route}}")],
           unit="s", description="Summary quantile per route (control plane).")
timeseries("Control-plane requests by route",
           [('sum by (route) (rate(httvps_cp_http_requests_total[$__rate_interval]))', "{{route}}")],
           unit="reqps", w=16)

# --- shared state ----------------------------------------------------------------------------
row("Shared state (Redis)")
timeseries("Redis reachable from gateways",
           [(f"httvps_gateway_redis_up{{{GW}}}", "{{instance}}")],
           description="httvps_gateway_redis_up: 1 while the gateway reaches Redis.")
timeseries("Redis errors at gateways",
           [(rate("httvps_gateway_redis_errors_total", "instance"), "{{instance}}")],
           unit="ops",
           description="httvps_gateway_redis_errors_total.")

dashboard = {
    "title": "httvps",
    "uid": "httvps-overview",
    "description": "Gateways, control plane and node pool of httvps. Generated by deploy/grafana/generate.py.",
    "tags": ["httvps"],
    "timezone": "browser",
    "editable": True,
    "graphTooltip": 1,
    "refresh": "30s",
    "schemaVersion": 39,
    "version": 1,
    "time": {"from": "now-6h", "to": "now"},
    "annotations": {"list": []},
    "links": [],
    "templating": {"list": [
        {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
         "current": {}, "hide": 0, "refresh": 1, "options": []},
        {"name": "gateway", "label": "Gateway", "type": "query", "datasource": DS,
         "query": {"query": "label_values(httvps_gateway_sessions_active, instance)", "refId": "gateway"},
         "definition": "label_values(httvps_gateway_sessions_active, instance)",
         "includeAll": True, "multi": True, "allValue": ".*", "current": {}, "hide": 0,
         "refresh": 2, "sort": 1, "options": []},
    ]},
    "panels": panels,
}

text = json.dumps(dashboard, indent=2) + "\n"
if "--check" in sys.argv[1:]:
    if not OUT.exists() or OUT.read_text() != text:
        sys.exit(f"{OUT} is out of date: run python3 {pathlib.Path(__file__).name}")
    print(f"{OUT.name} is up to date ({len(panels)} panels)")
else:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(panels)} panels)")
