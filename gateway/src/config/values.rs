//! The value types of the settings and their parsers (addresses, fallbacks, durations).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ListenAddr {
    /// No listener (the empty string).
    #[default]
    Off,
    /// `IP:PORT`.
    Tcp(SocketAddr),
    /// `unix:/path/to/socket`.
    Unix(PathBuf),
}

impl ListenAddr {
    /// Whether a listener is configured.
    pub fn is_on(&self) -> bool {
        *self != ListenAddr::Off
    }
}

impl std::str::FromStr for ListenAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if text.is_empty() {
            return Ok(ListenAddr::Off);
        }
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path".into());
            }
            return Ok(ListenAddr::Unix(PathBuf::from(path)));
        }
        text.parse()
            .map(ListenAddr::Tcp)
            .map_err(|_| format!("{text:?} is not IP:PORT, unix:/path or empty"))
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ListenAddr::Off => f.write_str("off"),
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A CIDR (`10.0.0.0/8`, `::1/128`) or a single address.
pub(super) fn parse_cidr(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{text:?} is not a CIDR like 10.0.0.0/8 or an address"))
}

/// What new HELLOs get while Redis is unreachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RedisDownPolicy {
    /// Admit against this gateway's own counts.
    Local,
    /// Refuse with HELLO_ERROR `internal` and a retry delay.
    Refuse,
}

/// Where a fallback web server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FallbackAddr {
    /// `host:port` (resolved at each connect).
    Tcp(String),
    /// `unix:/path` of a unix socket.
    Unix(PathBuf),
    /// `tls://host:port`: a TLS listener, the gateway its TLS client (`--fallback` only).
    Tls(String),
}

impl std::str::FromStr for FallbackAddr {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if let Some(path) = text.strip_prefix("unix:") {
            if path.is_empty() {
                return Err("unix: needs a socket path, e.g. unix:/run/nginx/site.sock".into());
            }
            return Ok(FallbackAddr::Unix(PathBuf::from(path)));
        }
        let (text, tls) = match text.strip_prefix("tls://") {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        let port_ok = text
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !port_ok {
            return Err(format!(
                "{text:?} is neither host:port, tls://host:port nor unix:/path \
                 (e.g. tls://127.0.0.1:8443)"
            ));
        }
        if tls {
            return Ok(FallbackAddr::Tls(text.to_owned()));
        }
        Ok(FallbackAddr::Tcp(text.to_owned()))
    }
}

impl std::fmt::Display for FallbackAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FallbackAddr::Tcp(addr) => f.write_str(addr),
            FallbackAddr::Unix(path) => write!(f, "unix:{}", path.display()),
            FallbackAddr::Tls(addr) => write!(f, "tls://{addr}"),
        }
    }
}

/// parse a `SocketAddr` and refuse the empty value that means "off").
pub type OptionalAddr = Option<SocketAddr>;

/// Parses a listen address; empty (or blank) means none.
pub fn parse_optional_addr(text: &str) -> Result<OptionalAddr, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|e| {
        format!("{text:?} is not an address like 127.0.0.1:9464 (or empty for none): {e}")
    })
}

/// Parses `250ms`, `10s`, `5m`, `24h` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s, 250ms, 5m or 24h"))?;
    let seconds_per_unit = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        other => {
            return Err(format!(
                "unknown duration unit {other:?} (use ms, s, m or h)"
            ))
        }
    };
    // `n * 3600` overflowed (a panic in debug builds) for absurd values.
    n.checked_mul(seconds_per_unit)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}
