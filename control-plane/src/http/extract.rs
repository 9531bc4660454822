//! Request extractors that turn every bad input into a problem document: JSON bodies, paths and
//! queries with precise messages, and the two kinds of caller (admins with a JWT, gateways with
//! a service token).

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use utoipa::openapi::path::ParameterIn;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::token;
use crate::domain::validate::shown;
use crate::error::{ApiError, ApiResult};
use crate::http::client::{lock, within, ClientAddr, GATEWAY_WINDOW, MAX_BAD_GATEWAY_TOKENS};
use crate::model::{now_ms, Role};
use crate::store::GatewayAuth;

/// A JSON body; malformed JSON and wrong types are 400/422 problems naming the field, a body
/// over `--max-body-bytes` (with a length or chunked) a 413 problem, and text with a NUL
/// character a 422 problem: PostgreSQL cannot store NUL in text, so it is refused here for
/// every route rather than as a 500 deep in the store.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_body(req, state).await?;
        let value = parse_json::<T>(&bytes)?;
        if has_nul_escape(&bytes) {
            return Err(ApiError::Validation(
                "text must not contain control characters such as NUL (\\u0000)".into(),
            ));
        }
        Ok(ApiJson(value))
    }
}

/// [`ApiJson`] without the NUL check, for bodies whose text never reaches the database (device
/// validation answers `auth_failed` for any token it cannot match, NUL or not; login answers
/// 401 for any name no admin has).
#[derive(Debug)]
pub struct ApiJsonAnyText<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJsonAnyText<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = json_body(req, state).await?;
        parse_json::<T>(&bytes).map(ApiJsonAnyText)
    }
}

/// The body of a request that says it is JSON.
async fn json_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    if !is_json(req.headers()) {
        return Err(ApiError::BadJson(
            "expected Content-Type: application/json".into(),
        ));
    }
    read_body(req, state).await
}

/// The whole body, within the body limit (413 problem beyond it).
pub async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|e: BytesRejection| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadJson(e.body_text())
            }
        })
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match axum::Json::<T>::from_bytes(bytes) {
        Ok(axum::Json(v)) => Ok(v),
        Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Validation(e.body_text())),
        Err(e) => Err(ApiError::BadJson(e.body_text())),
    }
}

/// `application/json` or `application/<something>+json`, parameters aside.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Whether valid JSON text holds a `\u0000` escape, the only way JSON can carry a NUL (a raw
/// control character is not valid JSON). An escape starts at a backslash preceded by an even
/// number of backslashes.
pub fn has_nul_escape(json: &[u8]) -> bool {
    const ESCAPE: &[u8] = b"\\u0000";
    json.windows(ESCAPE.len())
        .enumerate()
        .filter(|(_, w)| *w == ESCAPE)
        .any(|(at, _)| json[..at].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 0)
}

/// Path parameters; an id that is not a UUID is a 400 problem.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.path().contains("%00") {
            return Err(ApiError::Validation(
                "bad path parameter: NUL character".into(),
            ));
        }
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e: PathRejection| {
                ApiError::Validation(format!("bad path parameter: {}", e.body_text()))
            })
    }
}

/// Query parameters with problem-document errors: a parameter `T` does not declare (in the
/// OpenAPI document, through its `IntoParams`) is a 400 problem naming it, a bad value a 422.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

/// The first query parameter that is not one of `T`'s.
fn unknown_parameter<T: IntoParams>(query: &str) -> Option<ApiError> {
    let known: Vec<String> = T::into_params(|| Some(ParameterIn::Query))
        .into_iter()
        .map(|p| p.name)
        .collect();
    let unknown = url::form_urlencoded::parse(query.as_bytes())
        .map(|(name, _)| name)
        .find(|name| !known.iter().any(|k| k == name))?;
    let takes = if known.is_empty() {
        "no query parameters".to_owned()
    } else {
        known.join(", ")
    };
    Some(ApiError::UnknownParameter(format!(
        "unknown query parameter {}; this operation takes {takes}",
        shown(&unknown)
    )))
}

impl<S: Send + Sync, T: DeserializeOwned + IntoParams> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if let Some(e) = parts.uri.query().and_then(unknown_parameter::<T>) {
            return Err(e);
        }
        LenientQuery::<T>::from_request_parts(parts, state)
            .await
            .map(|LenientQuery(v)| ApiQuery(v))
    }
}

/// [`ApiQuery`] that ignores parameters it does not know: for subscription URLs, which client
/// apps fetch with parameters of their own.
#[derive(Debug)]
pub struct LenientQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for LenientQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        if parts.uri.query().is_some_and(|q| q.contains("%00")) {
            return Err(ApiError::Validation("bad query: NUL character".into()));
        }
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| LenientQuery(v))
            .map_err(|e: QueryRejection| {
                ApiError::Validation(format!("bad query: {}", e.body_text()))
            })
    }
}

/// The token of `Authorization: Bearer <token>`; the scheme is case-insensitive (RFC 7235).
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim_start();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// An authenticated admin. The token's admin must still exist and be enabled.
#[derive(Clone, Debug)]
pub struct AdminCaller {
    pub id: Uuid,
    pub username: String,
    pub role: Role,
}

impl AdminCaller {
    /// The audit actor name.
    pub fn actor(&self) -> String {
        format!("admin:{}", self.username)
    }

    /// Refuses callers below `role` (viewer < operator < admin).
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if rank(self.role) >= rank(role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "this needs the {role} role; you are {}",
                self.role
            )))
        }
    }
}

fn rank(role: Role) -> u8 {
    match role {
        Role::Viewer => 0,
        Role::Operator => 1,
        Role::Admin => 2,
    }
}

// Each extractor here and `ClientAddr` (client.rs) implements axum's `FromRequestParts`; the
// impl headers repeat, the bodies do not.
impl<S: Send + Sync> FromRequestParts<S> for AdminCaller
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        let token = bearer(parts).ok_or(ApiError::Unauthenticated)?;
        let claims = state.jwt.verify(token).ok_or(ApiError::Unauthenticated)?;
        let (admin, generation) = state
            .store
            .admin_session(claims.sub)
            .await
            .map_err(|_| ApiError::Unauthenticated)?;
        // A password change since the token was issued ends it.
        if admin.disabled || generation != claims.gen {
            return Err(ApiError::Unauthenticated);
        }
        // The stored role wins over the token's, so a demotion takes effect at once.
        Ok(AdminCaller {
            id: admin.id,
            username: admin.username,
            role: admin.role,
        })
    }
}

/// An authenticated gateway.
#[derive(Clone, Debug)]
pub struct GatewayCaller(pub GatewayAuth);

/// The gateway a token hash authenticates: from the validation cache, else from the store (and
/// then cached; only tokens that work are).
async fn authenticate_gateway(state: &AppState, hash: &str) -> ApiResult<Option<GatewayAuth>> {
    let now = now_ms();
    if let Some(auth) = state.validation.gateway(hash, now) {
        return Ok(Some(auth));
    }
    let _flight = state.validation.computing_gateway(hash).await;
    // Another request may have verified it while this one waited.
    if let Some(auth) = state.validation.gateway_after_wait(hash, now_ms()) {
        return Ok(Some(auth));
    }
    let epoch = state.validation.epoch();
    let auth = state.store.authenticate_gateway(hash, now).await?;
    if let Some(auth) = &auth {
        state
            .validation
            .keep_gateway(hash, auth.clone(), epoch, now);
    }
    Ok(auth)
}

impl<S: Send + Sync> FromRequestParts<S> for GatewayCaller
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    /// Bad tokens are limited per client address: after [`MAX_BAD_GATEWAY_TOKENS`] within a
    /// minute, every call from there with a token gets 429 until the minute has passed. A call
    /// without a token guesses nothing: it gets 401 and is not counted.
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Some(token) = bearer(parts).map(str::to_owned) else {
            return Err(ApiError::Unauthenticated);
        };
        let ClientAddr(ip) = ClientAddr::from_request_parts(parts, state).await?;
        let state = AppState::from_ref(state);
        let limits = &state.auth_limits;
        let now = std::time::Instant::now();
        if let Some((n, since)) = lock(&limits.gateways).get(&ip, now) {
            if n >= MAX_BAD_GATEWAY_TOKENS {
                let left = GATEWAY_WINDOW.saturating_sub(now - since);
                return Err(ApiError::RateLimited(left.as_secs() + 1));
            }
        }
        let auth = authenticate_gateway(&state, &token::hash(&token)).await?;
        match auth {
            Some(auth) if auth.allowed_from.is_empty() || within(&auth.allowed_from, ip) => {
                Ok(GatewayCaller(auth))
            }
            Some(_) => {
                // A token used from outside its allow-list counts as a bad one.
                lock(&limits.gateways).fail(ip, now);
                Err(ApiError::Forbidden(format!(
                    "this gateway token may not be used from {ip}"
                )))
            }
            None => {
                lock(&limits.gateways).fail(ip, now);
                Err(ApiError::Unauthenticated)
            }
        }
    }
}
