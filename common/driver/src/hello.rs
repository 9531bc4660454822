//! The client's handshake: HELLO out, then frames in until HELLO_ACK or HELLO_ERROR, before the
//! session loop starts (the SDK and the test client bound it with their own timeout).

use futures_util::{Sink, SinkExt, Stream, StreamExt};
use httvps_proto::frame::{ErrorFrame, HelloAck, HelloError};
use httvps_proto::{Connection, ConnectionError, Event};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Why a client's handshake did not end with HELLO_ACK.
#[derive(Debug)]
pub enum HelloFailure {
    /// The server refused the HELLO.
    Rejected(HelloError),
    /// The server ended the session with an ERROR.
    Ended(ErrorFrame),
    /// The server's answer broke the protocol (the connection queued its ERROR).
    Violation(ConnectionError),
    /// The WebSocket closed before an answer.
    Closed,
    /// The WebSocket failed.
    Transport(WsError),
}

impl std::fmt::Display for HelloFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HelloFailure::Rejected(e) => write!(f, "HELLO refused: {}: {}", e.code, e.message),
            HelloFailure::Ended(e) => write!(f, "session ended: {}: {}", e.code, e.message),
            HelloFailure::Violation(e) => write!(f, "{e}"),
            HelloFailure::Closed => f.write_str("closed during the handshake"),
            HelloFailure::Transport(e) => write!(f, "{e}"),
        }
    }
}

/// Sends what `conn` queued (its HELLO) and reads until the server answers it.
pub async fn exchange<Tx, Rx>(
    sink: &mut Tx,
    source: &mut Rx,
    conn: &mut Connection,
) -> Result<HelloAck, HelloFailure>
where
    Tx: Sink<Message, Error = WsError> + Unpin,
    Rx: Stream<Item = Result<Message, WsError>> + Unpin,
{
    let now = tokio::time::Instant::now().into_std();
    while let Some(frame) = conn.poll_transmit(now) {
        sink.feed(Message::Binary(frame))
            .await
            .map_err(HelloFailure::Transport)?;
    }
    sink.flush().await.map_err(HelloFailure::Transport)?;
    loop {
        let msg = source.next().await.ok_or(HelloFailure::Closed)?;
        match msg.map_err(HelloFailure::Transport)? {
            Message::Binary(bytes) => {
                let now = tokio::time::Instant::now().into_std();
                conn.handle_message(bytes, now)
                    .map_err(HelloFailure::Violation)?;
                match conn.poll_event() {
                    Some(Event::HelloAccepted(ack)) => return Ok(ack),
                    Some(Event::HelloRejected(e)) => return Err(HelloFailure::Rejected(e)),
                    Some(Event::PeerError(e)) => return Err(HelloFailure::Ended(e)),
                    _ => {}
                }
            }
            Message::Close(_) => return Err(HelloFailure::Closed),
            _ => {}
        }
    }
}
