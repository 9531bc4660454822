//! Writing: frames go into the WebSocket sink as it takes them, several per wakeup, with one
//! flush for all.

use std::task::{ready, Poll};

use futures_util::{Sink, SinkExt};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// Frames moved into the WebSocket per wakeup of the session (one flush writes them all).
pub(crate) const MAX_FRAMES_PER_WAKE: usize = 64;

/// Moves the waiting message into the sink once it is ready, then, while the sink stays ready,
/// the next ones from `next` (up to [`MAX_FRAMES_PER_WAKE`]), so one flush writes them all; or
/// flushes when nothing waits. A message is pulled from `next` only once the sink took the
/// previous one (a peer that stops reading stops our output), and readiness and the send
/// happen in one poll, so cancelling this future never loses a message: one not yet taken stays
/// in `outgoing`.
pub(crate) async fn drive_sink<S>(
    sink: &mut S,
    outgoing: &mut Option<Message>,
    needs_flush: &mut bool,
    mut next: impl FnMut() -> Option<Message>,
) -> Result<(), WsError>
where
    S: Sink<Message, Error = WsError> + Unpin,
{
    futures_util::future::poll_fn(|cx| {
        if outgoing.is_none() {
            ready!(sink.poll_flush_unpin(cx))?;
            *needs_flush = false;
            return Poll::Ready(Ok(()));
        }
        let mut sent = 0;
        while let Some(msg) = outgoing.take() {
            match sink.poll_ready_unpin(cx) {
                Poll::Ready(ready) => ready?,
                Poll::Pending => {
                    *outgoing = Some(msg);
                    if sent == 0 {
                        return Poll::Pending;
                    }
                    break;
                }
            }
            sink.start_send_unpin(msg)?;
            *needs_flush = true;
            sent += 1;
            if sent < MAX_FRAMES_PER_WAKE {
                *outgoing = next();
            }
        }
        Poll::Ready(Ok(()))
    })
    .await
}
