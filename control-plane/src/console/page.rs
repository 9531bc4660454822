//! The page shell (navigation by role, the signed-in admin, sign-out) and the small pieces
//! every page uses: readable times and sizes, the CSRF field, one-button action forms, notes
//! after a change and errors next to the form that caused them.

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::error::{FormError, PageError};
use super::session::{Console, CSRF_FIELD};
use crate::model::{Millis, Role};

/// The navigation: path, label, the role it needs.
const NAV: &[(&str, &str, Role)] = &[
    ("/ui", "Dashboard", Role::Viewer),
    ("/ui/users", "Users", Role::Viewer),
    ("/ui/devices", "Devices", Role::Viewer),
    ("/ui/sessions", "Sessions", Role::Viewer),
    ("/ui/plans", "Plans", Role::Viewer),
    ("/ui/regions", "Regions", Role::Viewer),
    ("/ui/node-groups", "Node groups", Role::Viewer),
    ("/ui/nodes", "Nodes", Role::Viewer),
    ("/ui/usage", "Usage", Role::Viewer),
    ("/ui/audit", "Audit log", Role::Viewer),
    ("/ui/gateways", "Gateways", Role::Viewer),
    ("/ui/admins", "Admins", Role::Admin),
];

/// An HTML answer with the console's headers: no script may run (the console has none), no
/// other site may frame it, and no cache keeps pages that show credentials.
pub fn secured(markup: Markup) -> Response {
    let mut response = markup.into_response();
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    // Not `no-referrer`: with it a browser sends `Origin: null` on form posts, which the CSRF
    // check refuses.
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A whole console page.
pub fn shell(console: &Console, title: &str, active: &str, body: Markup) -> Response {
    secured(html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · httvps console" }
                link rel="stylesheet" href="/ui/static/console.css";
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header {
                    nav aria-label="Console" {
                        ul {
                            @for (path, label, role) in NAV {
                                @if console.may(*role) {
                                    li {
                                        @if *path == active {
                                            a href=(path) aria-current="page" { (label) }
                                        } @else {
                                            a href=(path) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    form class="signout" method="post" action="/ui/logout" {
                        (csrf(console))
                        span { (console.caller.username) " (" (console.caller.role) ")" }
                        " "
                        button type="submit" { "Sign out" }
                    }
                }
                main id="main" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    })
}

/// The hidden CSRF field every form carries.
pub fn csrf(console: &Console) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(console.csrf); }
}

/// A one-button form posting to `action`, shown only to admins with `role` (the server refuses
/// it to the others all the same).
pub fn action(console: &Console, role: Role, action: &str, label: &str) -> Markup {
    html! {
        @if console.may(role) {
            form class="inline" method="post" action=(action) {
                (csrf(console))
                button type="submit" { (label) }
            }
        }
    }
}

/// A one-button form posting to `action`, with a hidden `status` field when given. Unlike
/// [`action`] it is shown to every admin: the page around it decides who sees it.
pub fn post_button(console: &Console, action: &str, status: Option<&str>, label: &str) -> Markup {
    html! {
        form class="inline" method="post" action=(action) {
            (csrf(console))
            @if let Some(status) = status { input type="hidden" name="status" value=(status); }
            button type="submit" { (label) }
        }
    }
}

/// A one-button form for a change that cannot be undone: a checkbox saying so must be ticked
/// first (the browser insists, and [`confirmed`] checks it on the server).
pub fn irreversible(console: &Console, role: Role, action: &str, label: &str) -> Markup {
    html! {
        @if console.may(role) {
            form class="inline" method="post" action=(action) {
                (csrf(console))
                label { input type="checkbox" name="confirm" value="yes" required; " sure" }
                " "
                button type="submit" { (label) }
            }
        }
    }
}

/// Whether the form of [`irreversible`] was confirmed.
pub fn confirmed(confirm: &str) -> Result<(), PageError> {
    if confirm == "yes" {
        Ok(())
    } else {
        Err(PageError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "tick \"sure\" to confirm: this cannot be undone",
        ))
    }
}

/// The note a change left (`?note=`), announced to screen readers.
pub fn note(text: Option<&str>) -> Markup {
    html! {
        @if let Some(text) = text.filter(|t| !t.is_empty()) {
            p class="note" role="status" { (text) }
        }
    }
}

/// The error of `form`, if it is the one that failed.
pub fn form_error(error: Option<&FormError>, form: &str) -> Markup {
    html! {
        @if let Some(message) = FormError::for_form(error, form) {
            p class="error" role="alert" id={ (form) "-error" } { (message) }
        }
    }
}

/// The status a page answers with: the form error's, else 200.
pub fn status_of(error: Option<&FormError>) -> axum::http::StatusCode {
    error.map_or(axum::http::StatusCode::OK, |e| e.error.status)
}

/// A page answer with the status of its form error.
pub fn answer(error: Option<&FormError>, page: Response) -> Response {
    let mut page = page;
    *page.status_mut() = status_of(error);
    page
}

/// `303 See Other` to `path` with a note to show there.
pub fn done(path: &str, note: &str) -> Response {
    let encoded: String = url::form_urlencoded::byte_serialize(note.as_bytes()).collect();
    let sep = if path.contains('?') { '&' } else { '?' };
    axum::response::Redirect::to(&format!("{path}{sep}note={encoded}")).into_response()
}

/// A time as the operator reads it: `2026-12-01 21:30:00 UTC`.
pub fn when(ms: Millis) -> String {
    crate::readable::time(ms).unwrap_or_else(|| ms.to_string())
}

/// An optional time, `—` when absent.
pub fn when_opt(ms: Option<Millis>) -> String {
    ms.map_or_else(|| "—".to_owned(), when)
}

/// A date only: `2026-12-01`.
pub fn day(ms: Millis) -> String {
    when(ms).chars().take(10).collect()
}

/// A byte count in binary units: `1.5 GiB`.
pub fn bytes(n: i64) -> String {
    crate::readable::bytes(n)
}

/// An SVG document as an image (the QR codes the domain layer draws).
pub fn svg_image(svg: &str, alt: &str) -> Markup {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(svg);
    html! { img class="qr" src={ "data:image/svg+xml;base64," (data) } alt=(alt); }
}

/// A page refused as a whole.
pub type PageResult = Result<Response, PageError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_read_well() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(50 << 30), "50.0 GiB");
        assert_eq!(when(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(when(1_764_624_600_000), "2025-12-01 21:30:00 UTC");
        assert_eq!(day(1_764_624_600_000), "2025-12-01");
        assert_eq!(when_opt(None), "—");
    }

    #[test]
    fn notes_are_url_encoded() {
        let r = done("/ui/users/x", "plan gold & co created");
        assert_eq!(
            r.headers()["location"],
            "/ui/users/x?note=plan+gold+%26+co+created"
        );
        let r = done("/ui/sessions?show=all", "ok");
        assert_eq!(r.headers()["location"], "/ui/sessions?show=all&note=ok");
    }
}
