//! The scenario both export tests run, over OTLP/HTTP or OTLP/gRPC: spans made through `tracing`,
//! trace context carried over HTTP headers, and what the receiver decodes. Each test file is its
//! own process, as the subscriber is process-wide.

use std::collections::HashMap;
use std::time::Duration;

use httvps_telemetry::receiver::{ReceivedSpan, Receiver};
use httvps_telemetry::{continue_from, inject, LogSettings, LogTarget, ServiceInfo, TraceLink};

fn find<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name:?} among {spans:#?}"))
}

/// Installs telemetry with `env`, makes spans, and checks what `receiver` got, sent by the service
/// named `service`.
pub async fn spans_arrive_with_their_parents_and_links(
    receiver: Receiver,
    env: HashMap<&'static str, String>,
    service: &str,
) {
    let telemetry = httvps_telemetry::init_with(
        ServiceInfo {
            name: "httvps-test",
            version: "9.9.9",
            instance_id: Some("gw-7".into()),
        },
        LogSettings {
            default_filter: "warn".into(),
            json: false,
            target: LogTarget::Stderr,
        },
        |var| env.get(var).cloned(),
    )
    .expect("telemetry starts");
    assert!(telemetry.exporting());

    // A call from one service to another: the caller's context goes into the headers, the
    // callee's span continues it.
    let caller = tracing::info_span!(target: "httvps_test", "caller", otel.kind = "client");
    let mut headers = http::HeaderMap::new();
    inject(&caller, &mut headers);
    let traceparent = headers
        .get("traceparent")
        .expect("inject writes traceparent")
        .to_str()
        .unwrap()
        .to_owned();
    let callee = tracing::info_span!(target: "httvps_test", "callee", otel.kind = "server");
    continue_from(&callee, &headers);
    callee.in_scope(|| {
        let _child = tracing::info_span!(target: "httvps_test", "callee child").entered();
    });
    // A malformed header leaves the span a root.
    let mut garbage = http::HeaderMap::new();
    garbage.insert("traceparent", "00-not-a-trace-01".parse().unwrap());
    let orphan = tracing::info_span!(target: "httvps_test", "orphan");
    continue_from(&orphan, &garbage);
    // A separate trace that links to the caller.
    let linked = tracing::info_span!(target: "httvps_test", parent: None, "linked");
    TraceLink::to(&caller).add_to(&linked);
    // Spans of other crates and below INFO are not exported.
    let foreign = tracing::info_span!(target: "sqlx::query", "foreign");
    let verbose = tracing::debug_span!(target: "httvps_test", "verbose");
    for span in [caller, callee, orphan, linked, foreign, verbose] {
        span.in_scope(|| {});
    }
    telemetry.flush().await;

    let spans = receiver
        .wait_until(Duration::from_secs(10), |s| s.len() >= 5)
        .await;
    assert!(receiver.requests() >= 1);
    let caller = find(&spans, "caller");
    let callee = find(&spans, "callee");
    let child = find(&spans, "callee child");
    let orphan = find(&spans, "orphan");
    let linked = find(&spans, "linked");
    assert!(spans.iter().all(|s| s.service == service), "{spans:#?}");
    assert!(
        !spans
            .iter()
            .any(|s| s.name == "foreign" || s.name == "verbose"),
        "{spans:#?}"
    );
    assert_eq!(caller.kind, "client");
    assert_eq!(callee.kind, "server");
    assert_eq!(caller.parent_span_id, "");
    assert_eq!(
        traceparent,
        format!("00-{}-{}-01", caller.trace_id, caller.span_id)
    );
    assert_eq!(callee.trace_id, caller.trace_id);
    assert_eq!(callee.parent_span_id, caller.span_id);
    assert_eq!(child.trace_id, caller.trace_id);
    assert_eq!(child.parent_span_id, callee.span_id);
    assert_eq!(orphan.parent_span_id, "");
    assert_ne!(orphan.trace_id, caller.trace_id);
    assert_ne!(linked.trace_id, caller.trace_id);
    assert_eq!(
        linked.links,
        vec![(caller.trace_id.clone(), caller.span_id.clone())]
    );
    telemetry.shutdown().await;
}
