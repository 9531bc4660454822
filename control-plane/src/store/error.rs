//! Why a store operation failed, with conflicts and constraint violations told apart by kind
//! (sqlx's error kind for the database's own constraints), never by message text.

use std::fmt;
use std::ops::Deref;

/// What a conflict is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictKind {
    /// A unique constraint: the name or code is taken.
    Duplicate,
    /// A foreign key: the row is still referenced, or refers to a row that does not exist.
    Reference,
    /// The plan in force allows no more devices.
    DeviceLimit,
    /// The plan in force allows no more sessions at once.
    SessionLimit,
    /// The row is not in a state that allows the change (already ended, revoked, ...).
    State,
}

/// A refused change: its kind for callers to match on and a message for people. Derefs to the
/// message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub kind: ConflictKind,
    message: String,
}

impl Conflict {
    pub fn new(kind: ConflictKind, message: impl Into<String>) -> Conflict {
        Conflict {
            kind,
            message: message.into(),
        }
    }

    /// A change the row's state does not allow.
    pub fn state(message: impl Into<String>) -> Conflict {
        Conflict::new(ConflictKind::State, message)
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl Deref for Conflict {
    type Target = str;

    fn deref(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Conflict> for String {
    fn from(c: Conflict) -> String {
        c.message
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(Conflict),
    #[error("{0}")]
    Invalid(String),
    /// A session an operator ended cannot be started or resumed again.
    #[error("the session was ended by an operator")]
    SessionKilled,
    #[error("database URL {0:?} is neither postgres:// nor sqlite:")]
    UnsupportedUrl(String),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Database(sqlx::Error),
}

impl StoreError {
    /// A conflict of the given kind.
    pub fn conflict(kind: ConflictKind, message: impl Into<String>) -> StoreError {
        StoreError::Conflict(Conflict::new(kind, message))
    }

    /// The conflict's kind, if this is a conflict.
    pub fn conflict_kind(&self) -> Option<ConflictKind> {
        match self {
            StoreError::Conflict(c) => Some(c.kind),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound("row"),
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::conflict(ConflictKind::Duplicate, db.message())
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::conflict(
                ConflictKind::Reference,
                format!("still referenced: {}", db.message()),
            ),
            _ => StoreError::Database(e),
        }
    }
}
