//! OpenTelemetry across the services: the `httvps-gateway` binary exports its spans over OTLP to
//! a receiver in this test, and so does the control plane (in this process, with the telemetry
//! its binary installs). One HELLO must be one trace across both: the gateway's HELLO, its device
//! check and the control plane's handling of the calls it makes; each stream open is a trace of
//! its own, linked to the HELLO, holding the node assignment on both sides.

mod common;
// Not in `common`: the examples share that, and only tests know the binary's path.
#[path = "common/binary.rs"]
mod binary;

use std::time::Duration;

use binary::{base_toml, Binary};
use common::cp::TestCp;
use common::*;
use httvps_telemetry::receiver::{ReceivedSpan, Receiver};
use httvps_telemetry::{LogSettings, LogTarget, ServiceInfo};

const GATEWAY: &str = "httvps-gateway";
const CONTROL_PLANE: &str = "httvps-control-plane";

/// The one span of `service` named `name` in `trace` (any trace when `None`).
fn one<'a>(
    spans: &'a [ReceivedSpan],
    service: &str,
    name: &str,
    trace: Option<&str>,
) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans
        .iter()
        .filter(|s| s.service == service && s.name == name)
        .filter(|s| trace.is_none_or(|t| s.trace_id == t))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{service} {name:?} in trace {trace:?}: {found:#?}\nall: {spans:#?}"
    );
    found[0]
}

fn has(spans: &[ReceivedSpan], service: &str, name: &str) -> bool {
    spans.iter().any(|s| s.service == service && s.name == name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_hello_is_one_trace_across_the_gateway_and_the_control_plane() {
    let receiver = Receiver::http().await.unwrap();
    let endpoint = receiver.endpoint();
    let cp_telemetry = httvps_telemetry::init_with(
        ServiceInfo {
            name: CONTROL_PLANE,
            version: "test",
            instance_id: None,
        },
        LogSettings {
            default_filter: "warn".into(),
            json: false,
            target: LogTarget::Stderr,
        },
        |var| (var == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| endpoint.clone()),
    )
    .unwrap();
    let cp = TestCp::start().await;
    let node = start_node().await;
    let node_id = cp.add_node(&node, "node-1").await.to_string();
    let sub = cp.subscriber(None, 5).await;
    let echo = echo_server().await;

    let dir = tempfile::tempdir().unwrap();
    let config_file = dir.path().join("gateway.toml");
    std::fs::write(
        &config_file,
        format!("{}control-plane-timeout = \"5s\"\n", base_toml()),
    )
    .unwrap();
    let gw = Binary::start(
        &cp,
        &config_file,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ],
    )
    .await;
    let device = sub.device.to_string();
    let client = gw.connect(&sub).await;
    echo_once(&client, echo, b"one traced stream").await;

    cp_telemetry.flush().await;
    let spans = receiver
        .wait_until(Duration::from_secs(20), |s| {
            has(s, GATEWAY, "HELLO")
                && has(s, GATEWAY, "stream open")
                && has(s, GATEWAY, "POST /v1/gateway/nodes/assign")
                && has(s, CONTROL_PLANE, "node assignment")
        })
        .await;

    // The HELLO: a server span at the root of its trace.
    let hello = one(&spans, GATEWAY, "HELLO", None);
    let trace = Some(hello.trace_id.as_str());
    assert_eq!(hello.kind, "server");
    assert_eq!(hello.parent_span_id, "");
    assert_eq!(hello.attribute("httvps.hello.result"), Some("accepted"));
    assert_eq!(hello.attribute("httvps.device.id"), Some(device.as_str()));
    let session_id = hello.attribute("session.id").expect("session id recorded");

    // The device check on the gateway, its call, and the control plane's side of that call.
    let check = one(&spans, GATEWAY, "device check", trace);
    assert_eq!(check.parent_span_id, hello.span_id);
    assert_eq!(check.attribute("httvps.cache"), Some("miss"));
    // The check goes in a validation batch (here of this one device).
    let validate_call = one(
        &spans,
        GATEWAY,
        "POST /v1/gateway/devices/validate/batch",
        trace,
    );
    assert_eq!(validate_call.kind, "client");
    assert_eq!(validate_call.parent_span_id, check.span_id);
    assert_eq!(
        validate_call.attribute("http.response.status_code"),
        Some("200")
    );
    let validate_served = one(
        &spans,
        CONTROL_PLANE,
        "POST /v1/gateway/devices/validate/batch",
        trace,
    );
    assert_eq!(validate_served.kind, "server");
    assert_eq!(validate_served.parent_span_id, validate_call.span_id);
    assert_eq!(
        validate_served.attribute("http.route"),
        Some("/v1/gateway/devices/validate/batch")
    );
    let cp_batch = one(&spans, CONTROL_PLANE, "device check batch", trace);
    assert_eq!(cp_batch.parent_span_id, validate_served.span_id);
    let cp_check = one(&spans, CONTROL_PLANE, "device check", trace);
    assert_eq!(cp_check.parent_span_id, cp_batch.span_id);
    assert_eq!(cp_check.attribute("httvps.verdict"), Some("allow"));

    // The session's registration (a session batch, here of this one start) belongs to the same
    // trace.
    let start_call = one(&spans, GATEWAY, "POST /v1/gateway/sessions/batch", trace);
    assert_eq!(start_call.parent_span_id, hello.span_id);
    let start_served = one(
        &spans,
        CONTROL_PLANE,
        "POST /v1/gateway/sessions/batch",
        trace,
    );
    assert_eq!(start_served.parent_span_id, start_call.span_id);

    // The stream open: its own trace, linked to the HELLO, holding the node assignment.
    let open = one(&spans, GATEWAY, "stream open", None);
    let open_trace = Some(open.trace_id.as_str());
    assert_ne!(open.trace_id, hello.trace_id);
    assert_eq!(open.parent_span_id, "");
    assert_eq!(
        open.links,
        vec![(hello.trace_id.clone(), hello.span_id.clone())]
    );
    assert_eq!(open.attribute("session.id"), Some(session_id));
    assert_eq!(open.attribute("httvps.stream.kind"), Some("tcp"));
    assert_eq!(open.attribute("httvps.stream.result"), Some("connected"));
    assert_eq!(open.attribute("httvps.node.id"), Some(node_id.as_str()));
    let assignment = one(&spans, GATEWAY, "node assignment", open_trace);
    assert_eq!(assignment.parent_span_id, open.span_id);
    assert_eq!(
        assignment.attribute("httvps.node.id"),
        Some(node_id.as_str())
    );
    let assign_call = one(&spans, GATEWAY, "POST /v1/gateway/nodes/assign", open_trace);
    assert_eq!(assign_call.parent_span_id, assignment.span_id);
    let assign_served = one(
        &spans,
        CONTROL_PLANE,
        "POST /v1/gateway/nodes/assign",
        open_trace,
    );
    assert_eq!(assign_served.parent_span_id, assign_call.span_id);
    let cp_assignment = one(&spans, CONTROL_PLANE, "node assignment", open_trace);
    assert_eq!(cp_assignment.parent_span_id, assign_served.span_id);
    assert_eq!(
        cp_assignment.attribute("httvps.node.id"),
        Some(node_id.as_str())
    );

    // Neither the device's token nor where the user went is in any span.
    let target = echo.to_string();
    for span in &spans {
        for (key, value) in &span.attributes {
            assert!(
                !value.contains(&sub.token) && !value.contains(&target),
                "{} {key}={value}",
                span.name
            );
        }
    }
    cp_telemetry.shutdown().await;
}
