//! Usage reports, counted exactly once per (gateway, report id).

use axum::extract::State;
use axum::Json;
use httvps_contract::routes;
use httvps_contract::usage::{UsageReport, UsageReportResponse};

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{ApiJson, GatewayCaller};
use crate::model::now_ms;
use crate::store::UsageRecordInput;

/// Ingests a batch of byte counts, exactly once per (gateway, report id).
#[utoipa::path(post, path = routes::REPORT_USAGE, tag = "gateway", request_body = UsageReport,
    responses((status = 200, body = UsageReportResponse), (status = 422, body = crate::error::Problem)),
    security(("gateway_token" = [])))]
pub async fn report_usage(
    State(state): State<AppState>,
    GatewayCaller(gw): GatewayCaller,
    ApiJson(report): ApiJson<UsageReport>,
) -> ApiResult<Json<UsageReportResponse>> {
    report.check().map_err(|e| ApiError::Validation(e.0))?;
    let records = report
        .records
        .iter()
        .map(|r| {
            // Checked above to be at most 2^50: they fit the store's signed columns.
            let bytes = |b: u64| {
                i64::try_from(b).map_err(|_| ApiError::Validation("byte count too large".into()))
            };
            Ok(UsageRecordInput {
                session_id: r.session_id,
                device_id: r.device_id,
                node_id: r.node_id,
                bytes_up: bytes(r.bytes_up)?,
                bytes_down: bytes(r.bytes_down)?,
                at: r.at,
            })
        })
        .collect::<ApiResult<Vec<_>>>()?;
    let fresh = state
        .store
        .ingest_usage(gw.gateway.id, &report.report_id, &records, now_ms())
        .await?;
    if fresh {
        let devices: Vec<_> = records.iter().map(|r| r.device_id).collect();
        state.validation.forget_users_of(&devices);
    }
    metrics::counter!("httvps_cp_usage_reports_total", "result" => if fresh { "accepted" } else { "duplicate" }).increment(1);
    Ok(Json(UsageReportResponse {
        accepted: true,
        duplicate: !fresh,
    }))
}
