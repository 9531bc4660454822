//! Devices: creating one (its token shown once, with its connection link), renaming, status
//! changes and deletion; revoking, disabling and deleting end its sessions on every gateway.
//! Every change that can alter a validation answer drops the cached answers
//! ([`validation_cache::forget_device`]; the store's change count does too, this says it here).

use uuid::Uuid;

use super::validate::{text, MAX_NAME};
use super::{DomainError, DomainResult};
use crate::app::AppState;
use crate::auth::token;
use crate::link;
use crate::model::{Device, DeviceStatus};
use crate::shared::{self, RevocationReason};
use crate::store::NewDevice;
use crate::validation_cache;

/// A new device with its credentials: the token exists only here, the store keeps its hash.
#[derive(Debug)]
pub struct NewCredentials {
    pub device: Device,
    pub token: String,
    /// The connection link (`httvps://DEVICE_ID:TOKEN@host:port/path?...`).
    pub link: String,
}

fn link_error(e: link::LinkError) -> DomainError {
    DomainError::Internal(format!("connection link settings: {e}"))
}

/// Registers a device for a user within the plan's device limit and makes its connection link.
pub async fn create(
    state: &AppState,
    actor: &str,
    user_id: Uuid,
    name: &str,
) -> DomainResult<NewCredentials> {
    let name = text("name", name, MAX_NAME)?;
    // A device whose link cannot be made is useless: check before writing anything.
    link::check_config(&state.config).map_err(link_error)?;
    let secret = token::generate();
    let device = state
        .store
        .create_device(
            actor,
            &NewDevice {
                user_id,
                name: name.clone(),
                token_hash: token::hash(&secret),
            },
        )
        .await?;
    let link = link::device_link(&state.config, device.id, &secret, &name)
        .map_err(link_error)?
        .to_string();
    Ok(NewCredentials {
        device,
        token: secret,
        link,
    })
}

/// The link as a QR code (SVG document).
pub fn qr_svg(link: &str) -> DomainResult<String> {
    link::qr_svg(link).map_err(link_error)
}

/// Renames a device.
pub async fn rename(state: &AppState, actor: &str, id: Uuid, name: &str) -> DomainResult<Device> {
    let name = text("name", name, MAX_NAME)?;
    Ok(state
        .store
        .update_device(actor, id, None, Some(&name))
        .await?)
}

/// Revokes (for good), disables or enables a device. Revoking and disabling end its sessions on
/// every gateway.
pub async fn set_status(
    state: &AppState,
    actor: &str,
    id: Uuid,
    status: DeviceStatus,
) -> DomainResult<Device> {
    let device = state
        .store
        .update_device(actor, id, Some(status), None)
        .await?;
    validation_cache::forget_device(state, id);
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
pub async fn delete(state: &AppState, actor: &str, id: Uuid) -> DomainResult<()> {
    state.store.delete_device(actor, id).await?;
    validation_cache::forget_device(state, id);
    shared::revoke_device(state, id, RevocationReason::Deleted).await;
    Ok(())
}
