//! The stream and datagram half of the application API: open, accept, write, finish, reset,
//! consume, datagrams, and the credit bookkeeping behind them.

use bytes::Bytes;

use super::*;

impl Connection {
    /// Client: opens a stream to `target`. Up to the first credit's worth of `early_data` rides
    /// in the STREAM_OPEN itself; the returned count says how much was taken.
    pub fn open_stream(
        &mut self,
        kind: StreamKind,
        target: TargetAddr,
        early_data: Bytes,
    ) -> Result<(StreamId, usize), ApiError> {
        self.require_role(Role::Client)?;
        self.require_established()?;
        if self.goaway_received.is_some() || self.goaway_sent.is_some() {
            return Err(ApiError::GoingAway);
        }
        if self.live_streams() >= self.max_streams as usize {
            return Err(ApiError::StreamLimit(self.max_streams));
        }
        let id = StreamId(
            self.highest_stream_id
                .0
                .checked_add(1)
                .ok_or(ApiError::IdsExhausted)?,
        );
        let mut stream = self.new_stream(kind);
        let early = if kind == StreamKind::Tcp {
            let frame_room =
                (self.peer_limits.max_frame_size as usize).saturating_sub(1 + target.encoded_len());
            let wanted = (early_data.len().min(frame_room).min(self.config.send_chunk) as u64)
                .min(self.session_send.available())
                .min(stream.send_credit.available()) as usize;
            let taken = stream.send_credit.take(self.session_send.take(wanted));
            early_data.slice(..taken)
        } else {
            Bytes::new()
        };
        self.stats.data_bytes_sent += early.len() as u64;
        let taken = early.len();
        self.highest_stream_id = id;
        self.streams.insert(id, stream);
        self.control.push_back(Frame::StreamOpen(StreamOpen {
            stream_id: id,
            kind,
            target,
            early_data: early,
        }));
        Ok((id, taken))
    }

    /// Server: the stream's target is connected; queues STREAM_OPEN_ACK.
    pub fn accept_stream(&mut self, id: StreamId) -> Result<(), ApiError> {
        self.require_role(Role::Server)?;
        let stream = self
            .streams
            .get_mut(&id)
            .ok_or(ApiError::UnknownStream(id))?;
        if stream.accepted {
            return Err(ApiError::NotPending(id));
        }
        stream.accepted = true;
        self.control
            .push_back(Frame::StreamOpenAck(crate::frame::StreamOpenAck {
                stream_id: id,
            }));
        Ok(())
    }

    /// Queues bytes on a TCP stream and returns how many were taken: at most the stream's
    /// remaining credit and buffer room. When fewer than offered are taken,
    /// [`Event::StreamWritable`] follows once more can be.
    pub fn write(&mut self, id: StreamId, data: Bytes) -> Result<usize, ApiError> {
        self.require_established()?;
        let buffer = self.config.stream_send_buffer;
        let stream = self.sendable_stream(id, StreamKind::Tcp)?;
        let room = buffer.saturating_sub(stream.queued);
        let taken = stream.send_credit.take(data.len().min(room));
        let blocked = taken < data.len();
        stream.write_blocked |= blocked;
        let newly_ready = taken > 0 && stream.queued == 0;
        if taken > 0 {
            stream.send_queue.push_back(data.slice(..taken));
            stream.queued += taken;
        }
        if blocked {
            self.stats.flow_control_stalls += 1;
        }
        if newly_ready && !self.ready.contains(&id) {
            self.ready.push_back(id);
        }
        Ok(taken)
    }

    /// Half-closes the stream: STREAM_FIN follows the data already written.
    pub fn finish(&mut self, id: StreamId) -> Result<(), ApiError> {
        self.require_established()?;
        let kind = self
            .streams
            .get(&id)
            .ok_or(ApiError::UnknownStream(id))?
            .kind;
        let stream = self.sendable_stream(id, kind)?;
        stream.fin_queued = true;
        if !self.ready.contains(&id) {
            self.ready.push_back(id);
        }
        Ok(())
    }

    /// Aborts the stream in both directions: queued data is discarded, STREAM_RESET is sent,
    /// and the stream's state is gone. Credit for received bytes not yet consumed is returned
    /// to the session at once.
    pub fn reset(&mut self, id: StreamId, code: ResetCode) -> Result<(), ApiError> {
        if self.phase == Phase::Closed {
            return Err(ApiError::Closed);
        }
        let stream = self
            .streams
            .remove(&id)
            .ok_or(ApiError::UnknownStream(id))?;
        self.ready.retain(|s| *s != id);
        self.datagrams.retain(|d| d.stream_id != id);
        self.release_session_credit(stream.recv.unconsumed() as usize);
        self.control.push_back(Frame::StreamReset(StreamReset {
            stream_id: id,
            code,
        }));
        Ok(())
    }

    /// Records that the application passed on `n` received bytes of the stream, which grants
    /// the peer that much credit again (WINDOW_UPDATEs follow as the policy decides). Unknown or
    /// closed streams are ignored: their credit was returned when they closed.
    pub fn consume(&mut self, id: StreamId, n: usize, now: Instant) -> Result<(), ApiError> {
        if self.phase == Phase::Closed {
            return Err(ApiError::Closed);
        }
        self.now = self.now.max(now);
        let Some(stream) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        let n = n.min(stream.recv.unconsumed() as usize);
        let stream_update = stream.recv.on_consume(n, now, self.rtt);
        // No credit is granted to a stream the peer has finished: it will send nothing more.
        if let Some(increment) = stream_update.filter(|_| !stream.fin_received) {
            self.control.push_back(Frame::WindowUpdate(WindowUpdate {
                stream_id: id,
                increment,
            }));
        }
        if stream.is_drained() {
            self.streams.remove(&id);
        }
        if let Some(increment) = self.session_recv.on_consume(n, now, self.rtt) {
            self.control.push_back(Frame::WindowUpdate(WindowUpdate {
                stream_id: StreamId::SESSION,
                increment,
            }));
        }
        Ok(())
    }

    /// Queues a datagram on a UDP stream. Datagrams skip flow control and go before stream data;
    /// when the queue is full the oldest one is dropped, as UDP would.
    pub fn send_datagram(
        &mut self,
        id: StreamId,
        addr: Option<TargetAddr>,
        data: Bytes,
    ) -> Result<(), ApiError> {
        self.require_established()?;
        self.sendable_stream(id, StreamKind::Udp)?;
        let datagram = Datagram {
            stream_id: id,
            addr,
            data,
        };
        let max = self.peer_limits.max_frame_size as usize;
        if datagram.payload_len() > max {
            return Err(ApiError::DatagramTooLarge {
                len: datagram.payload_len(),
                max,
            });
        }
        if self.datagrams.len() >= self.config.datagram_queue {
            self.datagrams.pop_front();
            self.stats.datagrams_dropped += 1;
        }
        self.datagrams.push_back(datagram);
        Ok(())
    }

    pub(super) fn new_stream(&self, kind: StreamKind) -> Stream {
        Stream::new(
            kind,
            self.peer_limits.stream_window,
            self.config.limits.stream_window,
            self.config.max_stream_window,
        )
    }

    /// The stream, if this side may still send on it with an operation of `kind`.
    pub(super) fn sendable_stream(
        &mut self,
        id: StreamId,
        kind: StreamKind,
    ) -> Result<&mut Stream, ApiError> {
        let role = self.role;
        let stream = self
            .streams
            .get_mut(&id)
            .ok_or(ApiError::UnknownStream(id))?;
        // The client learns of the stream from STREAM_OPEN_ACK; nothing may precede it.
        if role == Role::Server && !stream.accepted {
            return Err(ApiError::NotAccepted(id));
        }
        if stream.kind != kind {
            return Err(ApiError::WrongKind(id));
        }
        if !stream.can_write() {
            return Err(ApiError::StreamFinished(id));
        }
        Ok(stream)
    }

    pub(super) fn write_room(&self, s: &Stream) -> usize {
        if !s.can_write() || s.kind != StreamKind::Tcp {
            return 0;
        }
        let room = self.config.stream_send_buffer.saturating_sub(s.queued);
        room.min(s.send_credit.available() as usize)
    }

    pub(super) fn release_session_credit(&mut self, n: usize) {
        // Session credit for bytes nobody will consume goes back to the peer at once (the
        // update is sent when the usual threshold is crossed).
        if let Some(increment) = self.session_recv.on_consume(n, self.now, None) {
            self.control.push_back(Frame::WindowUpdate(WindowUpdate {
                stream_id: StreamId::SESSION,
                increment,
            }));
        }
    }
}
