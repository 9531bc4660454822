//! Form bodies and query strings: an HTML form sends every field as text (an empty field as
//! ""), so handlers take text and turn it into numbers and options here, with messages that
//! name the field.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::error::PageError;

/// A form body (`application/x-www-form-urlencoded`).
#[derive(Debug)]
pub struct Fields<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Fields<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        axum::Form::<T>::from_request(req, state)
            .await
            .map(|axum::Form(v)| Fields(v))
            .map_err(|e| PageError::new(StatusCode::UNPROCESSABLE_ENTITY, e.body_text()))
    }
}

/// The body of a one-button form for a change that cannot be undone
/// ([`super::page::irreversible`]): the "sure" checkbox, `""` when it was not ticked.
#[derive(Debug, Deserialize)]
pub struct Confirm {
    #[serde(default)]
    pub confirm: String,
}

/// A query string.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PageError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| Params(v))
            .map_err(|e| PageError::new(StatusCode::BAD_REQUEST, e.body_text()))
    }
}

/// A path id.
#[derive(Debug)]
pub struct Id<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Id<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PageError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(v)| Id(v))
            .map_err(|_| PageError::new(StatusCode::NOT_FOUND, "no such page"))
    }
}

fn invalid(message: String) -> PageError {
    PageError::new(StatusCode::UNPROCESSABLE_ENTITY, message)
}

/// An optional whole number: empty is `None`.
pub fn opt_int(field: &str, text: &str) -> Result<Option<i64>, PageError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| invalid(format!("{field} must be a whole number")))
}

/// A required whole number.
pub fn int(field: &str, text: &str) -> Result<i64, PageError> {
    opt_int(field, text)?.ok_or_else(|| invalid(format!("{field} is required")))
}

/// An optional size in GiB (decimals allowed) as bytes: empty is `None`.
pub fn opt_gib(field: &str, text: &str) -> Result<Option<i64>, PageError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let gib: f64 = text
        .parse()
        .map_err(|_| invalid(format!("{field} must be a number of GiB")))?;
    if !gib.is_finite() || !(0.0..=1e9).contains(&gib) {
        return Err(invalid(format!("{field} must be between 0 and 10^9 GiB")));
    }
    Ok(Some((gib * 1024.0 * 1024.0 * 1024.0).round() as i64))
}

/// Empty text as `None`.
pub fn opt_text(text: &str) -> Option<&str> {
    let text = text.trim();
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_text_becomes_numbers_or_a_named_refusal() {
        assert_eq!(opt_int("weight", " ").unwrap(), None);
        assert_eq!(opt_int("weight", "42").unwrap(), Some(42));
        assert!(opt_int("weight", "4x")
            .unwrap_err()
            .message
            .contains("weight"));
        assert!(int("days", "")
            .unwrap_err()
            .message
            .contains("days is required"));
        assert_eq!(opt_gib("traffic", "1.5").unwrap(), Some(3 << 29));
        assert!(opt_gib("traffic", "-1").is_err());
        assert!(opt_gib("traffic", "NaN").is_err());
        assert_eq!(opt_text("  x "), Some("x"));
        assert_eq!(opt_text("   "), None);
    }
}
