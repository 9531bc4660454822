//! Why a client has no session, and how long it waits before trying again: the gateway's code
//! (so an application can tell `revoked` from `quota_exceeded` from an unreachable network) and
//! the delay of capped exponential backoff with jitter that honours the gateway's `retry_after`.

use std::fmt;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use rand::Rng;

use crate::config::Backoff;
use crate::error::Error;

/// The code of an outage where no gateway answered (network, TLS or WebSocket failure).
pub const UNREACHABLE: &str = "unreachable";
/// The code of a session that ended without an ERROR from the gateway (connection lost).
pub const CONNECTION_LOST: &str = "connection_lost";

/// A refusal by the service (revoked, expired, quota, wrong credentials) is retried no sooner
/// than this: it only changes when an operator or a renewal changes something.
const REFUSAL_MIN_DELAY: Duration = Duration::from_secs(5);

/// Why the client has no session now, and when it tries again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outage {
    /// A stable code: the gateway's HELLO_ERROR or session ERROR code (`revoked`, `expired`,
    /// `quota_exceeded`, `too_many_sessions`, `rate_limited`, ...), [`UNREACHABLE`] when no
    /// gateway could be reached, or [`CONNECTION_LOST`].
    pub code: String,
    /// What happened, for people: the gateway's message (for a session the control plane ended,
    /// its reason such as `killed`), or the network error.
    pub detail: String,
    /// The wait before the next attempt, as scheduled when this outage began.
    pub retry_in: Duration,
    /// The service refused the device ([`Error::is_permanent`]).
    refusal: bool,
}

impl fmt::Display for Outage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.detail.is_empty() && self.detail != self.code {
            write!(f, " ({})", self.detail)?;
        }
        write!(f, "; retrying in {:.1} s", self.retry_in.as_secs_f64())
    }
}

impl Outage {
    /// Whether the service refused the device (wrong or rotated credentials, revoked, expired,
    /// quota used up, region not allowed): only a change on the service's side, or new
    /// credentials, ends it.
    pub fn is_refusal(&self) -> bool {
        self.refusal
    }

    /// The outage after a failed attempt to connect.
    pub(crate) fn after_error(e: &Error, retry_in: Duration) -> Outage {
        let (code, detail) = match e {
            Error::Refused { code, message, .. } => (code.name().to_owned(), message.clone()),
            Error::SessionEnded { code, message } => (code.name().to_owned(), message.clone()),
            Error::Down(outage) => (outage.code.clone(), outage.detail.clone()),
            Error::Timeout => (UNREACHABLE.to_owned(), "timed out".to_owned()),
            other => (UNREACHABLE.to_owned(), other.to_string()),
        };
        Outage {
            code,
            detail,
            retry_in,
            refusal: match e {
                Error::Down(outage) => outage.refusal,
                other => other.is_permanent(),
            },
        }
    }

    /// The outage after a session ended: the gateway's ERROR code and message if it sent one.
    pub(crate) fn after_session(
        code: Option<httvps_proto::ErrorCode>,
        message: Option<&str>,
        ended: Option<&str>,
        retry_in: Duration,
    ) -> Outage {
        let refusal = code.is_some_and(|code| {
            Error::SessionEnded {
                code,
                message: String::new(),
            }
            .is_permanent()
        });
        Outage {
            refusal,
            code: code.map_or(CONNECTION_LOST.to_owned(), |c| c.name().to_owned()),
            detail: message
                .or(ended)
                .unwrap_or("the connection was lost")
                .to_owned(),
            retry_in,
        }
    }
}

/// The delays between consecutive failed attempts; starts again after a success.
pub(crate) struct RetrySchedule {
    backoff: Backoff,
    delays: ExponentialBackoff,
}

impl RetrySchedule {
    pub(crate) fn new(backoff: Backoff) -> RetrySchedule {
        RetrySchedule {
            backoff,
            delays: ExponentialBuilder::new()
                .with_min_delay(backoff.initial)
                .with_max_delay(backoff.max)
                .without_max_times()
                .build(),
        }
    }

    /// The wait after the failure `e`: the next exponential step (at most `max`), at least
    /// [`REFUSAL_MIN_DELAY`] after a refusal by the service, at least the gateway's
    /// `retry_after` (itself capped at `max_retry_after`), plus up to 20% jitter so that many
    /// clients refused at once do not return at once.
    pub(crate) fn after(&mut self, e: &Error) -> Duration {
        let mut delay = self
            .delays
            .next()
            .unwrap_or(self.backoff.max)
            .min(self.backoff.max);
        if e.is_permanent() {
            delay = delay.max(REFUSAL_MIN_DELAY.min(self.backoff.max));
        }
        if let Error::Refused {
            retry_after: Some(after),
            ..
        } = e
        {
            delay = delay.max((*after).min(self.backoff.max_retry_after));
        }
        delay.mul_f64(1.0 + rand::thread_rng().gen_range(0.0..0.2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use httvps_proto::HelloErrorCode;

    fn refused(code: HelloErrorCode, retry_after: Option<Duration>) -> Error {
        Error::Refused {
            code,
            message: String::new(),
            retry_after,
        }
    }

    fn backoff() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }

    #[test]
    fn delays_grow_to_the_cap_with_at_most_a_fifth_of_jitter() {
        let mut s = RetrySchedule::new(backoff());
        let unreachable = Error::Unreachable("refused".into());
        let delays: Vec<Duration> = (0..12).map(|_| s.after(&unreachable)).collect();
        assert!(delays[0] >= Duration::from_millis(100) && delays[0] <= Duration::from_millis(120));
        assert!(delays[3] >= Duration::from_millis(800), "{delays:?}");
        for d in &delays {
            assert!(*d <= Duration::from_secs(36), "capped: {delays:?}");
        }
        assert!(delays[11] >= Duration::from_secs(30), "{delays:?}");
    }

    #[test]
    fn a_refusal_waits_at_least_the_floor_and_retry_after_up_to_its_cap() {
        let mut s = RetrySchedule::new(backoff());
        let revoked = refused(HelloErrorCode::Revoked, None);
        assert!(s.after(&revoked) >= REFUSAL_MIN_DELAY);
        let mut s = RetrySchedule::new(backoff());
        let limited = refused(HelloErrorCode::RateLimited, Some(Duration::from_secs(50)));
        let d = s.after(&limited);
        assert!(
            d >= Duration::from_secs(50) && d <= Duration::from_secs(60),
            "{d:?}"
        );
        let mut s = RetrySchedule::new(backoff());
        let huge = refused(
            HelloErrorCode::TooManySessions,
            Some(Duration::from_secs(86_400)),
        );
        let d = s.after(&huge);
        assert!(
            d >= Duration::from_secs(120) && d <= Duration::from_secs(144),
            "{d:?}"
        );
    }

    #[test]
    fn outages_carry_the_gateways_code_and_message() {
        let o = Outage::after_error(
            &Error::Refused {
                code: HelloErrorCode::QuotaExceeded,
                message: "monthly quota used up".into(),
                retry_after: None,
            },
            Duration::from_secs(5),
        );
        assert_eq!(o.code, "quota_exceeded");
        assert!(o.is_refusal());
        assert_eq!(
            o.to_string(),
            "quota_exceeded (monthly quota used up); retrying in 5.0 s"
        );
        let o = Outage::after_session(
            Some(httvps_proto::ErrorCode::Revoked),
            Some("killed"),
            Some("the gateway ended the session: revoked"),
            Duration::from_millis(300),
        );
        assert_eq!(o.to_string(), "revoked (killed); retrying in 0.3 s");
        let o = Outage::after_session(None, None, Some("connection error: reset"), Duration::ZERO);
        assert_eq!(o.code, CONNECTION_LOST);
        assert!(!o.is_refusal());
        let o = Outage::after_error(&Error::Unreachable("TLS: bad cert".into()), Duration::ZERO);
        assert_eq!(o.code, UNREACHABLE);
    }
}
