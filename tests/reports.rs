//! The Report extension "Who is signed in to Libero at this winery" (`/reports/sessions`, issue
//! 27): every live session of the winery for its `Admin Owner`s and `Admin`s, *Sign out this
//! person everywhere*, refusals for other roles, other wineries and one's own user, and a role
//! read from Commerce7 at every open. Over real HTTP on SQLite and PostgreSQL; each browser is a
//! client with a cookie jar of its own.

mod common;

use common::{
    OTHER_TENANT, OTHER_TOKEN, OWNER_TOKEN, STAFF_TOKEN, TENANT, TEST_SECRET, TestApp, TestDb,
    browser::{Browser, CHROME_ON_WINDOWS, FIREFOX_ON_MACOS, SAFARI_ON_IOS},
};
use libero::server::sessions::manage::SessionHandles;
use reqwest::{StatusCode, header};
use serde_json::Value;

const DANA: &str = "c7-user-dana";
const SAM: &str = "c7-user-sam";
const REPORT: &str = "/reports/sessions";

impl Browser {
    /// `POST /api/sessions_report`: its status and JSON.
    async fn report(&self) -> (StatusCode, Value) {
        let response = self.post("/api/sessions_report").send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }

    /// `POST /api/sign_out_user_everywhere` (the hydrated page's call): status and JSON.
    async fn sign_out_everywhere(&self, handle: &str) -> (StatusCode, Value) {
        let response = self.post("/api/sign_out_user_everywhere").form(&[("handle", handle)]).send().await.unwrap();
        (response.status(), response.json().await.unwrap())
    }
}

async fn app_with_tenants(kind: TestDb) -> Option<TestApp> {
    let app = TestApp::spawn(kind).await?;
    app.install(TENANT).await;
    app.install(OTHER_TENANT).await;
    Some(app)
}

/// The report's person named `name`.
fn person<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["people"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} in {report:#}"))
}

/// The row ids of `user_id`'s sessions.
async fn rows_of(app: &TestApp, user_id: &str) -> Vec<String> {
    app.session_rows().await.into_iter().filter(|r| r.user_id == user_id).map(|r| r.id).collect()
}

fn handle_of(row_id: &str) -> String {
    SessionHandles::new(TEST_SECRET).of(row_id)
}

on_both_databases!(an_owner_sees_every_live_session_of_her_winery_and_none_of_another, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let sam_firefox = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, STAFF_TOKEN).await;
    let sam_iphone = Browser::signed_in(&app, SAFARI_ON_IOS, TENANT, STAFF_TOKEN).await;
    let lee = Browser::signed_in(&app, SAFARI_ON_IOS, OTHER_TENANT, OTHER_TOKEN).await;

    // Dana opens the Report extension from Commerce7: it signs in and lands on the report,
    // its context kept, its token gone.
    let dana = Browser::new(&app, CHROME_ON_WINDOWS);
    let url = format!("{}{REPORT}?tenantId={TENANT}&customerId=c-17&account={OWNER_TOKEN}", app.base);
    let opened = dana.client.get(url).header("sec-fetch-dest", "iframe").send().await.unwrap();
    let page = common::signed_in_page(opened).await;
    assert_eq!(page.landing(), "/reports/sessions?customerId=c-17", "lands on the report");
    let html = page.html;

    for text in [
        "Who is signed in to Libero at this winery",
        "Roles are read from Commerce7 when you open Libero",
        "Dana Owner",
        "dana@demo-winery.example",
        "Sam Staff",
        "sam@demo-winery.example",
        "Chrome on Windows",
        "Firefox on macOS",
        "Safari on iOS",
        "Sign out this person everywhere",
        r#"action="/api/sign_out_user_everywhere""#,
    ] {
        assert!(html.contains(text), "{text:?} missing from the report");
    }
    assert!(!html.contains("Lee Vintner") && !html.contains("second-cellar.example"), "never another winery's");
    assert_eq!(html.matches(r#"data-testid="person""#).count(), 2, "Dana and Sam");
    assert_eq!(html.matches(r#"data-testid="report-session""#).count(), 3, "Dana's one and Sam's two");
    let button = r#"aria-label="Sign out this person everywhere: "#;
    assert_eq!(html.matches(button).count(), 1, "only for Sam, never for herself");
    assert!(html.contains(&format!(r#"{button}Sam Staff""#)), "named after its person");

    // No row id, no cookie token and no account token (nor its hash) of anyone in the page.
    let rows = app.session_rows().await;
    assert_eq!(rows.len(), 4);
    for row in &rows {
        assert!(!html.contains(&row.id), "row id {} in the page", row.id);
        if let Some(hash) = &row.account_token_hash {
            assert!(!html.contains(hash), "an account token's hash in the page");
        }
    }
    for browser in [&dana, &sam_firefox, &sam_iphone, &lee] {
        assert!(!html.contains(&browser.token()), "a cookie token in the page");
    }
    for account in [OWNER_TOKEN, STAFF_TOKEN, OTHER_TOKEN] {
        assert!(!html.contains(account), "an account token in the page");
    }

    // The same through the server function.
    let (status, report) = dana.report().await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["tenant_id"], TENANT);
    assert_eq!(report["people"].as_array().unwrap().len(), 2, "{report:#}");
    let dana_row = person(&report, "Dana Owner");
    assert_eq!(dana_row["you"], true);
    assert!(dana_row["handle"].is_null(), "no handle to sign oneself out everywhere with");
    assert_eq!(dana_row["sessions"][0]["this_browser"], true);
    let sam = person(&report, "Sam Staff");
    assert_eq!(sam["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(sam["handle"].as_str().unwrap().len(), 32);
    let body = report.to_string();
    for row in &rows {
        assert!(!body.contains(&row.id), "row id {} in the answer", row.id);
    }
    app.stop().await;
});

on_both_databases!(an_owner_ends_another_persons_sessions_everywhere_and_only_theirs, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let dana = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let dana_phone = Browser::signed_in(&app, SAFARI_ON_IOS, TENANT, OWNER_TOKEN).await;
    let sam_firefox = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, STAFF_TOKEN).await;
    let sam_iphone = Browser::signed_in(&app, SAFARI_ON_IOS, TENANT, STAFF_TOKEN).await;
    let lee = Browser::signed_in(&app, SAFARI_ON_IOS, OTHER_TENANT, OTHER_TOKEN).await;
    assert_eq!(rows_of(&app, SAM).await.len(), 2);

    let (_, report) = dana.report().await;
    let handle = person(&report, "Sam Staff")["handle"].as_str().unwrap().to_owned();
    let (status, done) = dana.sign_out_everywhere(&handle).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["ended"], 2, "both of Sam's sessions");

    assert!(rows_of(&app, SAM).await.is_empty(), "Sam is signed out everywhere");
    for sam in [&sam_firefox, &sam_iphone] {
        assert_eq!(sam.dashboard_status().await, StatusCode::UNAUTHORIZED, "Sam's browser is signed out");
    }
    for kept in [&dana, &dana_phone, &lee] {
        assert_eq!(kept.dashboard_status().await, StatusCode::OK, "Dana's and the other winery's are kept");
    }
    assert_eq!(rows_of(&app, DANA).await.len(), 2);
    let (_, after) = dana.report().await;
    assert_eq!(after["people"].as_array().unwrap().len(), 1, "only Dana left: {after:#}");

    // Again: the handle names nothing any more.
    let (status, again) = dana.sign_out_everywhere(&handle).await;
    assert_eq!((status, again["error"].as_str()), (StatusCode::NOT_FOUND, Some("session_not_found")));

    // One's own user is refused (that is what Sign out is for), even by a handle of another of
    // one's own sessions, and nothing ends.
    let own = handle_of(&rows_of(&app, DANA).await[0]);
    let (status, refused) = dana.sign_out_everywhere(&own).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{refused}");
    assert!(refused["message"].as_str().unwrap().contains("use Sign out"), "{refused}");
    assert_eq!(rows_of(&app, DANA).await.len(), 2, "nothing ended");
    app.stop().await;
});

// A person's expired session that the hourly cleanup has not removed yet is not in the report,
// so the count leaves it out too, and it goes with the others. (All live: the test above.)
on_both_databases!(signing_a_person_out_everywhere_counts_the_sessions_the_report_showed, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let dana = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    for agent in [FIREFOX_ON_MACOS, SAFARI_ON_IOS, CHROME_ON_WINDOWS] {
        Browser::signed_in(&app, agent, TENANT, STAFF_TOKEN).await;
    }
    let expired = rows_of(&app, SAM).await.remove(0);
    let past = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    let sql = "UPDATE app_sessions SET expires_at = $1 WHERE id = $2";
    match &app.db {
        libero::server::db::Db::Sqlite(pool) => drop(sqlx::query(sql).bind(past).bind(&expired).execute(pool).await),
        libero::server::db::Db::Postgres(pool) => drop(sqlx::query(sql).bind(past).bind(&expired).execute(pool).await),
    }
    let (_, report) = dana.report().await;
    let sam = person(&report, "Sam Staff");
    assert_eq!(sam["sessions"].as_array().unwrap().len(), 2, "the live ones: {report:#}");
    let (status, done) = dana.sign_out_everywhere(sam["handle"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["ended"], 2, "as many as the report showed");
    assert!(rows_of(&app, SAM).await.is_empty(), "the expired row went too");

    // A page left open until the person's only session expired: it ends nothing live, says so
    // (0, not "already ended"), and the dead row goes.
    Browser::signed_in(&app, SAFARI_ON_IOS, TENANT, STAFF_TOKEN).await;
    let expired = rows_of(&app, SAM).await.remove(0);
    match &app.db {
        libero::server::db::Db::Sqlite(pool) => drop(sqlx::query(sql).bind(past).bind(&expired).execute(pool).await),
        libero::server::db::Db::Postgres(pool) => drop(sqlx::query(sql).bind(past).bind(&expired).execute(pool).await),
    }
    let (status, done) = dana.sign_out_everywhere(&handle_of(&expired)).await;
    assert_eq!((status, done["ended"].clone()), (StatusCode::OK, 0.into()), "{done}");
    assert!(rows_of(&app, SAM).await.is_empty());
    app.stop().await;
});

on_both_databases!(the_plain_form_ends_a_person_before_hydration_and_returns_to_the_report, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let dana = Browser::new(&app, CHROME_ON_WINDOWS);
    let sam = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, STAFF_TOKEN).await;
    let html = common::signed_in_page(dana.open(REPORT, TENANT, OWNER_TOKEN).await).await.html;
    let tab = common::tab_token(&html).expect("the page's tab token");
    let handle = handle_of(&rows_of(&app, SAM).await[0]);
    assert!(html.contains(&format!(r#"name="handle" value="{handle}""#)), "the form carries Sam's handle");

    // What the browser posts for the form before the wasm has loaded: no JavaScript, no JSON.
    let response = dana
        .post("/api/sign_out_user_everywhere")
        .header("accept", "text/html")
        .form(&[("tab", tab.as_str()), ("handle", handle.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let back = response.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(back.starts_with("/reports/sessions?handoff="), "back to the report: {back}");
    assert!(rows_of(&app, SAM).await.is_empty());
    assert_eq!(sam.dashboard_status().await, StatusCode::UNAUTHORIZED);
    let page = dana.get(&back).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(!page.text().await.unwrap().contains("Sam Staff"), "the report no longer lists Sam");

    // A refusal comes back in the page, signed for this session: shown, not JSON.
    let own = handle_of(&rows_of(&app, DANA).await[0]);
    let response = dana
        .post("/api/sign_out_user_everywhere")
        .header("accept", "text/html")
        .form(&[("tab", tab.as_str()), ("handle", own.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let back = response.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(back.starts_with("/reports/sessions?") && back.contains("__err="), "{back}");
    let html = dana.get(&back).await.text().await.unwrap();
    assert!(html.contains("use Sign out at the top of the page"), "the error is shown");
    app.stop().await;
});

on_both_databases!(a_user_without_an_admin_role_is_refused_with_no_data, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let dana = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    // Sam has no role in Commerce7: fails closed.
    let sam = Browser::new(&app, FIREFOX_ON_MACOS);
    let page = sam.open(REPORT, TENANT, STAFF_TOKEN).await;
    assert_eq!(page.status(), StatusCode::FORBIDDEN, "a page saying who can see it, answered 403");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"data-via="sign-in""#), "the sign-in's own page");
    assert!(html.contains(r#"data-testid="not-allowed""#), "the explanation");
    assert!(html.contains("Admin Owner") && html.contains("Roles are read from Commerce7 when you open Libero"));
    for data in ["Dana Owner", "dana@demo-winery.example", "Chrome on Windows", "sign_out_user_everywhere"] {
        assert!(!html.contains(data), "{data:?} shown to a user without the role");
    }
    assert_eq!(sam.dashboard_status().await, StatusCode::OK, "Sam is signed in, just not allowed here");

    let (status, refused) = sam.report().await;
    assert_eq!((status, refused["error"].as_str()), (StatusCode::FORBIDDEN, Some("not_allowed")));
    assert!(refused.get("people").is_none());
    let dana_handle = handle_of(&rows_of(&app, DANA).await[0]);
    let (status, refused) = sam.sign_out_everywhere(&dana_handle).await;
    assert_eq!((status, refused["error"].as_str()), (StatusCode::FORBIDDEN, Some("not_allowed")));
    assert_eq!(dana.dashboard_status().await, StatusCode::OK, "Dana is still signed in");
    app.stop().await;
});

on_both_databases!(another_winerys_handle_does_nothing, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let dana = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    let sam = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, STAFF_TOKEN).await;
    // Lee owns the other winery: he may see his report, and nothing of Dana's.
    let lee = Browser::signed_in(&app, SAFARI_ON_IOS, OTHER_TENANT, OTHER_TOKEN).await;
    let (status, his) = lee.report().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(his["people"].as_array().unwrap().len(), 1, "only Lee: {his:#}");

    let (_, report) = dana.report().await;
    let sams = person(&report, "Sam Staff")["handle"].as_str().unwrap().to_owned();
    for handle in [sams.as_str(), "00000000000000000000000000000000", ""] {
        let (status, refused) = lee.sign_out_everywhere(handle).await;
        assert_eq!(
            (status, refused["error"].as_str()),
            (StatusCode::NOT_FOUND, Some("session_not_found")),
            "{handle:?}"
        );
    }
    assert_eq!(sam.dashboard_status().await, StatusCode::OK, "Sam is still signed in");
    assert_eq!(app.session_rows().await.len(), 3, "nothing ended");
    app.stop().await;
});

on_both_databases!(a_change_of_role_in_commerce7_takes_effect_at_the_next_open, |kind| async move {
    let Some(app) = app_with_tenants(kind).await else { return };
    let dana = Browser::signed_in(&app, CHROME_ON_WINDOWS, TENANT, OWNER_TOKEN).await;
    // Dana is signed in in a second browser too.
    let laptop = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, OWNER_TOKEN).await;
    assert_eq!(dana.report().await.0, StatusCode::OK, "control: the owner sees the report");
    assert_eq!(laptop.report().await.0, StatusCode::OK, "control: in both browsers");
    let row = rows_of(&app, DANA).await;

    // Dana is demoted in Commerce7: her session still says owner until she opens Libero again.
    assert!(app.c7.set_role(TENANT, DANA, Some("Sales Associate")));
    assert_eq!(dana.report().await.0, StatusCode::OK, "the old session still says owner");
    assert_eq!(dana.get(REPORT).await.status(), StatusCode::OK);

    // Her next open (a fresh token, as Commerce7 mints one per open) reads the role again and
    // keeps the session: now she is refused.
    let fresh = app.c7.mint_token(TENANT, DANA).expect("a fresh token");
    let page = dana.open(REPORT, TENANT, &fresh).await;
    let sorted = |mut rows: Vec<String>| {
        rows.sort();
        rows
    };
    assert_eq!(sorted(rows_of(&app, DANA).await), sorted(row), "the same sessions, kept");
    assert_eq!(page.status(), StatusCode::FORBIDDEN);
    assert!(page.text().await.unwrap().contains(r#"data-testid="not-allowed""#));
    assert_eq!(dana.report().await.1["error"], "not_allowed");
    assert_eq!(laptop.report().await.0, StatusCode::FORBIDDEN, "the demotion reaches her other browser's session");

    // A promotion the same way: Sam becomes an Admin and sees the report after his next open.
    let sam = Browser::signed_in(&app, FIREFOX_ON_MACOS, TENANT, STAFF_TOKEN).await;
    assert_eq!(sam.report().await.0, StatusCode::FORBIDDEN, "control: no role yet");
    assert!(app.c7.set_role(TENANT, SAM, Some("Admin")));
    assert_eq!(sam.report().await.0, StatusCode::FORBIDDEN, "not before his next open");
    sam.open(REPORT, TENANT, &app.c7.mint_token(TENANT, SAM).unwrap()).await;
    let (status, report) = sam.report().await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert_eq!(report["people"].as_array().unwrap().len(), 2, "Dana and Sam");
    app.stop().await;
});
