//! The audit log: every admin change, newest first.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::page;
use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{AdminCaller, ApiQuery};
use crate::model::{AuditEntry, Millis};
use crate::store::AuditFilter;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// `user`, `plan`, `subscription`, `device`, `region`, `node_group`, `node`, `session`,
    /// `gateway` or `admin`.
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// Only entries at or after this time, Unix ms.
    #[param(minimum = 0)]
    pub since: Option<Millis>,
    /// Most rows to return, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// Rows to skip (default 0).
    #[param(minimum = 0)]
    pub offset: Option<i64>,
}

/// Lists audit entries, newest first.
#[utoipa::path(get, path = "/v1/admin/audit", tag = "admin", params(AuditQuery),
    responses((status = 200, body = Vec<AuditEntry>), (status = 422, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn list_audit(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    for (field, value) in [("target_type", &q.target_type), ("target_id", &q.target_id)] {
        if value
            .as_ref()
            .is_some_and(|v| v.len() > 128 || v.chars().any(char::is_control))
        {
            return Err(ApiError::Validation(format!(
                "{field} must have at most 128 characters and no control characters"
            )));
        }
    }
    if q.since.is_some_and(|s| s < 0) {
        return Err(ApiError::Validation(
            "since must be a Unix millisecond time".into(),
        ));
    }
    let page = page(q.limit, q.offset)?;
    let filter = AuditFilter {
        target_type: q.target_type,
        target_id: q.target_id,
        since: q.since,
        limit: page.limit,
    };
    Ok(Json(
        state.store.list_audit_after(&filter, page.offset).await?,
    ))
}
