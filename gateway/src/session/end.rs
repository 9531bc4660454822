//! Why a session ends: the decisions that end it from outside its connection (the control
//! plane, shared events, the subscription's end, the quota, the gateway's drain), and the
//! [`EndReason`] it is reported with, which decides whether its resume token is kept.

use std::sync::Arc;

use httvps_contract::{EndReason, Resumption};
use httvps_driver::{Core, Ended, Outcome};
use httvps_proto::ErrorCode;

use super::app::GatewaySession;
use super::clock::Due;
use crate::shared::command::ControlEvent;
use crate::shared::SessionEnd;

/// What the session knows about its end so far.
#[derive(Debug, Default)]
pub(super) struct Ending {
    /// A reason decided explicitly (expired, resumed, killed, ...); otherwise it follows from
    /// the ERROR code the session ended with.
    pub reason: Option<EndReason>,
    /// The gateway's drain signal came (SIGTERM).
    pub shutdown_seen: bool,
    /// The byte quota is used up: opens are refused.
    pub quota_exhausted: bool,
}

impl Ending {
    /// The reason reported to the control plane.
    pub fn reason(&self, outcome: &Outcome) -> EndReason {
        if let Some(reason) = &self.reason {
            return reason.clone();
        }
        match outcome.local_error {
            Some(ErrorCode::NoError | ErrorCode::ShuttingDown) if self.shutdown_seen => {
                EndReason::Shutdown
            }
            Some(code) => EndReason::from_error_code(code),
            None => EndReason::ClientClosed,
        }
    }

    /// What happens to the session's slot and resume token: a lost connection, a drain or a
    /// timeout keeps the token, so the client can come back (to any gateway) as the same
    /// session; the client's own goodbye (Close or ERROR) and any other end are final.
    pub fn session_end(&self, outcome: &Outcome) -> SessionEnd {
        let client_goodbye = outcome.ended == Ended::CloseReceived || outcome.peer_error.is_some();
        match self.reason(outcome).resumption() {
            Resumption::Superseded => SessionEnd::Superseded,
            Resumption::Resumable if !client_goodbye => SessionEnd::Resumable,
            _ => SessionEnd::Final,
        }
    }
}

impl GatewaySession {
    pub(super) fn device(&self) -> &str {
        self.device_id.as_deref().unwrap_or("-")
    }

    /// One of the session's own deadlines came.
    pub(super) fn on_clock(&mut self, core: &mut Core) {
        match self.clock.take_due() {
            Some(Due::ExpiryConfirmed) => self.subscription_ended(core),
            Some(Due::SubscriptionEnd) => match &self.admission.control {
                // A renewal may have moved the end since HELLO: ask at once, and end within
                // EXPIRY_CONFIRM_WAIT unless the answer says otherwise (or there is none).
                Some(control) => {
                    control.check_now.notify_one();
                    self.clock.confirm_expiry();
                }
                None => self.subscription_ended(core),
            },
            Some(Due::Lifetime) => core.start_drain(
                ErrorCode::MaxLifetime,
                "maximum connection lifetime reached",
                self.ctx.settings.drain_timeout,
            ),
            None => {}
        }
    }

    /// The gateway drains (SIGTERM): GOAWAY, and the streams get the grace period.
    pub(super) fn on_shutdown(&mut self, core: &mut Core) {
        self.ending.shutdown_seen = true;
        core.start_drain(
            ErrorCode::ShuttingDown,
            "gateway shutting down",
            self.ctx.settings.shutdown_grace,
        );
    }

    /// The subscription's end time has come: ERROR `expired`, final (no resume).
    fn subscription_ended(&mut self, core: &mut Core) {
        tracing::info!(peer = %self.peer, device = self.device(), "subscription ended");
        if let Some(device) = &self.device_id {
            self.ctx.authority.forget(device);
        }
        self.ending.reason = Some(EndReason::Expired);
        core.end(ErrorCode::Expired, "the subscription has ended");
    }

    pub(super) fn on_control_event(&mut self, core: &mut Core, event: ControlEvent) {
        match event {
            ControlEvent::AccessEnds(ends_at_ms) => self.clock.access_ends(ends_at_ms),
            ControlEvent::End { code, reason } if reason == "resumed" => {
                self.ending.reason = Some(EndReason::Resumed);
                if core.drain().is_some() {
                    // After our GOAWAY the client resumes on a new connection, as SPEC §9.1
                    // asks; this one still finishes its streams (until the drain deadline).
                    tracing::info!(peer = %self.peer, device = self.device(), "draining session resumed on another connection; its streams finish here");
                    return;
                }
                tracing::info!(peer = %self.peer, device = self.device(), "session resumed on another connection");
                core.end(code, "the session was resumed elsewhere");
            }
            ControlEvent::End {
                code: ErrorCode::QuotaExceeded,
                ..
            } => self.exhaust_quota(core),
            ControlEvent::End { code, reason } => {
                tracing::info!(peer = %self.peer, device = self.device(), reason = %reason, "control plane ended the session");
                if matches!(code, ErrorCode::Revoked | ErrorCode::Expired) {
                    if let Some(device) = &self.device_id {
                        self.ctx.authority.forget(device);
                    }
                }
                self.admission.control = None;
                let end_reason = match code {
                    ErrorCode::Expired => EndReason::Expired,
                    _ if reason == "killed" => EndReason::Killed,
                    _ => EndReason::Revoked,
                };
                self.ending.reason = Some(end_reason);
                core.end(code, &reason);
            }
        }
    }

    /// Counts relayed bytes for usage and enforces the session's quota: once it is crossed,
    /// new opens are refused with `quota_exceeded` and the session ends with ERROR
    /// `quota_exceeded`.
    pub(super) fn count_usage(
        &mut self,
        core: &mut Core,
        node: Option<&Arc<str>>,
        up: u64,
        down: u64,
    ) {
        if let Some(usage) = &self.admission.usage {
            usage.add(node, up, down);
        }
        if self
            .admission
            .quota
            .as_ref()
            .is_some_and(|q| q.add(up + down))
        {
            self.exhaust_quota(core);
        }
    }

    /// The quota is used up (here or on another gateway): new opens are refused from now on and
    /// the session ends with ERROR `quota_exceeded`.
    fn exhaust_quota(&mut self, core: &mut Core) {
        if self.ending.quota_exhausted {
            return;
        }
        self.ending.quota_exhausted = true;
        tracing::info!(peer = %self.peer, device = self.device(), "byte quota used up");
        self.ending.reason = Some(EndReason::QuotaExceeded);
        core.end(ErrorCode::QuotaExceeded, "byte quota used up");
    }
}
