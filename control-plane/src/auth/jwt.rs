//! Short-lived admin session tokens (HS256 JWTs).

use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::Role;

/// What an admin token says.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// The admin's id.
    pub sub: Uuid,
    pub username: String,
    pub role: Role,
    /// Expiry, Unix seconds.
    pub exp: u64,
    /// Issued at, Unix seconds.
    pub iat: u64,
    /// The admin's token generation when it was issued: a password change moves it on and
    /// ends every token issued before.
    #[serde(default)]
    pub gen: i64,
}

/// Signs and checks admin tokens.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_secs: u64,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("ttl_secs", &self.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl_secs: u64) -> Self {
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            ttl_secs,
        }
    }

    pub fn ttl_secs(&self) -> u64 {
        self.ttl_secs
    }

    /// A token for the admin (of token generation 0), valid for the configured time from
    /// `now_secs`.
    pub fn issue(
        &self,
        sub: Uuid,
        username: &str,
        role: Role,
        now_secs: u64,
    ) -> Result<(String, u64), jsonwebtoken::errors::Error> {
        self.issue_for_generation(sub, username, role, 0, now_secs)
    }

    /// A token for the admin under its token generation `gen`.
    pub fn issue_for_generation(
        &self,
        sub: Uuid,
        username: &str,
        role: Role,
        gen: i64,
        now_secs: u64,
    ) -> Result<(String, u64), jsonwebtoken::errors::Error> {
        let exp = now_secs + self.ttl_secs;
        let claims = Claims {
            sub,
            username: username.to_owned(),
            role,
            exp,
            iat: now_secs,
            gen,
        };
        Ok((
            encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?,
            exp,
        ))
    }

    /// The claims of a valid, unexpired token.
    pub fn verify(&self, token: &str) -> Option<Claims> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        decode::<Claims>(token, &self.decoding, &validation)
            .ok()
            .map(|d| d.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_verify_and_reject() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef", 900);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let id = Uuid::new_v4();
        let (token, exp) = keys.issue(id, "alice", Role::Operator, now).unwrap();
        assert_eq!(exp, now + 900);
        let claims = keys.verify(&token).unwrap();
        assert_eq!((claims.sub, claims.role), (id, Role::Operator));
        let other = JwtKeys::new(b"another secret, also 32 bytes...", 900);
        assert!(other.verify(&token).is_none(), "signed with another key");
        let (old, _) = keys.issue(id, "alice", Role::Admin, now - 10_000).unwrap();
        assert!(keys.verify(&old).is_none(), "expired");
        assert!(keys.verify("garbage").is_none());
    }
}
