//! The operator console under `/ui`: server-rendered HTML pages (maud) over the same domain
//! layer (`crate::domain`) and the same admin sessions and roles as the REST admin API, with no
//! script and nothing fetched from elsewhere (see docs/console.md). Every change is a plain
//! form POST, checked against CSRF (`session`), then answered with a redirect to the page it
//! changed, or with that page again and the refusal next to the form.

mod chart;
mod error;
mod form;
mod login;
mod page;
mod pages;
mod session;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use crate::app::AppState;

/// The console's routes, behind its session and CSRF guard.
pub fn routes(state: &AppState) -> Router<AppState> {
    use pages::*;
    Router::new()
        .route("/ui", get(dashboard::show))
        .route("/ui/login", get(login::form).post(login::submit))
        .route("/ui/logout", post(login::logout))
        .route("/ui/static/console.css", get(stylesheet))
        .route("/ui/users", get(users::list).post(users::create))
        .route("/ui/users/{id}", get(users::show))
        .route("/ui/users/{id}/status", post(users::set_status))
        .route("/ui/users/{id}/delete", post(users::delete))
        .route(
            "/ui/users/{id}/subscriptions",
            post(subscriptions::subscribe),
        )
        .route("/ui/users/{id}/devices", post(devices::create))
        .route(
            "/ui/subscriptions/{id}/cancel",
            post(subscriptions::cancel_subscription),
        )
        .route(
            "/ui/subscriptions/{id}/reset-usage",
            post(subscriptions::reset_usage),
        )
        .route("/ui/subscriptions/{id}/extend", post(subscriptions::extend))
        .route(
            "/ui/subscriptions/{id}/add-traffic",
            post(subscriptions::add_traffic),
        )
        .route(
            "/ui/subscriptions/{id}/plan",
            post(subscriptions::change_plan),
        )
        .route("/ui/devices", get(devices::list))
        .route("/ui/devices/{id}", get(devices::show))
        .route("/ui/devices/{id}/rotate-token", post(devices::rotate_token))
        .route("/ui/devices/{id}/status", post(devices::set_status))
        .route("/ui/sessions", get(sessions::list))
        .route("/ui/sessions/{id}/kill", post(sessions::kill))
        .route("/ui/plans", get(plans::list).post(plans::create))
        .route("/ui/plans/{id}/delete", post(plans::delete))
        .route("/ui/regions", get(pool::regions).post(pool::create_region))
        .route(
            "/ui/node-groups",
            get(pool::groups).post(pool::create_group),
        )
        .route("/ui/nodes", get(nodes::nodes))
        .route("/ui/nodes/import", post(nodes::import_node))
        .route("/ui/nodes/{id}", get(nodes::node).post(nodes::update_node))
        .route("/ui/usage", get(usage::show))
        .route("/ui/audit", get(audit::show))
        .route("/ui/gateways", get(gateways::list).post(gateways::create))
        .route("/ui/gateways/{id}/tokens", post(gateways::rotate))
        .route(
            "/ui/gateways/{id}/tokens/{token_id}/revoke",
            post(gateways::revoke),
        )
        .route("/ui/admins", get(admins::list).post(admins::create))
        .route("/ui/admins/{id}", post(admins::update))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::guard,
        ))
}

/// The stylesheet, compiled into the binary.
async fn stylesheet() -> impl IntoResponse {
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("console.css"),
    )
}
