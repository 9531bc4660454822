//! Device status changes and deletion, announced after they commit.

use uuid::Uuid;

use crate::app::AppState;
use crate::model::{Device, DeviceStatus};
use crate::shared::{self, RevocationReason};
use crate::store::Result;

/// Revokes (for good), disables or enables a device. Revoking and disabling end its sessions on
/// every gateway.
pub async fn set_status(
    state: &AppState,
    actor: &str,
    id: Uuid,
    status: DeviceStatus,
) -> Result<Device> {
    let device = state
        .store
        .update_device(actor, id, Some(status), None)
        .await?;
    let reason = match status {
        DeviceStatus::Revoked => Some(RevocationReason::Revoked),
        DeviceStatus::Disabled => Some(RevocationReason::Disabled),
        DeviceStatus::Active => None,
    };
    if let Some(reason) = reason {
        shared::revoke_device(state, id, reason).await;
    }
    Ok(device)
}

/// Deletes a device and ends its sessions on every gateway.
pub async fn delete(state: &AppState, actor: &str, id: Uuid) -> Result<()> {
    state.store.delete_device(actor, id).await?;
    shared::revoke_device(state, id, RevocationReason::Deleted).await;
    Ok(())
}
