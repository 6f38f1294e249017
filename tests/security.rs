//! The second security pass (issue 26), over real HTTP on SQLite and PostgreSQL: sign-out always
//! signs out, nothing revives a deleted session, forms follow the tab and not the cookie, a copy
//! of a tab token can be cut off, and only errors the server signed are shown.

mod common;

use chrono::{TimeDelta, Utc};
use common::{
    OTHER_TENANT, OTHER_TOKEN, OWNER_TOKEN, RowLock, STAFF_TOKEN, TENANT, TEST_SECRET, TestApp, TestDb, browser_tab,
    call_with_bearer, clears_the_cookie, handoff_code, signed_in_page, tab_of, tab_token,
};
use libero::server::{
    db::Db,
    sessions::{manage::SessionHandles, tab::TabTokens},
};
use reqwest::{StatusCode, header};
use serde_json::Value;

/// What a browser sends for a form it posts itself: a same-origin navigation asking for HTML.
const HTML: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

fn location(response: &reqwest::Response) -> String {
    response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

/// The same tab token, signed correctly but past its expiry (a page older than 15 minutes).
fn expired_copy(token: &str) -> String {
    let tokens = TabTokens::new(TEST_SECRET);
    let claims = tokens.verify_signed(token).expect("a token of ours");
    tokens.mint(&claims.tenant_id, &claims.row_id, claims.generation, Utc::now() - TimeDelta::minutes(20))
}

async fn row_count(app: &TestApp) -> i64 {
    match &app.db {
        Db::Sqlite(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM app_sessions").fetch_one(pool).await.unwrap(),
        Db::Postgres(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM app_sessions").fetch_one(pool).await.unwrap(),
    }
}

/// A plain `POST /logout` from the app's page with the form body `body`.
async fn sign_out_form(app: &TestApp, body: String) -> reqwest::Response {
    app.post_same_origin("/logout")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ACCEPT, HTML)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// A server-function form posted by the browser itself, with the page's `tab` field.
fn plain_form(app: &TestApp, endpoint: &str, fields: &[(&str, &str)]) -> reqwest::RequestBuilder {
    app.post_same_origin(&format!("/api/{endpoint}")).header(header::ACCEPT, HTML).form(fields)
}

// --- 1. Sign-out always signs out --------------------------------------------------------------

on_both_databases!(a_sign_out_form_with_a_junk_tab_field_ends_the_cookies_session, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    browser_tab(&app, TENANT, OWNER_TOKEN).await;
    let cookie_call = || app.post_same_origin("/api/session_info").send();
    assert_eq!(cookie_call().await.unwrap().status(), StatusCode::OK, "control: signed in by the cookie");

    let junk = sign_out_form(&app, "tab=v2.demo-winery.AAAA.0.1.AAAA".to_owned()).await;
    assert_eq!(junk.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&junk), "/");
    assert!(clears_the_cookie(&junk), "the cookie's session ended, and the cookie with it");
    assert_eq!(cookie_call().await.unwrap().status(), StatusCode::UNAUTHORIZED, "the old cookie opens nothing");
    assert_eq!(row_count(&app).await, 0);
    app.stop().await;
});

on_both_databases!(a_sign_out_form_with_an_expired_tab_token_ends_its_own_session, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    app.install(OTHER_TENANT).await;
    // Tab one is demo-winery's; then the browser's one cookie becomes second-cellar's (tab two).
    let (_, tab_one) = browser_tab(&app, TENANT, OWNER_TOKEN).await;
    let (_, tab_two) = browser_tab(&app, OTHER_TENANT, OTHER_TOKEN).await;
    let expired = expired_copy(&tab_one);
    assert_eq!(
        call_with_bearer(&app, "session_info", &expired).await.status(),
        StatusCode::UNAUTHORIZED,
        "control: past its expiry the token authorises nothing"
    );
    assert_eq!(call_with_bearer(&app, "session_info", &tab_one).await.status(), StatusCode::OK, "control: alive");

    let signed_out = sign_out_form(&app, format!("tab={expired}")).await;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert_eq!(call_with_bearer(&app, "session_info", &tab_one).await.status(), StatusCode::UNAUTHORIZED, "ended");
    assert!(!clears_the_cookie(&signed_out), "the cookie is the other winery's tab's: kept");
    assert_eq!(call_with_bearer(&app, "session_info", &tab_two).await.status(), StatusCode::OK, "tab two works on");
    app.stop().await;
});

on_both_databases!(
    a_sign_out_form_whose_session_is_gone_ends_the_cookies_session_of_that_winery,
    |kind: TestDb| async move {
        let Some(app) = TestApp::spawn(kind).await else { return };
        app.install(TENANT).await;
        app.install(OTHER_TENANT).await;
        // The page's session was replaced (Sam signed in over Dana in this browser): its token names
        // a row that is gone, while the cookie names Sam's session of the same winery.
        let (_, dana) = browser_tab(&app, TENANT, OWNER_TOKEN).await;
        browser_tab(&app, TENANT, common::STAFF_TOKEN).await;
        assert_eq!(call_with_bearer(&app, "session_info", &dana).await.status(), StatusCode::UNAUTHORIZED, "gone");
        let signed_out = sign_out_form(&app, format!("tab={dana}")).await;
        assert!(clears_the_cookie(&signed_out), "the same winery's session the cookie names ended");
        assert_eq!(app.post_same_origin("/api/session_info").send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

        // Control: the cookie of *another* winery is never the fallback.
        let (_, lee) = browser_tab(&app, OTHER_TENANT, OTHER_TOKEN).await;
        let kept = sign_out_form(&app, format!("tab={dana}")).await;
        assert!(!clears_the_cookie(&kept));
        assert_eq!(call_with_bearer(&app, "session_info", &lee).await.status(), StatusCode::OK);
        app.stop().await;
    }
);

on_both_databases!(the_hydrated_sign_out_ends_the_session_of_an_expired_tab_token, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    let token = tab_of(&app, TENANT, OWNER_TOKEN).await;
    let expired = expired_copy(&token);
    assert_eq!(
        call_with_bearer(&app, "renew_tab_token", &expired).await.status(),
        StatusCode::UNAUTHORIZED,
        "control: an expired token cannot renew itself"
    );
    assert_eq!(call_with_bearer(&app, "logout", &expired).await.status(), StatusCode::OK);
    assert_eq!(call_with_bearer(&app, "session_info", &token).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(row_count(&app).await, 0);
    // A forged token ends nothing: 401, and the page falls through to the plain form.
    let other = tab_of(&app, TENANT, OWNER_TOKEN).await;
    let forged = TabTokens::new("another-secret-another-secret-0000000").mint(
        TENANT,
        &TabTokens::new(TEST_SECRET).verify_signed(&other).unwrap().row_id,
        0,
        Utc::now() + TimeDelta::minutes(5),
    );
    assert_eq!(call_with_bearer(&app, "logout", &forged).await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(call_with_bearer(&app, "session_info", &other).await.status(), StatusCode::OK);
    app.stop().await;
});

// --- 3. Nothing revives a deleted session ------------------------------------------------------

on_both_databases!(theme_flipping_reopens_beside_a_logout_never_revive_the_session, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    let cookie = {
        signed_in_page(app.sign_in(TENANT, OWNER_TOKEN).await).await;
        app.session_cookie().expect("signed in")
    };
    // A reopening takes the fast path (no Commerce7 call); anything else would need Commerce7,
    // which from now on is down: a cookie set from here on can only be a revived session.
    let reopen = |theme: &'static str| {
        TestApp::bare_client()
            .get(app.url(&format!("/app?tenantId={TENANT}&account={OWNER_TOKEN}&adminUITheme={theme}")))
            .header(header::COOKIE, &cookie)
            .header("sec-fetch-dest", "iframe")
            .send()
    };
    let control = reopen("dark").await.unwrap();
    assert_eq!(control.status(), StatusCode::OK, "control: the fast path answers");
    app.c7.set_failure(Some(503));

    for round in 0..5 {
        let mut reopens = Vec::new();
        for i in 0..12 {
            reopens.push(tokio::spawn(reopen(if (i + round) % 2 == 0 { "light" } else { "dark" })));
        }
        if round == 2 {
            let logout = TestApp::bare_client()
                .post(app.url("/api/logout"))
                .header(header::COOKIE, &cookie)
                .header("sec-fetch-site", "same-origin")
                .send()
                .await
                .unwrap();
            assert_eq!(logout.status(), StatusCode::OK);
        }
        for reopen in reopens {
            let response = reopen.await.unwrap().unwrap();
            let revived = response
                .headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|c| c.starts_with("__libero_session=") && !c.starts_with("__libero_session=;"));
            assert!(!revived, "round {round}: a reopening set a session cookie ({})", response.status());
        }
    }
    assert_eq!(row_count(&app).await, 0, "the logout stands");
    app.stop().await;
});

on_both_databases!(a_theme_change_on_reopening_is_stored_on_the_session, |kind: TestDb| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    assert_eq!(app.only_session().await.theme, "light", "control");
    let reopened = app.get(&format!("/app?tenantId={TENANT}&account={OWNER_TOKEN}&adminUITheme=dark")).await;
    assert!(reopened.headers().get(header::SET_COOKIE).is_none(), "the same session: no new cookie");
    assert!(signed_in_page(reopened).await.html.contains(r#"data-theme="dark""#), "the page in the new theme");
    assert_eq!(app.only_session().await.theme, "dark");
    app.stop().await;
});

// --- 4. Forms follow the tab, not the cookie ---------------------------------------------------

/// Both wineries installed, and in the app's one browser a tab of demo-winery's owner, then one of
/// second-cellar's (whose session the cookie then names): the first tab's token.
async fn first_tab_under_the_other_winerys_cookie(app: &TestApp) -> String {
    app.install(TENANT).await;
    app.install(OTHER_TENANT).await;
    let (_, tab_one) = browser_tab(app, TENANT, OWNER_TOKEN).await;
    browser_tab(app, OTHER_TENANT, OTHER_TOKEN).await;
    tab_one
}

on_both_databases!(a_plain_form_acts_on_the_tabs_winery_not_on_the_cookies, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    let tab_one = first_tab_under_the_other_winerys_cookie(&app).await;
    // Each winery's user is signed in somewhere else too.
    let elsewhere_one = tab_of(&app, TENANT, OWNER_TOKEN).await;
    let elsewhere_two = tab_of(&app, OTHER_TENANT, OTHER_TOKEN).await;

    let answer = plain_form(&app, "sign_out_other_sessions", &[("tab", &tab_one)]).send().await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER, "a page's form gets a redirect, not JSON");
    assert!(location(&answer).starts_with("/app?handoff="), "{}", location(&answer));
    assert_eq!(
        call_with_bearer(&app, "session_info", &elsewhere_one).await.status(),
        StatusCode::UNAUTHORIZED,
        "the tab's winery: its user's other session ended"
    );
    assert_eq!(
        call_with_bearer(&app, "session_info", &elsewhere_two).await.status(),
        StatusCode::OK,
        "the cookie's winery: untouched"
    );
    app.stop().await;
});

// The same for the forms that sign out one session (the panel) or one person everywhere (the
// report): in a browser whose cookie belongs to the other winery, the tab's field decides. Control:
// the same form without the field acts for the cookie's user, who may not end that session.
on_both_databases!(every_sign_out_form_acts_on_the_tabs_winery_not_on_the_cookies, |kind: TestDb| async move {
    for (endpoint, target_token) in [("sign_out_session", OWNER_TOKEN), ("sign_out_user_everywhere", STAFF_TOKEN)] {
        let Some(app) = TestApp::spawn(kind).await else { return };
        let tab_one = first_tab_under_the_other_winerys_cookie(&app).await;
        let target = tab_of(&app, TENANT, target_token).await;
        let elsewhere_two = tab_of(&app, OTHER_TENANT, OTHER_TOKEN).await;
        let row = TabTokens::new(TEST_SECRET).verify_signed(&target).unwrap().row_id;
        let handle = SessionHandles::new(TEST_SECRET).of(&row);

        let by_cookie = plain_form(&app, endpoint, &[("handle", &handle)]).send().await.unwrap();
        assert_eq!(by_cookie.status(), StatusCode::SEE_OTHER, "{endpoint}: a page, not JSON");
        let alive = call_with_bearer(&app, "session_info", &target).await.status();
        assert_eq!(alive, StatusCode::OK, "{endpoint}: the cookie's user cannot end it");

        let by_tab = plain_form(&app, endpoint, &[("tab", &tab_one), ("handle", &handle)]).send().await.unwrap();
        assert_eq!(by_tab.status(), StatusCode::SEE_OTHER, "{endpoint}: a page, not JSON");
        let ended = call_with_bearer(&app, "session_info", &target).await.status();
        assert_eq!(ended, StatusCode::UNAUTHORIZED, "{endpoint}: the tab's winery's session ended");
        let untouched = call_with_bearer(&app, "session_info", &elsewhere_two).await.status();
        assert_eq!(untouched, StatusCode::OK, "{endpoint}: the cookie's winery untouched");
        app.stop().await;
    }
});

on_both_databases!(a_plain_form_with_an_expired_tab_field_saves_for_its_session, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    let token = tab_of(&app, TENANT, OWNER_TOKEN).await;
    let loaded: Value = call_with_bearer(&app, "get_settings", &token).await.json().await.unwrap();
    let version = loaded["version"].as_str().unwrap().to_owned();
    let expired = expired_copy(&token);
    let fields = [
        ("tab", expired.as_str()),
        ("version", version.as_str()),
        ("settings[org_name]", "Saved Without Script"),
        ("settings[contact_name]", "Dana Owner"),
        ("settings[contact_email]", "dana@demo-winery.example"),
    ];
    // No cookie at all (a browser that keeps none): the field alone decides.
    let saved = TestApp::bare_client()
        .post(app.url("/api/save_settings"))
        .header("sec-fetch-site", "same-origin")
        .header(header::ACCEPT, HTML)
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&saved), "/settings", "back on the page, but no fresh credential for an expired token");
    let fresh = tab_of(&app, TENANT, OWNER_TOKEN).await;
    let stored: Value = call_with_bearer(&app, "get_settings", &fresh).await.json().await.unwrap();
    assert_eq!(stored["settings"]["org_name"], "Saved Without Script", "saved for the field's session");

    // Control: the page's live token gets a handoff code with the answer.
    let version = stored["version"].as_str().unwrap().to_owned();
    let fields = [
        ("tab", token.as_str()),
        ("version", version.as_str()),
        ("settings[org_name]", "Saved Again"),
        ("settings[contact_name]", "Dana Owner"),
        ("settings[contact_email]", "dana@demo-winery.example"),
    ];
    let live = TestApp::bare_client()
        .post(app.url("/api/save_settings"))
        .header("sec-fetch-site", "same-origin")
        .header(header::ACCEPT, HTML)
        .form(&fields)
        .send()
        .await
        .unwrap();
    let back = location(&live);
    assert!(back.starts_with("/settings?handoff="), "openable without a cookie: {back}");
    let page = TestApp::bare_client().get(app.url(&back)).send().await.unwrap();
    assert!(page.text().await.unwrap().contains(r#"value="Saved Again""#));
    app.stop().await;
});

on_both_databases!(an_expired_tab_token_names_its_session_only_in_a_pages_plain_form, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    let token = tab_of(&app, TENANT, OWNER_TOKEN).await;
    let expired = expired_copy(&token);
    let ask = |endpoint: &str, accept: &str| {
        TestApp::bare_client()
            .post(app.url(&format!("/api/{endpoint}")))
            .header("sec-fetch-site", "same-origin")
            .header(header::ACCEPT, accept.to_owned())
            .form(&[("tab", expired.as_str())])
            .send()
    };
    // Not a form a page posts, or not posted by the browser itself: the field is not read.
    assert_eq!(ask("get_settings", HTML).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(ask("list_my_sessions", HTML).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(ask("sign_out_other_sessions", "application/json").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    // Control: the page's own plain form is served, with no fresh credential in its answer.
    let answer = ask("sign_out_other_sessions", HTML).await.unwrap();
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&answer), "/app");
    assert!(!answer.text().await.unwrap().contains("v2."), "no tab token in the body either");
    app.stop().await;
});

on_both_databases!(a_plain_form_whose_tab_field_names_no_session_gets_a_page, |kind: TestDb| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let junk = plain_form(&app, "sign_out_other_sessions", &[("tab", "junk")]).send().await.unwrap();
    assert_eq!(junk.status(), StatusCode::UNAUTHORIZED);
    let html = common::no_session_page(junk, "ended").await;
    assert!(html.contains("<html"), "a page, not JSON");
    // Never the cookie's session instead: it is untouched and still works.
    assert_eq!(app.post_same_origin("/api/session_info").send().await.unwrap().status(), StatusCode::OK);
    // A plain form from another site gets a page too.
    let cross_site = app
        .client
        .post(app.url("/api/sign_out_other_sessions"))
        .header("origin", "https://evil.example")
        .header(header::ACCEPT, HTML)
        .form(&[("tab", "junk")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    assert!(cross_site.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
    // Control: the page's own token gets the redirect back to the page.
    let page = app.get("/app").await.text().await.unwrap();
    let token = tab_token(&page).unwrap();
    let own = plain_form(&app, "sign_out_other_sessions", &[("tab", &token)]).send().await.unwrap();
    assert_eq!(own.status(), StatusCode::SEE_OTHER);
    app.stop().await;
});

// --- 5. A copy of a tab token can be cut off ---------------------------------------------------

on_both_databases!(signing_out_other_sessions_ends_every_other_tab_token_of_this_session, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    let mine = tab_of(&app, TENANT, OWNER_TOKEN).await;
    // A copy: someone saw the token once and renewed it from another client.
    let renewed: Value = call_with_bearer(&app, "renew_tab_token", &mine).await.json().await.unwrap();
    let copy = renewed["token"].as_str().unwrap().to_owned();
    assert_eq!(call_with_bearer(&app, "session_info", &copy).await.status(), StatusCode::OK, "control: the copy works");

    let answer = call_with_bearer(&app, "sign_out_other_sessions", &mine).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let done: Value = answer.json().await.unwrap();
    let fresh = done["tab"]["token"].as_str().expect("a fresh token for the tab asking").to_owned();
    assert_eq!(call_with_bearer(&app, "session_info", &copy).await.status(), StatusCode::UNAUTHORIZED, "the copy");
    assert_eq!(call_with_bearer(&app, "resume_tab", &copy).await.status(), StatusCode::UNAUTHORIZED, "cannot resume");
    assert_eq!(call_with_bearer(&app, "session_info", &mine).await.status(), StatusCode::UNAUTHORIZED, "old token");
    assert_eq!(call_with_bearer(&app, "session_info", &fresh).await.status(), StatusCode::OK, "the tab works on");
    assert_eq!(row_count(&app).await, 1, "the session itself goes on");
    app.stop().await;
});

on_both_databases!(a_handoff_code_a_copy_asked_for_dies_with_its_generation, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    let mine = tab_of(&app, TENANT, OWNER_TOKEN).await;
    let renewed: Value = call_with_bearer(&app, "renew_tab_token", &mine).await.json().await.unwrap();
    let copy = renewed["token"].as_str().unwrap().to_owned();
    let code: String = call_with_bearer(&app, "resume_tab", &copy).await.json().await.unwrap();

    let done: Value = call_with_bearer(&app, "sign_out_other_sessions", &mine).await.json().await.unwrap();
    let fresh = done["tab"]["token"].as_str().unwrap().to_owned();
    let page = TestApp::bare_client().get(app.url(&format!("/app?handoff={code}"))).send().await.unwrap();
    common::no_session_page(page, "missing").await;
    // A cut-off copy cannot sign the session out either (no cookie to fall back on here).
    let bare_logout = TestApp::bare_client()
        .post(app.url("/logout"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("tab", copy.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(bare_logout.status(), StatusCode::SEE_OTHER);
    assert_eq!(call_with_bearer(&app, "session_info", &fresh).await.status(), StatusCode::OK, "still signed in");
    // Control: the live token's code opens the page.
    let code: String = call_with_bearer(&app, "resume_tab", &fresh).await.json().await.unwrap();
    let page = TestApp::bare_client().get(app.url(&format!("/app?handoff={code}"))).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    app.stop().await;
});

// A form of the old generation let in just before *Sign out all other sessions* moves the
// generation on gets no handoff code of the new one: the move lands while the form's answer waits
// on the row (held by the test), after the guard let the form in — a form that moves nothing
// itself, and a second *Sign out all other sessions* (a copy of the token racing the tab), which
// must not move the generation again. Control: released unmoved, the same form gets its code.
on_both_databases!(a_form_let_in_before_the_generation_moves_gets_no_code_of_the_new_one, |kind: TestDb| async move {
    for (endpoint, moved) in [
        ("sign_out_session", false),
        ("sign_out_session", true),
        ("sign_out_other_sessions", false),
        ("sign_out_other_sessions", true),
    ] {
        let Some(app) = TestApp::spawn(kind).await else { return };
        app.install(TENANT).await;
        let copy = tab_of(&app, TENANT, OWNER_TOKEN).await;
        let row = TabTokens::new(TEST_SECRET).verify_signed(&copy).unwrap().row_id;
        let mut lock = RowLock::take(&app, "SELECT 1 FROM app_sessions WHERE id = $1 FOR UPDATE", &row).await;
        let handle = if endpoint == "sign_out_session" { &[("handle", "junk")][..] } else { &[] };
        let fields: Vec<(&str, &str)> = [("tab", copy.as_str())].into_iter().chain(handle.iter().copied()).collect();
        let form = tokio::spawn(plain_form(&app, endpoint, &fields).send());
        lock.wait_for_waiters(1).await;
        assert!(!form.is_finished(), "{endpoint}: the form waits on the row");
        if moved {
            let next_generation = "UPDATE app_sessions SET tab_generation = tab_generation + 1, handoff_hash = NULL,
                                          handoff_expires_at = NULL WHERE id = $1";
            lock.commit_after(next_generation, &row).await;
        } else {
            lock.release().await;
        }
        let answer = form.await.unwrap().unwrap();
        let case = format!("{endpoint}, moved: {moved}: {}", location(&answer));
        assert_eq!(answer.status(), StatusCode::SEE_OTHER, "{case}");
        assert_eq!(location(&answer).contains("handoff="), !moved, "{case}");
        app.stop().await;
    }
});

// --- 6. Only errors the server signed are shown ------------------------------------------------

on_both_databases!(an_error_in_a_crafted_link_is_not_shown, |kind: TestDb| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    // {"error":"validation","fields":{"org_name":"Call support now"}}, as leptos encodes it.
    let crafted = "/settings?__path=%2Fapi%2Fsave_settings&__err=eyJlcnJvciI6InZhbGlkYXRpb24iLCJmaWVsZHMiOnsib3JnX25hbWUiOiJDYWxsIHN1cHBvcnQgbm93In19";
    let response = app.get(crafted).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/settings", "the page without the crafted error");
    let page = app.follow(&response).await.text().await.unwrap();
    assert!(!page.contains("Call support now"));
    // {"error":"unauthorized"}, which would make the tab drop its credential, is removed alike.
    let crafted = "/app?__path=%2Fapi%2Fsave_settings&__err=eyJlcnJvciI6InVuYXV0aG9yaXplZCJ9";
    let response = app.get(crafted).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/app", "the page without the crafted error");
    assert_eq!(app.follow(&response).await.status(), StatusCode::OK, "still signed in");

    // Control: an error the server produced for this session is shown.
    let page_html = app.get("/settings").await.text().await.unwrap();
    let token = tab_token(&page_html).unwrap();
    let version = {
        let rest = &page_html[page_html.find(r#"name="version""#).unwrap()..];
        let value = &rest[rest.find(r#"value=""#).unwrap() + 7..];
        value[..value.find('"').unwrap()].to_owned()
    };
    let fields = [
        ("tab", token.as_str()),
        ("version", version.as_str()),
        ("settings[org_name]", " "),
        ("settings[contact_name]", "Dana Owner"),
        ("settings[contact_email]", "dana@demo-winery.example"),
    ];
    let refused = plain_form(&app, "save_settings", &fields).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::SEE_OTHER);
    let back = location(&refused);
    assert!(back.contains("__err=") && back.contains("__sig="), "{back}");
    let shown = app.get(&back).await;
    assert_eq!(shown.status(), StatusCode::OK);
    let shown = shown.text().await.unwrap();
    assert!(shown.contains("Please correct the highlighted fields."), "{shown}");

    // The same signed error in another session's page is not shown.
    let other = TestApp::bare_client();
    let sign_in = other
        .get(app.url(&format!("/app?tenantId={TENANT}&account={OWNER_TOKEN}")))
        .header("sec-fetch-dest", "iframe")
        .send()
        .await
        .unwrap();
    let code = handoff_code(sign_in).await;
    let (_, error_query) = back.split_once('?').unwrap();
    let error_query: String =
        error_query.split('&').filter(|pair| !pair.starts_with("handoff=")).collect::<Vec<_>>().join("&");
    let elsewhere = other.get(app.url(&format!("/settings?handoff={code}&{error_query}"))).send().await.unwrap();
    assert_eq!(elsewhere.status(), StatusCode::SEE_OTHER, "signed for another session: removed");
    assert_eq!(location(&elsewhere), "/settings");
    app.stop().await;
});

// --- 8. Content-Security-Policy and request ids ------------------------------------------------

/// The nonce of an answer's `Content-Security-Policy`.
fn policy_nonce(response: &reqwest::Response) -> String {
    let policy = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
    for directive in ["script-src 'self' 'nonce-", "'wasm-unsafe-eval'", "object-src 'none'", "base-uri 'none'"] {
        assert!(policy.contains(directive), "{directive} in {policy}");
    }
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let start = policy.find("'nonce-").unwrap() + "'nonce-".len();
    policy[start..].split('\'').next().unwrap().to_owned()
}

/// Every inline `<script>` of `html` carries `nonce` or is the tab bootstrap (allowed by its hash);
/// returns how many carry the nonce.
fn inline_scripts_are_allowed(html: &str, nonce: &str) -> usize {
    let mut with_nonce = 0;
    for tag in html.split("<script").skip(1) {
        let open = &tag[..tag.find('>').unwrap()];
        let body = &tag[tag.find('>').unwrap() + 1..tag.find("</script>").unwrap()];
        if open.contains(" src=") {
            continue;
        }
        if open.contains(&format!(r#"nonce="{nonce}""#)) {
            with_nonce += 1;
        } else {
            assert_eq!(body, libero::document::BOOTSTRAP_SCRIPT, "an inline script without the nonce: <script{open}>");
        }
    }
    with_nonce
}

on_both_databases!(inline_scripts_carry_the_nonce_of_their_answers_policy, |kind: TestDb| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    for path in ["/", "/app", "/settings"] {
        let first = app.get(path).await;
        assert_eq!(first.status(), StatusCode::OK, "{path}");
        let nonce = policy_nonce(&first);
        let html = first.text().await.unwrap();
        assert!(inline_scripts_are_allowed(&html, &nonce) >= 1, "{path}: the hydration script carries the nonce");
        let second = policy_nonce(&app.get(path).await);
        assert_ne!(second, nonce, "{path}: a new nonce for every answer");
    }
    // The error and "no session" pages inline only the bootstrap.
    let no_session = TestApp::bare_client().get(app.url("/resume")).send().await.unwrap();
    let nonce = policy_nonce(&no_session);
    inline_scripts_are_allowed(&no_session.text().await.unwrap(), &nonce);
    app.stop().await;
});

on_both_databases!(a_client_request_id_is_kept_only_when_it_is_a_bounded_token, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    let with_id = |id: &str| TestApp::bare_client().get(app.url("/healthz")).header("x-request-id", id).send();
    let kept = with_id("proxy-7f3a-0001").await.unwrap();
    assert_eq!(kept.headers()["x-request-id"], "proxy-7f3a-0001", "control: a proxy's token is kept");
    for junk in ["id with spaces", "<img src=x>", &"a".repeat(65), "a_b"] {
        let replaced = with_id(junk).await.unwrap();
        let id = replaced.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok(), "{junk:?} replaced by a fresh UUID, got {id}");
    }
    app.stop().await;
});

/// Holds the database's write lock on `app_sessions` until released: SQLite's one write lock,
/// PostgreSQL's `EXCLUSIVE` table lock (reads go on, writes wait).
enum WriteLock {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl WriteLock {
    async fn take(app: &TestApp) -> Self {
        use sqlx::{Connection, Executor};
        match app.db {
            Db::Sqlite(_) => {
                let mut conn = sqlx::SqliteConnection::connect(&app.database.url).await.unwrap();
                conn.execute("BEGIN IMMEDIATE").await.unwrap();
                Self::Sqlite(conn)
            }
            Db::Postgres(_) => {
                let mut conn = sqlx::PgConnection::connect(&app.database.url).await.unwrap();
                conn.execute("BEGIN").await.unwrap();
                conn.execute("LOCK TABLE app_sessions IN EXCLUSIVE MODE").await.unwrap();
                Self::Postgres(conn)
            }
        }
    }

    async fn release(self) {
        use sqlx::Executor;
        match self {
            Self::Sqlite(mut conn) => conn.execute("ROLLBACK").await.map(drop).unwrap(),
            Self::Postgres(mut conn) => conn.execute("ROLLBACK").await.map(drop).unwrap(),
        }
    }
}

on_both_databases!(an_unknown_handoff_code_costs_a_read_not_a_write, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    let client = TestApp::bare_client();
    let sign_in = client
        .get(app.url(&format!("/app?tenantId={TENANT}&account={OWNER_TOKEN}")))
        .header("sec-fetch-dest", "iframe")
        .send()
        .await
        .unwrap();
    let real = handoff_code(sign_in).await;

    let lock = WriteLock::take(&app).await;
    // Control: redeeming a real code is a write, and waits for the lock.
    let redeeming = tokio::spawn(client.get(app.url(&format!("/app?handoff={real}"))).send());
    // A write would wait for the lock too, and end in a 503 page: the unknown code is answered
    // with the "no session" page while every write waits.
    let unknown = "A".repeat(43);
    let answer = client.get(app.url(&format!("/app?handoff={unknown}"))).send().await.unwrap();
    common::no_session_page(answer, "missing").await;
    assert!(!redeeming.is_finished(), "control: the real code's redemption waits for the lock");
    lock.release().await;
    let opened = redeeming.await.unwrap().unwrap();
    assert_eq!(opened.status(), StatusCode::OK, "and opens the page once the lock is gone");
    app.stop().await;
});
