//! One TCP stream's upstream task: resolve and check the target, connect through the node with
//! the early data, then relay both ways.
//!
//! Upstream to client, the task reads only as many bytes as the session granted through
//! `read_credit` (the client's remaining credit), so a client that stops reading stops the
//! reads here and the target's TCP window closes: the gateway never holds more than the
//! client's window. Client to upstream, bytes are written in order and reported as `Consumed`
//! once the upstream took them, which is when the client gets credit back. The session aborts
//! this task on RESET, dropping the upstream at once.

use std::io;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use httvps_proto::{ResetCode, StreamId, TargetAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, Semaphore};

use super::upload::{Upload, UploadQueue};
use super::{SessionNode, StreamEvent, Upstreams};

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
}

impl TcpRelay {
    /// Runs the stream to its end. Every outcome is reported through `events`.
    pub async fn run(self) {
        let id = self.id;
        let events = self.events.clone();
        let address = match self.upstreams.resolve(&self.target).await {
            Ok(a) => a,
            Err(code) => {
                let _ = events.send(StreamEvent::OpenFailed { id, code }).await;
                return;
            }
        };
        let (stream, node) = match self
            .upstreams
            .connect_tcp(&self.node, &address, &self.early_data)
            .await
        {
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
        let n = reader.read_buf(&mut (&mut buf).limit(allowed)).await?;
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

fn reset_code_for(e: &io::Error) -> ResetCode {
    match e.kind() {
        io::ErrorKind::TimedOut => ResetCode::Timeout,
        _ => ResetCode::ConnectionReset,
    }
}
