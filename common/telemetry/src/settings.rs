//! What the standard `OTEL_*` variables ask for, read from a lookup function so it can be tested
//! without touching the process environment. Only the choices this crate makes itself are read
//! here (on or off, transport, propagators, the HTTP client's timeout); the OpenTelemetry SDK reads
//! the rest itself (endpoint paths, headers, compression, sampler, batch sizes, resource).
//!
//! An empty variable counts as unset, as the OpenTelemetry specification asks.

use std::time::Duration;

/// The transport of the OTLP exporter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP over gRPC (the collector's port 4317).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (the collector's port 4318); the specification's default.
    HttpProtobuf,
}

/// Trace export, when the environment turns it on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSettings {
    /// The transport.
    pub protocol: Protocol,
    /// Where spans go: the traces endpoint as given, or the general endpoint with `/v1/traces`
    /// appended for HTTP (`None`: the SDK's default for the protocol, on localhost).
    pub endpoint: Option<String>,
    /// How long one export may take.
    pub timeout: Duration,
}

/// The propagators of `OTEL_PROPAGATORS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Propagators {
    /// W3C `traceparent`/`tracestate`.
    pub trace_context: bool,
    /// W3C `baggage`.
    pub baggage: bool,
}

/// A setting that cannot be honoured.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// `OTEL_TRACES_EXPORTER` names an exporter this build does not have.
    #[error("{var}={value}: only `otlp` and `none` are supported")]
    UnsupportedExporter { var: &'static str, value: String },
    /// The protocol is not one this build speaks.
    #[error("{var}={value}: use `grpc` or `http/protobuf`")]
    UnsupportedProtocol { var: &'static str, value: String },
    /// The endpoint is not an http(s) URL.
    #[error("{var}={value}: {reason}")]
    BadEndpoint {
        var: &'static str,
        value: String,
        reason: String,
    },
    /// A number that does not parse.
    #[error("{var}={value}: expected a whole number of milliseconds")]
    BadNumber { var: &'static str, value: String },
    /// `OTEL_PROPAGATORS` names a propagator this build does not have.
    #[error("OTEL_PROPAGATORS: `{0}` is not supported (use tracecontext, baggage or none)")]
    UnsupportedPropagator(String),
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Whether and how to export traces. `Ok(None)`: export is off — no endpoint is set and no
/// exporter asked for, or `OTEL_SDK_DISABLED=true`, or `OTEL_TRACES_EXPORTER=none`.
pub fn export_settings(
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<ExportSettings>, SettingsError> {
    let get = |var: &str| env(var).filter(|v| !v.trim().is_empty());
    if get("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return Ok(None);
    }
    let mut asked_for_otlp = false;
    if let Some(exporters) = get("OTEL_TRACES_EXPORTER") {
        for exporter in exporters.split(',').map(str::trim) {
            match exporter.to_ascii_lowercase().as_str() {
                "otlp" => asked_for_otlp = true,
                "none" | "" => {}
                _ => {
                    return Err(SettingsError::UnsupportedExporter {
                        var: "OTEL_TRACES_EXPORTER",
                        value: exporters.clone(),
                    })
                }
            }
        }
        if !asked_for_otlp {
            return Ok(None);
        }
    }
    let endpoint = [
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ]
    .into_iter()
    .find_map(|var| get(var).map(|value| (var, value)));
    if endpoint.is_none() && !asked_for_otlp {
        return Ok(None);
    }
    if let Some((var, value)) = &endpoint {
        check_endpoint(var, value)?;
    }
    let protocol = match [
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        "OTEL_EXPORTER_OTLP_PROTOCOL",
    ]
    .into_iter()
    .find_map(|var| get(var).map(|value| (var, value)))
    {
        None => Protocol::HttpProtobuf,
        Some((var, value)) => match value.trim() {
            "grpc" => Protocol::Grpc,
            "http/protobuf" => Protocol::HttpProtobuf,
            _ => return Err(SettingsError::UnsupportedProtocol { var, value }),
        },
    };
    let timeout = match [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .into_iter()
    .find_map(|var| get(var).map(|value| (var, value)))
    {
        None => DEFAULT_TIMEOUT,
        Some((var, value)) => value
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| SettingsError::BadNumber { var, value })?,
    };
    let endpoint = endpoint.map(|(var, value)| {
        let value = value.trim();
        if var == "OTEL_EXPORTER_OTLP_ENDPOINT" && protocol == Protocol::HttpProtobuf {
            format!("{}/v1/traces", value.trim_end_matches('/'))
        } else {
            value.to_owned()
        }
    });
    Ok(Some(ExportSettings {
        protocol,
        endpoint,
        timeout,
    }))
}

fn check_endpoint(var: &'static str, value: &str) -> Result<(), SettingsError> {
    let bad = |reason: &str| SettingsError::BadEndpoint {
        var,
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let url = url::Url::parse(value.trim()).map_err(|e| bad(&format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    Ok(())
}

/// The propagators to use (`OTEL_PROPAGATORS`, default `tracecontext,baggage`).
pub fn propagators(env: impl Fn(&str) -> Option<String>) -> Result<Propagators, SettingsError> {
    let Some(list) = env("OTEL_PROPAGATORS").filter(|v| !v.trim().is_empty()) else {
        return Ok(Propagators {
            trace_context: true,
            baggage: true,
        });
    };
    let mut chosen = Propagators {
        trace_context: false,
        baggage: false,
    };
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name.to_ascii_lowercase().as_str() {
            "tracecontext" => chosen.trace_context = true,
            "baggage" => chosen.baggage = true,
            "none" => {}
            _ => return Err(SettingsError::UnsupportedPropagator(name.to_owned())),
        }
    }
    Ok(chosen)
}

/// Whether `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` already name the service (then the
/// built-in name is not applied over it).
pub fn names_service(env: impl Fn(&str) -> Option<String>) -> bool {
    let set = |var: &str| env(var).filter(|v| !v.trim().is_empty());
    set("OTEL_SERVICE_NAME").is_some()
        || set("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|attrs| {
            attrs
                .split(',')
                .any(|pair| pair.split('=').next().map(str::trim) == Some("service.name"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn off_without_an_endpoint() {
        assert_eq!(export_settings(env(&[])), Ok(None));
        assert_eq!(
            export_settings(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "  ")])),
            Ok(None)
        );
    }

    #[test]
    fn an_endpoint_turns_export_on_with_http_protobuf_by_default() {
        let s = export_settings(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")]))
            .unwrap()
            .unwrap();
        assert_eq!(s.protocol, Protocol::HttpProtobuf);
        assert_eq!(s.endpoint.as_deref(), Some("http://c:4318/v1/traces"));
        assert_eq!(s.timeout, Duration::from_secs(10));
    }

    #[test]
    fn the_traces_variables_win_over_the_general_ones() {
        let s = export_settings(env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://general:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "1000"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "250"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.protocol, Protocol::Grpc);
        assert_eq!(s.endpoint.as_deref(), Some("http://traces:4317"));
        assert_eq!(s.timeout, Duration::from_millis(250));
    }

    #[test]
    fn disabled_or_none_turns_export_off() {
        let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        assert_eq!(
            export_settings(env(&[on, ("OTEL_SDK_DISABLED", "TRUE")])),
            Ok(None)
        );
        assert_eq!(
            export_settings(env(&[on, ("OTEL_TRACES_EXPORTER", "none")])),
            Ok(None)
        );
        assert!(export_settings(env(&[on, ("OTEL_SDK_DISABLED", "false")]))
            .unwrap()
            .is_some());
    }

    #[test]
    fn otlp_asked_for_without_endpoint_uses_the_default_endpoint() {
        let s = export_settings(env(&[("OTEL_TRACES_EXPORTER", "otlp")]))
            .unwrap()
            .unwrap();
        assert_eq!(s.endpoint, None);
    }

    #[test]
    fn unsupported_choices_are_named_in_the_error() {
        let on = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318");
        let e = export_settings(env(&[on, ("OTEL_TRACES_EXPORTER", "zipkin")])).unwrap_err();
        assert!(e.to_string().contains("OTEL_TRACES_EXPORTER=zipkin"), "{e}");
        let e =
            export_settings(env(&[on, ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")])).unwrap_err();
        assert!(e.to_string().contains("http/json"), "{e}");
        let e = export_settings(env(&[on, ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")])).unwrap_err();
        assert!(
            e.to_string().contains("OTEL_EXPORTER_OTLP_TIMEOUT=10s"),
            "{e}"
        );
    }

    #[test]
    fn endpoints_must_be_http_urls() {
        for bad in ["collector:4317", "ftp://c", "http://", "not a url"] {
            let e = export_settings(env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", bad)]));
            assert!(
                matches!(e, Err(SettingsError::BadEndpoint { .. })),
                "{bad}: {e:?}"
            );
        }
    }

    #[test]
    fn propagators_default_to_tracecontext_and_baggage() {
        let both = Propagators {
            trace_context: true,
            baggage: true,
        };
        assert_eq!(propagators(env(&[])), Ok(both));
        assert_eq!(
            propagators(env(&[("OTEL_PROPAGATORS", "tracecontext")])),
            Ok(Propagators {
                trace_context: true,
                baggage: false
            })
        );
        assert_eq!(
            propagators(env(&[("OTEL_PROPAGATORS", "b3")])),
            Err(SettingsError::UnsupportedPropagator("b3".into()))
        );
    }

    #[test]
    fn the_service_name_may_come_from_either_variable() {
        assert!(!names_service(env(&[])));
        assert!(names_service(env(&[("OTEL_SERVICE_NAME", "gw-eu")])));
        assert!(names_service(env(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=prod, service.name=gw"
        )])));
        assert!(!names_service(env(&[(
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.namespace=vpn"
        )])));
    }
}
