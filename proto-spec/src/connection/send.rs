//! The send scheduler: control frames first, then datagrams, then stream data round-robin in
//! bounded chunks, so a bulk stream never starves the others and a stalled stream only loses
//! its own credit.

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

    /// Takes the stream at the head of the round-robin list and sends one chunk of its data, or
    /// its FIN once its data is out.
    fn next_stream_frame(&mut self) -> Option<Frame> {
        let chunk_limit = self
            .config
            .send_chunk
            .min(self.peer_limits.max_frame_size as usize)
            .max(1);
        // Each stream is looked at most once per call; streams with nothing sendable are
        // dropped from the list until they have something again.
        for _ in 0..self.ready.len() {
            let id = self.ready.pop_front()?;
            let Some(stream) = self.streams.get_mut(&id) else {
                continue;
            };
            if let Some(front) = stream.send_queue.front_mut() {
                let n = (self.session_send.available() as usize)
                    .min(front.len())
                    .min(chunk_limit);
                if n == 0 {
                    // Blocked on session credit; streams with only a FIN left may still go.
                    self.ready.push_back(id);
                    continue;
                }
                self.session_send.take(n);
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
                if more {
                    self.ready.push_back(id);
                }
                return Some(Frame::StreamData(StreamData {
                    stream_id: id,
                    data,
                }));
            }
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
