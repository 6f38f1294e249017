//! Operations over real HTTP and real processes, on SQLite and PostgreSQL: batched cleanup
//! under load, the operator CLI, rate limits, JSON logs and graceful shutdown.

mod common;

use std::time::{Duration, Instant};

use chrono::Utc;
use common::{OWNER_TOKEN, TENANT, TestApp, TestDb, child::ChildServer};
use libero::server::{db::Db, sessions::cleanup};
use reqwest::{StatusCode, header};
use serde_json::Value;

/// Inserts `count` already-expired sessions for the demo tenant, in one statement.
async fn insert_expired(app: &TestApp, count: i64) {
    let past = Utc::now() - chrono::TimeDelta::hours(2);
    app.insert_sessions("expired", count, past, past).await;
}

on_both_databases!(cleanup_of_100k_expired_rows_spares_live_sessions_while_requests_are_answered, |kind| async move {
    // Touch interval 0: every signed-in request writes its row, so requests compete with the
    // cleanup's deletes for the database instead of only reading.
    let Some(app) = TestApp::signed_in_with(kind, &[("SESSION_TOUCH_INTERVAL", "0".into())]).await else { return };
    insert_expired(&app, 100_000).await;
    let live = app.session_rows().await.into_iter().find(|r| !r.id.starts_with("expired-")).unwrap();

    let db = app.db.clone();
    let cleanup = tokio::spawn(async move {
        let started = Instant::now();
        let deleted = cleanup::delete_expired(&db, cleanup::DEFAULT_BATCH_SIZE, Some(Duration::from_secs(3600))).await;
        (started, deleted, Instant::now())
    });
    let mut answered_at = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cleanup.is_finished() {
        assert!(Instant::now() < deadline, "the cleanup did not finish within 120 s");
        let response = app.get("/app").await;
        assert_eq!(response.status(), StatusCode::OK, "requests keep being answered during cleanup");
        answered_at.push(Instant::now());
    }
    let (started, deleted, finished) = cleanup.await.unwrap();
    assert_eq!(deleted.unwrap(), 100_000);
    let during = answered_at.iter().filter(|t| **t > started && **t < finished).count();
    assert!(during >= 2, "{during} requests answered between the cleanup's start and end (of {})", answered_at.len());
    let rows = app.session_rows().await;
    assert_eq!(rows.len(), 1, "only the live session is left");
    assert_eq!(rows[0].id, live.id);
    assert!(rows[0].last_activity_at > live.last_activity_at, "the requests wrote their touch during the cleanup");
    assert_eq!(app.get("/app").await.status(), StatusCode::OK);
    app.stop().await;
});

on_both_databases!(the_background_task_deletes_expired_sessions, |kind| async move {
    let Some(app) = TestApp::signed_in_with(kind, &[("SESSION_CLEANUP_INTERVAL", "1s".into())]).await else { return };
    insert_expired(&app, 50).await;
    let mut left = usize::MAX;
    // Up to 30 s, a hang guard: the task runs every second.
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = app.session_rows().await.len();
        if left == 1 {
            break;
        }
    }
    assert_eq!(left, 1, "expired rows removed by the server itself, the live one kept");
    app.stop().await;
});

fn libero(args: &[&str], database_url: &str) -> std::process::Output {
    common::child::run_libero(args, database_url, &[], None)
}

on_both_databases!(the_cleanup_command_prints_how_many_it_deleted, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    insert_expired(&app, 1_234).await;
    let output = libero(&["sessions", "cleanup", "--batch-size", "500"], &app.database.url);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "Session cleanup: deleted 1234 expired sessions\n");
    assert_eq!(app.session_rows().await.len(), 1);
    let again = libero(&["sessions", "cleanup"], &app.database.url);
    assert_eq!(String::from_utf8_lossy(&again.stdout), "Session cleanup: deleted 0 expired sessions\n");
    app.stop().await;
});

on_both_databases!(the_stats_command_reports_the_monitoring_query, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    insert_expired(&app, 3).await;
    let output = libero(&["sessions", "stats", "--json"], &app.database.url);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stats: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(stats["total_sessions"], 4);
    assert_eq!(stats["active_sessions"], 1);
    assert_eq!(stats["expired_sessions"], 3);
    assert_eq!(stats["unique_clients"], 1);
    // Three rows idle for 120 minutes and one just used: about 90 minutes on average.
    let idle = stats["avg_idle_minutes"].as_f64().unwrap();
    assert!((89.0..=91.0).contains(&idle), "average idle minutes {idle}");
    assert_eq!(stats["active_per_client"][0]["tenant_id"], TENANT);
    assert_eq!(stats["active_per_client"][0]["active_sessions"], 1);

    let text = libero(&["sessions", "stats"], &app.database.url);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("total_sessions:   4"), "{text}");
    assert!(text.contains("demo-winery"), "{text}");
    app.stop().await;
});

#[test]
fn the_cleanup_command_fails_clearly_when_the_database_is_unreachable() {
    let output = libero(&["sessions", "cleanup"], "postgres://postgres@127.0.0.1:1/nothing");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot connect to the database"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_cleanup_function_deletes_expired_rows_and_returns_the_count() {
    let Some(app) = TestApp::signed_in(TestDb::Postgres).await else { return };
    insert_expired(&app, 42).await;
    let Db::Postgres(pool) = &app.db else { unreachable!() };
    let deleted: i32 = sqlx::query_scalar("SELECT cleanup_expired_app_sessions()").fetch_one(pool).await.unwrap();
    assert_eq!(deleted, 42);
    assert_eq!(app.session_rows().await.len(), 1);
    app.stop().await;
}

// --- Rate limits ------------------------------------------------------------------------------

on_both_databases!(sign_in_attempts_over_the_limit_get_429_with_retry_after, |kind| async move {
    let Some(app) = TestApp::spawn_with(kind, &[("RATE_LIMIT_SIGN_IN", "2/min".into())]).await else { return };
    app.install(TENANT).await;
    let attempt = || async {
        TestApp::bare_client()
            .get(app.url(&format!("/app?tenantId={TENANT}&account=wrong-token")))
            .send()
            .await
            .unwrap()
    };
    assert_eq!(attempt().await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(attempt().await.status(), StatusCode::UNAUTHORIZED);
    let limited = attempt().await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = limited.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(app.c7.user_calls(), 2, "a limited attempt never reaches Commerce7");

    // A forged X-Forwarded-For does not buy a fresh allowance (no proxy is trusted).
    let spoofed = TestApp::bare_client()
        .get(app.url(&format!("/app?tenantId={TENANT}&account={OWNER_TOKEN}")))
        .header("x-forwarded-for", "198.51.100.1")
        .send()
        .await
        .unwrap();
    assert_eq!(spoofed.status(), StatusCode::TOO_MANY_REQUESTS);
    app.stop().await;
});

on_both_databases!(behind_a_trusted_proxy_limits_apply_per_forwarded_client, |kind| async move {
    let extra = [("RATE_LIMIT_SIGN_IN", "1/min".to_owned()), ("TRUSTED_PROXY_HOPS", "1".to_owned())];
    let Some(app) = TestApp::spawn_with(kind, &extra).await else { return };
    app.install(TENANT).await;
    // Refused sign-ins count (successful ones do not: tests/extensions.rs).
    let from = |ip: &'static str| {
        TestApp::bare_client()
            .get(app.url(&format!("/app?tenantId={TENANT}&account=wrong-token")))
            .header("x-forwarded-for", ip)
            .send()
    };
    assert_eq!(from("203.0.113.1").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(from("203.0.113.1").await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(from("203.0.113.2").await.unwrap().status(), StatusCode::UNAUTHORIZED, "another client");
    app.stop().await;
});

// Once another browser at the same address has used the allowance with a junk token and the next
// is refused with 429 (the control), the signed-in browser still reopens the app with the token
// its session was verified with: the fast path, which asks Commerce7 nothing and counts nothing.
on_both_databases!(a_signed_in_browser_is_not_limited_when_it_reopens_the_app, |kind| async move {
    let Some(app) = TestApp::signed_in_with(kind, &[("RATE_LIMIT_SIGN_IN", "1/min".into())]).await else { return };
    let junk = || TestApp::bare_client().get(app.url(&format!("/app?tenantId={TENANT}&account=junk-token"))).send();
    assert_eq!(junk().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(junk().await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS, "the control: the allowance is used");
    let verifications = app.c7.user_calls();
    for _ in 0..3 {
        assert_eq!(app.sign_in(TENANT, OWNER_TOKEN).await.status(), StatusCode::OK, "a reopen");
    }
    assert_eq!(app.c7.user_calls(), verifications, "fast path: no Commerce7 call");
    app.stop().await;
});

on_both_databases!(callbacks_over_the_limit_get_429_with_retry_after, |kind| async move {
    let Some(app) = TestApp::spawn_with(kind, &[("RATE_LIMIT_CALLBACKS", "2/min".into())]).await else { return };
    assert_eq!(app.c7.send_install(TENANT).await.unwrap().as_u16(), 200);
    assert_eq!(app.c7.send_install(TENANT).await.unwrap().as_u16(), 200);
    let response = TestApp::bare_client()
        .post(app.url("/uninstall"))
        .basic_auth(common::CALLBACK_USER, Some(common::CALLBACK_PASSWORD))
        .json(&serde_json::json!({ "tenantId": TENANT }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, serde_json::json!({ "ok": false, "error": "too many requests" }), "the callbacks' error shape");
    assert!(app.client_id(TENANT).await.is_some());
    assert_eq!(app.sign_in(TENANT, OWNER_TOKEN).await.status(), StatusCode::OK, "the uninstall did not happen");
    app.stop().await;
});

// --- Logs and lifecycle: the real binary ---------------------------------------------------------

async fn start_fake() -> fake_commerce7::FakeCommerce7 {
    let config =
        fake_commerce7::FakeConfig::demo("http://127.0.0.1:9", common::CALLBACK_USER, common::CALLBACK_PASSWORD);
    fake_commerce7::FakeCommerce7::start(([127, 0, 0, 1], 0).into(), config).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_have_one_line_per_request_with_its_id_and_never_a_token_or_cookie() {
    let c7 = start_fake().await;
    let api = c7.api_url();
    let mut server = ChildServer::start(&[("COMMERCE7_API_URL", &api)]).await;
    c7.set_app_url(&server.base);
    assert_eq!(c7.send_install(TENANT).await.unwrap().as_u16(), 200);

    // Every request of ours carries its own id; the install callback (sent by the fake) does not.
    let client =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap();
    let ours = ["req-sign-in", "req-dashboard", "req-settings", "req-health"];
    let response = client
        .get(format!("{}/app?tenantId={TENANT}&account={OWNER_TOKEN}", server.base))
        .header("x-request-id", ours[0])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();
    let cookie_value = cookie.trim_start_matches("__libero_session=").to_owned();
    for (id, path) in [(ours[1], "/app"), (ours[2], "/settings"), (ours[3], "/healthz")] {
        let page = client.get(format!("{}{path}", server.base)).header("x-request-id", id).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        assert_eq!(page.headers()["x-request-id"], id, "a proxy's request id is kept and returned");
    }

    server.terminate();
    assert!(server.exit_status().await.success());
    let lines: Vec<Value> =
        server.lines().iter().map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("JSON line: {l}"))).collect();
    let logs = server.lines().join("\n");
    let finished: Vec<&Value> = lines.iter().filter(|l| l["message"] == "finished processing request").collect();
    // Exactly one line per request: our three pages and the install callback, nothing twice; the
    // health probe (its id returned all the same) is logged only at debug level.
    assert_eq!(finished.len(), ours.len(), "{logs}");
    for id in &ours[..3] {
        let of_request: Vec<_> = finished.iter().filter(|l| l["span"]["request_id"] == *id).collect();
        assert_eq!(of_request.len(), 1, "one line for {id}: {logs}");
    }
    assert!(!logs.contains(ours[3]), "no line for the health probe: {logs}");
    let dashboard = finished.iter().find(|l| l["span"]["request_id"] == ours[1]).unwrap();
    assert_eq!(dashboard["span"]["path"], "/app");
    assert_eq!(dashboard["span"]["method"], "GET");
    assert!(finished.iter().all(|l| l["span"]["request_id"].is_string()), "every request line has an id");
    assert!(!logs.contains(OWNER_TOKEN), "the Commerce7 account token is never logged");
    assert!(!logs.contains(&cookie_value), "the cookie is never logged");
    assert!(!logs.contains("tenantId="), "query strings are never logged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_probes_are_logged_only_with_debug_logging_on() {
    let mut quiet = ChildServer::start(&[]).await;
    let mut verbose = ChildServer::start(&[("RUST_LOG", "info,libero::server::http=debug")]).await;
    let client = reqwest::Client::new();
    for (server, id) in [(&quiet, "probe-quiet"), (&verbose, "probe-verbose")] {
        for path in ["/healthz", "/readyz", "/"] {
            let response =
                client.get(format!("{}{path}", server.base)).header("x-request-id", id).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
    }
    let mut logged = Vec::new();
    for server in [&mut quiet, &mut verbose] {
        server.terminate();
        assert!(server.exit_status().await.success());
        let lines: Vec<Value> = server.lines().iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
        let mut paths: Vec<String> = lines
            .iter()
            .filter(|l| l["message"] == "finished processing request")
            .map(|l| l["span"]["path"].as_str().unwrap_or_default().to_owned())
            .collect();
        paths.sort();
        logged.push(paths);
    }
    assert_eq!(logged[0], ["/"], "by default only the page is logged");
    assert_eq!(logged[1], ["/", "/healthz", "/readyz"], "with debug on, the probes too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_then_exits_cleanly() {
    let c7 = start_fake().await;
    let api = c7.api_url();
    let mut server = ChildServer::start(&[("COMMERCE7_API_URL", &api), ("COMMERCE7_TIMEOUT", "10s")]).await;
    c7.set_app_url(&server.base);
    assert_eq!(c7.send_install(TENANT).await.unwrap().as_u16(), 200);
    c7.set_latency(Duration::from_millis(1500));

    let url = format!("{}/app?tenantId={TENANT}&account={OWNER_TOKEN}", server.base);
    let in_flight = tokio::spawn(async move {
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap().get(url).send().await
    });
    // Wait until the request is inside the app (Commerce7 has been asked), then stop the server.
    let deadline = Instant::now() + Duration::from_secs(10);
    while c7.user_calls() == 0 {
        assert!(Instant::now() < deadline, "the sign-in never reached Commerce7");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.terminate();
    let response = in_flight.await.unwrap().expect("the in-flight request is answered");
    assert_eq!(response.status(), StatusCode::OK, "signed in despite the shutdown");
    let status = server.exit_status().await;
    assert!(status.success(), "exit status {status:?}");
}
