//! The send scheduler: control frames first, then datagrams, then stream data by deficit round
//! robin in bounded chunks, so a bulk stream never starves the others, streams share the link
//! by bytes whatever the size of their writes, and a stalled stream only loses its own credit.

use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::{Connection, Event, Phase};
use crate::frame::{Frame, StreamData, StreamFin};
use crate::stream::StreamId;

impl Connection {
    /// The next message to send as one binary WebSocket message, or `None` when nothing is
    /// ready. Call it until it returns `None` after every input.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<Bytes> {
        self.now = self.now.max(now);
        let frame = self.next_frame()?;
        self.stats.frames_sent += 1;
        Some(frame.to_bytes())
    }

    /// Like [`Connection::poll_transmit`], appending the message to `buf` instead (for drivers
    /// that reuse one output buffer). Returns whether a frame was written.
    pub fn poll_transmit_into(&mut self, now: Instant, buf: &mut BytesMut) -> bool {
        self.now = self.now.max(now);
        match self.next_frame() {
            Some(frame) => {
                self.stats.frames_sent += 1;
                frame.encode(buf);
                true
            }
            None => false,
        }
    }

    fn next_frame(&mut self) -> Option<Frame> {
        if let Some(frame) = self.control.pop_front() {
            return Some(frame);
        }
        if self.phase != Phase::Established {
            return None;
        }
        if let Some(datagram) = self.datagrams.pop_front() {
            return Some(Frame::Datagram(datagram));
        }
        self.next_stream_frame()
    }

    /// Deficit round robin over the streams with something to send, with a quantum of one
    /// chunk: a stream's turn gives it up to a quantum of bytes, in one frame or, when its
    /// writes were smaller, in several, so streams share the link by bytes, not by writes. A
    /// stream keeps the head of the list until its quantum is spent or its queue is empty.
    fn next_stream_frame(&mut self) -> Option<Frame> {
        let quantum = self
            .config
            .send_chunk
            .min(self.peer_limits.max_frame_size as usize)
            .max(1);
        // Each stream is looked at most once per call; streams with nothing sendable are
        // dropped from the list until they have something again.
        for _ in 0..self.ready.len() {
            let id = *self.ready.front()?;
            let Some(stream) = self.streams.get_mut(&id) else {
                self.ready.pop_front();
                continue;
            };
            if let Some(front) = stream.send_queue.front_mut() {
                if stream.deficit == 0 {
                    stream.deficit = quantum;
                }
                let n = (self.session_send.available() as usize)
                    .min(front.len())
                    .min(stream.deficit);
                if n == 0 {
                    // Blocked on session credit: it keeps its deficit for its next turn, and
                    // streams with only a FIN left may still go.
                    self.ready.rotate_left(1);
                    continue;
                }
                self.session_send.take(n);
                stream.deficit -= n;
                let data = front.split_to(n);
                if front.is_empty() {
                    stream.send_queue.pop_front();
                }
                stream.queued -= n;
                self.stats.data_bytes_sent += n as u64;
                let more = stream.queued > 0 || (stream.fin_queued && !stream.fin_sent);
                if stream.write_blocked && stream.send_credit.available() > 0 {
                    stream.write_blocked = false;
                    self.events.push_back(Event::StreamWritable(id));
                }
                if !more {
                    // An idle stream saves no deficit for later.
                    stream.deficit = 0;
                    self.ready.pop_front();
                } else if stream.deficit == 0 {
                    self.ready.rotate_left(1);
                }
                return Some(Frame::StreamData(StreamData {
                    stream_id: id,
                    data,
                }));
            }
            self.ready.pop_front();
            stream.deficit = 0;
            if stream.fin_queued && !stream.fin_sent {
                stream.fin_sent = true;
                if stream.is_drained() {
                    self.streams.remove(&id);
                }
                return Some(Frame::StreamFin(StreamFin { stream_id: id }));
            }
        }
        None
    }

    /// Stream ids with data or a FIN waiting to be sent (for tests and diagnostics).
    pub fn pending_streams(&self) -> Vec<StreamId> {
        self.ready.iter().copied().collect()
    }
}
