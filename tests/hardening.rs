//! Security hardening of issue 7 (items 1, 2, 5, 6, 9, 10, 11), over real HTTP, real processes and
//! the fake Commerce7, on SQLite and PostgreSQL. Each refusal sits next to its positive control:
//! the same request shape that is accepted.

mod common;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use common::{
    CALLBACK_PASSWORD, CALLBACK_USER, OWNER_TOKEN, TENANT, TestApp, TestDb, clears_the_cookie, handoff_code,
    no_session_page, signed_in_page,
};
use libero::server::{db::Db, sessions::cleanup, sessions::hash_token};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};

/// Sam Staff, the demo tenant's second user in the fake Commerce7.
const STAFF_TOKEN: &str = "demo-staff-token";
const DANA: &str = "c7-user-dana";
const SAM: &str = "c7-user-sam";

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

fn cache_control(response: &reqwest::Response) -> &str {
    response.headers().get(header::CACHE_CONTROL).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The dashboard's HTML for the shared client (which must be signed in).
async fn dashboard(app: &TestApp) -> String {
    let response = app.get("/app").await;
    assert_eq!(response.status(), StatusCode::OK, "the dashboard is shown");
    response.text().await.unwrap()
}

/// The page a sign-in answers with (checked by [`signed_in_page`]: the account token nowhere).
async fn dashboard_after(signed_in: reqwest::Response) -> String {
    signed_in_page(signed_in).await.html
}

/// `GET /app?tenantId=…&account=…` as a given fetch destination (`Sec-Fetch-Dest`).
async fn sign_in_as(app: &TestApp, token: &str, dest: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/app?tenantId={TENANT}&account={token}")))
        .header("sec-fetch-dest", dest)
        .send()
        .await
        .unwrap()
}

/// Two hours unused, four hours left: idle under the default 1 h timeout, not expired.
async fn insert_idle(app: &TestApp, count: i64) {
    app.insert_sessions("idle", count, Utc::now() - TimeDelta::hours(2), Utc::now() + TimeDelta::hours(4)).await;
}

/// Expired an hour ago (and unused for two).
async fn insert_expired(app: &TestApp, count: i64) {
    app.insert_sessions("expired", count, Utc::now() - TimeDelta::hours(2), Utc::now() - TimeDelta::hours(1)).await;
}

/// Session row ids starting with `prefix`.
async fn ids_starting_with(app: &TestApp, prefix: &str) -> usize {
    app.session_rows().await.iter().filter(|r| r.id.starts_with(prefix)).count()
}

async fn client_generation(app: &TestApp) -> i64 {
    match &app.db {
        Db::Sqlite(pool) => sqlx::query_scalar("SELECT install_generation FROM clients WHERE tenant_id = ?1")
            .bind(TENANT)
            .fetch_one(pool)
            .await
            .unwrap(),
        Db::Postgres(pool) => sqlx::query_scalar("SELECT install_generation FROM clients WHERE tenant_id = $1")
            .bind(TENANT)
            .fetch_one(pool)
            .await
            .unwrap(),
    }
}

// --- 1. The right merchant on every sign-in ---------------------------------------------------------

on_both_databases!(the_same_account_token_again_takes_the_fast_path_without_commerce7, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let row = app.only_session().await;
    assert_eq!(row.account_token_hash.as_deref(), Some(hash_token(OWNER_TOKEN).as_str()), "the token's SHA-256");
    assert_ne!(row.account_token_hash.as_deref(), Some(OWNER_TOKEN), "never the token itself");

    let response = app.sign_in(TENANT, OWNER_TOKEN).await;
    assert!(set_cookies(&response).is_empty(), "the fast path issues no new cookie");
    assert!(dashboard_after(response).await.contains("Welcome, Dana Owner"));
    assert_eq!(app.c7.user_calls(), 1, "only the first sign-in asked Commerce7");
    assert_eq!(app.only_session().await.id, row.id, "the same session");
    app.stop().await;
});

on_both_databases!(dana_then_sam_in_the_same_browser_gives_sams_dashboard_and_ends_danas_session, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    assert!(dashboard(&app).await.contains("Welcome, Dana Owner"), "positive control: Dana is signed in");
    let danas = app.only_session().await;

    let response = app.sign_in(TENANT, STAFF_TOKEN).await;
    let html = dashboard_after(response).await;
    assert_eq!(app.c7.user_calls(), 2, "Sam's token was verified with Commerce7");

    assert!(html.contains("Welcome, Sam Staff"), "the dashboard is Sam's");
    assert!(!html.contains("Welcome, Dana Owner"));
    let sams = app.only_session().await;
    assert_eq!(sams.user_id, SAM);
    assert_ne!(sams.id, danas.id, "a new session id (fixation defence)");
    assert!(app.session_rows().await.iter().all(|r| r.user_id != DANA), "Dana's row is gone");
    assert!(dashboard(&app).await.contains("Welcome, Sam Staff"), "the cookie is Sam's too");
    app.stop().await;
});

on_both_databases!(a_junk_account_with_a_valid_cookie_gets_the_401_page_and_never_the_dashboard, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let response = app.sign_in(TENANT, "junk").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.c7.user_calls(), 2, "exactly one Commerce7 call for the junk token");
    let cleared = set_cookies(&response);
    let html = response.text().await.unwrap();
    assert!(html.contains("Commerce7 didn"), "the 401 page");
    assert!(!html.contains("Dana Owner"), "nothing of the signed-in merchant");

    // The previous session is ended (documented: safer on a shared computer).
    assert!(cleared.iter().any(|c| c.starts_with("__libero_session=;") && c.contains("Max-Age=0")), "{cleared:?}");
    assert!(app.session_rows().await.is_empty(), "Dana's row is deleted");
    // No dashboard afterwards either: the browser dropped the cookie.
    let after = no_session_page(app.get("/app").await, "missing").await;
    assert!(!after.contains("Dana Owner"));
    app.stop().await;
});

on_both_databases!(a_session_without_a_recorded_token_is_verified_with_commerce7_once_more, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    // A session from before the token was recorded (the migration leaves these NULL).
    match &app.db {
        Db::Sqlite(pool) => {
            sqlx::query("UPDATE app_sessions SET account_token_hash = NULL").execute(pool).await.map(drop)
        }
        Db::Postgres(pool) => {
            sqlx::query("UPDATE app_sessions SET account_token_hash = NULL").execute(pool).await.map(drop)
        }
    }
    .unwrap();
    let old = app.only_session().await;
    assert_eq!(app.get("/app").await.status(), StatusCode::OK, "still a valid session");

    assert_eq!(app.sign_in(TENANT, OWNER_TOKEN).await.status(), StatusCode::OK);
    assert_eq!(app.c7.user_calls(), 2, "no fast path without a recorded token");
    // Commerce7 vouched for the same user: the session goes on, bound to the token now.
    let new = app.only_session().await;
    assert_eq!(new.id, old.id, "the same user keeps the session");
    assert_eq!(new.account_token_hash, Some(hash_token(OWNER_TOKEN)));
    app.stop().await;
});

// --- 2. Install generation ------------------------------------------------------------------------

on_both_databases!(a_repeated_install_callback_keeps_sessions_valid, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    assert_eq!(app.get("/app").await.status(), StatusCode::OK, "positive control: signed in");
    app.install(TENANT).await;
    app.install(TENANT).await;
    assert_eq!(app.get("/app").await.status(), StatusCode::OK, "still signed in after two repeated callbacks");
    assert_eq!(client_generation(&app).await, 1, "an installed tenant stays on its generation");
    assert_eq!(app.only_session().await.install_generation, 1);
    app.stop().await;
});

on_both_databases!(uninstall_and_reinstall_end_old_sessions_and_a_new_sign_in_works, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let old_cookie = app.session_cookie().unwrap();
    // Uninstalled by hand (an operator's UPDATE, not the callback): the rows go with the change.
    app.mark_uninstalled(TENANT).await;
    assert!(app.session_rows().await.is_empty(), "the database ends the sessions of an uninstalled client");
    app.install(TENANT).await;
    assert_eq!(client_generation(&app).await, 2, "an install after an uninstall is a new generation");
    let replay = TestApp::bare_client().get(app.url("/app")).header(header::COOKIE, &old_cookie).send().await.unwrap();
    assert!(clears_the_cookie(&replay));
    no_session_page(replay, "ended").await; // the old generation's session is dead

    // The normal path too: the uninstall callback, then a reinstall.
    handoff_code(app.sign_in(TENANT, OWNER_TOKEN).await).await;
    assert_eq!(app.only_session().await.install_generation, 2, "copied from the client at sign-in");
    assert_eq!(app.get("/app").await.status(), StatusCode::OK, "positive control: the new session works");
    let cookie = app.session_cookie().unwrap();
    assert_eq!(app.c7.send_uninstall(TENANT).await.unwrap().as_u16(), 200);
    app.install(TENANT).await;
    assert_eq!(client_generation(&app).await, 3);
    let replay = TestApp::bare_client().get(app.url("/app")).header(header::COOKIE, &cookie).send().await.unwrap();
    no_session_page(replay, "ended").await;
    let signed_in = app.sign_in(TENANT, OWNER_TOKEN).await;
    assert!(dashboard_after(signed_in).await.contains("Welcome, Dana Owner"), "signing in again works");
    assert_eq!(app.get("/app").await.status(), StatusCode::OK, "and so does the new cookie");
    app.stop().await;
});

/// Writes a session row of the demo tenant's client straight into the table, claiming install
/// `generation` and tenant id `tenant` — what a sign-in that read the client before an uninstall
/// or a reinstall would write after it.
async fn write_session_row(app: &TestApp, id: &str, generation: i64, tenant: Option<&str>) -> Result<u64, sqlx::Error> {
    let client_id = app.client_id(TENANT).await.expect("tenant known");
    let now = Utc::now();
    // The same row on either database; only the placeholders (and PostgreSQL's uuid) differ.
    macro_rules! insert {
        ($pool:expr, $sql:literal) => {
            sqlx::query($sql)
                .bind(id)
                .bind(&client_id)
                .bind(tenant)
                .bind(now)
                .bind(now + TimeDelta::hours(1))
                .bind(generation)
                .execute($pool)
                .await
                .map(|done| done.rows_affected())
        };
    }
    match &app.db {
        Db::Sqlite(pool) => insert!(
            pool,
            "INSERT INTO app_sessions (id, client_id, tenant_id, user_id, theme, data, last_activity_at, expires_at,
                                       created_at, updated_at, install_generation)
             VALUES (?1, ?2, ?3, 'c7-user-dana', 'light', '{}', ?4, ?5, ?4, ?4, ?6)"
        ),
        Db::Postgres(pool) => insert!(
            pool,
            "INSERT INTO app_sessions (id, client_id, tenant_id, user_id, theme, data, last_activity_at, expires_at,
                                       created_at, updated_at, install_generation)
             VALUES ($1, $2::uuid, $3, 'c7-user-dana', 'light', '{}', $4, $5, $4, $4, $6)"
        ),
    }
}

on_both_databases!(the_database_refuses_a_session_row_for_an_install_that_has_ended, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    assert_eq!(write_session_row(&app, "current", 1, Some(TENANT)).await.unwrap(), 1, "positive control");
    // Without a tenant id (a release from before it, during a rolling deploy): PostgreSQL's
    // trigger fills it in; SQLite's cannot change the row and refuses it.
    match (&app.db, write_session_row(&app, "no-tenant", 1, None).await) {
        (Db::Postgres(pool), Ok(1)) => {
            let tenant: String = sqlx::query_scalar("SELECT tenant_id FROM app_sessions WHERE id = 'no-tenant'")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(tenant, TENANT);
        }
        (Db::Sqlite(_), Err(err)) => assert!(libero::server::sessions::store::is_not_installed(&err), "{err}"),
        (_, other) => panic!("unexpected: {other:?}"),
    }
    for (id, generation, tenant) in
        [("old-generation", 0, Some(TENANT)), ("next-generation", 2, Some(TENANT)), ("other-tenant", 1, Some("other"))]
    {
        let err = write_session_row(&app, id, generation, tenant).await.expect_err(id);
        assert!(libero::server::sessions::store::is_not_installed(&err), "{id}: {err}");
    }
    // Uninstalled: not even its current generation.
    app.mark_uninstalled(TENANT).await;
    let err = write_session_row(&app, "after-uninstall", 1, Some(TENANT)).await.expect_err("uninstalled");
    assert!(libero::server::sessions::store::is_not_installed(&err), "{err}");
    assert!(app.session_rows().await.is_empty(), "and the rows it had are gone");
    // Reinstalled: the new generation only.
    app.install(TENANT).await;
    let err = write_session_row(&app, "stale", 1, Some(TENANT)).await.expect_err("previous generation");
    assert!(libero::server::sessions::store::is_not_installed(&err), "{err}");
    assert_eq!(write_session_row(&app, "fresh", 2, Some(TENANT)).await.unwrap(), 1);
    app.stop().await;
});

on_both_databases!(a_sign_in_that_an_uninstall_overtakes_gets_the_not_installed_page, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    // Commerce7 answers slowly (within the tests' 2 s COMMERCE7_TIMEOUT): the sign-in reads the
    // client (installed), then waits for it.
    app.c7.set_latency(Duration::from_millis(1500));
    let control = app.sign_in(TENANT, OWNER_TOKEN).await;
    assert_eq!(control.status(), StatusCode::OK, "positive control: a slow sign-in alone succeeds");
    app.c7.send_uninstall(TENANT).await.unwrap();
    app.install(TENANT).await;
    assert!(app.session_rows().await.is_empty());

    let verifications = app.c7.user_calls();
    let racing = app.sign_in(TENANT, OWNER_TOKEN);
    // The uninstall once the sign-in has read the client and is waiting for Commerce7 (which
    // counts a call as it arrives, before its latency; 10 s at most, a hang guard).
    let uninstall = async {
        for _ in 0..1000 {
            if app.c7.user_calls() > verifications {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        app.c7.send_uninstall(TENANT).await.unwrap()
    };
    let (response, uninstalled) = tokio::join!(racing, uninstall);
    assert_eq!(uninstalled.as_u16(), 200);
    // The sign-in found the tenant installed and asked Commerce7: the refusal came from the
    // database, when the session was written after the uninstall.
    assert_eq!(app.c7.user_calls(), verifications + 1, "the sign-in reached Commerce7");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("isn't installed for this winery"));
    assert!(app.session_rows().await.is_empty(), "no session outlives the uninstall");
    app.stop().await;
});

// --- 5. Idle-dead rows ------------------------------------------------------------------------------

on_both_databases!(cleanup_deletes_idle_rows_as_well_as_expired_ones, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    insert_idle(&app, 5).await;
    insert_expired(&app, 3).await;
    // Positive control: with the idle rule off, only the expired rows go.
    assert_eq!(cleanup::delete_expired(&app.db, 2, None).await.unwrap(), 3);
    assert_eq!(ids_starting_with(&app, "idle").await, 5);
    assert_eq!(cleanup::delete_expired(&app.db, 2, Some(Duration::from_secs(3 * 3600))).await.unwrap(), 0);
    // With the default timeout the idle rows go too, in batches; the live session stays.
    assert_eq!(cleanup::delete_expired(&app.db, 2, Some(Duration::from_secs(3600))).await.unwrap(), 5);
    assert_eq!(app.only_session().await.user_id, DANA);
    assert_eq!(app.get("/app").await.status(), StatusCode::OK);
    app.stop().await;
});

on_both_databases!(the_servers_cleanup_task_deletes_idle_rows, |kind| async move {
    let settings = [("SESSION_CLEANUP_INTERVAL", "1s".to_owned())];
    let Some(app) = TestApp::signed_in_with(kind, &settings).await else { return };
    insert_idle(&app, 20).await;
    let mut left = usize::MAX;
    // Up to 30 s, a hang guard: the task runs every second.
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        left = app.session_rows().await.len();
        if left == 1 {
            break;
        }
    }
    assert_eq!(left, 1, "idle rows removed by the server itself, the live one kept");
    app.stop().await;
});

/// Runs the real binary from an empty directory, with `env` and optionally a `.env` file.
fn libero(args: &[&str], database_url: &str, env: &[(&str, &str)], dotenv: Option<&str>) -> std::process::Output {
    let output = common::child::run_libero(args, database_url, env, dotenv);
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    output
}

on_both_databases!(the_cleanup_command_deletes_idle_rows_with_the_configured_idle_timeout, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    insert_idle(&app, 4).await;
    let url = app.database.url.clone();
    let stdout = |output: std::process::Output| String::from_utf8_lossy(&output.stdout).into_owned();

    // Positive controls: with the idle rule off, or a timeout longer than their idleness, the
    // idle rows stay — from the environment and from `.env` alike.
    let off = libero(&["sessions", "cleanup"], &url, &[("SESSION_IDLE_TIMEOUT", "0")], None);
    assert_eq!(stdout(off), "Session cleanup: deleted 0 expired sessions\n");
    let longer = libero(&["sessions", "cleanup"], &url, &[], Some("SESSION_IDLE_TIMEOUT=3h\n"));
    assert_eq!(stdout(longer), "Session cleanup: deleted 0 expired sessions\n");
    assert_eq!(ids_starting_with(&app, "idle").await, 4);

    // A value that is no duration stops the command, naming the setting, before it deletes anything.
    let bad = common::child::run_libero(&["sessions", "cleanup"], &url, &[("SESSION_IDLE_TIMEOUT", "soon")], None);
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "{stderr}");
    assert!(stderr.contains("SESSION_IDLE_TIMEOUT has an invalid value \"soon\""), "{stderr}");
    assert_eq!(ids_starting_with(&app, "idle").await, 4);

    // The default (1 h), as `serve` has it.
    let default = libero(&["sessions", "cleanup"], &url, &[], None);
    assert_eq!(stdout(default), "Session cleanup: deleted 4 expired sessions\n");
    assert_eq!(app.only_session().await.user_id, DANA, "the live session stays");
    app.stop().await;
});

on_both_databases!(the_stats_command_does_not_count_idle_rows_as_active, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    insert_idle(&app, 2).await;
    insert_expired(&app, 1).await;
    let stats = |env: &[(&str, &str)]| -> Value {
        let output = libero(&["sessions", "stats", "--json"], &app.database.url, env, None);
        serde_json::from_slice(&output.stdout).expect("JSON")
    };
    let by_default = stats(&[]);
    assert_eq!(by_default["total_sessions"], 4);
    assert_eq!(by_default["active_sessions"], 1, "only the live session is active");
    assert_eq!(by_default["idle_sessions"], 2);
    assert_eq!(by_default["expired_sessions"], 1);
    assert_eq!(by_default["active_per_client"][0]["active_sessions"], 1);

    // Positive control: with the idle rule off, the idle rows are active again.
    let off = stats(&[("SESSION_IDLE_TIMEOUT", "0")]);
    assert_eq!(off["active_sessions"], 3);
    assert_eq!(off["idle_sessions"], 0);
    assert_eq!(off["active_per_client"][0]["active_sessions"], 3);

    let text = libero(&["sessions", "stats"], &app.database.url, &[], None);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("active_sessions:  1\n") && text.contains("idle_sessions:    2\n"), "{text}");
    app.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_cleanup_function_deletes_idle_rows_with_an_optional_timeout() {
    let Some(app) = TestApp::signed_in(TestDb::Postgres).await else { return };
    let Db::Postgres(pool) = &app.db else { unreachable!() };
    let cleanup = |sql: &'static str| async move { sqlx::query_scalar::<_, i32>(sql).fetch_one(pool).await.unwrap() };
    insert_idle(&app, 6).await;
    insert_expired(&app, 2).await;

    // Positive controls: a longer timeout, 0 or NULL keep the idle rows; expired rows always go.
    assert_eq!(cleanup("SELECT cleanup_expired_app_sessions(INTERVAL '3 hours')").await, 2);
    assert_eq!(cleanup("SELECT cleanup_expired_app_sessions(INTERVAL '0')").await, 0);
    assert_eq!(cleanup("SELECT cleanup_expired_app_sessions(NULL)").await, 0);
    assert_eq!(ids_starting_with(&app, "idle").await, 6);
    // The zero-argument call still works, with the 1-hour default.
    assert_eq!(cleanup("SELECT cleanup_expired_app_sessions()").await, 6);
    assert_eq!(app.only_session().await.user_id, DANA);
    app.stop().await;
}

// --- 6. Caching -------------------------------------------------------------------------------------

on_both_databases!(signed_in_pages_and_every_server_function_answer_are_no_store, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    for path in ["/app", "/settings"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(cache_control(&response), "no-store", "{path}");
    }
    assert_eq!(cache_control(&app.get("/settings/").await), "no-store", "a guarded path, whatever its answer");
    let ok = app.post_same_origin("/api/session_info").send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    assert_eq!(cache_control(&ok), "no-store", "a server function's success");
    let settings = app.post_same_origin("/api/get_settings").send().await.unwrap();
    assert_eq!(settings.status(), StatusCode::OK);
    assert_eq!(cache_control(&settings), "no-store");
    let bad = app
        .post_same_origin("/api/save_settings")
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"settings\": 42")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(cache_control(&bad), "no-store", "a server function's error");
    let anonymous = TestApp::bare_client()
        .post(app.url("/api/session_info"))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(cache_control(&anonymous), "no-store");

    // Positive control: the public landing page is not swept up by the rule.
    let public = app.get("/").await;
    assert_eq!(public.status(), StatusCode::OK);
    assert_ne!(cache_control(&public), "no-store", "public pages stay cacheable");
    app.stop().await;
});

// --- 9. Sign-in order and origin ------------------------------------------------------------------

on_both_databases!(junk_and_uninstalled_tenants_never_reach_commerce7, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    for tenant in ["no-such-winery", TENANT] {
        let response = app.sign_in(tenant, OWNER_TOKEN).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{tenant}");
        assert!(response.text().await.unwrap().contains("isn't installed"), "{tenant}");
    }
    assert_eq!(app.c7.user_calls(), 0, "no Commerce7 call for tenants that are not installed");

    // Uninstalled again: the same.
    app.install(TENANT).await;
    assert_eq!(app.c7.send_uninstall(TENANT).await.unwrap().as_u16(), 200);
    assert_eq!(app.sign_in(TENANT, OWNER_TOKEN).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.c7.user_calls(), 0);

    // Positive control: once installed, the same link is verified with Commerce7 and signs in.
    app.install(TENANT).await;
    handoff_code(app.sign_in(TENANT, OWNER_TOKEN).await).await;
    assert_eq!(app.c7.user_calls(), 1);
    app.stop().await;
});

on_both_databases!(a_sign_in_that_is_not_a_navigation_is_refused_and_changes_nothing, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let danas = app.only_session().await;
    for dest in ["image", "empty", "script"] {
        let response = sign_in_as(&app, STAFF_TOKEN, dest).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{dest}");
        assert!(set_cookies(&response).is_empty(), "{dest}: the cookie is left alone");
    }
    // Not even a sign-out: a junk token from an <img> does not end the session.
    assert_eq!(sign_in_as(&app, "junk", "image").await.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.c7.user_calls(), 1, "none of them reached Commerce7");
    let row = app.only_session().await;
    assert_eq!((row.id.as_str(), row.user_id.as_str()), (danas.id.as_str(), DANA), "Dana's session, untouched");
    assert!(dashboard(&app).await.contains("Welcome, Dana Owner"));

    // Nor can it sign in a browser that has no session.
    let fetched = TestApp::bare_client()
        .get(app.url(&format!("/app?tenantId={TENANT}&account={OWNER_TOKEN}")))
        .header("sec-fetch-dest", "empty")
        .send()
        .await
        .unwrap();
    assert_eq!(fetched.status(), StatusCode::BAD_REQUEST);
    assert!(set_cookies(&fetched).is_empty());
    assert_eq!(app.session_rows().await.len(), 1);

    // Positive controls: the iframe and a top-level document navigation sign in.
    let framed = sign_in_as(&app, STAFF_TOKEN, "iframe").await;
    assert!(dashboard_after(framed).await.contains("Welcome, Sam Staff"));
    let document = sign_in_as(&app, OWNER_TOKEN, "document").await;
    assert!(dashboard_after(document).await.contains("Welcome, Dana Owner"));
    app.stop().await;
});

// --- 10. Supabase: the cleanup function's privileges --------------------------------------------

/// `SELECT cleanup_expired_app_sessions()` run as `role` on `conn`.
async fn cleanup_as(conn: &mut sqlx::PgConnection, role: &str) -> Result<i32, sqlx::Error> {
    sqlx::query(&format!(r#"SET ROLE "{role}""#)).execute(&mut *conn).await.unwrap();
    let result = sqlx::query_scalar::<_, i32>("SELECT cleanup_expired_app_sessions()").fetch_one(&mut *conn).await;
    sqlx::query("RESET ROLE").execute(&mut *conn).await.unwrap();
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cleanup_function_is_executable_only_by_its_owner_and_roles_granted_it() {
    use sqlx::Connection;
    let Some(app) = TestApp::signed_in(TestDb::Postgres).await else { return };
    let Db::Postgres(pool) = &app.db else { unreachable!() };
    const FUNCTION: &str = "cleanup_expired_app_sessions(interval)";

    let public: bool = sqlx::query_scalar("SELECT has_function_privilege('public', $1, 'EXECUTE')")
        .bind(FUNCTION)
        .fetch_one(pool)
        .await
        .unwrap();
    assert!(!public, "PUBLIC may not execute it");
    let config: Vec<String> =
        sqlx::query_scalar("SELECT unnest(proconfig) FROM pg_proc WHERE proname = 'cleanup_expired_app_sessions'")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(config, ["search_path=pg_catalog, pg_temp"], "its search_path is pinned to the catalog (migration 008)");

    // Roles are global to the server: a unique name, dropped at the end.
    let role = format!("libero_cron_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&app.database.url).await.unwrap();
    sqlx::query(&format!(r#"CREATE ROLE "{role}" NOLOGIN"#)).execute(&mut conn).await.unwrap();

    insert_expired(&app, 3).await;
    let refused = cleanup_as(&mut conn, &role).await.expect_err("a fresh role without a grant cannot execute it");
    assert!(refused.to_string().contains("permission denied"), "{refused}");
    assert_eq!(ids_starting_with(&app, "expired").await, 3, "nothing deleted");

    // Positive controls: the owner can; and after the GRANT of docs/operations.md, so can the
    // role — EXECUTE alone is enough (the function runs with its owner's rights).
    let by_owner: i32 = sqlx::query_scalar("SELECT cleanup_expired_app_sessions()").fetch_one(pool).await.unwrap();
    assert_eq!(by_owner, 3);
    insert_expired(&app, 2).await;
    sqlx::query(&format!(r#"GRANT EXECUTE ON FUNCTION {FUNCTION} TO "{role}""#)).execute(&mut conn).await.unwrap();
    assert_eq!(cleanup_as(&mut conn, &role).await.expect("granted"), 2);
    assert_eq!(app.only_session().await.user_id, DANA);

    sqlx::query(&format!(r#"REVOKE EXECUTE ON FUNCTION {FUNCTION} FROM "{role}""#)).execute(&mut conn).await.unwrap();
    sqlx::query(&format!(r#"DROP ROLE "{role}""#)).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    app.stop().await;
}

// --- 11. Small ones --------------------------------------------------------------------------------

on_both_databases!(callback_basic_auth_accepts_the_scheme_in_any_case, |kind| async move {
    use base64::Engine;
    let Some(app) = TestApp::spawn(kind).await else { return };
    let send = |scheme: &'static str, password: &'static str| {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{CALLBACK_USER}:{password}"));
        TestApp::bare_client()
            .post(app.url("/install"))
            .header(header::AUTHORIZATION, format!("{scheme} {encoded}"))
            .json(&json!({ "tenantId": TENANT }))
            .send()
    };
    for scheme in ["Basic", "basic", "BASIC", "bAsIc"] {
        assert_eq!(send(scheme, CALLBACK_PASSWORD).await.unwrap().status(), StatusCode::OK, "{scheme}");
        assert_eq!(send(scheme, "wrong").await.unwrap().status(), StatusCode::UNAUTHORIZED, "{scheme}, wrong password");
    }
    assert_eq!(send("Bearer", CALLBACK_PASSWORD).await.unwrap().status(), StatusCode::UNAUTHORIZED, "another scheme");
    app.stop().await;
});

on_both_databases!(the_origin_fallback_compares_the_scheme_on_a_plain_http_deployment, |kind| async move {
    // The test apps run with COOKIE_SECURE=false: served over plain http.
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let https_origin = app.base.replacen("http://", "https://", 1);
    let post = |origin: String| app.client.post(app.url("/api/session_info")).header("origin", origin).send();
    assert_eq!(post(https_origin).await.unwrap().status(), StatusCode::FORBIDDEN, "an https page is another origin");
    assert_eq!(post(app.base.clone()).await.unwrap().status(), StatusCode::OK, "positive control: our http origin");
    app.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_origin_fallback_compares_the_scheme_on_a_tls_deployment() {
    let Some(app) = TestApp::spawn_with(TestDb::Sqlite, &[("COOKIE_SECURE", "true".into())]).await else { return };
    app.install(TENANT).await;
    let client = TestApp::bare_client();
    let signed_in = client.get(app.url(&format!("/app?tenantId={TENANT}&account={OWNER_TOKEN}"))).send().await.unwrap();
    let cookie = set_cookies(&signed_in).into_iter().find(|c| c.starts_with("__libero_session=")).unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let host = app.base.trim_start_matches("http://").to_owned();
    let post = |origin: String| {
        client.post(app.url("/api/session_info")).header(header::COOKIE, &cookie).header("origin", origin).send()
    };
    // COOKIE_SECURE=true says the browser sees https (here a TLS-terminating proxy is implied).
    assert_eq!(post(format!("http://{host}")).await.unwrap().status(), StatusCode::FORBIDDEN, "plain http page");
    assert_eq!(post(format!("https://{host}")).await.unwrap().status(), StatusCode::OK, "positive control: https");
    app.stop().await;
}

on_both_databases!(a_session_row_takes_every_timestamp_from_one_reading_of_the_apps_clock, |kind| async move {
    let before = Utc::now();
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let row = app.only_session().await;
    assert!(row.created_at >= before - TimeDelta::seconds(1) && row.created_at <= Utc::now(), "now, by the app");
    assert_eq!(row.last_activity_at, row.created_at);
    assert_eq!(row.updated_at, row.created_at);
    assert_eq!(row.expires_at - row.created_at, TimeDelta::hours(8), "exactly SESSION_TTL after created_at");
    app.stop().await;
});

on_both_databases!(no_timestamp_column_falls_back_to_the_database_clock, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    let columns = ["installed_at", "created_at", "updated_at", "last_activity_at", "expires_at", "uninstalled_at"];
    // (table, column, default) of every timestamp column.
    let defaults: Vec<(String, String, Option<String>)> = match &app.db {
        Db::Sqlite(pool) => {
            let mut found = Vec::new();
            for table in ["clients", "app_sessions"] {
                let rows: Vec<(String, Option<String>)> =
                    sqlx::query_as("SELECT name, dflt_value FROM pragma_table_info(?1)")
                        .bind(table)
                        .fetch_all(pool)
                        .await
                        .unwrap();
                found.extend(rows.into_iter().map(|(name, default)| (table.to_owned(), name, default)));
            }
            found
        }
        Db::Postgres(pool) => sqlx::query_as(
            "SELECT table_name::text, column_name::text, column_default::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND table_name IN ('clients', 'app_sessions')",
        )
        .fetch_all(pool)
        .await
        .unwrap(),
    };
    let timestamps: Vec<_> = defaults.iter().filter(|(_, column, _)| columns.contains(&column.as_str())).collect();
    assert_eq!(timestamps.len(), 8, "positive control: every timestamp column was found: {timestamps:?}");
    for (table, column, default) in timestamps {
        assert_eq!(default.as_deref(), None, "{table}.{column} has a default from the database's clock");
    }
    app.stop().await;
});

#[test]
fn an_operator_command_refuses_a_database_url_that_is_neither_sqlite_nor_postgres() {
    let refused = common::child::run_libero(&["migrate"], "mysql://root:hunter2@db.example/app", &[], None);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{stderr}");
    assert!(stderr.contains("DATABASE_URL has an invalid value \"mysql://root:***@db.example/app\""), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password is never shown: {stderr}");
    let in_query = common::child::run_libero(&["migrate"], "postgress:///app?user=u&password=hunter3", &[], None);
    let stderr = String::from_utf8_lossy(&in_query.stderr);
    assert!(!in_query.status.success() && stderr.contains("password=***"), "{stderr}");
    assert!(!stderr.contains("hunter3"), "nor one in the query: {stderr}");
    // Positive control: the same command takes a SQLite URL.
    let taken = common::child::run_libero(&["migrate"], "sqlite::memory:", &[], None);
    assert!(taken.status.success(), "{}", String::from_utf8_lossy(&taken.stderr));
}
