//! Receiving: decode a message, check it against the session's rules, update state and report
//! events. Any violation ends the session with an ERROR frame naming it.

use std::time::Instant;

use bytes::Bytes;

use super::{Connection, ConnectionError, Event, Phase, Role};
use crate::codes::{ErrorCode, HelloErrorCode, ResetCode};
use crate::frame::{
    Datagram, Frame, GoAway, Hello, HelloAck, HelloError, StreamData, StreamKind, StreamOpen,
    StreamReset, WindowUpdate,
};
use crate::limits::{MIN_MAX_FRAME_SIZE, PROTOCOL_VERSION};
use crate::stream::StreamId;

type Result<T = ()> = std::result::Result<T, ConnectionError>;

fn violation(code: ErrorCode, reason: impl Into<String>) -> ConnectionError {
    ConnectionError::Violation {
        code,
        reason: reason.into(),
    }
}

impl Connection {
    /// Handles one binary WebSocket message from the peer. On `Err` the session is over: the
    /// ERROR frame for the peer is queued; flush [`Connection::poll_transmit`] and close.
    pub fn handle_message(&mut self, msg: Bytes, now: Instant) -> Result {
        if self.phase == Phase::Closed {
            return Err(ConnectionError::Closed);
        }
        let max = if self.phase == Phase::Established {
            self.config.limits.max_frame_size
        } else {
            MIN_MAX_FRAME_SIZE
        };
        let frame = match crate::frame::Frame::decode(msg, max) {
            Ok(frame) => frame,
            Err(e) => return Err(self.fail(ConnectionError::Decode(e))),
        };
        self.handle_frame(frame, now)
    }

    /// Handles one already decoded frame (see [`Connection::handle_message`]).
    pub fn handle_frame(&mut self, frame: Frame, now: Instant) -> Result {
        if self.phase == Phase::Closed {
            return Err(ConnectionError::Closed);
        }
        self.now = self.now.max(now);
        self.stats.frames_received += 1;
        match self.dispatch(frame) {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(e)),
        }
    }

    fn fail(&mut self, error: ConnectionError) -> ConnectionError {
        self.fail_with(error.code(), &error.to_string());
        error
    }

    fn dispatch(&mut self, frame: Frame) -> Result {
        // The handshake comes first; nothing else is valid before it.
        if self.phase != Phase::Established {
            return self.on_handshake_frame(frame);
        }
        match frame {
            Frame::Hello(_) | Frame::HelloAck(_) | Frame::HelloError(_) => Err(violation(
                ErrorCode::ProtocolError,
                "handshake frame after the handshake",
            )),
            Frame::StreamOpen(open) => self.on_stream_open(open),
            Frame::StreamOpenAck(ack) => self.on_stream_open_ack(ack.stream_id),
            Frame::StreamData(data) => self.on_stream_data(data),
            Frame::StreamFin(fin) => self.on_stream_fin(fin.stream_id),
            Frame::StreamReset(reset) => self.on_stream_reset(reset),
            Frame::WindowUpdate(update) => self.on_window_update(update),
            Frame::Datagram(datagram) => self.on_datagram(datagram),
            Frame::Ping(payload) => {
                if self.control.len() >= self.config.max_queued_control_frames {
                    return Err(violation(
                        ErrorCode::ProtocolError,
                        "too many frames awaiting an answer (PING flood)",
                    ));
                }
                self.control.push_back(Frame::Pong(payload));
                Ok(())
            }
            Frame::Pong(payload) => {
                if let Some((sent, at)) = self.ping_in_flight {
                    if sent == payload {
                        let rtt = self.now.saturating_duration_since(at);
                        self.rtt = Some(rtt);
                        self.ping_in_flight = None;
                        self.events.push_back(Event::Pong { rtt });
                    }
                }
                Ok(())
            }
            Frame::GoAway(goaway) => self.on_go_away(goaway),
            Frame::Error(error) => {
                self.phase = Phase::Closed;
                self.control.clear();
                self.datagrams.clear();
                self.ready.clear();
                self.streams.clear();
                self.events.push_back(Event::PeerError(error));
                Ok(())
            }
            Frame::Unknown { .. } => Ok(()),
        }
    }

    fn on_handshake_frame(&mut self, frame: Frame) -> Result {
        match (self.role, self.phase, frame) {
            (_, _, Frame::Unknown { .. }) => Ok(()),
            (Role::Server, Phase::Start, Frame::Hello(hello)) => self.on_hello(hello),
            (Role::Client, Phase::Handshaking, Frame::HelloAck(ack)) => self.on_hello_ack(ack),
            (Role::Client, Phase::Handshaking, Frame::HelloError(error)) => {
                self.on_hello_error(error);
                Ok(())
            }
            (_, _, Frame::Error(error)) => {
                self.phase = Phase::Closed;
                self.control.clear();
                self.events.push_back(Event::PeerError(error));
                Ok(())
            }
            (_, _, other) => Err(violation(
                ErrorCode::ProtocolError,
                format!(
                    "{} before the handshake completed",
                    other.frame_type().map_or("frame", |t| t.name())
                ),
            )),
        }
    }

    fn on_hello(&mut self, hello: Hello) -> Result {
        self.phase = super::Phase::Handshaking;
        if !hello.versions.contains(&PROTOCOL_VERSION) {
            self.control.push_back(Frame::HelloError(HelloError::new(
                HelloErrorCode::UnsupportedVersion,
                0,
                &format!("supported versions: {PROTOCOL_VERSION}"),
            )));
            self.phase = Phase::Closed;
            return Ok(());
        }
        self.peer_limits = hello.limits;
        self.events.push_back(Event::HelloReceived(hello));
        Ok(())
    }

    fn on_hello_ack(&mut self, ack: HelloAck) -> Result {
        if ack.version != PROTOCOL_VERSION {
            return Err(violation(
                ErrorCode::ProtocolError,
                format!(
                    "server chose version {}, which was not offered",
                    ack.version
                ),
            ));
        }
        self.peer_limits = ack.limits;
        self.max_streams = ack.max_streams;
        self.establish();
        self.events.push_back(Event::HelloAccepted(ack));
        Ok(())
    }

    fn on_hello_error(&mut self, error: HelloError) {
        self.phase = Phase::Closed;
        self.control.clear();
        self.events.push_back(Event::HelloRejected(error));
    }

    /// Classifies a frame's stream id: `Ok(true)` if the stream is live here, `Ok(false)` if it
    /// was opened and is now closed (a late frame, ignored), `Err` if it was never opened.
    fn check_stream_id(&mut self, id: StreamId, frame: &str) -> Result<bool> {
        if self.streams.contains_key(&id) {
            return Ok(true);
        }
        if id <= self.highest_stream_id {
            self.stats.late_frames += 1;
            return Ok(false);
        }
        Err(violation(
            ErrorCode::StreamId,
            format!("{frame} on stream {id}, which was never opened"),
        ))
    }

    fn on_stream_open(&mut self, open: StreamOpen) -> Result {
        if self.role == Role::Client {
            return Err(violation(
                ErrorCode::ProtocolError,
                "the server cannot open streams",
            ));
        }
        let id = open.stream_id;
        if id <= self.highest_stream_id {
            return Err(violation(
                ErrorCode::StreamId,
                format!(
                    "STREAM_OPEN reuses stream id {id} (highest so far {})",
                    self.highest_stream_id
                ),
            ));
        }
        self.highest_stream_id = id;
        let early = open.early_data.len();
        if self.session_recv.on_receive(early).is_err() {
            return Err(violation(
                ErrorCode::FlowControl,
                "early data exceeds the session window",
            ));
        }
        if early > self.config.limits.stream_window as usize {
            return Err(violation(
                ErrorCode::FlowControl,
                "early data exceeds the stream window",
            ));
        }
        self.stats.data_bytes_received += early as u64;
        let refusal = if self.goaway_sent.is_some() || self.goaway_received.is_some() {
            Some(ResetCode::GoingAway)
        } else if self.live_streams() >= self.config.max_streams as usize {
            Some(ResetCode::StreamLimit)
        } else {
            None
        };
        if let Some(code) = refusal {
            self.release_session_credit(early);
            self.control.push_back(Frame::StreamReset(StreamReset {
                stream_id: id,
                code,
            }));
            return Ok(());
        }
        let mut stream = self.new_stream(open.kind);
        // Cannot fail: checked against the same window just above.
        let _ = stream.recv.on_receive(early);
        self.streams.insert(id, stream);
        self.events.push_back(Event::StreamOpened(open));
        Ok(())
    }

    fn on_stream_open_ack(&mut self, id: StreamId) -> Result {
        if self.role == Role::Server {
            return Err(violation(
                ErrorCode::ProtocolError,
                "the client cannot send STREAM_OPEN_ACK",
            ));
        }
        if !self.check_stream_id(id, "STREAM_OPEN_ACK")? {
            return Ok(());
        }
        let stream = self.streams.get_mut(&id).ok_or(ConnectionError::Closed)?;
        if stream.accepted {
            return Err(violation(
                ErrorCode::ProtocolError,
                format!("second STREAM_OPEN_ACK on stream {id}"),
            ));
        }
        stream.accepted = true;
        self.events.push_back(Event::StreamAccepted(id));
        Ok(())
    }

    fn on_stream_data(&mut self, data: StreamData) -> Result {
        let id = data.stream_id;
        let len = data.data.len();
        if self.session_recv.on_receive(len).is_err() {
            return Err(violation(
                ErrorCode::FlowControl,
                "STREAM_DATA exceeds the session window",
            ));
        }
        self.stats.data_bytes_received += len as u64;
        if !self.check_stream_id(id, "STREAM_DATA")? {
            // Late data for a closed stream: nobody will consume it, so its session credit
            // goes straight back.
            self.release_session_credit(len);
            return Ok(());
        }
        let role = self.role;
        let stream = self.streams.get_mut(&id).ok_or(ConnectionError::Closed)?;
        if stream.kind != StreamKind::Tcp {
            return Err(violation(
                ErrorCode::ProtocolError,
                format!("STREAM_DATA on udp stream {id}"),
            ));
        }
        if stream.fin_received {
            return Err(violation(
                ErrorCode::ProtocolError,
                format!("STREAM_DATA after STREAM_FIN on stream {id}"),
            ));
        }
        if role == Role::Client && !stream.accepted {
            return Err(violation(
                ErrorCode::ProtocolError,
                format!("STREAM_DATA before STREAM_OPEN_ACK on stream {id}"),
            ));
        }
        if stream.recv.on_receive(len).is_err() {
            return Err(violation(
                ErrorCode::FlowControl,
                format!("STREAM_DATA exceeds the window of stream {id}"),
            ));
        }
        self.events.push_back(Event::StreamData {
            stream_id: id,
            data: data.data,
        });
        Ok(())
    }

    fn on_stream_fin(&mut self, id: StreamId) -> Result {
        if !self.check_stream_id(id, "STREAM_FIN")? {
            return Ok(());
        }
        let role = self.role;
        let stream = self.streams.get_mut(&id).ok_or(ConnectionError::Closed)?;
        if stream.fin_received {
            return Err(violation(
                ErrorCode::ProtocolError,
                format!("second STREAM_FIN on stream {id}"),
            ));
        }
        if role == Role::Client && !stream.accepted {
            return Err(violation(
                ErrorCode::ProtocolError,
                format!("STREAM_FIN before STREAM_OPEN_ACK on stream {id}"),
            ));
        }
        stream.fin_received = true;
        if stream.is_drained() {
            self.streams.remove(&id);
        }
        self.events.push_back(Event::StreamFinished(id));
        Ok(())
    }

    fn on_stream_reset(&mut self, reset: StreamReset) -> Result {
        let id = reset.stream_id;
        if !self.check_stream_id(id, "STREAM_RESET")? {
            return Ok(());
        }
        if let Some(stream) = self.streams.remove(&id) {
            self.ready.retain(|s| *s != id);
            self.datagrams.retain(|d| d.stream_id != id);
            self.release_session_credit(stream.recv.unconsumed() as usize);
        }
        self.events.push_back(Event::StreamReset {
            stream_id: id,
            code: reset.code,
        });
        Ok(())
    }

    fn on_window_update(&mut self, update: WindowUpdate) -> Result {
        let id = update.stream_id;
        if id.is_session() {
            if self.session_send.grant(update.increment).is_err() {
                return Err(violation(
                    ErrorCode::FlowControl,
                    "session window above 2^31-1",
                ));
            }
            // Streams with queued data were waiting only for session credit; the scheduler
            // picks them up on the next poll_transmit.
            return Ok(());
        }
        if !self.check_stream_id(id, "WINDOW_UPDATE")? {
            return Ok(());
        }
        let stream = self.streams.get_mut(&id).ok_or(ConnectionError::Closed)?;
        if stream.send_credit.grant(update.increment).is_err() {
            return Err(violation(
                ErrorCode::FlowControl,
                format!("window of stream {id} above 2^31-1"),
            ));
        }
        if stream.write_blocked && stream.can_write() {
            stream.write_blocked = false;
            self.events.push_back(Event::StreamWritable(id));
        }
        Ok(())
    }

    fn on_datagram(&mut self, datagram: Datagram) -> Result {
        let id = datagram.stream_id;
        if !self.check_stream_id(id, "DATAGRAM")? {
            return Ok(());
        }
        let stream = self.streams.get(&id).ok_or(ConnectionError::Closed)?;
        if stream.kind != StreamKind::Udp {
            return Err(violation(
                ErrorCode::ProtocolError,
                format!("DATAGRAM on tcp stream {id}"),
            ));
        }
        if stream.fin_received {
            return Err(violation(
                ErrorCode::ProtocolError,
                format!("DATAGRAM after STREAM_FIN on stream {id}"),
            ));
        }
        if self.role == Role::Client && !stream.accepted {
            return Err(violation(
                ErrorCode::ProtocolError,
                format!("DATAGRAM before STREAM_OPEN_ACK on stream {id}"),
            ));
        }
        self.events.push_back(Event::Datagram(datagram));
        Ok(())
    }

    fn on_go_away(&mut self, goaway: GoAway) -> Result {
        let last = goaway.last_stream_id;
        self.goaway_received = Some(last);
        if self.role == Role::Client {
            // Streams above the last id will not be processed; report them so the driver can
            // retry them on a new session.
            let refused: Vec<StreamId> = self
                .streams
                .range(StreamId(last.0.saturating_add(1))..)
                .map(|(id, _)| *id)
                .collect();
            for id in refused {
                if let Some(stream) = self.streams.remove(&id) {
                    self.ready.retain(|s| *s != id);
                    self.release_session_credit(stream.recv.unconsumed() as usize);
                    self.events.push_back(Event::StreamReset {
                        stream_id: id,
                        code: ResetCode::GoingAway,
                    });
                }
            }
        }
        self.events.push_back(Event::GoAway(goaway));
        Ok(())
    }
}
