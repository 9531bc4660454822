//! Signing in and out. Signing in calls the REST API's own login (`POST /v1/admin/login`'s
//! handler: the same password check, the same rate limits per address and per account) and
//! keeps its JWT in the session cookie; signing out removes the cookies.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, DOCTYPE};
use serde::Deserialize;

use super::error::PageError;
use super::form::Fields;
use super::page::secured;
use super::session::{cookie, new_csrf, set_cookie, CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE};
use crate::app::AppState;
use crate::http::admin::login::{login, LoginRequest};
use crate::http::client::ClientAddr;
use crate::http::extract::ApiJsonAnyText;

/// The CSRF cookie lives as long as a browser session might.
const CSRF_MAX_AGE: u64 = 12 * 3600;

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
}

fn login_page(csrf: &str, username: &str, error: Option<&str>) -> Response {
    secured(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · httvps console" }
                link rel="stylesheet" href="/ui/static/console.css";
            }
            body {
                main class="login" {
                    h1 { "httvps console" }
                    @if let Some(error) = error {
                        p class="error" role="alert" id="login-error" { (error) }
                    }
                    form id="login" class="stacked" method="post" action="/ui/login" {
                        input type="hidden" name=(CSRF_FIELD) value=(csrf);
                        label { "Username" input name="username" autocomplete="username" required value=(username) autofocus; }
                        label { "Password" input name="password" type="password" autocomplete="current-password" required; }
                        button type="submit" { "Sign in" }
                    }
                }
            }
        }
    })
}

/// The CSRF token of this browser, or a new one with the cookie that keeps it.
fn csrf_of(state: &AppState, headers: &HeaderMap) -> (String, Option<axum::http::HeaderValue>) {
    match cookie(headers, CSRF_COOKIE) {
        Some(token) => (token.to_owned(), None),
        None => {
            let token = new_csrf();
            let set = set_cookie(state, CSRF_COOKIE, &token, CSRF_MAX_AGE);
            (token, Some(set))
        }
    }
}

/// The sign-in form.
pub async fn form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (csrf, set) = csrf_of(&state, &headers);
    let mut response = login_page(&csrf, "", None);
    if let Some(set) = set {
        response.headers_mut().append(SET_COOKIE, set);
    }
    response
}

/// Signs in: on success the session cookie and a new CSRF token (a token planted before the
/// sign-in is not kept), then the dashboard.
pub async fn submit(
    State(state): State<AppState>,
    addr: ClientAddr,
    headers: HeaderMap,
    Fields(f): Fields<LoginForm>,
) -> Response {
    let request = LoginRequest {
        username: f.username.clone(),
        password: f.password,
    };
    match login(State(state.clone()), addr, ApiJsonAnyText(request)).await {
        Ok(axum::Json(answer)) => {
            let mut response = Redirect::to("/ui").into_response();
            let headers = response.headers_mut();
            headers.append(
                SET_COOKIE,
                set_cookie(&state, SESSION_COOKIE, &answer.token, state.jwt.ttl_secs()),
            );
            headers.append(
                SET_COOKIE,
                set_cookie(&state, CSRF_COOKIE, &new_csrf(), CSRF_MAX_AGE),
            );
            response
        }
        Err(e) => {
            let error = PageError::from(e);
            let message = if error.status == axum::http::StatusCode::UNAUTHORIZED {
                "wrong username or password".to_owned()
            } else {
                error.message
            };
            let (csrf, _) = csrf_of(&state, &headers);
            let mut response = login_page(&csrf, &f.username, Some(&message));
            *response.status_mut() = error.status;
            response
        }
    }
}

/// Signs out: both cookies removed.
pub async fn logout(State(state): State<AppState>) -> Response {
    let mut response = Redirect::to("/ui/login").into_response();
    let headers = response.headers_mut();
    headers.append(SET_COOKIE, set_cookie(&state, SESSION_COOKIE, "", 0));
    headers.append(SET_COOKIE, set_cookie(&state, CSRF_COOKIE, "", 0));
    response
}
