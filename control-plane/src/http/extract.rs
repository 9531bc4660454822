//! Request extractors that turn every bad input into a problem document: JSON bodies, paths and
//! queries with precise messages, and the two kinds of caller (admins with a JWT, gateways with
//! a service token).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRef, FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::app::AppState;
use crate::auth::token;
use crate::error::ApiError;
use crate::model::{now_ms, Role};
use crate::store::GatewayAuth;

/// A JSON body; malformed JSON and wrong types are 400/422 problems naming the field.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Validation(e.body_text())),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::BadJson(
                "expected Content-Type: application/json".into(),
            )),
            Err(e) => Err(ApiError::BadJson(e.body_text())),
        }
    }
}

/// Path parameters; an id that is not a UUID is a 400 problem.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e: PathRejection| {
                ApiError::Validation(format!("bad path parameter: {}", e.body_text()))
            })
    }
}

/// Query parameters with problem-document errors.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e: QueryRejection| {
                ApiError::Validation(format!("bad query: {}", e.body_text()))
            })
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
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

impl<S: Send + Sync> FromRequestParts<S> for AdminCaller
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        let token = bearer(parts).ok_or(ApiError::Unauthenticated)?;
        let claims = state.jwt.verify(token).ok_or(ApiError::Unauthenticated)?;
        let admin = state
            .store
            .get_admin(claims.sub)
            .await
            .map_err(|_| ApiError::Unauthenticated)?;
        if admin.disabled {
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

impl<S: Send + Sync> FromRequestParts<S> for GatewayCaller
where
    AppState: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let state = AppState::from_ref(state);
        let token = bearer(parts).ok_or(ApiError::Unauthenticated)?;
        let auth = state
            .store
            .authenticate_gateway(&token::hash(token), now_ms())
            .await?;
        auth.map(GatewayCaller).ok_or(ApiError::Unauthenticated)
    }
}
