//! "Your sessions" and the operators' `libero sessions revoke|list`, over real HTTP and real
//! processes, on SQLite and PostgreSQL. Each browser is a client with a cookie jar of its own.

mod common;

use chrono::{DateTime, Utc};
use common::{
    OTHER_TENANT, OTHER_TOKEN, OWNER_TOKEN, TENANT, TestApp, TestDb,
    browser::{Browser, CHROME_ON_WINDOWS, FIREFOX_ON_MACOS, SAFARI_ON_IOS},
};
use libero::server::db::Db;
use reqwest::StatusCode;
use serde_json::Value;

const STAFF_TOKEN: &str = "demo-staff-token";
const DANA: &str = "c7-user-dana";
const SAM: &str = "c7-user-sam";

impl Browser {
    /// `list_my_sessions`, which must succeed.
    async fn sessions(&self) -> Vec<Value> {
        let response = self.post("/api/list_my_sessions").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    /// The handle of this browser's own session (the one marked current).
    async fn own_handle(&self) -> String {
        let sessions = self.sessions().await;
        let current = sessions.iter().find(|s| s["current"] == true).expect("the current session is listed");
        current["handle"].as_str().unwrap().to_owned()
    }

    async fn sign_out(&self, handle: &str) -> reqwest::Response {
        self.post("/api/sign_out_session").form(&[("handle", handle)]).send().await.unwrap()
    }

    async fn sign_out_others(&self) -> reqwest::Response {
        self.post("/api/sign_out_other_sessions").send().await.unwrap()
    }
}

/// A running app with both demo tenants installed.
async fn app_with_tenants(kind: TestDb) -> Option<TestApp> {
    let app = TestApp::spawn(kind).await?;
    app.install(TENANT).await;
    app.install(OTHER_TENANT).await;
    Some(app)
}

/// Inserts a session row for `user_id` of the demo tenant directly (for idle and expired rows).
async fn insert_session(app: &TestApp, id: &str, user_id: &str, last_activity: DateTime<Utc>, expires: DateTime<Utc>) {
    let client_id = app.client_id(TENANT).await.expect("tenant installed");
    match &app.db {
        Db::Sqlite(pool) => {
            sqlx::query(
                "INSERT INTO app_sessions (id, client_id, tenant_id, user_id, theme, data, last_activity_at, expires_at, created_at, updated_at)
                 SELECT ?1, c.id, c.tenant_id, ?3, 'light', '{}', ?4, ?5, ?4, ?4 FROM clients c WHERE c.id = ?2",
            )
            .bind(id)
            .bind(client_id)
            .bind(user_id)
            .bind(last_activity)
            .bind(expires)
            .execute(pool)
            .await
            .unwrap();
        }
        Db::Postgres(pool) => {
            sqlx::query(
                "INSERT INTO app_sessions (id, client_id, tenant_id, user_id, theme, data, last_activity_at, expires_at, created_at, updated_at)
                 SELECT $1, c.id, c.tenant_id, $3, 'light', '{}', $4, $5, $4, $4 FROM clients c WHERE c.id = $2::uuid",
            )
            .bind(id)
            .bind(client_id)
            .bind(user_id)
            .bind(last_activity)
            .bind(expires)
            .execute(pool)
            .await
            .unwrap();
        }
    }
}

fn handles(sessions: &[Value]) -> Vec<String> {
    sessions.iter().map(|s| s["handle"].as_str().unwrap().to_owned()).collect()
}

// --- "Your sessions" --------------------------------------------------------------------------

on_both_databases!(the_list_shows_exactly_my_sessions_with_this_browser_marked, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let chrome = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let firefox = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, OWNER_TOKEN).await;
    // An idle and an expired session of Dana's are not active: not listed.
    let hours_ago = |h| Utc::now() - chrono::TimeDelta::hours(h);
    insert_session(&app, "idle-row", DANA, hours_ago(2), Utc::now() + chrono::TimeDelta::hours(4)).await;
    insert_session(&app, "expired-row", DANA, Utc::now(), hours_ago(1)).await;

    let from_chrome = chrome.sessions().await;
    assert_eq!(from_chrome.len(), 2, "{from_chrome:#?}");
    assert_eq!(from_chrome[0]["current"], true, "this browser comes first");
    assert_eq!(from_chrome[0]["device"], "Chrome on Windows");
    assert_eq!(from_chrome[1]["current"], false);
    assert_eq!(from_chrome[1]["device"], "Firefox on macOS");
    for session in &from_chrome {
        assert_eq!(session["ip_address"], "127.0.0.1");
        assert!(session["signed_in_at"].as_str().unwrap().ends_with('Z'));
        assert!(session["last_active_at"].as_str().unwrap().ends_with('Z'));
    }

    let from_firefox = firefox.sessions().await;
    assert_eq!(from_firefox.len(), 2);
    assert_eq!(from_firefox[0]["device"], "Firefox on macOS", "the other browser sees itself as current");
    assert_eq!(from_firefox[0]["current"], true);
    let mut a = handles(&from_chrome);
    let mut b = handles(&from_firefox);
    a.sort();
    b.sort();
    assert_eq!(a, b, "the same two sessions, under the same handles");
    app.stop().await;
});

on_both_databases!(the_list_never_carries_row_ids_or_tokens, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let chrome = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let firefox = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, OWNER_TOKEN).await;
    let body = chrome.post("/api/list_my_sessions").send().await.unwrap().text().await.unwrap();
    let rows = app.session_rows().await;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert!(!body.contains(&row.id), "row id {} sent to the browser: {body}", row.id);
    }
    for browser in [&chrome, &firefox] {
        assert!(!body.contains(&browser.token()), "a cookie token sent to the browser: {body}");
    }
    for handle in handles(&serde_json::from_str::<Vec<Value>>(&body).unwrap()) {
        assert_eq!(handle.len(), 32);
        assert!(rows.iter().all(|row| !row.id.contains(&handle)), "a handle is not a piece of a row id");
    }
    app.stop().await;
});

on_both_databases!(another_users_and_another_tenants_sessions_are_never_listed, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let dana = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let sam = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, STAFF_TOKEN).await;
    let lee = Browser::signed_in(&app, SAFARI_ON_IOS, OTHER_TENANT, OTHER_TOKEN).await;
    assert_eq!(app.session_rows().await.len(), 3, "all three sessions exist");

    let seen_by_dana = dana.sessions().await;
    assert_eq!(seen_by_dana.len(), 1, "only Dana's own session: {seen_by_dana:#?}");
    assert_eq!(seen_by_dana[0]["device"], "Chrome on Windows");
    assert_eq!(seen_by_dana[0]["current"], true);
    let seen_by_sam = sam.sessions().await;
    assert_eq!(seen_by_sam.len(), 1, "only Sam's own session");
    assert_eq!(seen_by_sam[0]["device"], "Firefox on macOS");
    let seen_by_lee = lee.sessions().await;
    assert_eq!(seen_by_lee.len(), 1, "only Lee's own session");
    assert_eq!(seen_by_lee[0]["device"], "Safari on iOS");
    app.stop().await;
});

on_both_databases!(the_dashboard_shows_your_sessions_with_this_browser_marked, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let chrome = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let _firefox = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, OWNER_TOKEN).await;
    let response = chrome.client.get(format!("{}/app", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    for text in
        ["Your sessions", "Chrome on Windows", "This browser", "Firefox on macOS", "Sign out all other sessions"]
    {
        assert!(html.contains(text), "{text:?} missing from the dashboard");
    }
    // Before hydration the buttons are plain form POSTs to the server functions.
    assert!(html.contains(r#"action="/api/sign_out_session""#), "per-session sign-out form");
    assert!(html.contains(r#"action="/api/sign_out_other_sessions""#), "sign-out-all form");
    app.stop().await;
});

on_both_databases!(the_dashboard_lists_exactly_the_sessions_the_panel_function_lists, |kind| async move {
    // On PostgreSQL the dashboard's guard reads the list in its own statement, the server
    // function with the list's query: the two must agree, row for row.
    let Some(app) = app_with_tenants(kind).await else { return };
    let chrome = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let _firefox = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, OWNER_TOKEN).await;
    let _sam = Browser::signed_in(&app, SAFARI_ON_IOS, TENANT, STAFF_TOKEN).await;
    let _lee = Browser::signed_in(&app, SAFARI_ON_IOS, OTHER_TENANT, OTHER_TOKEN).await;
    let hours_ago = |h| Utc::now() - chrono::TimeDelta::hours(h);
    insert_session(&app, "idle-row", DANA, hours_ago(2), Utc::now() + chrono::TimeDelta::hours(4)).await;
    insert_session(&app, "expired-row", DANA, Utc::now(), hours_ago(1)).await;
    assert_eq!(app.session_rows().await.len(), 6, "every session exists");

    let listed = chrome.sessions().await;
    assert_eq!(listed.len(), 2, "Dana's two active sessions: {listed:#?}");
    let response = chrome.client.get(format!("{}/app", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert_eq!(html.matches(r#"data-testid="session""#).count(), listed.len(), "the same number of rows");
    assert_eq!(html.matches(r#"data-current="true""#).count(), 1, "one of them this browser's");
    for session in &listed {
        assert!(html.contains(session["device"].as_str().unwrap()), "{session} shown");
        if session["current"] == false {
            let form = format!(r#"name="handle" value="{}""#, session["handle"].as_str().unwrap());
            assert!(html.contains(&form), "the other session's sign-out carries its handle: {session}");
        }
    }
    assert!(!html.contains("Safari on iOS"), "neither Sam's session (another user) nor Lee's (another tenant)");
    app.stop().await;
});

on_both_databases!(the_dashboard_shows_this_browsers_last_activity_as_the_visit_just_touched_it, |kind| async move {
    // The guard reads the list before it refreshes `last_activity_at`: the page must show the
    // refreshed time, not the one read a moment before.
    let Some(app) = app_with_tenants(kind).await else { return };
    let chrome = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let ten_minutes_ago = Utc::now() - chrono::TimeDelta::minutes(10);
    app.set_session_time("last_activity_at", ten_minutes_ago).await;
    let datetime =
        |at: DateTime<Utc>| format!(r#"datetime="{}""#, at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));

    let response = chrome.client.get(format!("{}/app", app.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    let touched = app.only_session().await.last_activity_at;
    assert!(touched > ten_minutes_ago + chrono::TimeDelta::minutes(9), "the visit touched the session (touch due)");
    assert!(html.contains(&datetime(touched)), "the dashboard shows the touched time");
    assert!(!html.contains(&datetime(ten_minutes_ago)), "not the time read before the touch");
    app.stop().await;
});

on_both_databases!(signing_out_my_other_session_ends_it, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let chrome = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let firefox = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, OWNER_TOKEN).await;
    let firefox_handle = firefox.own_handle().await;

    let response = chrome.sign_out(&firefox_handle).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", response.text().await.unwrap());

    firefox.assert_signed_out("the other browser is signed out").await;
    assert_eq!(chrome.dashboard_status().await, StatusCode::OK, "this browser stays signed in");
    assert_eq!(chrome.sessions().await.len(), 1);
    assert_eq!(app.session_rows().await.len(), 1);
    app.stop().await;
});

on_both_databases!(a_sign_out_posted_before_hydration_returns_to_the_dashboard, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let chrome = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let firefox = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, OWNER_TOKEN).await;
    // What the browser sends for the panel's form before the wasm has loaded.
    let response = chrome
        .post("/api/sign_out_session")
        .header("accept", "text/html")
        .header("referer", app.url("/app"))
        .form(&[("handle", firefox.own_handle().await)])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    let location = response.headers()["location"].to_str().unwrap();
    let code =
        location.strip_prefix("/app?handoff=").unwrap_or_else(|| panic!("back to the dashboard, got {location}"));
    assert!(libero::server::sessions::tab::is_handoff_code(code), "with nothing but a handoff code: {location}");
    firefox.assert_signed_out("firefox is signed out").await;
    assert_eq!(chrome.dashboard_status().await, StatusCode::OK);
    app.stop().await;
});

on_both_databases!(signing_out_another_users_session_is_refused_and_changes_nothing, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let dana = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let dana_elsewhere = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, OWNER_TOKEN).await;
    let sam = Browser::signed_in(&app, SAFARI_ON_IOS, TENANT, STAFF_TOKEN).await;
    let lee = Browser::signed_in(&app, SAFARI_ON_IOS, OTHER_TENANT, OTHER_TOKEN).await;

    for handle in [sam.own_handle().await, lee.own_handle().await] {
        let response = dana.sign_out(&handle).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "session_not_found");
    }
    assert_eq!(sam.dashboard_status().await, StatusCode::OK, "Sam is still signed in");
    assert_eq!(lee.dashboard_status().await, StatusCode::OK, "Lee is still signed in");
    assert_eq!(app.session_rows().await.len(), 4, "nothing was deleted");

    // The positive control: the same request with Dana's own other session's handle works.
    let response = dana.sign_out(&dana_elsewhere.own_handle().await).await;
    assert_eq!(response.status(), StatusCode::OK);
    dana_elsewhere.assert_signed_out("dana elsewhere is signed out").await;
    assert_eq!(app.session_rows().await.len(), 3);
    app.stop().await;
});

on_both_databases!(a_made_up_handle_is_not_found, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let dana = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let dana_elsewhere = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, OWNER_TOKEN).await;
    for handle in ["0123456789abcdef0123456789abcdef", "", "not-a-handle"] {
        let response = dana.sign_out(handle).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{handle:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "session_not_found", "{handle:?}");
    }
    assert_eq!(dana.dashboard_status().await, StatusCode::OK);
    assert_eq!(app.session_rows().await.len(), 2, "nothing was deleted");
    // The control: a real handle, of Dana's other session, is found.
    assert_eq!(dana.sign_out(&dana_elsewhere.own_handle().await).await.status(), StatusCode::OK);
    app.stop().await;
});

on_both_databases!(this_browsers_own_session_cannot_be_ended_through_the_panel, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let dana = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let response = dana.sign_out(&dana.own_handle().await).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(dana.dashboard_status().await, StatusCode::OK, "still signed in: logout is for that");
    app.stop().await;
});

on_both_databases!(signing_out_all_other_sessions_keeps_only_this_one, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let chrome = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let firefox = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, OWNER_TOKEN).await;
    let phone = Browser::signed_in(&app, SAFARI_ON_IOS, TENANT, OWNER_TOKEN).await;
    let sam = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, STAFF_TOKEN).await;
    let lee = Browser::signed_in(&app, CHROME_ON_WINDOWS, OTHER_TENANT, OTHER_TOKEN).await;
    // Dead rows the hourly cleanup has not removed yet: not listed, so not counted, but removed.
    let hours_ago = |h| Utc::now() - chrono::TimeDelta::hours(h);
    insert_session(&app, "idle-row", DANA, hours_ago(2), Utc::now() + chrono::TimeDelta::hours(4)).await;
    insert_session(&app, "expired-row", DANA, Utc::now(), hours_ago(1)).await;
    assert_eq!(chrome.sessions().await.len(), 3, "the list shows the three live sessions");

    let response = chrome.sign_out_others().await;
    assert_eq!(response.status(), StatusCode::OK);
    let done: serde_json::Value = response.json().await.unwrap();
    assert_eq!(done["ended"], 2, "two other sessions ended, as the list showed them");
    assert_eq!(app.session_rows().await.len(), 3, "the dead rows went too: this one, Sam's and Lee's are left");
    assert!(done["tab"].is_null(), "asked by the cookie: no tab token in the answer (only a tab's bearer gets one)");

    firefox.assert_signed_out("firefox is signed out").await;
    phone.assert_signed_out("phone is signed out").await;
    assert_eq!(chrome.dashboard_status().await, StatusCode::OK, "this browser stays signed in");
    assert_eq!(sam.dashboard_status().await, StatusCode::OK, "another user's session is untouched");
    assert_eq!(lee.dashboard_status().await, StatusCode::OK, "another tenant's session is untouched");
    assert_eq!(chrome.sessions().await.len(), 1);
    app.stop().await;
});

/// Makes the database refuse (`on`) or accept again every `DELETE` on `app_sessions`, as a
/// database that fails the statement would.
async fn refuse_deletes(app: &TestApp, on: bool) {
    let sql = match (&app.db, on) {
        (Db::Sqlite(_), true) => {
            "CREATE TRIGGER refuse_deletes BEFORE DELETE ON app_sessions BEGIN SELECT RAISE(ABORT, 'refused'); END"
        }
        (Db::Sqlite(_), false) => "DROP TRIGGER refuse_deletes",
        (Db::Postgres(_), true) => {
            "CREATE FUNCTION refuse_deletes() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;
             CREATE TRIGGER refuse_deletes BEFORE DELETE ON app_sessions FOR EACH ROW EXECUTE FUNCTION refuse_deletes();"
        }
        (Db::Postgres(_), false) => "DROP TRIGGER refuse_deletes ON app_sessions; DROP FUNCTION refuse_deletes();",
    };
    match &app.db {
        Db::Sqlite(pool) => drop(sqlx::raw_sql(sql).execute(pool).await.unwrap()),
        Db::Postgres(pool) => drop(sqlx::raw_sql(sql).execute(pool).await.unwrap()),
    }
}

// The database failing *Sign out all other sessions*: 503 `unavailable`, and nothing ended; once
// it accepts the statement again (the control), the same press ends the other session.
on_both_databases!(sign_out_others_that_the_database_refuses_is_a_503_that_ends_nothing, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let chrome = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let firefox = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, OWNER_TOKEN).await;
    refuse_deletes(&app, true).await;
    let response = chrome.sign_out_others().await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "unavailable");
    assert_eq!(firefox.dashboard_status().await, StatusCode::OK, "nothing ended");
    assert_eq!(chrome.sessions().await.len(), 2);
    refuse_deletes(&app, false).await;
    assert_eq!(chrome.sign_out_others().await.status(), StatusCode::OK);
    firefox.assert_signed_out("ended once the database accepts the statement").await;
    app.stop().await;
});

on_both_databases!(the_panel_functions_answer_401_without_a_session, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let bare = TestApp::bare_client();
    for path in ["/api/list_my_sessions", "/api/sign_out_session", "/api/sign_out_other_sessions"] {
        let response = bare
            .post(app.url(path))
            .header("origin", &app.base)
            .header("sec-fetch-site", "same-origin")
            .form(&[("handle", "0123456789abcdef0123456789abcdef")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "unauthorized", "{path}");
    }
    assert_eq!(app.session_rows().await.len(), 1, "the signed-in session is untouched");
    app.stop().await;
});

on_both_databases!(cross_site_posts_to_the_panel_functions_are_refused, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let chrome = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let firefox = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, OWNER_TOKEN).await;
    let handle = firefox.own_handle().await;
    let cross_site = |path: &str| {
        chrome
            .client
            .post(app.url(path))
            .header("origin", "https://evil.example")
            .header("sec-fetch-site", "cross-site")
    };

    let response = cross_site("/api/sign_out_session").form(&[("handle", handle.as_str())]).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let response = cross_site("/api/sign_out_other_sessions").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(cross_site("/api/list_my_sessions").send().await.unwrap().status(), StatusCode::FORBIDDEN);

    assert_eq!(firefox.dashboard_status().await, StatusCode::OK, "nothing was signed out");
    assert_eq!(app.session_rows().await.len(), 2);
    app.stop().await;
});

// --- Operators: `libero sessions revoke|list` -------------------------------------------------

/// Runs the binary with nothing but `DATABASE_URL` (and `PATH`), in an empty directory.
fn libero(args: &[&str], database_url: &str) -> std::process::Output {
    common::child::run_libero(args, database_url, &[], None)
}

fn stdout(output: &std::process::Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

on_both_databases!(revoke_with_a_user_deletes_only_that_users_sessions_of_the_tenant, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let dana = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let sam = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, STAFF_TOKEN).await;
    let sam_elsewhere = Browser::signed_in(&app, SAFARI_ON_IOS, TENANT, STAFF_TOKEN).await;
    let lee = Browser::signed_in(&app, SAFARI_ON_IOS, OTHER_TENANT, OTHER_TOKEN).await;

    let output = libero(&["sessions", "revoke", "--tenant", TENANT, "--user", SAM], &app.database.url);
    assert_eq!(stdout(&output), "Revoked 2 sessions for tenant demo-winery user c7-user-sam\n");
    sam.assert_signed_out("sam is signed out").await;
    sam_elsewhere.assert_signed_out("sam elsewhere is signed out").await;
    assert_eq!(dana.dashboard_status().await, StatusCode::OK, "another user of the tenant is untouched");
    assert_eq!(lee.dashboard_status().await, StatusCode::OK, "another tenant is untouched");
    app.stop().await;
});

on_both_databases!(revoke_without_a_user_deletes_every_session_of_the_tenant, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let dana = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let sam = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, STAFF_TOKEN).await;
    let lee = Browser::signed_in(&app, SAFARI_ON_IOS, OTHER_TENANT, OTHER_TOKEN).await;

    let output = libero(&["sessions", "revoke", "--tenant", TENANT], &app.database.url);
    assert_eq!(stdout(&output), "Revoked 2 sessions for tenant demo-winery\n");
    dana.assert_signed_out("dana is signed out").await;
    sam.assert_signed_out("sam is signed out").await;
    assert_eq!(lee.dashboard_status().await, StatusCode::OK, "another tenant is untouched");
    assert_eq!(app.session_rows().await.len(), 1);
    app.stop().await;
});

on_both_databases!(revoke_and_list_of_an_unknown_tenant_fail_with_exit_1, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    for args in
        [&["sessions", "revoke", "--tenant", "no-such-winery"][..], &["sessions", "list", "--tenant", "no-such-winery"]]
    {
        let output = libero(args, &app.database.url);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains("unknown tenant") && stderr.contains("no-such-winery"), "{stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(app.session_rows().await.len(), 1, "nothing deleted");
    app.stop().await;
});

on_both_databases!(list_prints_the_tenants_active_sessions_as_a_table, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let _dana = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let _sam = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, STAFF_TOKEN).await;
    let _lee = Browser::signed_in(&app, SAFARI_ON_IOS, OTHER_TENANT, OTHER_TOKEN).await;
    let hours_ago = |h| Utc::now() - chrono::TimeDelta::hours(h);
    insert_session(&app, "idle-row", DANA, hours_ago(2), Utc::now() + chrono::TimeDelta::hours(4)).await;
    insert_session(&app, "expired-row", DANA, Utc::now(), hours_ago(1)).await;

    let text = stdout(&libero(&["sessions", "list", "--tenant", TENANT], &app.database.url));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "Active sessions for tenant demo-winery: 2", "{text}");
    for column in ["USER ID", "NAME", "EMAIL", "IP", "BROWSER", "SIGNED IN", "LAST ACTIVE", "EXPIRES"] {
        assert!(lines[1].contains(column), "{column} missing: {text}");
    }
    assert_eq!(lines.len(), 4, "a header and two sessions: {text}");
    let dana = lines.iter().find(|l| l.starts_with(DANA)).expect("Dana's line");
    for value in ["Dana Owner", "dana@demo-winery.example", "127.0.0.1", "Chrome on Windows", "UTC"] {
        assert!(dana.contains(value), "{value} missing: {dana}");
    }
    let sam = lines.iter().find(|l| l.starts_with(SAM)).expect("Sam's line");
    assert!(sam.contains("Sam Staff") && sam.contains("Firefox on macOS"), "{sam}");
    assert!(!text.contains("Lee"), "another tenant's session is not listed: {text}");
    app.stop().await;
});

// What Commerce7's users typed reaches the operator's terminal as text: a stored name with an
// escape sequence and a line break (a row written before names were cleaned at sign-in, or by
// another tool) is printed escaped, on its own line. Control: the same row with its plain name.
on_both_databases!(list_prints_control_characters_of_stored_user_fields_escaped, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let _dana = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let list = || stdout(&libero(&["sessions", "list", "--tenant", TENANT], &app.database.url));
    let plain = list();
    assert!(plain.contains("Dana Owner") && plain.lines().count() == 3, "control: {plain}");
    let (sql, name) = ("UPDATE app_sessions SET user_name = $1", "Dana\u{1b}[2J\u{1b}[31mOwner\nfake-user  Mallory");
    let updated = match &app.db {
        Db::Sqlite(pool) => sqlx::query(sql).bind(name).execute(pool).await.unwrap().rows_affected(),
        Db::Postgres(pool) => sqlx::query(sql).bind(name).execute(pool).await.unwrap().rows_affected(),
    };
    assert_eq!(updated, 1, "Dana's one session");
    let text = list();
    assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "no control character but line ends: {text:?}");
    assert_eq!(text.lines().count(), 3, "title, header, one row: {text}");
    assert!(text.contains(r"Dana\u{1b}[2J\u{1b}[31mOwner\nfake-user  Mallory"), "{text}");
    app.stop().await;
});

on_both_databases!(list_json_has_one_object_per_active_session, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let _dana = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let _lee = Browser::signed_in(&app, SAFARI_ON_IOS, OTHER_TENANT, OTHER_TOKEN).await;

    let json: Value =
        serde_json::from_str(&stdout(&libero(&["sessions", "list", "--tenant", TENANT, "--json"], &app.database.url)))
            .expect("JSON");
    assert_eq!(json["tenant_id"], TENANT);
    let sessions = json["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    let session = sessions[0].as_object().unwrap();
    let mut keys: Vec<&str> = session.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["browser", "created_at", "expires_at", "ip_address", "last_activity_at", "user_email", "user_id", "user_name"]
    );
    assert_eq!(session["user_id"], DANA);
    assert_eq!(session["user_name"], "Dana Owner");
    assert_eq!(session["browser"], "Chrome on Windows");
    assert_eq!(session["ip_address"], "127.0.0.1");
    app.stop().await;
});

on_both_databases!(list_never_prints_row_ids_or_cookie_tokens, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let browsers = [
        Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await,
        Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, OWNER_TOKEN).await,
        Browser::signed_in(&app, SAFARI_ON_IOS, TENANT, STAFF_TOKEN).await,
    ];
    let rows = app.session_rows().await;
    assert_eq!(rows.len(), 3);
    let mut handles_seen = Vec::new();
    for browser in &browsers {
        handles_seen.extend(handles(&browser.sessions().await));
    }

    for args in [&["sessions", "list", "--tenant", TENANT][..], &["sessions", "list", "--tenant", TENANT, "--json"]] {
        let output = libero(args, &app.database.url);
        let printed = format!("{}{}", stdout(&output), String::from_utf8_lossy(&output.stderr));
        for name in ["Dana Owner", "Sam Staff"] {
            assert!(printed.contains(name), "control: the sessions are listed by {args:?}:\n{printed}");
        }
        for row in &rows {
            assert!(!printed.contains(&row.id), "row id printed by {args:?}");
            assert!(!printed.contains(&row.id[..16]), "part of a row id printed by {args:?}");
        }
        for browser in &browsers {
            let cookie = browser.cookie().unwrap();
            assert!(!printed.contains(&browser.token()), "a cookie token printed by {args:?}");
            assert!(!printed.contains(cookie.trim_start_matches("__libero_session=")), "a cookie printed");
        }
        for handle in &handles_seen {
            assert!(!printed.contains(handle.as_str()), "a handle printed by {args:?}");
        }
    }
    app.stop().await;
});

#[test]
fn revoke_needs_a_tenant() {
    let output = libero(&["sessions", "revoke"], "sqlite://unused.db");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--tenant"));
}
