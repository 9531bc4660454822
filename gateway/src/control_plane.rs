//! Client of the control plane's gateway API (`/v1/gateway/...`, see docs): device validation
//! and node assignment. One `reqwest` client, authenticated with this gateway's service token.
//!
//! Not yet here (the lead wires them with the real control plane): the entitlement cache and
//! single-flight of concurrent validations, session start/heartbeat/end, usage reports.

use std::time::Duration;

use httvps_proto::HelloErrorCode;
use serde::Deserialize;
use serde_json::json;
use shadowsocks::config::{Mode, ServerConfig};
use url::Url;

use crate::authority::{
    AuthorityUnavailable, BoxFuture, DeviceAuthority, DeviceCheck, Entitlement, Verdict,
};
use crate::upstream::{AssignRequest, NoNode, Node, NodeSource};
use crate::GatewayError;

/// The gateway's client of the control plane.
#[derive(Clone)]
pub struct ControlPlaneClient {
    http: reqwest::Client,
    base: Url,
    token: String,
}

impl std::fmt::Debug for ControlPlaneClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlPlaneClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
enum ValidateResponse {
    Allow {
        entitlement: EntitlementJson,
    },
    Deny {
        code: String,
        message: Option<String>,
    },
}

#[derive(Deserialize)]
struct EntitlementJson {
    device_id: String,
    user_id: Option<String>,
    remaining_bytes: Option<u64>,
    session_limit: Option<u32>,
}

#[derive(Deserialize)]
struct AssignResponse {
    node: NodeJson,
}

#[derive(Deserialize)]
struct NodeJson {
    id: String,
    name: String,
    host: String,
    port: u16,
    cipher: String,
    secret: String,
}

impl ControlPlaneClient {
    /// A client for the control plane at `base` with this gateway's service `token`.
    pub fn new(base: Url, token: String, timeout: Duration) -> Result<Self, GatewayError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("httvps-gateway/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| GatewayError::Config(format!("control-plane client: {e}")))?;
        Ok(ControlPlaneClient { http, base, token })
    }

    fn url(&self, path: &str) -> Result<Url, String> {
        self.base.join(path).map_err(|e| e.to_string())
    }

    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<(reqwest::StatusCode, Option<T>), String> {
        let response = self
            .http
            .post(self.url(path)?)
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .map_err(|e| e.without_url().to_string())?;
        let status = response.status();
        if status.is_success() {
            let body = response.json::<T>().await.map_err(|e| e.to_string())?;
            Ok((status, Some(body)))
        } else {
            Ok((status, None))
        }
    }
}

impl DeviceAuthority for ControlPlaneClient {
    fn validate<'a>(
        &'a self,
        check: DeviceCheck<'a>,
    ) -> BoxFuture<'a, Result<Verdict, AuthorityUnavailable>> {
        Box::pin(async move {
            // Tokens are printable (base64url) by contract; anything else cannot match.
            let Ok(token) = std::str::from_utf8(check.device_token) else {
                return Ok(Verdict::Deny {
                    code: HelloErrorCode::AuthFailed,
                    message: "authentication failed".into(),
                    retry_after: None,
                });
            };
            let body = json!({
                "device_id": check.device_id,
                "device_token": token,
                "region": check.region,
            });
            let (status, answer) = self
                .post::<ValidateResponse>("v1/gateway/devices/validate", body)
                .await
                .map_err(AuthorityUnavailable)?;
            match answer {
                Some(ValidateResponse::Allow { entitlement }) => Ok(Verdict::Allow(Entitlement {
                    device_id: entitlement.device_id,
                    user_id: entitlement.user_id,
                    remaining_bytes: entitlement.remaining_bytes,
                    session_limit: entitlement.session_limit,
                })),
                Some(ValidateResponse::Deny { code, message }) => Ok(Verdict::Deny {
                    code: HelloErrorCode::from_name(&code).unwrap_or(HelloErrorCode::AuthFailed),
                    message: message.unwrap_or_else(|| code.clone()),
                    retry_after: None,
                }),
                None => Err(AuthorityUnavailable(format!("validate answered {status}"))),
            }
        })
    }
}

impl NodeSource for ControlPlaneClient {
    fn assign<'a>(&'a self, request: AssignRequest<'a>) -> BoxFuture<'a, Result<Node, NoNode>> {
        Box::pin(async move {
            let body = json!({
                "device_id": request.device_id,
                "session_id": null,
                "region": request.region,
                "exclude": request.exclude,
            });
            let (status, answer) = self
                .post::<AssignResponse>("v1/gateway/nodes/assign", body)
                .await
                .map_err(NoNode)?;
            let node = answer
                .ok_or_else(|| NoNode(format!("assign answered {status}")))?
                .node;
            let method = node
                .cipher
                .parse()
                .map_err(|_| NoNode(format!("node {} has unsupported cipher", node.id)))?;
            let mut config = ServerConfig::new((node.host.clone(), node.port), node.secret, method)
                .map_err(|e| NoNode(format!("node {}: {e}", node.id)))?;
            config.set_mode(Mode::TcpAndUdp);
            Ok(Node {
                id: node.id,
                name: node.name,
                config: std::sync::Arc::new(config),
            })
        })
    }

    fn report_failure<'a>(&'a self, node_id: &'a str) -> BoxFuture<'a, ()> {
        // The control plane learns of failures through `exclude` on the retry's assignment and
        // through its own health checks; there is no separate report endpoint in the contract.
        Box::pin(async move {
            tracing::debug!(node = node_id, "node failure noted");
        })
    }
}
