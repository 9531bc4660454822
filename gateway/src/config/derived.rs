//! Settings derived from the configuration for the parts that use them.

use httvps_proto::{Limits, SessionConfig};

use super::GatewayConfig;
use crate::entitlements::CacheLimits;

impl GatewayConfig {
    /// The ACME settings, when `--acme-domain` is set.
    pub fn acme(&self) -> Option<crate::tls::acme::AcmeSettings> {
        (!self.acme_domain.is_empty()).then(|| crate::tls::acme::AcmeSettings {
            domains: self.acme_domain.clone(),
            directory: self.acme_directory.clone(),
            contact: self.acme_contact.clone(),
            cache_dir: self.acme_cache_dir.clone(),
            directory_ca: self.acme_directory_ca.clone(),
        })
    }

    /// The entitlement cache's bounds.
    pub fn cache_limits(&self) -> CacheLimits {
        CacheLimits {
            positive_entries: self.entitlement_cache_entries,
            positive_ttl_max: self.entitlement_cache_ttl,
            negative_entries: self.denial_cache_entries,
            negative_ttl_max: self.denial_cache_ttl,
        }
    }

    /// The receive limits advertised in HELLO_ACK.
    pub fn advertised_limits(&self) -> Limits {
        Limits {
            stream_window: self.stream_window,
            session_window: self.session_window,
            max_frame_size: self.max_frame_size,
        }
    }

    /// The `httvps_proto` settings of every session.
    pub fn session_config(&self) -> SessionConfig {
        SessionConfig {
            limits: self.advertised_limits(),
            max_stream_window: self.max_stream_window,
            max_session_window: self.max_session_window,
            max_streams: self.max_streams,
            heartbeat_interval: self.heartbeat_interval,
            idle_timeout: self.idle_timeout,
            ..SessionConfig::default()
        }
    }

    /// The largest WebSocket message accepted: one frame header plus the largest payload.
    pub fn max_message_size(&self) -> usize {
        6 + self.max_frame_size as usize
    }
}
