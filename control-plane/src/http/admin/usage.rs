//! Usage reports from the hourly and daily roll-ups, by device, user, node or node group.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::app::AppState;
use crate::error::{ApiError, ApiResult};
use crate::http::extract::{AdminCaller, ApiQuery};
use crate::model::{now_ms, Millis};
use crate::store::{UsageGroupBy, UsageQuery, UsageRow};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// Longest span of a daily report.
pub const MAX_DAILY_SPAN_DAYS: i64 = 366;
/// Longest span of an hourly report.
pub const MAX_HOURLY_SPAN_DAYS: i64 = 31;

/// What usage is summed by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UsageBy {
    Device,
    #[default]
    User,
    Node,
    Group,
}

/// The size of a bucket.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Granularity {
    Hour,
    #[default]
    Day,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// `device`, `user` (default), `node` or `group`.
    pub by: Option<UsageBy>,
    /// `hour` or `day` (default).
    pub granularity: Option<Granularity>,
    /// Start, Unix ms (default: 30 days, or 24 hours for `hour`, before `to`).
    #[param(minimum = 0)]
    pub from: Option<Millis>,
    /// End (exclusive), Unix ms (default now).
    #[param(minimum = 0)]
    pub to: Option<Millis>,
    /// Only this device / user / node / group.
    pub key: Option<Uuid>,
}

/// Usage per key and bucket (named apart from the gateway's `UsageReportResponse`, the answer
/// to a usage report).
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageTotals {
    pub by: UsageBy,
    pub granularity: Granularity,
    pub from: Millis,
    pub to: Millis,
    /// One row per key and bucket, oldest bucket first.
    pub rows: Vec<UsageRow>,
}

/// Bytes per key and bucket over a period.
#[utoipa::path(get, path = "/v1/admin/usage", tag = "admin", params(UsageParams),
    responses((status = 200, body = UsageTotals), (status = 422, body = crate::error::Problem)), security(("admin_jwt" = [])))]
pub async fn usage_report(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ApiQuery(q): ApiQuery<UsageParams>,
) -> ApiResult<Json<UsageTotals>> {
    let by = q.by.unwrap_or_default();
    let granularity = q.granularity.unwrap_or_default();
    let (max_days, default_span) = match granularity {
        Granularity::Day => (MAX_DAILY_SPAN_DAYS, 30 * DAY_MS),
        Granularity::Hour => (MAX_HOURLY_SPAN_DAYS, 24 * HOUR_MS),
    };
    let to = q.to.unwrap_or_else(now_ms);
    let from = q.from.unwrap_or(to.saturating_sub(default_span));
    if from < 0 || to < 0 {
        return Err(ApiError::Validation(
            "from and to must be Unix millisecond times".into(),
        ));
    }
    if from >= to {
        return Err(ApiError::Validation("from must be before to".into()));
    }
    if to - from > max_days * DAY_MS {
        return Err(ApiError::Validation(format!(
            "a report by {} spans at most {max_days} days",
            if granularity == Granularity::Day {
                "day"
            } else {
                "hour"
            }
        )));
    }
    // Buckets are whole hours or days: a bucket counts when it starts inside the period, so
    // the start is rounded down to its bucket.
    let bucket = if granularity == Granularity::Day {
        DAY_MS
    } else {
        HOUR_MS
    };
    let from = from.div_euclid(bucket) * bucket;
    let group_by = match by {
        UsageBy::Device => UsageGroupBy::Device,
        UsageBy::User => UsageGroupBy::User,
        UsageBy::Node => UsageGroupBy::Node,
        UsageBy::Group => UsageGroupBy::Group,
    };
    let rows = state
        .store
        .usage_report(&UsageQuery {
            group_by,
            daily: granularity == Granularity::Day,
            from,
            to,
            key: q.key,
        })
        .await?;
    Ok(Json(UsageTotals {
        by,
        granularity,
        from,
        to,
        rows,
    }))
}
