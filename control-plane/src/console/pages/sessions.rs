//! Sessions: the live ones (or every recent one) with user, device, gateway and node names;
//! ending one (its gateway closes it at once).

use axum::extract::State;
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::Names;
use crate::app::AppState;
use crate::console::error::FormError;
use crate::console::form::{Id, Params};
use crate::console::page::{action, answer, bytes, form_error, note, shell, when, PageResult};
use crate::console::session::Console;
use crate::domain;
use crate::model::Role;
use crate::store::SessionFilter;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// "all": ended ones too.
    #[serde(default)]
    show: String,
    note: Option<String>,
}

/// The sessions page.
pub async fn list(
    State(state): State<AppState>,
    console: Console,
    Params(q): Params<ListQuery>,
) -> PageResult {
    render(&state, &console, &q, None).await
}

async fn render(
    state: &AppState,
    console: &Console,
    q: &ListQuery,
    error: Option<FormError>,
) -> PageResult {
    let all = q.show == "all";
    let sessions = state
        .store
        .list_sessions(&SessionFilter {
            live_only: !all,
            user_id: None,
            device_id: None,
            gateway_id: None,
            node_id: None,
            limit: 500,
        })
        .await?;
    let (users, devices, gateways, nodes) = (
        Names::users(state).await?,
        Names::devices(state).await?,
        Names::gateways(state).await?,
        Names::nodes(state).await?,
    );
    let operator = console.may(Role::Operator);
    let body = html! {
        (note(q.note.as_deref()))
        form class="stacked" method="get" action="/ui/sessions" {
            label { "Show"
                select name="show" {
                    option value="" selected[!all] { "online now" }
                    option value="all" selected[all] { "recent, ended ones too" }
                }
            }
            button type="submit" { "Show" }
        }
        (form_error(error.as_ref(), "sessions"))
        h2 { (sessions.len()) @if all { " recent sessions" } @else { " online sessions" } }
        table {
            thead { tr { th { "User" } th { "Device" } th { "Gateway" } th { "Node" } th { "Started" } th { "Last heartbeat" } th { "Traffic" } th { "Ended" } @if operator { th { "Actions" } } } }
            tbody {
                @for s in &sessions {
                    tr {
                        td { a href={ "/ui/users/" (s.user_id) } { (users.of(s.user_id)) } }
                        td { a href={ "/ui/devices/" (s.device_id) } { (devices.of(s.device_id)) } }
                        td { (gateways.of(s.gateway_id)) }
                        td { (nodes.opt(s.node_id)) }
                        td { (when(s.started_at)) }
                        td { (when(s.last_heartbeat_at)) }
                        td { "↑ " (bytes(s.bytes_up)) " ↓ " (bytes(s.bytes_down)) }
                        td { @if let Some(end) = s.ended_at { (when(end)) " (" (s.end_reason.as_deref().unwrap_or("")) ")" } @else { "—" } }
                        @if operator {
                            td {
                                @if s.ended_at.is_none() && s.kill_requested {
                                    "killed; its gateway is closing it"
                                } @else if s.ended_at.is_none() {
                                    (action(console, Role::Operator, &format!("/ui/sessions/{}/kill", s.id), &format!("Kill session of {}", devices.of(s.device_id))))
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(answer(
        error.as_ref(),
        shell(console, "Sessions", "/ui/sessions", body),
    ))
}

/// Ends a live session.
pub async fn kill(State(state): State<AppState>, console: Console, Id(id): Id<Uuid>) -> PageResult {
    console.require(Role::Operator)?;
    match domain::sessions::kill(&state, &console.actor(), id).await {
        Ok(_) => Ok(crate::console::page::done("/ui/sessions", "session killed")),
        Err(e) => {
            render(
                &state,
                &console,
                &ListQuery::default(),
                Some(FormError::new("sessions", e)),
            )
            .await
        }
    }
}
