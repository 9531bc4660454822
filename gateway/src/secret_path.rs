//! The secret WebSocket path is the gateway's only shared secret with the public: a prober who
//! guesses it gets a 101 and knows the server. So it has no default, and a path a prober could
//! try (short, or one of the paths every WebSocket proxy guide uses) is refused.

/// Base64url characters in the path's longest segment needed for 128 bits (22 × 6 = 132).
pub const MIN_SECRET_CHARS: usize = 22;

/// Paths tunnelling tools and guides use; probers try these first.
const WELL_KNOWN: &[&str] = &[
    "/",
    "/httvps",
    "/ws",
    "/wss",
    "/websocket",
    "/socket",
    "/ray",
    "/v2ray",
    "/vless",
    "/vmess",
    "/trojan",
    "/proxy",
    "/tunnel",
    "/vpn",
];

/// Why a secret path is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WeakPath {
    /// Not an absolute path, or with a query.
    #[error("must start with / and carry no query or fragment")]
    Malformed,
    /// Empty: the operator gave none.
    #[error("is required (no default): generate one, e.g. \"/$(head -c 24 /dev/urandom | base64 | tr '+/' '-_')\"")]
    Missing,
    /// A path probers try.
    #[error("{0:?} is a well-known path that probers try; generate a random one")]
    WellKnown(String),
    /// Too little randomness.
    #[error(
        "has no segment of at least {MIN_SECRET_CHARS} base64url characters (128 bits); \
         generate a random one"
    )]
    Short,
}

/// Checks the secret path; `allow_weak` (development) skips the strength rules only.
pub fn validate(path: &str, allow_weak: bool) -> Result<(), WeakPath> {
    if path.is_empty() {
        return Err(WeakPath::Missing);
    }
    if !path.starts_with('/') || path.contains(['?', '#']) || path.contains(char::is_whitespace) {
        return Err(WeakPath::Malformed);
    }
    if allow_weak {
        return Ok(());
    }
    let normalized = path.trim_end_matches('/').to_ascii_lowercase();
    let normalized = if normalized.is_empty() {
        "/"
    } else {
        &normalized
    };
    if WELL_KNOWN.contains(&normalized) {
        return Err(WeakPath::WellKnown(path.to_owned()));
    }
    if !path.split('/').any(is_random_looking) {
        return Err(WeakPath::Short);
    }
    Ok(())
}

/// A segment of enough base64url characters that is not one character repeated or a
/// dictionary-like run (at least 8 distinct characters, so `aaaa…` does not pass).
fn is_random_looking(segment: &str) -> bool {
    let base64url = segment
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !base64url || segment.len() < MIN_SECRET_CHARS {
        return false;
    }
    let mut seen = [false; 256];
    for b in segment.bytes() {
        seen[usize::from(b)] = true;
    }
    seen.iter().filter(|s| **s).count() >= 8
}

/// A new random path of 24 random bytes (192 bits) in base64url: what the deployments generate.
pub fn generate() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut bytes = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "/{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_paths_are_refused_unless_allowed() {
        for path in ["/httvps", "/ws", "/", "/WebSocket/", "/vless"] {
            assert!(
                matches!(validate(path, false), Err(WeakPath::WellKnown(_))),
                "{path}"
            );
            assert_eq!(validate(path, true), Ok(()), "{path} with the dev flag");
        }
        for path in ["/s3cr3t", "/api/v1/stream", "/aaaaaaaaaaaaaaaaaaaaaaaaaaaa"] {
            assert_eq!(validate(path, false), Err(WeakPath::Short), "{path}");
        }
        // 21 characters: 126 bits, one short.
        assert_eq!(
            validate("/Zq3vN8xL2pR7tW1yB5cD9", false),
            Err(WeakPath::Short)
        );
        assert_eq!(validate("", true), Err(WeakPath::Missing));
        assert_eq!(validate("httvps", true), Err(WeakPath::Malformed));
        assert_eq!(validate("/a?b=1", true), Err(WeakPath::Malformed));
    }

    #[test]
    fn generated_and_random_looking_paths_pass() {
        assert_eq!(validate("/Zq3vN8xL2pR7tW1yB5cD9f", false), Ok(()));
        assert_eq!(
            validate("/static/Zq3vN8xL2pR7tW1yB5c-D_9f/ws", false),
            Ok(())
        );
        let a = generate();
        assert_eq!(a.len(), 1 + 32);
        assert_eq!(validate(&a, false), Ok(()));
        assert_ne!(a, generate());
    }
}
