//! The OpenAPI document, generated from the handlers' annotations, then completed by
//! [`error_responses`]: every refusal an operation can give, as `application/problem+json`.

use serde_json::{json, Map, Value};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, gateway, public, subscription};

/// The media type of every error answer (RFC 7807).
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "httvps control plane", description = "Users, devices, plans, the node pool, sessions, usage and audit. Errors are RFC 7807 problem documents (`application/problem+json`) with a stable `code`. Lists take `limit` (1 to 1000, default 100) and `offset` (default 0) and answer a JSON array; a query parameter a list does not know is a 400 `unknown_parameter` problem naming it."),
    paths(
        public::healthz, public::readyz, public::metrics, subscription::subscription,
        gateway::validate_device, gateway::validate_devices_batch, gateway::assign_node, gateway::start_session, gateway::session_heartbeat,
        gateway::end_session, gateway::session_batch, gateway::report_usage, gateway::pool_snapshot, gateway::gateway_heartbeat,
    ),
    components(schemas(crate::error::Problem, subscription::Feed, subscription::FeedLink, subscription::FeedDevice, subscription::FeedFormat)),
    modifiers(&SecuritySchemes),
    tags((name = "public"), (name = "gateway", description = "For gateways, with their service token"), (name = "admin", description = "For operators, with a JWT from /v1/admin/login"))
)]
pub struct ApiDoc;

/// The whole document as served: the public and gateway routes plus the admin API, with the
/// error answers of every operation. (JSON, as utoipa cannot read every schema it writes back
/// into its own types.)
pub fn document() -> Value {
    let mut doc = ApiDoc::openapi();
    doc.merge(admin::AdminApi::openapi());
    // Serialising utoipa's own types cannot fail (string keys only).
    let mut value = serde_json::to_value(&doc).unwrap_or_default();
    error_responses(&mut value);
    value
}

/// Adds the refusals every operation can give from the way the service handles requests (the
/// extractors in [`super::extract`] and the roles in [`super::admin`]), and gives every
/// problem answer the `application/problem+json` media type:
///
/// - 400: a body that is not JSON (or lacks `Content-Type: application/json`), or a query
///   parameter the operation does not know;
/// - 401: no valid token, on every secured operation;
/// - 403: a role below the one needed (every admin change) or a gateway token used from outside
///   its allow-list (every gateway operation);
/// - 404: no row with the id in the path;
/// - 413: a body over `--max-body-bytes`;
/// - 422: a body, path or query value that breaks a rule;
/// - 429: gateway operations (too many bad tokens from one address).
///
/// 409 and 503 depend on what an operation does; its own annotation declares them.
pub fn error_responses(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            if let Some(op) = op.as_object_mut() {
                complete_operation(method, op);
            }
        }
    }
}

fn complete_operation(method: &str, op: &mut Map<String, Value>) {
    let params = op
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has = |place: &str| params.iter().any(|p| p["in"] == place);
    let has_body = op.contains_key("requestBody");
    let (in_path, in_query) = (has("path"), has("query"));
    let schemes: Vec<String> = op
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|s| s.keys().cloned())
        .collect();
    let gateway = schemes.iter().any(|s| s == "gateway_token");
    let admin = schemes.iter().any(|s| s == "admin_jwt");
    let mut add = Vec::new();
    // Public routes read their query leniently (see `LenientQuery`).
    let lenient = op
        .get("tags")
        .and_then(Value::as_array)
        .is_some_and(|t| t.iter().any(|t| t == "public"));
    if has_body || (in_query && !lenient) {
        add.push(400);
    }
    if gateway || admin {
        add.push(401);
    }
    if gateway || (admin && method != "get") {
        add.push(403);
    }
    if in_path {
        add.push(404);
    }
    if has_body {
        add.push(413);
    }
    if has_body || in_path || in_query {
        add.push(422);
    }
    if gateway {
        add.push(429);
    }
    let responses = op
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    let Some(responses) = responses else {
        return;
    };
    for status in add {
        responses
            .entry(status.to_string())
            .or_insert_with(|| json!({"description": reason(status), "content": {}}));
    }
    for (status, response) in responses.iter_mut() {
        if status.starts_with(['4', '5']) {
            problem_content(response);
        }
    }
}

/// Makes the problem document an error answer's only content: an annotation's `body = Problem`
/// says `application/json`. Answers declared without content (the plain-text 503 of
/// `/readyz`) stay as they are.
fn problem_content(response: &mut Value) {
    let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) else {
        return;
    };
    if content.keys().any(|k| k.starts_with("text/")) {
        return;
    }
    content.clear();
    content.insert(
        PROBLEM_JSON.into(),
        json!({ "schema": { "$ref": "#/components/schemas/Problem" } }),
    );
}

fn reason(status: u16) -> &'static str {
    match status {
        400 => "malformed request: a body that is not JSON, or an unknown query parameter",
        401 => "authentication required",
        403 => "forbidden: the caller's role or address may not do this",
        404 => "not found",
        413 => "the request body is larger than the limit",
        422 => "validation failed",
        429 => "too many requests; see Retry-After",
        _ => "refused",
    }
}

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "gateway_token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "admin_jwt",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
