//! The REST API: one module per audience (public, gateway, admin), composed here with the
//! OpenAPI document and its interactive docs.

pub mod admin;
pub mod client;
pub mod extract;
pub mod gateway;
pub mod guard;
pub mod openapi;
pub mod public;
pub mod subscription;

use axum::routing::get;
use axum::Router;
use utoipa_swagger_ui::SwaggerUi;

use crate::app::AppState;
use crate::error::ApiError;

/// Every route of the service.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(public::healthz))
        .route("/readyz", get(public::readyz))
        .route("/metrics", get(public::metrics))
        .route("/sub/{token}", get(subscription::subscription))
        .merge(gateway::routes())
        .merge(admin::routes())
        .merge(SwaggerUi::new("/docs").external_url_unchecked("/openapi.json", openapi::document()))
        .fallback(|| async { ApiError::NotFound("route".into()) })
}
