//! Admin accounts: creating one and changing its role, disabled flag or password. An admin
//! cannot disable or demote themself, so there is always someone left to undo a mistake.

use uuid::Uuid;

use super::error::named;
use super::validate::MAX_NAME;
use super::{blocking, DomainError, DomainResult};
use crate::app::AppState;
use crate::auth::password;
use crate::model::{Admin, Role};

/// Changes to an admin account; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct AdminChanges {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// A new password: every token issued to the admin before stops working.
    pub password: Option<String>,
    /// The caller's current password: required to change their own.
    pub current_password: Option<String>,
}

fn username(value: &str) -> DomainResult<String> {
    if value.is_empty() || value.chars().count() > MAX_NAME {
        return Err(DomainError::Invalid(format!(
            "username must have 1 to {MAX_NAME} characters"
        )));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
    {
        return Err(DomainError::Invalid(
            "username may only contain letters, digits, '.', '_', '-' and '@'".into(),
        ));
    }
    Ok(value.to_owned())
}

/// Hashes a password (argon2, off the async workers) after checking its strength.
async fn hash_password(password: String) -> DomainResult<String> {
    blocking(move || password::hash(&password))
        .await?
        .map_err(|e| match e {
            password::PasswordError::Hash(msg) => DomainError::Internal(msg),
            other => DomainError::Invalid(other.to_string()),
        })
}

/// Creates an admin account.
pub async fn create(
    state: &AppState,
    actor: &str,
    name: &str,
    password: String,
    role: Role,
) -> DomainResult<Admin> {
    let name = username(name)?;
    let hash = hash_password(password).await?;
    state
        .store
        .create_admin(actor, &name, &hash, role)
        .await
        .map_err(named(|| format!("an admin named {name:?} exists already")))
}

/// Changes an admin's role, disabled flag or password, as the admin `caller` (who may not
/// disable or demote themself, and must give their current password to change it).
pub async fn update(
    state: &AppState,
    caller: Uuid,
    actor: &str,
    id: Uuid,
    changes: AdminChanges,
) -> DomainResult<Admin> {
    if changes.role.is_none() && changes.disabled.is_none() && changes.password.is_none() {
        return Err(DomainError::Invalid(
            "nothing to change: give role, disabled or password".into(),
        ));
    }
    state.store.get_admin(id).await?;
    if id == caller {
        if changes.disabled == Some(true) {
            return Err(DomainError::state("you cannot disable yourself"));
        }
        if changes.role.is_some_and(|r| r != Role::Admin) {
            return Err(DomainError::state("you cannot demote yourself"));
        }
        if changes.password.is_some() {
            // A stolen token alone must not be enough to take the account over.
            let Some(current) = changes.current_password.clone() else {
                return Err(DomainError::Invalid(
                    "give current_password to change your own password".into(),
                ));
            };
            let hash = state.store.admin_password_hash(id).await?;
            if !blocking(move || password::verify(&current, &hash)).await? {
                return Err(DomainError::Forbidden("current_password is wrong".into()));
            }
        }
    }
    let hash = match changes.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    Ok(state
        .store
        .update_admin(actor, id, changes.role, changes.disabled, hash.as_deref())
        .await?)
}
