//! The span of one stream's open: resolving and checking the target, the node assignment when
//! the session has no node yet, and the connection through the node. Each open is a trace of its
//! own (a session may open thousands of streams over hours) that links to the session's HELLO.
//! The target is not recorded: traces must not become a log of where users go.

use httvps_proto::{ResetCode, StreamId, StreamKind};
use tracing::Span;

/// A new root span for opening stream `id` of `session_id`, linked to the HELLO's span.
pub fn start(
    id: StreamId,
    kind: StreamKind,
    session_id: &str,
    hello: &httvps_telemetry::TraceLink,
) -> Span {
    let span = tracing::info_span!(
        parent: None,
        "stream open",
        httvps.stream.id = id.0,
        httvps.stream.kind = kind.name(),
        session.id = session_id,
        httvps.node.id = tracing::field::Empty,
        httvps.stream.result = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    hello.add_to(&span);
    span
}

/// Records how the open ended: the node it went through, or the reset code. Failures of ours
/// (no node, internal) mark the span as an error; the target's refusals do not.
pub fn finish(span: &Span, outcome: Result<&str, ResetCode>) {
    match outcome {
        Ok(node) => {
            span.record("httvps.node.id", node);
            span.record("httvps.stream.result", "connected");
        }
        Err(code) => {
            span.record("httvps.stream.result", code.name());
            if matches!(code, ResetCode::NodeUnavailable | ResetCode::Internal) {
                span.record("otel.status_code", "error");
            }
        }
    }
}
