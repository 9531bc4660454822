//! The session's share of the gateway-wide gauges: bytes it holds, live streams by kind.

use std::sync::atomic::Ordering;

use crate::metrics as m;
use crate::stats::{GatewayStats, SessionStatsGuard};

use super::streams::StreamTable;

/// What this session last added to the gauges.
#[derive(Debug)]
pub(super) struct Gauges {
    stats: SessionStatsGuard,
    /// Live (tcp, udp) streams last added to the gateway-wide counters.
    reported_streams: (usize, usize),
}

impl Gauges {
    pub fn new(stats: SessionStatsGuard) -> Self {
        Gauges {
            stats,
            reported_streams: (0, 0),
        }
    }

    /// The session's own counters.
    pub fn session(&self) -> &SessionStatsGuard {
        &self.stats
    }

    /// Brings the gauges up to date: `queued` bytes in the connection, plus what the streams
    /// hold.
    pub fn update(&mut self, queued: usize, streams: &StreamTable, gateway: &GatewayStats) {
        let (up, granted) = streams.held_bytes();
        let held = queued + up + granted;
        let before = self.stats.stats().buffered_bytes.load(Ordering::Relaxed);
        self.stats.stats().set_buffered(held);
        if held != before {
            metrics::gauge!(m::BUFFERED_BYTES).increment(held as f64 - before as f64);
        }
        let (tcp, udp) = streams.count_by_kind();
        let (old_tcp, old_udp) = self.reported_streams;
        if (tcp, udp) != (old_tcp, old_udp) {
            metrics::gauge!(m::STREAMS_ACTIVE, "kind" => "tcp")
                .increment(tcp as f64 - old_tcp as f64);
            metrics::gauge!(m::STREAMS_ACTIVE, "kind" => "udp")
                .increment(udp as f64 - old_udp as f64);
            let active = &gateway.streams_active;
            active.fetch_add(tcp + udp, Ordering::Relaxed);
            active.fetch_sub(old_tcp + old_udp, Ordering::Relaxed);
            self.reported_streams = (tcp, udp);
        }
    }
}
