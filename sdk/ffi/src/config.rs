//! What a tunnel is started with.

use std::net::{IpAddr, SocketAddr};

use httvps_tun::{DnsRedirect, EngineConfig};

use crate::error::TunnelError;

/// How to reach the service and how the device's packets look.
#[derive(Clone, Debug, uniffi::Record)]
pub struct TunnelConfig {
    /// An `httvps://` connection link; exactly one of `link` and `subscription_url`.
    #[uniffi(default = None)]
    pub link: Option<String>,
    /// The control plane's subscription URL (`https://.../sub/TOKEN`): every link in it becomes a
    /// gateway, tried in order. Fetched once, at start.
    #[uniffi(default = None)]
    pub subscription_url: Option<String>,
    /// The MTU the platform gave the interface (at least 1280).
    #[uniffi(default = 1500)]
    pub mtu: u16,
    /// Carry IPv6 (the gateway side must reach IPv6 targets); otherwise IPv6 packets are refused.
    #[uniffi(default = false)]
    pub carry_ipv6: bool,
    /// The DNS server address the platform was told to use (e.g. `10.111.0.53`); its queries go
    /// to `dns_resolver` through the tunnel. Both or neither.
    #[uniffi(default = None)]
    pub dns_address: Option<String>,
    /// Where DNS queries to `dns_address` go (`IP:port`, e.g. `1.1.1.1:53`).
    #[uniffi(default = None)]
    pub dns_resolver: Option<String>,
}

impl TunnelConfig {
    pub(crate) fn engine(&self) -> Result<EngineConfig, TunnelError> {
        if self.mtu < 1280 {
            return Err(TunnelError::Config(format!(
                "MTU {} is below the minimum of 1280",
                self.mtu
            )));
        }
        let dns = match (&self.dns_address, &self.dns_resolver) {
            (None, None) => None,
            (Some(address), Some(resolver)) => Some(DnsRedirect {
                address: address
                    .parse::<IpAddr>()
                    .map_err(|e| TunnelError::Config(format!("dns_address {address}: {e}")))?,
                resolver: resolver
                    .parse::<SocketAddr>()
                    .map_err(|e| TunnelError::Config(format!("dns_resolver {resolver}: {e}")))?,
            }),
            _ => {
                return Err(TunnelError::Config(
                    "dns_address and dns_resolver go together".into(),
                ))
            }
        };
        Ok(EngineConfig {
            mtu: self.mtu,
            carry_ipv6: self.carry_ipv6,
            dns,
            ..EngineConfig::default()
        })
    }
}
