//! The session's own deadlines beside the loop's (handshake, idle, drain): when the device's
//! subscription ends, the grace for the control plane to confirm that end, and the maximum
//! lifetime.

use std::time::Duration;

use tokio::time::Instant;

use crate::shared::unix_ms;

/// How long a session past its subscription's end waits for the control plane to say a
/// renewal moved the end, before it ends with ERROR `expired`.
pub(super) const EXPIRY_CONFIRM_WAIT: Duration = Duration::from_millis(900);

/// Which deadline came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Due {
    /// The control plane did not move the end in time: the subscription is over.
    ExpiryConfirmed,
    /// The subscription's end time came: ask the control plane.
    SubscriptionEnd,
    /// The maximum lifetime is reached: drain.
    Lifetime,
}

/// The deadlines.
#[derive(Debug)]
pub(super) struct SessionClock {
    /// When the device's subscription ends (from its entitlement).
    pub subscription_end: Option<Instant>,
    /// The end time came and the control plane was asked: the session ends with ERROR
    /// `expired` at this deadline unless the answer moves the end (a renewal).
    pub expiry_confirm: Option<Instant>,
    /// `None` once reached (afterwards the drain's deadline governs).
    lifetime: Option<Instant>,
}

impl SessionClock {
    /// A clock whose lifetime ends `lifetime` from now.
    pub fn new(lifetime: Duration) -> Self {
        SessionClock {
            subscription_end: None,
            expiry_confirm: None,
            lifetime: Instant::now().checked_add(lifetime),
        }
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<Instant> {
        [self.subscription_end, self.expiry_confirm, self.lifetime]
            .into_iter()
            .flatten()
            .min()
    }

    /// The deadline that is due now (one at a time), cleared.
    pub fn take_due(&mut self) -> Option<Due> {
        let now = Instant::now();
        let due = |at: Option<Instant>| at.is_some_and(|at| now >= at);
        if due(self.expiry_confirm) {
            self.expiry_confirm = None;
            Some(Due::ExpiryConfirmed)
        } else if due(self.subscription_end) {
            self.subscription_end = None;
            Some(Due::SubscriptionEnd)
        } else if due(self.lifetime) {
            self.lifetime = None;
            Some(Due::Lifetime)
        } else {
            None
        }
    }

    /// Waits for the end confirmation from now on.
    pub fn confirm_expiry(&mut self) {
        self.expiry_confirm = Some(Instant::now() + EXPIRY_CONFIRM_WAIT);
    }

    /// The control plane says when access ends now (each heartbeat, and the answer to the one
    /// asked for at the end time).
    pub fn access_ends(&mut self, ends_at_ms: Option<i64>) {
        let now = Instant::now();
        match ends_at_ms {
            None => {
                self.subscription_end = None;
                self.expiry_confirm = None;
            }
            Some(at) => match u64::try_from(at - unix_ms()) {
                Ok(left) if left > 0 => {
                    self.subscription_end = Some(now + Duration::from_millis(left));
                    self.expiry_confirm = None;
                }
                // Past by this gateway's clock, not yet by the control plane's: end shortly.
                _ => {
                    self.subscription_end = None;
                    self.expiry_confirm.get_or_insert(now + EXPIRY_CONFIRM_WAIT);
                }
            },
        }
    }
}

/// A random extra lifetime in `0..=max`.
pub(super) fn jitter(max: Duration) -> Duration {
    if max.is_zero() {
        return Duration::ZERO;
    }
    Duration::from_millis(rand::random::<u64>() % (max.as_millis() as u64 + 1))
}
