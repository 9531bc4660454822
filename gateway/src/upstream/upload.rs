//! The queue of client bytes waiting to be written to one stream's upstream.
//!
//! The session pushes without ever waiting (it must not stall other streams); the protocol
//! bounds what can be pushed: bytes beyond the stream's receive window are a `flow_control`
//! violation, and credit returns only after the bytes were written upstream. Small pushes are
//! merged into one buffer so a client sending one-byte frames cannot make the per-chunk overhead
//! dwarf the window.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use tokio::sync::Notify;

/// Pushes below this size are merged into the tail buffer instead of queued on their own.
const MERGE_BELOW: usize = 4096;

/// What the upstream writer gets next.
#[derive(Debug, PartialEq, Eq)]
pub enum Upload {
    /// Bytes to write.
    Data(Bytes),
    /// The client finished sending: shut down the upstream's write side.
    Fin,
}

/// Single-producer (the session), single-consumer (the stream task) byte queue.
#[derive(Debug, Default)]
pub struct UploadQueue {
    state: Mutex<State>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct State {
    chunks: VecDeque<Bytes>,
    /// Merged small pushes; always logically after `chunks`.
    tail: BytesMut,
    bytes: usize,
    fin: bool,
}

impl UploadQueue {
    /// Queues bytes for the upstream.
    pub fn push(&self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        if let Ok(mut s) = self.state.lock() {
            s.bytes += data.len();
            if data.len() < MERGE_BELOW {
                s.tail.extend_from_slice(&data);
            } else {
                if !s.tail.is_empty() {
                    let tail = s.tail.split().freeze();
                    s.chunks.push_back(tail);
                }
                s.chunks.push_back(data);
            }
        }
        self.notify.notify_one();
    }

    /// Queues the end of the client's data.
    pub fn finish(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.fin = true;
        }
        self.notify.notify_one();
    }

    /// Bytes queued and not yet taken by the writer.
    pub fn queued_bytes(&self) -> usize {
        self.state.lock().map(|s| s.bytes).unwrap_or(0)
    }

    /// The next item, waiting until there is one.
    pub async fn next(&self) -> Upload {
        loop {
            if let Some(item) = self.try_next() {
                return item;
            }
            // notify_one stores a permit when nobody waits, so a push between try_next and
            // here is not lost.
            self.notify.notified().await;
        }
    }

    fn try_next(&self) -> Option<Upload> {
        let mut s = self.state.lock().ok()?;
        let data = match s.chunks.pop_front() {
            Some(chunk) => chunk,
            None if !s.tail.is_empty() => s.tail.split().freeze(),
            None if s.fin => return Some(Upload::Fin),
            None => return None,
        };
        s.bytes -= data.len();
        Some(Upload::Data(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn order_is_kept_and_small_pushes_merge() {
        let q = UploadQueue::default();
        q.push(Bytes::from_static(b"a"));
        q.push(Bytes::from_static(b"b"));
        q.push(Bytes::from(vec![b'c'; 5000]));
        q.push(Bytes::from_static(b"d"));
        q.finish();
        assert_eq!(q.queued_bytes(), 5003);
        assert_eq!(q.next().await, Upload::Data(Bytes::from_static(b"ab")));
        assert_eq!(q.next().await, Upload::Data(Bytes::from(vec![b'c'; 5000])));
        assert_eq!(q.next().await, Upload::Data(Bytes::from_static(b"d")));
        assert_eq!(q.next().await, Upload::Fin);
        assert_eq!(q.queued_bytes(), 0);
    }
}
