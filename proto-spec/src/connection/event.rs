//! What a [`crate::Connection`] tells its driver happened.

use std::time::Duration;

use bytes::Bytes;

use crate::codes::ResetCode;
use crate::frame::{Datagram, ErrorFrame, GoAway, Hello, HelloAck, HelloError, StreamOpen};
use crate::stream::StreamId;

/// Something the driver must act on. Read them with [`crate::Connection::poll_event`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// Server: a client said HELLO. Answer with `accept_hello` or `reject_hello`.
    HelloReceived(Hello),
    /// Client: the server accepted the HELLO; the session is established.
    HelloAccepted(HelloAck),
    /// Client: the server refused the HELLO; the session is over.
    HelloRejected(HelloError),
    /// Server: the client opened a stream. Connect the target, then `accept_stream` or
    /// `reset`. Early data is in the frame and must be `consume`d like stream data.
    StreamOpened(StreamOpen),
    /// Client: the server connected the stream's target.
    StreamAccepted(StreamId),
    /// Stream bytes arrived. Call `consume` once they are passed on, to grant credit.
    StreamData {
        /// The stream.
        stream_id: StreamId,
        /// The bytes.
        data: Bytes,
    },
    /// The peer will send no more bytes on the stream.
    StreamFinished(StreamId),
    /// The peer reset the stream (or refused to open it); its state is gone.
    StreamReset {
        /// The stream.
        stream_id: StreamId,
        /// Why.
        code: ResetCode,
    },
    /// A stream whose `write` was cut short can take more data.
    StreamWritable(StreamId),
    /// A UDP datagram arrived.
    Datagram(Datagram),
    /// A PONG answered our PING.
    Pong {
        /// The measured round-trip time.
        rtt: Duration,
    },
    /// The peer is draining: open no new streams on this session.
    GoAway(GoAway),
    /// The peer ended the session with an ERROR frame.
    PeerError(ErrorFrame),
}
