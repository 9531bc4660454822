//! The OpenAPI document, generated from the handlers' annotations.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{admin, gateway, public, subscription};

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "httvps control plane", description = "Users, devices, plans, the node pool, sessions, usage and audit. Errors are RFC 7807 problem documents with a stable `code`."),
    paths(
        public::healthz, public::readyz, public::metrics, subscription::subscription,
        gateway::validate_device, gateway::assign_node, gateway::start_session, gateway::session_heartbeat,
        gateway::end_session, gateway::session_batch, gateway::report_usage, gateway::pool_snapshot, gateway::gateway_heartbeat,
    ),
    components(schemas(crate::error::Problem, subscription::Feed, subscription::FeedLink, subscription::FeedDevice, subscription::FeedFormat)),
    modifiers(&SecuritySchemes),
    tags((name = "public"), (name = "gateway", description = "For gateways, with their service token"), (name = "admin", description = "For operators, with a JWT from /v1/admin/login"))
)]
pub struct ApiDoc;

/// The whole document: the public and gateway routes plus the admin API.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(admin::AdminApi::openapi());
    doc
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
