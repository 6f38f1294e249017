//! The foundation: the app starts on both databases, migrations apply, operational endpoints
//! answer, pages render, and bad settings stop start-up with a clear message.

mod common;

use common::{FreshDatabase, TestApp, TestDb};
use reqwest::StatusCode;

async fn table_names(app: &TestApp) -> Vec<String> {
    match &app.db {
        libero::server::db::Db::Sqlite(pool) => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' AND name NOT LIKE 'sqlite%' ORDER BY name",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        libero::server::db::Db::Postgres(pool) => sqlx::query_scalar(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE '\\_%' ORDER BY tablename",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    }
}

on_both_databases!(migrations_create_clients_and_app_sessions, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    assert_eq!(table_names(&app).await, vec!["app_sessions".to_owned(), "clients".to_owned()]);
    app.stop().await;
});

on_both_databases!(app_sessions_has_the_five_documented_indexes, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    let mut indexes: Vec<String> = match &app.db {
        libero::server::db::Db::Sqlite(pool) => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'app_sessions' AND name LIKE 'app_sessions_%_idx'",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
        libero::server::db::Db::Postgres(pool) => sqlx::query_scalar(
            "SELECT indexname::text FROM pg_indexes WHERE tablename = 'app_sessions' AND indexname LIKE 'app_sessions_%_idx'",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    };
    indexes.sort();
    assert_eq!(
        indexes,
        [
            "app_sessions_client_id_idx",
            "app_sessions_expires_at_idx",
            "app_sessions_handoff_hash_idx",
            "app_sessions_last_activity_at_idx",
            "app_sessions_user_id_idx"
        ]
    );
    // The handoff index is unique (a code opens one row) and partial (most rows hold no code).
    let definition: String = match &app.db {
        libero::server::db::Db::Sqlite(pool) => {
            sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE name = 'app_sessions_handoff_hash_idx'")
                .fetch_one(pool)
                .await
                .unwrap()
        }
        libero::server::db::Db::Postgres(pool) => {
            sqlx::query_scalar("SELECT indexdef FROM pg_indexes WHERE indexname = 'app_sessions_handoff_hash_idx'")
                .fetch_one(pool)
                .await
                .unwrap()
        }
    };
    let definition = definition.to_ascii_uppercase();
    assert!(definition.starts_with("CREATE UNIQUE INDEX"), "{definition}");
    assert!(definition.contains("(HANDOFF_HASH)") && definition.contains("WHERE"), "{definition}");
    assert!(definition.contains("HANDOFF_HASH IS NOT NULL"), "{definition}");
    app.stop().await;
});

on_both_databases!(migrations_are_idempotent_when_run_again, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    app.db.migrate().await.expect("a second run applies nothing and succeeds");
    app.stop().await;
});

on_both_databases!(readyz_answers_200_when_the_database_is_reachable, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    app.stop().await;
});

on_both_databases!(healthz_answers_200, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    app.stop().await;
});

on_both_databases!(landing_page_is_server_rendered_with_hydration_scripts, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    let response = app.get("/").await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("Libero for Commerce7"), "landing content is rendered on the server");
    assert!(html.contains("/pkg/libero.js"), "the hydration script is referenced");
    assert!(html.contains("Open Libero from your Commerce7 admin"));
    app.stop().await;
});

on_both_databases!(unknown_paths_get_the_404_page, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    let response = app.get("/no/such/page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert!(response.text().await.unwrap().contains("Page not found"));
    app.stop().await;
});

on_both_databases!(responses_carry_frame_ancestors_and_referrer_policy, |kind| async move {
    let Some(app) = TestApp::spawn_with(kind, &[("FRAME_ANCESTORS", "http://localhost:4000".to_owned())]).await else {
        return;
    };
    let response = app.get("/").await;
    let headers = response.headers();
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.ends_with("; frame-ancestors 'self' http://localhost:4000"), "{policy}");
    assert_eq!(headers["referrer-policy"], "same-origin");
    assert!(headers.contains_key("x-request-id"), "every response carries its request id");
    app.stop().await;
});

/// Dropping the database under a running app makes `/readyz` answer 503 instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_when_the_database_is_gone() {
    let Some(app) = TestApp::spawn(TestDb::Postgres).await else {
        return;
    };
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    let name = app.database.url.rsplit('/').next().unwrap().to_owned();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&common::postgres_admin_url()).await.unwrap();
    sqlx::Executor::execute(&mut admin, format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#).as_str()).await.unwrap();
    let response = app.get("/readyz").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK, "liveness does not depend on the database");
    app.stop().await;
}

fn run_binary(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_libero"));
    command.args(args).current_dir(dir.path()).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the binary runs")
}

#[test]
fn missing_session_secret_stops_startup_with_the_message() {
    let output = run_binary(&[], &[("LEPTOS_OUTPUT_NAME", "libero"), ("LEPTOS_SITE_ADDR", "127.0.0.1:0")]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Missing SESSION_SECRET"), "{stderr}");
    assert!(stderr.contains("libero secret"), "says how to make one: {stderr}");
}

#[test]
fn short_session_secret_stops_startup_with_the_message() {
    let output = run_binary(
        &["serve"],
        &[("SESSION_SECRET", "short"), ("LEPTOS_OUTPUT_NAME", "libero"), ("LEPTOS_SITE_ADDR", "127.0.0.1:0")],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SESSION_SECRET must be at least 32 characters"), "{stderr}");
}

#[test]
fn a_malformed_dotenv_stops_startup_instead_of_being_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "SESSION_SECRET=0123456789abcdef0123456789abcdef\nFRAME_ANCESTORS=a b\n")
        .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_libero"))
        .current_dir(dir.path())
        .env_clear()
        .env("LEPTOS_OUTPUT_NAME", "libero")
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot read .env"), "{stderr}");
}

#[test]
fn secret_command_prints_a_usable_secret() {
    let output = run_binary(&["secret"], &[]);
    assert!(output.status.success());
    let secret = String::from_utf8(output.stdout).unwrap();
    assert_eq!(secret.trim().len(), 64);
}

#[tokio::test]
async fn migrate_command_creates_the_sqlite_database_file() {
    let database = FreshDatabase::create(TestDb::Sqlite).await.unwrap();
    let output = run_binary(&["migrate"], &[("DATABASE_URL", &database.url)]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stdout).contains("Migrations applied"));
    let path = database.url.trim_start_matches("sqlite://");
    assert!(std::path::Path::new(path).exists());
}

#[test]
fn a_failing_database_stops_startup_with_the_error() {
    let output = run_binary(
        &["serve"],
        &[
            ("SESSION_SECRET", common::TEST_SECRET),
            ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing"),
            ("LEPTOS_OUTPUT_NAME", "libero"),
            ("LEPTOS_SITE_ADDR", "127.0.0.1:0"),
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot connect to the database"), "{stderr}");
}

#[test]
fn production_refuses_to_start_with_cookie_secure_false() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("app.db").display());
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_libero"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SESSION_SECRET", common::TEST_SECRET)
        .env("DATABASE_URL", &url)
        .env("COMMERCE7_USER", common::CALLBACK_USER)
        .env("COMMERCE7_PASSWORD", common::CALLBACK_PASSWORD)
        .env("COOKIE_SECURE", "false")
        .env("LEPTOS_ENV", "PROD")
        .env("LEPTOS_OUTPUT_NAME", "libero")
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A server that starts anyway must fail this test, not hang it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("libero started in production with COOKIE_SECURE=false");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    let message = stderr.lines().find(|l| l.contains("COOKIE_SECURE")).unwrap_or_else(|| panic!("{stderr}"));
    assert!(message.contains("LEPTOS_ENV=PROD") && message.contains("set COOKIE_SECURE=true"), "{message}");
    assert!(!dir.path().join("app.db").exists(), "refused before touching the database");
}

// Building a router generates Leptos' route list, which sets a process-global flag that parks any
// `Resource` first polled meanwhile (leptos-rs/leptos#4773). The app generates it once per process,
// so a router built beside a serving app (as every integration test does) must never stall a page.
on_both_databases!(building_another_router_while_serving_never_stalls_the_dashboard, |kind| async move {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let stop = Arc::new(AtomicBool::new(false));
    let builder = {
        let (state, stop, runtime) = (app.state.clone(), stop.clone(), tokio::runtime::Handle::current());
        std::thread::spawn(move || {
            let _runtime = runtime.enter();
            let mut built = 0_u32;
            while !stop.load(Ordering::Relaxed) {
                drop(libero::server::startup::router(state.clone()));
                built += 1;
            }
            built
        })
    };
    for attempt in 0..40 {
        let page = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            let response = app.get("/app").await;
            (response.status(), response.text().await.unwrap())
        })
        .await;
        let Ok((status, html)) = page else {
            stop.store(true, Ordering::Relaxed);
            panic!("dashboard {attempt} never answered while another router was being built");
        };
        assert_eq!(status, StatusCode::OK, "dashboard {attempt}");
        assert!(html.contains("Welcome, Dana Owner"), "dashboard {attempt} rendered its session");
    }
    stop.store(true, Ordering::Relaxed);
    assert!(builder.join().unwrap() > 0, "routers were being built meanwhile");
    app.stop().await;
});
