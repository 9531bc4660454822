//! Ending a live session by an operator, announced after it commits.

use uuid::Uuid;

use crate::app::AppState;
use crate::model::Session;
use crate::shared;
use crate::store::{Result, StoreError};

/// Ends a live session (409 when it has ended already); its gateway closes it at once.
pub async fn kill(state: &AppState, actor: &str, id: Uuid) -> Result<Session> {
    let session = state.store.get_session(id).await?;
    if session.ended_at.is_some() {
        return Err(StoreError::Conflict("the session has already ended".into()));
    }
    let session = state
        .store
        .kill_session(actor, id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => StoreError::Conflict("the session has already ended".into()),
            other => other,
        })?;
    shared::announce_kill(state, id).await;
    Ok(session)
}
