//! Spans exported over OTLP/HTTP (protobuf) to a receiver in the test.

mod common;

use std::collections::HashMap;

use httvps_telemetry::receiver::Receiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_http_collector() {
    let receiver = Receiver::http().await.unwrap();
    // The general endpoint: the exporter appends /v1/traces.
    let env = HashMap::from([
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            receiver.protocol().to_owned(),
        ),
    ]);
    // No service name in the environment: the binary's own.
    common::spans_arrive_with_their_parents_and_links(receiver, env, "httvps-test").await;
}
