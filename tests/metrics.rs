//! `/metrics`: hidden without `METRICS_TOKEN`, behind its bearer token, and counting what the
//! operators' alerts need. One test per process keeps the global recorder's counts exact.

mod common;

use common::{OWNER_TOKEN, TENANT, TestApp, TestDb};
use reqwest::StatusCode;

fn value(metrics: &str, line_start: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start))
        .unwrap_or_else(|| panic!("{line_start} missing from:\n{metrics}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_behind_the_token_and_count_sessions() {
    // Without a token configured, /metrics does not exist.
    let Some(hidden) = TestApp::spawn(TestDb::Sqlite).await else { return };
    assert_eq!(hidden.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    hidden.stop().await;

    let Some(app) = TestApp::spawn_with(TestDb::Sqlite, &[("METRICS_TOKEN", "scrape-secret".into())]).await else {
        return;
    };
    let scrape = |token: &'static str| app.client.get(app.url("/metrics")).bearer_auth(token).send();
    assert_eq!(app.get("/metrics").await.status(), StatusCode::UNAUTHORIZED, "no token");
    assert_eq!(scrape("wrong").await.unwrap().status(), StatusCode::UNAUTHORIZED, "wrong token");

    app.install(TENANT).await;
    assert_eq!(app.sign_in(TENANT, OWNER_TOKEN).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get("/app").await.status(), StatusCode::OK);
    assert_eq!(TestApp::bare_client().get(app.url("/settings")).send().await.unwrap().status(), StatusCode::SEE_OTHER);
    assert_eq!(
        TestApp::bare_client()
            .get(app.url("/app"))
            .header("cookie", "__libero_session=forged")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(app.sign_in(TENANT, "invalid-token").await.status(), StatusCode::SEE_OTHER, "fast path");

    let response = scrape("scrape-secret").await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let metrics = response.text().await.unwrap();

    assert_eq!(value(&metrics, "libero_sessions_created_total"), 1.0);
    assert_eq!(value(&metrics, r#"libero_sign_ins_total{outcome="ok"}"#), 1.0);
    assert_eq!(value(&metrics, r#"libero_sign_ins_total{outcome="fast_path"}"#), 1.0);
    assert!(value(&metrics, r#"libero_session_validations_total{outcome="ok"}"#) >= 2.0);
    assert_eq!(value(&metrics, r#"libero_session_validations_total{outcome="missing"}"#), 1.0);
    assert_eq!(value(&metrics, r#"libero_session_validations_total{outcome="bad_signature"}"#), 1.0);
    assert_eq!(value(&metrics, r#"libero_commerce7_request_duration_seconds_count{outcome="ok"}"#), 1.0);
    assert_eq!(value(&metrics, "libero_active_sessions"), 1.0);
    assert_eq!(value(&metrics, "libero_app_sessions_rows"), 1.0);
    assert!(metrics.contains(r#"libero_http_request_duration_seconds_bucket{method="GET",route="/app",status="200""#));
    assert!(!metrics.contains(OWNER_TOKEN));
    app.stop().await;
}
