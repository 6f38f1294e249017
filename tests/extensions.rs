//! Every page of Libero is an extension Commerce7 can open (issue 27): a sign-in at any
//! signed-in page's URL, its context kept, its account token gone; the sign-in limit counts
//! refusals, not a busy tasting room's opens. Over real HTTP on SQLite and PostgreSQL.

mod common;

use common::{
    OTHER_TENANT, OTHER_TOKEN, OWNER_TOKEN, TENANT, TestApp, TestDb, browser_tab, call_with_bearer, signed_in_page,
};
use reqwest::{StatusCode, header};
use serde_json::Value;

on_both_databases!(
    a_sign_in_at_the_settings_url_lands_on_settings_with_its_context_and_no_token,
    |kind: TestDb| async move {
        let Some(app) = TestApp::spawn(kind).await else { return };
        app.install(TENANT).await;
        let opened = app
            .get(&format!(
                "/settings?tenantId={TENANT}&orderId=4f9c2e10-7b7e-4d2a-9a57-0c1e5b1c2d3e&account={OWNER_TOKEN}\
             &customerId=c-17&adminUITheme=dark&note=%3Cscript%3E"
            ))
            .await;
        let page = signed_in_page(opened).await;
        assert_eq!(page.landing(), "/settings?orderId=4f9c2e10-7b7e-4d2a-9a57-0c1e5b1c2d3e&customerId=c-17");
        let to = &page.without_script;
        assert!(!to.contains(OWNER_TOKEN) && !to.contains("account") && !to.contains("tenantId"), "{to}");
        assert!(page.html.contains(r#"name="settings[org_name]""#), "the settings page");
        assert_eq!(app.session_rows().await.len(), 1);
        // Control: the dashboard's own URL still lands on the dashboard.
        let dashboard = TestApp::bare_client()
            .get(app.url(&format!("/app?tenantId={TENANT}&account={OWNER_TOKEN}")))
            .send()
            .await
            .unwrap();
        assert_eq!(signed_in_page(dashboard).await.landing(), "/app");
        app.stop().await;
    }
);

on_both_databases!(a_settings_url_of_winery_b_signs_in_b_and_never_shows_a, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    app.install(OTHER_TENANT).await;
    browser_tab(&app, TENANT, OWNER_TOKEN).await;
    let control = app.get("/settings").await.text().await.unwrap();
    assert!(control.contains(r#"data-tenant="demo-winery""#), "control: the cookie opens winery A's settings");

    let opened = app.get(&format!("/settings?tenantId={OTHER_TENANT}&account={OTHER_TOKEN}")).await;
    let page = signed_in_page(opened).await.html;
    assert!(page.contains(r#"data-tenant="second-cellar""#), "winery B's page");
    assert!(!page.contains(r#"data-tenant="demo-winery""#), "never winery A's");
    app.stop().await;
});

on_both_databases!(
    a_hundred_successful_opens_from_one_address_all_work_while_refusals_are_limited,
    |kind: TestDb| async move {
        let Some(app) = TestApp::spawn_with(kind, &[("RATE_LIMIT_SIGN_IN", "30/min".into())]).await else { return };
        app.install(TENANT).await;
        let open = |account: &str| {
            TestApp::bare_client().get(app.url(&format!("/app?tenantId={TENANT}&account={account}"))).send()
        };
        // As Commerce7 opens Libero: a fresh account token every time.
        for n in 0..100 {
            let fresh = app.c7.mint_token(TENANT, "c7-user-dana").expect("a fresh token for Dana");
            assert_eq!(open(&fresh).await.unwrap().status(), StatusCode::OK, "open {n}");
        }
        assert_eq!(app.c7.user_calls(), 100, "every open verified with Commerce7");
        for n in 0..30 {
            assert_eq!(open(&format!("junk-{n}")).await.unwrap().status(), StatusCode::UNAUTHORIZED, "refusal {n}");
        }
        let calls = app.c7.user_calls();
        let limited = open("junk-30").await.unwrap();
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS, "the 31st refused token");
        assert!(limited.headers().contains_key(header::RETRY_AFTER));
        assert_eq!(app.c7.user_calls(), calls, "a limited attempt never reaches Commerce7");
        app.stop().await;
    }
);

/// The `<script … src="…commerce7.js">` tags of a page.
fn frame_script_tags(html: &str) -> Vec<String> {
    html.split("<script")
        .skip(1)
        .map(|tag| tag[..tag.find('>').unwrap()].to_owned())
        .filter(|t| t.contains("commerce7.js"))
        .collect()
}

on_both_databases!(every_page_loads_commerce7s_frame_script_without_waiting_on_it, |kind: TestDb| async move {
    let script = "http://127.0.0.1:9/v2/commerce7.js";
    let Some(app) = TestApp::spawn_with(kind, &[("COMMERCE7_FRAME_SCRIPT", script.to_owned())]).await else { return };
    app.install(TENANT).await;
    let pages = [
        app.sign_in(TENANT, OWNER_TOKEN).await,
        app.get("/settings").await,
        TestApp::bare_client().get(app.url("/resume")).send().await.unwrap(),
        TestApp::bare_client().get(app.url(&format!("/app?tenantId={TENANT}&account=junk"))).send().await.unwrap(),
    ];
    for page in pages {
        let url = page.url().path().to_owned();
        let policy = page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
        assert!(policy.contains(&format!(" {script} ")), "{url}: the policy allows exactly the script: {policy}");
        let tags = frame_script_tags(&page.text().await.unwrap());
        assert_eq!(tags.len(), 1, "{url}: {tags:?}");
        assert!(tags[0].contains(" async") && tags[0].contains(&format!(r#"src="{script}""#)), "{url}: {}", tags[0]);
    }
    app.stop().await;
});

on_both_databases!(an_empty_frame_script_setting_loads_none, |kind: TestDb| async move {
    // Control: the same page with the setting present loads the script.
    for (setting, tags) in [("", 0), ("http://127.0.0.1:9/v2/commerce7.js", 1)] {
        let Some(app) = TestApp::spawn_with(kind, &[("COMMERCE7_FRAME_SCRIPT", setting.to_owned())]).await else {
            return;
        };
        let page = app.get("/").await;
        let policy = page.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
        assert_eq!(policy.contains("commerce7.js"), tags == 1, "{setting:?}: {policy}");
        assert_eq!(frame_script_tags(&page.text().await.unwrap()).len(), tags, "{setting:?}");
        app.stop().await;
    }
});

on_both_databases!(a_burst_of_junk_tokens_at_once_reaches_commerce7_only_up_to_the_limit, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn_with(kind, &[("RATE_LIMIT_SIGN_IN", "5/min".into())]).await else { return };
    app.install(TENANT).await;
    // Commerce7 is slow, so the whole burst is in flight before the first refusal comes back.
    app.c7.set_latency(std::time::Duration::from_secs(1));
    let burst: Vec<_> = (0..20)
        .map(|n| {
            tokio::spawn(
                TestApp::bare_client().get(app.url(&format!("/app?tenantId={TENANT}&account=junk-{n}"))).send(),
            )
        })
        .collect();
    let mut statuses = Vec::new();
    for request in burst {
        statuses.push(request.await.unwrap().unwrap().status());
    }
    let refused = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let limited = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((refused, limited), (5, 15), "{statuses:?}");
    assert_eq!(app.c7.user_calls(), 5, "only the allowance reached Commerce7");
    // Nor does a client name another address for itself: no proxy is trusted here.
    let other = TestApp::bare_client()
        .get(app.url(&format!("/app?tenantId={TENANT}&account={OWNER_TOKEN}")))
        .header("x-forwarded-for", "203.0.113.9")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::TOO_MANY_REQUESTS, "no proxy is trusted: the same address");
    app.stop().await;
});

on_both_databases!(a_reopen_by_the_same_user_keeps_the_session_another_tab_works_in, |kind: TestDb| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    // Commerce7 opens each extension with a token of its own, minted for that open.
    let first_token = app.c7.mint_token(TENANT, "c7-user-dana").expect("a fresh token for Dana");
    let (_, first_tab) = browser_tab(&app, TENANT, &first_token).await;
    let row = app.only_session().await.id;
    let second_token = app.c7.mint_token(TENANT, "c7-user-dana").expect("another fresh token for Dana");
    assert_ne!(second_token, first_token);
    let reopened = app.get(&format!("/settings?tenantId={TENANT}&account={second_token}&orderId=7")).await;
    assert!(reopened.headers().get(header::SET_COOKIE).is_none(), "the same session: no new cookie");
    assert_eq!(signed_in_page(reopened).await.landing(), "/settings?orderId=7");
    assert_eq!(app.only_session().await.id, row, "one session, the same");
    assert_eq!(
        call_with_bearer(&app, "session_info", &first_tab).await.status(),
        StatusCode::OK,
        "the first tab works on"
    );

    // Control: another user of the winery in this browser gets a session of their own, and
    // Dana's session in this browser ends with its row.
    let sam = app.get(&format!("/app?tenantId={TENANT}&account={}", common::STAFF_TOKEN)).await;
    assert!(sam.headers().get(header::SET_COOKIE).is_some(), "a new session");
    signed_in_page(sam).await;
    let info: Value = app.post_same_origin("/api/session_info").send().await.unwrap().json().await.unwrap();
    assert_eq!(info["user_name"], "Sam Staff");
    let only = app.only_session().await;
    assert_ne!(only.id, row, "Dana's row is deleted, Sam's is the one left");
    assert_eq!(
        call_with_bearer(&app, "session_info", &first_tab).await.status(),
        StatusCode::UNAUTHORIZED,
        "Dana's tab in this browser is signed out"
    );
    app.stop().await;
});
