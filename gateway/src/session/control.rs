//! The control plane's view of one session: a small task beside the session that sends its
//! heartbeat every interval, registers it late when the control plane was unreachable at HELLO,
//! and tells the session to end (kill, revocation, expiry), to move to another node (failover),
//! or when its access ends now (a renewal moves it). The session asks for a heartbeat at once
//! when its end time comes. The session aborts it when it ends, then reports the end itself.

use std::sync::Arc;
use std::time::Duration;

use httvps_proto::ErrorCode;
use tokio::sync::{mpsc, Notify};
use uuid::Uuid;

use crate::control_plane::{ControlPlaneClient, CpError};
use crate::metrics as m;
use crate::upstream::SessionNode;

pub use crate::shared::command::ControlEvent;

/// The ERROR code for a control plane's end reason.
pub fn error_code_for(reason: &str) -> ErrorCode {
    match reason {
        "expired" => ErrorCode::Expired,
        "quota_exceeded" => ErrorCode::QuotaExceeded,
        // `killed`, `revoked` and anything newer: the session is no longer allowed.
        _ => ErrorCode::Revoked,
    }
}

/// Everything the control task needs.
#[derive(Debug)]
pub struct ControlTask {
    /// The client.
    pub client: Arc<ControlPlaneClient>,
    /// The session's id at the control plane.
    pub session_id: Uuid,
    /// Its device.
    pub device_id: String,
    /// Its region preference.
    pub region: Option<String>,
    /// Whether the session start was recorded (false: the control plane was unreachable).
    pub registered: bool,
    /// Heartbeat interval.
    pub interval: Duration,
    /// The session's node slot (failover moves it).
    pub node: Arc<SessionNode>,
    /// Reports to the session.
    pub events: mpsc::Sender<ControlEvent>,
    /// The session asks for a heartbeat now (its access end time has come).
    pub check_now: Arc<Notify>,
}

impl ControlTask {
    /// Runs until the session ends it (abort) or it tells the session to end.
    pub async fn run(mut self) {
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + self.interval, self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = self.check_now.notified() => {}
            }
            // The calls are boxed: their HTTP state exists only while they run, not in the
            // task's future that every session holds between heartbeats.
            if !self.registered {
                let node = self.node.current_id();
                match Box::pin(self.client.start_session(
                    self.session_id,
                    &self.device_id,
                    node.as_deref(),
                    self.region.as_deref(),
                ))
                .await
                {
                    Ok(()) => {
                        tracing::info!(session = %self.session_id, "session registered late");
                        self.registered = true;
                    }
                    Err(CpError::Refused {
                        status: 403, code, ..
                    }) => {
                        self.end(code.as_str()).await;
                        return;
                    }
                    Err(e @ CpError::Refused { status: 409, .. }) => {
                        // Started during an outage beyond the plan's limit: the session keeps
                        // running (it was admitted from the cache) but stays unregistered.
                        tracing::warn!(session = %self.session_id, error = %e, "late session registration refused");
                        self.registered = true;
                        continue;
                    }
                    Err(e) => {
                        tracing::debug!(session = %self.session_id, error = %e, "session registration failed");
                        continue;
                    }
                }
            }
            match Box::pin(self.client.heartbeat_session(self.session_id)).await {
                Ok(answer) => {
                    if let Some(reason) = answer.end {
                        self.end(reason.as_str()).await;
                        return;
                    }
                    if let Some(node) = answer.node_id {
                        self.node.move_to(&node);
                    }
                    if let Some(ends) = answer.expires_at_ms {
                        let _ = self.events.send(ControlEvent::AccessEnds(ends)).await;
                    }
                }
                Err(CpError::Refused { status: 404, .. }) => {
                    // Unknown (e.g. reaped as stale during an outage): register it again.
                    self.registered = false;
                }
                Err(e) => {
                    metrics::counter!(m::CONTROL_PLANE_ERRORS_TOTAL, "call" => "session_heartbeat")
                        .increment(1);
                    tracing::debug!(session = %self.session_id, error = %e, "session heartbeat failed");
                }
            }
        }
    }

    async fn end(&self, reason: &str) {
        let code = error_code_for(reason);
        metrics::counter!(m::SESSIONS_ENDED_BY_CONTROL_PLANE_TOTAL, "reason" => code.name())
            .increment(1);
        let _ = self
            .events
            .send(ControlEvent::End {
                code,
                reason: reason.to_owned(),
            })
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_reasons_map_to_error_codes() {
        assert_eq!(error_code_for("killed"), ErrorCode::Revoked);
        assert_eq!(error_code_for("revoked"), ErrorCode::Revoked);
        assert_eq!(error_code_for("expired"), ErrorCode::Expired);
    }
}
