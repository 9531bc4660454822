//! Read credit for the upstream readers: a stream task reads from its target only what
//! `Connection::write` will take, so nothing waits in the gateway beyond the client's windows.

use httvps_proto::{Connection, StreamId};

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
    /// Each stream's wanted credit, then its share (kept to reuse the allocation).
    wants: Vec<(StreamId, usize)>,
}

impl ReadCredit {
    /// Bytes written to the connection and not yet sent.
    pub fn queued(&self, conn: &Connection) -> usize {
        self.written_down
            .saturating_sub(conn.stats().data_bytes_sent) as usize
    }

    /// Hands each TCP stream task the read credit it may use: what `Connection::write` would
    /// accept now, minus what it was already granted, within an equal share of the session's
    /// room (what one stream does not want goes to the others).
    pub fn grant(&mut self, conn: &Connection, streams: &mut StreamTable) {
        if !conn.is_established() {
            return;
        }
        let queued = self.queued(conn);
        let (_, granted_total) = streams.held_bytes();
        // Session-wide bound: never hold more for the client than its session window, even
        // when every stream has stream credit left (the proto API shows no session credit).
        let session_cap = conn.peer_limits().session_window as usize;
        let session_room = session_cap.saturating_sub(queued + granted_total);
        let mut new_stalls = 0u64;
        self.wants.clear();
        for (id, entry) in streams.iter_mut() {
            if !entry.acked {
                continue;
            }
            let StreamIo::Tcp {
                granted,
                download_done,
                ..
            } = &entry.io
            else {
                continue;
            };
            if !*download_done {
                let writable = conn.writable_bytes(*id);
                self.wants.push((*id, writable.saturating_sub(*granted)));
            }
        }
        fair_shares(&mut self.wants, session_room);
        for &(id, share) in &self.wants {
            let Some(entry) = streams.get_mut(id) else {
                continue;
            };
            let StreamIo::Tcp {
                read_credit,
                granted,
                stalled,
                ..
            } = &mut entry.io
            else {
                continue;
            };
            if share > 0 && (share >= MIN_GRANT || *granted == 0) {
                read_credit.add_permits(share);
                *granted += share;
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

/// Replaces each want in `wants` by its share of `room`, filling the smallest wants first: no
/// share exceeds its want, and the room is split equally among the wants larger than their
/// share (max-min fairness), so the order of the streams decides nothing.
fn fair_shares(wants: &mut [(StreamId, usize)], mut room: usize) {
    wants.sort_unstable_by_key(|&(_, want)| want);
    let n = wants.len();
    for (i, (_, want)) in wants.iter_mut().enumerate() {
        let share = (*want).min(room / (n - i));
        room -= share;
        *want = share;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(wants: &[usize], room: usize) -> Vec<usize> {
        let mut w: Vec<(StreamId, usize)> = wants
            .iter()
            .enumerate()
            .map(|(i, &want)| (StreamId(i as u32 + 1), want))
            .collect();
        fair_shares(&mut w, room);
        w.sort_unstable_by_key(|&(id, _)| id);
        w.into_iter().map(|(_, share)| share).collect()
    }

    #[test]
    fn scarce_room_is_split_equally_whatever_the_order() {
        assert_eq!(shares(&[500, 500, 500, 500], 400), vec![100; 4]);
        // The first stream in the table gets no more than the last.
        assert_eq!(shares(&[1_000_000, 10, 1_000_000], 210), vec![100, 10, 100]);
    }

    #[test]
    fn what_a_stream_does_not_want_goes_to_the_others() {
        assert_eq!(shares(&[50, 1000, 1000], 1000), vec![50, 475, 475]);
        assert_eq!(shares(&[50, 60, 70], 1000), vec![50, 60, 70]);
        assert_eq!(shares(&[], 1000), Vec::<usize>::new());
        assert_eq!(shares(&[10, 10], 0), vec![0, 0]);
    }
}
