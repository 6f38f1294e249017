//! App sessions over real HTTP, on SQLite and PostgreSQL: the guide's Tests 1–5 and the rules
//! behind them (cookie integrity, token hashing, fixation defence, uninstall, CSRF, Commerce7
//! failures, concurrent saves).

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{
    OTHER_TENANT, OTHER_TOKEN, OWNER_TOKEN, RowLock, TENANT, TestApp, TestDb, clears_the_cookie, handoff_code,
    no_session_page, signed_in_page,
};
use libero::server::{db::Db, sessions::hash_token};
use reqwest::{StatusCode, header};
use serde_json::{Value, json};
use sqlx::{Connection, postgres::PgConnectOptions};

fn location(response: &reqwest::Response) -> &str {
    response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response.headers().get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

/// The token inside a signed cookie value: the value is the 44-character HMAC then the token.
fn token_of(cookie: &str) -> String {
    let value = cookie.trim_start_matches("__libero_session=");
    let decoded = value.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=");
    decoded[44..].to_owned()
}

// --- Guide test 1: sign-in (install flow) ------------------------------------------------------

on_both_databases!(sign_in_creates_a_session_row_for_the_client_and_sets_the_cookie, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    app.install(TENANT).await;
    let response = app.sign_in(TENANT, OWNER_TOKEN).await;

    // The page itself, with the cookie; the account token nowhere in it (signed_in_page).
    assert!(set_cookies(&response).iter().any(|c| c.starts_with("__libero_session=")));
    let page = signed_in_page(response).await;
    let code = page.code();
    let cookie = app.session_cookie().expect("cookie held");
    assert!(!cookie.contains(code) && !code.contains(&token_of(&cookie)), "the code is not the cookie token");

    let row = app.only_session().await;
    assert!(!page.without_script.contains(&row.id), "no row id in the address without script");
    assert_eq!(Some(row.client_id.clone()), app.client_id(TENANT).await);
    assert_eq!(row.user_id, "c7-user-dana");
    let hours_left = (row.expires_at - Utc::now()).num_minutes() as f64 / 60.0;
    assert!((7.9..=8.0).contains(&hours_left), "expires_at is ~8 h ahead, got {hours_left:.2} h");
    app.stop().await;
});

on_both_databases!(the_dashboard_shows_the_tenant_and_user_after_sign_in, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    app.install(TENANT).await;
    // The sign-in answers with the dashboard, with a tab token for this tab.
    let response = app.sign_in(TENANT, OWNER_TOKEN).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(response.headers()[header::REFERRER_POLICY], "no-referrer", "the account token leaks in no Referer");
    let html = response.text().await.unwrap();
    assert!(html.contains("demo-winery"), "tenant shown");
    assert!(html.contains("Dana Owner"), "user shown");
    assert!(html.contains("Session expires"));
    assert!(html.contains(r#"<meta name="libero-tab" content="v2.demo-winery."#), "a tab token for this tab");
    assert!(html.contains(r#"data-tenant="demo-winery""#) && html.contains(r#"data-expires-in="900""#));
    app.stop().await;
});

// --- Guide test 2: persistence without Commerce7 ----------------------------------------------

on_both_databases!(signed_in_requests_make_no_commerce7_call, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else {
        return;
    };
    assert_eq!(app.c7.user_calls(), 1, "one verification at sign-in");
    for path in ["/app", "/settings", "/app"] {
        assert_eq!(app.get(path).await.status(), StatusCode::OK, "{path}");
    }
    let response = app.post_same_origin("/api/session_info").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.c7.user_calls(), 1, "no further Commerce7 call");
    app.stop().await;
});

on_both_databases!(reopening_the_iframe_for_the_same_tenant_reuses_the_session, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else {
        return;
    };
    let before = app.only_session().await;
    let response = app.sign_in(TENANT, OWNER_TOKEN).await;
    assert!(set_cookies(&response).is_empty(), "the same theme: the cookie is not re-issued");
    signed_in_page(response).await;
    assert_eq!(app.only_session().await.id, before.id, "same session");
    assert_eq!(app.c7.user_calls(), 1, "fast path: no Commerce7 call");
    app.stop().await;
});

on_both_databases!(last_activity_moves_on_each_request_when_the_touch_interval_is_zero, |kind| async move {
    let Some(app) = TestApp::signed_in_with(kind, &[("SESSION_TOUCH_INTERVAL", "0".into())]).await else {
        return;
    };
    let first = app.only_session().await.last_activity_at;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(app.get("/app").await.status(), StatusCode::OK);
    let second = app.only_session().await.last_activity_at;
    assert!(second > first, "last_activity_at moved: {first} → {second}");
    app.stop().await;
});

on_both_databases!(last_activity_is_written_at_most_once_per_touch_interval, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else {
        return;
    };
    let first = app.only_session().await.last_activity_at;
    for _ in 0..3 {
        assert_eq!(app.get("/app").await.status(), StatusCode::OK);
    }
    assert_eq!(app.only_session().await.last_activity_at, first, "within 60 s nothing is written");
    // Once the interval has passed, the next request refreshes it.
    app.set_session_time("last_activity_at", Utc::now() - chrono::TimeDelta::minutes(5)).await;
    assert_eq!(app.get("/app").await.status(), StatusCode::OK);
    let refreshed = app.only_session().await.last_activity_at;
    assert!(Utc::now() - refreshed < chrono::TimeDelta::seconds(30), "refreshed to now");
    app.stop().await;
});

// --- Guide test 3: protected routes ----------------------------------------------------------

on_both_databases!(protected_pages_without_a_session_get_the_no_session_page, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    for path in ["/app", "/settings"] {
        let response = app.get(path).await;
        assert!(set_cookies(&response).is_empty(), "{path}: no cookie sent, none to clear");
        let html = no_session_page(response, "missing").await;
        assert!(html.contains("Open Libero again from the Apps menu of your Commerce7 admin."), "{path}");
    }
    // Positive control: the public landing page is still where `/` is.
    let landing = app.get("/").await;
    assert_eq!(landing.status(), StatusCode::OK);
    assert!(landing.text().await.unwrap().contains("Open Libero from your Commerce7 admin."));
    app.stop().await;
});

on_both_databases!(server_functions_without_a_session_answer_401, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    let response = app.post_same_origin("/api/session_info").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized");
    app.stop().await;
});

// --- Guide test 4: expiry ---------------------------------------------------------------------

on_both_databases!(an_expired_session_gets_the_no_session_page_and_is_not_revived, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else {
        return;
    };
    assert_eq!(app.get("/app").await.status(), StatusCode::OK, "positive control: signed in");
    app.set_session_time("expires_at", Utc::now() - chrono::TimeDelta::hours(1)).await;

    let response = app.get("/app").await;
    assert!(clears_the_cookie(&response), "the dead cookie is cleared");
    no_session_page(response, "ended").await;
    assert!(app.session_rows().await.is_empty(), "the dead row is removed, not refreshed");
    // The browser dropped the cookie: the next page has none to present.
    no_session_page(app.get("/settings").await, "missing").await;
    app.stop().await;
});

on_both_databases!(an_idle_session_gets_the_no_session_page, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else {
        return;
    };
    assert_eq!(app.get("/app").await.status(), StatusCode::OK, "positive control: signed in");
    app.set_session_time("last_activity_at", Utc::now() - chrono::TimeDelta::minutes(61)).await;
    let response = app.get("/app").await;
    assert!(clears_the_cookie(&response), "the dead cookie is cleared");
    no_session_page(response, "ended").await;
    assert!(app.session_rows().await.is_empty());
    app.stop().await;
});

on_both_databases!(an_expired_session_signs_in_again_through_commerce7_with_a_new_id, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else {
        return;
    };
    let old = app.only_session().await.id;
    app.set_session_time("expires_at", Utc::now() - chrono::TimeDelta::minutes(1)).await;
    handoff_code(app.sign_in(TENANT, OWNER_TOKEN).await).await;
    let new = app.only_session().await.id;
    assert_ne!(new, old);
    assert_eq!(app.c7.user_calls(), 2);
    assert_eq!(app.get("/app").await.status(), StatusCode::OK);
    app.stop().await;
});

// --- Guide test 5: logout ---------------------------------------------------------------------

on_both_databases!(logout_deletes_the_row_clears_the_cookie_and_kills_the_old_cookie, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else {
        return;
    };
    let old_cookie = app.session_cookie().expect("cookie held");

    let response = app.post_same_origin("/logout").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    let cleared = set_cookies(&response);
    assert!(cleared.iter().any(|c| c.starts_with("__libero_session=;") && c.contains("Max-Age=0")), "{cleared:?}");
    assert!(app.session_rows().await.is_empty(), "row deleted");
    no_session_page(app.get("/app").await, "missing").await;

    // Replaying the old cookie does not bring the session back, and is told to go.
    let replay = TestApp::bare_client().get(app.url("/app")).header(header::COOKIE, old_cookie).send().await.unwrap();
    assert!(clears_the_cookie(&replay), "the replayed cookie is cleared");
    no_session_page(replay, "ended").await;
    assert!(app.session_rows().await.is_empty());
    app.stop().await;
});

// --- Cookie integrity and storage ---------------------------------------------------------------

on_both_databases!(forged_tampered_unknown_and_oversized_cookies_get_no_session, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else {
        return;
    };
    let genuine = app.session_cookie().unwrap();
    let mut tampered = genuine.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let unknown = {
        let store = std::sync::Arc::new(libero::server::sessions::AppSessionStore::new(app.db.clone(), None));
        let cookies = libero::server::sessions::SessionCookies::new(common::TEST_SECRET, false, store);
        let value = cookies.issue(tower_sessions::session::Id::default(), time::Duration::hours(1));
        value.to_str().unwrap().split(';').next().unwrap().to_owned()
    };
    let cases = [
        ("forged", format!("__libero_session={}", tower_sessions::session::Id::default())),
        ("tampered", tampered),
        ("unknown token, valid signature", unknown),
        ("oversized", format!("__libero_session={}", "A".repeat(6000))),
        ("garbage", "__libero_session=%%%".to_owned()),
    ];
    let send = |cookie: String| TestApp::bare_client().get(app.url("/app")).header(header::COOKIE, cookie).send();
    // Positive control: the genuine cookie, sent exactly the same way, is a session.
    assert_eq!(send(genuine.clone()).await.unwrap().status(), StatusCode::OK, "the genuine cookie works");
    let before = app.session_rows().await.len();
    for (what, cookie) in cases {
        let response = send(cookie).await.unwrap();
        assert!(clears_the_cookie(&response), "{what}: the cookie is cleared");
        let html = no_session_page(response, "ended").await;
        assert!(!html.contains("Dana Owner"), "{what}: nothing of the signed-in merchant");
        assert_eq!(app.session_rows().await.len(), before, "{what}: no row created");
    }
    assert_eq!(send(genuine).await.unwrap().status(), StatusCode::OK, "the genuine session survived the attempts");
    app.stop().await;
});

on_both_databases!(the_token_is_stored_only_as_its_sha256, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else {
        return;
    };
    let token = token_of(&app.session_cookie().unwrap());
    assert_eq!(token.len(), 22, "128-bit token, base64url");
    let row = app.only_session().await;
    assert_eq!(row.id, hash_token(&token));
    assert_ne!(row.id, token);
    assert!(!row.data.contains(&token), "the token is not in the data column either");
    app.stop().await;
});

/// The row the shared client's cookie names.
fn row_of_cookie(app: &TestApp) -> String {
    hash_token(&token_of(&app.session_cookie().expect("cookie held")))
}

/// The page a handoff code opens in a browser that holds no cookie.
async fn open_with_handoff(app: &TestApp, code: &str) -> reqwest::Response {
    TestApp::bare_client().get(app.url(&format!("/app?handoff={code}"))).send().await.unwrap()
}

on_both_databases!(signing_in_to_another_tenant_issues_a_new_id_and_keeps_the_first_tenants_row, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    app.install(TENANT).await;
    app.install(OTHER_TENANT).await;
    let dana_code = handoff_code(app.sign_in(TENANT, OWNER_TOKEN).await).await;
    let dana = app.only_session().await;

    // The same tenant, another user, in the same browser: the previous row of that tenant goes.
    let sam_code = handoff_code(app.sign_in(TENANT, "demo-staff-token").await).await;
    let sam = app.only_session().await;
    assert_eq!(sam.user_id, "c7-user-sam");
    assert_ne!(sam.id, dana.id, "fixation defence: a fresh id");
    assert_eq!(row_of_cookie(&app), sam.id, "the cookie names Sam's row");
    no_session_page(open_with_handoff(&app, &dana_code).await, "missing").await;

    // Another tenant: a fresh id, and the first tenant's row stays (its tab still holds it).
    let lee_signed_in = app.sign_in(OTHER_TENANT, OTHER_TOKEN).await;
    assert!(set_cookies(&lee_signed_in).iter().any(|c| c.starts_with("__libero_session=")), "a new cookie");
    let lee_code = handoff_code(lee_signed_in).await;
    let rows = app.session_rows().await;
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let lee = rows.iter().find(|r| r.id != sam.id).expect("a new row for the other tenant");
    assert_eq!(Some(lee.client_id.clone()), app.client_id(OTHER_TENANT).await);
    assert_eq!(lee.user_id, "c7-user-lee");
    assert!(rows.iter().any(|r| r.id == sam.id && r.user_id == "c7-user-sam"), "Sam's row is kept, unchanged");
    assert_eq!(row_of_cookie(&app), lee.id, "the cookie now names the other tenant's row");

    // Both sessions work: the cookie's (the other tenant) and the kept one through its code.
    let by_cookie = app.get("/app").await;
    assert_eq!(by_cookie.status(), StatusCode::OK);
    let html = by_cookie.text().await.unwrap();
    assert!(html.contains("second-cellar") && html.contains("Lee Vintner") && !html.contains("Sam Staff"));
    let kept = open_with_handoff(&app, &sam_code).await;
    assert_eq!(kept.status(), StatusCode::OK, "the first tenant's session is still valid");
    let html = kept.text().await.unwrap();
    assert!(
        html.contains(r#"data-tenant="demo-winery""#) && html.contains("Sam Staff") && !html.contains("Lee Vintner")
    );
    assert_eq!(open_with_handoff(&app, &lee_code).await.status(), StatusCode::OK);
    app.stop().await;
});

on_both_databases!(the_admin_theme_is_stored_on_the_session_and_rendered, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    app.install(TENANT).await;
    let response = app.get(&format!("/app?tenantId={TENANT}&account={OWNER_TOKEN}&adminUITheme=dark")).await;
    handoff_code(response).await;
    let session = app.only_session().await;
    assert_eq!(session.theme, "dark");
    let html = app.get("/app").await.text().await.unwrap();
    assert!(html.contains(r#"class="theme-dark""#), "dark theme on the body");
    assert!(html.contains(r#"data-theme="dark""#), "and in the tab's credential");
    // Reopened in light: the fast path updates the theme on the row without Commerce7; the
    // cookie names the same session and is not re-issued.
    let reopened = app.sign_in(TENANT, OWNER_TOKEN).await;
    assert!(set_cookies(&reopened).is_empty(), "no new cookie");
    assert!(signed_in_page(reopened).await.html.contains(r#"data-theme="light""#));
    assert_eq!(app.only_session().await.id, session.id, "the same session");
    assert_eq!(app.only_session().await.theme, "light");
    assert_eq!(app.c7.user_calls(), 1);
    app.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_deployment_sets_a_partitioned_same_site_none_cookie() {
    let Some(app) = TestApp::spawn_with(TestDb::Sqlite, &[("COOKIE_SECURE", "true".into())]).await else {
        return;
    };
    app.install(TENANT).await;
    let response = TestApp::bare_client()
        .get(app.url(&format!("/app?tenantId={TENANT}&account={OWNER_TOKEN}")))
        .send()
        .await
        .unwrap();
    let cookie = set_cookies(&response).into_iter().find(|c| c.starts_with("__libero_session=")).expect("cookie set");
    for attribute in ["HttpOnly", "Secure", "SameSite=None", "Partitioned", "Path=/"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    let max_age: i64 = cookie.split("Max-Age=").nth(1).unwrap().split(';').next().unwrap().parse().unwrap();
    assert!((28_790..=28_800).contains(&max_age), "Max-Age is the remaining 8 h: {max_age}");
    app.stop().await;
}

// --- Sign-in failures ---------------------------------------------------------------------------

on_both_databases!(a_token_commerce7_refuses_gets_the_401_page_and_no_session, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    app.install(TENANT).await;
    let response = app.sign_in(TENANT, "invalid-token").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(response.text().await.unwrap().contains("Commerce7 didn"));
    assert!(app.session_rows().await.is_empty());
    app.stop().await;
});

on_both_databases!(a_tenant_that_has_not_installed_gets_the_403_page, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    let response = app.sign_in(TENANT, OWNER_TOKEN).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("isn't installed"));
    assert!(app.session_rows().await.is_empty());
    app.stop().await;
});

// A link without a token, with a tenant that is no slug or with a token holding a control
// character (a line break, a tab, a C1 control) is "This link is incomplete": no Commerce7 call,
// and this browser's session (signed in by a good link, the control) is kept.
on_both_databases!(an_incomplete_sign_in_link_gets_a_400_page, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    assert_eq!(app.get("/app").await.status(), StatusCode::OK, "signed in by a good link");
    let calls = app.c7.user_calls();
    for link in [
        format!("/app?tenantId={TENANT}"),
        "/app?tenantId=../etc&account=x".into(),
        format!("/app?tenantId={TENANT}&account=x%0A"),
        format!("/app?tenantId={TENANT}&account=x%09"),
        format!("/app?tenantId={TENANT}&account=x%C2%85"),
    ] {
        let response = app.get(&link).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{link}");
        assert!(response.text().await.unwrap().contains("This link is incomplete"), "{link}");
    }
    assert_eq!(app.c7.user_calls(), calls, "no Commerce7 call");
    assert_eq!(app.get("/app").await.status(), StatusCode::OK, "this browser's session is kept");
    app.stop().await;
});

on_both_databases!(commerce7_unreachable_gets_the_503_page, |kind| async move {
    let Some(app) = TestApp::spawn_with(kind, &[("COMMERCE7_API_URL", "http://127.0.0.1:9/v1".into())]).await else {
        return;
    };
    app.install(TENANT).await;
    let response = app.sign_in(TENANT, OWNER_TOKEN).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.text().await.unwrap().contains("couldn't reach Commerce7"));
    assert!(app.session_rows().await.is_empty());
    app.stop().await;
});

on_both_databases!(commerce7_answering_5xx_gets_the_503_page, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    app.install(TENANT).await;
    app.c7.set_failure(Some(502));
    assert_eq!(app.sign_in(TENANT, OWNER_TOKEN).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(app.session_rows().await.is_empty());
    app.stop().await;
});

on_both_databases!(commerce7_slower_than_the_timeout_gets_the_503_page_at_the_timeout, |kind| async move {
    let Some(app) = TestApp::spawn_with(kind, &[("COMMERCE7_TIMEOUT", "300ms".into())]).await else {
        return;
    };
    app.install(TENANT).await;
    app.c7.set_latency(Duration::from_secs(5));
    let response = app.sign_in(TENANT, OWNER_TOKEN).await;
    // Commerce7 does answer, after 5 s, and would sign the merchant in: a 503 is the app giving up
    // at its timeout (no clock read here).
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(app.session_rows().await.is_empty());
    app.stop().await;
});

// --- Install / uninstall callbacks -----------------------------------------------------------

on_both_databases!(uninstall_deletes_the_tenants_sessions_at_once, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else {
        return;
    };
    assert_eq!(app.c7.send_uninstall(TENANT).await.unwrap().as_u16(), 200);
    assert!(app.session_rows().await.is_empty());
    let response = app.get("/app").await;
    assert!(clears_the_cookie(&response));
    no_session_page(response, "ended").await; // the cookie is dead
    assert_eq!(app.sign_in(TENANT, OWNER_TOKEN).await.status(), StatusCode::FORBIDDEN, "no longer installed");
    app.stop().await;
});

on_both_databases!(reinstalling_reactivates_the_client_and_keeps_one_row, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    app.install(TENANT).await;
    app.c7.send_uninstall(TENANT).await.unwrap();
    app.install(TENANT).await;
    app.install(TENANT).await;
    assert_eq!(app.client_count().await, 1);
    assert_eq!(app.sign_in(TENANT, OWNER_TOKEN).await.status(), StatusCode::OK);
    app.stop().await;
});

on_both_databases!(uninstalling_an_unknown_tenant_answers_200, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    assert_eq!(app.c7.send_uninstall("never-installed").await.unwrap().as_u16(), 200);
    assert_eq!(app.client_count().await, 0);
    app.stop().await;
});

on_both_databases!(callbacks_with_wrong_or_missing_credentials_get_401_and_write_nothing, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    let body = json!({ "tenantId": TENANT, "user": { "id": "u1" } });
    let client = TestApp::bare_client();
    for path in ["/install", "/uninstall"] {
        let wrong = client
            .post(app.url(path))
            .basic_auth(common::CALLBACK_USER, Some("wrong"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED, "{path}");
        let missing = client.post(app.url(path)).json(&body).send().await.unwrap();
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    assert_eq!(app.client_count().await, 0);
    app.stop().await;
});

on_both_databases!(callbacks_with_malformed_json_or_no_tenant_are_refused_with_a_message, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else {
        return;
    };
    let client = TestApp::bare_client();
    let send = |body: &'static str| {
        client
            .post(app.url("/install"))
            .basic_auth(common::CALLBACK_USER, Some(common::CALLBACK_PASSWORD))
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
    };
    let malformed = send("{not json").await.unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert!(malformed.json::<Value>().await.unwrap()["error"].as_str().unwrap().contains("malformed JSON"));
    let missing = send(r#"{"user":{"id":"u1"}}"#).await.unwrap();
    assert_eq!(missing.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"], "tenantId is required");
    assert_eq!(send("[1,2]").await.unwrap().status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.client_count().await, 0);
    app.stop().await;
});

// --- CSRF ------------------------------------------------------------------------------------------

on_both_databases!(a_cross_site_logout_is_refused_and_changes_nothing, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else {
        return;
    };
    let response = app
        .client
        .post(app.url("/logout"))
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let no_origin = app.client.post(app.url("/logout")).send().await.unwrap();
    assert_eq!(no_origin.status(), StatusCode::FORBIDDEN, "no origin information is refused too");
    assert_eq!(app.session_rows().await.len(), 1, "still signed in");
    assert_eq!(app.get("/app").await.status(), StatusCode::OK);
    app.stop().await;
});

async fn get_settings(app: &TestApp) -> Value {
    let response = app.post_same_origin("/api/get_settings").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

fn settings(org: &str) -> Value {
    json!({ "org_name": org, "contact_name": "Dana Owner", "contact_email": "dana@demo-winery.example", "weekly_summary": true })
}

/// `save_settings`'s arguments as the settings form sends them (`settings[org_name]=…`,
/// `version=…`; an unticked checkbox sends nothing).
fn settings_form(settings: &Value, version: &Value) -> Vec<(String, String)> {
    let mut fields = vec![("version".to_owned(), version.as_str().unwrap_or_default().to_owned())];
    for name in ["org_name", "contact_name", "contact_email"] {
        fields.push((format!("settings[{name}]"), settings[name].as_str().unwrap().to_owned()));
    }
    if settings["weekly_summary"] == true {
        fields.push(("settings[weekly_summary]".to_owned(), "true".to_owned()));
    }
    fields
}

on_both_databases!(a_cross_site_settings_save_is_refused_and_changes_nothing, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else {
        return;
    };
    let before = get_settings(&app).await;
    let response = app
        .client
        .post(app.url("/api/save_settings"))
        .header("origin", "https://evil.example")
        .form(&settings_form(&settings("Evil Corp"), &before["version"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(get_settings(&app).await, before);
    app.stop().await;
});

// --- Settings ----------------------------------------------------------------------------------

on_both_databases!(settings_default_to_the_install_details_and_save, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else {
        return;
    };
    let loaded = get_settings(&app).await;
    assert_eq!(loaded["settings"]["contact_email"], "dana@demo-winery.example", "installer's email by default");
    let response = app
        .post_same_origin("/api/save_settings")
        .form(&settings_form(&settings("Demo Winery Estate"), &loaded["version"]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let reloaded = get_settings(&app).await;
    assert_eq!(reloaded["settings"], settings("Demo Winery Estate"));
    assert_ne!(reloaded["version"], loaded["version"]);
    app.stop().await;
});

on_both_databases!(invalid_settings_get_field_errors_and_are_not_saved, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else {
        return;
    };
    let loaded = get_settings(&app).await;
    let bad =
        json!({ "org_name": " ", "contact_name": "Dana", "contact_email": "not-an-email", "weekly_summary": false });
    let response =
        app.post_same_origin("/api/save_settings").form(&settings_form(&bad, &loaded["version"])).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "validation");
    assert!(body["fields"]["org_name"].is_string() && body["fields"]["contact_email"].is_string());
    assert_eq!(get_settings(&app).await, loaded, "nothing saved");
    app.stop().await;
});

// A tab pasted from a spreadsheet or a NUL (which PostgreSQL cannot store) in a name is saved as
// a space, on both databases alike, instead of failing the save as "database unavailable"; the
// clean name saves as it is (the control).
on_both_databases!(control_characters_in_a_name_are_saved_as_spaces, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    for (typed, saved) in [("Demo\tWinery\0", "Demo Winery"), ("Demo Winery Estate", "Demo Winery Estate")] {
        let version = get_settings(&app).await["version"].clone();
        let form = settings_form(&settings(typed), &version);
        let response = app.post_same_origin("/api/save_settings").form(&form).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{typed:?}");
        assert_eq!(get_settings(&app).await["settings"], settings(saved), "{typed:?}");
    }
    app.stop().await;
});

// A server function reads at most axum's default body limit (2 MiB): a bigger body is a 400 and
// saves nothing, and the same save at a normal size goes through (the control).
on_both_databases!(a_settings_body_over_2_mib_gets_400_and_saves_nothing, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let loaded = get_settings(&app).await;
    let save = |org: &str| {
        let form = settings_form(&settings(org), &loaded["version"]);
        app.post_same_origin("/api/save_settings").form(&form)
    };
    // The server answers before reading the whole body and then closes the connection: the
    // client must not pick that connection again for the next request.
    let oversized = save(&"x".repeat(3 * 1024 * 1024)).header(header::CONNECTION, "close");
    let response = oversized.send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "bad_request", "{body}");
    assert_eq!(get_settings(&app).await, loaded, "nothing saved");
    let normal = settings("Demo Winery Estate");
    assert_eq!(save("Demo Winery Estate").send().await.unwrap().status(), StatusCode::OK);
    assert_eq!(get_settings(&app).await["settings"], normal);
    app.stop().await;
});

/// What a browser sends when the settings form is submitted before the wasm has loaded (or with
/// JavaScript off): a same-origin form navigation that asks for HTML.
fn browser_form_post(app: &TestApp, fields: &[(String, String)]) -> reqwest::RequestBuilder {
    app.post_same_origin("/api/save_settings")
        .header(header::ACCEPT, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
        .header(header::REFERER, app.url("/settings"))
        .form(fields)
}

/// The `value` of the settings page's hidden `version` input.
fn version_in(html: &str) -> Value {
    let rest = &html[html.find(r#"name="version""#).expect("a version field in the form")..];
    let value = &rest[rest.find(r#"value=""#).unwrap() + 7..];
    Value::from(&value[..value.find('"').unwrap()])
}

on_both_databases!(the_settings_form_posts_to_the_server_function_before_hydration, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let html = app.get("/settings").await.text().await.unwrap();
    let form = html
        .split("<form")
        .skip(1)
        .map(|tag| &tag[..tag.find('>').unwrap()])
        .find(|tag| tag.contains(r#"action="/api/save_settings""#))
        .expect("a form that posts to save_settings");
    assert!(form.contains(r#"method="post""#), "{form}");
    // The fields carry the saved values in the HTML itself, not only once the wasm runs.
    assert!(html.contains(r#"name="settings[contact_email]""#) && html.contains(r#"value="dana@demo-winery.example""#));
    assert_eq!(version_in(&html), get_settings(&app).await["version"]);
    app.stop().await;
});

on_both_databases!(a_settings_form_posted_without_javascript_is_saved_and_returns_to_the_page, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let version = version_in(&app.get("/settings").await.text().await.unwrap());
    let response =
        browser_form_post(&app, &settings_form(&settings("Estate Without Script"), &version)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let back = location(&response);
    let code = back.strip_prefix("/settings?handoff=").unwrap_or_else(|| panic!("back on the form: {back}"));
    assert!(libero::server::sessions::tab::is_handoff_code(code), "nothing but a handoff code in the URL: {back}");
    assert_eq!(get_settings(&app).await["settings"], settings("Estate Without Script"));
    let page = app.get("/settings").await.text().await.unwrap();
    assert!(page.contains(r#"value="Estate Without Script""#), "the merchant sees the saved values");
    assert!(page.contains(r#"name="settings[weekly_summary]" value="true" checked"#), "and the ticked box");
    app.stop().await;
});

on_both_databases!(a_settings_form_posted_without_javascript_shows_field_errors_and_conflicts, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let before = get_settings(&app).await;
    let bad =
        json!({ "org_name": " ", "contact_name": "Dana", "contact_email": "not-an-email", "weekly_summary": false });
    let response = browser_form_post(&app, &settings_form(&bad, &before["version"])).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let back = location(&response).to_owned();
    assert!(back.starts_with("/settings?"), "{back}");
    assert!(!back.contains("not-an-email") && !back.contains("Dana"), "the input never goes into the URL: {back}");
    let page = app.get(&back).await.text().await.unwrap();
    assert!(page.contains("Please correct the highlighted fields."), "{page}");
    assert!(page.contains("Enter your organisation&#x27;s name.") || page.contains("Enter your organisation's name."));
    assert!(page.contains("Enter an email address like name@winery.com."));
    assert_eq!(get_settings(&app).await, before, "nothing saved");

    // A save on top of a version someone else replaced is refused with the plain message.
    let saved = app
        .post_same_origin("/api/save_settings")
        .form(&settings_form(&settings("Other window"), &before["version"]))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    let stale =
        browser_form_post(&app, &settings_form(&settings("This window"), &before["version"])).send().await.unwrap();
    assert_eq!(stale.status(), StatusCode::SEE_OTHER);
    let page = app.get(location(&stale)).await.text().await.unwrap();
    assert!(page.contains("These settings were changed in another window."), "{page}");
    assert_eq!(get_settings(&app).await["settings"], settings("Other window"), "the other window's save stands");
    app.stop().await;
});

on_both_databases!(two_concurrent_saves_lose_nothing, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else {
        return;
    };
    let version = get_settings(&app).await["version"].clone();
    let save = |org: &'static str| {
        tokio::spawn(app.post_same_origin("/api/save_settings").form(&settings_form(&settings(org), &version)).send())
    };
    // Both saves are in flight at once, held by the database until both wait for it.
    let mut lock = RowLock::take(&app, "SELECT 1 FROM clients WHERE tenant_id = $1 FOR UPDATE", TENANT).await;
    let (a, b) = (save("Window A"), save("Window B"));
    lock.wait_for_waiters(2).await;
    assert!(!a.is_finished() && !b.is_finished(), "both saves are waiting on the database together");
    lock.release().await;
    let (a, b) = (a.await.unwrap().unwrap(), b.await.unwrap().unwrap());
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort();
    assert_eq!(statuses, [200, 409], "one save wins, the other is told, none is silently overwritten");
    let winner = if a.status() == StatusCode::OK { "Window A" } else { "Window B" };
    let loser = if a.status() == StatusCode::OK { b } else { a };
    assert_eq!(loser.json::<Value>().await.unwrap()["error"], "conflict");
    assert_eq!(get_settings(&app).await["settings"], settings(winner));

    // The refused window reloads and saves on top of the winner: nothing was lost.
    let fresh = get_settings(&app).await["version"].clone();
    let retry = app
        .post_same_origin("/api/save_settings")
        .form(&settings_form(&settings("Both windows"), &fresh))
        .send()
        .await
        .unwrap();
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(get_settings(&app).await["settings"], settings("Both windows"));
    app.stop().await;
});

// --- Database down ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_in_request_with_the_database_gone_gets_503_not_a_crash() {
    let Some(app) = TestApp::signed_in(TestDb::Postgres).await else {
        return;
    };
    // Positive control: the dashboard (its guard reads the session and the list in one
    // statement) and the server function answer while the database is there.
    assert_eq!(app.get("/app").await.status(), StatusCode::OK);
    assert_eq!(app.post_same_origin("/api/session_info").send().await.unwrap().status(), StatusCode::OK);
    let name = app.database.postgres_name().expect("a PostgreSQL database").to_owned();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&common::postgres_admin_url()).await.unwrap();
    sqlx::Executor::execute(&mut admin, format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#).as_str()).await.unwrap();
    assert_eq!(app.get("/app").await.status(), StatusCode::SERVICE_UNAVAILABLE);
    let api = app.post_same_origin("/api/session_info").send().await.unwrap();
    assert_eq!(api.status(), StatusCode::SERVICE_UNAVAILABLE);
    let callback = TestApp::bare_client()
        .post(app.url("/install"))
        .basic_auth(common::CALLBACK_USER, Some(common::CALLBACK_PASSWORD))
        .json(&json!({ "tenantId": TENANT }))
        .send()
        .await
        .unwrap();
    assert_eq!(callback.status(), StatusCode::SERVICE_UNAVAILABLE, "Commerce7 is told to try again");
    app.stop().await;
}

/// `count` calls of `/api/session_info` sent at once.
async fn simultaneous_session_info_calls(app: &TestApp, count: usize) -> Vec<reqwest::Response> {
    let calls: Vec<_> = (0..count).map(|_| tokio::spawn(app.post_same_origin("/api/session_info").send())).collect();
    let mut responses = Vec::with_capacity(count);
    for call in calls {
        responses.push(call.await.unwrap().unwrap());
    }
    responses
}

/// Calls until one is answered 200, at most `limit` times: how many got 503 before it, or `None`
/// when none was answered. Any other status fails the test.
async fn calls_until_answered<F, Fut>(limit: usize, call: &F) -> Option<usize>
where
    F: Fn() -> Fut,
    Fut: Future<Output = StatusCode>,
{
    let mut unavailable = 0;
    for attempt in 0..limit {
        match call().await {
            StatusCode::OK => return Some(unavailable),
            StatusCode::SERVICE_UNAVAILABLE => unavailable += 1,
            other => panic!("call {attempt}: {other}"),
        }
    }
    None
}

/// The pool outlives PostgreSQL ending its connections — a restart, a proxy's idle timeout: a
/// connection that sat in the pool for `db::PING_AFTER_IDLE` is pinged before it is handed out
/// and replaced if dead, so once the app has been at rest the next requests are all answered;
/// while it is busy, each ended connection fails at most the one call that meets it (503) and is
/// dropped, and the calls after it are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_in_requests_are_answered_after_postgres_ends_every_connection() {
    let Some(app) = TestApp::signed_in(TestDb::Postgres).await else {
        return;
    };
    let name = app.database.postgres_name().expect("a PostgreSQL database").to_owned();
    let call = || async { app.post_same_origin("/api/session_info").send().await.unwrap().status() };
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&common::postgres_admin_url()).await.unwrap();
    let mut end_every_connection = async || -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1) ended",
        )
        .bind(&name)
        .fetch_one(&mut admin)
        .await
        .unwrap()
    };
    // Positive control.
    for attempt in 0..3 {
        assert_eq!(call().await, StatusCode::OK, "call {attempt} before the cut");
    }

    // Busy: the next call meets an ended connection straight away.
    let ended = end_every_connection().await;
    assert!(ended > 0, "the app's connections were ended");
    let unavailable = calls_until_answered(ended as usize + 1, &call).await;
    assert!(unavailable.is_some(), "answered again within {} calls ({ended} ended connections)", ended + 1);

    // At rest: connections idle past the window are checked first, so no call fails.
    assert!(end_every_connection().await > 0, "the app's connections were ended again");
    tokio::time::sleep(libero::server::db::PING_AFTER_IDLE + Duration::from_millis(200)).await;
    for attempt in 0..3 {
        assert_eq!(call().await, StatusCode::OK, "call {attempt} after the cut, the pool at rest");
    }
    app.stop().await;
}

/// A database connection dropped silently (a NAT or proxy forgetting it: no reset, no answer
/// ever) never hangs a signed-in request: the guard's read is given up after `db::QUERY_TIMEOUT`
/// (the request gets 503) and the connection is closed, so once the pool's frozen connections
/// are gone the next request is answered on a fresh one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_dropped_database_connection_gets_503_in_bounded_time_then_requests_work() {
    let Some((app, proxy)) = signed_in_behind_a_freezing_proxy().await else { return };
    let call = || async { app.post_same_origin("/api/session_info").send().await.unwrap().status() };
    assert_eq!(call().await, StatusCode::OK, "positive control: answered through the proxy");

    let Db::Postgres(pool) = &app.db else { unreachable!("a PostgreSQL app") };
    // Back in the pool (sqlx pings a connection as it takes it back): what the freeze meets is the
    // guard's read, not a ping that would hold its place.
    let frozen = until_idle(pool).await;
    assert!(frozen >= 1 && frozen == pool.size() as usize, "the pool holds its connections idle (the premise)");
    let bounded_call =
        || async { tokio::time::timeout(STALL_BOUND, call()).await.expect("answered in bounded time, not stalled") };
    answered_after_freezing(&proxy, frozen, &bounded_call).await;
    app.stop().await;
}

/// Every connection of a full pool dropped silently at once (a NAT or a failover forgetting them
/// all) costs each call that meets one a 503, and then the app answers again: a connection whose
/// read is given up is closed, not pinged back into the pool — that ping would wait on it for as
/// long as TCP keeps it, holding its place, and with every place so held no call would get a
/// connection again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_dropped_silently_at_once_answers_again_after_one_503_per_connection() {
    let Some((app, proxy)) = signed_in_behind_a_freezing_proxy().await else { return };
    let Db::Postgres(pool) = &app.db else { unreachable!("a PostgreSQL app") };
    let max = pool.options().get_max_connections() as usize;
    for _ in 0..20 {
        if pool.size() as usize == max {
            break;
        }
        for response in simultaneous_session_info_calls(&app, 4 * max).await {
            assert_eq!(response.status(), StatusCode::OK, "answered through the proxy");
        }
    }
    assert_eq!(pool.size() as usize, max, "the pool holds all its connections (the premise)");
    // Each back in the pool (sqlx pings a connection as it takes it back): what the freeze meets
    // is the guard's read, not a ping.
    assert_eq!(until_idle(pool).await, max, "every connection is idle in the pool (the premise)");

    proxy.freeze();
    let before = proxy.accepted();
    let frozen = tokio::time::timeout(STALL_BOUND, simultaneous_session_info_calls(&app, max))
        .await
        .expect("answered in bounded time, not stalled");
    let statuses: Vec<StatusCode> = frozen.iter().map(reqwest::Response::status).collect();
    assert_eq!(statuses, vec![StatusCode::SERVICE_UNAVAILABLE; max], "each call met a frozen connection");

    let call = app.post_same_origin("/api/session_info").send();
    let after = tokio::time::timeout(STALL_BOUND, call).await.expect("answered in bounded time").unwrap();
    assert_eq!(after.status(), StatusCode::OK, "answered on a fresh connection");
    assert!(proxy.accepted() > before, "through a connection opened after the freeze");
    app.stop().await;
}

/// A write meets a silently dropped connection as a read does: the install callback, whose first
/// query is its write (no session is read before it), is answered 503 within the query timeout,
/// not left hanging for as long as TCP keeps the connection, and a callback sent again is
/// answered on a fresh connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_on_a_silently_dropped_connection_gets_503_in_bounded_time_then_writes_work() {
    let Some((app, proxy)) = signed_in_behind_a_freezing_proxy().await else { return };
    let install = || async {
        let sent = tokio::time::timeout(STALL_BOUND, app.c7.send_install(TENANT));
        sent.await.expect("answered in bounded time, not stalled").expect("the callback was sent")
    };
    assert_eq!(install().await, StatusCode::OK, "positive control: a reinstall written through the proxy");
    let Db::Postgres(pool) = &app.db else { unreachable!("a PostgreSQL app") };
    let frozen = until_idle(pool).await;
    assert_eq!(frozen, pool.size() as usize, "every connection is idle in the pool (the premise)");

    answered_after_freezing(&proxy, frozen, &install).await;
    app.stop().await;
}

/// A write that waits on SQLite's write lock (another process holds it) fails with "database is
/// locked" at SQLite's busy timeout, inside the query timeout: the merchant gets 503 and loses
/// nothing, the connection stays in the pool (a query given up by the timeout would have been
/// dropped from it), and the same save goes through once the lock is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_waiting_on_a_locked_sqlite_database_gets_503_keeps_its_connection_and_saves_later() {
    let Some(app) = TestApp::signed_in(TestDb::Sqlite).await else { return };
    let save = |org: &'static str| {
        let app = &app;
        async move {
            let version = get_settings(app).await["version"].clone();
            let sent = app.post_same_origin("/api/save_settings").form(&settings_form(&settings(org), &version)).send();
            tokio::time::timeout(STALL_BOUND, sent).await.expect("answered in bounded time").unwrap().status()
        }
    };
    assert_eq!(save("Before The Lock").await, StatusCode::OK, "positive control: the save is written");
    let Db::Sqlite(pool) = &app.db else { unreachable!("a SQLite app") };
    let before = pool.size();

    let mut other = sqlx::SqliteConnection::connect(&app.database.url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut other).await.unwrap();
    assert_eq!(save("While Locked").await, StatusCode::SERVICE_UNAVAILABLE, "the write could not take the lock");
    assert_eq!(pool.size(), before, "the connection went back to the pool: SQLite's busy timeout answered first");
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    assert_eq!(get_settings(&app).await["settings"]["org_name"], "Before The Lock", "nothing half-saved");

    assert_eq!(save("After The Lock").await, StatusCode::OK);
    assert_eq!(get_settings(&app).await["settings"]["org_name"], "After The Lock");
    app.stop().await;
}

/// How many of the pool's connections are idle once all are (a ping on return takes a round
/// trip), or after ten seconds, a hang guard: the callers' premise then fails and says so.
async fn until_idle(pool: &sqlx::PgPool) -> usize {
    for _ in 0..1000 {
        if pool.num_idle() == pool.size() as usize {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    pool.num_idle()
}

/// Freezes the `frozen` connections `proxy` carries, then makes calls until one is answered:
/// each call answered in bounded time (`call` bounds it), each frozen connection costing one call
/// a 503 at most and at least one call meeting one (the control), and the answer coming through a
/// connection opened after the freeze.
async fn answered_after_freezing<F, Fut>(proxy: &common::proxy::FreezingProxy, frozen: usize, call: &F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = StatusCode>,
{
    proxy.freeze();
    let unavailable = calls_until_answered(frozen + 1, call).await;
    let unavailable = unavailable
        .unwrap_or_else(|| panic!("answered again within {} calls ({frozen} frozen connections)", frozen + 1));
    assert!(unavailable >= 1, "a frozen connection was used and given up (the control of this test)");
    assert!(proxy.accepted() > frozen as u64, "a fresh connection through the proxy answered");
}

/// How long a call may take while the database's connections are frozen: the query timeout and
/// a margin.
const STALL_BOUND: Duration = Duration::from_secs(libero::server::db::QUERY_TIMEOUT.as_secs() + 5);

/// A signed-in app on a fresh PostgreSQL database that it reaches through a `FreezingProxy`
/// (`None` without PostgreSQL).
async fn signed_in_behind_a_freezing_proxy() -> Option<(TestApp, common::proxy::FreezingProxy)> {
    let database = common::FreshDatabase::create(TestDb::Postgres).await?;
    let options: PgConnectOptions = database.url.parse().expect("a PostgreSQL URL");
    let upstream = tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .expect("the PostgreSQL host resolves")
        .next()
        .expect("an address");
    let proxy = common::proxy::FreezingProxy::start(upstream).await;
    let mut proxied = url::Url::parse(&database.url).unwrap();
    proxied.set_host(Some("127.0.0.1")).unwrap();
    proxied.set_port(Some(proxy.addr.port())).unwrap();
    let app = TestApp::spawn_on(database, &[("DATABASE_URL", proxied.to_string())]).await;
    app.install(TENANT).await;
    signed_in_page(app.sign_in(TENANT, OWNER_TOKEN).await).await;
    Some((app, proxy))
}

on_both_databases!(more_simultaneous_signed_in_calls_than_pool_connections_are_all_answered, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    // More than the pool's connections (PostgreSQL 10, SQLite 8).
    let count = 48;
    let responses = simultaneous_session_info_calls(&app, count).await;
    assert_eq!(responses.len(), count);
    for response in responses {
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.json::<Value>().await.unwrap()["tenant_id"], TENANT);
    }
    app.stop().await;
});

on_both_databases!(a_malformed_server_function_body_gets_400_and_changes_nothing, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let before = get_settings(&app).await;
    let response = app
        .post_same_origin("/api/save_settings")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("settings[weekly_summary]=maybe&version=42")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "bad_request");
    assert_eq!(get_settings(&app).await, before);
    app.stop().await;
});

on_both_databases!(trailing_slashes_do_not_bypass_the_guard_or_the_sign_in, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    // A trailing slash is sent to the page without it (query kept), which the guard decides.
    for (path, canonical) in [("/app/", "/app"), ("/settings/", "/settings"), ("/settings//?x=1", "/settings?x=1")] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::PERMANENT_REDIRECT, "{path}");
        assert_eq!(response.headers()[header::LOCATION], canonical, "{path}");
        assert!(!response.text().await.unwrap().contains("libero-tab"), "{path}: no page, no token");
        no_session_page(app.get(canonical).await, "missing").await;
    }
    let response = app.get(&format!("/app/?tenantId={TENANT}&account={OWNER_TOKEN}")).await;
    // Signed in, and sent to the page's own address with a handoff code: the token nowhere.
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let to = location(&response).to_owned();
    assert!(to.starts_with("/app?handoff=") && !to.contains(OWNER_TOKEN), "{to}");
    assert_eq!(response.headers()[header::REFERRER_POLICY], "no-referrer");
    assert_eq!(app.session_rows().await.len(), 1);
    assert_eq!(app.get(&to).await.status(), StatusCode::OK, "the handoff opens the dashboard");
    assert_eq!(app.get("/settings").await.status(), StatusCode::OK, "and the cookie the other pages");
    let slashed = app.get("/settings/").await;
    assert_eq!(slashed.status(), StatusCode::PERMANENT_REDIRECT, "signed in too: redirected, not a 404 page");
    app.stop().await;
});

on_both_databases!(plain_signed_in_requests_neither_rewrite_the_row_nor_reissue_the_cookie, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let updated_before = app.session_updated_at().await;
    for path in ["/app", "/settings"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(set_cookies(&response).is_empty(), "{path}: no Set-Cookie on a plain request");
    }
    assert_eq!(app.session_updated_at().await, updated_before, "no write within the touch interval");
    app.stop().await;
});

on_both_databases!(a_session_of_an_uninstalled_or_reinstalled_tenant_is_refused, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let cookie = app.session_cookie().unwrap();
    let send = || TestApp::bare_client().get(app.url("/app")).header(header::COOKIE, &cookie).send();
    assert_eq!(send().await.unwrap().status(), StatusCode::OK, "positive control: the cookie is a session");
    // Uninstalled by hand, not through the callback: the database ends the sessions all the same.
    app.mark_uninstalled(TENANT).await;
    let response = send().await.unwrap();
    assert!(clears_the_cookie(&response));
    no_session_page(response, "ended").await;
    // A reinstall does not bring sessions from before it back.
    app.install(TENANT).await;
    no_session_page(send().await.unwrap(), "ended").await; // signed in under the previous install generation
    app.stop().await;
});

on_both_databases!(a_same_origin_post_without_sec_fetch_site_is_judged_by_origin_and_host, |kind| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let foreign =
        app.client.post(app.url("/api/session_info")).header("origin", "http://127.0.0.1:1").send().await.unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let own = app.client.post(app.url("/api/session_info")).header("origin", &app.base).send().await.unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    app.stop().await;
});

// --- PostgreSQL on the same machine, over its Unix socket (docs/operations.md) ----------------

/// A signed-in merchant is served with `DATABASE_URL` naming the server's socket
/// (`postgres:///db?host=<dir>`), the way operations.md recommends for a co-located PostgreSQL.
/// Without the socket (`TEST_POSTGRES_SOCKET_DIR`, default `/var/run/postgresql`) it is a skip.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_reached_over_its_unix_socket_serves_signed_in_calls() {
    let dir = std::env::var("TEST_POSTGRES_SOCKET_DIR").unwrap_or_else(|_| "/var/run/postgresql".to_owned());
    if !std::path::Path::new(&dir).join(".s.PGSQL.5432").exists() {
        common::skip_or_fail(&format!("no PostgreSQL socket in {dir}"));
        return;
    }
    let Some(mut database) = common::FreshDatabase::create(TestDb::Postgres).await else {
        return;
    };
    let admin = url::Url::parse(&common::postgres_admin_url()).expect("a URL");
    let name = database.postgres_name().expect("a PostgreSQL database").to_owned();
    database.url = format!("postgres:///{name}?host={dir}&user={}", admin.username());
    let app = TestApp::spawn_on(database, &[]).await;
    app.install(TENANT).await;
    handoff_code(app.sign_in(TENANT, OWNER_TOKEN).await).await;

    let response = app.post_same_origin("/api/session_info").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let info: Value = response.json().await.unwrap();
    assert_eq!(info["tenant_id"], TENANT, "the session read over the socket: {info}");
    assert_eq!(app.c7.user_calls(), 1, "the call was answered from the database, not Commerce7");
    // The control: the same call without the session is refused.
    let anonymous = TestApp::bare_client()
        .post(app.url("/api/session_info"))
        .header("origin", app.url(""))
        .header("sec-fetch-site", "same-origin")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
}
