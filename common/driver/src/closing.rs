//! The end of a session: its last frames, the WebSocket Close with the code of the ERROR that
//! ended it, and a bounded wait for the peer's Close so the TCP connection ends cleanly.

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::config::DriverConfig;
use crate::core::Core;
use crate::run::{Ended, Outcome};
use crate::{close_code, silence};

/// Flushes the last frames, sends the Close and waits (within `config.close_timeout`) for the
/// peer's. Before the handshake completed on a server that keeps quiet, the Close waits a
/// random time and says nothing an ERROR would have said ([`silence`]).
pub(crate) async fn close_handshake<Tx, Rx>(
    core: &mut Core,
    mut sink: Tx,
    mut source: Rx,
    mut outcome: Outcome,
    config: &DriverConfig,
) -> Outcome
where
    Tx: Sink<Message, Error = WsError> + Unpin,
    Rx: Stream<Item = Result<Message, WsError>> + Unpin,
{
    if outcome.ended == Ended::Abandoned {
        return outcome;
    }
    let mut last_frames = Vec::new();
    while let Some(frame) = core.next_frame() {
        last_frames.push(frame);
    }
    let peer_gone = outcome.ended.peer_gone();
    if let (true, false, Some(max)) = (
        core.quiet.close,
        peer_gone,
        config.unauthenticated_close_delay,
    ) {
        if core.quiet.error_dropped {
            // No ERROR went out: the close code tells nothing either.
            outcome.close_code = Some(close_code::NORMAL);
        }
        let _ = tokio::time::timeout(config.close_timeout, async {
            for frame in last_frames.drain(..) {
                if sink.feed(Message::Binary(frame)).await.is_err() {
                    return;
                }
            }
            let _ = sink.flush().await;
        })
        .await;
        // Not reading meanwhile: TCP backpressure bounds what the peer can still send.
        tokio::time::sleep(silence::close_delay(max)).await;
    }
    let code = outcome.close_code;
    let _ = tokio::time::timeout(config.close_timeout, async {
        for frame in last_frames {
            if sink.feed(Message::Binary(frame)).await.is_err() {
                return;
            }
        }
        if !peer_gone {
            let close = code.map(|code| CloseFrame {
                code: code.into(),
                reason: "".into(),
            });
            let _ = sink.send(Message::Close(close)).await;
            // Wait for the peer's Close so the TCP connection ends cleanly.
            while let Some(Ok(msg)) = source.next().await {
                if matches!(msg, Message::Close(_)) {
                    break;
                }
            }
        }
        let _ = sink.close().await;
    })
    .await;
    outcome
}
