//! Bearer tokens for devices and gateways: 256 random bits, base64url, shown once; only their
//! SHA-256 is stored, and comparisons are constant-time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A new random token (43 base64url characters).
pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The stored form of a token: lowercase hex SHA-256.
pub fn hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    hex::encode(digest)
}

/// Whether `token` hashes to `stored_hash`, in time independent of where they differ.
pub fn matches(token: &str, stored_hash: &str) -> bool {
    hash(token).as_bytes().ct_eq(stored_hash.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_verify_by_hash() {
        let a = generate();
        assert_eq!(a.len(), 43);
        assert_ne!(a, generate());
        let h = hash(&a);
        assert_eq!(h.len(), 64);
        assert!(matches(&a, &h));
        assert!(!matches(&generate(), &h));
    }
}
