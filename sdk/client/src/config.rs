//! Command line and config file: a connection link (or a subscription URL) plus where to
//! listen.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use httvps_sdk::ClientConfig;
use serde::Deserialize;

use crate::subscription::{self, SubscriptionSettings};
use crate::tun::TunSettings;

/// Local SOCKS5/HTTP proxy through httvps.
#[derive(Debug, Parser)]
#[command(name = "httvps-client", version, about)]
pub struct Args {
    /// The connection link (`httvps://...`) from the control plane.
    #[arg(long, env = "HTTVPS_LINK", hide_env_values = true)]
    pub link: Option<String>,
    /// A TOML file with `link`, and optionally `socks`, `http`, `region`, `fallback_links`.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// SOCKS5 listen address.
    #[arg(long)]
    pub socks: Option<SocketAddr>,
    /// HTTP proxy listen address.
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Do not serve the HTTP proxy.
    #[arg(long)]
    pub no_http: bool,
    /// Preferred region code.
    #[arg(long)]
    pub region: Option<String>,
    /// The device's subscription URL from the control plane (instead of `--link`): every link
    /// it lists is a gateway to fail over to, and it is fetched again periodically.
    #[arg(long, env = "HTTVPS_SUBSCRIPTION", hide_env_values = true)]
    pub subscription: Option<String>,
    /// Time between subscription refreshes: minutes, or with a unit (`30s`, `10m`, `2h`).
    #[arg(long, default_value = "60", value_parser = subscription::parse_refresh)]
    pub subscription_refresh: Duration,
    /// A file keeping the last good subscription list (used when a fetch fails at start).
    #[arg(long)]
    pub subscription_cache: Option<PathBuf>,
    /// VPN mode (Linux, needs CAP_NET_ADMIN): a TUN device carries all traffic (or the
    /// `--route` networks) through httvps, instead of the SOCKS5/HTTP proxies.
    #[arg(long)]
    pub tun: bool,
    /// The TUN device's name.
    #[arg(long, default_value = "httvps0")]
    pub tun_name: String,
    /// The TUN device's IPv4 address and prefix.
    #[arg(long, default_value = "198.18.0.1/16")]
    pub tun_address: ipnet::Ipv4Net,
    /// The tunnel's DNS address: the system resolver is pointed here, and queries to it go
    /// to `--dns` through the tunnel.
    #[arg(long, default_value = "198.18.0.2")]
    pub tun_dns: IpAddr,
    /// The DNS resolver queries are sent to, through the tunnel (`IP` or `IP:PORT`).
    #[arg(long, default_value = "1.1.1.1:53", value_parser = parse_resolver)]
    pub dns: SocketAddr,
    /// The TUN MTU (1280 to 65535). The packets never leave this host at that size: a large
    /// one means fewer packets for the same bytes (9000: about 1.7x the throughput of 1500).
    #[arg(long, default_value_t = 9000, value_parser = clap::value_parser!(u16).range(1280..))]
    pub mtu: u16,
    /// Only these networks go through the tunnel (repeatable); default: everything.
    #[arg(long = "route", value_name = "CIDR")]
    pub routes: Vec<ipnet::IpNet>,
    /// These networks stay outside the tunnel (repeatable).
    #[arg(long = "exclude", value_name = "CIDR")]
    pub exclude: Vec<ipnet::IpNet>,
    /// Carry IPv6 through the tunnel; default: IPv6 is routed into the TUN and refused there
    /// (never leaked).
    #[arg(long)]
    pub ipv6: bool,
    /// Leave the system resolver alone (default: /etc/resolv.conf points at `--tun-dns` while
    /// the tunnel runs).
    #[arg(long)]
    pub no_set_dns: bool,
}

/// `IP` (port 53) or `IP:PORT`.
fn parse_resolver(text: &str) -> Result<SocketAddr, String> {
    text.parse::<SocketAddr>()
        .or_else(|_| text.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| format!("{text:?} is not an IP address or IP:PORT"))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    link: Option<String>,
    socks: Option<SocketAddr>,
    http: Option<SocketAddr>,
    region: Option<String>,
    /// More gateways (links of the same device) to try when the first is unreachable.
    #[serde(default)]
    fallback_links: Vec<String>,
    /// The device's subscription URL (instead of `link`).
    subscription: Option<String>,
}

/// What the client runs with.
pub struct Settings {
    pub client: ClientConfig,
    pub socks: SocketAddr,
    pub http: Option<SocketAddr>,
    /// With `--subscription`: where to refresh from, and the links the client started with.
    pub subscription: Option<(SubscriptionSettings, Vec<String>)>,
    /// With `--tun`: VPN mode instead of the proxies.
    pub tun: Option<TunSettings>,
}

impl Args {
    /// Flags over the config file over defaults; with a subscription, its first fetch.
    pub async fn resolve(&self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let link = self.link.clone().or(file.link);
        let subscription = self.subscription.clone().or(file.subscription);
        let (mut client, subscription) = match (link, subscription) {
            (Some(_), Some(_)) => bail!("give either a connection link or a subscription URL"),
            (Some(link), None) => (ClientConfig::from_link(&link)?, None),
            (None, Some(url)) => {
                let settings = SubscriptionSettings {
                    url,
                    refresh: self.subscription_refresh,
                    cache: self.subscription_cache.clone(),
                };
                let links = subscription::initial_links(&settings).await?;
                (
                    subscription::config_from_links(&links)?,
                    Some((settings, links)),
                )
            }
            (None, None) => bail!(
                "give a connection link with --link (or HTTVPS_LINK, or `link` in --config) \
                 or a subscription URL with --subscription"
            ),
        };
        for extra in &file.fallback_links {
            let more = ClientConfig::from_link(extra)?;
            client.gateways.extend(more.gateways);
        }
        client.region = self.region.clone().or(file.region);
        client.client_name = "httvps-client".into();
        let socks = self
            .socks
            .or(file.socks)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 1080)));
        let http = if self.no_http {
            None
        } else {
            Some(
                self.http
                    .or(file.http)
                    .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8118))),
            )
        };
        let tun = self.tun.then(|| TunSettings {
            name: self.tun_name.clone(),
            address: (self.tun_address.addr(), self.tun_address.prefix_len()),
            dns_address: self.tun_dns,
            resolver: self.dns,
            mtu: self.mtu,
            ipv6: self.ipv6,
            routes: self.routes.clone(),
            exclude: self.exclude.clone(),
            resolv_conf: (!self.no_set_dns).then(|| PathBuf::from("/etc/resolv.conf")),
        });
        Ok(Settings {
            client,
            socks,
            http,
            subscription,
            tun,
        })
    }
}
