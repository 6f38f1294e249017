//! `/metrics`: hidden without `METRICS_TOKEN`, behind its bearer token, and counting what the
//! operators' alerts need — on SQLite and PostgreSQL. The recorder is process-wide, so the two
//! database variants take turns and compare counts before and after.

mod common;

use common::{OWNER_TOKEN, TENANT, TestApp, TestDb, handoff_code};
use libero::server::db::Db;
use reqwest::StatusCode;

fn value(metrics: &str, line_start: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start) && l[line_start.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

async fn scrape(app: &TestApp) -> String {
    let response = app.client.get(app.url("/metrics")).bearer_auth("scrape-secret").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    response.text().await.unwrap()
}

async fn metrics_count_sessions_on(kind: TestDb) {
    // Without a token configured, /metrics does not exist.
    let Some(hidden) = TestApp::spawn(kind).await else { return };
    assert_eq!(hidden.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    hidden.stop().await;

    let Some(app) = TestApp::spawn_with(kind, &[("METRICS_TOKEN", "scrape-secret".into())]).await else { return };
    assert_eq!(app.get("/metrics").await.status(), StatusCode::UNAUTHORIZED, "no token");
    let wrong = app.client.get(app.url("/metrics")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "wrong token");
    let any_case =
        app.client.get(app.url("/metrics")).header("authorization", "bEARER scrape-secret").send().await.unwrap();
    assert_eq!(any_case.status(), StatusCode::OK, "the scheme is case-insensitive (RFC 9110)");

    let before = scrape(&app).await;
    app.install(TENANT).await;
    handoff_code(app.sign_in(TENANT, OWNER_TOKEN).await).await;
    assert_eq!(app.get("/app").await.status(), StatusCode::OK);
    let anonymous = TestApp::bare_client().get(app.url("/settings")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED, "the no-session page");
    let forged =
        TestApp::bare_client().get(app.url("/app")).header("cookie", "__libero_session=forged").send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED, "the no-session page");
    // Reopened with the token the session was verified with: the fast path. (Any other token,
    // such as "invalid-token", goes to Commerce7 since the fast path also checks the token.)
    handoff_code(app.sign_in(TENANT, OWNER_TOKEN).await).await; // fast path
    let after = scrape(&app).await;

    let delta = |name: &str| value(&after, name) - value(&before, name);
    assert_eq!(delta("libero_sessions_created_total"), 1.0);
    assert_eq!(delta(r#"libero_sign_ins_total{outcome="ok"}"#), 1.0);
    assert_eq!(delta(r#"libero_sign_ins_total{outcome="fast_path"}"#), 1.0);
    assert_eq!(
        delta(r#"libero_session_validations_total{outcome="ok"}"#),
        2.0,
        "the dashboard and the fast path's lookup (a sign-in's page is rendered from what it wrote)"
    );
    assert_eq!(delta(r#"libero_session_validations_total{outcome="missing"}"#), 1.0);
    assert_eq!(delta(r#"libero_session_validations_total{outcome="bad_signature"}"#), 1.0);
    assert_eq!(delta(r#"libero_commerce7_request_duration_seconds_count{outcome="ok"}"#), 1.0);
    assert_eq!(value(&after, "libero_active_sessions"), 1.0);
    assert_eq!(value(&after, "libero_app_sessions_rows"), 1.0);
    assert!(after.contains(r#"libero_http_request_duration_seconds_bucket{method="GET",route="/app",status="200""#));
    assert!(!after.contains(OWNER_TOKEN));
    app.stop().await;
}

/// The sum of every sample line of `name` whose labels include `label`.
fn sum_with_label(metrics: &str, name: &str, label: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with('{')) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn http_labels_are_bounded_on(kind: TestDb) {
    let Some(app) = TestApp::spawn_with(kind, &[("METRICS_TOKEN", "scrape-secret".into())]).await else { return };
    let before = scrape(&app).await;
    let foobar = reqwest::Method::from_bytes(b"FOOBAR").unwrap();
    let invented = app.client.request(foobar, app.url("/healthz")).send().await.unwrap();
    assert!(invented.status().is_client_error(), "{}", invented.status());
    let unknown_path = format!("/made-up-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(app.get(&unknown_path).await.status(), StatusCode::NOT_FOUND);
    let after = scrape(&app).await;

    let count = "libero_http_request_duration_seconds_count";
    let delta = |label: &str| sum_with_label(&after, count, label) - sum_with_label(&before, count, label);
    assert_eq!(delta(r#"method="other",route="/healthz""#), 1.0, "the invented method is counted as other");
    assert!(!after.contains("FOOBAR"), "an invented method never becomes a label");
    assert!(delta(r#"route="fallback",status="404""#) >= 1.0, "unknown paths share the fallback route");
    assert!(!after.contains(&unknown_path), "a path nobody routes never becomes a label");
    app.stop().await;
}

/// A sign-in from a browser without a cookie, as the Commerce7 iframe opens the app.
async fn fresh_sign_in(app: &TestApp) -> reqwest::Response {
    let url = app.url(&format!("/app?tenantId={TENANT}&account={OWNER_TOKEN}&adminUITheme=light"));
    TestApp::bare_client().get(url).send().await.unwrap()
}

async fn rename_sessions_table(app: &TestApp, from: &str, to: &str) {
    let sql = format!("ALTER TABLE {from} RENAME TO {to}");
    match &app.db {
        Db::Sqlite(pool) => sqlx::query(&sql).execute(pool).await.map(drop),
        Db::Postgres(pool) => sqlx::query(&sql).execute(pool).await.map(drop),
    }
    .unwrap();
}

async fn sign_in_that_cannot_store_its_session_on(kind: TestDb) {
    let Some(app) = TestApp::spawn_with(kind, &[("METRICS_TOKEN", "scrape-secret".into())]).await else { return };
    app.install(TENANT).await;
    let error = r#"libero_sign_ins_total{outcome="error"}"#;
    let ok = r#"libero_sign_ins_total{outcome="ok"}"#;

    // Positive control: with the table in place the same sign-in stores its session.
    let before = scrape(&app).await;
    handoff_code(fresh_sign_in(&app).await).await;
    let stored = scrape(&app).await;
    assert_eq!(value(&stored, ok) - value(&before, ok), 1.0);
    assert_eq!(value(&stored, error) - value(&before, error), 0.0);

    // The clients table answers (the tenant is installed, Commerce7 verifies the token), but the
    // session cannot be written: the 503 page, counted as an error, not as nothing.
    rename_sessions_table(&app, "app_sessions", "app_sessions_away").await;
    let refused = fresh_sign_in(&app).await;
    rename_sessions_table(&app, "app_sessions_away", "app_sessions").await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(refused.headers().get("location").is_none(), "no handoff to a session that does not exist");
    let failed = scrape(&app).await;
    assert_eq!(value(&failed, error) - value(&stored, error), 1.0, "the failed sign-in is counted");
    assert_eq!(value(&failed, ok) - value(&stored, ok), 0.0);

    // Nothing was lost: the first session is still there, and the next sign-in works.
    handoff_code(fresh_sign_in(&app).await).await;
    assert_eq!(app.session_rows().await.len(), 2);
    app.stop().await;
}

/// The recorder is global to the test process: the variants take turns so deltas are theirs.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

on_both_databases!(metrics_are_served_behind_the_token_and_count_sessions, |kind| async move {
    let _turn = ONE_AT_A_TIME.lock().await;
    metrics_count_sessions_on(kind).await;
});

on_both_databases!(http_method_and_route_labels_take_a_bounded_set_of_values, |kind| async move {
    let _turn = ONE_AT_A_TIME.lock().await;
    http_labels_are_bounded_on(kind).await;
});

on_both_databases!(a_sign_in_that_cannot_store_its_session_answers_503_and_counts_an_error, |kind| async move {
    let _turn = ONE_AT_A_TIME.lock().await;
    sign_in_that_cannot_store_its_session_on(kind).await;
});
