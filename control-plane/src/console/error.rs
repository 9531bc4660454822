//! Refusals as the console shows them: an HTML page with the status and the same message the
//! REST API's problem document carries (one mapping, [`ApiError`]'s), or, for a form, that
//! message next to the form that caused it ([`FormError`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;

use crate::domain::DomainError;
use crate::error::ApiError;
use crate::store::StoreError;

/// A refusal: its status and what the operator reads.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError {
            status,
            message: message.into(),
        }
    }

    /// A form that failed the CSRF checks.
    pub fn csrf(message: &str) -> PageError {
        PageError::new(StatusCode::FORBIDDEN, message)
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        // Internal details go to the log (ApiError's response does that), not to the page.
        let message = match &e {
            ApiError::Internal(_) => "the server could not complete the request".to_owned(),
            other => other.to_string(),
        };
        let status = e.into_response().status();
        PageError { status, message }
    }
}

impl From<DomainError> for PageError {
    fn from(e: DomainError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self
            .status
            .canonical_reason()
            .unwrap_or("Refused")
            .to_owned();
        let body = html! {
            (maud::DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    title { (title) " · httvps console" }
                    link rel="stylesheet" href="/ui/static/console.css";
                }
                body {
                    main {
                        h1 { (title) }
                        p role="alert" class="error" { (self.message) }
                        p { a href="/ui" { "Back to the console" } }
                    }
                }
            }
        };
        (self.status, super::page::secured(body)).into_response()
    }
}

/// A refused form: which form (its id) and why, shown next to it.
#[derive(Debug)]
pub struct FormError {
    pub form: &'static str,
    pub error: PageError,
}

impl FormError {
    pub fn new(form: &'static str, error: impl Into<PageError>) -> FormError {
        FormError {
            form,
            error: error.into(),
        }
    }

    /// The message when it belongs to `form`.
    pub fn for_form(this: Option<&FormError>, form: &str) -> Option<String> {
        this.filter(|e| e.form == form)
            .map(|e| e.error.message.clone())
    }
}
