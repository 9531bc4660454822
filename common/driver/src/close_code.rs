//! WebSocket close codes for the frame that ended a session (SPEC §2.6).

use httvps_proto::ErrorCode;

/// ERROR `no_error`.
pub const NORMAL: u16 = 1000;
/// `handshake_timeout`, `idle_timeout`, `max_lifetime`, `shutting_down`.
pub const GOING_AWAY: u16 = 1001;
/// `protocol_error`, `frame_size`, `flow_control`, `stream_id`, `unknown_frame`.
pub const PROTOCOL: u16 = 1002;
/// HELLO_ERROR (any code), `revoked`, `expired`, `quota_exceeded`.
pub const POLICY: u16 = 1008;
/// `internal`, and codes this version does not know.
pub const INTERNAL: u16 = 1011;

/// The close code that follows an ERROR frame with `code`.
pub fn for_error(code: ErrorCode) -> u16 {
    code.websocket_close_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_the_spec_close_code() {
        for code in ErrorCode::ALL {
            let expected = match code.name() {
                "no_error" => 1000,
                "protocol_error" | "frame_size" | "flow_control" | "stream_id"
                | "unknown_frame" => 1002,
                "revoked" | "expired" | "quota_exceeded" => 1008,
                "handshake_timeout" | "idle_timeout" | "max_lifetime" | "shutting_down" => 1001,
                _ => 1011,
            };
            assert_eq!(for_error(*code), expected, "{code}");
        }
    }
}
