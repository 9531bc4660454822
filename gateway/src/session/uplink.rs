//! The client's side of the streams: opens (each gets a task that connects its target through
//! the session's node), what the client sends on them, and refusals.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use httvps_driver::Core;
use httvps_proto::frame::{Datagram, StreamOpen};
use httvps_proto::{ResetCode, StreamId, StreamKind};
use tokio::sync::{mpsc, Semaphore};

use super::app::GatewaySession;
use super::streams::{StreamEntry, StreamIo};
use crate::metrics as m;
use crate::upstream::open_span;
use crate::upstream::tcp::TcpRelay;
use crate::upstream::udp::{OutboundDatagram, UdpRelay};
use crate::upstream::upload::UploadQueue;

/// Datagrams from the client queued for one UDP stream's node socket; more are dropped.
const DATAGRAM_QUEUE: usize = 64;
/// Largest single read from an upstream.
const UPSTREAM_READ_CHUNK: usize = 32 * 1024;

impl GatewaySession {
    /// Client bytes for a stream: queued for its upstream, or credited back at once when the
    /// stream is gone.
    pub(super) fn on_client_data(
        &mut self,
        core: &mut Core,
        stream_id: StreamId,
        data: bytes::Bytes,
    ) {
        let len = data.len();
        match self.streams.get_mut(stream_id) {
            Some(entry) => {
                entry.unconsumed += len;
                if let StreamIo::Tcp { upload, .. } = &entry.io {
                    upload.push(data);
                }
            }
            // No upstream to give it to: return the credit at once.
            None => {
                let now = core.now();
                let _ = core.conn_mut().consume(stream_id, len, now);
            }
        }
    }

    /// A client datagram for a UDP stream's node socket.
    pub(super) fn on_client_datagram(&mut self, core: &mut Core, datagram: Datagram) {
        let node = self
            .streams
            .get_mut(datagram.stream_id)
            .and_then(|e| e.node.clone());
        self.count_usage(core, node.as_ref(), datagram.data.len() as u64, 0);
        if let Some(entry) = self.streams.get_mut(datagram.stream_id) {
            if let StreamIo::Udp {
                datagrams: Some(tx),
            } = &entry.io
            {
                // A full queue drops the datagram, as UDP may (SPEC §7).
                let _ = tx.try_send(OutboundDatagram {
                    addr: datagram.addr,
                    data: datagram.data,
                });
            }
        }
    }

    pub(super) fn on_client_fin(&mut self, core: &mut Core, id: StreamId) {
        let Some(entry) = self.streams.get_mut(id) else {
            return;
        };
        match &mut entry.io {
            StreamIo::Tcp { upload, .. } => upload.finish(),
            StreamIo::Udp { datagrams } => {
                // The client sends no more datagrams: end the stream both ways.
                *datagrams = None;
                if entry.acked {
                    let _ = core.conn_mut().finish(id);
                }
            }
        }
    }

    pub(super) fn open_stream(&mut self, core: &mut Core, open: StreamOpen) {
        let id = open.stream_id;
        let kind = open.kind;
        if self.ending.quota_exhausted {
            self.refuse(core, id, kind, ResetCode::QuotaExceeded);
            return;
        }
        if self.streams.pending_opens() >= self.ctx.settings.max_pending_opens {
            self.refuse(core, id, kind, ResetCode::StreamLimit);
            return;
        }
        let Some(node) = self.node.clone() else {
            self.refuse(core, id, kind, ResetCode::Internal);
            return;
        };
        let upstreams = self.ctx.upstreams.clone();
        let events = self.events_tx();
        let early_len = open.early_data.len();
        let open_span = open_span::start(id, kind, node.session_id(), &self.hello_trace);
        let (io, task) = match kind {
            StreamKind::Tcp => {
                let upload = Arc::new(UploadQueue::default());
                let read_credit = Arc::new(Semaphore::new(0));
                let relay = TcpRelay {
                    id,
                    target: open.target.clone(),
                    early_data: open.early_data,
                    upload: upload.clone(),
                    read_credit: read_credit.clone(),
                    events,
                    upstreams,
                    node,
                    read_chunk: UPSTREAM_READ_CHUNK,
                    open_span,
                };
                let task = tokio::spawn(relay.run()).abort_handle();
                let io = StreamIo::Tcp {
                    upload,
                    read_credit,
                    granted: 0,
                    download_done: false,
                    stalled: false,
                };
                (io, task)
            }
            StreamKind::Udp => {
                let (tx, rx) = mpsc::channel(DATAGRAM_QUEUE);
                let relay = UdpRelay {
                    id,
                    target: open.target.clone(),
                    datagrams: rx,
                    events,
                    upstreams,
                    node,
                    idle_timeout: self.ctx.settings.udp_idle_timeout,
                    stats: self.ctx.stats.clone(),
                    open_span,
                };
                let task = tokio::spawn(relay.run()).abort_handle();
                (
                    StreamIo::Udp {
                        datagrams: Some(tx),
                    },
                    task,
                )
            }
        };
        let mut entry = StreamEntry::new(open.target, io, task);
        // Early data counts as received and is consumed once written upstream.
        entry.unconsumed = early_len;
        self.streams.insert(id, entry);
    }

    pub(super) fn refuse(
        &mut self,
        core: &mut Core,
        id: StreamId,
        kind: StreamKind,
        code: ResetCode,
    ) {
        let _ = core.conn_mut().reset(id, code);
        self.ctx
            .stats
            .streams_refused
            .fetch_add(1, Ordering::Relaxed);
        metrics::counter!(m::STREAM_OPENS_TOTAL, "kind" => kind.name(), "result" => code.name())
            .increment(1);
    }
}
