//! Connection links for devices (SPEC §14) and their QR codes, shared by the admin API and the
//! operator CLI. The gateway part of a link comes from the configuration: the public address
//! (`host:port/path`), the certificate fingerprint to pin and the TLS server name.

use httvps_proto::link::{ConnectionLink, DEFAULT_PATH};
use qrcode::render::{svg, unicode};
use qrcode::QrCode;
use uuid::Uuid;

use crate::config::ServeConfig;
use crate::pool::normalize_host;

/// Why a link or its QR code could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// `HTTVPS_CP_PUBLIC_GATEWAY` is not `host[:port][/path]`.
    #[error("public gateway address {value:?} is invalid: {reason}")]
    PublicGateway { value: String, reason: String },
    /// `HTTVPS_CP_GATEWAY_CERT_SHA256` is not 64 hex digits.
    #[error("gateway certificate fingerprint must be 64 hex digits (SHA-256), optionally separated by colons")]
    Fingerprint,
    /// `HTTVPS_CP_GATEWAY_SNI` is not a host name.
    #[error("gateway SNI {0:?} is not a valid host name")]
    Sni(String),
    /// `HTTVPS_CP_GATEWAY_SUBPROTOCOL` is not a WebSocket subprotocol token.
    #[error(
        "gateway subprotocol {0:?} is not a token of 1 to 64 letters, digits or !#$%&'*+-.^_`|~"
    )]
    Subprotocol(String),
    /// The text does not fit in a QR code.
    #[error("cannot make a QR code: {0}")]
    Qr(String),
}

/// Where clients reach the gateways, from `host[:port][/path]` (IPv6 in brackets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicGateway {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// The secret WebSocket path, starting with `/`.
    pub path: String,
}

/// Parses the configured public gateway address: `host[:port][/path]`, where host is a domain,
/// an IPv4 address or a bracketed IPv6 address; the port defaults to 443 and the path to
/// `/httvps`. A leading `wss://` or `https://` is tolerated.
pub fn parse_public_gateway(value: &str) -> Result<PublicGateway, LinkError> {
    let bad = |reason: &str| LinkError::PublicGateway {
        value: value.to_owned(),
        reason: reason.to_owned(),
    };
    let mut rest = value.trim();
    for scheme in ["wss://", "https://"] {
        if rest.len() >= scheme.len() && rest[..scheme.len()].eq_ignore_ascii_case(scheme) {
            rest = &rest[scheme.len()..];
        }
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err(bad("credentials are not allowed"));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| bad("missing ']' after the IPv6 address"))?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(bad("the bracketed host is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(
                p.strip_prefix(':')
                    .ok_or_else(|| bad("expected ':port' after ']'"))?,
            ),
        };
        (host, port)
    } else {
        match authority.split_once(':') {
            Some((h, p)) if !p.contains(':') => (h, Some(p)),
            Some(_) => {
                return Err(bad(
                    "an IPv6 address must be written in brackets, e.g. [2001:db8::1]:443",
                ))
            }
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    let host = normalize_host(host).map_err(|e| bad(&e.to_string()))?;
    let port = match port {
        None => 443,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
    };
    let path = if path.is_empty() || path == "/" {
        DEFAULT_PATH.to_owned()
    } else {
        path.to_owned()
    };
    if path
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#')
    {
        return Err(bad(
            "the path must not contain spaces, control characters, '?' or '#'",
        ));
    }
    Ok(PublicGateway { host, port, path })
}

/// One entry of `HTTVPS_CP_PUBLIC_GATEWAY`: a gateway address, optionally of a region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicEndpoint {
    /// The region code (lower case), when the entry names one (`eu=host:port/path`).
    pub region: Option<String>,
    pub gateway: PublicGateway,
}

/// Parses the configured public gateways: a comma-separated list of `[REGION=]host[:port][/path]`
/// (at least one).
pub fn parse_public_gateways(value: &str) -> Result<Vec<PublicEndpoint>, LinkError> {
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        // A host never contains '=', so an '=' before the path separates the region.
        let (region, address) = match entry.split_once('=') {
            Some((region, address)) if !region.contains('/') => {
                let code = region.trim().to_ascii_lowercase();
                let well_formed = !code.is_empty()
                    && code.len() <= 32
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
                if !well_formed {
                    return Err(LinkError::PublicGateway {
                        value: entry.to_owned(),
                        reason: "the region code must be letters, digits and '-'".into(),
                    });
                }
                (Some(code), address)
            }
            _ => (None, entry),
        };
        out.push(PublicEndpoint {
            region,
            gateway: parse_public_gateway(address)?,
        });
    }
    if out.is_empty() {
        return Err(LinkError::PublicGateway {
            value: value.to_owned(),
            reason: "no gateway address".into(),
        });
    }
    Ok(out)
}

/// A device's link to one public gateway endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceLink {
    /// The endpoint's region, when configured.
    pub region: Option<String>,
    pub link: ConnectionLink,
}

/// The device's links, one per public gateway endpoint, in configured order; endpoints of a
/// region outside `allowed_regions` (when not empty) are left out, unless that leaves none.
pub fn device_links(
    config: &ServeConfig,
    device_id: Uuid,
    token: &str,
    name: &str,
    allowed_regions: &[String],
) -> Result<Vec<DeviceLink>, LinkError> {
    let endpoints = parse_public_gateways(&config.public_gateway)?;
    let allowed = |e: &&PublicEndpoint| {
        allowed_regions.is_empty()
            || e.region
                .as_deref()
                .is_none_or(|r| allowed_regions.iter().any(|a| a.eq_ignore_ascii_case(r)))
    };
    let mut chosen: Vec<&PublicEndpoint> = endpoints.iter().filter(allowed).collect();
    if chosen.is_empty() {
        chosen = endpoints.iter().collect();
    }
    let several = endpoints.len() > 1;
    chosen
        .into_iter()
        .map(|e| {
            // With several endpoints the label says which one (clients list them by name).
            let label = match (&e.region, several) {
                (Some(region), true) => format!("{} ({region})", name.trim()),
                (None, true) => format!("{} ({})", name.trim(), e.gateway.host),
                _ => name.to_owned(),
            };
            Ok(DeviceLink {
                region: e.region.clone(),
                link: link_to(config, &e.gateway, device_id, token, &label)?,
            })
        })
        .collect()
}

/// Parses a certificate fingerprint: 64 hex digits, colons and spaces ignored.
pub fn parse_fingerprint(value: &str) -> Result<[u8; 32], LinkError> {
    let hex: String = value
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(LinkError::Fingerprint);
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte =
            u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| LinkError::Fingerprint)?;
    }
    Ok(out)
}

/// Checks the link settings of the configuration (so a device is not created when its link
/// cannot be made).
pub fn check_config(config: &ServeConfig) -> Result<(), LinkError> {
    device_links(config, Uuid::nil(), "check", "check", &[]).map(|_| ())
}

/// The connection link of a device to the first public gateway endpoint.
pub fn device_link(
    config: &ServeConfig,
    device_id: Uuid,
    token: &str,
    name: &str,
) -> Result<ConnectionLink, LinkError> {
    let endpoints = parse_public_gateways(&config.public_gateway)?;
    link_to(config, &endpoints[0].gateway, device_id, token, name)
}

/// The connection link of a device to one gateway address.
fn link_to(
    config: &ServeConfig,
    gateway: &PublicGateway,
    device_id: Uuid,
    token: &str,
    name: &str,
) -> Result<ConnectionLink, LinkError> {
    let gateway = gateway.clone();
    let fingerprint = config
        .gateway_cert_sha256
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_fingerprint)
        .transpose()?;
    let sni = match config
        .gateway_sni
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(sni) => {
            let normalized = normalize_host(sni).map_err(|_| LinkError::Sni(sni.to_owned()))?;
            if normalized.parse::<std::net::IpAddr>().is_ok() {
                return Err(LinkError::Sni(sni.to_owned()));
            }
            Some(normalized)
        }
        None => None,
    };
    let subprotocol = match config
        .gateway_subprotocol
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(token) if httvps_proto::link::is_subprotocol_token(token) => Some(token.to_owned()),
        Some(token) => return Err(LinkError::Subprotocol(token.to_owned())),
        None => None,
    };
    let name = name.trim();
    Ok(ConnectionLink {
        device_id: device_id.to_string(),
        token: token.to_owned(),
        host: gateway.host,
        port: gateway.port,
        path: gateway.path,
        fingerprint,
        sni,
        subprotocol,
        name: (!name.is_empty()).then(|| name.to_owned()),
    })
}

fn qr(text: &str) -> Result<QrCode, LinkError> {
    QrCode::new(text.as_bytes()).map_err(|e| LinkError::Qr(e.to_string()))
}

/// The QR code of `text` as an SVG document.
pub fn qr_svg(text: &str) -> Result<String, LinkError> {
    Ok(qr(text)?
        .render::<svg::Color>()
        .min_dimensions(256, 256)
        .build())
}

/// The QR code of `text` for a terminal (two modules per character, light on dark so it scans
/// on dark terminal themes too).
pub fn qr_terminal(text: &str) -> Result<String, LinkError> {
    Ok(qr(text)?
        .render::<unicode::Dense1x2>()
        .dark_color(unicode::Dense1x2::Light)
        .light_color(unicode::Dense1x2::Dark)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(public: &str) -> ServeConfig {
        let mut c = ServeConfig::for_database("sqlite::memory:");
        c.public_gateway = public.into();
        c
    }

    #[test]
    fn public_gateway_forms() {
        let g = parse_public_gateway("vpn.Example.com:8443/s3cret").unwrap();
        assert_eq!(
            (g.host.as_str(), g.port, g.path.as_str()),
            ("vpn.example.com", 8443, "/s3cret")
        );
        let g = parse_public_gateway("[2001:db8::1]:443/x/y").unwrap();
        assert_eq!(
            (g.host.as_str(), g.port, g.path.as_str()),
            ("2001:db8::1", 443, "/x/y")
        );
        let g = parse_public_gateway("[2001:db8::1]").unwrap();
        assert_eq!((g.port, g.path.as_str()), (443, "/httvps"));
        let g = parse_public_gateway("wss://10.0.0.1/").unwrap();
        assert_eq!(
            (g.host.as_str(), g.port, g.path.as_str()),
            ("10.0.0.1", 443, "/httvps")
        );
        for bad in [
            "",
            ":443",
            "2001:db8::1:443",
            "[2001:db8::1",
            "[nope]:1",
            "h:0",
            "h:70000",
            "h:x",
            "bad host:1",
            "u@h:1",
            "h:1/a b",
            "h:1/a?b",
            "300.1.1.1:1",
        ] {
            assert!(
                parse_public_gateway(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
    }

    #[test]
    fn links_round_trip_and_qr_codes_render() {
        let mut c = config("[2001:db8::7]:8443/p4th");
        c.gateway_cert_sha256 = Some("AB:".repeat(31) + "AB");
        c.gateway_sni = Some("vpn.example.com".into());
        let id = Uuid::new_v4();
        let link = device_link(&c, id, "tok-en_123", "Mia's phone").unwrap();
        let text = link.to_string();
        let parsed = ConnectionLink::parse(&text).unwrap();
        assert_eq!(parsed, link);
        assert_eq!(parsed.device_id, id.to_string());
        assert_eq!(parsed.fingerprint, Some([0xab; 32]));
        assert_eq!(parsed.websocket_url(), "wss://[2001:db8::7]:8443/p4th");
        assert!(qr_svg(&text).unwrap().contains("<svg"));
        assert!(qr_terminal(&text).unwrap().lines().count() > 10);
        c.gateway_cert_sha256 = Some("xyz".into());
        assert_eq!(check_config(&c), Err(LinkError::Fingerprint));
        c.gateway_cert_sha256 = None;
        c.gateway_sni = Some("10.0.0.1".into());
        assert!(matches!(check_config(&c), Err(LinkError::Sni(_))));
        c.gateway_sni = None;
        c.gateway_subprotocol = Some("k7Qz-9".into());
        let link = device_link(&c, id, "tok", "x").unwrap();
        assert_eq!(link.subprotocol.as_deref(), Some("k7Qz-9"));
        assert!(link.to_string().contains("proto=k7Qz-9"));
        c.gateway_subprotocol = Some("a b".into());
        assert!(matches!(check_config(&c), Err(LinkError::Subprotocol(_))));
    }

    #[test]
    fn several_public_gateways_make_one_link_each_filtered_by_region() {
        let mut c =
            config("eu=vpn-eu.example.com/p1, us=vpn-us.example.com:8443/p2,any.example.com");
        let id = Uuid::new_v4();
        let all = device_links(&c, id, "tok", "Laptop", &[]).unwrap();
        let hosts: Vec<_> = all.iter().map(|l| l.link.host.as_str()).collect();
        assert_eq!(
            hosts,
            [
                "vpn-eu.example.com",
                "vpn-us.example.com",
                "any.example.com"
            ]
        );
        assert_eq!(all[0].region.as_deref(), Some("eu"));
        assert_eq!(all[1].link.port, 8443);
        assert_eq!(all[0].link.name.as_deref(), Some("Laptop (eu)"));
        assert_eq!(
            device_link(&c, id, "tok", "Laptop (eu)").unwrap(),
            all[0].link
        );
        let us_only = device_links(&c, id, "tok", "Laptop", &["US".into()]).unwrap();
        let regions: Vec<_> = us_only.iter().map(|l| l.region.as_deref()).collect();
        assert_eq!(regions, [Some("us"), None]);
        c.public_gateway = "eu=a.example.com".into();
        let none_left = device_links(&c, id, "tok", "L", &["us".into()]).unwrap();
        assert_eq!(none_left.len(), 1);
        assert_eq!(none_left[0].link.name.as_deref(), Some("L"));
        for bad in ["", " , ", "e u=a.example.com", "eu=", "eu=bad host"] {
            c.public_gateway = bad.into();
            assert!(check_config(&c).is_err(), "{bad:?} should be refused");
        }
    }
}
