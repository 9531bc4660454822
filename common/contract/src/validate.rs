//! `POST /v1/gateway/devices/validate`: a device's credentials from its HELLO → allowed with
//! an entitlement, or denied with a HELLO_ERROR code. Either answer may be cached for
//! `cache_ttl_secs`.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::limits::MAX_VALIDATE_BATCH;
use crate::{ContractViolation, DenyCode, Millis};

/// The credentials and region preference of a HELLO.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// As the client sent it in HELLO (not necessarily a valid id).
    pub device_id: String,
    /// As the client sent it.
    pub device_token: String,
    /// The client's region preference from HELLO.
    #[serde(default)]
    pub region: Option<String>,
}

/// The plan's terms a gateway enforces.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanTerms {
    /// The plan.
    pub id: Uuid,
    /// Its name.
    pub name: String,
    /// Bytes (both directions) per quota period; `null` = unlimited.
    pub quota_bytes: Option<u64>,
}

/// What a device is entitled to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Entitlement {
    /// The device.
    pub device_id: Uuid,
    /// Its user.
    pub user_id: Uuid,
    /// The user's plan.
    pub plan: PlanTerms,
    /// Sessions the user may have at once, across all gateways.
    pub session_limit: u32,
    /// Bytes left in this quota period; `null` = unlimited.
    pub remaining_bytes: Option<u64>,
    /// When the quota period ends.
    pub quota_resets_at: Option<Millis>,
    /// When the subscription ends and with it the device's sessions; `null` = never, or a
    /// queued subscription follows.
    pub expires_at: Option<Millis>,
    /// Region codes the device may use; empty = all.
    pub allowed_regions: Vec<String>,
}

/// The answer to a device validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ValidateResponse {
    /// The device may connect.
    Allow {
        /// How long this answer may be cached.
        #[serde(default)]
        cache_ttl_secs: u64,
        /// What it may do.
        entitlement: Box<Entitlement>,
    },
    /// The device may not connect.
    Deny {
        /// How long this answer may be cached.
        #[serde(default)]
        cache_ttl_secs: u64,
        /// Why, as a HELLO_ERROR name.
        code: DenyCode,
        /// Why, for people.
        #[serde(default)]
        message: String,
    },
}

/// `POST /v1/gateway/devices/validate/batch`: the HELLOs a gateway checks at once (a reconnect
/// storm), at most [`MAX_VALIDATE_BATCH`]. Each answer is the one its own validation would get:
/// one device's bad credentials or region deny that device, never the batch.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ValidateBatch {
    /// The validations, answered in this order.
    pub devices: Vec<ValidateRequest>,
}

impl ValidateBatch {
    /// Whether the batch keeps within the contract's limits.
    pub fn check(&self) -> Result<(), ContractViolation> {
        if self.devices.len() > MAX_VALIDATE_BATCH {
            return Err(ContractViolation(format!(
                "a validation batch holds at most {MAX_VALIDATE_BATCH} devices"
            )));
        }
        Ok(())
    }
}

/// The answers to a [`ValidateBatch`], one per device in its order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ValidateBatchResponse {
    /// One answer per device.
    pub results: Vec<ValidateResponse>,
}
