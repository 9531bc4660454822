//! The admin API: login and CRUD for every resource (being written).

use axum::Router;
use utoipa::OpenApi;

use crate::app::AppState;

#[derive(Debug, OpenApi)]
#[openapi()]
pub struct AdminApi;

pub fn routes() -> Router<AppState> {
    Router::new()
}
