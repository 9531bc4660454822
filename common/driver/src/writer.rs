//! A WebSocket writing half in a task of its own, behind a bounded queue: the session task then
//! never spends its time encrypting and writing (the SDK's choice; the gateway writes in the
//! session task, which keeps a slow reader's backlog out of its memory).

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::{Sink, SinkExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::sync::PollSender;

/// A [`Sink`] of WebSocket messages that queues them for a writer task; the writer feeds
/// whatever is queued, then flushes once. Closing it lets the writer finish and close the
/// WebSocket, and waits for that.
#[derive(Debug)]
pub struct QueuedSink {
    queue: PollSender<Message>,
    writer: Option<JoinHandle<()>>,
}

impl QueuedSink {
    /// Starts the writer task over `sink` with room for `queue` messages.
    pub fn spawn<S>(mut sink: S, queue: usize) -> Self
    where
        S: Sink<Message, Error = WsError> + Unpin + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Message>(queue.max(1));
        let writer = tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                if sink.feed(msg).await.is_err() {
                    return;
                }
                while let Ok(more) = rx.try_recv() {
                    if sink.feed(more).await.is_err() {
                        return;
                    }
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
            let _ = sink.close().await;
        });
        QueuedSink {
            queue: PollSender::new(tx),
            writer: Some(writer),
        }
    }
}

impl Sink<Message> for QueuedSink {
    type Error = WsError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.queue
            .poll_reserve(cx)
            .map_err(|_| WsError::ConnectionClosed)
    }

    fn start_send(mut self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
        self.queue
            .send_item(item)
            .map_err(|_| WsError::ConnectionClosed)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        // Queued is as far as this side goes; the writer flushes after each batch.
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        self.queue.close();
        if let Some(writer) = self.writer.as_mut() {
            let _ = std::task::ready!(Pin::new(writer).poll(cx));
            self.writer = None;
        }
        Poll::Ready(Ok(()))
    }
}
