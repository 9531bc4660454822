//! Test fixtures: a fresh store per test on SQLite (a temporary file) or on the real PostgreSQL
//! (a new database per test, dropped afterwards). PostgreSQL must be reachable: a test never
//! silently skips it.
#![allow(dead_code)]

pub mod admin;
pub mod app;
pub mod nodes;
pub mod traffic;

/// Runs each named `async fn(&TestApp)` as two tests: `NAME::sqlite` and `NAME::postgres` (the
/// real server; unreachable fails the run). The test file imports `TestApp`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $(mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                let app = super::TestApp::sqlite().await;
                super::$name(&app).await;
                app.stop().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                let app = super::TestApp::postgres().await;
                super::$name(&app).await;
                app.stop().await;
            }
        })*
    };
}
pub mod ss;
pub mod subscribe;

use httvps_control_plane::store::{Store, StoreOptions};

/// The PostgreSQL server tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("DATABASE_URL_TEST")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A store and what keeps its database alive.
pub struct TestDb {
    pub store: Store,
    /// The database's URL, for starting a service on it.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite:{}", dir.path().join("cp.db").display());
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .expect("open sqlite");
        store.migrate().await.expect("migrate sqlite");
        TestDb {
            store,
            url,
            _dir: Some(dir),
            pg_name: None,
        }
    }

    pub async fn postgres() -> TestDb {
        let admin_url = postgres_admin_url();
        let name = format!("httvps_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Store::connect(
            &admin_url,
            &StoreOptions {
                max_connections: 1,
                ..StoreOptions::default()
            },
        )
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is required for this test: {e}"));
        admin
            .execute_raw(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create test database");
        admin.close().await;
        let url = database_url(&admin_url, &name);
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .expect("open test database");
        store.migrate().await.expect("migrate postgres");
        TestDb {
            store,
            url,
            _dir: None,
            pg_name: Some(name),
        }
    }

    /// Drops the PostgreSQL database (call at the end of a test; leftovers are harmless).
    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some(name) = self.pg_name {
            if let Ok(admin) = Store::connect(
                &postgres_admin_url(),
                &StoreOptions {
                    max_connections: 1,
                    ..StoreOptions::default()
                },
            )
            .await
            {
                let _ = admin
                    .execute_raw(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await;
                admin.close().await;
            }
        }
    }
}

/// `admin_url` with its database name replaced.
pub fn database_url(admin_url: &str, name: &str) -> String {
    let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
    format!("{base}/{name}")
}
