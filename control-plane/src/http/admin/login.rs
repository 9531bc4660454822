//! `POST /v1/admin/login`: username and password for a short-lived JWT. Unknown users, disabled
//! admins and wrong passwords get the same 401 after the same work (an unknown username is
//! checked against a decoy hash). Failed attempts are limited per username and client address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::blocking;
use crate::app::AppState;
use crate::auth::password;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::ApiJsonAnyText;
use crate::model::{Millis, Role};

/// Failed logins allowed per (username, address) within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 10;
/// How long failed logins are remembered.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Most (username, address) pairs remembered (bounded memory under a spray of usernames).
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    /// When the token stops working, Unix ms.
    pub expires_at: Millis,
    pub role: Role,
}

/// The client's address as the TCP connection saw it (proxy headers are not trusted).
#[derive(Debug)]
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |c| c.0.ip());
        Ok(ClientAddr(ip))
    }
}

type Key = (String, IpAddr);

#[derive(Debug, Default)]
struct Failures {
    map: HashMap<Key, (u32, Instant)>,
}

impl Failures {
    fn blocked(&mut self, key: &Key, now: Instant) -> bool {
        match self.map.get(key) {
            Some((n, since)) if now.duration_since(*since) < FAILURE_WINDOW => *n >= MAX_FAILURES,
            Some(_) => {
                self.map.remove(key);
                false
            }
            None => false,
        }
    }

    fn fail(&mut self, key: Key, now: Instant) {
        if self.map.len() >= MAX_TRACKED && !self.map.contains_key(&key) {
            self.map
                .retain(|_, (_, since)| now.duration_since(*since) < FAILURE_WINDOW);
            if self.map.len() >= MAX_TRACKED {
                // Still full: forget the oldest entry rather than grow.
                if let Some(oldest) = self
                    .map
                    .iter()
                    .min_by_key(|(_, (_, since))| *since)
                    .map(|(k, _)| k.clone())
                {
                    self.map.remove(&oldest);
                }
            }
        }
        let entry = self.map.entry(key).or_insert((0, now));
        if now.duration_since(entry.1) >= FAILURE_WINDOW {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
    }

    fn succeed(&mut self, key: &Key) {
        self.map.remove(key);
    }
}

fn failures() -> std::sync::MutexGuard<'static, Failures> {
    static FAILURES: OnceLock<Mutex<Failures>> = OnceLock::new();
    FAILURES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Exchanges an admin's username and password for a JWT.
#[utoipa::path(post, path = "/v1/admin/login", tag = "admin", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(ip): ClientAddr,
    ApiJsonAnyText(req): ApiJsonAnyText<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    if req.username.len() > 254 || req.password.len() > 1024 {
        return Err(ApiError::Validation("username or password too long".into()));
    }
    let key: Key = (req.username.to_lowercase(), ip);
    if failures().blocked(&key, Instant::now()) {
        return Err(ApiError::RateLimited);
    }
    // A name no admin can have is not looked up (PostgreSQL refuses NUL bytes in text).
    let found = if req.username.is_empty() || req.username.chars().any(char::is_control) {
        None
    } else {
        state.store.admin_login(&req.username).await?
    };
    let hash = found
        .as_ref()
        .map_or_else(|| password::decoy_hash().to_owned(), |(_, h, _)| h.clone());
    let password = req.password;
    let valid = blocking(move || password::verify(&password, &hash)).await?;
    let (admin, generation) = match found {
        Some((admin, _, generation)) if valid && !admin.disabled => (admin, generation),
        _ => {
            failures().fail(key, Instant::now());
            // Debug-formatted: quoted and escaped, so a newline or an escape sequence in a
            // name cannot forge a log line or drive the terminal.
            tracing::info!(username = ?req.username, %ip, "admin login refused");
            return Err(ApiError::Unauthenticated);
        }
    };
    failures().succeed(&key);
    let now_secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let (token, exp) = state
        .jwt
        .issue_for_generation(admin.id, &admin.username, admin.role, generation, now_secs)
        .map_err(|e| ApiError::Internal(format!("cannot sign a token: {e}")))?;
    tracing::info!(username = ?admin.username, %ip, "admin logged in");
    Ok(Json(LoginResponse {
        token,
        expires_at: i64::try_from(exp.saturating_mul(1000)).unwrap_or(i64::MAX),
        role: admin.role,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_block_then_expire_and_stay_bounded() {
        let mut f = Failures::default();
        let key: Key = ("root".into(), IpAddr::V4(Ipv4Addr::LOCALHOST));
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(!f.blocked(&key, t0));
            f.fail(key.clone(), t0);
        }
        assert!(f.blocked(&key, t0));
        assert!(!f.blocked(&key, t0 + FAILURE_WINDOW), "the window passed");
        for i in 0..(MAX_TRACKED + 50) {
            f.fail((format!("u{i}"), IpAddr::V4(Ipv4Addr::LOCALHOST)), t0);
        }
        assert!(f.map.len() <= MAX_TRACKED);
        f.fail(key.clone(), t0);
        f.succeed(&key);
        assert!(!f.map.contains_key(&key));
    }
}
