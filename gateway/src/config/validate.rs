//! The checks clap cannot make: ranges, and relations between values.

use std::time::Duration;

use super::{FallbackAddr, GatewayConfig, ListenAddr};
use crate::GatewayError;

impl GatewayConfig {
    /// Checks values that clap cannot (ranges, relations between values).
    pub fn validate(&self) -> Result<(), GatewayError> {
        self.advertised_limits()
            .validate()
            .map_err(|e| GatewayError::Config(format!("advertised limits: {e}")))?;
        crate::secret_path::validate(&self.path, self.dev_allow_weak_path)
            .map_err(|e| GatewayError::Config(format!("--path: {e}")))?;
        if !self.listen.is_on() && !self.plain_listen.is_on() {
            return Err(GatewayError::Config(
                "no listener: set --listen (TLS) or --plain-listen (behind a front), or both"
                    .into(),
            ));
        }
        if matches!(self.listen, ListenAddr::Unix(_)) {
            return Err(GatewayError::Config(
                "--listen (TLS) takes IP:PORT; a unix socket is for --plain-listen".into(),
            ));
        }
        if self.proxy_protocol && !self.plain_listen.is_on() {
            return Err(GatewayError::Config(
                "--proxy-protocol applies to --plain-listen, which is not set".into(),
            ));
        }
        if self.decoy_dir.is_some() {
            return Err(GatewayError::Config(
                "--decoy-dir (HTTVPS_GATEWAY_DECOY_DIR) was removed: serve the site with a local \
                 web server (nginx) and point --fallback (and --fallback-raw) at it"
                    .into(),
            ));
        }
        if matches!(self.fallback_raw, Some(FallbackAddr::Tls(_))) {
            return Err(GatewayError::Config(
                "--fallback-raw relays raw TCP bytes to a TLS port: give it host:port or \
                 unix:/path, not tls://"
                    .into(),
            ));
        }
        if self.subprotocol.as_deref().is_some_and(|p| !is_token(p)) {
            return Err(GatewayError::Config(
                "--subprotocol must be an HTTP token (letters, digits, !#$%&'*+-.^_`|~)".into(),
            ));
        }
        if self.tls_handshake_timeout.is_zero()
            || self.client_header_timeout.is_zero()
            || self.keepalive_timeout.is_zero()
            || self.client_body_timeout.is_zero()
            || self.fallback_connect_timeout.is_zero()
        {
            return Err(GatewayError::Config(
                "--tls-handshake-timeout, --client-header-timeout, --keepalive-timeout, \
                 --client-body-timeout and --fallback-connect-timeout must be above zero"
                    .into(),
            ));
        }
        if self.max_connections == 0
            || self.max_connections_per_ip == 0
            || self.fallback_max_connections == 0
        {
            return Err(GatewayError::Config(
                "--max-connections, --max-connections-per-ip and --fallback-max-connections \
                 must be at least 1"
                    .into(),
            ));
        }
        if self.unauthenticated_close_delay > Duration::from_secs(60) {
            return Err(GatewayError::Config(
                "--unauthenticated-close-delay must be at most 60 s (each waiting connection holds a socket)".into(),
            ));
        }
        if self.ws_ping_interval.is_zero() || self.ws_ping_interval > Duration::from_secs(30) {
            return Err(GatewayError::Config(
                "--ws-ping-interval must be between 0 and 30 s".into(),
            ));
        }
        if self.session_heartbeat_interval.is_zero()
            || self.usage_report_interval.is_zero()
            || self.registry_heartbeat_interval.is_zero()
        {
            return Err(GatewayError::Config(
                "heartbeat and usage intervals must be above zero".into(),
            ));
        }
        if self
            .control_plane_token
            .as_ref()
            .is_some_and(|t| t.expose().is_empty())
        {
            return Err(GatewayError::Config(
                "the control-plane token is empty".into(),
            ));
        }
        if self.dev_direct_upstream
            && self.control_plane_url.is_some()
            && !self.dev_allow_direct_with_control_plane
        {
            return Err(GatewayError::Config(
                "--dev-direct-upstream is a development option: it is refused with \
                 --control-plane-url unless --dev-allow-direct-with-control-plane is given"
                    .into(),
            ));
        }
        if self.shared_state_interval.is_zero()
            || self.session_lease < self.shared_state_interval * 3
            || self.resume_ttl < self.session_lease
        {
            return Err(GatewayError::Config(
                "--shared-state-interval must be above zero, --session-lease at least three \
                 intervals and --resume-ttl at least one lease"
                    .into(),
            ));
        }
        if self.redis_prefix.is_empty() || self.redis_prefix.contains(char::is_whitespace) {
            return Err(GatewayError::Config(
                "--redis-prefix must be non-empty, without spaces".into(),
            ));
        }
        if self.node_prewarm > 64 {
            return Err(GatewayError::Config("--node-prewarm is at most 64".into()));
        }
        if self.node_prewarm > 0 && self.node_prewarm_idle_timeout.is_zero() {
            return Err(GatewayError::Config(
                "--node-prewarm-idle-timeout must be above zero".into(),
            ));
        }
        if self.max_streams == 0 || self.max_pending_opens == 0 {
            return Err(GatewayError::Config(
                "--max-streams and --max-pending-opens must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// An HTTP token (RFC 9110 §5.6.2), as a subprotocol name must be.
fn is_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
