//! Device secrets sealed at rest, so an operator can show a device's link and subscription URL
//! again: XChaCha20-Poly1305 under the control plane's secret key (`HTTVPS_CP_SECRET_KEY` or
//! `HTTVPS_CP_SECRET_KEY_FILE`), a random 192-bit nonce per seal, and the row and purpose as
//! associated data so a sealed value moved to another device or column does not open.
//!
//! Validation never needs the key: it still compares SHA-256 hashes. Without the key the sealed
//! values are useless, and a lost key only means links cannot be shown until tokens are rotated.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use uuid::Uuid;

use crate::config::ServeConfig;

/// Version prefix of a sealed value (a later key or algorithm gets another).
const PREFIX: &str = "v1.";
const NONCE_LEN: usize = 24;

/// What a sealed secret is, bound into its associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A device token (`devices.token_sealed`).
    DeviceToken,
    /// A subscription URL token (`devices.sub_token_sealed`).
    SubscriptionToken,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::DeviceToken => "device-token",
            Purpose::SubscriptionToken => "subscription-token",
        }
    }
}

/// Why a key could not be had or a value not be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "the secret key must be 32 bytes as 64 hex digits or base64 (e.g. `openssl rand -hex 32`)"
    )]
    BadKey,
    #[error("secret key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Wrong key, another row's value, or damaged.
    #[error("the sealed value does not open with this key")]
    Open,
}

/// The key secrets are sealed with.
#[derive(Clone)]
pub struct SealKey {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for SealKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealKey(<secret>)")
    }
}

impl SealKey {
    pub fn from_bytes(key: &[u8; 32]) -> SealKey {
        SealKey {
            cipher: XChaCha20Poly1305::new(&(*key).into()),
        }
    }

    /// A key from text: 64 hex digits, or base64 (standard or URL-safe, padded or not) of 32
    /// bytes.
    pub fn parse(text: &str) -> Result<SealKey, SealError> {
        let t = text.trim();
        let bytes = hex::decode(t)
            .ok()
            .or_else(|| STANDARD.decode(t).ok())
            .or_else(|| URL_SAFE_NO_PAD.decode(t.trim_end_matches('=')).ok())
            .ok_or(SealError::BadKey)?;
        let key: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadKey)?;
        Ok(SealKey::from_bytes(&key))
    }

    /// A new random key and its text form (hex).
    pub fn generate() -> (SealKey, String) {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        (SealKey::from_bytes(&key), hex::encode(key))
    }

    /// Reads the key in `path`, or writes a new one there (mode 0600) when the file is missing.
    pub fn load_or_create(path: &Path) -> Result<SealKey, SealError> {
        let key_file = |source| SealError::KeyFile {
            path: path.to_owned(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => SealKey::parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (key, text) = SealKey::generate();
                write_private(path, &format!("{text}\n")).map_err(key_file)?;
                tracing::info!(path = %path.display(), "generated the secret key that seals device secrets");
                Ok(key)
            }
            Err(e) => Err(key_file(e)),
        }
    }

    fn aad(purpose: Purpose, device: Uuid) -> String {
        format!("httvps/{}/{device}", purpose.label())
    }

    /// Seals `secret` for `device`: `v1.` and base64url(nonce ‖ ciphertext ‖ tag).
    pub fn seal(&self, purpose: Purpose, device: Uuid, secret: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = Self::aad(purpose, device);
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            // Encryption fails only for messages beyond 256 GiB.
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// Opens what [`SealKey::seal`] made for the same purpose and device.
    pub fn open(&self, purpose: Purpose, device: Uuid, sealed: &str) -> Result<String, SealError> {
        let raw = sealed
            .strip_prefix(PREFIX)
            .and_then(|b| URL_SAFE_NO_PAD.decode(b).ok())
            .filter(|raw| raw.len() > NONCE_LEN)
            .ok_or(SealError::Open)?;
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| SealError::Open)?;
        let aad = Self::aad(purpose, device);
        let plain = self
            .cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: body,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| SealError::Open)?;
        String::from_utf8(plain).map_err(|_| SealError::Open)
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

/// The key the configuration gives: `--secret-key`, else `--secret-key-file` (created when
/// missing), else, for an SQLite file database, `<database file>.key` beside it (created when
/// missing: the one-machine default), for an in-memory one a key of this process. `None` for
/// PostgreSQL without a configured key: secrets are then not kept, and links cannot be shown
/// again (the API says so).
pub fn key_from_config(config: &ServeConfig) -> Result<Option<SealKey>, SealError> {
    if let Some(text) = config
        .secret_key
        .as_deref()
        .filter(|t| !t.trim().is_empty())
    {
        return SealKey::parse(text).map(Some);
    }
    if let Some(path) = &config.secret_key_file {
        return SealKey::load_or_create(path).map(Some);
    }
    let Some(rest) = config.database_url.strip_prefix("sqlite:") else {
        tracing::warn!("no HTTVPS_CP_SECRET_KEY: device links cannot be shown again after creation (set it on every replica)");
        return Ok(None);
    };
    let file = rest.trim_start_matches("//");
    let file = file.split('?').next().unwrap_or_default();
    if file.is_empty() || file == ":memory:" || rest.contains("mode=memory") {
        return Ok(Some(SealKey::generate().0));
    }
    SealKey::load_or_create(Path::new(&format!("{file}.key"))).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_for_their_device_and_purpose() {
        let (key, text) = SealKey::generate();
        let device = Uuid::new_v4();
        let sealed = key.seal(Purpose::DeviceToken, device, "s3cret");
        assert!(!sealed.contains("s3cret"));
        assert_ne!(sealed, key.seal(Purpose::DeviceToken, device, "s3cret"));
        assert_eq!(
            key.open(Purpose::DeviceToken, device, &sealed).unwrap(),
            "s3cret"
        );
        let again = SealKey::parse(&text).unwrap();
        assert_eq!(
            again.open(Purpose::DeviceToken, device, &sealed).unwrap(),
            "s3cret"
        );
        assert!(key
            .open(Purpose::SubscriptionToken, device, &sealed)
            .is_err());
        assert!(key
            .open(Purpose::DeviceToken, Uuid::new_v4(), &sealed)
            .is_err());
        assert!(SealKey::generate()
            .0
            .open(Purpose::DeviceToken, device, &sealed)
            .is_err());
        assert!(key.open(Purpose::DeviceToken, device, "v1.AAAA").is_err());
        assert!(SealKey::parse("short").is_err());
        assert!(SealKey::parse(&STANDARD.encode([7u8; 32])).is_ok());
    }

    #[test]
    fn a_key_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let a = SealKey::load_or_create(&path).unwrap();
        let b = SealKey::load_or_create(&path).unwrap();
        let device = Uuid::new_v4();
        let sealed = a.seal(Purpose::DeviceToken, device, "x");
        assert_eq!(b.open(Purpose::DeviceToken, device, &sealed).unwrap(), "x");
    }
}
