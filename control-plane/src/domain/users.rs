//! User changes that end sessions (disable, delete), announced after they commit.

use uuid::Uuid;

use crate::app::AppState;
use crate::model::{User, UserStatus};
use crate::shared::{self, RevocationReason};
use crate::store::{Result, UserUpdate};

/// Renames, re-addresses, disables or enables a user; disabling ends the user's sessions on
/// every gateway.
pub async fn update(state: &AppState, actor: &str, id: Uuid, update: &UserUpdate) -> Result<User> {
    let user = state.store.update_user(actor, id, update).await?;
    if update.status == Some(UserStatus::Disabled) {
        shared::revoke_user(state, id, RevocationReason::Disabled).await;
    }
    Ok(user)
}

/// Deletes a user with their devices, subscriptions and sessions, and ends those sessions on
/// every gateway.
pub async fn delete(state: &AppState, actor: &str, id: Uuid) -> Result<()> {
    state.store.delete_user(actor, id).await?;
    shared::revoke_user(state, id, RevocationReason::Deleted).await;
    Ok(())
}
