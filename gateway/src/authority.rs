//! Who may connect: the [`DeviceAuthority`] seam between sessions and the control plane.
//!
//! Production uses [`crate::control_plane::ControlPlaneClient`]. [`StaticAuthority`] is an
//! in-memory list for development and tests only; it is not a security boundary to deploy.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use httvps_proto::HelloErrorCode;
use subtle::ConstantTimeEq;

/// A boxed future, so the traits stay object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a HELLO asks the authority to decide.
#[derive(Clone)]
pub struct DeviceCheck<'a> {
    /// HELLO `device_id`.
    pub device_id: &'a str,
    /// HELLO `device_token` (never logged).
    pub device_token: &'a [u8],
    /// HELLO `region`, if any.
    pub region: Option<&'a str>,
    /// The client's address.
    pub peer: SocketAddr,
}

impl fmt::Debug for DeviceCheck<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCheck")
            .field("device_id", &self.device_id)
            .field(
                "device_token",
                &format_args!("<{} bytes redacted>", self.device_token.len()),
            )
            .field("region", &self.region)
            .field("peer", &self.peer)
            .finish()
    }
}

/// What a device may do, as the control plane granted it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entitlement {
    /// The device (as the control plane names it).
    pub device_id: String,
    /// Its user, when known.
    pub user_id: Option<String>,
    /// Bytes left in the current quota period; `None` = unlimited.
    pub remaining_bytes: Option<u64>,
    /// Concurrent sessions allowed.
    pub session_limit: Option<u32>,
    /// When the subscription ends (Unix ms); `None` = never.
    pub expires_at_ms: Option<i64>,
    /// The plan's byte quota per period; `None` = unlimited.
    pub quota_bytes: Option<u64>,
    /// When the current quota period ends (Unix ms); names the shared usage counter.
    pub quota_period_end_ms: Option<i64>,
}

/// The authority's answer to a HELLO.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Accept the session.
    Allow(Entitlement),
    /// Refuse it with this HELLO_ERROR.
    Deny {
        /// The HELLO_ERROR code.
        code: HelloErrorCode,
        /// A message for humans; never contains a token.
        message: String,
        /// Advice for the client's next attempt.
        retry_after: Option<Duration>,
    },
}

/// The authority could not decide (control plane unreachable, bad answer, timeout).
#[derive(Clone, Debug, thiserror::Error)]
#[error("device authority unavailable: {0}")]
pub struct AuthorityUnavailable(pub String);

/// Decides whether a device may open a session.
pub trait DeviceAuthority: Send + Sync + fmt::Debug {
    /// Validates the device's credentials and entitlement. Unknown devices and wrong tokens
    /// must give the same `auth_failed` answer.
    fn validate<'a>(
        &'a self,
        check: DeviceCheck<'a>,
    ) -> BoxFuture<'a, Result<Verdict, AuthorityUnavailable>>;

    /// Drops whatever the authority remembers about `device_id` (its session was refused or
    /// ended as revoked or expired). Authorities without a cache ignore it.
    fn forget(&self, device_id: &str) {
        let _ = device_id;
    }
}

/// Development and test authority: a fixed map of device ids to tokens.
///
/// Not for production: it has no plans, quotas or revocation broadcast. Tokens are compared in
/// constant time all the same.
#[derive(Debug, Default)]
pub struct StaticAuthority {
    devices: HashMap<String, Vec<u8>>,
    revoked: HashSet<String>,
}

impl StaticAuthority {
    /// An authority that knows no device.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a device.
    pub fn with_device(mut self, id: impl Into<String>, token: impl Into<Vec<u8>>) -> Self {
        self.devices.insert(id.into(), token.into());
        self
    }

    /// Marks a known device revoked.
    pub fn with_revoked(mut self, id: impl Into<String>) -> Self {
        self.revoked.insert(id.into());
        self
    }

    /// Parses `DEVICE_ID:TOKEN` pairs (the `--dev-device` flag).
    pub fn from_pairs(pairs: &[String]) -> Result<Self, crate::GatewayError> {
        let mut authority = Self::new();
        for pair in pairs {
            let (id, token) = pair.split_once(':').ok_or_else(|| {
                crate::GatewayError::Config("--dev-device expects DEVICE_ID:TOKEN".into())
            })?;
            if id.is_empty() || token.is_empty() {
                return Err(crate::GatewayError::Config(
                    "--dev-device id and token must be non-empty".into(),
                ));
            }
            authority = authority.with_device(id, token.as_bytes());
        }
        Ok(authority)
    }
}

// `EntitlementCache` (entitlements.rs) implements the same trait; the signature is the trait's.
impl DeviceAuthority for StaticAuthority {
    fn validate<'a>(
        &'a self,
        check: DeviceCheck<'a>,
    ) -> BoxFuture<'a, Result<Verdict, AuthorityUnavailable>> {
        Box::pin(async move {
            // Compare against a dummy token for unknown devices so both paths take the same time.
            let expected = self
                .devices
                .get(check.device_id)
                .map_or(&[0u8; 32][..], Vec::as_slice);
            let known = self.devices.contains_key(check.device_id);
            let token_ok: bool = expected.ct_eq(check.device_token).into();
            if !(known && token_ok) {
                return Ok(Verdict::Deny {
                    code: HelloErrorCode::AuthFailed,
                    message: "authentication failed".into(),
                    retry_after: None,
                });
            }
            if self.revoked.contains(check.device_id) {
                return Ok(Verdict::Deny {
                    code: HelloErrorCode::Revoked,
                    message: "device revoked".into(),
                    retry_after: None,
                });
            }
            Ok(Verdict::Allow(Entitlement {
                device_id: check.device_id.to_owned(),
                ..Entitlement::default()
            }))
        })
    }
}
