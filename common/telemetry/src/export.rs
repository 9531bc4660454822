//! The tracer provider: an OTLP span exporter (gRPC or HTTP/protobuf) behind the SDK's batch span
//! processor, and the resource that names this service. The SDK itself reads the endpoint's path
//! rules, `OTEL_EXPORTER_OTLP_HEADERS`, compression, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_*` and
//! `OTEL_RESOURCE_ATTRIBUTES`.

use opentelemetry::KeyValue;
use opentelemetry_otlp::tonic_types::transport::ClientTlsConfig;
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;

use crate::http_client::BlockingHttpClient;
use crate::settings::{ExportSettings, Protocol};
use crate::{ServiceInfo, TelemetryError};

/// A provider exporting to the collector `settings` name.
pub(crate) fn tracer_provider(
    settings: &ExportSettings,
    service: &ServiceInfo,
    env_names_service: bool,
) -> Result<SdkTracerProvider, TelemetryError> {
    let exporter = match settings.protocol {
        // gRPC needs a tokio runtime at build time: `init` runs inside the binaries' runtime.
        Protocol::Grpc => {
            let mut builder = SpanExporter::builder()
                .with_tonic()
                .with_timeout(settings.timeout);
            if let Some(endpoint) = &settings.endpoint {
                if endpoint.starts_with("https://") {
                    // tonic adds no trust roots by itself.
                    builder = builder.with_tls_config(ClientTlsConfig::new().with_webpki_roots());
                }
                builder = builder.with_endpoint(endpoint);
            }
            builder.build()
        }
        Protocol::HttpProtobuf => {
            let client =
                BlockingHttpClient::new(settings.timeout).map_err(TelemetryError::Exporter)?;
            let mut builder = SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(settings.timeout)
                .with_http_client(client);
            if let Some(endpoint) = &settings.endpoint {
                builder = builder.with_endpoint(endpoint);
            }
            builder.build()
        }
    }
    .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource(service, env_names_service))
        .build())
}

/// The service's resource: what the environment says, with this binary's name unless the
/// environment names the service, its version, and its instance id when it has one.
fn resource(service: &ServiceInfo, env_names_service: bool) -> Resource {
    let mut builder = Resource::builder();
    if !env_names_service {
        builder = builder.with_service_name(service.name);
    }
    builder = builder.with_attribute(KeyValue::new("service.version", service.version));
    if let Some(instance) = &service.instance_id {
        builder = builder.with_attribute(KeyValue::new("service.instance.id", instance.clone()));
    }
    builder.build()
}
