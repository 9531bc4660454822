//! The gateway-facing API (see docs/control-plane.md): device validation, node assignment,
//! session lifecycle, usage reports, the pool snapshot and the gateway registry. Every route
//! needs the calling gateway's own service token.
//!
//! `devices.rs` validates devices (`validate_batch.rs` many at once), `nodes.rs` assigns nodes and serves the pool snapshot,
//! `sessions.rs` keeps the session lifecycle, `usage.rs` ingests usage reports; the bodies are
//! `httvps-contract`'s.

mod devices;
mod nodes;
mod session_batch;
mod sessions;
mod usage;
mod validate_batch;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use httvps_contract::routes;
use httvps_contract::session::GatewayHeartbeat;

use super::extract::{ApiJson, GatewayCaller};
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::model::now_ms;

// The handlers with their OpenAPI path items (`__path_*`), for the router and the document.
pub use self::devices::*;
pub use self::nodes::*;
pub use self::session_batch::*;
pub use self::sessions::*;
pub use self::usage::*;
pub use self::validate_batch::*;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(routes::VALIDATE_DEVICE, post(validate_device))
        .route(routes::VALIDATE_DEVICES_BATCH, post(validate_devices_batch))
        .route(routes::ASSIGN_NODE, post(assign_node))
        .route(routes::START_SESSION, post(start_session))
        .route(routes::SESSION_HEARTBEAT, post(session_heartbeat))
        .route(routes::END_SESSION, post(end_session))
        .route(routes::SESSION_BATCH, post(session_batch))
        .route(routes::REPORT_USAGE, post(report_usage))
        .route(routes::POOL, get(pool_snapshot))
        .route(routes::GATEWAY_HEARTBEAT, post(gateway_heartbeat))
}

/// Marks the calling gateway alive in the registry.
#[utoipa::path(post, path = routes::GATEWAY_HEARTBEAT, tag = "gateway", request_body = GatewayHeartbeat, responses((status = 204)), security(("gateway_token" = [])))]
pub async fn gateway_heartbeat(
    State(state): State<AppState>,
    GatewayCaller(gw): GatewayCaller,
    ApiJson(req): ApiJson<GatewayHeartbeat>,
) -> ApiResult<StatusCode> {
    req.check().map_err(|e| ApiError::Validation(e.0))?;
    state
        .store
        .gateway_heartbeat(gw.gateway.id, req.version.as_deref(), now_ms())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests;
