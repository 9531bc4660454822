//! The session's table of live streams: for each, the handles to its upstream task and the
//! flow-control bookkeeping the session keeps on the task's behalf.

use std::collections::HashMap;
use std::sync::Arc;

use httvps_proto::{StreamId, TargetAddr};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::AbortHandle;

use crate::upstream::udp::OutboundDatagram;
use crate::upstream::upload::UploadQueue;

/// The kind-specific handles of a stream.
#[derive(Debug)]
pub enum StreamIo {
    /// A TCP stream.
    Tcp {
        /// Client bytes for the upstream.
        upload: Arc<UploadQueue>,
        /// Bytes the task may read from the upstream.
        read_credit: Arc<Semaphore>,
        /// Granted through `read_credit` and not yet delivered back as data.
        granted: usize,
        /// The upstream reached EOF (our FIN is queued).
        download_done: bool,
        /// Whether the last top-up found no credit to give (for the stall counter).
        stalled: bool,
    },
    /// A UDP stream. `None` once the client finished it.
    Udp {
        /// Datagrams for the node.
        datagrams: Option<mpsc::Sender<OutboundDatagram>>,
    },
}

/// One live stream.
#[derive(Debug)]
pub struct StreamEntry {
    /// The client's target (datagrams from it go back without an address).
    pub target: TargetAddr,
    /// STREAM_OPEN_ACK sent.
    pub acked: bool,
    /// Client bytes received and not yet consumed (written upstream).
    pub unconsumed: usize,
    /// Kind-specific handles.
    pub io: StreamIo,
    /// The node the stream goes through, once connected.
    pub node: Option<Arc<str>>,
    /// Its share of the node's live load (published to the other gateways).
    pub load: Option<crate::shared::load::StreamLoadGuard>,
    task: AbortHandle,
}

impl StreamEntry {
    /// An entry owning the task behind `task`; dropping the entry aborts the task, which drops
    /// the upstream socket at once (a RESET stops all reading from the target).
    pub fn new(target: TargetAddr, io: StreamIo, task: AbortHandle) -> Self {
        StreamEntry {
            target,
            acked: false,
            unconsumed: 0,
            io,
            node: None,
            load: None,
            task,
        }
    }

    /// Whether this is a TCP stream.
    pub fn is_tcp(&self) -> bool {
        matches!(self.io, StreamIo::Tcp { .. })
    }
}

impl Drop for StreamEntry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The live streams of one session.
#[derive(Debug, Default)]
pub struct StreamTable {
    entries: HashMap<StreamId, StreamEntry>,
}

impl StreamTable {
    /// Adds a stream.
    pub fn insert(&mut self, id: StreamId, entry: StreamEntry) {
        self.entries.insert(id, entry);
    }

    /// The stream, if live.
    pub fn get_mut(&mut self, id: StreamId) -> Option<&mut StreamEntry> {
        self.entries.get_mut(&id)
    }

    /// Removes (and so aborts) a stream.
    pub fn remove(&mut self, id: StreamId) -> Option<StreamEntry> {
        self.entries.remove(&id)
    }

    /// Streams not yet acknowledged (their target is being connected).
    pub fn pending_opens(&self) -> usize {
        self.entries.values().filter(|e| !e.acked).count()
    }

    /// Live streams.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no stream is live.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Live streams of each kind: (tcp, udp).
    pub fn count_by_kind(&self) -> (usize, usize) {
        let tcp = self.entries.values().filter(|e| e.is_tcp()).count();
        (tcp, self.entries.len() - tcp)
    }

    /// Iterates over the streams.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&StreamId, &mut StreamEntry)> {
        self.entries.iter_mut()
    }

    /// Bytes received from the client and not yet written upstream, and bytes granted to
    /// upstream readers and not yet delivered, summed over all streams.
    pub fn held_bytes(&self) -> (usize, usize) {
        self.entries.values().fold((0, 0), |(up, granted), e| {
            let g = match e.io {
                StreamIo::Tcp { granted, .. } => granted,
                StreamIo::Udp { .. } => 0,
            };
            (up + e.unconsumed, granted + g)
        })
    }
}
