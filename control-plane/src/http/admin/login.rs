//! `POST /v1/admin/login`: username and password for a short-lived JWT. Unknown users, disabled
//! admins and wrong passwords get the same 401 after the same work (an unknown username is
//! checked against a decoy hash). Failed attempts are limited per username and client address
//! (the address behind trusted proxies, see [`crate::http::client`]): 10 in 15 minutes, then
//! 429; and per account from any address: after 3 in a row each next attempt waits 1 s, 2 s,
//! 4 s, ... up to `--login-backoff-max`.

use std::time::Instant;

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::blocking;
use crate::app::AppState;
use crate::auth::password;
use crate::error::{ApiError, ApiResult};
use crate::http::client::{lock, ClientAddr, MAX_LOGIN_FAILURES};
use crate::http::extract::ApiJsonAnyText;
use crate::model::{Millis, Role};

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
    let limits = state.auth_limits.clone();
    let account = req.username.to_lowercase();
    let key = (account.clone(), ip);
    let now = Instant::now();
    if let Some((n, since)) = lock(&limits.logins).get(&key, now) {
        if n >= MAX_LOGIN_FAILURES {
            let left = crate::http::client::FAILURE_WINDOW.saturating_sub(now - since);
            return Err(ApiError::RateLimited(left.as_secs() + 1));
        }
    }
    if let Some(wait) = lock(&limits.accounts).wait(&account, now) {
        return Err(ApiError::RateLimited(wait.as_secs_f64().ceil() as u64));
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
            let now = Instant::now();
            lock(&limits.logins).fail(key, now);
            lock(&limits.accounts).fail(account, now);
            // Debug-formatted: quoted and escaped, so a newline or an escape sequence in a
            // name cannot forge a log line or drive the terminal.
            tracing::info!(username = ?req.username, %ip, "admin login refused");
            return Err(ApiError::Unauthenticated);
        }
    };
    lock(&limits.logins).forget(&key);
    lock(&limits.accounts).succeed(&account);
    let now_secs = u64::try_from(crate::model::now_ms() / 1000).unwrap_or(0);
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
