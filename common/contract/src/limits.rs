//! Bounds of the contract. The gateway keeps within them; the control plane refuses a body
//! beyond them with 422. Text lengths are counted in bytes of UTF-8 on both sides.

/// Most records in one usage report (a gateway splits larger batches).
pub const MAX_USAGE_RECORDS: usize = 10_000;
/// Longest usage report id, in bytes.
pub const MAX_REPORT_ID_LEN: usize = 128;
/// Largest byte count of one usage record direction (2^50, a petabyte): larger is a bug.
pub const MAX_USAGE_BYTES: u64 = 1 << 50;
/// Longest session end reason, in bytes.
pub const MAX_END_REASON_LEN: usize = 64;
/// Longest gateway software version in a registry heartbeat, in bytes.
pub const MAX_VERSION_LEN: usize = 64;
/// Longest region code, in bytes.
pub const MAX_REGION_CODE_LEN: usize = 32;
/// Most items (starts, heartbeats and ends together) in one session batch.
pub const MAX_SESSION_BATCH: usize = 1_000;
/// Most devices in one validation batch.
pub const MAX_VALIDATE_BATCH: usize = 1_000;
