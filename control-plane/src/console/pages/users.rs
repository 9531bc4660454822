//! Users: search and filter by status and plan, create, disable / enable, delete; one user's
//! page with their subscriptions (changed in `subscriptions.rs`), devices, usage over 30 days and
//! audit entries.

use axum::extract::State;
use axum::response::Response;
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::{last_days, Names};
use crate::app::AppState;
use crate::console::chart::{self, Bar};
use crate::console::error::{FormError, PageError};
use crate::console::form::{opt_text, Confirm, Fields, Id, Params};
use crate::console::page::{
    action, answer, bytes, confirmed, csrf, done, form_error, irreversible, note, post_button,
    shell, when, when_opt, PageResult,
};
use crate::console::session::Console;
use crate::domain;
use crate::model::{now_ms, Role, SubscriptionStatus, UserStatus};
use crate::store::{AuditFilter, UsageGroupBy, UserUpdate};

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    plan: String,
    note: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NewUser {
    name: String,
    #[serde(default)]
    email: String,
}

/// The users page.
pub async fn list(
    State(state): State<AppState>,
    console: Console,
    Params(q): Params<ListQuery>,
) -> PageResult {
    render_list(&state, &console, &q, None).await
}

async fn render_list(
    state: &AppState,
    console: &Console,
    q: &ListQuery,
    error: Option<FormError>,
) -> PageResult {
    let users = state.store.list_users(1000, 0).await?;
    let plans = state.store.list_plans().await?;
    let plan_names = Names::plans(state).await?;
    let in_force = state.store.plans_in_force().await?;
    let needle = q.q.trim().to_lowercase();
    let shown: Vec<_> = users
        .iter()
        .filter(|u| {
            needle.is_empty()
                || u.name.to_lowercase().contains(&needle)
                || u.email
                    .as_deref()
                    .is_some_and(|e| e.to_lowercase().contains(&needle))
        })
        .filter(|u| q.status.is_empty() || u.status.as_str() == q.status)
        .filter(|u| match q.plan.as_str() {
            "" => true,
            "none" => !in_force.contains_key(&u.id),
            plan => in_force.get(&u.id).is_some_and(|p| p.to_string() == plan),
        })
        .collect();
    let body = html! {
        (note(q.note.as_deref()))
        form class="stacked" method="get" action="/ui/users" role="search" {
            label { "Search name or e-mail" input type="search" name="q" value=(q.q); }
            label { "Status"
                select name="status" {
                    option value="" selected[q.status.is_empty()] { "any" }
                    @for s in ["active", "disabled"] {
                        option value=(s) selected[q.status == s] { (s) }
                    }
                }
            }
            label { "Plan"
                select name="plan" {
                    option value="" selected[q.plan.is_empty()] { "any" }
                    option value="none" selected[q.plan == "none"] { "no plan in force" }
                    @for p in &plans {
                        option value=(p.id) selected[q.plan == p.id.to_string()] { (p.name) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        @if console.may(Role::Operator) {
            h2 { "New user" }
            form id="create-user" class="stacked" method="post" action="/ui/users" {
                (csrf(console))
                label { "Name" input name="name" required maxlength="64"; }
                label { "E-mail (optional)" input name="email" type="email"; }
                button type="submit" { "Create user" }
            }
            (form_error(error.as_ref(), "create-user"))
        }
        h2 { (shown.len()) " of " (users.len()) " users" }
        table {
            thead { tr { th { "Name" } th { "E-mail" } th { "Status" } th { "Plan" } th { "Created" } } }
            tbody {
                @for u in &shown {
                    tr {
                        td { a href={ "/ui/users/" (u.id) } { (u.name) } }
                        td { (u.email.as_deref().unwrap_or("—")) }
                        td { (u.status) }
                        td { (in_force.get(&u.id).map_or_else(|| "—".to_owned(), |p| plan_names.of(*p))) }
                        td { (when(u.created_at)) }
                    }
                }
            }
        }
    };
    Ok(answer(
        error.as_ref(),
        shell(console, "Users", "/ui/users", body),
    ))
}

/// Creates a user, then shows them.
pub async fn create(
    State(state): State<AppState>,
    console: Console,
    Fields(f): Fields<NewUser>,
) -> PageResult {
    console.require(Role::Operator)?;
    match domain::users::create(&state, &console.actor(), &f.name, opt_text(&f.email)).await {
        Ok(user) => Ok(done(&format!("/ui/users/{}", user.id), "user created")),
        Err(e) => {
            let error = FormError::new("create-user", e);
            render_list(&state, &console, &ListQuery::default(), Some(error)).await
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    note: Option<String>,
}

/// One user.
pub async fn show(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
    Params(q): Params<ShowQuery>,
) -> PageResult {
    render_user(&state, &console, id, q.note.as_deref(), None).await
}

/// The user page, with a note after a change or a refused form's message.
pub async fn render_user(
    state: &AppState,
    console: &Console,
    id: Uuid,
    note_text: Option<&str>,
    error: Option<FormError>,
) -> PageResult {
    let user = state.store.get_user(id).await?;
    let subs = state.store.list_subscriptions(id).await?;
    let plans = state.store.list_plans().await?;
    let plan_names = Names::plans(state).await?;
    let devices = state.store.list_devices(Some(id)).await?;
    let now = now_ms();
    let quota = match state.store.resolve_subscription(id, now, false).await? {
        Some((sub, plan)) => Some((state.store.quota_status(&sub, &plan, now).await?, plan)),
        None => None,
    };
    let days = last_days(now, 30);
    let usage = super::usage::daily_rows(state, UsageGroupBy::User, &days, now, Some(id)).await?;
    let series: Vec<Bar> = super::usage::daily_bars(&days, &usage);
    let audit = state
        .store
        .list_audit(&AuditFilter {
            target_type: Some("user".into()),
            target_id: Some(id.to_string()),
            since: None,
            limit: 20,
        })
        .await?;
    let targets = super::Targets::load(state).await?;
    let operator = console.may(Role::Operator);
    let body = html! {
        (note(note_text))
        dl {
            dt { "E-mail" } dd { (user.email.as_deref().unwrap_or("—")) }
            dt { "Status" } dd { (user.status) }
            dt { "Created" } dd { (when(user.created_at)) }
            @if let Some((q, plan)) = &quota {
                dt { "Plan in force" } dd { (plan.name) }
                dt { "Traffic this period" }
                dd {
                    (bytes(q.used_bytes)) " of "
                    (q.quota_bytes.map_or_else(|| "unlimited".to_owned(), bytes))
                    @if let Some(end) = q.period_end { " (resets " (when(end)) ")" }
                }
            }
        }
        @if operator {
            div id="user-actions" {
                @if user.status == UserStatus::Active {
                    (post_button(console, &format!("/ui/users/{id}/status"), Some("disabled"), "Disable user"))
                } @else {
                    (post_button(console, &format!("/ui/users/{id}/status"), Some("active"), "Enable user"))
                }
                (irreversible(console, Role::Operator, &format!("/ui/users/{id}/delete"), "Delete user"))
            }
            (form_error(error.as_ref(), "user-actions"))
        }
        h2 { "Subscriptions" }
        @if subs.is_empty() { p class="empty" { "No subscriptions." } } @else {
            table {
                thead { tr { th { "Plan" } th { "Status" } th { "Starts" } th { "Ends" } th { "Usage reset" } @if operator { th { "Actions" } } } }
                tbody {
                    @for s in &subs {
                        tr {
                            td { (plan_names.of(s.plan_id)) }
                            td { (s.status) }
                            td { (when_opt(s.starts_at)) }
                            td { (when_opt(s.ends_at)) }
                            td { (when_opt(s.usage_reset_at)) }
                            @if operator {
                                td {
                                    @if !matches!(s.status, SubscriptionStatus::Ended | SubscriptionStatus::Cancelled) {
                                        (action(console, Role::Operator, &format!("/ui/subscriptions/{}/cancel", s.id), "Cancel"))
                                        (action(console, Role::Operator, &format!("/ui/subscriptions/{}/reset-usage", s.id), "Reset usage"))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (form_error(error.as_ref(), "subscription-actions"))
        @if operator {
            @for s in subs.iter().filter(|s| !matches!(s.status, SubscriptionStatus::Ended | SubscriptionStatus::Cancelled)) {
                details class="changes" {
                    summary { "Change the " (plan_names.of(s.plan_id)) " subscription (" (s.status) ")" }
                    @if s.status == SubscriptionStatus::Active && s.ends_at.is_some() {
                        form class="stacked" method="post" action={ "/ui/subscriptions/" (s.id) "/extend" } {
                            (csrf(console))
                            label { "Extend by, days" input name="days" type="number" min="1" max="3650" required; }
                            button type="submit" { "Extend" }
                        }
                    }
                    form class="stacked" method="post" action={ "/ui/subscriptions/" (s.id) "/add-traffic" } {
                        (csrf(console))
                        label { "Add traffic this period, GiB" input name="gib" type="number" min="0" step="any" required; }
                        button type="submit" { "Add traffic" }
                    }
                    form class="stacked" method="post" action={ "/ui/subscriptions/" (s.id) "/plan" } {
                        (csrf(console))
                        label { "New plan"
                            select name="plan" {
                                @for p in plans.iter().filter(|p| p.id != s.plan_id) { option value=(p.id) { (p.name) } }
                            }
                        }
                        button type="submit" { "Change plan" }
                    }
                }
            }
            form id="subscribe" class="stacked" method="post" action={ "/ui/users/" (id) "/subscriptions" } {
                (csrf(console))
                label { "Plan"
                    select name="plan" required {
                        @for p in &plans { option value=(p.id) { (p.name) } }
                    }
                }
                label { "Starts"
                    select name="start" {
                        option value="now" { "now" }
                        option value="on_hold" { "at the first connection" }
                        option value="queued" { "when the current one ends" }
                    }
                }
                button type="submit" { "Add subscription" }
            }
            (form_error(error.as_ref(), "subscribe"))
        }
        h2 { "Devices" }
        @if devices.is_empty() { p class="empty" { "No devices." } } @else {
            table {
                thead { tr { th { "Name" } th { "Status" } th { "Last seen" } th { "Created" } } }
                tbody {
                    @for d in &devices {
                        tr {
                            td { a href={ "/ui/devices/" (d.id) } { (d.name) } }
                            td { (d.status) }
                            td { (when_opt(d.last_seen_at)) }
                            td { (when(d.created_at)) }
                        }
                    }
                }
            }
        }
        @if operator {
            form id="create-device" class="stacked" method="post" action={ "/ui/users/" (id) "/devices" } {
                (csrf(console))
                label { "Device name" input name="name" required maxlength="64"; }
                button type="submit" { "Create device" }
            }
            (form_error(error.as_ref(), "create-device"))
        }
        h2 { "Usage, last 30 days" }
        (chart::bars("Traffic per day (up + down)", &series))
        h2 { "Audit entries" }
        (super::audit::table(&audit, &targets))
    };
    Ok(answer(
        error.as_ref(),
        shell(console, &format!("User {}", user.name), "/ui/users", body),
    ))
}

#[derive(Debug, Deserialize)]
pub struct NewStatus {
    status: String,
}

/// Disables or enables a user.
pub async fn set_status(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
    Fields(f): Fields<NewStatus>,
) -> PageResult {
    console.require(Role::Operator)?;
    let status: UserStatus = f
        .status
        .parse()
        .map_err(|e: String| PageError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, e))?;
    let update = UserUpdate {
        name: None,
        email: None,
        status: Some(status),
    };
    match domain::users::update(&state, &console.actor(), id, &update).await {
        Ok(_) => Ok(done(&format!("/ui/users/{id}"), &format!("user {status}"))),
        Err(e) => failed(&state, &console, id, "user-actions", e).await,
    }
}

/// Deletes a user, then back to the list.
pub async fn delete(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
    Fields(f): Fields<Confirm>,
) -> PageResult {
    console.require(Role::Operator)?;
    if let Err(e) = confirmed(&f.confirm) {
        return failed(&state, &console, id, "user-actions", e).await;
    }
    match domain::users::delete(&state, &console.actor(), id).await {
        Ok(()) => Ok(done("/ui/users", "user deleted")),
        Err(e) => failed(&state, &console, id, "user-actions", e).await,
    }
}

/// The user page again with the refusal next to `form`.
pub(super) async fn failed(
    state: &AppState,
    console: &Console,
    user: Uuid,
    form: &'static str,
    e: impl Into<PageError>,
) -> Result<Response, PageError> {
    render_user(state, console, user, None, Some(FormError::new(form, e))).await
}
