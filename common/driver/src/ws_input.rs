//! What each WebSocket message or error means for the session: the one mapping of WebSocket
//! errors to protocol error codes, for every role.

use httvps_proto::ErrorCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::app::App;
use crate::core::Core;
use crate::run::Ended;

/// Type byte of STREAM_DATA: data is bounded by flow-control credit, other frames are not.
pub(crate) const STREAM_DATA: u8 = 0x06;

/// Whether the message is stream data (bounded by credit, so it may be read while our own
/// output is blocked).
pub(crate) fn is_stream_data(msg: &Option<Result<Message, WsError>>) -> bool {
    matches!(msg, Some(Ok(Message::Binary(b))) if b.first() == Some(&STREAM_DATA))
}

/// Acts on one read from the WebSocket; returns how the session ended if it did.
///
/// - binary: a frame for the connection (a violation ends the session with its code);
/// - text: ERROR `protocol_error` (SPEC §2.3);
/// - a message over the size limit: ERROR `frame_size`;
/// - a WebSocket protocol error: ERROR `protocol_error`;
/// - Ping, Pong: nothing (tungstenite answers Pings; the next flush sends the Pong);
/// - Close: the peer ended the session; the end of the stream or an I/O error: it is lost.
pub(crate) fn on_message<A: App>(
    core: &mut Core,
    app: &mut A,
    msg: Option<Result<Message, WsError>>,
) -> Option<Ended> {
    match msg {
        Some(Ok(Message::Binary(data))) => {
            core.touch();
            let now = core.now();
            if let Err(e) = core.conn_mut().handle_message(data, now) {
                let code = e.code();
                core.violated(code);
                app.on_protocol_error(code, &e);
            }
            None
        }
        Some(Ok(Message::Text(_))) => {
            app.on_protocol_error(ErrorCode::ProtocolError, &"text message");
            core.end(ErrorCode::ProtocolError, "text messages are not allowed");
            None
        }
        Some(Ok(Message::Close(_))) => Some(Ended::CloseReceived),
        Some(Ok(_)) => None,
        Some(Err(WsError::Capacity(e))) => {
            app.on_protocol_error(ErrorCode::FrameSize, &e);
            core.end(ErrorCode::FrameSize, "message larger than max_frame_size");
            None
        }
        Some(Err(WsError::Protocol(e))) => {
            tracing::debug!(error = %e, "WebSocket protocol error");
            core.end(ErrorCode::ProtocolError, "WebSocket protocol error");
            None
        }
        Some(Err(e)) => {
            tracing::debug!(error = %e, "WebSocket lost");
            Some(Ended::Lost(e.to_string()))
        }
        None => Some(Ended::Eof),
    }
}
