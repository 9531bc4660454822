//! Limits and refusals that must hold under concurrency and hostile input, through the real HTTP
//! server on SQLite and on the real PostgreSQL: the device limit under parallel creations, bad
//! text (NUL bytes) and optional coordinates that PostgreSQL refuses, admin and gateway
//! authentication hardening, and the server's own timeout and concurrency limit.

mod common;

use common::app::{call, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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

on_both_backends!(device_limit_holds_under_parallel_creations,);

async fn send(app: &TestApp, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    call(app.admin(method, path).json(&body)).await
}

#[track_caller]
fn created_id(resp: (StatusCode, Value)) -> String {
    assert_eq!(resp.0, StatusCode::CREATED, "{}", resp.1);
    resp.1["id"].as_str().expect("an id").to_owned()
}

/// Issue 15 item 3: 20 parallel creations for a plan allowing 3 devices create exactly 3, in
/// every round (PostgreSQL used to create 3 to 13: count, then insert, without a lock).
async fn device_limit_holds_under_parallel_creations(app: &TestApp) {
    let plan = created_id(
        send(
            app,
            Method::POST,
            "/v1/admin/plans",
            json!({"name": "three", "device_limit": 3, "session_limit": 3}),
        )
        .await,
    );
    for round in 0..5 {
        let user = created_id(
            send(
                app,
                Method::POST,
                "/v1/admin/users",
                json!({"name": format!("u{round}")}),
            )
            .await,
        );
        created_id(
            send(
                app,
                Method::POST,
                &format!("/v1/admin/users/{user}/subscriptions"),
                json!({"plan_id": plan}),
            )
            .await,
        );
        let attempts = (0..20).map(|i| {
            let req = app
                .admin(Method::POST, &format!("/v1/admin/users/{user}/devices"))
                .json(&json!({"name": format!("d{i}")}));
            async move { call(req).await }
        });
        let answers = futures_join_all(attempts).await;
        let created = answers
            .iter()
            .filter(|(s, _)| *s == StatusCode::CREATED)
            .count();
        for (status, body) in &answers {
            assert!(
                *status == StatusCode::CREATED
                    || (*status == StatusCode::CONFLICT && body["code"] == "conflict"),
                "round {round}: {status} {body}"
            );
        }
        let (_, listed) =
            call(app.admin(Method::GET, &format!("/v1/admin/devices?user_id={user}"))).await;
        let listed = listed.as_array().map_or(0, Vec::len);
        assert_eq!(
            (created, listed),
            (3, 3),
            "round {round}: the plan allows 3 devices"
        );
    }
}

/// Runs the futures concurrently (each on its own task) and collects their outputs in order.
async fn futures_join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}
