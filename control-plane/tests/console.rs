//! The operator console (`/ui`) over real HTTP: sign-in through the REST API's login, the
//! session and CSRF cookies and their attributes, the CSRF checks (token and Origin), role
//! checks on the server, session renewal, and refusals shown as HTML pages (never rewritten
//! into problem documents). The browser test (sdk/client/tests/console_browser.rs) drives the
//! same pages in Chromium.

mod common;

use common::app::{TestApp, ADMIN_PASSWORD};
use common::TestDb;
use httvps_control_plane::domain;
use httvps_control_plane::model::Role;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use reqwest::{Client, Response, StatusCode};

on_both_backends!(sign_in_csrf_and_roles, subscription_changes);

fn client() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `Set-Cookie` line of `name`.
fn set_cookie(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|kv| kv.split_once('='))
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

/// A signed-in browser: its cookies and CSRF token.
struct Browser {
    cookies: String,
    csrf: String,
}

impl Browser {
    /// The HTML of the console page at `path`, as this browser sees it.
    async fn page(&self, http: &Client, app: &TestApp, path: &str) -> String {
        http.get(app.url(path))
            .header(COOKIE, &self.cookies)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

async fn sign_in(app: &TestApp, username: &str, password: &str) -> Browser {
    let http = client();
    let form = http.get(app.url("/ui/login")).send().await.unwrap();
    assert_eq!(form.status(), StatusCode::OK);
    let csrf = value(&set_cookie(&form, "httvps_csrf").expect("a CSRF cookie"));
    let page = form.text().await.unwrap();
    assert!(
        page.contains(&format!("name=\"csrf\" value=\"{csrf}\"")),
        "the form repeats the token"
    );
    let answer = http
        .post(app.url("/ui/login"))
        .header(COOKIE, format!("httvps_csrf={csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER, "signed in");
    assert_eq!(answer.headers()[LOCATION], "/ui");
    let session = set_cookie(&answer, "httvps_console").expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui"] {
        assert!(session.contains(attribute), "{session} has {attribute}");
    }
    assert!(!session.contains("Secure"), "plain HTTP: no Secure");
    let fresh = value(&set_cookie(&answer, "httvps_csrf").expect("a new CSRF token at sign-in"));
    assert_ne!(fresh, csrf, "the token from before the sign-in is not kept");
    Browser {
        cookies: format!("httvps_console={}; httvps_csrf={fresh}", value(&session)),
        csrf: fresh,
    }
}

async fn sign_in_csrf_and_roles(app: &TestApp) {
    let http = client();
    // Signed out: every page leads to the sign-in form; the stylesheet is served.
    let r = http.get(app.url("/ui/users")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[LOCATION], "/ui/login");
    let css = http
        .get(app.url("/ui/static/console.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(css.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/css"));

    // A wrong password: 401 as an HTML page with the reason, not a problem document.
    let form = http.get(app.url("/ui/login")).send().await.unwrap();
    let csrf = value(&set_cookie(&form, "httvps_csrf").unwrap());
    let wrong = http
        .post(app.url("/ui/login"))
        .header(COOKIE, format!("httvps_csrf={csrf}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("username", "root"),
            ("password", "nope-nope-nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(wrong
        .text()
        .await
        .unwrap()
        .contains("wrong username or password"));
    // A sign-in without the CSRF cookie is refused before the password is checked.
    let forged = http
        .post(app.url("/ui/login"))
        .form(&[
            ("csrf", "x"),
            ("username", "root"),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let admin = sign_in(app, "root", ADMIN_PASSWORD).await;
    let page = http
        .get(app.url("/ui"))
        .header(COOKIE, &admin.cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(page.text().await.unwrap().contains("online sessions"));

    // CSRF: a POST from another origin, or without the token, or with another token, changes
    // nothing.
    let create = |origin: Option<&str>, token: &str, name: &str| {
        let mut request = http
            .post(app.url("/ui/users"))
            .header(COOKIE, &admin.cookies)
            .form(&[("csrf", token), ("name", name)]);
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        request.send()
    };
    let r = create(Some("http://evil.example"), &admin.csrf, "mallory")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("another site"));
    let r = create(None, "", "mallory").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = create(None, "0123456789abcdef", "mallory").await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(app.store().user_by_name("mallory").await.is_err());
    // The same origin with the token: created, then its page.
    let origin = app.base.clone();
    let r = create(Some(&origin), &admin.csrf, "alice").await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let alice = app.store().user_by_name("alice").await.unwrap();
    assert!(r.headers()[LOCATION]
        .to_str()
        .unwrap()
        .starts_with(&format!("/ui/users/{}", alice.id)));
    // A domain refusal: the page again, 409, the message next to the form.
    let r = create(None, &admin.csrf, "alice").await.unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = r.text().await.unwrap();
    assert!(
        page.contains("id=\"create-user-error\"") && page.contains("exists already"),
        "{page}"
    );

    // Roles: a viewer sees no write forms and is refused every write on the server.
    domain::admins::create(
        app.state(),
        "test",
        "watcher",
        "viewer-password-1".into(),
        Role::Viewer,
    )
    .await
    .unwrap();
    let viewer = sign_in(app, "watcher", "viewer-password-1").await;
    let page = viewer
        .page(&http, app, &format!("/ui/users/{}", alice.id))
        .await;
    assert!(page.contains("alice"));
    // The only POST form is signing out.
    assert_eq!(page.matches("method=\"post\"").count(), 1, "{page}");
    for (path, fields) in [
        (
            format!("/ui/users/{}/status", alice.id),
            vec![("status", "disabled")],
        ),
        (format!("/ui/users/{}/delete", alice.id), vec![]),
        ("/ui/users".to_owned(), vec![("name", "bob")]),
        (
            "/ui/admins".to_owned(),
            vec![
                ("username", "eve"),
                ("password", "eve-password-1"),
                ("role", "admin"),
            ],
        ),
    ] {
        let mut form = vec![("csrf", viewer.csrf.as_str())];
        form.extend(fields);
        let r = http
            .post(app.url(&path))
            .header(COOKIE, &viewer.cookies)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(
        app.store().get_user(alice.id).await.unwrap().status,
        httvps_control_plane::model::UserStatus::Active
    );
    let r = http
        .get(app.url("/ui/admins"))
        .header(COOKIE, &viewer.cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // An operator makes changes but sees and may do nothing admin-only.
    domain::admins::create(
        app.state(),
        "test",
        "ops",
        "operator-password-1".into(),
        Role::Operator,
    )
    .await
    .unwrap();
    let operator = sign_in(app, "ops", "operator-password-1").await;
    let page = operator.page(&http, app, "/ui/users").await;
    assert!(
        page.contains("id=\"create-user\""),
        "operators create users"
    );
    assert!(!page.contains("href=\"/ui/admins\""), "no admins link");
    let page = operator.page(&http, app, "/ui/gateways").await;
    assert!(
        !page.contains("Rotate token") && !page.contains("create-gateway"),
        "{page}"
    );
    for (path, fields) in [
        (
            "/ui/admins",
            vec![
                ("username", "eve"),
                ("password", "eve-password-1"),
                ("role", "admin"),
            ],
        ),
        ("/ui/gateways", vec![("name", "gw-eve")]),
    ] {
        let mut form = vec![("csrf", operator.csrf.as_str())];
        form.extend(fields);
        let r = http
            .post(app.url(path))
            .header(COOKIE, &operator.cookies)
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("this needs the admin role"));
    }

    // Renewal: a token past half its life gets a new one; an expired one signs out.
    let (admin_row, _) = app
        .store()
        .admin_session(root_admin_id(app).await)
        .await
        .unwrap();
    let now = u64::try_from(httvps_control_plane::model::now_ms() / 1000).unwrap();
    let ttl = app.state().jwt.ttl_secs();
    let (old, _) = app
        .state()
        .jwt
        .issue(
            admin_row.id,
            &admin_row.username,
            admin_row.role,
            now - ttl * 3 / 4,
        )
        .unwrap();
    let r = http
        .get(app.url("/ui"))
        .header(COOKIE, format!("httvps_console={old}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let renewed = value(&set_cookie(&r, "httvps_console").expect("renewed"));
    assert!(app.state().jwt.verify(&renewed).unwrap().exp > now + ttl / 2);
    let (expired, _) = app
        .state()
        .jwt
        .issue(
            admin_row.id,
            &admin_row.username,
            admin_row.role,
            now - ttl - 60,
        )
        .unwrap();
    let r = http
        .get(app.url("/ui"))
        .header(COOKIE, format!("httvps_console={expired}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&r, "httvps_console")
        .unwrap()
        .contains("Max-Age=0"));

    // Deleting asks for a ticked "sure" first, on the server too.
    let delete = |confirm: &'static str| {
        http.post(app.url(&format!("/ui/users/{}/delete", alice.id)))
            .header(COOKIE, &admin.cookies)
            .form(&[("csrf", admin.csrf.as_str()), ("confirm", confirm)])
            .send()
    };
    let r = delete("").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("cannot be undone"));
    assert!(app.store().get_user(alice.id).await.is_ok(), "not deleted");
    let r = delete("yes").await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(app.store().get_user(alice.id).await.is_err(), "deleted");

    // Signing out removes both cookies.
    let r = http
        .post(app.url("/ui/logout"))
        .header(COOKIE, &admin.cookies)
        .form(&[("csrf", admin.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(&r, "httvps_console")
        .unwrap()
        .contains("Max-Age=0"));
    assert!(set_cookie(&r, "httvps_csrf").unwrap().contains("Max-Age=0"));
}

/// Extending a subscription, adding traffic and changing its plan from a user's page, and the
/// refusals of each next to the subscriptions.
async fn subscription_changes(app: &TestApp) {
    use httvps_control_plane::domain::plans::PlanInput;
    use httvps_control_plane::domain::subscriptions::PlanRef;
    use httvps_control_plane::model::ResetStrategy;
    let state = app.state();
    let plan = |name: &str| PlanInput {
        name: name.into(),
        device_limit: 3,
        session_limit: 3,
        quota_bytes: Some(10 << 30),
        reset_strategy: ResetStrategy::CalendarMonth,
        duration_days: Some(30),
        allowed_regions: Vec::new(),
    };
    let silver = domain::plans::create(state, "test", &plan("silver"))
        .await
        .unwrap();
    let gold = domain::plans::create(state, "test", &plan("gold"))
        .await
        .unwrap();
    let user = domain::users::create(state, "test", "carol", None)
        .await
        .unwrap();
    let (sub, _) = domain::subscriptions::create(
        state,
        "test",
        user.id,
        Some(PlanRef::Id(silver.id)),
        false,
        false,
    )
    .await
    .unwrap();
    let admin = sign_in(app, "root", ADMIN_PASSWORD).await;
    let http = client();
    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let mut form = vec![("csrf", admin.csrf.clone())];
        form.extend(fields);
        http.post(app.url(&path))
            .header(COOKIE, &admin.cookies)
            .form(&form)
            .send()
    };
    // The user page offers the three changes, every field labelled.
    let page = admin
        .page(&http, app, &format!("/ui/users/{}", user.id))
        .await;
    for action in ["extend", "add-traffic", "plan"] {
        assert!(
            page.contains(&format!("/ui/subscriptions/{}/{action}", sub.id)),
            "{action}"
        );
    }

    let r = post(
        format!("/ui/subscriptions/{}/extend", sub.id),
        vec![("days", "10".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let extended = app.store().get_subscription(sub.id).await.unwrap();
    assert_eq!(
        extended.ends_at.unwrap() - sub.ends_at.unwrap(),
        10 * 86_400_000
    );
    let r = post(
        format!("/ui/subscriptions/{}/extend", sub.id),
        vec![("days", "0".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("days must be between 1 and 3650"));

    // Added traffic gives used traffic back: at most what was used in this period.
    let r = post(
        format!("/ui/subscriptions/{}/add-traffic", sub.id),
        vec![("gib", "2".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("at most the 0 bytes used"));
    common::traffic::use_traffic(app.store(), user.id, 3 << 30).await;
    let r = post(
        format!("/ui/subscriptions/{}/add-traffic", sub.id),
        vec![("gib", "2".into())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (in_force, plan_now) = app
        .store()
        .resolve_subscription(user.id, httvps_control_plane::model::now_ms(), false)
        .await
        .unwrap()
        .unwrap();
    // Forgiven like a reset's bytes: counted against once the user has used them.
    let forgiven: i64 = {
        let audit = app
            .store()
            .list_audit(&httvps_control_plane::store::AuditFilter {
                target_type: Some("subscription".into()),
                target_id: Some(sub.id.to_string()),
                since: None,
                limit: 10,
            })
            .await
            .unwrap();
        let added = audit
            .iter()
            .find(|e| e.action == "subscription.add_traffic")
            .unwrap();
        added.detail["bytes_added"].as_i64().unwrap()
    };
    assert_eq!(forgiven, 2 << 30);
    let quota = app
        .store()
        .quota_status(&in_force, &plan_now, httvps_control_plane::model::now_ms())
        .await
        .unwrap();
    assert_eq!(quota.used_bytes, 1 << 30, "3 GiB used, 2 GiB given back");

    let r = post(
        format!("/ui/subscriptions/{}/plan", sub.id),
        vec![("plan", gold.id.to_string())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.store().get_subscription(sub.id).await.unwrap().plan_id,
        gold.id
    );
    let r = post(
        format!("/ui/subscriptions/{}/plan", sub.id),
        vec![("plan", gold.id.to_string())],
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("already"));

    // A cancelled subscription takes none of them.
    domain::subscriptions::cancel(state, "test", sub.id)
        .await
        .unwrap();
    for (action, field, value) in [
        ("extend", "days", "5".to_owned()),
        ("add-traffic", "gib", "1".to_owned()),
        ("plan", "plan", silver.id.to_string()),
    ] {
        let path = format!("/ui/subscriptions/{}/{action}", sub.id);
        let r = post(path, vec![(field, value)]).await.unwrap();
        assert_eq!(r.status(), StatusCode::CONFLICT, "{action}");
        let page = r.text().await.unwrap();
        assert!(
            page.contains("subscription-actions-error"),
            "{action}: {page}"
        );
    }
}

/// The id of the `root` admin.
async fn root_admin_id(app: &TestApp) -> uuid::Uuid {
    app.store()
        .list_admins()
        .await
        .unwrap()
        .into_iter()
        .find(|a| a.username == "root")
        .unwrap()
        .id
}

/// Behind TLS (an https public URL) the cookies are Secure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookies_are_secure_behind_tls() {
    let app = TestApp::with_db(TestDb::sqlite().await, |c| {
        c.public_url = Some("https://cp.example".into());
    })
    .await;
    let form = client().get(app.url("/ui/login")).send().await.unwrap();
    assert!(set_cookie(&form, "httvps_csrf")
        .unwrap()
        .contains("; Secure"));
    app.stop().await;
}
