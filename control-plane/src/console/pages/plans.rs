//! Plans: the list with their limits, creating one, deleting one no subscription uses.

use axum::extract::State;
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use crate::app::AppState;
use crate::console::error::FormError;
use crate::console::form::{int, opt_gib, opt_int, Confirm, Fields, Id, Params};
use crate::console::page::{
    answer, bytes, confirmed, csrf, done, form_error, irreversible, note, shell, when, PageResult,
};
use crate::console::session::Console;
use crate::domain;
use crate::domain::plans::PlanInput;
use crate::model::{ResetStrategy, Role};

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    note: Option<String>,
}

const STRATEGIES: [ResetStrategy; 5] = [
    ResetStrategy::CalendarMonth,
    ResetStrategy::Rolling30d,
    ResetStrategy::Weekly,
    ResetStrategy::Daily,
    ResetStrategy::None,
];

/// The plans page.
pub async fn list(
    State(state): State<AppState>,
    console: Console,
    Params(q): Params<ListQuery>,
) -> PageResult {
    render(&state, &console, q.note.as_deref(), None).await
}

async fn render(
    state: &AppState,
    console: &Console,
    note_text: Option<&str>,
    error: Option<FormError>,
) -> PageResult {
    let plans = state.store.list_plans().await?;
    let body = html! {
        (note(note_text))
        table {
            thead { tr { th { "Name" } th { "Devices" } th { "Sessions" } th { "Traffic" } th { "Resets" } th { "Lasts" } th { "Regions" } th { "Created" } @if console.may(Role::Operator) { th { "Actions" } } } }
            tbody {
                @for p in &plans {
                    tr {
                        td { (p.name) }
                        td { (p.device_limit) }
                        td { (p.session_limit) }
                        td { (p.quota_bytes.map_or_else(|| "unlimited".to_owned(), bytes)) }
                        td { (p.reset_strategy) }
                        td { (p.duration_days.map_or_else(|| "no expiry".to_owned(), |d| format!("{d} days"))) }
                        td { @if p.allowed_regions.is_empty() { "all" } @else { (p.allowed_regions.join(", ")) } }
                        td { (when(p.created_at)) }
                        @if console.may(Role::Operator) {
                            td { (irreversible(console, Role::Operator, &format!("/ui/plans/{}/delete", p.id), &format!("Delete plan {}", p.name))) }
                        }
                    }
                }
            }
        }
        (form_error(error.as_ref(), "plan-actions"))
        @if console.may(Role::Operator) {
            h2 { "New plan" }
            form id="create-plan" class="stacked" method="post" action="/ui/plans" {
                (csrf(console))
                label { "Name" input name="name" required maxlength="64"; }
                label { "Device limit" input name="device_limit" type="number" min="0" max="1000" value="3" required; }
                label { "Session limit" input name="session_limit" type="number" min="0" max="1000" value="3" required; }
                label { "Traffic per period, GiB (empty: unlimited)" input name="quota_gib" type="number" min="0" step="any"; }
                label { "Traffic resets"
                    select name="reset_strategy" {
                        @for s in STRATEGIES { option value=(s) { (s) } }
                    }
                }
                label { "Lasts, days (empty: no expiry)" input name="duration_days" type="number" min="1" max="3650"; }
                label { "Regions, comma-separated codes (empty: all)" input name="regions"; }
                button type="submit" { "Create plan" }
            }
            (form_error(error.as_ref(), "create-plan"))
        }
    };
    Ok(answer(
        error.as_ref(),
        shell(console, "Plans", "/ui/plans", body),
    ))
}

#[derive(Debug, Deserialize)]
pub struct NewPlan {
    name: String,
    device_limit: String,
    session_limit: String,
    #[serde(default)]
    quota_gib: String,
    reset_strategy: String,
    #[serde(default)]
    duration_days: String,
    #[serde(default)]
    regions: String,
}

fn input(f: &NewPlan) -> Result<PlanInput, crate::console::error::PageError> {
    Ok(PlanInput {
        name: f.name.clone(),
        device_limit: int("device limit", &f.device_limit)?,
        session_limit: int("session limit", &f.session_limit)?,
        quota_bytes: opt_gib("traffic per period", &f.quota_gib)?,
        reset_strategy: f.reset_strategy.parse().map_err(|e: String| {
            crate::console::error::PageError::new(axum::http::StatusCode::UNPROCESSABLE_ENTITY, e)
        })?,
        duration_days: opt_int("duration", &f.duration_days)?,
        allowed_regions: f
            .regions
            .split(',')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// Creates a plan.
pub async fn create(
    State(state): State<AppState>,
    console: Console,
    Fields(f): Fields<NewPlan>,
) -> PageResult {
    console.require(Role::Operator)?;
    let result = match input(&f) {
        Ok(input) => domain::plans::create(&state, &console.actor(), &input)
            .await
            .map_err(Into::into),
        Err(e) => Err(e),
    };
    match result {
        Ok(plan) => Ok(done("/ui/plans", &format!("plan {} created", plan.name))),
        Err(e) => {
            render(
                &state,
                &console,
                None,
                Some(FormError::new("create-plan", e)),
            )
            .await
        }
    }
}

/// Deletes a plan.
pub async fn delete(
    State(state): State<AppState>,
    console: Console,
    Id(id): Id<Uuid>,
    Fields(f): Fields<Confirm>,
) -> PageResult {
    console.require(Role::Operator)?;
    if let Err(e) = confirmed(&f.confirm) {
        return render(
            &state,
            &console,
            None,
            Some(FormError::new("plan-actions", e)),
        )
        .await;
    }
    match domain::plans::delete(&state, &console.actor(), id).await {
        Ok(()) => Ok(done("/ui/plans", "plan deleted")),
        Err(e) => {
            render(
                &state,
                &console,
                None,
                Some(FormError::new("plan-actions", e)),
            )
            .await
        }
    }
}
