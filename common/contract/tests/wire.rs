//! Every body of the contract against a fixed JSON example as the control plane sends or
//! accepts it: decoding the example gives the value, encoding the value gives the example.

use httvps_contract::assign::{AssignNodeRequest, AssignNodeResponse, AssignedNode};
use httvps_contract::limits::{MAX_REPORT_ID_LEN, MAX_USAGE_BYTES, MAX_USAGE_RECORDS};
use httvps_contract::pool::{NodeHealth, PoolNode, PoolSnapshot};
use httvps_contract::session::{
    EndSessionRequest, GatewayHeartbeat, HeartbeatResponse, StartSessionRequest,
};
use httvps_contract::usage::{UsageRecord, UsageReport, UsageReportResponse};
use httvps_contract::validate::{Entitlement, PlanTerms, ValidateRequest, ValidateResponse};
use httvps_contract::{routes, DenyCode, EndReason, Refusal, RefusalCode};
use httvps_proto::HelloErrorCode;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

const DEVICE: &str = "6f1c2a9e-4b7d-4c1e-9a35-0d2f8b6e7a10";
const USER: &str = "0b8e4f2a-1c3d-4e5f-8a9b-7c6d5e4f3a21";
const PLAN: &str = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";
const NODE: &str = "3a2b1c0d-9e8f-4a7b-8c6d-5e4f3a2b1c0d";
const SESSION: &str = "7e6d5c4b-3a29-4817-9f6e-5d4c3b2a1908";

fn id(s: &str) -> Uuid {
    Uuid::parse_str(s).unwrap()
}

/// The example decodes to the value and the value encodes to the example.
fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(
    value: T,
    example: Value,
) {
    let decoded: T = serde_json::from_value(example.clone()).expect("the example decodes");
    assert_eq!(decoded, value);
    assert_eq!(serde_json::to_value(&value).unwrap(), example);
}

#[test]
fn validate_request() {
    round_trip(
        ValidateRequest {
            device_id: DEVICE.into(),
            device_token: "tok".into(),
            region: Some("eu-west".into()),
        },
        json!({"device_id": DEVICE, "device_token": "tok", "region": "eu-west"}),
    );
    let no_region: ValidateRequest =
        serde_json::from_value(json!({"device_id": "x", "device_token": "y"})).unwrap();
    assert_eq!(no_region.region, None);
    assert!(serde_json::from_value::<ValidateRequest>(
        json!({"device_id": "x", "device_token": "y", "extra": 1})
    )
    .is_err());
}

#[test]
fn validate_allow_and_deny() {
    round_trip(
        ValidateResponse::Allow {
            cache_ttl_secs: 60,
            entitlement: Box::new(Entitlement {
                device_id: id(DEVICE),
                user_id: id(USER),
                plan: PlanTerms {
                    id: id(PLAN),
                    name: "basic".into(),
                    quota_bytes: Some(1 << 30),
                },
                session_limit: 2,
                remaining_bytes: Some(1 << 30),
                quota_resets_at: Some(1_700_000_000_000),
                expires_at: None,
                allowed_regions: vec!["eu-west".into()],
            }),
        },
        json!({
            "result": "allow",
            "cache_ttl_secs": 60,
            "entitlement": {
                "device_id": DEVICE,
                "user_id": USER,
                "plan": {"id": PLAN, "name": "basic", "quota_bytes": 1073741824},
                "session_limit": 2,
                "remaining_bytes": 1073741824,
                "quota_resets_at": 1700000000000i64,
                "expires_at": null,
                "allowed_regions": ["eu-west"]
            }
        }),
    );
    round_trip(
        ValidateResponse::Deny {
            cache_ttl_secs: 10,
            code: DenyCode::QuotaExceeded,
            message: "the byte quota of this period is used up".into(),
        },
        json!({
            "result": "deny",
            "cache_ttl_secs": 10,
            "code": "quota_exceeded",
            "message": "the byte quota of this period is used up"
        }),
    );
}

#[test]
fn deny_codes_are_hello_error_names() {
    for code in [
        DenyCode::AuthFailed,
        DenyCode::Revoked,
        DenyCode::Expired,
        DenyCode::QuotaExceeded,
        DenyCode::RegionNotAllowed,
    ] {
        assert_eq!(code.hello_error_code().name(), code.as_str());
        assert_eq!(serde_json::to_value(code).unwrap(), json!(code.as_str()));
    }
    // A newer control plane's code is not a decoding error: the device is refused as unknown.
    let newer: DenyCode = serde_json::from_value(json!("payment_required")).unwrap();
    assert_eq!(newer, DenyCode::Unknown);
    assert_eq!(HelloErrorCode::from(newer), HelloErrorCode::AuthFailed);
}

#[test]
fn refusals_map_to_hello_errors() {
    let cases = [
        ("too_many_sessions", HelloErrorCode::TooManySessions),
        ("conflict", HelloErrorCode::TooManySessions),
        ("rate_limited", HelloErrorCode::RateLimited),
        ("revoked", HelloErrorCode::Revoked),
        ("expired", HelloErrorCode::Expired),
        ("not_found", HelloErrorCode::AuthFailed),
        ("unauthenticated", HelloErrorCode::AuthFailed),
        ("something_new", HelloErrorCode::AuthFailed),
    ];
    for (name, hello) in cases {
        let refusal: Refusal = serde_json::from_value(
            json!({"type": "urn:httvps:problem:x", "code": name, "detail": "d", "status": 409}),
        )
        .unwrap();
        assert_eq!(refusal.code.hello_error_code(), hello, "{name}");
        if refusal.code != RefusalCode::Unknown {
            assert_eq!(refusal.code.as_str(), name);
        }
    }
    let bare: Refusal = serde_json::from_value(json!({})).unwrap();
    assert_eq!(bare.code, RefusalCode::Unknown);
}

#[test]
fn assign() {
    round_trip(
        AssignNodeRequest {
            device_id: id(DEVICE),
            session_id: Some(id(SESSION)),
            region: None,
            exclude: vec![id(NODE)],
        },
        json!({"device_id": DEVICE, "session_id": SESSION, "region": null, "exclude": [NODE]}),
    );
    let node = AssignedNode {
        id: id(NODE),
        name: "n1".into(),
        host: "10.0.0.1".into(),
        port: 8388,
        cipher: "chacha20-ietf-poly1305".into(),
        secret: "s3cret".into(),
        region: Some("eu-west".into()),
    };
    assert!(
        !format!("{node:?}").contains("s3cret"),
        "the secret does not print"
    );
    round_trip(
        AssignNodeResponse { node },
        json!({"node": {"id": NODE, "name": "n1", "host": "10.0.0.1", "port": 8388,
            "cipher": "chacha20-ietf-poly1305", "secret": "s3cret", "region": "eu-west"}}),
    );
}

#[test]
fn pool() {
    round_trip(
        PoolSnapshot {
            nodes: vec![PoolNode {
                node: AssignedNode {
                    id: id(NODE),
                    name: "n1".into(),
                    host: "node.example".into(),
                    port: 8388,
                    cipher: "aes-256-gcm".into(),
                    secret: "s".into(),
                    region: None,
                },
                groups: vec![],
                weight: 100,
                capacity: 1000,
                load: 3,
                health: NodeHealth::Healthy,
            }],
        },
        json!({"nodes": [{"id": NODE, "name": "n1", "host": "node.example", "port": 8388,
            "cipher": "aes-256-gcm", "secret": "s", "region": null, "groups": [],
            "weight": 100, "capacity": 1000, "load": 3, "health": "healthy"}]}),
    );
}

#[test]
fn sessions() {
    round_trip(
        StartSessionRequest {
            session_id: id(SESSION),
            device_id: id(DEVICE),
            node_id: None,
            client_region: Some("eu".into()),
        },
        json!({"session_id": SESSION, "device_id": DEVICE, "node_id": null, "client_region": "eu"}),
    );
    round_trip(
        HeartbeatResponse {
            session_id: id(SESSION),
            node_id: Some(id(NODE)),
            end: true,
            end_reason: Some(EndReason::Killed),
            expires_at: Some(None),
        },
        json!({"session_id": SESSION, "node_id": NODE, "end": true, "end_reason": "killed", "expires_at": null}),
    );
    round_trip(
        HeartbeatResponse {
            session_id: id(SESSION),
            node_id: None,
            end: false,
            end_reason: None,
            expires_at: Some(Some(1_700_000_000_000)),
        },
        json!({"session_id": SESSION, "node_id": null, "end": false, "end_reason": null, "expires_at": 1700000000000i64}),
    );
    // An older control plane says nothing of the access end; that differs from `null`.
    let older: HeartbeatResponse = serde_json::from_value(
        json!({"session_id": SESSION, "node_id": null, "end": true, "end_reason": null}),
    )
    .unwrap();
    assert_eq!(older.expires_at, None);
    assert_eq!(
        older.end_now(),
        Some(EndReason::Killed),
        "an end without a reason is a kill"
    );
    round_trip(
        EndSessionRequest {
            reason: EndReason::ClientClosed,
        },
        json!({"reason": "client_closed"}),
    );
    let newer: EndSessionRequest =
        serde_json::from_value(json!({"reason": "connection_lost"})).unwrap();
    assert_eq!(newer.reason.as_str(), "connection_lost");
    assert!(serde_json::from_value::<EndSessionRequest>(json!({"reason": ""})).is_err());
    round_trip(
        GatewayHeartbeat {
            version: Some("0.1.0".into()),
        },
        json!({"version": "0.1.0"}),
    );
    assert!(GatewayHeartbeat {
        version: Some("v".repeat(65))
    }
    .check()
    .is_err());
}

#[test]
fn usage() {
    let record = UsageRecord {
        session_id: None,
        device_id: id(DEVICE),
        node_id: Some(id(NODE)),
        bytes_up: 1000,
        bytes_down: 2000,
        at: 1_700_000_000_000,
    };
    let report = UsageReport {
        report_id: "gw-1".into(),
        records: vec![record.clone()],
    };
    assert_eq!(report.check(), Ok(()));
    round_trip(
        report,
        json!({"report_id": "gw-1", "records": [{"session_id": null, "device_id": DEVICE,
            "node_id": NODE, "bytes_up": 1000, "bytes_down": 2000, "at": 1700000000000i64}]}),
    );
    round_trip(
        UsageReportResponse {
            accepted: true,
            duplicate: false,
        },
        json!({"accepted": true, "duplicate": false}),
    );
    // Negative byte counts are not a u64: refused when decoding.
    assert!(serde_json::from_value::<UsageRecord>(
        json!({"device_id": DEVICE, "bytes_up": -1, "bytes_down": 0, "at": 1})
    )
    .is_err());
    let bad = |f: &dyn Fn(&mut UsageReport)| {
        let mut r = UsageReport {
            report_id: "r".into(),
            records: vec![record.clone()],
        };
        f(&mut r);
        r.check().is_err()
    };
    assert!(bad(&|r| r.report_id.clear()));
    assert!(bad(&|r| r.report_id = "x".repeat(MAX_REPORT_ID_LEN + 1)));
    assert!(bad(
        &|r| r.records = vec![record.clone(); MAX_USAGE_RECORDS + 1]
    ));
    assert!(bad(&|r| r.records[0].bytes_up = MAX_USAGE_BYTES + 1));
    assert!(bad(&|r| r.records[0].at = 0));
    assert!(!bad(
        &|r| r.records = vec![record.clone(); MAX_USAGE_RECORDS]
    ));
}

#[test]
fn routes_are_relative_below_the_base() {
    assert_eq!(routes::relative(routes::POOL), "v1/gateway/pool");
    assert_eq!(
        routes::end_session_path(id(SESSION)),
        format!("v1/gateway/sessions/{SESSION}/end")
    );
    assert_eq!(
        routes::session_heartbeat_path(id(SESSION)),
        format!("v1/gateway/sessions/{SESSION}/heartbeat")
    );
}
