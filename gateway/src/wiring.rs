//! The production wiring of a gateway's backends, shared by `main` and embedders (the one-machine
//! stack): the control-plane client behind the entitlement cache for devices, and the control
//! plane for nodes.

use std::sync::Arc;

use crate::config::GatewayConfig;
use crate::control_plane::ControlPlaneClient;
use crate::entitlements::EntitlementCache;
use crate::gateway::Backends;

/// Backends that ask the control plane, through the entitlement cache.
pub fn control_plane_backends(client: Arc<ControlPlaneClient>, config: &GatewayConfig) -> Backends {
    Backends {
        authority: Arc::new(EntitlementCache::new(client.clone(), config.cache_limits())),
        nodes: client.clone(),
        control_plane: Some(client),
    }
}
