//! Usage per day by user, node or node group: a chart of the total and a table per key.

use std::collections::BTreeMap;

use axum::extract::State;
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::{last_days, Names};
use crate::app::AppState;
use crate::console::chart::{self, Bar};
use crate::console::form::Params;
use crate::console::page::{bytes, shell, PageResult};
use crate::console::session::Console;
use crate::model::{now_ms, Millis};
use crate::store::{StoreError, UsageGroupBy, UsageQuery, UsageRow};

#[derive(Debug, Default, Deserialize)]
pub struct UsageParams {
    #[serde(default)]
    by: String,
    days: Option<i64>,
}

/// The usage per day over `days` (from [`last_days`]) up to `now`, by `group_by`, of one key
/// or of all.
pub async fn daily_rows(
    state: &AppState,
    group_by: UsageGroupBy,
    days: &[(Millis, String)],
    now: Millis,
    key: Option<Uuid>,
) -> Result<Vec<UsageRow>, StoreError> {
    state
        .store
        .usage_report(&UsageQuery {
            group_by,
            daily: true,
            from: days.first().map_or(now, |d| d.0),
            to: now + 1,
            key,
        })
        .await
}

/// Daily totals of `rows` over `days`.
pub fn daily_bars(days: &[(i64, String)], rows: &[UsageRow]) -> Vec<Bar> {
    days.iter()
        .map(|(start, label)| {
            let total: i64 = rows
                .iter()
                .filter(|r| r.bucket_start == *start)
                .map(|r| r.bytes_up + r.bytes_down)
                .sum();
            Bar {
                label: label.clone(),
                value: total as f64,
                shown: bytes(total),
            }
        })
        .collect()
}

/// The usage page.
pub async fn show(
    State(state): State<AppState>,
    console: Console,
    Params(p): Params<UsageParams>,
) -> PageResult {
    let (group_by, names) = match p.by.as_str() {
        "node" => (UsageGroupBy::Node, Names::nodes(&state).await?),
        "group" => (UsageGroupBy::Group, Names::groups(&state).await?),
        _ => (UsageGroupBy::User, Names::users(&state).await?),
    };
    let span = p.days.unwrap_or(7).clamp(1, 90);
    let now = now_ms();
    let days = last_days(now, span);
    let rows = daily_rows(&state, group_by, &days, now, None).await?;
    // Per key: (up, down).
    let mut per_key: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for r in &rows {
        let e = per_key.entry(r.key.clone()).or_default();
        e.0 += r.bytes_up;
        e.1 += r.bytes_down;
    }
    let mut table: Vec<_> = per_key.into_iter().collect();
    table.sort_by_key(|(_, (up, down))| std::cmp::Reverse(up + down));
    let name = |key: &str| Uuid::parse_str(key).map_or_else(|_| key.to_owned(), |id| names.of(id));
    let by_label = match group_by {
        UsageGroupBy::Node => "Node",
        UsageGroupBy::Group => "Node group",
        _ => "User",
    };
    let body = html! {
        form class="stacked" method="get" action="/ui/usage" {
            label { "By"
                select name="by" {
                    option value="user" selected[p.by.is_empty() || p.by == "user"] { "user" }
                    option value="node" selected[p.by == "node"] { "node" }
                    option value="group" selected[p.by == "group"] { "node group" }
                }
            }
            label { "Days" input name="days" type="number" min="1" max="90" value=(span); }
            button type="submit" { "Show" }
        }
        p { "From the daily roll-ups (the current hour appears after the next roll-up)." }
        (chart::bars(&format!("Traffic per day, last {span} days"), &daily_bars(&days, &rows)))
        table {
            thead { tr { th { (by_label) } th { "Up" } th { "Down" } th { "Total" } } }
            tbody {
                @for (key, (up, down)) in &table {
                    tr { td { (name(key)) } td { (bytes(*up)) } td { (bytes(*down)) } td { (bytes(up + down)) } }
                }
            }
        }
    };
    Ok(shell(&console, "Usage", "/ui/usage", body))
}
