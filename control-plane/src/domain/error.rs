//! The one error type of the domain layer. The HTTP layer maps it to problem documents
//! (`impl From<DomainError> for ApiError` in `crate::error`), the CLI to its messages
//! (`crate::cli::refusal`); nothing matches on message text.

use crate::store::{Conflict, ConflictKind, StoreError};

/// Why a change or a look-up was refused.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// The input breaks a rule (a name too long, an unknown region code, ...).
    #[error("{0}")]
    Invalid(String),
    /// The thing addressed does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The change conflicts with the data (a name taken, a limit reached, a state that does
    /// not allow it).
    #[error("{0}")]
    Conflict(Conflict),
    /// The caller may not do this (e.g. a wrong current password).
    #[error("{0}")]
    Forbidden(String),
    /// A session an operator ended cannot be started or resumed again.
    #[error("the session was ended by an operator")]
    SessionKilled,
    /// Not the caller's fault: a setting, a failed task, the database.
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(StoreError),
}

pub type DomainResult<T> = Result<T, DomainError>;

impl DomainError {
    /// A conflict of the given kind.
    pub fn conflict(kind: ConflictKind, message: impl Into<String>) -> DomainError {
        DomainError::Conflict(Conflict::new(kind, message))
    }

    /// A change the data's state does not allow.
    pub fn state(message: impl Into<String>) -> DomainError {
        DomainError::Conflict(Conflict::state(message))
    }
}

impl From<StoreError> for DomainError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => DomainError::NotFound(what.to_owned()),
            StoreError::Conflict(c) => DomainError::Conflict(c),
            StoreError::Invalid(msg) => DomainError::Invalid(msg),
            StoreError::SessionKilled => DomainError::SessionKilled,
            other => DomainError::Store(other),
        }
    }
}

/// A store error with a duplicate-name conflict told in the resource's own words.
pub(crate) fn named(message: impl FnOnce() -> String) -> impl FnOnce(StoreError) -> DomainError {
    move |e| match e {
        StoreError::Conflict(c) if c.kind == ConflictKind::Duplicate => {
            DomainError::conflict(ConflictKind::Duplicate, message())
        }
        other => other.into(),
    }
}

/// A row named in the input that does not exist is invalid input, not a missing resource.
pub(crate) fn unknown_ref(
    message: impl FnOnce() -> String,
) -> impl FnOnce(StoreError) -> DomainError {
    move |e| match e {
        StoreError::NotFound(_) => DomainError::Invalid(message()),
        other => other.into(),
    }
}
