//! The dashboard: live gateways, online sessions, node health, traffic over 24 hours and 7
//! days, and the top users of the week.

use std::collections::HashMap;

use axum::extract::State;
use maud::html;
use uuid::Uuid;

use super::{last_days, Names};
use crate::app::AppState;
use crate::console::chart::{self, Bar};
use crate::console::page::{bytes, shell, PageResult};
use crate::console::session::Console;
use crate::model::{now_ms, NodeHealth, NodeStatus};
use crate::shared;
use crate::store::{SessionFilter, UsageGroupBy, UsageQuery};

const HOUR: i64 = 3_600_000;
/// A gateway seen within this long counts as live when there is no shared store.
const LIVE_WITHIN: i64 = 120_000;

/// The dashboard page.
pub async fn show(State(state): State<AppState>, console: Console) -> PageResult {
    let now = now_ms();
    // With Redis the gateways' own heartbeats; else the registry's last-seen times.
    let live_gateways = if shared::is_shared(&state) {
        state.shared.gateways().await.map_or(0, |g| g.len())
    } else {
        let registered = state.store.list_gateways().await?;
        registered
            .iter()
            .filter(|g| g.last_seen_at.is_some_and(|t| now - t < LIVE_WITHIN))
            .count()
    };
    let online = state
        .store
        .list_sessions(&SessionFilter {
            live_only: true,
            user_id: None,
            device_id: None,
            gateway_id: None,
            node_id: None,
            limit: 1000,
        })
        .await?;
    let nodes = state.store.list_nodes().await?;
    let healthy = nodes
        .iter()
        .filter(|n| n.health == NodeHealth::Healthy)
        .count();
    let unhealthy = nodes
        .iter()
        .filter(|n| n.health == NodeHealth::Unhealthy)
        .count();
    let out_of_service = nodes
        .iter()
        .filter(|n| n.status != NodeStatus::Active)
        .count();
    // The last 24 hours, hourly.
    let this_hour = now - now.rem_euclid(HOUR);
    let hourly = state
        .store
        .usage_report(&UsageQuery {
            group_by: UsageGroupBy::User,
            daily: false,
            from: this_hour - 23 * HOUR,
            to: now + 1,
            key: None,
        })
        .await?;
    let hours: Vec<Bar> = (0..24)
        .rev()
        .map(|back| {
            let start = this_hour - back * HOUR;
            let total: i64 = hourly
                .iter()
                .filter(|r| r.bucket_start == start)
                .map(|r| r.bytes_up + r.bytes_down)
                .sum();
            Bar {
                label: crate::console::page::when(start)[11..13].to_owned() + "h",
                value: total as f64,
                shown: bytes(total),
            }
        })
        .collect();
    let days = last_days(now, 7);
    let daily = super::usage::daily_rows(&state, UsageGroupBy::User, &days, now, None).await?;
    let mut per_user: HashMap<String, i64> = HashMap::new();
    for r in &daily {
        *per_user.entry(r.key.clone()).or_default() += r.bytes_up + r.bytes_down;
    }
    let mut top: Vec<_> = per_user.into_iter().collect();
    top.sort_by_key(|(_, total)| std::cmp::Reverse(*total));
    top.truncate(10);
    let users = Names::users(&state).await?;
    let body = html! {
        section class="cards" aria-label="Now" {
            div class="card" {
                span class="figure" id="live-gateways" { (live_gateways) }
                "live gateways"
            }
            div class="card" { span class="figure" id="online-sessions" { (online.len()) } "online sessions" }
            div class="card" { span class="figure" { (healthy) " / " (nodes.len()) } "healthy nodes" }
            div class="card" { span class="figure" { (unhealthy) } "unhealthy nodes" }
            div class="card" { span class="figure" { (out_of_service) } "nodes draining or disabled" }
        }
        h2 { "Traffic, last 24 hours" }
        (chart::bars("Traffic per hour (up + down)", &hours))
        h2 { "Traffic, last 7 days" }
        (chart::bars("Traffic per day (up + down)", &super::usage::daily_bars(&days, &daily)))
        h2 { "Top users, last 7 days" }
        @if top.is_empty() { p class="empty" { "No traffic yet." } } @else {
            table {
                thead { tr { th { "User" } th { "Traffic" } } }
                tbody {
                    @for (key, total) in &top {
                        tr {
                            td { @match Uuid::parse_str(key) {
                                Ok(id) => { a href={ "/ui/users/" (id) } { (users.of(id)) } }
                                Err(_) => { (key) }
                            } }
                            td { (bytes(*total)) }
                        }
                    }
                }
            }
        }
    };
    Ok(shell(&console, "Dashboard", "/ui", body))
}
