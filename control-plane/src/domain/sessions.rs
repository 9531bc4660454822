//! Sessions: starting one under the plan's limit (for the gateway API) and ending one by an
//! operator, announced after it commits.

use uuid::Uuid;

use super::{DomainError, DomainResult};
use crate::app::AppState;
use crate::model::Session;
use crate::shared;
use crate::store::{ConflictKind, NewSession, StoreError};

/// Registers a session under the plan's concurrent-session limit (a
/// [`ConflictKind::SessionLimit`] conflict when full). When the limit refuses it, sessions whose
/// gateway died are ended first and the start is tried once more.
pub async fn start(state: &AppState, new: &NewSession) -> DomainResult<Session> {
    let mut started = state.store.start_session(new).await;
    if matches!(&started, Err(e) if e.conflict_kind() == Some(ConflictKind::SessionLimit))
        && shared::end_sessions_without_a_slot(state, new.user_id).await > 0
    {
        // Some of the sessions counted were dead (their gateway crashed): count again.
        started = state.store.start_session(new).await;
    }
    Ok(started?)
}

/// [`start`] for many sessions at once (the gateway API's session batch): one transaction for
/// the new ids ([`crate::store::Store::start_sessions`]); a start the limit refuses is tried once
/// more, alone, after its user's sessions whose gateway died are ended.
pub async fn start_many(
    state: &AppState,
    news: &[NewSession],
) -> DomainResult<Vec<DomainResult<Session>>> {
    let started = state.store.start_sessions(news).await?;
    let mut outcomes = Vec::with_capacity(started.len());
    let mut cleaned = std::collections::HashMap::new();
    for (new, outcome) in news.iter().zip(started) {
        let outcome = match outcome {
            Err(e) if e.conflict_kind() == Some(ConflictKind::SessionLimit) => {
                let freed = match cleaned.get(&new.user_id) {
                    Some(&freed) => freed,
                    None => {
                        let freed = shared::end_sessions_without_a_slot(state, new.user_id).await;
                        cleaned.insert(new.user_id, freed);
                        freed
                    }
                };
                if freed > 0 {
                    state.store.start_session(new).await
                } else {
                    Err(e)
                }
            }
            other => other,
        };
        outcomes.push(outcome.map_err(DomainError::from));
    }
    Ok(outcomes)
}

/// Ends a live session (a conflict when it has ended already); its gateway closes it at once.
pub async fn kill(state: &AppState, actor: &str, id: Uuid) -> DomainResult<Session> {
    let session = state.store.get_session(id).await?;
    if session.ended_at.is_some() {
        return Err(DomainError::state("the session has already ended"));
    }
    let session = state
        .store
        .kill_session(actor, id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => DomainError::state("the session has already ended"),
            other => other.into(),
        })?;
    shared::announce_kill(state, id).await;
    Ok(session)
}
