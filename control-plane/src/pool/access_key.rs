//! Outline / Shadowsocks access keys and the endpoint of a pool node.
//!
//! Accepted forms:
//! - Outline: `ss://BASE64URL(method:password)@host:port/?outline=1#name` (padding optional,
//!   the standard alphabet is tolerated too);
//! - SIP002 plain userinfo: `ss://method:password@host:port#name` (percent-encoded);
//! - legacy: `ss://BASE64(method:password@host:port)#name`.
//!
//! Only AEAD ciphers that shadowsocks-rust implements are accepted; stream ciphers are refused
//! as insecure and Outline's `aes-192-gcm` gets an explicit error.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, URL_SAFE_NO_PAD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use shadowsocks::config::{ServerConfig, ServerConfigError};
use shadowsocks::crypto::CipherKind;
use shadowsocks::ServerAddr;
use url::Url;

/// Ciphers accepted for pool nodes, strongest-first within each family.
///
/// The first three are what Outline servers offer (minus `aes-192-gcm`); the `2022-blake3-*`
/// ciphers need a base64 key of exactly the cipher's key length.
const SUPPORTED_CIPHERS: &[&str] = &[
    "chacha20-ietf-poly1305",
    "aes-256-gcm",
    "aes-128-gcm",
    "2022-blake3-aes-256-gcm",
    "2022-blake3-aes-128-gcm",
    "2022-blake3-chacha20-poly1305",
];

/// Non-AEAD (stream) ciphers and `none`: no integrity protection, actively probed by censors.
const INSECURE_CIPHERS: &[&str] = &[
    "none",
    "plain",
    "table",
    "rc4",
    "rc4-md5",
    "chacha20",
    "chacha20-ietf",
    "salsa20",
    "bf-cfb",
    "cast5-cfb",
    "des-cfb",
    "idea-cfb",
    "rc2-cfb",
    "seed-cfb",
];

const AES_192_GCM: &str = "aes-192-gcm";

/// Characters escaped in the `#name` fragment of a generated key.
const FRAGMENT_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Characters escaped in plain SIP002 userinfo (`method:password`).
const USERINFO_ESCAPES: &AsciiSet = FRAGMENT_ESCAPES;

/// Lenient base64 decoders for the userinfo: URL-safe first (Outline), then standard.
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a cipher name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    /// Outline offers `aes-192-gcm`; shadowsocks-rust does not implement it.
    #[error(
        "Outline's aes-192-gcm is not supported by shadowsocks-rust; re-key the server with \
         chacha20-ietf-poly1305 or aes-256-gcm"
    )]
    Aes192GcmUnsupported,
    /// A stream (non-AEAD) cipher or `none`.
    #[error("cipher {0:?} is a stream (non-AEAD) cipher and insecure; use chacha20-ietf-poly1305 or aes-256-gcm")]
    Insecure(String),
    /// Anything else that is not in [`supported_ciphers`].
    #[error("unknown or unsupported cipher {name:?}; supported: {supported}", supported = SUPPORTED_CIPHERS.join(", "))]
    Unknown {
        /// The name as given.
        name: String,
    },
}

/// Why a node endpoint (host, port, cipher, secret) is invalid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// The host is neither an IPv4 / IPv6 address nor a valid domain name.
    #[error("invalid host {0:?}: expected an IPv4 or IPv6 address or a domain name")]
    BadHost(String),
    /// Port 0 cannot be connected to.
    #[error("port 0 is not a valid node port")]
    ZeroPort,
    /// The cipher is refused.
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// An empty password / key.
    #[error("the node secret is empty")]
    EmptySecret,
    /// A `2022-blake3-*` key that is not valid base64 (the key itself is never printed).
    #[error("the {cipher} key must be base64 (generate one with `ssservice genkey -m {cipher}`)")]
    KeyEncoding {
        /// Canonical cipher name.
        cipher: String,
    },
    /// A `2022-blake3-*` key of the wrong length.
    #[error("the {cipher} key must decode to {expected} bytes, found {found} (generate one with `ssservice genkey -m {cipher}`)")]
    KeyLength {
        /// Canonical cipher name.
        cipher: String,
        /// Required key length in bytes.
        expected: usize,
        /// Decoded length of the given key.
        found: usize,
    },
}

/// Why an access key could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessKeyError {
    /// The text is not an `ss://` URL.
    #[error("not a Shadowsocks access key: expected a URL starting with ss://")]
    NotShadowsocksUrl,
    /// The URL itself does not parse (the text is not echoed: it holds a secret).
    #[error("malformed access key URL: {0}")]
    MalformedUrl(String),
    /// The `method:password` part is not valid base64 (or not UTF-8 once decoded).
    #[error("the access key's credentials are not valid base64 of method:password")]
    BadBase64,
    /// Decoded credentials lack the `method:password` shape.
    #[error("the access key's credentials must have the form method:password")]
    MissingCredentials,
    /// No host in the key.
    #[error("the access key has no host")]
    MissingHost,
    /// No `:port` after the host (Shadowsocks has no default port worth guessing).
    #[error("the access key has no port")]
    MissingPort,
    /// A SIP003 plugin is required by the key; plugins are not supported.
    #[error("the access key requires a SIP003 plugin, which is not supported")]
    PluginUnsupported,
    /// Host, port, cipher or secret is invalid.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
}

impl From<CipherError> for AccessKeyError {
    fn from(err: CipherError) -> Self {
        AccessKeyError::Endpoint(EndpointError::Cipher(err))
    }
}

/// Where and how to reach one Shadowsocks pool node.
///
/// `Debug` never prints the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct NodeEndpoint {
    /// IPv4 / IPv6 address (without brackets) or domain name.
    pub host: String,
    /// TCP port of the node.
    pub port: u16,
    /// Canonical cipher name, one of [`supported_ciphers`].
    pub cipher: String,
    /// Password (AEAD) or base64 key (`2022-blake3-*`).
    pub secret: String,
}

impl fmt::Debug for NodeEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeEndpoint")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("cipher", &self.cipher)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A parsed access key: the endpoint plus the optional `#name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    /// The node endpoint.
    pub endpoint: NodeEndpoint,
    /// The key's display name (the URL fragment, percent-decoded), if any.
    pub name: Option<String>,
}

/// The cipher names accepted for pool nodes.
pub fn supported_ciphers() -> &'static [&'static str] {
    SUPPORTED_CIPHERS
}

/// Checks a cipher name (case-insensitive) and returns its canonical spelling.
pub fn validate_cipher(name: &str) -> Result<&'static str, CipherError> {
    let lowered = name.trim().to_ascii_lowercase();
    if lowered == AES_192_GCM {
        return Err(CipherError::Aes192GcmUnsupported);
    }
    if let Some(canonical) = SUPPORTED_CIPHERS.iter().find(|c| **c == lowered) {
        return Ok(canonical);
    }
    if is_insecure_cipher(&lowered) {
        return Err(CipherError::Insecure(name.to_owned()));
    }
    Err(CipherError::Unknown {
        name: name.to_owned(),
    })
}

fn is_insecure_cipher(lowered: &str) -> bool {
    INSECURE_CIPHERS.contains(&lowered)
        || lowered.ends_with("-cfb")
        || lowered.ends_with("-cfb1")
        || lowered.ends_with("-cfb8")
        || lowered.ends_with("-cfb128")
        || lowered.ends_with("-ctr")
        || lowered.ends_with("-ofb")
}

/// Maps a validated cipher name to the shadowsocks cipher kind.
fn cipher_kind(name: &str) -> Result<CipherKind, CipherError> {
    let canonical = validate_cipher(name)?;
    canonical
        .parse::<CipherKind>()
        .map_err(|_| CipherError::Unknown {
            name: name.to_owned(),
        })
}

/// Parses an Outline / SIP002 access key.
pub fn parse_access_key(key: &str) -> Result<AccessKey, AccessKeyError> {
    let key = key.trim();
    let Some(rest) = strip_prefix_ignore_case(key, "ss://") else {
        return Err(AccessKeyError::NotShadowsocksUrl);
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if !rest[..authority_end].contains('@') {
        return parse_legacy_key(rest);
    }

    let url = Url::parse(key).map_err(|e| AccessKeyError::MalformedUrl(e.to_string()))?;
    if url.query_pairs().any(|(k, _)| k == "plugin") {
        return Err(AccessKeyError::PluginUnsupported);
    }
    let (method, secret) = credentials(&url)?;
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(AccessKeyError::MissingHost),
    };
    if host.is_empty() {
        return Err(AccessKeyError::MissingHost);
    }
    let port = url.port().ok_or(AccessKeyError::MissingPort)?;
    let name = url
        .fragment()
        .map(|f| percent_decode_str(f).decode_utf8_lossy().into_owned())
        .filter(|n| !n.is_empty());
    let endpoint = NodeEndpoint::new(&host, port, &method, &secret)?;
    Ok(AccessKey { endpoint, name })
}

/// `ss://BASE64(method:password@host:port)#name`, the pre-SIP002 form.
fn parse_legacy_key(rest: &str) -> Result<AccessKey, AccessKeyError> {
    let (body, fragment) = match rest.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (rest, None),
    };
    let body = body.split('?').next().unwrap_or(body);
    // A trailing '/' is either a path separator or (rarely) the last base64 character.
    let decoded = decode_base64_text(body).or_else(|err| match body.strip_suffix('/') {
        Some(trimmed) => decode_base64_text(trimmed),
        None => Err(err),
    })?;
    let (credentials, address) = decoded
        .rsplit_once('@')
        .ok_or(AccessKeyError::MissingCredentials)?;
    let (method, secret) = credentials
        .split_once(':')
        .ok_or(AccessKeyError::MissingCredentials)?;
    let (host, port) = split_host_port(address)?;
    let endpoint = NodeEndpoint::new(host, port, method, secret)?;
    let name = fragment
        .map(|f| percent_decode_str(f).decode_utf8_lossy().into_owned())
        .filter(|n| !n.is_empty());
    Ok(AccessKey { endpoint, name })
}

fn split_host_port(address: &str) -> Result<(&str, u16), AccessKeyError> {
    let (host, port) = if let Some(bracketed) = address.strip_prefix('[') {
        let (host, after) = bracketed
            .split_once(']')
            .ok_or_else(|| EndpointError::BadHost(address.to_owned()))?;
        let port = after.strip_prefix(':').ok_or(AccessKeyError::MissingPort)?;
        (host, port)
    } else {
        address
            .rsplit_once(':')
            .ok_or(AccessKeyError::MissingPort)?
    };
    if host.is_empty() {
        return Err(AccessKeyError::MissingHost);
    }
    if port.is_empty() {
        return Err(AccessKeyError::MissingPort);
    }
    let port = port
        .parse::<u16>()
        .map_err(|_| AccessKeyError::MalformedUrl("invalid port number".to_owned()))?;
    Ok((host, port))
}

/// Method and secret from the URL's userinfo (base64 or plain SIP002).
fn credentials(url: &Url) -> Result<(String, String), AccessKeyError> {
    let user = url.username();
    if user.is_empty() {
        return Err(AccessKeyError::MissingCredentials);
    }
    if let Some(password) = url.password() {
        let method = percent_decode_str(user)
            .decode_utf8()
            .map_err(|_| AccessKeyError::MissingCredentials)?;
        let password = percent_decode_str(password)
            .decode_utf8()
            .map_err(|_| AccessKeyError::MissingCredentials)?;
        return Ok((method.into_owned(), password.into_owned()));
    }
    let user = percent_decode_str(user)
        .decode_utf8()
        .map_err(|_| AccessKeyError::BadBase64)?;
    let decoded = decode_base64_text(&user)?;
    let (method, secret) = decoded
        .split_once(':')
        .ok_or(AccessKeyError::MissingCredentials)?;
    Ok((method.to_owned(), secret.to_owned()))
}

fn decode_base64_text(text: &str) -> Result<String, AccessKeyError> {
    let bytes = URL_SAFE_LENIENT
        .decode(text)
        .or_else(|_| STANDARD_LENIENT.decode(text))
        .map_err(|_| AccessKeyError::BadBase64)?;
    String::from_utf8(bytes).map_err(|_| AccessKeyError::BadBase64)
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

/// Validates a host and returns its normalised form (IPv6 without brackets, domain lowercased).
pub fn normalize_host(host: &str) -> Result<String, EndpointError> {
    let bad = || EndpointError::BadHost(host.to_owned());
    let trimmed = host.trim();
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(trimmed);
    if let Ok(ip) = unbracketed.parse::<Ipv6Addr>() {
        return Ok(ip.to_string());
    }
    if unbracketed != trimmed {
        return Err(bad());
    }
    if let Ok(ip) = trimmed.parse::<Ipv4Addr>() {
        return Ok(ip.to_string());
    }
    if is_valid_domain(trimmed) {
        return Ok(trimmed.trim_end_matches('.').to_ascii_lowercase());
    }
    Err(bad())
}

/// RFC 1123 host names (underscores tolerated, as container names use them); the last label
/// may not be all digits, so malformed IPv4 addresses such as `300.1.1.1` are refused.
fn is_valid_domain(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return false;
    }
    let labels_ok = name.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let last_not_numeric = name
        .rsplit('.')
        .next()
        .is_some_and(|last| !last.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && last_not_numeric
}

impl NodeEndpoint {
    /// Builds a validated endpoint: host checked and normalised, port non-zero, cipher
    /// supported (canonical name stored), secret non-empty and of the right length for
    /// `2022-blake3-*` ciphers.
    pub fn new(host: &str, port: u16, cipher: &str, secret: &str) -> Result<Self, EndpointError> {
        let endpoint = NodeEndpoint {
            host: normalize_host(host)?,
            port,
            cipher: validate_cipher(cipher)?.to_owned(),
            secret: secret.to_owned(),
        };
        endpoint.server_config()?;
        Ok(endpoint)
    }

    /// Re-checks an endpoint loaded from storage.
    pub fn validate(&self) -> Result<(), EndpointError> {
        self.server_config().map(|_| ())
    }

    /// The shadowsocks client configuration for this node.
    ///
    /// The returned value's `Debug` output contains the key: never log it.
    pub fn server_config(&self) -> Result<ServerConfig, EndpointError> {
        if self.port == 0 {
            return Err(EndpointError::ZeroPort);
        }
        if self.secret.is_empty() {
            return Err(EndpointError::EmptySecret);
        }
        let kind = cipher_kind(&self.cipher)?;
        let host = normalize_host(&self.host)?;
        let addr = match host.parse::<std::net::IpAddr>() {
            Ok(ip) => ServerAddr::SocketAddr(SocketAddr::new(ip, self.port)),
            Err(_) => ServerAddr::DomainName(host, self.port),
        };
        let cipher = kind.to_string();
        ServerConfig::new(addr, self.secret.clone(), kind).map_err(|err| match err {
            ServerConfigError::InvalidKeyLength(_, expected, found)
            | ServerConfigError::InvalidUserKeyLength(_, expected, found) => {
                EndpointError::KeyLength {
                    cipher,
                    expected,
                    found,
                }
            }
            ServerConfigError::InvalidKeyEncoding(..)
            | ServerConfigError::InvalidUserKeyEncoding(..) => {
                EndpointError::KeyEncoding { cipher }
            }
        })
    }

    /// `host:port` with IPv6 addresses bracketed (for display and logs; no secret).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// An Outline-style access key: `ss://BASE64URL(method:password)@host:port/?outline=1#name`.
    pub fn to_access_key(&self, name: Option<&str>) -> String {
        let userinfo = URL_SAFE_NO_PAD.encode(format!("{}:{}", self.cipher, self.secret));
        let mut key = format!("ss://{userinfo}@{}/?outline=1", self.address());
        if let Some(name) = name.filter(|n| !n.is_empty()) {
            key.push('#');
            key.extend(utf8_percent_encode(name, FRAGMENT_ESCAPES));
        }
        key
    }

    /// A SIP002 key with plain percent-encoded userinfo: `ss://method:password@host:port`.
    pub fn to_sip002_plain(&self) -> String {
        format!(
            "ss://{}:{}@{}",
            utf8_percent_encode(&self.cipher, USERINFO_ESCAPES),
            utf8_percent_encode(&self.secret, USERINFO_ESCAPES),
            self.address()
        )
    }
}

#[cfg(test)]
mod tests;
