//! Devices: the list with their users; one device with its connection links and QR code shown
//! again (from the sealed token); creating one (the token, links, QR code and subscription URL
//! shown once), rotating its token, disabling, enabling and revoking it.

use axum::extract::State;
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use super::Names;
use crate::app::AppState;
use crate::console::error::{FormError, PageError};
use crate::console::form::{Fields, Id, Params};
use crate::console::page::{
    answer, confirmed, csrf, done, form_error, note, post_button, shell, svg_image, when, when_opt,
    PageResult,
};
use crate::console::session::Console;
use crate::domain;
use crate::domain::devices::NewCredentials;
use crate::model::{DeviceStatus, Role};

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    status: String,
    note: Option<String>,
}

/// Every device.
pub async fn list(
    State(state): State<AppState>,
    console: Console,
    Params(q): Params<ListQuery>,
) -> PageResult {
    let devices = state.store.list_devices(None).await?;
    let users = Names::users(&state).await?;
    let body = html! {
        (note(q.note.as_deref()))
        form class="stacked" method="get" action="/ui/devices" {
            label { "Status"
                select name="status" {
                    option value="" selected[q.status.is_empty()] { "any" }
                    @for s in ["active", "disabled", "revoked"] {
                        option value=(s) selected[q.status == s] { (s) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        p { "New devices are created on their user's page." }
        table {
            thead { tr { th { "Device" } th { "User" } th { "Status" } th { "Last seen" } th { "Created" } } }
            tbody {
                @for d in devices.iter().filter(|d| q.status.is_empty() || d.status.as_str() == q.status) {
                    tr {
                        td { a href={ "/ui/devices/" (d.id) } { (d.name) } }
                        td { a href={ "/ui/users/" (d.user_id) } { (users.of(d.user_id)) } }
                        td { (d.status) }
                        td { (when_opt(d.last_seen_at)) }
                        td { (when(d.created_at)) }
                    }
                }
            }
        }
    };
    Ok(shell(&console, "Devices", "/ui/devices", body))
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    note: Option<String>,
}

/// One device, its links shown again when the sealed token opens.
pub async fn show(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
    Params(q): Params<ShowQuery>,
) -> PageResult {
    render(&state, &console, id, q.note.as_deref(), None, None).await
}

/// The credentials shown once, at creation or after a rotation.
fn credentials(creds: &NewCredentials) -> Result<Markup, PageError> {
    let qr = domain::devices::qr_svg(&creds.link)?;
    Ok(html! {
        section aria-labelledby="new-credentials" {
            h2 id="new-credentials" { "New credentials: copy them now" }
            p { "The token is shown only now; the links can be shown again on this page." }
            h3 { "Device token" }
            p class="secret" id="device-token" { (creds.token) }
            h3 { "Connection link" }
            p class="secret" id="device-link" { (creds.link) }
            (svg_image(&qr, "QR code of the connection link"))
            @if creds.links.len() > 1 {
                h3 { "Every gateway" }
                ul { @for l in &creds.links { li class="secret" { (l.region.as_deref().unwrap_or("any region")) ": " (l.link.to_string()) } } }
            }
            @if let Some(url) = &creds.subscription_url {
                h3 { "Subscription URL" }
                p class="secret" id="subscription-url" { (url) }
            }
        }
    })
}

async fn render(
    state: &AppState,
    console: &Console,
    id: Uuid,
    note_text: Option<&str>,
    created: Option<&NewCredentials>,
    error: Option<FormError>,
) -> PageResult {
    let device = state.store.get_device(id).await?;
    let user = state.store.get_user(device.user_id).await?;
    let sessions = state
        .store
        .list_sessions(&crate::store::SessionFilter {
            live_only: true,
            user_id: None,
            device_id: Some(id),
            gateway_id: None,
            node_id: None,
            limit: 100,
        })
        .await?;
    let fresh = match created {
        Some(creds) => Some(credentials(creds)?),
        None => None,
    };
    // Shown again from the sealed token; a refusal (revoked, no key) is said in its place.
    let links = if created.is_none() {
        Some(domain::devices::show_links(state, id).await)
    } else {
        None
    };
    let operator = console.may(Role::Operator);
    let body = html! {
        (note(note_text))
        dl {
            dt { "User" } dd { a href={ "/ui/users/" (user.id) } { (user.name) } }
            dt { "Status" } dd { (device.status) }
            dt { "Last seen" } dd { (when_opt(device.last_seen_at)) }
            dt { "Created" } dd { (when(device.created_at)) }
            dt { "Live sessions" } dd { (sessions.len()) }
        }
        @if let Some(fresh) = fresh { (fresh) }
        @if let Some(links) = links {
            h2 { "Connection link" }
            @match links {
                Ok(shown) => {
                    @if let Some(first) = shown.links.first() {
                        @let link = first.link.to_string();
                        p class="secret" id="device-link" { (link) }
                        @match domain::devices::qr_svg(&link) {
                            Ok(qr) => { (svg_image(&qr, "QR code of the connection link")) }
                            Err(e) => { p class="error" { (PageError::from(e).message) } }
                        }
                        @if shown.links.len() > 1 {
                            ul { @for l in &shown.links[1..] { li class="secret" { (l.region.as_deref().unwrap_or("any region")) ": " (l.link.to_string()) } } }
                        }
                    }
                }
                Err(e) => { p class="error" role="alert" id="link-error" { (PageError::from(e).message) } }
            }
        }
        @if operator && device.status != DeviceStatus::Revoked {
            h2 { "Actions" }
            div id="device-actions" {
                (post_button(console, &format!("/ui/devices/{id}/rotate-token"), None, "Rotate token"))
                @if device.status == DeviceStatus::Active {
                    (post_button(console, &format!("/ui/devices/{id}/status"), Some("disabled"), "Disable"))
                } @else {
                    (post_button(console, &format!("/ui/devices/{id}/status"), Some("active"), "Enable"))
                }
                form class="inline" method="post" action={ "/ui/devices/" (id) "/status" } {
                    (csrf(console))
                    input type="hidden" name="status" value="revoked";
                    label { input type="checkbox" name="confirm" value="yes" required; " sure" }
                    " "
                    button type="submit" { "Revoke for good" }
                }
            }
        }
        (form_error(error.as_ref(), "device-actions"))
    };
    Ok(answer(
        error.as_ref(),
        shell(
            console,
            &format!("Device {}", device.name),
            "/ui/devices",
            body,
        ),
    ))
}

#[derive(Debug, Deserialize)]
pub struct NewDevice {
    name: String,
}

/// Creates a device for the user and shows its credentials.
pub async fn create(
    State(state): State<AppState>,
    console: Console,
    Id(user): Id<Uuid>,
    Fields(f): Fields<NewDevice>,
) -> PageResult {
    console.require(Role::Operator)?;
    match domain::devices::create(&state, &console.actor(), user, &f.name).await {
        Ok(creds) => {
            render(
                &state,
                &console,
                creds.device.id,
                Some("device created"),
                Some(&creds),
                None,
            )
            .await
        }
        Err(e) => {
            super::users::render_user(
                &state,
                &console,
                user,
                None,
                Some(FormError::new("create-device", e)),
            )
            .await
        }
    }
}

/// Gives the device a new token and shows it.
pub async fn rotate_token(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
) -> PageResult {
    console.require(Role::Operator)?;
    match domain::devices::rotate_token(&state, &console.actor(), id).await {
        Ok(creds) => {
            render(
                &state,
                &console,
                id,
                Some("token rotated"),
                Some(&creds),
                None,
            )
            .await
        }
        Err(e) => {
            render(
                &state,
                &console,
                id,
                None,
                None,
                Some(FormError::new("device-actions", e)),
            )
            .await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct NewStatus {
    status: String,
    #[serde(default)]
    confirm: String,
}

/// Disables, enables or revokes the device.
pub async fn set_status(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
    Fields(f): Fields<NewStatus>,
) -> PageResult {
    console.require(Role::Operator)?;
    let status: DeviceStatus = f
        .status
        .parse()
        .map_err(|e: String| PageError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, e))?;
    // Revoking cannot be undone.
    if status == DeviceStatus::Revoked {
        if let Err(e) = confirmed(&f.confirm) {
            return render(
                &state,
                &console,
                id,
                None,
                None,
                Some(FormError::new("device-actions", e)),
            )
            .await;
        }
    }
    match domain::devices::set_status(&state, &console.actor(), id, status).await {
        Ok(_) => Ok(done(
            &format!("/ui/devices/{id}"),
            &format!("device {status}"),
        )),
        Err(e) => {
            render(
                &state,
                &console,
                id,
                None,
                None,
                Some(FormError::new("device-actions", e)),
            )
            .await
        }
    }
}
