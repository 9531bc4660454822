//! HELLO handling: failed-HELLO rate limits first (SPEC §4.3), then the device authority, then
//! HELLO_ACK or HELLO_ERROR.

use std::sync::Arc;
use std::time::{Duration, Instant};

use httvps_proto::frame::{Hello, HelloError};
use httvps_proto::{AcceptHello, HelloErrorCode};

use super::control::ControlTask;
use super::{close, ControlHandle, Session};
use crate::authority::{DeviceCheck, Verdict};
use crate::control_plane::{hello_code, CpError};
use crate::metrics as m;
use crate::upstream::SessionNode;

/// Advice sent with HELLO_ERROR `internal` when the authority could not decide.
const RETRY_AFTER_UNAVAILABLE: Duration = Duration::from_secs(5);
/// Bytes of a resume token.
const RESUME_TOKEN_LEN: usize = 32;

impl Session {
    pub(super) async fn on_hello(&mut self, hello: Hello) {
        let started = Instant::now();
        let result = self.decide(&hello).await;
        let outcome = match result {
            Ok(()) => "accepted",
            Err(code) => code.name(),
        };
        metrics::histogram!(m::HELLO_SECONDS, "result" => outcome)
            .record(started.elapsed().as_secs_f64());
        tracing::info!(
            peer = %self.peer,
            device = %hello.device_id,
            client = %hello.client_name,
            version = %hello.client_version,
            result = outcome,
            "HELLO"
        );
    }

    async fn decide(&mut self, hello: &Hello) -> Result<(), HelloErrorCode> {
        let shared = self.shared.clone();
        let now = Instant::now();
        let ip = self.peer.ip();
        let limited = shared
            .ip_failures
            .check(&ip, now)
            .and_then(|()| shared.device_failures.check(&hello.device_id, now));
        if let Err(retry) = limited {
            metrics::counter!(m::HELLO_RATE_LIMITED_TOTAL).increment(1);
            return self.reject(
                HelloErrorCode::RateLimited,
                Some(retry),
                "too many failed attempts",
            );
        }
        let check = DeviceCheck {
            device_id: &hello.device_id,
            device_token: hello.device_token.as_bytes(),
            region: hello.region.as_deref(),
            peer: self.peer,
        };
        let verdict = tokio::time::timeout(
            shared.config.control_plane_timeout,
            shared.authority.validate(check),
        )
        .await;
        match verdict {
            Ok(Ok(Verdict::Allow(entitlement))) => {
                let session_uuid = uuid::Uuid::new_v4();
                let session_id: [u8; 16] = *session_uuid.as_bytes();
                // The control plane enforces the plan's concurrent-session limit at the start.
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
                                _ => hello_code(&code),
                            };
                            if status != 409 {
                                shared.authority.forget(&entitlement.device_id);
                            }
                            let retry =
                                (status == 409 || status == 429).then_some(RETRY_AFTER_UNAVAILABLE);
                            return self.reject(code, retry, &detail);
                        }
                        Err(e) => {
                            // Admitted from the entitlement; the control task registers the
                            // session once the control plane answers again.
                            metrics::counter!(m::CONTROL_PLANE_ERRORS_TOTAL, "call" => "session_start")
                                .increment(1);
                            tracing::warn!(error = %e, "session start not recorded yet");
                        }
                    }
                }
                let resume: [u8; RESUME_TOKEN_LEN] = rand::random();
                if self
                    .conn
                    .accept_hello(AcceptHello::new(session_id, resume.to_vec()))
                    .is_err()
                {
                    return self.reject(HelloErrorCode::Internal, None, "internal error");
                }
                let now = Instant::now();
                self.established_at = Some(now);
                if !shared.config.idle_timeout.is_zero() {
                    self.idle_deadline = Some(now + shared.config.idle_timeout);
                }
                let node = Arc::new(SessionNode::new(
                    entitlement.device_id.clone(),
                    session_uuid.to_string(),
                    hello.region.clone(),
                ));
                self.node = Some(node.clone());
                if let Some(cp) = shared.control_plane.clone() {
                    let (tx, rx) = tokio::sync::mpsc::channel(4);
                    let task = ControlTask {
                        client: cp,
                        session_id: session_uuid,
                        device_id: entitlement.device_id.clone(),
                        region: hello.region.clone(),
                        registered,
                        interval: shared.config.session_heartbeat_interval,
                        node,
                        events: tx,
                    };
                    self.control = Some(ControlHandle {
                        events: rx,
                        task: tokio::spawn(task.run()).abort_handle(),
                    });
                    self.cp_session = Some(session_uuid);
                }
                if let Some(reporter) = &shared.usage {
                    self.usage = reporter.register(Some(session_uuid), &entitlement.device_id);
                }
                self.quota_limit = entitlement.remaining_bytes;
                self.device_id = Some(entitlement.device_id);
                metrics::gauge!(m::SESSIONS_ACTIVE).increment(1.0);
                Ok(())
            }
            Ok(Ok(Verdict::Deny {
                code,
                message,
                retry_after,
            })) => {
                shared.ip_failures.record_failure(&ip, now);
                shared.device_failures.record_failure(&hello.device_id, now);
                self.reject(code, retry_after, &message)
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "device check failed");
                self.reject(
                    HelloErrorCode::Internal,
                    Some(RETRY_AFTER_UNAVAILABLE),
                    "try again later",
                )
            }
            Err(_) => {
                tracing::warn!("device check timed out");
                self.reject(
                    HelloErrorCode::Internal,
                    Some(RETRY_AFTER_UNAVAILABLE),
                    "try again later",
                )
            }
        }
    }

    /// Queues HELLO_ERROR (the session's last frame) and returns its code as the error.
    fn reject(
        &mut self,
        code: HelloErrorCode,
        retry_after: Option<Duration>,
        message: &str,
    ) -> Result<(), HelloErrorCode> {
        let retry_ms = retry_after.map_or(0, |d| {
            u32::try_from(d.as_millis()).unwrap_or(u32::MAX).max(1)
        });
        let _ = self
            .conn
            .reject_hello(HelloError::new(code, retry_ms, message));
        self.close_code = Some(close::POLICY);
        Err(code)
    }
}
