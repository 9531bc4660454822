//! Flow-control arithmetic shared by every stream and the session: the sender's credit and the
//! receiver's window with its update policy and bandwidth-delay auto-tuning.

use std::time::{Duration, Instant};

use crate::limits::MAX_WINDOW;

/// Credit the peer granted us: bytes we may still send.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SendCredit {
    available: u64,
}

/// The peer granted credit that would take the window past 2^31 - 1.
#[derive(Debug)]
pub(crate) struct CreditOverflow;

impl SendCredit {
    pub(crate) fn new(initial: u32) -> Self {
        SendCredit {
            available: u64::from(initial),
        }
    }

    pub(crate) fn available(&self) -> u64 {
        self.available
    }

    pub(crate) fn grant(&mut self, increment: u32) -> Result<(), CreditOverflow> {
        let next = self.available + u64::from(increment);
        if next > u64::from(MAX_WINDOW) {
            return Err(CreditOverflow);
        }
        self.available = next;
        Ok(())
    }

    /// Takes up to `wanted` bytes of credit and returns how many were taken.
    pub(crate) fn take(&mut self, wanted: usize) -> usize {
        let n = (wanted as u64).min(self.available);
        self.available -= n;
        n as usize
    }
}

/// The peer sent more than the credit we granted.
#[derive(Debug)]
pub(crate) struct WindowExceeded;

/// Our receive window: how much the peer may still send, and when to grant more.
///
/// Credit is returned as the application *consumes* bytes, not as they arrive, so the memory a
/// slow reader can make us hold is bounded by `window`. When the consumed-but-unannounced bytes
/// reach half the window we announce them. If a whole window was consumed within two round
/// trips, the link is faster than the window allows and the window doubles, up to `max_window`
/// (growing toward the bandwidth-delay product).
#[derive(Clone, Copy, Debug)]
pub(crate) struct RecvWindow {
    window: u32,
    max_window: u32,
    /// Credit the peer still holds.
    peer_credit: u64,
    /// Received and not yet consumed by the application.
    unconsumed: u64,
    /// Consumed and not yet announced in a WINDOW_UPDATE.
    unannounced: u64,
    /// When the last update was sent (start of the current auto-tuning epoch).
    epoch_start: Option<Instant>,
}

impl RecvWindow {
    pub(crate) fn new(window: u32, max_window: u32) -> Self {
        RecvWindow {
            window,
            max_window: max_window.max(window),
            peer_credit: u64::from(window),
            unconsumed: 0,
            unannounced: 0,
            epoch_start: None,
        }
    }

    pub(crate) fn window(&self) -> u32 {
        self.window
    }

    pub(crate) fn unconsumed(&self) -> u64 {
        self.unconsumed
    }

    pub(crate) fn on_receive(&mut self, n: usize) -> Result<(), WindowExceeded> {
        let n = n as u64;
        if n > self.peer_credit {
            return Err(WindowExceeded);
        }
        self.peer_credit -= n;
        self.unconsumed += n;
        Ok(())
    }

    /// Records that the application consumed `n` bytes (at most [`Self::unconsumed`]) and
    /// returns the increment to announce now, if any.
    pub(crate) fn on_consume(
        &mut self,
        n: usize,
        now: Instant,
        rtt: Option<Duration>,
    ) -> Option<u32> {
        let n = (n as u64).min(self.unconsumed);
        self.unconsumed -= n;
        self.unannounced += n;
        if self.unannounced < u64::from(self.window / 2) {
            return None;
        }
        let mut growth = 0u64;
        if let (Some(start), Some(rtt)) = (self.epoch_start, rtt) {
            let fast = now.saturating_duration_since(start) < rtt * 2;
            if fast && self.window < self.max_window {
                let grown = (u64::from(self.window) * 2).min(u64::from(self.max_window));
                growth = grown - u64::from(self.window);
                self.window = grown as u32;
            }
        }
        self.epoch_start = Some(now);
        let increment = self.unannounced + growth;
        self.unannounced = 0;
        self.peer_credit += increment;
        // The peer's credit never exceeds the window, so the increment fits in 2^31 - 1.
        Some(increment.min(u64::from(MAX_WINDOW)) as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_credit_is_never_exceeded_and_overflow_is_refused() {
        let mut c = SendCredit::new(100);
        assert_eq!(c.take(60), 60);
        assert_eq!(c.take(60), 40);
        assert_eq!(c.take(1), 0);
        c.grant(10).unwrap();
        assert_eq!(c.available(), 10);
        assert!(c.grant(MAX_WINDOW).is_err());
        assert_eq!(c.available(), 10, "a refused grant changes nothing");
    }

    #[test]
    fn window_refuses_excess_and_updates_at_half() {
        let now = Instant::now();
        let mut w = RecvWindow::new(1000, 1000);
        w.on_receive(1000).unwrap();
        assert!(w.on_receive(1).is_err());
        assert_eq!(w.on_consume(499, now, None), None);
        assert_eq!(w.on_consume(1, now, None), Some(500));
        w.on_receive(500).unwrap();
        assert!(w.on_receive(1).is_err());
    }

    #[test]
    fn window_grows_when_consumed_within_two_rtts_and_stops_at_max() {
        let t0 = Instant::now();
        let rtt = Some(Duration::from_millis(50));
        let mut w = RecvWindow::new(1000, 4000);
        w.on_receive(1000).unwrap();
        assert_eq!(
            w.on_consume(1000, t0, rtt),
            Some(1000),
            "first epoch only starts the clock"
        );
        w.on_receive(1000).unwrap();
        let inc = w
            .on_consume(1000, t0 + Duration::from_millis(10), rtt)
            .unwrap();
        assert_eq!((w.window(), inc), (2000, 2000));
        w.on_receive(2000).unwrap();
        let inc = w
            .on_consume(2000, t0 + Duration::from_millis(20), rtt)
            .unwrap();
        assert_eq!((w.window(), inc), (4000, 4000));
        w.on_receive(4000).unwrap();
        let inc = w
            .on_consume(4000, t0 + Duration::from_millis(30), rtt)
            .unwrap();
        assert_eq!((w.window(), inc), (4000, 4000), "capped at max_window");
        // A slow consumer (epoch longer than 2 RTT) does not grow the window.
        let mut slow = RecvWindow::new(1000, 4000);
        slow.on_receive(1000).unwrap();
        slow.on_consume(1000, t0, rtt);
        slow.on_receive(1000).unwrap();
        slow.on_consume(1000, t0 + Duration::from_secs(1), rtt);
        assert_eq!(slow.window(), 1000);
    }
}
