//! After the close handshake: the session's log line and metrics, its slot and resume token in
//! the shared state, its last byte counts, and its end at the control plane.

use httvps_driver::Outcome;

use super::app::GatewaySession;
use crate::metrics as m;

impl GatewaySession {
    /// Logs and reports the end of the session.
    pub(super) async fn report(&mut self, outcome: &Outcome) {
        let code = outcome
            .close_code
            .unwrap_or(httvps_driver::close_code::NORMAL);
        if let Some(at) = outcome.established_at {
            metrics::gauge!(m::SESSIONS_ACTIVE).decrement(1.0);
            tracing::info!(
                peer = %self.peer,
                device = self.device(),
                duration_ms = at.elapsed().as_millis() as u64,
                close_code = code,
                "session ended"
            );
        }
        metrics::counter!(m::SESSIONS_TOTAL, "close_code" => code.to_string()).increment(1);
        self.report_end(outcome).await;
    }

    /// Tells the control plane the session ended and hands its last byte counts to the
    /// usage reporter.
    async fn report_end(&mut self, outcome: &Outcome) {
        let admission = std::mem::take(&mut self.admission);
        drop(admission.control);
        let ctx = self.ctx.clone();
        if let (Some(lease), Some(listing)) = (admission.lease, admission.listing) {
            ctx.state.directory.remove(&lease.session_id, &listing);
            let end = self.ending.session_end(outcome);
            ctx.state.release(&lease, &admission.resume_hash, end).await;
        }
        if let (Some(reporter), Some(usage)) = (&ctx.usage, admission.usage) {
            reporter.session_ended(&usage);
        }
        let (Some(cp), Some(id)) = (ctx.control_plane.clone(), admission.cp_session) else {
            return;
        };
        let reason = self.ending.reason(outcome);
        if let Err(e) = cp.end_session(id, &reason).await {
            metrics::counter!(m::CONTROL_PLANE_ERRORS_TOTAL, "call" => "session_end").increment(1);
            tracing::warn!(session = %id, error = %e, "could not report the session end (the control plane reaps it as stale)");
        }
    }
}
