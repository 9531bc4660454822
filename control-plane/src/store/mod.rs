//! The one store layer, over PostgreSQL or an embedded SQLite file, through sqlx's `Any` driver
//! so that every query is written once. Each resource has its own module; handlers never see SQL.
//!
//! SQLite gets WAL mode, a busy timeout and a single writer connection (readers are pooled), so
//! concurrent writes queue in the pool instead of failing with "database is locked".

mod admins;
mod audit;
mod console;
mod devices;
mod error;
mod gateways;
mod lease;
mod multi_row;
mod nodes;
mod plans;
mod quota;
mod regions;
mod resource;
mod row;
mod session_batch;
mod sessions;
mod subscriptions;
mod usage;
mod users;
mod validation;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Transaction};

pub use audit::{AuditFilter, NewAudit};
pub use devices::{DeviceSecrets, NewDevice};
pub use error::{Conflict, ConflictKind, StoreError};
pub use gateways::GatewayAuth;
pub use lease::LeaseHolder;
pub use nodes::{NewNode, NodeUpdate, ProbeRecord};
pub use plans::{NewPlan, PlanUpdate};
pub use quota::{quota_from_usage, quota_period};
pub use regions::NewRegion;
pub use resource::Page;
pub use sessions::{NewSession, SessionFilter};
pub use subscriptions::{Expiry, NewSubscription, QuotaStatus};
pub use usage::{UsageGroupBy, UsageQuery, UsageRecordInput, UsageRow};
pub use users::UserUpdate;
pub use validation::{in_force, ValidationFacts};

// One schema in two SQL dialects (types, defaults and DDL differ between SQLite and PostgreSQL),
// so the two folders repeat each other table by table; an applied migration never changes
// (sqlx checks its checksum), so they are not merged or rewritten.
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database is behind the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Settings of the connection pools.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// SQLite: how long a statement waits for a lock before failing.
    pub sqlite_busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
            sqlite_busy_timeout: Duration::from_secs(10),
        }
    }
}

/// The control plane's persistent state.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
    /// Reads (and, on PostgreSQL, writes).
    read: AnyPool,
    /// Writes: one connection on SQLite, the read pool on PostgreSQL.
    write: AnyPool,
    /// Audited changes committed through this store and its clones ([`Store::changes`]).
    changes: Arc<AtomicU64>,
}

impl Store {
    /// Connects to `url` (`postgres://...` or `sqlite:path`), creating an SQLite file if needed.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        match backend {
            Backend::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(options.max_connections)
                    .acquire_timeout(options.acquire_timeout)
                    .connect(url)
                    .await?;
                Ok(Store {
                    backend,
                    read: pool.clone(),
                    write: pool,
                    changes: Arc::default(),
                })
            }
            Backend::Sqlite => {
                let url = if url.contains('?') {
                    url.to_owned()
                } else {
                    format!("{url}?mode=rwc")
                };
                let busy_ms = options.sqlite_busy_timeout.as_millis();
                let pool = |max: u32| {
                    AnyPoolOptions::new()
                        .max_connections(max)
                        .acquire_timeout(options.acquire_timeout)
                        .after_connect(move |conn, _meta| {
                            Box::pin(async move {
                                conn.execute(
                                    format!(
                                        "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = {busy_ms}; \
                                         PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
                                    )
                                    .as_str(),
                                )
                                .await?;
                                Ok(())
                            })
                        })
                };
                // The writer first, so the file exists in WAL mode before readers open it.
                let write = pool(1).connect(&url).await?;
                let read = pool(options.max_connections).connect(&url).await?;
                Ok(Store {
                    backend,
                    read,
                    write,
                    changes: Arc::default(),
                })
            }
        }
    }

    /// Applies the backend's migrations.
    pub async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&self.write).await?,
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&self.write).await?,
        }
        Ok(())
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Closes the pools.
    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    pub(crate) fn reader(&self) -> &AnyPool {
        &self.read
    }

    pub(crate) fn writer(&self) -> &AnyPool {
        &self.write
    }

    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Any>> {
        match self.backend {
            // Take the write lock up front: a deferred transaction that reads first and then
            // writes fails with SQLITE_BUSY_SNAPSHOT if another process (the CLI, a second
            // service) committed in between, and the busy timeout cannot help with that.
            Backend::Sqlite => Ok(self.write.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => Ok(self.write.begin().await?),
        }
    }
}

/// Decodes rows with a mapping function, turning decode errors into [`StoreError::Corrupt`].
pub(crate) fn map_rows<T>(rows: Vec<AnyRow>, f: fn(&AnyRow) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}

impl Store {
    /// Runs one statement outside any transaction (administration, e.g. `CREATE DATABASE`).
    pub async fn execute_raw(&self, sql: &str) -> Result<()> {
        sqlx::raw_sql(sql).execute(&self.write).await?;
        Ok(())
    }
}
