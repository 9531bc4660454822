//! W3C trace context on HTTP headers, between `tracing` spans: the caller writes its span's
//! context into the request (`traceparent`, `tracestate`, `baggage`), the callee makes the request's
//! span a child of it. Without trace export (no OpenTelemetry layer) every function here does
//! nothing.

use opentelemetry::propagation::TextMapCompositePropagator;
use opentelemetry::trace::{SpanContext, TraceContextExt};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::settings::Propagators;

/// Installs the process-wide propagators.
pub(crate) fn install(chosen: Propagators) {
    let mut propagators: Vec<Box<dyn opentelemetry::propagation::TextMapPropagator + Send + Sync>> =
        Vec::new();
    if chosen.trace_context {
        propagators.push(Box::new(TraceContextPropagator::new()));
    }
    if chosen.baggage {
        propagators.push(Box::new(BaggagePropagator::new()));
    }
    opentelemetry::global::set_text_map_propagator(TextMapCompositePropagator::new(propagators));
}

/// Writes `span`'s trace context into outgoing request headers.
pub fn inject(span: &tracing::Span, headers: &mut http::HeaderMap) {
    let context = span.context();
    if !context.span().span_context().is_valid() {
        return;
    }
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    });
}

/// Makes `span` (not yet entered) a child of the trace context an incoming request carries.
/// A request without one, or with a malformed one, leaves `span` a root.
pub fn continue_from(span: &tracing::Span, headers: &http::HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    if parent.span().span_context().is_valid() {
        // Fails only when the layer is absent or the span has started: nothing to carry then.
        let _ = span.set_parent(parent);
    }
}

/// A reference to one span that later, separate traces can link to (a session's HELLO, from
/// each of its stream opens).
#[derive(Clone, Debug, Default)]
pub struct TraceLink(Option<SpanContext>);

impl TraceLink {
    /// The link to `span` (empty when it is not exported).
    pub fn to(span: &tracing::Span) -> TraceLink {
        let context = span.context();
        let span_context = context.span().span_context().clone();
        TraceLink(span_context.is_valid().then_some(span_context))
    }

    /// Adds this link to `span`.
    pub fn add_to(&self, span: &tracing::Span) {
        if let Some(linked) = &self.0 {
            span.add_link(linked.clone());
        }
    }
}
