//! Gateways and their service tokens: registering one, rotating and revoking its tokens. The
//! tokens exist only in what these functions return; the store keeps their hashes.

use ipnet::IpNet;
use uuid::Uuid;

use super::error::named;
use super::validate::{text, MAX_NAME};
use super::{DomainError, DomainResult};
use crate::app::AppState;
use crate::auth::token;
use crate::model::{Gateway, GatewayToken};
use crate::store::StoreError;

/// How long old tokens keep working after a rotation, by default.
pub const DEFAULT_OVERLAP_SECS: i64 = 3600;
/// Longest overlap (a week).
pub const MAX_OVERLAP_SECS: i64 = 604_800;
/// Most address blocks a token may be limited to.
pub const MAX_ALLOWED_BLOCKS: usize = 64;

fn gateway_name(value: &str) -> DomainResult<String> {
    let name = text("name", value, MAX_NAME)?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        return Err(DomainError::Invalid(
            "name may only contain letters, digits, '.', '_' and '-'".into(),
        ));
    }
    Ok(name)
}

fn allow_list(allowed: &[IpNet]) -> DomainResult<()> {
    if allowed.len() > MAX_ALLOWED_BLOCKS {
        return Err(DomainError::Invalid(format!(
            "allowed_from may hold at most {MAX_ALLOWED_BLOCKS} blocks"
        )));
    }
    Ok(())
}

/// Registers a gateway and issues its first service token (usable from `allowed`, or from
/// anywhere when empty). Returns the gateway, the token's metadata and the token.
pub async fn create(
    state: &AppState,
    actor: &str,
    name: &str,
    allowed: &[IpNet],
) -> DomainResult<(Gateway, GatewayToken, String)> {
    let name = gateway_name(name)?;
    allow_list(allowed)?;
    let secret = token::generate();
    let (gateway, meta) = state
        .store
        .create_gateway_allowing(actor, &name, &token::hash(&secret), allowed)
        .await
        .map_err(named(|| format!("a gateway named {name:?} exists already")))?;
    Ok((gateway, meta, secret))
}

/// A gateway by name.
pub async fn by_name(state: &AppState, name: &str) -> DomainResult<Gateway> {
    state
        .store
        .gateway_by_name(name)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => DomainError::NotFound(format!("gateway {name:?}")),
            other => other.into(),
        })
}

/// Issues a new service token; the gateway's current tokens expire after `overlap_secs`.
pub async fn rotate(
    state: &AppState,
    actor: &str,
    id: Uuid,
    overlap_secs: i64,
    allowed: &[IpNet],
) -> DomainResult<(GatewayToken, String)> {
    if !(0..=MAX_OVERLAP_SECS).contains(&overlap_secs) {
        return Err(DomainError::Invalid(format!(
            "overlap_secs must be between 0 and {MAX_OVERLAP_SECS}"
        )));
    }
    allow_list(allowed)?;
    let secret = token::generate();
    let meta = state
        .store
        .rotate_gateway_token_allowing(
            actor,
            id,
            &token::hash(&secret),
            overlap_secs * 1000,
            allowed,
        )
        .await?;
    Ok((meta, secret))
}

/// Revokes one of a gateway's tokens at once (a conflict when it is revoked already).
pub async fn revoke_token(
    state: &AppState,
    actor: &str,
    id: Uuid,
    token_id: Uuid,
) -> DomainResult<GatewayToken> {
    let tok = state.store.get_gateway_token(token_id).await?;
    if tok.gateway_id != id {
        return Err(DomainError::NotFound("gateway token".into()));
    }
    if tok.revoked_at.is_some() {
        return Err(DomainError::state("the token is already revoked"));
    }
    state
        .store
        .revoke_gateway_token(actor, id, token_id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => DomainError::state("the token is already revoked"),
            other => other.into(),
        })
}
