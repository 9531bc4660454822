//! One TCP stream's upstream task: resolve and check the target, connect through the node with
//! the early data, then relay both ways.
//!
//! Upstream to client, the task reads only as many bytes as the session granted through
//! `read_credit` (the client's remaining credit), so a client that stops reading stops the
//! reads here and the target's TCP window closes: the gateway never holds more than the
//! client's window. Client to upstream, bytes are written in order and reported as `Consumed`
//! once the upstream took them, which is when the client gets credit back. The session aborts
//! this task on RESET, dropping the upstream at once.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::task::Poll;

use bytes::{BufMut, Bytes, BytesMut};
use httvps_proto::{ResetCode, StreamId, TargetAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};
use tracing::Instrument;

use super::upload::{Upload, UploadQueue};
use super::{SessionNode, StreamEvent, UpstreamStream, Upstreams};

/// Everything one TCP stream task needs.
#[derive(Debug)]
pub struct TcpRelay {
    /// The stream.
    pub id: StreamId,
    /// Where the client wants to go.
    pub target: TargetAddr,
    /// STREAM_OPEN's early data, sent with the Shadowsocks header.
    pub early_data: Bytes,
    /// Client bytes to write upstream.
    pub upload: Arc<UploadQueue>,
    /// Bytes the task may read from the upstream (granted by the session).
    pub read_credit: Arc<Semaphore>,
    /// Reports to the session.
    pub events: mpsc::Sender<StreamEvent>,
    /// Connector.
    pub upstreams: Arc<Upstreams>,
    /// The session's node.
    pub node: Arc<SessionNode>,
    /// Largest single read from the upstream.
    pub read_chunk: usize,
    /// The open's span ([`super::open_span`]), ended once connected or refused.
    pub open_span: tracing::Span,
}

impl TcpRelay {
    /// Resolves and checks the target, then connects through the session's node.
    async fn open(&self) -> Result<(UpstreamStream, Arc<str>), ResetCode> {
        let address = self.upstreams.resolve(&self.target).await?;
        self.upstreams
            .connect_tcp(&self.node, &address, &self.early_data)
            .await
    }

    /// Runs the stream to its end. Every outcome is reported through `events`.
    pub async fn run(mut self) {
        let id = self.id;
        let events = self.events.clone();
        let span = std::mem::replace(&mut self.open_span, tracing::Span::none());
        let opened = self.open().instrument(span.clone()).await;
        super::open_span::finish(
            &span,
            opened.as_ref().map(|(_, node)| &**node).map_err(|c| *c),
        );
        drop(span);
        let (stream, node) = match opened {
            Ok(s) => s,
            Err(code) => {
                let _ = events.send(StreamEvent::OpenFailed { id, code }).await;
                return;
            }
        };
        if events
            .send(StreamEvent::Connected { id, node })
            .await
            .is_err()
        {
            return;
        }
        if !self.early_data.is_empty() {
            let bytes = self.early_data.len();
            let _ = events.send(StreamEvent::Consumed { id, bytes }).await;
        }
        let (reader, writer) = tokio::io::split(stream);
        let upload = upload(id, writer, &self.upload, &events);
        let download = download(id, reader, &self.read_credit, &events, self.read_chunk);
        let outcome = match tokio::try_join!(upload, download) {
            Ok(_) => StreamEvent::Done { id },
            Err(e) => {
                tracing::debug!(stream = %id, error = %e, "upstream failed");
                StreamEvent::Failed {
                    id,
                    code: reset_code_for(&e),
                }
            }
        };
        let _ = events.send(outcome).await;
    }
}

async fn upload<W: tokio::io::AsyncWrite + Unpin>(
    id: StreamId,
    mut writer: W,
    queue: &UploadQueue,
    events: &mpsc::Sender<StreamEvent>,
) -> io::Result<()> {
    loop {
        match queue.next().await {
            Upload::Data(data) => {
                writer.write_all(&data).await?;
                let bytes = data.len();
                if events
                    .send(StreamEvent::Consumed { id, bytes })
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
            Upload::Fin => {
                writer.shutdown().await?;
                return Ok(());
            }
        }
    }
}

async fn download<R: tokio::io::AsyncRead + Unpin>(
    id: StreamId,
    mut reader: R,
    credit: &Semaphore,
    events: &mpsc::Sender<StreamEvent>,
    read_chunk: usize,
) -> io::Result<()> {
    let mut buf = BytesMut::new();
    loop {
        // Wait for at least one byte of credit, then read no more than the credit allows.
        let permit = credit
            .acquire()
            .await
            .map_err(|_| io::Error::other("credit closed"))?;
        drop(permit);
        let allowed = credit.available_permits().min(read_chunk).max(1);
        buf.reserve(allowed);
        let n = read_available(&mut reader, &mut buf, allowed).await?;
        if n == 0 {
            let _ = events.send(StreamEvent::Eof { id }).await;
            return Ok(());
        }
        // Only this task takes permits, so these are available at once.
        credit
            .acquire_many(n as u32)
            .await
            .map_err(|_| io::Error::other("credit closed"))?
            .forget();
        let data = buf.split().freeze();
        if events.send(StreamEvent::Data { id, data }).await.is_err() {
            return Ok(());
        }
    }
}

/// Reads into `buf` until at least one byte (or EOF) arrived, then goes on with whatever is
/// readable without waiting, up to `limit` bytes. A Shadowsocks stream yields one AEAD chunk
/// (at most 16 KiB) per read; taking all that is ready makes fewer, larger frames and fewer
/// session wakeups per byte.
async fn read_available<R: tokio::io::AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
    limit: usize,
) -> io::Result<usize> {
    let start = buf.len();
    std::future::poll_fn(|cx| loop {
        let filled = buf.len() - start;
        if filled >= limit {
            return Poll::Ready(Ok(filled));
        }
        let mut dst = (&mut *buf).limit(limit - filled);
        // `read_buf` only touches `dst` when it completes, so dropping it pending loses nothing.
        let read = std::pin::pin!(reader.read_buf(&mut dst)).poll(cx);
        match read {
            // EOF after some bytes: hand those over; the next call reads the EOF again.
            Poll::Ready(Ok(0)) => return Poll::Ready(Ok(filled)),
            Poll::Ready(Ok(_)) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending if filled > 0 => return Poll::Ready(Ok(filled)),
            Poll::Pending => return Poll::Pending,
        }
    })
    .await
}

fn reset_code_for(e: &io::Error) -> ResetCode {
    match e.kind() {
        io::ErrorKind::TimedOut => ResetCode::Timeout,
        _ => ResetCode::ConnectionReset,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::Context;

    use tokio::io::{AsyncRead, ReadBuf};

    use super::*;

    /// Yields one queued chunk per read; then EOF, or pending when `eof` is false.
    struct Chunks {
        chunks: VecDeque<Vec<u8>>,
        eof: bool,
    }

    impl AsyncRead for Chunks {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let Some(mut chunk) = self.chunks.pop_front() else {
                return if self.eof {
                    Poll::Ready(Ok(()))
                } else {
                    Poll::Pending
                };
            };
            let n = chunk.len().min(buf.remaining());
            buf.put_slice(&chunk[..n]);
            if n < chunk.len() {
                self.chunks.push_front(chunk.split_off(n));
            }
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn reads_what_is_ready_up_to_the_limit() {
        let mut r = Chunks {
            chunks: VecDeque::from([vec![1; 10], vec![2; 10], vec![3; 10]]),
            eof: false,
        };
        let mut buf = BytesMut::new();
        assert_eq!(read_available(&mut r, &mut buf, 25).await.unwrap(), 25);
        let expected: Vec<u8> = [vec![1; 10], vec![2; 10], vec![3; 5]].concat();
        assert_eq!(&buf[..], &expected[..]);
        buf.clear();
        // Only what is ready: no waiting for more once something arrived.
        assert_eq!(read_available(&mut r, &mut buf, 25).await.unwrap(), 5);
        assert_eq!(&buf[..], &[3; 5]);
    }

    #[tokio::test]
    async fn bytes_before_eof_come_first_then_eof() {
        let mut r = Chunks {
            chunks: VecDeque::from([vec![7; 4]]),
            eof: true,
        };
        let mut buf = BytesMut::new();
        assert_eq!(read_available(&mut r, &mut buf, 100).await.unwrap(), 4);
        assert_eq!(read_available(&mut r, &mut buf, 100).await.unwrap(), 0);
        assert_eq!(&buf[..], &[7; 4]);
    }
}
