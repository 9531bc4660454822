//! The admin API as the tests call it: a request with the test admin's token, and answers
//! asserted by status.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

use super::app::{call, TestApp};

pub async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let req = app.admin(method, path);
    call(match body {
        Some(b) => req.json(&b),
        None => req,
    })
    .await
}

pub async fn get(app: &TestApp, path: &str) -> (StatusCode, Value) {
    send(app, Method::GET, path, None).await
}

pub async fn post(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    send(app, Method::POST, path, Some(body)).await
}

pub async fn post_empty(app: &TestApp, path: &str) -> (StatusCode, Value) {
    send(app, Method::POST, path, None).await
}

pub async fn patch(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    send(app, Method::PATCH, path, Some(body)).await
}

pub async fn delete(app: &TestApp, path: &str) -> (StatusCode, Value) {
    send(app, Method::DELETE, path, None).await
}

/// A request with another bearer token.
pub fn with_token(app: &TestApp, token: &str, method: Method, path: &str) -> RequestBuilder {
    app.http.request(method, app.url(path)).bearer_auth(token)
}

/// Asserts a success status and returns the body.
#[track_caller]
pub fn ok(resp: (StatusCode, Value), status: StatusCode) -> Value {
    assert_eq!(resp.0, status, "unexpected answer: {}", resp.1);
    resp.1
}

/// GETs and asserts 200 OK; returns the body.
pub async fn get_ok(app: &TestApp, path: &str) -> Value {
    ok(get(app, path).await, StatusCode::OK)
}

/// POSTs and asserts 201 Created; returns the body.
pub async fn create_ok(app: &TestApp, path: &str, body: Value) -> Value {
    ok(post(app, path, body).await, StatusCode::CREATED)
}

/// PATCHes and asserts 200 OK; returns the body.
pub async fn patch_ok(app: &TestApp, path: &str, body: Value) -> Value {
    ok(patch(app, path, body).await, StatusCode::OK)
}
