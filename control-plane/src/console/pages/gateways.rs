//! Gateways: the registered ones with their tokens (rotate, revoke; admin only), and the live
//! ones from the shared state (with Redis).

use axum::extract::State;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use crate::app::AppState;
use crate::console::error::{FormError, PageError};
use crate::console::form::{Confirm, Fields, Id, Params};
use crate::console::page::{
    action, answer, confirmed, csrf, done, form_error, irreversible, note, shell, when, when_opt,
    PageResult,
};
use crate::console::session::Console;
use crate::domain;
use crate::model::Role;
use crate::shared;

#[derive(Debug, Default, Deserialize)]
pub struct NoteQuery {
    note: Option<String>,
}

/// The gateways page.
pub async fn list(
    State(state): State<AppState>,
    console: Console,
    Params(q): Params<NoteQuery>,
) -> PageResult {
    render(&state, &console, q.note.as_deref(), None, None).await
}

async fn render(
    state: &AppState,
    console: &Console,
    note_text: Option<&str>,
    secret: Option<(&str, String)>,
    error: Option<FormError>,
) -> PageResult {
    let gateways = state.store.list_gateways().await?;
    let mut tokens = Vec::new();
    for g in &gateways {
        tokens.push(state.store.list_gateway_tokens(g.id).await?);
    }
    let live = if shared::is_shared(state) {
        Some(state.shared.gateways().await.map_err(|e| e.to_string()))
    } else {
        None
    };
    let admin = console.may(Role::Admin);
    let body = html! {
        (note(note_text))
        @if let Some((what, token)) = &secret {
            section aria-labelledby="new-token" {
                h2 id="new-token" { "New token for " (what) ": copy it now" }
                p class="secret" id="gateway-token" { (token) }
                p { "It is shown only now; give it to the gateway as HTTVPS_GATEWAY_CONTROL_PLANE_TOKEN." }
            }
        }
        h2 { "Live gateways" }
        (live_table(live))
        h2 { "Registered gateways" }
        (form_error(error.as_ref(), "gateway-actions"))
        @for (g, toks) in gateways.iter().zip(&tokens) {
            h3 { (g.name) }
            p { "Last seen " (when_opt(g.last_seen_at)) @if let Some(v) = &g.version { ", version " (v) } ", registered " (when(g.created_at)) "." }
            table {
                thead { tr { th { "Token" } th { "Created" } th { "Expires" } th { "Revoked" } th { "Allowed from" } @if admin { th { "Actions" } } } }
                tbody {
                    @for t in toks {
                        tr {
                            td { code { (t.id.to_string()[..8]) } }
                            td { (when(t.created_at)) }
                            td { (when_opt(t.expires_at)) }
                            td { (when_opt(t.revoked_at)) }
                            td { @if t.allowed_from.is_empty() { "anywhere" } @else { (t.allowed_from.join(", ")) } }
                            @if admin {
                                td { @if t.revoked_at.is_none() {
                                    (irreversible(console, Role::Admin, &format!("/ui/gateways/{}/tokens/{}/revoke", g.id, t.id), "Revoke token"))
                                } }
                            }
                        }
                    }
                }
            }
            (action(console, Role::Admin, &format!("/ui/gateways/{}/tokens", g.id), &format!("Rotate token of {}", g.name)))
        }
        @if admin {
            h2 { "Register a gateway" }
            form id="create-gateway" class="stacked" method="post" action="/ui/gateways" {
                (csrf(console))
                label { "Name" input name="name" required maxlength="64"; }
                button type="submit" { "Register gateway" }
            }
            (form_error(error.as_ref(), "create-gateway"))
        }
    };
    Ok(answer(
        error.as_ref(),
        shell(console, "Gateways", "/ui/gateways", body),
    ))
}

fn live_table(live: Option<Result<Vec<httvps_shared_state::GatewayInfo>, String>>) -> Markup {
    html! {
        @match live {
            None => { p class="empty" { "No shared store (REDIS_URL): live gateways are not known here; see the last-seen times below." } }
            Some(Err(e)) => { p class="error" { "The shared store did not answer: " (e) } }
            Some(Ok(list)) if list.is_empty() => { p class="empty" { "No gateway is live." } }
            Some(Ok(list)) => {
                table {
                    thead { tr { th { "Gateway" } th { "Address" } th { "Version" } th { "Sessions" } th { "Streams" } th { "Started" } th { "Heartbeat" } } }
                    tbody {
                        @for g in &list {
                            tr {
                                td { (g.id) } td { (g.listen) } td { (g.version) }
                                td { (g.sessions) } td { (g.streams) }
                                td { (when(g.started_at_ms)) } td { (when(g.heartbeat_at_ms)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct NewGateway {
    name: String,
}

/// Registers a gateway and shows its first token.
pub async fn create(
    State(state): State<AppState>,
    console: Console,
    Fields(f): Fields<NewGateway>,
) -> PageResult {
    console.require(Role::Admin)?;
    match domain::gateways::create(&state, &console.actor(), &f.name, &[]).await {
        Ok((g, _, secret)) => {
            render(
                &state,
                &console,
                Some("gateway registered"),
                Some((&g.name, secret)),
                None,
            )
            .await
        }
        Err(e) => {
            render(
                &state,
                &console,
                None,
                None,
                Some(FormError::new("create-gateway", e)),
            )
            .await
        }
    }
}

/// Gives a gateway a new token (the old one keeps working for an hour) and shows it.
pub async fn rotate(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
) -> PageResult {
    console.require(Role::Admin)?;
    let gateway = state.store.get_gateway(id).await?;
    match domain::gateways::rotate(
        &state,
        &console.actor(),
        id,
        domain::gateways::DEFAULT_OVERLAP_SECS,
        &[],
    )
    .await
    {
        Ok((_, secret)) => {
            render(
                &state,
                &console,
                Some("token rotated; the old one works for another hour"),
                Some((&gateway.name, secret)),
                None,
            )
            .await
        }
        Err(e) => {
            render(
                &state,
                &console,
                None,
                None,
                Some(FormError::new("gateway-actions", e)),
            )
            .await
        }
    }
}

/// Revokes a gateway token at once.
pub async fn revoke(
    State(state): State<AppState>,
    console: Console,
    Id((id, token_id)): Id<(Uuid, Uuid)>,
    Fields(f): Fields<Confirm>,
) -> PageResult {
    console.require(Role::Admin)?;
    if let Err(e) = confirmed(&f.confirm) {
        return render(
            &state,
            &console,
            None,
            None,
            Some(FormError::new("gateway-actions", e)),
        )
        .await;
    }
    match domain::gateways::revoke_token(&state, &console.actor(), id, token_id).await {
        Ok(_) => Ok(done("/ui/gateways", "token revoked")),
        Err(e) => {
            render(
                &state,
                &console,
                None,
                None,
                Some(FormError::new("gateway-actions", PageError::from(e))),
            )
            .await
        }
    }
}
