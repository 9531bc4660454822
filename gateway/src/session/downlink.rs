//! What the stream tasks report: connected or refused targets, upstream bytes for the client
//! (within the read credit they were granted), EOFs, bytes written upstream (credit back to
//! the client), datagrams, failures.

use std::sync::atomic::Ordering;

use httvps_driver::Core;
use httvps_proto::{ResetCode, StreamKind};

use super::app::GatewaySession;
use super::streams::StreamIo;
use crate::metrics as m;
use crate::upstream::StreamEvent;

impl GatewaySession {
    pub(super) fn on_stream_event(&mut self, core: &mut Core, event: StreamEvent) {
        let now = core.now();
        match event {
            StreamEvent::Connected { id, node } => {
                let Some(entry) = self.streams.get_mut(id) else {
                    return;
                };
                entry.acked = true;
                entry.load = Some(self.ctx.state.loads.track(node.clone()));
                entry.node = Some(node);
                let kind = if entry.is_tcp() { "tcp" } else { "udp" };
                let udp_finished = matches!(entry.io, StreamIo::Udp { datagrams: None });
                if core.conn_mut().accept_stream(id).is_err() {
                    self.streams.remove(id);
                    return;
                }
                if udp_finished {
                    let _ = core.conn_mut().finish(id);
                }
                self.ctx
                    .stats
                    .streams_accepted
                    .fetch_add(1, Ordering::Relaxed);
                metrics::counter!(m::STREAM_OPENS_TOTAL, "kind" => kind, "result" => "ok")
                    .increment(1);
            }
            StreamEvent::OpenFailed { id, code } => {
                let kind = match self.streams.remove(id) {
                    Some(e) if e.is_tcp() => StreamKind::Tcp,
                    Some(_) => StreamKind::Udp,
                    None => return,
                };
                tracing::debug!(stream = %id, code = %code, "stream refused");
                self.refuse(core, id, kind, code);
            }
            StreamEvent::Data { id, data } => {
                let len = data.len();
                let Some(entry) = self.streams.get_mut(id) else {
                    return;
                };
                let node = entry.node.clone();
                if let StreamIo::Tcp { granted, .. } = &mut entry.io {
                    *granted = granted.saturating_sub(len);
                }
                match core.conn_mut().write(id, data) {
                    Ok(taken) if taken == len => {
                        self.credit.written_down += len as u64;
                        self.gauges
                            .session()
                            .stats()
                            .bytes_down
                            .fetch_add(len as u64, Ordering::Relaxed);
                        metrics::counter!(m::BYTES_TOTAL, "direction" => "down")
                            .increment(len as u64);
                        self.count_usage(core, node.as_ref(), 0, len as u64);
                    }
                    Ok(taken) => {
                        // Grants never exceed writable_bytes, so this is a bug; fail the
                        // stream rather than corrupt it.
                        tracing::error!(stream = %id, taken, len, "write took less than granted");
                        self.credit.written_down += taken as u64;
                        self.streams.remove(id);
                        let _ = core.conn_mut().reset(id, ResetCode::Internal);
                    }
                    Err(_) => {
                        // The client reset or finished the stream meanwhile.
                        self.streams.remove(id);
                    }
                }
            }
            StreamEvent::Eof { id } => {
                if let Some(entry) = self.streams.get_mut(id) {
                    if let StreamIo::Tcp { download_done, .. } = &mut entry.io {
                        *download_done = true;
                    }
                    let _ = core.conn_mut().finish(id);
                }
            }
            StreamEvent::Consumed { id, bytes } => {
                let mut node = None;
                if let Some(entry) = self.streams.get_mut(id) {
                    entry.unconsumed = entry.unconsumed.saturating_sub(bytes);
                    node = entry.node.clone();
                }
                self.count_usage(core, node.as_ref(), bytes as u64, 0);
                let _ = core.conn_mut().consume(id, bytes, now);
                self.gauges
                    .session()
                    .stats()
                    .bytes_up
                    .fetch_add(bytes as u64, Ordering::Relaxed);
                metrics::counter!(m::BYTES_TOTAL, "direction" => "up").increment(bytes as u64);
            }
            StreamEvent::Datagram { id, from, data } => {
                let len = data.len() as u64;
                if let Some(entry) = self.streams.get_mut(id) {
                    let addr = from.filter(|f| *f != entry.target);
                    let node = entry.node.clone();
                    // Too large or queue full: dropped, as UDP may.
                    if core.conn_mut().send_datagram(id, addr, data).is_ok() {
                        self.count_usage(core, node.as_ref(), 0, len);
                    }
                }
            }
            StreamEvent::Failed { id, code } => {
                if self.streams.remove(id).is_some() {
                    let _ = core.conn_mut().reset(id, code);
                }
            }
            StreamEvent::Done { id } => {
                self.streams.remove(id);
            }
        }
    }
}
