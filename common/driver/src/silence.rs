//! Nothing for the unauthenticated (SPEC §4.1, §13.4): before a valid HELLO the gateway sends no
//! ERROR and no text, and closes only after a random delay, so a prober that completed the
//! upgrade learns neither what it did wrong nor when the gateway gave up.
//!
//! HELLO_ERROR keeps its code (a conforming client needs it), but its message goes unless the
//! device proved its token: `auth_failed`, `rate_limited`, `unsupported_version` and `internal`
//! are decided before or without that, the other codes after it.

use std::time::Duration;

use bytes::Bytes;
use httvps_proto::HelloErrorCode;

/// Type byte of HELLO_ERROR.
const HELLO_ERROR: u8 = 0x03;
/// Type byte of ERROR.
const ERROR: u8 = 0x0E;
/// Header, code and `retry_after_ms` of HELLO_ERROR: what is left without its message.
const HELLO_ERROR_WITHOUT_MESSAGE: usize = 6 + 2 + 4;

/// What the session withheld from an unauthenticated peer.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quiet {
    /// The close waits [`close_delay`].
    pub close: bool,
    /// An ERROR was not sent (so the close code says nothing either).
    pub error_dropped: bool,
}

/// What happens to a frame queued before the handshake completed.
#[derive(Debug, PartialEq, Eq)]
pub enum Outgoing {
    /// Sent as it is.
    Send(Bytes),
    /// Sent, and the peer is unauthenticated: the close waits ([`close_delay`]).
    SendQuietly(Bytes),
    /// Not sent (an ERROR to an unauthenticated peer); the close waits.
    Drop,
}

/// Applies the rules above to `frame`, queued while the handshake is `established` or not.
pub fn outgoing(frame: Bytes, established: bool) -> Outgoing {
    if established {
        return Outgoing::Send(frame);
    }
    match frame.first() {
        Some(&ERROR) => Outgoing::Drop,
        Some(&HELLO_ERROR) if frame.len() >= HELLO_ERROR_WITHOUT_MESSAGE => {
            let code = HelloErrorCode::from(u16::from_be_bytes([frame[6], frame[7]]));
            if after_authentication(code) {
                Outgoing::Send(frame)
            } else {
                Outgoing::SendQuietly(frame.slice(..HELLO_ERROR_WITHOUT_MESSAGE))
            }
        }
        _ => Outgoing::Send(frame),
    }
}

/// Whether the gateway refuses with `code` only once the device's token matched.
fn after_authentication(code: HelloErrorCode) -> bool {
    matches!(
        code,
        HelloErrorCode::Revoked
            | HelloErrorCode::Expired
            | HelloErrorCode::QuotaExceeded
            | HelloErrorCode::TooManySessions
            | HelloErrorCode::RegionNotAllowed
    )
}

/// A delay uniformly drawn from `[max / 10, max]` (1–10 s by default).
pub fn close_delay(max: Duration) -> Duration {
    let low = max / 10;
    low + (max - low).mul_f64(rand::random::<f64>())
}

/// The next WebSocket Ping after `interval` × uniform[0.7, 1.0]: never an exact period.
pub fn ping_delay(interval: Duration) -> Duration {
    interval.mul_f64(0.7 + 0.3 * rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use httvps_proto::frame::{Frame, HelloError};
    use httvps_proto::ErrorCode;

    fn encode(frame: Frame) -> Bytes {
        frame.to_bytes()
    }

    #[test]
    fn errors_go_and_unauthenticated_hello_errors_lose_their_text() {
        let error = encode(Frame::Error(httvps_proto::frame::ErrorFrame::new(
            ErrorCode::HandshakeTimeout,
            "no HELLO in time",
        )));
        assert_eq!(outgoing(error.clone(), false), Outgoing::Drop);
        assert_eq!(outgoing(error.clone(), true), Outgoing::Send(error));
        for code in [
            HelloErrorCode::AuthFailed,
            HelloErrorCode::RateLimited,
            HelloErrorCode::UnsupportedVersion,
            HelloErrorCode::Internal,
        ] {
            let frame = encode(Frame::HelloError(HelloError::new(code, 5000, "try again")));
            let Outgoing::SendQuietly(sent) = outgoing(frame, false) else {
                panic!("{code}: sent quietly");
            };
            let decoded = Frame::decode(sent, 16_384).unwrap();
            let Frame::HelloError(e) = decoded else {
                panic!("still a HELLO_ERROR")
            };
            assert_eq!(
                (e.code, e.retry_after_ms, e.message.as_str()),
                (code, 5000, "")
            );
        }
        let quota = encode(Frame::HelloError(HelloError::new(
            HelloErrorCode::TooManySessions,
            0,
            "too many sessions: this device has 2 live",
        )));
        assert_eq!(outgoing(quota.clone(), false), Outgoing::Send(quota));
    }

    #[test]
    fn delays_are_random_within_their_bounds() {
        let max = Duration::from_secs(10);
        let delays: Vec<Duration> = (0..200).map(|_| close_delay(max)).collect();
        assert!(delays
            .iter()
            .all(|d| *d >= Duration::from_secs(1) && *d <= max));
        assert!(delays.windows(2).any(|w| w[0] != w[1]));
        let interval = Duration::from_secs(25);
        let pings: Vec<Duration> = (0..200).map(|_| ping_delay(interval)).collect();
        assert!(pings
            .iter()
            .all(|d| *d >= interval.mul_f64(0.7) && *d <= interval));
        assert!(pings.windows(2).any(|w| w[0] != w[1]));
    }
}
