//! What a session is told from outside its connection: by the gateway's directory (shared
//! events: revocations, kills, quota, a resume elsewhere) and by its control-plane task
//! (heartbeat answers). Defined here, in the state layer, so the directory does not depend on
//! the session.

use httvps_proto::ErrorCode;

/// A command for one session.
#[derive(Debug)]
pub enum ControlEvent {
    /// End the session with this ERROR code (`reason` is the control plane's word for it).
    End {
        /// The ERROR code.
        code: ErrorCode,
        /// The control plane's reason (`killed`, `revoked`, `expired`, ...).
        reason: String,
    },
    /// The session may go on; its access ends at this time (Unix ms; `None`: no end known).
    AccessEnds(Option<i64>),
}
