//! Read credit for the upstream readers: a stream task reads from its target only what
//! `Connection::write` will take, so nothing waits in the gateway beyond the client's windows.

use httvps_proto::Connection;

use super::streams::{StreamIo, StreamTable};
use crate::metrics as m;

/// Read credit is handed to a stream task in steps of at least this much (unless it has none).
const MIN_GRANT: usize = 8 * 1024;

/// What the session handed down and what it counted as stalls.
#[derive(Debug, Default)]
pub(super) struct ReadCredit {
    /// STREAM_DATA bytes handed to `Connection::write` (minus what it sent = queued there).
    pub written_down: u64,
    /// The connection's stall count already reported.
    proto_stalls: u64,
}

impl ReadCredit {
    /// Bytes written to the connection and not yet sent.
    pub fn queued(&self, conn: &Connection) -> usize {
        self.written_down
            .saturating_sub(conn.stats().data_bytes_sent) as usize
    }

    /// Hands each TCP stream task the read credit it may use: what `Connection::write` would
    /// accept now, minus what it was already granted, within the session's share.
    pub fn grant(&mut self, conn: &Connection, streams: &mut StreamTable) {
        if !conn.is_established() {
            return;
        }
        let queued = self.queued(conn);
        let (_, granted_total) = streams.held_bytes();
        // Session-wide bound: never hold more for the client than its session window, even
        // when every stream has stream credit left (the proto API shows no session credit).
        let session_cap = conn.peer_limits().session_window as usize;
        let mut session_room = session_cap.saturating_sub(queued + granted_total);
        let mut new_stalls = 0u64;
        for (id, entry) in streams.iter_mut() {
            if !entry.acked {
                continue;
            }
            let StreamIo::Tcp {
                read_credit,
                granted,
                download_done,
                stalled,
                ..
            } = &mut entry.io
            else {
                continue;
            };
            if *download_done {
                continue;
            }
            let writable = conn.writable_bytes(*id);
            let room = writable.saturating_sub(*granted).min(session_room);
            if room > 0 && (room >= MIN_GRANT || *granted == 0) {
                read_credit.add_permits(room);
                *granted += room;
                session_room -= room;
            }
            let now_stalled = *granted == 0;
            if now_stalled && !*stalled {
                new_stalls += 1;
            }
            *stalled = now_stalled;
        }
        let proto_stalls = conn.stats().flow_control_stalls;
        new_stalls += proto_stalls.saturating_sub(self.proto_stalls);
        self.proto_stalls = proto_stalls;
        if new_stalls > 0 {
            metrics::counter!(m::FLOW_CONTROL_STALLS_TOTAL).increment(new_stalls);
        }
    }
}
