//! Prometheus metrics: names in one place, recorded through the `metrics` facade, exported by
//! metrics-exporter-prometheus on a listener of its own (never on the public TLS port).

use std::net::SocketAddr;

use metrics_exporter_prometheus::PrometheusBuilder;

use crate::GatewayError;

/// Sessions currently established (gauge).
pub const SESSIONS_ACTIVE: &str = "httvps_gateway_sessions_active";
/// Sessions ended, by the WebSocket close code they ended with (`close_code`).
pub const SESSIONS_TOTAL: &str = "httvps_gateway_sessions_total";
/// Gauge: live sessions this gateway admits at most (`--max-sessions`; absent when uncapped).
pub const SESSIONS_MAX: &str = "httvps_gateway_sessions_max";
/// Counter: HELLOs refused because this gateway held `--max-sessions` sessions.
pub const SESSIONS_REFUSED_FULL_TOTAL: &str = "httvps_gateway_sessions_refused_full_total";
/// Streams currently live, by `kind` (tcp, udp).
pub const STREAMS_ACTIVE: &str = "httvps_gateway_streams_active";
/// STREAM_OPENs by `kind` and `result` (ok or the reset code).
pub const STREAM_OPENS_TOTAL: &str = "httvps_gateway_stream_opens_total";
/// Payload bytes relayed, by `direction` (up: client to target, down: target to client).
pub const BYTES_TOTAL: &str = "httvps_gateway_bytes_total";
/// Datagrams relayed, by `direction`.
pub const DATAGRAMS_TOTAL: &str = "httvps_gateway_datagrams_total";
/// Time from HELLO received to HELLO_ACK or HELLO_ERROR queued, by `result`.
pub const HELLO_SECONDS: &str = "httvps_gateway_hello_duration_seconds";
/// Time to connect through a node and send the Shadowsocks header, by `node`.
pub const NODE_CONNECT_SECONDS: &str = "httvps_gateway_node_connect_duration_seconds";
/// Node connection failures, by `node`.
pub const NODE_FAILURES_TOTAL: &str = "httvps_gateway_node_failures_total";
/// Times a stream could not read its upstream for lack of client credit, plus the protocol
/// crate's own stall counter.
pub const FLOW_CONTROL_STALLS_TOTAL: &str = "httvps_gateway_flow_control_stalls_total";
/// Bytes held by the gateway for all sessions: read from upstreams and not yet sent, or
/// received from clients and not yet written upstream (gauge).
pub const BUFFERED_BYTES: &str = "httvps_gateway_buffered_bytes";
/// UDP sockets toward nodes (NAT entries) currently open (gauge).
pub const UDP_SOCKETS_ACTIVE: &str = "httvps_gateway_udp_sockets_active";
/// HELLOs refused by the failed-HELLO rate limiter.
pub const HELLO_RATE_LIMITED_TOTAL: &str = "httvps_gateway_hello_rate_limited_total";
/// Session violations answered with ERROR, by `code`.
pub const PROTOCOL_ERRORS_TOTAL: &str = "httvps_gateway_protocol_errors_total";
/// HTTP requests the gateway answered itself with its built-in page (no `--fallback`), by
/// `status` (404, 400).
pub const DECOY_RESPONSES_TOTAL: &str = "httvps_gateway_decoy_responses_total";
/// Connections open on the TLS port (gauge).
pub const CONNECTIONS_ACTIVE: &str = "httvps_gateway_connections_active";
/// Connections closed at accept, by `reason` (total: `--max-connections`, per_ip:
/// `--max-connections-per-ip`).
pub const CONNECTIONS_REFUSED_TOTAL: &str = "httvps_gateway_connections_refused_total";
/// Connections being relayed to a fallback, by `fallback` (http, raw) (gauge).
pub const FALLBACK_CONNECTIONS: &str = "httvps_gateway_fallback_connections";
/// Connections that could not be relayed to a fallback and were closed, by `fallback` and
/// `reason` (busy: `--fallback-max-connections` reached, connect: refused or unreachable,
/// timeout: no connection within `--fallback-connect-timeout`).
pub const FALLBACK_ERRORS_TOTAL: &str = "httvps_gateway_fallback_errors_total";

/// Device checks answered from the entitlement cache or not, by `result` (hit, miss).
pub const ENTITLEMENT_CACHE_TOTAL: &str = "httvps_gateway_entitlement_cache_total";
/// Control-plane calls that failed, by `call` (gateway_heartbeat, session_start,
/// session_heartbeat, session_end).
pub const CONTROL_PLANE_ERRORS_TOTAL: &str = "httvps_gateway_control_plane_errors_total";
/// Session batch calls to the control plane (`POST /v1/gateway/sessions/batch`).
pub const SESSION_BATCHES_TOTAL: &str = "httvps_gateway_control_plane_session_batches_total";
/// Session starts, heartbeats and ends those batches carried, by `call` (start, heartbeat, end).
pub const SESSION_BATCH_ITEMS_TOTAL: &str =
    "httvps_gateway_control_plane_session_batch_items_total";
/// Device validation batch calls to the control plane (`POST /v1/gateway/devices/validate/batch`).
pub const VALIDATE_BATCHES_TOTAL: &str = "httvps_gateway_control_plane_validate_batches_total";
/// Device validations those batches carried.
pub const VALIDATE_BATCH_ITEMS_TOTAL: &str =
    "httvps_gateway_control_plane_validate_batch_items_total";
/// Usage reports by `result` (sent, failed: retried later, rejected: refused for good).
pub const USAGE_REPORTS_TOTAL: &str = "httvps_gateway_usage_reports_total";
/// Usage reports not yet accepted by the control plane (gauge).
pub const USAGE_REPORTS_QUEUED: &str = "httvps_gateway_usage_reports_queued";
/// Bytes of usage the gateway had to give up on (queue overflow, refused reports, shutdown
/// flush timeout).
pub const USAGE_BYTES_DROPPED_TOTAL: &str = "httvps_gateway_usage_bytes_dropped_total";
/// Failed writes of the usage spool (`--usage-spool`; the next interval writes again).
pub const USAGE_SPOOL_ERRORS_TOTAL: &str = "httvps_gateway_usage_spool_errors_total";
/// Sessions the control plane ended (kill, revocation, expiry), by `reason`.
pub const SESSIONS_ENDED_BY_CONTROL_PLANE_TOTAL: &str =
    "httvps_gateway_sessions_ended_by_control_plane_total";
/// Whether the shared-state Redis answered the last operation (gauge, 1 or 0; absent without
/// Redis).
pub const REDIS_UP: &str = "httvps_gateway_redis_up";
/// Connections the plain (fronted) listener refused before HTTP, by `reason` (untrusted_peer:
/// a PROXY header was required from a peer outside `--trusted-proxies`; malformed; timeout).
pub const FRONT_REFUSED_TOTAL: &str = "httvps_gateway_front_refused_total";
/// Shared-state operations that failed, by `op`.
pub const REDIS_ERRORS_TOTAL: &str = "httvps_gateway_redis_errors_total";
/// Sessions resumed from a resume token (no control-plane check), by `result` (resumed,
/// refused: the token was unknown, expired, revoked or for another device).
pub const SESSION_RESUMES_TOTAL: &str = "httvps_gateway_session_resumes_total";
/// Shared events received, by `type`, and how many local sessions they ended.
pub const SHARED_EVENTS_TOTAL: &str = "httvps_gateway_shared_events_total";
/// HELLOs admitted against this gateway's own counts while Redis was unreachable.
pub const LOCAL_ADMISSIONS_TOTAL: &str = "httvps_gateway_local_admissions_total";

/// Installs the global Prometheus recorder and serves `/metrics` on `addr`.
pub fn install_exporter(addr: SocketAddr) -> Result<(), GatewayError> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ])
        .map_err(|e| GatewayError::Metrics(e.to_string()))?
        .install()
        .map_err(|e| GatewayError::Metrics(e.to_string()))
}
