//! Admins (admin role only): the accounts, creating one, changing a role or disabling one.

use axum::extract::State;
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use crate::app::AppState;
use crate::console::error::{FormError, PageError};
use crate::console::form::{Fields, Id, Params};
use crate::console::page::{answer, csrf, done, form_error, note, shell, when, PageResult};
use crate::console::session::Console;
use crate::domain;
use crate::domain::admins::AdminChanges;
use crate::model::Role;

#[derive(Debug, Default, Deserialize)]
pub struct NoteQuery {
    note: Option<String>,
}

const ROLES: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

/// The admins page.
pub async fn list(
    State(state): State<AppState>,
    console: Console,
    Params(q): Params<NoteQuery>,
) -> PageResult {
    console.require(Role::Admin)?;
    render(&state, &console, q.note.as_deref(), None).await
}

async fn render(
    state: &AppState,
    console: &Console,
    note_text: Option<&str>,
    error: Option<FormError>,
) -> PageResult {
    let admins = state.store.list_admins().await?;
    let body = html! {
        (note(note_text))
        table {
            thead { tr { th { "Username" } th { "Role" } th { "Disabled" } th { "Created" } th { "Change" } } }
            tbody {
                @for a in &admins {
                    tr {
                        td { (a.username) } td { (a.role) } td { @if a.disabled { "yes" } @else { "no" } }
                        td { (when(a.created_at)) }
                        td {
                            form class="inline" method="post" action={ "/ui/admins/" (a.id) } {
                                (csrf(console))
                                label { "Role of " (a.username) " "
                                    select name="role" {
                                        @for r in ROLES { option value=(r) selected[a.role == r] { (r) } }
                                    }
                                }
                                " "
                                label { "Disabled " input type="checkbox" name="disabled" value="true" checked[a.disabled]; }
                                " "
                                button type="submit" { "Save " (a.username) }
                            }
                        }
                    }
                }
            }
        }
        (form_error(error.as_ref(), "admin-actions"))
        h2 { "New admin" }
        form id="create-admin" class="stacked" method="post" action="/ui/admins" {
            (csrf(console))
            label { "Username" input name="username" required maxlength="64" autocomplete="off"; }
            label { "Password" input name="password" type="password" required autocomplete="new-password"; }
            label { "Role"
                select name="role" { @for r in ROLES { option value=(r) { (r) } } }
            }
            button type="submit" { "Create admin" }
        }
        (form_error(error.as_ref(), "create-admin"))
    };
    Ok(answer(
        error.as_ref(),
        shell(console, "Admins", "/ui/admins", body),
    ))
}

fn role(text: &str) -> Result<Role, PageError> {
    text.parse()
        .map_err(|e: String| PageError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, e))
}

#[derive(Debug, Deserialize)]
pub struct NewAdmin {
    username: String,
    password: String,
    role: String,
}

/// Creates an admin.
pub async fn create(
    State(state): State<AppState>,
    console: Console,
    Fields(f): Fields<NewAdmin>,
) -> PageResult {
    console.require(Role::Admin)?;
    let result = async {
        domain::admins::create(
            &state,
            &console.actor(),
            &f.username,
            f.password,
            role(&f.role)?,
        )
        .await
        .map_err(PageError::from)
    }
    .await;
    match result {
        Ok(a) => Ok(done("/ui/admins", &format!("admin {} created", a.username))),
        Err(e) => {
            render(
                &state,
                &console,
                None,
                Some(FormError::new("create-admin", e)),
            )
            .await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct AdminForm {
    role: String,
    #[serde(default)]
    disabled: String,
}

/// Changes an admin's role or disabled flag.
pub async fn update(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
    Fields(f): Fields<AdminForm>,
) -> PageResult {
    console.require(Role::Admin)?;
    let result = async {
        let changes = AdminChanges {
            role: Some(role(&f.role)?),
            disabled: Some(f.disabled == "true"),
            ..AdminChanges::default()
        };
        domain::admins::update(&state, console.caller.id, &console.actor(), id, changes)
            .await
            .map_err(PageError::from)
    }
    .await;
    match result {
        Ok(a) => Ok(done("/ui/admins", &format!("admin {} saved", a.username))),
        Err(e) => {
            render(
                &state,
                &console,
                None,
                Some(FormError::new("admin-actions", e)),
            )
            .await
        }
    }
}
