//! Sessions in every browser (issue 8), over real HTTP on SQLite and PostgreSQL: the tab token
//! (`Authorization: Bearer`), its precedence over the cookie, the sign-in's page and its handoff
//! code for a browser without script, the resume of a tab, and that no session secret is ever put
//! in a URL.

mod common;

use chrono::{TimeDelta, Utc};
use common::{
    OTHER_TENANT, OTHER_TOKEN, OWNER_TOKEN, TENANT, TEST_SECRET, TestApp, TestDb, browser_tab, call_with_bearer,
    handoff_code, signed_in_page, tab_of, tab_token,
};
use libero::server::{
    db::Db,
    sessions::{hash_token, tab::TabTokens},
};
use reqwest::{StatusCode, header};
use serde_json::Value;

fn location(response: &reqwest::Response) -> String {
    response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

async fn tenant_of_session_info(response: reqwest::Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let info: Value = response.json().await.unwrap();
    info["tenant_id"].as_str().unwrap().to_owned()
}

async fn row_count(app: &TestApp) -> i64 {
    match &app.db {
        Db::Sqlite(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM app_sessions").fetch_one(pool).await.unwrap(),
        Db::Postgres(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM app_sessions").fetch_one(pool).await.unwrap(),
    }
}

/// Moves every stored handoff code's expiry into the past (as if 60 s had gone by).
async fn expire_handoff_codes(app: &TestApp) {
    let past = Utc::now() - TimeDelta::seconds(1);
    match &app.db {
        Db::Sqlite(pool) => {
            sqlx::query("UPDATE app_sessions SET handoff_expires_at = ?1 WHERE handoff_hash IS NOT NULL")
                .bind(past)
                .execute(pool)
                .await
                .unwrap();
        }
        Db::Postgres(pool) => {
            sqlx::query("UPDATE app_sessions SET handoff_expires_at = $1 WHERE handoff_hash IS NOT NULL")
                .bind(past)
                .execute(pool)
                .await
                .unwrap();
        }
    }
}

// --- The tab token ----------------------------------------------------------------------------

on_both_databases!(a_tab_token_alone_authorises_a_server_function, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    let token = tab_of(&app, TENANT, OWNER_TOKEN).await;

    assert_eq!(tenant_of_session_info(call_with_bearer(&app, "session_info", &token).await).await, TENANT);
    let anonymous =
        TestApp::bare_client().post(app.url("/api/session_info")).header("sec-fetch-site", "same-origin").send().await;
    assert_eq!(anonymous.unwrap().status(), StatusCode::UNAUTHORIZED, "control: no token, no cookie");
    app.stop().await;
});

on_both_databases!(the_tab_token_beats_the_cookie_of_another_tenant, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    app.install(OTHER_TENANT).await;
    // Tab 1 is opened for demo-winery, then tab 2 of the same browser for second-cellar: the
    // browser's one cookie now names second-cellar's session.
    let (_, tab_one) = browser_tab(&app, TENANT, OWNER_TOKEN).await;
    browser_tab(&app, OTHER_TENANT, OTHER_TOKEN).await;

    let cookie_only = app.post_same_origin("/api/session_info").send().await.unwrap();
    assert_eq!(tenant_of_session_info(cookie_only).await, OTHER_TENANT, "control: the cookie is the other tenant's");
    let with_token = app
        .post_same_origin("/api/session_info")
        .header(header::AUTHORIZATION, format!("Bearer {tab_one}"))
        .send()
        .await
        .unwrap();
    assert_eq!(tenant_of_session_info(with_token).await, TENANT, "the tab's own tenant, whatever the cookie says");
    app.stop().await;
});

on_both_databases!(an_invalid_tab_token_is_401_even_beside_a_valid_cookie, |kind: TestDb| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let control = app.post_same_origin("/api/session_info").send().await.unwrap();
    assert_eq!(control.status(), StatusCode::OK, "control: the cookie alone is valid");
    // The last is of a token's shape, signed with nothing: it fails on its MAC.
    let forged = format!("v2.demo-winery.{}.0.9999999999.{}", "A".repeat(43), "A".repeat(43));
    for junk in ["", "junk", forged.as_str()] {
        let response = app
            .post_same_origin("/api/session_info")
            .header(header::AUTHORIZATION, format!("Bearer {junk}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{junk:?}: no fall-back to the cookie");
    }
    app.stop().await;
});

on_both_databases!(tampered_expired_and_foreign_tab_tokens_are_refused, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    let token = tab_of(&app, TENANT, OWNER_TOKEN).await;
    assert_eq!(call_with_bearer(&app, "session_info", &token).await.status(), StatusCode::OK, "control");

    let ours = TabTokens::new(TEST_SECRET);
    let claims = ours.verify(&token, Utc::now()).unwrap();
    let expired = ours.mint(TENANT, &claims.row_id, claims.generation, Utc::now() - TimeDelta::seconds(1));
    let foreign = TabTokens::new("another-secret-another-secret-0000000").mint(
        TENANT,
        &claims.row_id,
        claims.generation,
        Utc::now() + TimeDelta::minutes(10),
    );
    let mut tampered = token.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    let other_tenant = token.replacen(TENANT, OTHER_TENANT, 1);
    for (what, bad) in
        [("expired", expired), ("another key", foreign), ("tampered", tampered), ("re-labelled", other_tenant)]
    {
        let response = call_with_bearer(&app, "session_info", &bad).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
    app.stop().await;
});

on_both_databases!(logout_uninstall_idle_and_expiry_end_a_tab_token_at_once, |kind: TestDb| async move {
    let idle = [("SESSION_IDLE_TIMEOUT", "30m".to_owned())];
    let Some(app) = TestApp::spawn_with(kind, &idle).await else { return };
    app.install(TENANT).await;

    // Logout with the tab token.
    let token = tab_of(&app, TENANT, OWNER_TOKEN).await;
    assert_eq!(call_with_bearer(&app, "logout", &token).await.status(), StatusCode::OK);
    assert_eq!(call_with_bearer(&app, "session_info", &token).await.status(), StatusCode::UNAUTHORIZED, "logout");
    assert_eq!(row_count(&app).await, 0, "the row is gone");

    // Idle, then absolute expiry: the row's times moved into the past.
    for column in ["last_activity_at", "expires_at"] {
        let token = tab_of(&app, TENANT, OWNER_TOKEN).await;
        assert_eq!(call_with_bearer(&app, "session_info", &token).await.status(), StatusCode::OK, "control");
        app.set_session_time(column, Utc::now() - TimeDelta::hours(1)).await;
        let response = call_with_bearer(&app, "session_info", &token).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{column} in the past");
    }

    // Uninstall.
    let token = tab_of(&app, TENANT, OWNER_TOKEN).await;
    assert_eq!(call_with_bearer(&app, "session_info", &token).await.status(), StatusCode::OK, "control");
    assert_eq!(app.c7.send_uninstall(TENANT).await.unwrap().as_u16(), 200);
    assert_eq!(call_with_bearer(&app, "session_info", &token).await.status(), StatusCode::UNAUTHORIZED, "uninstall");
    app.stop().await;
});

on_both_databases!(only_a_tab_token_renews_itself, |kind: TestDb| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let cookie_only = app.post_same_origin("/api/renew_tab_token").send().await.unwrap();
    assert_eq!(cookie_only.status(), StatusCode::UNAUTHORIZED, "a cookie may belong to another tab's tenant");

    let token = tab_of(&app, TENANT, OWNER_TOKEN).await;
    let renewed = call_with_bearer(&app, "renew_tab_token", &token).await;
    assert_eq!(renewed.status(), StatusCode::OK);
    assert_eq!(renewed.headers()[header::CACHE_CONTROL], "no-store");
    let renewed: Value = renewed.json().await.unwrap();
    assert_eq!(renewed["tenant"], TENANT);
    assert_eq!(renewed["expires_in"], 900, "fifteen minutes");
    let fresh = renewed["token"].as_str().unwrap();
    assert_eq!(tenant_of_session_info(call_with_bearer(&app, "session_info", fresh).await).await, TENANT);
    app.stop().await;
});

// --- CSRF -------------------------------------------------------------------------------------

on_both_databases!(cross_site_state_changes_need_a_tab_token_not_just_a_cookie, |kind: TestDb| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let token = tab_of(&app, TENANT, OWNER_TOKEN).await;
    let cross_site = |builder: reqwest::RequestBuilder| {
        builder.header("origin", "https://evil.example").header("sec-fetch-site", "cross-site")
    };
    let cookie_only = cross_site(app.client.post(app.url("/api/session_info"))).send().await.unwrap();
    assert_eq!(cookie_only.status(), StatusCode::FORBIDDEN, "a cookie alone, from another site");
    let with_token = cross_site(app.client.post(app.url("/api/session_info")))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), StatusCode::OK, "the tab token cannot be read by another site");
    app.stop().await;
});

// --- Handoff ------------------------------------------------------------------------------------

on_both_databases!(a_handoff_code_opens_the_page_once, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    let client = TestApp::bare_client();
    let sign_in = client.get(app.url(&format!("/app?tenantId={TENANT}&account={OWNER_TOKEN}"))).send().await.unwrap();
    let code = handoff_code(sign_in).await;

    let first = client.get(app.url(&format!("/app?handoff={code}"))).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(first.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(first.headers()[header::REFERRER_POLICY], "no-referrer");
    assert!(tab_token(&first.text().await.unwrap()).is_some());

    let again = client.get(app.url(&format!("/app?handoff={code}"))).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED, "single use: no cookie to fall back to");
    let html = again.text().await.unwrap();
    assert!(html.contains(r#"id="no-session""#), "the explanation page, not the landing page");
    assert!(tab_token(&html).is_none());
    app.stop().await;
});

/// The fast path's handoff write commits without waiting for the WAL flush, in its own
/// transaction only: every connection the pool holds afterwards still has the server's
/// `synchronous_commit`, so a logout or an uninstall on it is as durable as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handoff_write_leaves_synchronous_commit_on_for_the_pools_next_statements() {
    let Some(app) = TestApp::signed_in(TestDb::Postgres).await else { return };
    let Db::Postgres(pool) = &app.db else { unreachable!("a PostgreSQL app") };
    let rows =
        || sqlx::query_as::<_, (String, Option<String>)>("SELECT id, handoff_hash FROM app_sessions").fetch_all(pool);
    let signed_in = rows().await.unwrap();
    let [(id, first)] = &signed_in[..] else { panic!("one session after the sign-in: {signed_in:?}") };
    for _ in 0..4 {
        let code = handoff_code(app.sign_in(TENANT, OWNER_TOKEN).await).await;
        // The same row: the fast path, not a new sign-in (which replaces the row under a new id).
        assert_eq!(rows().await.unwrap(), [(id.clone(), Some(hash_token(&code)))], "the fast path stored its new code");
    }
    assert_ne!(&rows().await.unwrap()[0].1, first, "control: the sign-in's own code was replaced");

    // sqlx hands a connection back to the pool in a task of its own (after a ping): wait until
    // every connection is idle, then hold them all at once so none is handed out twice.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while pool.num_idle() < pool.size() as usize {
        assert!(std::time::Instant::now() < deadline, "the pool's connections never all came back");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let mut held = Vec::new();
    while pool.num_idle() > 0 {
        held.push(pool.acquire().await.unwrap());
    }
    assert!(!held.is_empty(), "the handoff writes ran on the pool's connections");
    for conn in &mut held {
        let setting: String = sqlx::query_scalar("SHOW synchronous_commit").fetch_one(&mut **conn).await.unwrap();
        assert_eq!(setting, "on", "the transaction-local setting did not outlive its statement");
    }
    // Control: a session-level change is what this check would see.
    let conn = &mut held[0];
    sqlx::query("SET synchronous_commit = off").execute(&mut **conn).await.unwrap();
    let setting: String = sqlx::query_scalar("SHOW synchronous_commit").fetch_one(&mut **conn).await.unwrap();
    assert_eq!(setting, "off");
    sqlx::query("RESET synchronous_commit").execute(&mut **conn).await.unwrap();
    drop(held);
    app.stop().await;
}

/// The fast path's one write failing (the database refuses it) gets the 503 page and loses
/// nothing: the session still opens the dashboard by its cookie, and reopening works again once
/// the database takes the write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopening_whose_handoff_write_fails_gets_503_and_keeps_the_session() {
    let Some(app) = TestApp::signed_in(TestDb::Postgres).await else { return };
    let Db::Postgres(pool) = &app.db else { unreachable!("a PostgreSQL app") };
    handoff_code(app.sign_in(TENANT, OWNER_TOKEN).await).await; // control: the fast path opens the page

    sqlx::raw_sql(
        "CREATE FUNCTION refuse_handoff() RETURNS trigger LANGUAGE plpgsql
             AS $$ BEGIN RAISE EXCEPTION 'handoff writes refused'; END $$;
         CREATE TRIGGER refuse_handoff BEFORE UPDATE OF handoff_hash ON app_sessions
             FOR EACH ROW EXECUTE FUNCTION refuse_handoff();",
    )
    .execute(pool)
    .await
    .unwrap();
    let refused = app.sign_in(TENANT, OWNER_TOKEN).await;
    assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE, "try again, not a redirect without a code");
    assert!(refused.headers().get(header::LOCATION).is_none());
    assert_eq!(app.get("/app").await.status(), StatusCode::OK, "the session survived the failed write");

    sqlx::raw_sql("DROP TRIGGER refuse_handoff ON app_sessions").execute(pool).await.unwrap();
    handoff_code(app.sign_in(TENANT, OWNER_TOKEN).await).await;
    app.stop().await;
}

on_both_databases!(a_handoff_code_is_refused_after_sixty_seconds, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    let client = TestApp::bare_client();
    let url = app.url(&format!("/app?tenantId={TENANT}&account={OWNER_TOKEN}"));
    let fresh = handoff_code(client.get(&url).send().await.unwrap()).await;
    let control = client.get(app.url(&format!("/app?handoff={fresh}"))).send().await.unwrap();
    assert_eq!(control.status(), StatusCode::OK, "control: a fresh code works");

    let code = handoff_code(client.get(&url).send().await.unwrap()).await;
    expire_handoff_codes(&app).await;
    let late = client.get(app.url(&format!("/app?handoff={code}"))).send().await.unwrap();
    assert_eq!(late.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
});

on_both_databases!(a_handoff_code_opens_only_its_own_session, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    app.install(OTHER_TENANT).await;
    let client = TestApp::bare_client();
    let code_a = handoff_code(
        client.get(app.url(&format!("/app?tenantId={TENANT}&account={OWNER_TOKEN}"))).send().await.unwrap(),
    )
    .await;
    let code_b = handoff_code(
        client.get(app.url(&format!("/app?tenantId={OTHER_TENANT}&account={OTHER_TOKEN}"))).send().await.unwrap(),
    )
    .await;
    for (code, tenant) in [(code_b, OTHER_TENANT), (code_a, TENANT)] {
        let page = client.get(app.url(&format!("/app?handoff={code}"))).send().await.unwrap().text().await.unwrap();
        let token = tab_token(&page).unwrap();
        assert!(token.starts_with(&format!("v2.{tenant}.")), "{token}");
        assert_eq!(tenant_of_session_info(call_with_bearer(&app, "session_info", &token).await).await, tenant);
    }
    app.stop().await;
});

on_both_databases!(a_used_handoff_code_falls_back_to_the_cookie, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    let code = handoff_code(app.sign_in(TENANT, OWNER_TOKEN).await).await;
    assert_eq!(app.get(&format!("/app?handoff={code}")).await.status(), StatusCode::OK);
    let reused = app.get(&format!("/app?handoff={code}")).await;
    assert_eq!(reused.status(), StatusCode::OK, "the cookie still opens the page");
    assert!(tab_token(&reused.text().await.unwrap()).is_some(), "with a fresh token for the tab");
    app.stop().await;
});

on_both_databases!(resuming_a_tab_gives_a_handoff_code_for_its_session, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    let token = tab_of(&app, TENANT, OWNER_TOKEN).await;
    // A frame reload without the cookie: the page has no session.
    let reload = TestApp::bare_client().get(app.url("/settings")).send().await.unwrap();
    assert_eq!(reload.status(), StatusCode::UNAUTHORIZED);
    assert!(reload.text().await.unwrap().contains(r#"data-reason="missing""#));

    let resumed = call_with_bearer(&app, "resume_tab", &token).await;
    assert_eq!(resumed.status(), StatusCode::OK);
    let code: String = resumed.json().await.unwrap();
    let page = TestApp::bare_client().get(app.url(&format!("/settings?handoff={code}"))).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "the settings page, for the tab's session");
    assert_eq!(row_count(&app).await, 1, "no new session: the same one resumed");

    let forged = format!("v2.demo-winery.{}.0.9999999999.{}", "A".repeat(43), "A".repeat(43));
    let junk = call_with_bearer(&app, "resume_tab", &forged).await;
    assert_eq!(junk.status(), StatusCode::UNAUTHORIZED, "only a valid tab token resumes");
    app.stop().await;
});

// --- Tenants side by side -----------------------------------------------------------------------

on_both_databases!(signing_in_to_another_tenant_keeps_the_first_tenants_session, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    app.install(OTHER_TENANT).await;
    let (_, tab_one) = browser_tab(&app, OTHER_TENANT, OTHER_TOKEN).await;
    let first_cookie = app.session_cookie().unwrap();
    let dana = app.sign_in(TENANT, OWNER_TOKEN).await;
    assert_eq!(dana.status(), StatusCode::OK);
    let dana_cookie = app.session_cookie().unwrap();
    assert_ne!(dana_cookie, first_cookie, "a new id at every sign-in");
    assert_eq!(row_count(&app).await, 2, "both tenants' sessions live");
    assert_eq!(tenant_of_session_info(call_with_bearer(&app, "session_info", &tab_one).await).await, OTHER_TENANT);

    // Another user of the same tenant in this browser replaces that tenant's session only.
    let sam = app.sign_in(TENANT, "demo-staff-token").await;
    assert_eq!(sam.status(), StatusCode::OK);
    assert_eq!(row_count(&app).await, 2, "Dana's row was deleted, the other tenant's kept");
    let replay = TestApp::bare_client().get(app.url("/app")).header(header::COOKIE, &dana_cookie).send().await.unwrap();
    assert_eq!(replay.status(), StatusCode::UNAUTHORIZED, "Dana's old cookie is dead");
    assert_eq!(tenant_of_session_info(call_with_bearer(&app, "session_info", &tab_one).await).await, OTHER_TENANT);
    app.stop().await;
});

on_both_databases!(signing_out_a_tab_keeps_another_tenants_cookie, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    app.install(OTHER_TENANT).await;
    let (_, tab_one) = browser_tab(&app, TENANT, OWNER_TOKEN).await;
    app.sign_in(OTHER_TENANT, OTHER_TOKEN).await;

    let logout = app
        .post_same_origin("/api/logout")
        .header(header::AUTHORIZATION, format!("Bearer {tab_one}"))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    assert!(logout.headers().get(header::SET_COOKIE).is_none(), "the cookie is the other tenant's: left alone");
    let cookie_only = app.post_same_origin("/api/session_info").send().await.unwrap();
    assert_eq!(tenant_of_session_info(cookie_only).await, OTHER_TENANT, "the other tab still works");
    assert_eq!(call_with_bearer(&app, "session_info", &tab_one).await.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
});

// --- No secret in a URL, no token outside its page ------------------------------------------------

on_both_databases!(no_location_carries_a_session_secret_or_row_id, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    let full = signed_in_page(app.sign_in(TENANT, OWNER_TOKEN).await).await;
    let cookie = app.session_cookie().unwrap();
    let cookie_value = cookie.trim_start_matches("__libero_session=").to_owned();
    let fast = signed_in_page(app.sign_in(TENANT, OWNER_TOKEN).await).await;
    let token = fast.token();
    let row_id = TabTokens::new(TEST_SECRET).verify(&token, Utc::now()).unwrap().row_id;
    assert_eq!(app.session_rows().await.len(), 1);
    let logout = app.post_same_origin("/logout").send().await.unwrap();

    // The sign-ins' addresses for a browser without script, and the logout's redirect.
    for location in [full.without_script.clone(), fast.without_script.clone(), location(&logout)] {
        assert!(!location.is_empty(), "control: an address");
        for secret in [OWNER_TOKEN, cookie_value.as_str(), token.as_str(), row_id.as_str(), &hash_token(&row_id)] {
            assert!(!location.contains(secret), "{location} leaks a secret");
        }
    }
    app.stop().await;
});

on_both_databases!(the_tab_token_is_only_in_the_no_store_page_it_was_minted_for, |kind: TestDb| async move {
    let Some(app) = TestApp::signed_in(kind).await else { return };
    let dashboard = app.get("/app").await;
    assert_eq!(dashboard.headers()[header::CACHE_CONTROL], "no-store");
    let token = tab_token(&dashboard.text().await.unwrap()).expect("control: the dashboard carries one");
    for path in ["/", "/resume", "/healthz", "/no-such-page"] {
        let body = app.get(path).await.text().await.unwrap();
        assert!(!body.contains("libero-tab\" content"), "{path} carries a tab token");
        assert!(!body.contains(&token), "{path}");
    }
    let info = app.post_same_origin("/api/session_info").send().await.unwrap().text().await.unwrap();
    assert!(info.contains("demo-winery"), "control: the session's information: {info}");
    assert!(!info.contains("v2."), "server functions other than the renewal return no token: {info}");
    app.stop().await;
});

// --- Review fixes ---------------------------------------------------------------------------------

/// `last_activity_at` of the only session row.
async fn last_activity(app: &TestApp) -> chrono::DateTime<Utc> {
    match &app.db {
        Db::Sqlite(pool) => {
            sqlx::query_scalar("SELECT last_activity_at FROM app_sessions").fetch_one(pool).await.unwrap()
        }
        Db::Postgres(pool) => {
            sqlx::query_scalar("SELECT last_activity_at FROM app_sessions").fetch_one(pool).await.unwrap()
        }
    }
}

on_both_databases!(the_automatic_token_renewal_is_not_activity, |kind: TestDb| async move {
    let touch_always = [("SESSION_TOUCH_INTERVAL", "0s".to_owned())];
    let Some(app) = TestApp::spawn_with(kind, &touch_always).await else { return };
    app.install(TENANT).await;
    let token = tab_of(&app, TENANT, OWNER_TOKEN).await;
    // Microseconds: what both databases keep.
    let long_ago =
        chrono::DateTime::from_timestamp_micros((Utc::now() - TimeDelta::minutes(30)).timestamp_micros()).unwrap();
    app.set_session_time("last_activity_at", long_ago).await;

    assert_eq!(call_with_bearer(&app, "renew_tab_token", &token).await.status(), StatusCode::OK);
    assert_eq!(last_activity(&app).await, long_ago, "a renewal leaves the idle clock alone");
    assert_eq!(call_with_bearer(&app, "session_info", &token).await.status(), StatusCode::OK);
    assert!(last_activity(&app).await > long_ago, "control: a real call is activity");
    app.stop().await;
});

on_both_databases!(the_page_says_whether_the_sign_in_a_handoff_or_the_cookie_opened_it, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    // signed_in_page checks data-via="sign-in": the sign-in's page may move the tab too.
    let code = handoff_code(app.sign_in(TENANT, OWNER_TOKEN).await).await;
    let by_handoff = app.get(&format!("/app?handoff={code}")).await.text().await.unwrap();
    assert!(by_handoff.contains(r#"data-via="handoff""#), "the handoff page may move the tab to its winery");
    let by_cookie = app.get(&format!("/app?handoff={code}")).await.text().await.unwrap();
    assert!(by_cookie.contains(r#"data-via="cookie""#), "a used code falls back to the cookie, and says so");
    app.stop().await;
});

on_both_databases!(a_refused_sign_in_for_one_winery_keeps_another_winerys_session, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    app.install(OTHER_TENANT).await;
    app.sign_in(OTHER_TENANT, OTHER_TOKEN).await;
    let refused = app.sign_in(TENANT, "junk-token").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let cookie_only = app.post_same_origin("/api/session_info").send().await.unwrap();
    assert_eq!(tenant_of_session_info(cookie_only).await, OTHER_TENANT, "the other winery's session lives");

    // Control: a refused token for the cookie's own winery still ends that session.
    let refused = app.sign_in(OTHER_TENANT, "junk-token").await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let after = app.post_same_origin("/api/session_info").send().await.unwrap();
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    app.stop().await;
});

on_both_databases!(a_bare_bearer_scheme_is_refused_and_never_falls_back_to_the_cookie, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    app.sign_in(TENANT, OWNER_TOKEN).await;
    // Control: the cookie alone is signed in.
    let cookie_only = app.post_same_origin("/api/session_info").send().await.unwrap();
    assert_eq!(tenant_of_session_info(cookie_only).await, TENANT);

    for bare in ["Bearer", "bearer ", "Bearer   "] {
        let call = app.post_same_origin("/api/session_info").header(header::AUTHORIZATION, bare).send().await.unwrap();
        assert_eq!(call.status(), StatusCode::UNAUTHORIZED, "{bare:?}: a tab credential that verifies nothing");
    }
    app.stop().await;
});

on_both_databases!(the_plain_sign_out_form_ends_its_tabs_session_not_the_cookies, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    app.install(OTHER_TENANT).await;
    let (page, tab_one) = browser_tab(&app, TENANT, OWNER_TOKEN).await;
    assert!(page.contains(&format!(r#"name="tab" value="{tab_one}""#)), "the form carries the page's token");
    app.sign_in(OTHER_TENANT, OTHER_TOKEN).await;

    let logout = app
        .post_same_origin("/logout")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(format!("tab={tab_one}"))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::SEE_OTHER);
    assert!(logout.headers().get(header::SET_COOKIE).is_none(), "the cookie is the other winery's");
    assert_eq!(call_with_bearer(&app, "session_info", &tab_one).await.status(), StatusCode::UNAUTHORIZED);
    let cookie_only = app.post_same_origin("/api/session_info").send().await.unwrap();
    assert_eq!(tenant_of_session_info(cookie_only).await, OTHER_TENANT, "the other tab's session lives");

    // Cross-site, a bearer header does not exempt the cookie-authenticated form from the check.
    let cross = app
        .client
        .post(app.url("/logout"))
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .header(header::AUTHORIZATION, "Bearer anything")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    app.stop().await;
});

// --- Database down ------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tab_tokens_and_handoff_codes_with_the_database_gone_get_503_not_401() {
    let Some(app) = TestApp::spawn(TestDb::Postgres).await else { return };
    app.install(TENANT).await;
    let token = tab_of(&app, TENANT, OWNER_TOKEN).await;
    let resumed = call_with_bearer(&app, "resume_tab", &token).await;
    let code: String = resumed.json().await.unwrap();
    assert_eq!(call_with_bearer(&app, "session_info", &token).await.status(), StatusCode::OK, "control");

    let name = app.database.postgres_name().expect("a PostgreSQL database").to_owned();
    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&common::postgres_admin_url()).await.unwrap();
    sqlx::Executor::execute(&mut admin, format!(r#"DROP DATABASE "{name}" WITH (FORCE)"#).as_str()).await.unwrap();

    // "Try again", not "you are signed out": the tab keeps its credential.
    for endpoint in ["session_info", "renew_tab_token", "resume_tab"] {
        let response = call_with_bearer(&app, endpoint, &token).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{endpoint}");
    }
    let page = TestApp::bare_client().get(app.url(&format!("/app?handoff={code}"))).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE, "the handoff page");
    app.stop().await;
}
