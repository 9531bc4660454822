//! Spans exported over OTLP/gRPC to a receiver in the test, under the service name the
//! environment gives.

mod common;

use std::collections::HashMap;

use httvps_telemetry::receiver::Receiver;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_an_otlp_grpc_collector_under_the_configured_service_name() {
    let receiver = Receiver::grpc().await.unwrap();
    // The SDK reads the resource from the process environment; this process runs this test only.
    std::env::set_var("OTEL_SERVICE_NAME", "gateway-eu-1");
    let env = HashMap::from([
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.endpoint()),
        (
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            receiver.protocol().to_owned(),
        ),
        ("OTEL_SERVICE_NAME", "gateway-eu-1".to_owned()),
    ]);
    common::spans_arrive_with_their_parents_and_links(receiver, env, "gateway-eu-1").await;
}
