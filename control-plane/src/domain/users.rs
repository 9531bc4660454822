//! Users (customers): creating, renaming, disabling (which ends their sessions on every
//! gateway), deleting.

use uuid::Uuid;

use super::error::named;
use super::validate::{email, text, MAX_NAME};
use super::{DomainError, DomainResult};
use crate::app::AppState;
use crate::model::{User, UserStatus};
use crate::shared::{self, RevocationReason};
use crate::store::{StoreError, UserUpdate};

fn taken(name: &str) -> impl FnOnce(StoreError) -> DomainError + '_ {
    named(move || format!("a user named {name:?} exists already"))
}

/// Creates a user with a unique name and an optional e-mail address.
pub async fn create(
    state: &AppState,
    actor: &str,
    name: &str,
    mail: Option<&str>,
) -> DomainResult<User> {
    let name = text("name", name, MAX_NAME)?;
    let mail = mail.map(email).transpose()?;
    state
        .store
        .create_user(actor, &name, mail.as_deref())
        .await
        .map_err(taken(&name))
}

/// A user by id or, when the text is no id, by name.
pub async fn find(state: &AppState, name_or_id: &str) -> DomainResult<User> {
    if let Ok(id) = Uuid::parse_str(name_or_id) {
        return Ok(state.store.get_user(id).await?);
    }
    state
        .store
        .user_by_name(name_or_id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => DomainError::NotFound(format!("user {name_or_id:?}")),
            other => other.into(),
        })
}

/// Renames, re-addresses, disables or enables a user (at least one change); disabling ends the
/// user's sessions on every gateway.
pub async fn update(
    state: &AppState,
    actor: &str,
    id: Uuid,
    update: &UserUpdate,
) -> DomainResult<User> {
    if update.name.is_none() && update.email.is_none() && update.status.is_none() {
        return Err(DomainError::Invalid(
            "nothing to change: give name, email or status".into(),
        ));
    }
    let checked = UserUpdate {
        name: update
            .name
            .as_deref()
            .map(|n| text("name", n, MAX_NAME))
            .transpose()?,
        email: match &update.email {
            Some(Some(e)) => Some(Some(email(e)?)),
            Some(None) => Some(None),
            None => None,
        },
        status: update.status,
    };
    let shown = checked.name.clone().unwrap_or_default();
    let user = state
        .store
        .update_user(actor, id, &checked)
        .await
        .map_err(taken(&shown))?;
    if checked.status == Some(UserStatus::Disabled) {
        shared::revoke_user(state, id, RevocationReason::Disabled).await;
    }
    Ok(user)
}

/// Deletes a user with their devices, subscriptions and sessions, and ends those sessions on
/// every gateway.
pub async fn delete(state: &AppState, actor: &str, id: Uuid) -> DomainResult<()> {
    state.store.delete_user(actor, id).await?;
    shared::revoke_user(state, id, RevocationReason::Deleted).await;
    Ok(())
}
