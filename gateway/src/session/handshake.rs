//! HELLO handling: failed-HELLO rate limits first (SPEC §4.3), then a resume token or the device
//! authority, then the shared session limits, then HELLO_ACK or HELLO_ERROR.

use std::sync::Arc;
use std::time::{Duration, Instant};

use httvps_proto::frame::{Hello, HelloError};
use httvps_proto::{AcceptHello, HelloErrorCode};

use httvps_driver::Core;

use super::app::{ControlHandle, GatewaySession};
use super::control::ControlTask;
use httvps_shared_state::{LimitScope, ResumeRecord, SessionLease, SessionOwner, UsageCounter};
use subtle::ConstantTimeEq;
use tracing::Instrument;

use crate::authority::{DeviceCheck, Entitlement, Verdict};
use crate::control_plane::CpError;
use crate::metrics as m;
use crate::shared::directory::quota_subject;
use crate::shared::{sha256_hex, unix_ms, AdmitError, SessionEnd};
use crate::upstream::SessionNode;

/// Advice sent with HELLO_ERROR `internal` when the authority could not decide.
const RETRY_AFTER_UNAVAILABLE: Duration = Duration::from_secs(5);

impl GatewaySession {
    pub(super) async fn on_hello(&mut self, core: &mut Core, hello: Hello) {
        let started = Instant::now();
        // The root of the session's trace: the device check and the control plane's session
        // start are its children, across the services.
        let span = tracing::info_span!(
            parent: None,
            "HELLO",
            otel.kind = "server",
            client.address = %self.peer.ip(),
            httvps.device.id = %hello.device_id,
            httvps.client.name = %hello.client_name,
            httvps.client.version = %hello.client_version,
            httvps.resumed = tracing::field::Empty,
            session.id = tracing::field::Empty,
            httvps.hello.result = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        self.hello_trace = httvps_telemetry::TraceLink::to(&span);
        let result = self.decide(core, &hello).instrument(span.clone()).await;
        let outcome = match result {
            Ok(()) => "accepted",
            Err(code) => code.name(),
        };
        span.record("httvps.hello.result", outcome);
        if matches!(result, Err(HelloErrorCode::Internal)) {
            span.record("otel.status_code", "error");
        }
        metrics::histogram!(m::HELLO_SECONDS, "result" => outcome)
            .record(started.elapsed().as_secs_f64());
        span.in_scope(|| {
            tracing::info!(
                peer = %self.peer,
                device = %hello.device_id,
                client = %hello.client_name,
                version = %hello.client_version,
                result = outcome,
                "HELLO"
            )
        });
    }

    async fn decide(&mut self, core: &mut Core, hello: &Hello) -> Result<(), HelloErrorCode> {
        let shared = self.ctx.clone();
        let now = Instant::now();
        let ip = self.peer.ip();
        let limited = shared
            .ip_failures
            .check(&ip, now)
            .and_then(|()| shared.device_failures.check(&hello.device_id, now));
        if let Err(retry) = limited {
            metrics::counter!(m::HELLO_RATE_LIMITED_TOTAL).increment(1);
            return self.reject(
                core,
                HelloErrorCode::RateLimited,
                Some(retry),
                "too many failed attempts",
            );
        }
        // The gateway-wide cap, before anything costs a control-plane call.
        if let Some(slots) = &shared.session_slots {
            match slots.clone().try_acquire_owned() {
                Ok(slot) => self.gateway_slot = Some(slot),
                Err(_) => {
                    metrics::counter!(m::SESSIONS_REFUSED_FULL_TOTAL).increment(1);
                    return self.reject(
                        core,
                        HelloErrorCode::Internal,
                        Some(RETRY_AFTER_UNAVAILABLE),
                        "this gateway is at its session limit; try again later",
                    );
                }
            }
        }
        let resumed = match hello.resume_token.as_ref().map(|t| t.as_bytes()) {
            Some(token) if !token.is_empty() => self.try_resume(hello, token).await,
            _ => None,
        };
        if let Some((entitlement, session_uuid)) = resumed {
            tracing::Span::current().record("httvps.resumed", true);
            return self
                .establish(core, hello, entitlement, session_uuid, true)
                .await;
        }
        let check = DeviceCheck {
            device_id: &hello.device_id,
            device_token: hello.device_token.as_bytes(),
            region: hello.region.as_deref(),
            peer: self.peer,
        };
        let verdict = tokio::time::timeout(
            shared.settings.control_plane_timeout,
            shared.authority.validate(check),
        )
        .instrument(tracing::info_span!(
            "device check",
            httvps.device.id = %hello.device_id,
            httvps.cache = tracing::field::Empty,
        ))
        .await;
        match verdict {
            Ok(Ok(Verdict::Allow(entitlement))) => {
                self.establish(core, hello, entitlement, uuid::Uuid::new_v4(), false)
                    .await
            }
            Ok(Ok(Verdict::Deny {
                code,
                message,
                retry_after,
            })) => {
                shared.ip_failures.record_failure(&ip, now);
                shared.device_failures.record_failure(&hello.device_id, now);
                self.reject(core, code, retry_after, &message)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "device check failed");
                self.reject(
                    core,
                    HelloErrorCode::Internal,
                    Some(RETRY_AFTER_UNAVAILABLE),
                    "try again later",
                )
            }
            Err(_) => {
                tracing::warn!("device check timed out");
                self.reject(
                    core,
                    HelloErrorCode::Internal,
                    Some(RETRY_AFTER_UNAVAILABLE),
                    "try again later",
                )
            }
        }
    }

    /// A resume (SPEC §4.4): the token's record stands in for the control plane's check, as
    /// long as it is live, names this device, the device token still matches, the subscription
    /// has not ended and no revocation was announced since. Anything else falls back to a full
    /// check (`None`).
    async fn try_resume(
        &mut self,
        hello: &Hello,
        token: &[u8],
    ) -> Option<(Entitlement, uuid::Uuid)> {
        let state = self.ctx.state.clone();
        let refused = |why: &str| {
            metrics::counter!(m::SESSION_RESUMES_TOTAL, "result" => "refused").increment(1);
            tracing::debug!(device = %hello.device_id, why, "resume refused; checking the device in full");
            None
        };
        let Some(record) = state.take_resume(token).await else {
            return refused("unknown or expired token");
        };
        let token_hash = sha256_hex(hello.device_token.as_bytes());
        let token_ok: bool = token_hash
            .as_bytes()
            .ct_eq(record.token_sha256.as_bytes())
            .into();
        if record.device_id != hello.device_id || !token_ok {
            return refused("token of another device");
        }
        if record.expires_at_ms.is_some_and(|at| at <= unix_ms()) {
            return refused("subscription ended");
        }
        match state
            .is_revoked(&record.device_id, record.user_id.as_deref())
            .await
        {
            Ok(false) => {}
            Ok(true) => return refused("revoked"),
            Err(()) => return refused("revocations cannot be checked"),
        }
        let Ok(session_uuid) = uuid::Uuid::parse_str(&record.session_id) else {
            return refused("unreadable session id");
        };
        metrics::counter!(m::SESSION_RESUMES_TOTAL, "result" => "resumed").increment(1);
        let remaining = record
            .quota_bytes
            .map(|q| q.saturating_sub(record.quota_used_bytes));
        Some((
            Entitlement {
                device_id: record.device_id,
                user_id: record.user_id,
                remaining_bytes: remaining,
                session_limit: record.user_limit,
                expires_at_ms: record.expires_at_ms,
                quota_bytes: record.quota_bytes,
                quota_period_end_ms: record.quota_period_end_ms,
            },
            session_uuid,
        ))
    }

    /// Admits an allowed device: shared limits, the control plane's session record, the quota
    /// account, the resume token, then HELLO_ACK.
    async fn establish(
        &mut self,
        core: &mut Core,
        hello: &Hello,
        entitlement: Entitlement,
        session_uuid: uuid::Uuid,
        resumed: bool,
    ) -> Result<(), HelloErrorCode> {
        let shared = self.ctx.clone();
        // The end is known now: the session is ended at that time, not at a later heartbeat.
        let subscription_left = match entitlement.expires_at_ms {
            Some(at) if at <= unix_ms() => {
                shared.authority.forget(&entitlement.device_id);
                return self.reject(
                    core,
                    HelloErrorCode::Expired,
                    None,
                    "the subscription has ended",
                );
            }
            Some(at) => Some(Duration::from_millis(
                u64::try_from(at - unix_ms()).unwrap_or(0),
            )),
            None => None,
        };
        let state = shared.state.clone();
        let session_key = session_uuid.to_string();
        tracing::Span::current().record("session.id", session_key.as_str());
        let owner = SessionOwner {
            device_id: entitlement.device_id.clone(),
            user_id: entitlement.user_id.clone(),
        };
        match state
            .admit(&owner, &session_key, entitlement.session_limit)
            .await
        {
            Ok(()) => {}
            Err(AdmitError::Limit { scope, active }) => {
                let which = match scope {
                    LimitScope::Device => "this device",
                    LimitScope::User => "the plan",
                };
                let message = format!("too many sessions: {which} has {active} live");
                return self.reject(
                    core,
                    HelloErrorCode::TooManySessions,
                    Some(RETRY_AFTER_UNAVAILABLE),
                    &message,
                );
            }
            Err(AdmitError::Unavailable) => {
                return self.reject(
                    core,
                    HelloErrorCode::Internal,
                    Some(RETRY_AFTER_UNAVAILABLE),
                    "try again later",
                );
            }
        }
        // From here on, a refusal must give the slot back.
        let quota = match entitlement.quota_bytes.or(entitlement.remaining_bytes) {
            Some(quota) => {
                let used = entitlement
                    .remaining_bytes
                    .map_or(0, |left| quota.saturating_sub(left));
                let counter = UsageCounter {
                    subject: quota_subject(&owner).to_owned(),
                    period_end_ms: entitlement.quota_period_end_ms,
                };
                // The shared counter decides, not the count in a (possibly cached) allow.
                Some(state.open_quota(counter, quota, used).await)
            }
            None => None,
        };
        let slot = SessionLease {
            owner: owner.clone(),
            session_id: session_key.clone(),
        };
        if quota.as_ref().is_some_and(|q| q.is_exhausted()) {
            state.release(&slot, "", SessionEnd::Final).await;
            return self.reject(
                core,
                HelloErrorCode::QuotaExceeded,
                None,
                "the byte quota of this period is used up",
            );
        }
        // The control plane also enforces the plan's concurrent-session limit at the start.
        let mut registered = false;
        if let Some(cp) = shared.control_plane.clone() {
            match cp
                .start_session(
                    session_uuid,
                    &entitlement.device_id,
                    None,
                    hello.region.as_deref(),
                )
                .await
            {
                Ok(()) => registered = true,
                Err(CpError::Refused {
                    status,
                    code,
                    detail,
                    ..
                }) if matches!(status, 403 | 404 | 409 | 429) => {
                    let code = match status {
                        409 => HelloErrorCode::TooManySessions,
                        404 => HelloErrorCode::AuthFailed,
                        429 => HelloErrorCode::RateLimited,
                        _ => code.hello_error_code(),
                    };
                    if status != 409 {
                        shared.authority.forget(&entitlement.device_id);
                    }
                    state.release(&slot, "", SessionEnd::Resumable).await;
                    let retry = (status == 409 || status == 429).then_some(RETRY_AFTER_UNAVAILABLE);
                    return self.reject(core, code, retry, &detail);
                }
                Err(e) => {
                    metrics::counter!(m::CONTROL_PLANE_ERRORS_TOTAL, "call" => "session_start")
                        .increment(1);
                    // A session whose every stream would fail with node_unavailable is not
                    // worth admitting: no node is known for the device during this outage.
                    if !shared
                        .upstreams
                        .nodes()
                        .has_offline_node(&entitlement.device_id)
                    {
                        tracing::warn!(error = %e, "control plane unavailable and no node known for the device");
                        state.release(&slot, "", SessionEnd::Final).await;
                        return self.reject(
                            core,
                            HelloErrorCode::Internal,
                            Some(RETRY_AFTER_UNAVAILABLE),
                            "no node available now; try again later",
                        );
                    }
                    // Admitted from the entitlement; the control task registers the
                    // session once the control plane answers again.
                    tracing::warn!(error = %e, "session start not recorded yet");
                }
            }
        }
        let used = quota.as_ref().map_or(0, |q| q.floor());
        let (resume, resume_hash) = state
            .issue_resume(ResumeRecord {
                session_id: session_key.clone(),
                device_id: entitlement.device_id.clone(),
                token_sha256: sha256_hex(hello.device_token.as_bytes()),
                user_id: entitlement.user_id.clone(),
                user_limit: entitlement.session_limit,
                quota_bytes: quota.as_ref().map(|q| q.quota),
                quota_used_bytes: used,
                quota_period_end_ms: entitlement.quota_period_end_ms,
                expires_at_ms: entitlement.expires_at_ms,
                region: hello.region.clone(),
                issued_by: state.gateway_id().to_owned(),
            })
            .await;
        let session_id: [u8; 16] = *session_uuid.as_bytes();
        if core
            .conn_mut()
            .accept_hello(AcceptHello::new(session_id, resume.to_vec()))
            .is_err()
        {
            let lease = SessionLease {
                owner,
                session_id: session_key,
            };
            state.release(&lease, &resume_hash, SessionEnd::Final).await;
            return self.reject(core, HelloErrorCode::Internal, None, "internal error");
        }
        if resumed {
            state.announce_resume(&session_key).await;
        }
        self.admission.listing = Some(state.directory.insert(&session_key, owner.clone()));
        self.admission.lease = Some(slot);
        self.admission.resume_hash = resume_hash;
        self.admission.quota = quota;
        let now = tokio::time::Instant::now();
        self.clock.subscription_end = subscription_left.and_then(|left| now.checked_add(left));
        let node = Arc::new(SessionNode::new(
            entitlement.device_id.clone(),
            session_key.clone(),
            hello.region.clone(),
        ));
        self.node = Some(node.clone());
        if let Some(cp) = shared.control_plane.clone() {
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            let check_now = Arc::new(tokio::sync::Notify::new());
            let task = ControlTask {
                check_now: check_now.clone(),
                client: cp,
                session_id: session_uuid,
                device_id: entitlement.device_id.clone(),
                region: hello.region.clone(),
                registered,
                interval: shared.settings.session_heartbeat_interval,
                node,
                events: tx,
            };
            self.admission.control = Some(ControlHandle {
                events: rx,
                task: tokio::spawn(task.run()).abort_handle(),
                check_now,
            });
            self.admission.cp_session = Some(session_uuid);
        }
        if let Some(reporter) = &shared.usage {
            self.admission.usage = reporter.register(Some(session_uuid), &entitlement.device_id);
        }
        self.device_id = Some(entitlement.device_id);
        metrics::gauge!(m::SESSIONS_ACTIVE).increment(1.0);
        Ok(())
    }

    /// Queues HELLO_ERROR (the session's last frame) and returns its code as the error.
    fn reject(
        &mut self,
        core: &mut Core,
        code: HelloErrorCode,
        retry_after: Option<Duration>,
        message: &str,
    ) -> Result<(), HelloErrorCode> {
        let retry_ms = retry_after.map_or(0, |d| {
            u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
        });
        let _ = core.reject_hello(HelloError::new(code, retry_ms, message));
        Err(code)
    }
}
