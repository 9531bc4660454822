//! The codes of the gateway API: why a device validation was denied ([`DenyCode`]) and why a
//! call was refused ([`RefusalCode`], the `code` of a 4xx/5xx problem document), with the
//! HELLO_ERROR code (`httvps-proto`) a gateway answers its client with.

use httvps_proto::HelloErrorCode;
use serde::{Deserialize, Serialize};

/// Why the control plane denied a device (`{"result": "deny", "code": ...}`). The names are
/// the HELLO_ERROR names (SPEC §5.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DenyCode {
    /// Unknown device or wrong token.
    AuthFailed,
    /// The device or its user was revoked or disabled.
    Revoked,
    /// No subscription in force.
    Expired,
    /// The byte quota of this period is used up.
    QuotaExceeded,
    /// The requested region is unknown or not in the plan.
    RegionNotAllowed,
    /// A code this version does not know (from a newer control plane): treated as
    /// `auth_failed`.
    #[serde(other)]
    Unknown,
}

impl DenyCode {
    /// The name on the wire (also the metrics label).
    pub fn as_str(self) -> &'static str {
        match self {
            DenyCode::AuthFailed => "auth_failed",
            DenyCode::Revoked => "revoked",
            DenyCode::Expired => "expired",
            DenyCode::QuotaExceeded => "quota_exceeded",
            DenyCode::RegionNotAllowed => "region_not_allowed",
            DenyCode::Unknown => "unknown",
        }
    }

    /// The HELLO_ERROR a gateway refuses the device with.
    pub fn hello_error_code(self) -> HelloErrorCode {
        match self {
            DenyCode::AuthFailed | DenyCode::Unknown => HelloErrorCode::AuthFailed,
            DenyCode::Revoked => HelloErrorCode::Revoked,
            DenyCode::Expired => HelloErrorCode::Expired,
            DenyCode::QuotaExceeded => HelloErrorCode::QuotaExceeded,
            DenyCode::RegionNotAllowed => HelloErrorCode::RegionNotAllowed,
        }
    }
}

impl From<DenyCode> for HelloErrorCode {
    fn from(code: DenyCode) -> Self {
        code.hello_error_code()
    }
}

impl std::fmt::Display for DenyCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The machine-readable `code` of a problem document the gateway API answers a refused call
/// with.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RefusalCode {
    /// 422: a body that breaks the contract's rules.
    ValidationFailed,
    /// 400: not JSON, or the wrong shape.
    MalformedBody,
    /// 401: no or a wrong gateway token.
    Unauthenticated,
    /// 403: the token may not be used from this address.
    Forbidden,
    /// 404: no such device or session.
    NotFound,
    /// 409: the session belongs to another device.
    Conflict,
    /// 429: too many bad tokens from this address.
    RateLimited,
    /// 413: the body is too large.
    PayloadTooLarge,
    /// 503: the control plane cannot answer now.
    Unavailable,
    /// 500.
    Internal,
    /// 409: the plan's concurrent-session limit is reached.
    TooManySessions,
    /// 503: no node fits the request.
    NodeUnavailable,
    /// 403: the device may not connect, or an operator killed the session.
    Revoked,
    /// 403: no subscription in force.
    Expired,
    /// A code this version does not know, or no problem document at all.
    #[default]
    #[serde(other)]
    Unknown,
}

impl RefusalCode {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalCode::ValidationFailed => "validation_failed",
            RefusalCode::MalformedBody => "malformed_body",
            RefusalCode::Unauthenticated => "unauthenticated",
            RefusalCode::Forbidden => "forbidden",
            RefusalCode::NotFound => "not_found",
            RefusalCode::Conflict => "conflict",
            RefusalCode::RateLimited => "rate_limited",
            RefusalCode::PayloadTooLarge => "payload_too_large",
            RefusalCode::Unavailable => "unavailable",
            RefusalCode::Internal => "internal",
            RefusalCode::TooManySessions => "too_many_sessions",
            RefusalCode::NodeUnavailable => "node_unavailable",
            RefusalCode::Revoked => "revoked",
            RefusalCode::Expired => "expired",
            RefusalCode::Unknown => "unknown",
        }
    }

    /// The HELLO_ERROR for a session start the control plane refused with this code.
    pub fn hello_error_code(self) -> HelloErrorCode {
        match self {
            RefusalCode::Conflict | RefusalCode::TooManySessions => HelloErrorCode::TooManySessions,
            RefusalCode::RateLimited => HelloErrorCode::RateLimited,
            RefusalCode::Revoked => HelloErrorCode::Revoked,
            RefusalCode::Expired => HelloErrorCode::Expired,
            RefusalCode::Internal => HelloErrorCode::Internal,
            _ => HelloErrorCode::AuthFailed,
        }
    }
}

impl RefusalCode {
    /// Every known code.
    const ALL: [RefusalCode; 14] = [
        RefusalCode::ValidationFailed,
        RefusalCode::MalformedBody,
        RefusalCode::Unauthenticated,
        RefusalCode::Forbidden,
        RefusalCode::NotFound,
        RefusalCode::Conflict,
        RefusalCode::RateLimited,
        RefusalCode::PayloadTooLarge,
        RefusalCode::Unavailable,
        RefusalCode::Internal,
        RefusalCode::TooManySessions,
        RefusalCode::NodeUnavailable,
        RefusalCode::Revoked,
        RefusalCode::Expired,
    ];

    /// The code of a wire name; [`RefusalCode::Unknown`] for a name this version does not know.
    pub fn from_wire(name: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == name)
            .unwrap_or(RefusalCode::Unknown)
    }
}

impl std::fmt::Display for RefusalCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The part of a problem document (RFC 9457) a gateway reads: what to do depends on the code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Refusal {
    /// The machine-readable code.
    #[serde(default)]
    pub code: RefusalCode,
    /// What went wrong, for people.
    #[serde(default)]
    pub detail: String,
}
