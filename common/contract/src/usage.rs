//! `POST /v1/gateway/usage`: batches of byte counts, counted exactly once per (gateway, report
//! id) however often a report is sent.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::limits::{MAX_REPORT_ID_LEN, MAX_USAGE_BYTES, MAX_USAGE_RECORDS};
use crate::{ContractViolation, Millis};

/// One line of a usage report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UsageRecord {
    /// The session, if known to the control plane.
    #[serde(default)]
    pub session_id: Option<Uuid>,
    /// The device.
    pub device_id: Uuid,
    /// The node the bytes went through, if it is a control-plane node.
    #[serde(default)]
    pub node_id: Option<Uuid>,
    /// Client to target.
    pub bytes_up: u64,
    /// Target to client.
    pub bytes_down: u64,
    /// When the bytes were counted.
    pub at: Millis,
}

/// A batch of usage records under an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UsageReport {
    /// Unique per gateway; a retried report reuses its id and is counted once.
    pub report_id: String,
    /// At most [`MAX_USAGE_RECORDS`].
    pub records: Vec<UsageRecord>,
}

impl UsageReport {
    /// Whether the report keeps within the contract's limits (the control plane refuses it
    /// with 422 otherwise).
    pub fn check(&self) -> Result<(), ContractViolation> {
        if self.report_id.is_empty() || self.report_id.len() > MAX_REPORT_ID_LEN {
            return Err(ContractViolation(format!(
                "report_id must have 1 to {MAX_REPORT_ID_LEN} bytes"
            )));
        }
        if self.records.len() > MAX_USAGE_RECORDS {
            return Err(ContractViolation(format!(
                "at most {MAX_USAGE_RECORDS} records per report"
            )));
        }
        for (i, r) in self.records.iter().enumerate() {
            if r.bytes_up > MAX_USAGE_BYTES || r.bytes_down > MAX_USAGE_BYTES {
                return Err(ContractViolation(format!(
                    "records[{i}]: byte counts must be between 0 and 2^50"
                )));
            }
            if r.at <= 0 {
                return Err(ContractViolation(format!(
                    "records[{i}]: at must be a positive Unix millisecond time"
                )));
            }
        }
        Ok(())
    }
}

/// The answer to a usage report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsageReportResponse {
    /// Always true: the report is counted (now or before).
    pub accepted: bool,
    /// The report id was seen before; nothing was counted again.
    pub duplicate: bool,
}
