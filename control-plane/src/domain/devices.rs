//! Devices: creating one (its token, connection links and subscription URL), showing its links
//! again, rotating its token and its subscription URL, renaming, status changes and deletion;
//! revoking, disabling, deleting and rotating the token end its sessions on every gateway.
//! Every change that can alter a validation answer drops the cached answers
//! ([`validation_cache::forget_device`]; the store's change count does too, this says it here).

use uuid::Uuid;

use super::validate::{text, MAX_NAME};
use super::{DomainError, DomainResult};
use crate::app::AppState;
use crate::auth::seal::Purpose;
use crate::auth::token;
use crate::config::ServeConfig;
use crate::link::{self, DeviceLink};
use crate::model::{now_ms, Device, DeviceStatus, UserStatus};
use crate::shared::{self, RevocationReason};
use crate::store::{DeviceSecrets, NewDevice};
use crate::validation_cache;

/// A new device with its credentials: the token exists only here (and sealed in the store,
/// when a secret key is configured), the store validates against its hash.
#[derive(Debug)]
pub struct NewCredentials {
    pub device: Device,
    pub token: String,
    /// The connection link to the first public gateway endpoint
    /// (`httvps://DEVICE_ID:TOKEN@host:port/path?...`).
    pub link: String,
    /// One link per public gateway endpoint the device may use.
    pub links: Vec<DeviceLink>,
    /// The device's subscription URL (on creation; `None` after a token rotation).
    pub subscription_url: Option<String>,
}

/// A device's current links, shown again.
#[derive(Debug)]
pub struct ShownLinks {
    pub device: Device,
    pub links: Vec<DeviceLink>,
}

fn link_error(e: link::LinkError) -> DomainError {
    DomainError::Internal(format!("connection link settings: {e}"))
}

/// Registers a device for a user within the plan's device limit and makes its connection links
/// and subscription URL.
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
    // A subscription URL serves links made from the sealed token: without a key there is none.
    let sub_token = state.seal.as_ref().map(|_| token::generate());
    let secrets = DeviceSecrets {
        token_sealed: sealed(state, Purpose::DeviceToken, device.id, &secret),
        sub_token_hash: sub_token.as_deref().map(token::hash),
        sub_token_sealed: sub_token
            .as_deref()
            .and_then(|t| sealed(state, Purpose::SubscriptionToken, device.id, t)),
    };
    state.store.keep_device_secrets(device.id, &secrets).await?;
    let subscription_url = sub_token.map(|t| subscription_url(&state.config, &t));
    credentials(state, device, secret, subscription_url).await
}

/// The device's credentials as shown once: its token, its links and its subscription URL.
async fn credentials(
    state: &AppState,
    device: Device,
    token: String,
    subscription_url: Option<String>,
) -> DomainResult<NewCredentials> {
    let links = links_of(state, &device, &token).await?;
    Ok(NewCredentials {
        link: first_link(&links)?,
        device,
        token,
        links,
        subscription_url,
    })
}

fn sealed(state: &AppState, purpose: Purpose, device: Uuid, secret: &str) -> Option<String> {
    state.seal.as_ref().map(|k| k.seal(purpose, device, secret))
}

fn first_link(links: &[DeviceLink]) -> DomainResult<String> {
    links
        .first()
        .map(|l| l.link.to_string())
        .ok_or_else(|| DomainError::Internal("no public gateway configured".into()))
}

/// The regions the device's plan allows (empty: all, or no plan in force).
async fn allowed_regions(state: &AppState, user: Uuid) -> Vec<String> {
    match state
        .store
        .resolve_subscription(user, now_ms(), false)
        .await
    {
        Ok(Some((_, plan))) => plan.allowed_regions,
        Ok(None) => Vec::new(),
        Err(e) => {
            tracing::warn!(%user, error = %e, "cannot read the plan's regions; listing every gateway");
            Vec::new()
        }
    }
}

/// The device's links with `token`, one per public gateway endpoint its plan allows.
async fn links_of(state: &AppState, device: &Device, token: &str) -> DomainResult<Vec<DeviceLink>> {
    let regions = allowed_regions(state, device.user_id).await;
    link::device_links(&state.config, device.id, token, &device.name, &regions).map_err(link_error)
}

/// Opens a sealed secret, or says why the operator must rotate instead.
fn open(
    state: &AppState,
    purpose: Purpose,
    device: Uuid,
    sealed: Option<&str>,
) -> DomainResult<String> {
    let (what, rotate) = match purpose {
        Purpose::DeviceToken => ("token", "rotate the device token"),
        Purpose::SubscriptionToken => ("subscription URL", "rotate the subscription URL"),
    };
    let key = state.seal.as_ref().ok_or_else(|| {
        DomainError::state(format!(
            "the {what} of device {device} is not kept: no secret key is configured \
             (HTTVPS_CP_SECRET_KEY); {rotate} to get a new one"
        ))
    })?;
    let sealed = sealed.ok_or_else(|| {
        DomainError::state(format!(
            "the {what} of device {device} was not kept (the device predates it); {rotate} to get a new one"
        ))
    })?;
    key.open(purpose, device, sealed).map_err(|_| {
        DomainError::state(format!(
            "the {what} of device {device} does not open with the current secret key; {rotate} to get a new one"
        ))
    })
}

/// The device's current links again, from its sealed token.
pub async fn show_links(state: &AppState, id: Uuid) -> DomainResult<ShownLinks> {
    let (device, secrets) = state.store.device_secrets(id).await?;
    if device.status == DeviceStatus::Revoked {
        return Err(DomainError::state(format!(
            "device {id} is revoked: its links no longer connect"
        )));
    }
    let token = open(
        state,
        Purpose::DeviceToken,
        id,
        secrets.token_sealed.as_deref(),
    )?;
    let links = links_of(state, &device, &token).await?;
    Ok(ShownLinks { device, links })
}

/// Gives the device a new token: the old one stops validating at once, and its sessions end on
/// every gateway (announced like a revocation; the device stays active).
pub async fn rotate_token(state: &AppState, actor: &str, id: Uuid) -> DomainResult<NewCredentials> {
    link::check_config(&state.config).map_err(link_error)?;
    let secret = token::generate();
    let device = state
        .store
        .rotate_device_token(
            actor,
            id,
            &token::hash(&secret),
            sealed(state, Purpose::DeviceToken, id, &secret).as_deref(),
        )
        .await?;
    validation_cache::forget_device(state, id);
    shared::revoke_device(state, id, RevocationReason::TokenRotated).await;
    credentials(state, device, secret, None).await
}

/// The subscription URL of a token: `HTTVPS_CP_PUBLIC_URL` (else `http://` and the listen
/// address) and `/sub/TOKEN`.
pub fn subscription_url(config: &ServeConfig, token: &str) -> String {
    let base = config
        .public_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .map_or_else(
            || format!("http://{}", config.listen),
            |u| u.trim_end_matches('/').to_owned(),
        );
    format!("{base}/sub/{token}")
}

/// The device's subscription URL again, from its sealed token.
pub async fn show_subscription_url(state: &AppState, id: Uuid) -> DomainResult<String> {
    let (_, secrets) = state.store.device_secrets(id).await?;
    if secrets.sub_token_hash.is_none() {
        return Err(DomainError::NotFound(format!(
            "subscription URL of device {id} (revoked or never made; rotate it to make one)"
        )));
    }
    let sealed = secrets.sub_token_sealed.as_deref();
    let token = open(state, Purpose::SubscriptionToken, id, sealed)?;
    Ok(subscription_url(&state.config, &token))
}

/// Gives the device a new subscription URL; the old one answers 404 from now on.
pub async fn rotate_subscription_url(
    state: &AppState,
    actor: &str,
    id: Uuid,
) -> DomainResult<String> {
    if state.seal.is_none() {
        return Err(DomainError::state(
            "a subscription URL serves links made from the kept device token: configure a \
             secret key (HTTVPS_CP_SECRET_KEY) first",
        ));
    }
    let token = token::generate();
    let sealed = sealed(state, Purpose::SubscriptionToken, id, &token);
    state
        .store
        .set_sub_token(actor, id, Some((&token::hash(&token), sealed.as_deref())))
        .await?;
    Ok(subscription_url(&state.config, &token))
}

/// Removes the device's subscription URL; it answers 404 from now on.
pub async fn revoke_subscription_url(state: &AppState, actor: &str, id: Uuid) -> DomainResult<()> {
    state.store.set_sub_token(actor, id, None).await?;
    Ok(())
}

/// What a subscription URL serves: the device and its current links. `None` for a token no
/// active device has, or whose device token cannot be opened (told apart only in the log).
pub async fn subscription_feed(
    state: &AppState,
    sub_token: &str,
) -> DomainResult<Option<ShownLinks>> {
    let Some((device, secrets)) = state
        .store
        .device_by_sub_token(&token::hash(sub_token))
        .await?
    else {
        return Ok(None);
    };
    // Links that cannot connect are not served: the device and its user must be active.
    if device.status != DeviceStatus::Active
        || state.store.get_user(device.user_id).await?.status != UserStatus::Active
    {
        return Ok(None);
    }
    let key = state.seal.as_ref();
    let token = match (key, secrets.token_sealed.as_deref()) {
        (Some(key), Some(sealed)) => key.open(Purpose::DeviceToken, device.id, sealed).ok(),
        _ => None,
    };
    let Some(token) = token else {
        tracing::warn!(device = %device.id, "a subscription URL was fetched but the device token is not kept; rotate the device token");
        return Ok(None);
    };
    let links = links_of(state, &device, &token).await?;
    Ok(Some(ShownLinks { device, links }))
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
