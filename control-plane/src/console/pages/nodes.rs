//! Nodes: every node with its health and live load, importing an Outline `ss://` key, and one
//! node's health history with its weight, capacity and status (drain, disable).

use axum::extract::State;
use maud::html;
use uuid::Uuid;

use super::pool::NoteQuery;
use super::Names;
use crate::app::AppState;
use crate::console::chart::{self, Bar};
use crate::console::error::{FormError, PageError};
use crate::console::form::{opt_int, opt_text, Fields, Id, Params};
use crate::console::page::{
    answer, csrf, done, form_error, note, shell, when, when_opt, PageResult,
};
use crate::console::session::Console;
use crate::domain;
use crate::domain::nodes::{ImportInput, NodeChanges};
use crate::model::{NodeHealth, NodeStatus, Role};
use serde::Deserialize;

/// The nodes page: every node with its health and live load, and the import form.
pub async fn nodes(
    State(state): State<AppState>,
    console: Console,
    Params(q): Params<NoteQuery>,
) -> PageResult {
    render_nodes(&state, &console, q.note.as_deref(), None).await
}

async fn render_nodes(
    state: &AppState,
    console: &Console,
    note_text: Option<&str>,
    error: Option<FormError>,
) -> PageResult {
    let nodes = state.store.list_nodes().await?;
    let loads = state.store.node_loads().await?;
    let regions = state.store.list_regions().await?;
    let groups = Names::groups(state).await?;
    let region_of = |id: Option<Uuid>| {
        id.and_then(|id| regions.iter().find(|r| r.id == id))
            .map_or_else(|| "—".to_owned(), |r| r.code.clone())
    };
    let body = html! {
        (note(note_text))
        table {
            thead { tr { th { "Node" } th { "Address" } th { "Region" } th { "Groups" } th { "Status" } th { "Health" } th { "Live sessions / capacity" } th { "Weight" } th { "Last check" } } }
            tbody {
                @for n in &nodes {
                    tr {
                        td { a href={ "/ui/nodes/" (n.id) } { (n.name) } }
                        td { (n.host) ":" (n.port) }
                        td { (region_of(n.region_id)) }
                        td { (n.groups.iter().map(|g| groups.of(*g)).collect::<Vec<_>>().join(", ")) }
                        td { (n.status) }
                        td { (n.health) @if let Some(ms) = n.last_latency_ms { " (" (ms) " ms)" } }
                        td { (loads.get(&n.id).copied().unwrap_or(0)) " / " (n.capacity) }
                        td { (n.weight) }
                        td { (when_opt(n.last_checked_at)) }
                    }
                }
            }
        }
        @if console.may(Role::Operator) {
            h2 { "Import an Outline key" }
            form id="import-node" class="stacked" method="post" action="/ui/nodes/import" {
                (csrf(console))
                label { "Access key (ss://…)" input name="access_key" required size="60"; }
                label { "Name (optional)" input name="name" maxlength="64"; }
                label { "Region code (optional)"
                    select name="region" {
                        option value="" { "none" }
                        @for r in &regions { option value=(r.code) { (r.code) " — " (r.name) } }
                    }
                }
                label { "Weight (default 100)" input name="weight" type="number" min="0" max="10000"; }
                label { "Capacity (default 1000)" input name="capacity" type="number" min="0"; }
                button type="submit" { "Import node" }
            }
            (form_error(error.as_ref(), "import-node"))
        }
    };
    Ok(answer(
        error.as_ref(),
        shell(console, "Nodes", "/ui/nodes", body),
    ))
}

#[derive(Debug, Deserialize)]
pub struct ImportForm {
    access_key: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    weight: String,
    #[serde(default)]
    capacity: String,
}

/// Imports a node from an Outline access key.
pub async fn import_node(
    State(state): State<AppState>,
    console: Console,
    Fields(f): Fields<ImportForm>,
) -> PageResult {
    console.require(Role::Operator)?;
    let result = async {
        let input = ImportInput {
            access_key: f.access_key.trim().to_owned(),
            name: opt_text(&f.name).map(str::to_owned),
            region: opt_text(&f.region).map(str::to_owned),
            groups: Vec::new(),
            weight: opt_int("weight", &f.weight)?,
            capacity: opt_int("capacity", &f.capacity)?,
        };
        domain::nodes::import(&state, &console.actor(), input)
            .await
            .map_err(PageError::from)
    }
    .await;
    match result {
        Ok(n) => Ok(done(&format!("/ui/nodes/{}", n.id), "node imported")),
        Err(e) => {
            render_nodes(
                &state,
                &console,
                None,
                Some(FormError::new("import-node", e)),
            )
            .await
        }
    }
}

/// One node: its settings, live load and health history.
pub async fn node(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
    Params(q): Params<NoteQuery>,
) -> PageResult {
    render_node(&state, &console, id, q.note.as_deref(), None).await
}

async fn render_node(
    state: &AppState,
    console: &Console,
    id: Uuid,
    note_text: Option<&str>,
    error: Option<FormError>,
) -> PageResult {
    let node = state.store.get_node(id).await?;
    let load = state
        .store
        .node_loads()
        .await?
        .get(&id)
        .copied()
        .unwrap_or(0);
    let mut history = state.store.health_history(id, 60).await?;
    history.reverse();
    let series: Vec<Bar> = history
        .iter()
        .map(|h| Bar {
            label: when(h.at)[11..16].to_owned(),
            value: if h.health == NodeHealth::Healthy {
                f64::from(h.latency_ms.unwrap_or(0).max(1))
            } else {
                0.0
            },
            shown: match (h.health, h.latency_ms) {
                (NodeHealth::Healthy, Some(ms)) => format!("healthy, {ms} ms"),
                (health, _) => format!(
                    "{health}{}",
                    h.error
                        .as_deref()
                        .map(|e| format!(": {e}"))
                        .unwrap_or_default()
                ),
            },
        })
        .collect();
    let body = html! {
        (note(note_text))
        dl {
            dt { "Address" } dd { (node.host) ":" (node.port) " (" (node.cipher) ")" }
            dt { "Status" } dd { (node.status) }
            dt { "Health" } dd { (node.health) @if let Some(e) = &node.last_error { " — " (e) } }
            dt { "Live sessions" } dd { (load) " of " (node.capacity) }
            dt { "Weight" } dd { (node.weight) }
            dt { "Last check" } dd { (when_opt(node.last_checked_at)) }
        }
        h2 { "Health history" }
        (chart::bars("Health changes: latency at each change to healthy, ms (0: unhealthy)", &series))
        @if !history.is_empty() {
            table {
                thead { tr { th { "When" } th { "Became" } th { "Latency" } th { "Error" } } }
                tbody {
                    @for h in history.iter().rev() {
                        tr {
                            td { (when(h.at)) } td { (h.health) }
                            td { (h.latency_ms.map_or_else(|| "—".to_owned(), |ms| format!("{ms} ms"))) }
                            td { (h.error.as_deref().unwrap_or("—")) }
                        }
                    }
                }
            }
        }
        @if console.may(Role::Operator) {
            h2 { "Change" }
            form id="update-node" class="stacked" method="post" action={ "/ui/nodes/" (id) } {
                (csrf(console))
                label { "Weight" input name="weight" type="number" min="0" max="10000" value=(node.weight); }
                label { "Capacity" input name="capacity" type="number" min="0" value=(node.capacity); }
                label { "Status"
                    select name="status" {
                        @for s in [NodeStatus::Active, NodeStatus::Draining, NodeStatus::Disabled] {
                            option value=(s) selected[node.status == s] { (s) }
                        }
                    }
                }
                button type="submit" { "Save" }
            }
            (form_error(error.as_ref(), "update-node"))
        }
    };
    Ok(answer(
        error.as_ref(),
        shell(console, &format!("Node {}", node.name), "/ui/nodes", body),
    ))
}

#[derive(Debug, Deserialize)]
pub struct NodeForm {
    weight: String,
    capacity: String,
    status: String,
}

/// Changes a node's weight, capacity or status (draining, disabled).
pub async fn update_node(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
    Fields(f): Fields<NodeForm>,
) -> PageResult {
    console.require(Role::Operator)?;
    let result = async {
        let changes = NodeChanges {
            weight: opt_int("weight", &f.weight)?,
            capacity: opt_int("capacity", &f.capacity)?,
            status: Some(f.status.parse().map_err(|e: String| {
                PageError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, e)
            })?),
            ..NodeChanges::default()
        };
        domain::nodes::update(&state, &console.actor(), id, changes)
            .await
            .map_err(PageError::from)
    }
    .await;
    match result {
        Ok(_) => Ok(done(&format!("/ui/nodes/{id}"), "node saved")),
        Err(e) => {
            render_node(
                &state,
                &console,
                id,
                None,
                Some(FormError::new("update-node", e)),
            )
            .await
        }
    }
}
