//! Command line and config file: a connection link plus where to listen.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Parser;
use httvps_sdk::ClientConfig;
use serde::Deserialize;

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
}

/// What the client runs with.
pub struct Settings {
    pub client: ClientConfig,
    pub socks: SocketAddr,
    pub http: Option<SocketAddr>,
}

impl Args {
    /// Flags over the config file over defaults.
    pub fn resolve(&self) -> anyhow::Result<Settings> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("parsing {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let Some(link) = self.link.clone().or(file.link) else {
            bail!("give a connection link with --link (or HTTVPS_LINK, or `link` in --config)");
        };
        let mut client = ClientConfig::from_link(&link)?;
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
        Ok(Settings {
            client,
            socks,
            http,
        })
    }
}
