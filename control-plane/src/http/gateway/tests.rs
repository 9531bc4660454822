use httvps_contract::routes;

/// The OpenAPI document names every route of the contract, with its schemas.
#[test]
fn the_document_describes_the_contract() {
    let doc = crate::http::openapi::document();
    for route in [
        routes::VALIDATE_DEVICE,
        routes::ASSIGN_NODE,
        routes::START_SESSION,
        routes::SESSION_HEARTBEAT,
        routes::END_SESSION,
        routes::REPORT_USAGE,
        routes::POOL,
        routes::GATEWAY_HEARTBEAT,
    ] {
        assert!(doc["paths"][route].is_object(), "{route} is documented");
    }
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "ValidateResponse",
        "DenyCode",
        "EndReason",
        "HeartbeatResponse",
        "UsageReport",
        "PoolSnapshot",
    ] {
        assert!(schemas[schema].is_object(), "{schema} is in the document");
    }
    assert_eq!(schemas["EndReason"]["maxLength"], 64);
}
