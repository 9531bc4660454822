//! Gets a connection back from a session that consumed it, so the listener can end it with a
//! TLS `close_notify` (the WebSocket library drops the stream after the close handshake without
//! shutting it down; nginx ends a proxied WebSocket cleanly).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// A stream that hands its inner stream back through a channel when dropped.
#[derive(Debug)]
pub struct Reclaimable<S> {
    inner: Option<S>,
    back: Option<oneshot::Sender<S>>,
}

impl<S> Reclaimable<S> {
    /// Wraps `stream`; the receiver gets it back once the wrapper is dropped.
    pub fn new(stream: S) -> (Self, oneshot::Receiver<S>) {
        let (tx, rx) = oneshot::channel();
        (
            Reclaimable {
                inner: Some(stream),
                back: Some(tx),
            },
            rx,
        )
    }

    fn inner(&mut self) -> io::Result<&mut S> {
        self.inner
            .as_mut()
            .ok_or_else(|| io::ErrorKind::NotConnected.into())
    }
}

impl<S> Drop for Reclaimable<S> {
    fn drop(&mut self) {
        if let (Some(stream), Some(back)) = (self.inner.take(), self.back.take()) {
            let _ = back.send(stream);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Reclaimable<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.inner() {
            Ok(s) => Pin::new(s).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Reclaimable<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.inner() {
            Ok(s) => Pin::new(s).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.inner() {
            Ok(s) => Pin::new(s).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.inner() {
            Ok(s) => Pin::new(s).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn the_stream_comes_back_on_drop() {
        let (a, mut b) = tokio::io::duplex(64);
        let (mut wrapped, back) = Reclaimable::new(a);
        wrapped.write_all(b"hi").await.unwrap();
        drop(wrapped);
        let mut a = back.await.unwrap();
        a.shutdown().await.unwrap();
        let mut got = Vec::new();
        b.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"hi");
    }
}
