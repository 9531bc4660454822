//! UDP flows: one UDP stream of the session, carrying datagrams to its target (or to any address
//! given per datagram) and bringing replies back with their source. Datagrams are not flow
//! controlled: when the application does not keep up, the oldest are dropped, as UDP would.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use httvps_proto::{StreamId, TargetAddr};
use tokio::sync::Notify;

use crate::driver::SessionShared;
use crate::error::Error;
use crate::stream::StreamFailure;

/// The state of a UDP flow shared with the session driver.
#[derive(Debug, Default)]
pub(crate) struct UdpInner {
    pub received: VecDeque<(Option<TargetAddr>, Bytes)>,
    pub outbox: VecDeque<(Option<TargetAddr>, Bytes)>,
    pub max_queue: usize,
    pub dropped: u64,
    pub closed_by_app: bool,
    pub failure: Option<StreamFailure>,
}

#[derive(Debug, Default)]
pub(crate) struct UdpSlot {
    inner: Mutex<UdpInner>,
    pub(crate) readable: Notify,
}

impl UdpSlot {
    pub(crate) fn lock(&self) -> MutexGuard<'_, UdpInner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a received datagram, dropping the oldest when the queue is full.
    pub(crate) fn deliver(&self, addr: Option<TargetAddr>, data: Bytes) {
        let mut inner = self.lock();
        if inner.received.len() >= inner.max_queue.max(1) {
            inner.received.pop_front();
            inner.dropped += 1;
        }
        inner.received.push_back((addr, data));
        drop(inner);
        self.readable.notify_one();
    }

    pub(crate) fn fail(&self, failure: StreamFailure) {
        let mut inner = self.lock();
        if inner.failure.is_none() {
            inner.failure = Some(failure);
        }
        drop(inner);
        self.readable.notify_waiters();
        self.readable.notify_one();
    }
}

/// A UDP flow through the tunnel (e.g. DNS). Dropping it closes the flow.
#[derive(Debug)]
pub struct UdpFlow {
    id: StreamId,
    target: TargetAddr,
    slot: Arc<UdpSlot>,
    session: Arc<SessionShared>,
}

impl UdpFlow {
    pub(crate) fn new(
        id: StreamId,
        target: TargetAddr,
        slot: Arc<UdpSlot>,
        session: Arc<SessionShared>,
    ) -> Self {
        UdpFlow {
            id,
            target,
            slot,
            session,
        }
    }

    /// The flow's default destination.
    pub fn target(&self) -> &TargetAddr {
        &self.target
    }

    /// Sends a datagram to the flow's target, or to `to` when given.
    pub fn send(&self, to: Option<TargetAddr>, data: Bytes) -> Result<(), Error> {
        let mut inner = self.slot.lock();
        if let Some(failure) = &inner.failure {
            return Err(failure_error(failure));
        }
        if inner.outbox.len() >= inner.max_queue.max(1) {
            inner.outbox.pop_front();
            inner.dropped += 1;
        }
        inner.outbox.push_back((to, data));
        drop(inner);
        self.session.mark_dirty(self.id);
        Ok(())
    }

    /// The next datagram and where it came from (`None`: the flow's target).
    pub async fn recv(&self) -> Result<(Option<TargetAddr>, Bytes), Error> {
        loop {
            let notified = self.slot.readable.notified();
            {
                let mut inner = self.slot.lock();
                if let Some(d) = inner.received.pop_front() {
                    return Ok(d);
                }
                if let Some(failure) = &inner.failure {
                    return Err(failure_error(failure));
                }
            }
            notified.await;
        }
    }

    /// Datagrams dropped because a queue was full.
    pub fn dropped(&self) -> u64 {
        self.slot.lock().dropped
    }
}

fn failure_error(f: &StreamFailure) -> Error {
    match f {
        StreamFailure::Reset(code) => Error::StreamReset(*code),
        StreamFailure::SessionEnded(why) => Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            why.clone(),
        )),
    }
}

impl Drop for UdpFlow {
    fn drop(&mut self) {
        self.slot.lock().closed_by_app = true;
        self.session.mark_dirty(self.id);
    }
}
