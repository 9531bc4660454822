//! The OpenAPI document holds what a generated client needs: every operation declares the
//! refusals it can give as `application/problem+json` problem documents, no two types share a
//! schema name, every list takes `limit` and `offset`, and request schemas carry the limits the
//! service enforces. (scripts/api-conformance.sh checks the running service against it.)

use std::collections::BTreeSet;

use httvps_control_plane::http::{admin, openapi};
use serde_json::Value;
use utoipa::OpenApi;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn document() -> Value {
    openapi::document()
}

/// Every operation as (path, method, operation).
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                ops.push((path.clone(), method.to_owned(), op.clone()));
            }
        }
    }
    assert!(ops.len() > 70, "only {} operations", ops.len());
    ops
}

fn params<'a>(op: &'a Value, place: &str) -> Vec<&'a Value> {
    op["parameters"]
        .as_array()
        .map(|ps| ps.iter().filter(|p| p["in"] == place).collect())
        .unwrap_or_default()
}

fn secured_by(op: &Value, scheme: &str) -> bool {
    op["security"]
        .as_array()
        .is_some_and(|s| s.iter().any(|r| r.get(scheme).is_some()))
}

#[test]
fn every_error_answer_is_a_problem_document() {
    let doc = document();
    for (path, method, op) in operations(&doc) {
        for (status, response) in op["responses"].as_object().expect("responses") {
            if !status.starts_with(['4', '5']) || (path == "/readyz" && status == "503") {
                continue;
            }
            let content = response["content"]
                .as_object()
                .unwrap_or_else(|| panic!("{method} {path} {status} has no content"));
            assert_eq!(
                content.keys().collect::<Vec<_>>(),
                ["application/problem+json"],
                "{method} {path} {status}"
            );
            assert_eq!(
                content["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{method} {path} {status}"
            );
        }
    }
    let problem = &doc["components"]["schemas"]["Problem"];
    for field in ["type", "title", "status", "code", "detail"] {
        assert!(problem["properties"][field].is_object(), "Problem.{field}");
    }
}

#[test]
fn every_operation_declares_the_refusals_it_can_give() {
    let doc = document();
    for (path, method, op) in operations(&doc) {
        let declared: BTreeSet<&str> = op["responses"]
            .as_object()
            .expect("responses")
            .keys()
            .map(String::as_str)
            .collect();
        let mut needed = BTreeSet::new();
        let admin = secured_by(&op, "admin_jwt");
        let gateway = secured_by(&op, "gateway_token");
        let body = op.get("requestBody").is_some();
        let in_path = !params(&op, "path").is_empty();
        let in_query = !params(&op, "query").is_empty();
        if admin || gateway {
            needed.insert("401");
        }
        if gateway || (admin && method != "get") {
            needed.insert("403");
        }
        if body {
            needed.extend(["400", "413", "422"]);
        }
        if in_path {
            needed.extend(["404", "422"]);
        }
        if in_query {
            needed.insert("422");
            if !path.starts_with("/sub/") {
                needed.insert("400");
            }
        }
        let missing: Vec<_> = needed.difference(&declared).collect();
        assert!(missing.is_empty(), "{method} {path} lacks {missing:?}");
    }
    // Refusals that depend on what the operation does.
    let ops = operations(&doc);
    let declares = |p: &str, m: &str, status: &str| {
        ops.iter()
            .find(|(path, method, _)| path == p && method == m)
            .is_some_and(|(_, _, op)| op["responses"].get(status).is_some())
    };
    assert!(declares("/v1/admin/users", "post", "409"));
    assert!(declares("/v1/admin/gateways/live", "get", "503"));
    assert!(declares("/v1/admin/admins", "get", "403"));
    assert!(declares("/v1/admin/devices/{id}/link", "get", "403"));
    assert!(declares("/v1/admin/login", "post", "429"));
    // Rotating a gateway token takes its body or none.
    let rotate = &doc["paths"]["/v1/admin/gateways/{id}/tokens"]["post"]["requestBody"];
    assert_ne!(rotate["required"], true, "{rotate}");
}

/// Schema names are global in a document: two types with one name would make one of them
/// silently replace the other (`GET /v1/admin/usage` once showed the gateway's usage answer).
#[test]
fn no_two_types_share_a_schema_name() {
    let parts = [
        serde_json::to_value(openapi::ApiDoc::openapi()).unwrap(),
        serde_json::to_value(admin::AdminApi::openapi()).unwrap(),
    ];
    let schemas = |doc: &Value| doc["components"]["schemas"].as_object().cloned().unwrap();
    let (public, admin) = (schemas(&parts[0]), schemas(&parts[1]));
    // Equal but for their descriptions is one schema to a client (`NodeHealth` of the pool
    // snapshot and of a node).
    for (name, schema) in &public {
        if let Some(other) = admin.get(name) {
            assert_eq!(
                without_descriptions(schema),
                without_descriptions(other),
                "two different schemas are named {name}"
            );
        }
    }
    let doc = document();
    let answer = |path: &str, method: &str| {
        doc["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]
            ["$ref"]
            .clone()
    };
    assert_eq!(
        answer("/v1/admin/usage", "get"),
        "#/components/schemas/UsageTotals"
    );
    assert_eq!(
        answer("/v1/gateway/usage", "post"),
        "#/components/schemas/UsageReportResponse"
    );
    let totals = &doc["components"]["schemas"]["UsageTotals"]["properties"];
    assert!(totals["rows"].is_object() && totals["granularity"].is_object());
    // Every reference resolves.
    let text = doc.to_string();
    for reference in text.split("\"#/components/schemas/").skip(1) {
        let name = reference.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "dangling reference to {name}"
        );
    }
}

fn without_descriptions(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| *k != "description")
                .map(|(k, v)| (k.clone(), without_descriptions(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_descriptions).collect()),
        other => other.clone(),
    }
}

#[test]
fn every_list_takes_limit_and_offset() {
    let doc = document();
    let mut lists = 0;
    for (path, method, op) in operations(&doc) {
        let schema = &op["responses"]["200"]["content"]["application/json"]["schema"];
        if method != "get" || schema["type"] != "array" {
            continue;
        }
        lists += 1;
        let query = params(&op, "query");
        let param = |name: &str| {
            query
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("GET {path} has no {name} parameter"))
                .get("schema")
                .cloned()
                .unwrap_or_default()
        };
        let limit = param("limit");
        assert_eq!(
            (limit["minimum"].as_f64(), limit["maximum"].as_f64()),
            (Some(1.0), Some(1000.0)),
            "GET {path} limit"
        );
        assert_eq!(
            param("offset")["minimum"].as_f64(),
            Some(0.0),
            "GET {path} offset"
        );
    }
    // users, admins, plans, regions, node groups, nodes, devices, subscriptions, sessions,
    // audit, gateways, live gateways, gateway tokens.
    assert!(lists >= 13, "only {lists} lists");
}

#[test]
fn request_schemas_carry_the_limits_the_service_enforces() {
    let doc = document();
    let schemas = &doc["components"]["schemas"];
    let field = |schema: &str, name: &str| schemas[schema]["properties"][name].clone();
    assert_eq!(field("CreateUser", "name")["maxLength"], 64);
    assert_eq!(field("CreateUser", "name")["minLength"], 1);
    assert!(field("CreateUser", "name")["pattern"].is_string());
    assert_eq!(field("CreateUser", "email")["maxLength"], 254);
    assert_eq!(field("CreatePlan", "device_limit")["maximum"], 1000.0);
    assert_eq!(field("CreatePlan", "duration_days")["minimum"], 1.0);
    assert_eq!(
        field("CreateRegion", "code")["pattern"],
        "^[a-z0-9-]{1,32}$"
    );
    assert_eq!(field("CreateRegion", "latitude")["minimum"], -90.0);
    assert_eq!(field("CreateAdmin", "password")["minLength"], 12);
    assert_eq!(field("CreateNode", "port")["maximum"], 65535.0);
    assert_eq!(field("CreateNodeGroup", "description")["maxLength"], 512);
    assert_eq!(field("RotateToken", "overlap_secs")["maximum"], 604800.0);
    assert_eq!(field("CreateGateway", "allowed_from")["maxItems"], 64);
}
