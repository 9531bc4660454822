//! The audit log with filters (actor, action, target type and id, since a date), and the table
//! of entries the user page shows too.

use axum::extract::State;
use maud::html;
use serde::Deserialize;

use crate::app::AppState;
use crate::console::error::PageError;
use crate::console::form::{opt_text, Params};
use crate::console::page::{shell, when, PageResult};
use crate::console::session::Console;
use crate::store::AuditFilter;

#[derive(Debug, Default, Deserialize)]
pub struct AuditParams {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target_type: String,
    #[serde(default)]
    target_id: String,
    /// `YYYY-MM-DD` (an `<input type="date">`).
    #[serde(default)]
    since: String,
}

fn since_ms(text: &str) -> Result<Option<i64>, PageError> {
    let Some(text) = opt_text(text) else {
        return Ok(None);
    };
    let date = time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map_err(|_| {
        PageError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "since must be a date (YYYY-MM-DD)",
        )
    })?;
    Ok(Some(date.midnight().assume_utc().unix_timestamp() * 1000))
}

/// The audit log page.
pub async fn show(
    State(state): State<AppState>,
    console: Console,
    Params(p): Params<AuditParams>,
) -> PageResult {
    let filter = AuditFilter {
        target_type: opt_text(&p.target_type).map(str::to_owned),
        target_id: opt_text(&p.target_id).map(str::to_owned),
        since: since_ms(&p.since)?,
        limit: 1000,
    };
    let entries: Vec<_> = state
        .store
        .list_audit(&filter)
        .await?
        .into_iter()
        .filter(|e| opt_text(&p.actor).is_none_or(|a| e.actor.contains(a)))
        .filter(|e| opt_text(&p.action).is_none_or(|a| e.action.contains(a)))
        .take(200)
        .collect();
    let targets = super::Targets::load(&state).await?;
    let body = html! {
        form class="stacked" method="get" action="/ui/audit" role="search" {
            label { "Actor (e.g. admin:root)" input name="actor" value=(p.actor); }
            label { "Action (e.g. user.create)" input name="action" value=(p.action); }
            label { "Target type (e.g. device)" input name="target_type" value=(p.target_type); }
            label { "Target id" input name="target_id" value=(p.target_id); }
            label { "Since" input name="since" type="date" value=(p.since); }
            button type="submit" { "Filter" }
        }
        h2 { (entries.len()) " entries (newest first, at most 200)" }
        (table(&entries, &targets))
    };
    Ok(shell(&console, "Audit log", "/ui/audit", body))
}

/// Audit entries as a table, their targets by name.
pub fn table(entries: &[crate::model::AuditEntry], targets: &super::Targets) -> maud::Markup {
    html! {
        @if entries.is_empty() { p class="empty" { "No entries." } } @else {
            table {
                thead { tr { th { "When" } th { "Actor" } th { "Action" } th { "Target" } th { "Detail" } } }
                tbody {
                    @for e in entries {
                        tr {
                            td { (when(e.at)) }
                            td { (e.actor) }
                            td { (e.action) }
                            td {
                                (e.target_type) " "
                                @if let Some(id) = &e.target_id {
                                    @match targets.of(&e.target_type, id) {
                                        (name, Some(page)) => { a href=(page) { (name) } }
                                        (name, None) => { (name) }
                                    }
                                }
                            }
                            td { code { (e.detail.to_string()) } }
                        }
                    }
                }
            }
        }
    }
}
