//! The node pool's regions and node groups: lists and creating them (nodes: `nodes.rs`).

use axum::extract::State;
use maud::html;
use serde::Deserialize;

use crate::app::AppState;
use crate::console::error::{FormError, PageError};
use crate::console::form::{opt_text, Fields, Params};
use crate::console::page::{answer, csrf, done, form_error, note, shell, when, PageResult};
use crate::console::session::Console;
use crate::domain;
use crate::domain::regions::RegionInput;
use crate::domain::validate::{free_text, text, MAX_DESCRIPTION, MAX_NAME};
use crate::model::Role;

#[derive(Debug, Default, Deserialize)]
pub struct NoteQuery {
    pub note: Option<String>,
}

/// The regions page.
pub async fn regions(
    State(state): State<AppState>,
    console: Console,
    Params(q): Params<NoteQuery>,
) -> PageResult {
    render_regions(&state, &console, q.note.as_deref(), None).await
}

async fn render_regions(
    state: &AppState,
    console: &Console,
    note_text: Option<&str>,
    error: Option<FormError>,
) -> PageResult {
    let regions = state.store.list_regions().await?;
    let body = html! {
        (note(note_text))
        table {
            thead { tr { th { "Code" } th { "Name" } th { "Latitude" } th { "Longitude" } th { "Created" } } }
            tbody {
                @for r in &regions {
                    tr {
                        td { (r.code) } td { (r.name) }
                        td { (r.latitude.map_or_else(|| "—".to_owned(), |v| v.to_string())) }
                        td { (r.longitude.map_or_else(|| "—".to_owned(), |v| v.to_string())) }
                        td { (when(r.created_at)) }
                    }
                }
            }
        }
        @if console.may(Role::Operator) {
            h2 { "New region" }
            form id="create-region" class="stacked" method="post" action="/ui/regions" {
                (csrf(console))
                label { "Code (e.g. eu-west)" input name="code" required maxlength="32"; }
                label { "Name" input name="name" required maxlength="64"; }
                label { "Latitude (optional)" input name="latitude" type="number" step="any" min="-90" max="90"; }
                label { "Longitude (optional)" input name="longitude" type="number" step="any" min="-180" max="180"; }
                button type="submit" { "Create region" }
            }
            (form_error(error.as_ref(), "create-region"))
        }
    };
    Ok(answer(
        error.as_ref(),
        shell(console, "Regions", "/ui/regions", body),
    ))
}

#[derive(Debug, Deserialize)]
pub struct NewRegion {
    code: String,
    name: String,
    #[serde(default)]
    latitude: String,
    #[serde(default)]
    longitude: String,
}

fn coordinate(field: &str, text: &str) -> Result<Option<f64>, PageError> {
    opt_text(text)
        .map(|t| {
            t.parse::<f64>().map_err(|_| {
                PageError::new(
                    axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                    format!("{field} must be a number"),
                )
            })
        })
        .transpose()
}

/// Creates a region.
pub async fn create_region(
    State(state): State<AppState>,
    console: Console,
    Fields(f): Fields<NewRegion>,
) -> PageResult {
    console.require(Role::Operator)?;
    let result = async {
        let input = RegionInput {
            code: f.code.trim(),
            name: &f.name,
            latitude: coordinate("latitude", &f.latitude)?,
            longitude: coordinate("longitude", &f.longitude)?,
        };
        domain::regions::create(&state, &console.actor(), &input)
            .await
            .map_err(PageError::from)
    }
    .await;
    match result {
        Ok(r) => Ok(done("/ui/regions", &format!("region {} created", r.code))),
        Err(e) => {
            render_regions(
                &state,
                &console,
                None,
                Some(FormError::new("create-region", e)),
            )
            .await
        }
    }
}

/// The node groups page.
pub async fn groups(
    State(state): State<AppState>,
    console: Console,
    Params(q): Params<NoteQuery>,
) -> PageResult {
    render_groups(&state, &console, q.note.as_deref(), None).await
}

async fn render_groups(
    state: &AppState,
    console: &Console,
    note_text: Option<&str>,
    error: Option<FormError>,
) -> PageResult {
    let groups = state.store.list_node_groups().await?;
    let nodes = state.store.list_nodes().await?;
    let body = html! {
        (note(note_text))
        table {
            thead { tr { th { "Name" } th { "Description" } th { "Nodes" } th { "Created" } } }
            tbody {
                @for g in &groups {
                    tr {
                        td { (g.name) } td { (g.description) }
                        td { (nodes.iter().filter(|n| n.groups.contains(&g.id)).map(|n| n.name.as_str()).collect::<Vec<_>>().join(", ")) }
                        td { (when(g.created_at)) }
                    }
                }
            }
        }
        @if console.may(Role::Operator) {
            h2 { "New node group" }
            form id="create-group" class="stacked" method="post" action="/ui/node-groups" {
                (csrf(console))
                label { "Name" input name="name" required maxlength="64"; }
                label { "Description" input name="description"; }
                button type="submit" { "Create group" }
            }
            (form_error(error.as_ref(), "create-group"))
        }
    };
    Ok(answer(
        error.as_ref(),
        shell(console, "Node groups", "/ui/node-groups", body),
    ))
}

#[derive(Debug, Deserialize)]
pub struct NewGroup {
    name: String,
    #[serde(default)]
    description: String,
}

/// Creates a node group (the checks of `POST /v1/admin/node-groups`).
pub async fn create_group(
    State(state): State<AppState>,
    console: Console,
    Fields(f): Fields<NewGroup>,
) -> PageResult {
    console.require(Role::Operator)?;
    let result = async {
        let name = text("name", &f.name, MAX_NAME)?;
        let description = free_text("description", &f.description, MAX_DESCRIPTION)?;
        Ok::<_, PageError>(
            state
                .store
                .create_node_group(&console.actor(), &name, &description)
                .await?,
        )
    }
    .await;
    match result {
        Ok(g) => Ok(done(
            "/ui/node-groups",
            &format!("group {} created", g.name),
        )),
        Err(e) => {
            render_groups(
                &state,
                &console,
                None,
                Some(FormError::new("create-group", e)),
            )
            .await
        }
    }
}
