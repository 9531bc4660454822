//! HELLO handling: failed-HELLO rate limits first (SPEC §4.3), then the device authority, then
//! HELLO_ACK or HELLO_ERROR.

use std::sync::Arc;
use std::time::{Duration, Instant};

use httvps_proto::frame::{Hello, HelloError};
use httvps_proto::{AcceptHello, HelloErrorCode};

use super::{close, Session};
use crate::authority::{DeviceCheck, Verdict};
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
                let session_id: [u8; 16] = rand::random();
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
                self.node = Some(Arc::new(SessionNode::new(
                    entitlement.device_id.clone(),
                    hex(&session_id),
                    hello.region.clone(),
                )));
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

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
