//! The console's sessions: the admin JWT of `POST /v1/admin/login` kept in an HttpOnly,
//! SameSite=Strict cookie (Secure when `HTTVPS_CP_PUBLIC_URL` is https), renewed when half of
//! its life has passed, and checked by the same code as the REST API's bearer tokens
//! ([`AdminCaller`]). Every POST must also pass two CSRF checks: its `Origin` (when sent) names
//! this host, and its `csrf` form field equals the `httvps_csrf` cookie (a double-submit token;
//! a cross-site page can neither read the cookie nor, with SameSite=Strict, send it).

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

use super::error::PageError;
use crate::app::AppState;
use crate::auth::token;
use crate::http::extract::AdminCaller;
use crate::model::Role;

/// The cookie holding the admin JWT.
pub const SESSION_COOKIE: &str = "httvps_console";
/// The cookie holding the double-submit CSRF token.
pub const CSRF_COOKIE: &str = "httvps_csrf";
/// The form field every POST repeats the CSRF token in.
pub const CSRF_FIELD: &str = "csrf";

/// The signed-in admin of a console request, with the CSRF token its forms carry.
#[derive(Clone, Debug)]
pub struct Console {
    pub caller: AdminCaller,
    pub csrf: String,
}

impl Console {
    /// Whether the admin has at least `role` (what the page offers).
    pub fn may(&self, role: Role) -> bool {
        self.caller.require(role).is_ok()
    }

    /// Refuses the action server-side when the admin's role is below `role`.
    pub fn require(&self, role: Role) -> Result<(), PageError> {
        self.caller.require(role).map_err(PageError::from)
    }

    /// The audit actor name, as the REST API records it.
    pub fn actor(&self) -> String {
        self.caller.actor()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Console {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        parts
            .extensions
            .get::<Console>()
            .cloned()
            .ok_or_else(|| Redirect::to("/ui/login").into_response())
    }
}

/// The value of the cookie `name`, if the request sent it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value for a console cookie (`max_age` 0 removes it).
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: u64) -> HeaderValue {
    let secure = state
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    let text = format!(
        "{name}={value}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    // Tokens are base64url / hex and JWTs are dot-separated base64url: always valid.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Paths that need no signed-in admin.
fn is_open(path: &str) -> bool {
    path == "/ui/login" || path.starts_with("/ui/static/")
}

/// The CSRF checks of a POST: the origin and the double-submit token. Returns the request with
/// its body restored.
async fn check_post(state: &AppState, req: Request) -> Result<Request, PageError> {
    if let Some(origin) = req.headers().get(ORIGIN) {
        let host = req.headers().get(HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, h)| h);
        if host.is_none() || origin_host != host {
            return Err(PageError::csrf("the form was sent from another site"));
        }
    }
    let expected = cookie(req.headers(), CSRF_COOKIE)
        .map(str::to_owned)
        .ok_or_else(|| PageError::csrf("the form's session cookie is missing; reload the page"))?;
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, state.config.max_body_bytes)
        .await
        .map_err(|_| PageError::csrf("the form could not be read"))?;
    let sent = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == CSRF_FIELD)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    if sent.is_empty() || !bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
        return Err(PageError::csrf(
            "the form's CSRF token does not match; reload the page and try again",
        ));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Unix seconds now.
fn now_secs() -> u64 {
    u64::try_from(crate::model::now_ms() / 1000).unwrap_or(0)
}

/// Every console request passes here: POSTs are checked against CSRF, pages need a signed-in
/// admin (else a redirect to the login page), and a token past half its life is renewed.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let req = if req.method() == Method::POST {
        match check_post(&state, req).await {
            Ok(req) => req,
            Err(e) => return e.into_response(),
        }
    } else {
        req
    };
    let path = req.uri().path().to_owned();
    if is_open(&path) {
        return next.run(req).await;
    }
    let Some(token) = cookie(req.headers(), SESSION_COOKIE).map(str::to_owned) else {
        return Redirect::to("/ui/login").into_response();
    };
    let csrf = cookie(req.headers(), CSRF_COOKIE)
        .map(str::to_owned)
        .unwrap_or_default();
    let (mut parts, body) = req.into_parts();
    // The REST API's own check: signature, expiry, the admin still enabled, the password
    // unchanged, the stored role.
    let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {token}")) else {
        return Redirect::to("/ui/login").into_response();
    };
    parts.headers.insert(AUTHORIZATION, bearer);
    let caller = match AdminCaller::from_request_parts(&mut parts, &state).await {
        Ok(caller) => caller,
        Err(_) => {
            let mut response = Redirect::to("/ui/login").into_response();
            response
                .headers_mut()
                .append(SET_COOKIE, set_cookie(&state, SESSION_COOKIE, "", 0));
            return response;
        }
    };
    parts.headers.remove(AUTHORIZATION);
    let renewed = renew(&state, &token, &caller);
    let console = Console { caller, csrf };
    parts.extensions.insert(console);
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if let Some(fresh) = renewed {
        response.headers_mut().append(
            SET_COOKIE,
            set_cookie(&state, SESSION_COOKIE, &fresh, state.jwt.ttl_secs()),
        );
    }
    response
}

/// A new token when more than half of this one's life has passed (the console's refresh: an
/// admin who keeps working stays signed in; one who walks away is signed out after the TTL).
fn renew(state: &AppState, token: &str, caller: &AdminCaller) -> Option<String> {
    let claims = state.jwt.verify(token)?;
    let now = now_secs();
    if claims.exp.saturating_sub(now) > state.jwt.ttl_secs() / 2 {
        return None;
    }
    state
        .jwt
        .issue_for_generation(caller.id, &caller.username, caller.role, claims.gen, now)
        .ok()
        .map(|(token, _)| token)
}

/// A fresh CSRF token for a browser that has none.
pub fn new_csrf() -> String {
    token::generate()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name_across_headers() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; httvps_csrf_x=no"));
        headers.append(
            COOKIE,
            HeaderValue::from_static("httvps_csrf=tok; httvps_console=jwt.a.b"),
        );
        assert_eq!(cookie(&headers, CSRF_COOKIE), Some("tok"));
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("jwt.a.b"));
        assert_eq!(cookie(&headers, "missing"), None);
        let mut empty = HeaderMap::new();
        empty.append(COOKIE, HeaderValue::from_static("httvps_csrf="));
        assert_eq!(
            cookie(&empty, CSRF_COOKIE),
            None,
            "an empty value is no token"
        );
    }
}
