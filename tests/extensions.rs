//! Every page of Libero is an extension Commerce7 can open (issue 27): a sign-in at any
//! signed-in page's URL, its context kept, its account token gone; the sign-in limit counts
//! refusals, not a busy tasting room's opens. Over real HTTP on SQLite and PostgreSQL.

mod common;

use common::{OTHER_TENANT, OTHER_TOKEN, OWNER_TOKEN, TENANT, TestApp, TestDb, browser_tab};
use reqwest::{StatusCode, header};

fn location(response: &reqwest::Response) -> String {
    response.headers().get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

/// The handoff code at the end of a sign-in's `Location`, and what comes before it.
fn split_handoff(location: &str) -> (&str, &str) {
    let (landing, code) = location.rsplit_once("handoff=").unwrap_or_else(|| panic!("a handoff code: {location}"));
    assert!(libero::server::sessions::tab::is_handoff_code(code), "{location}");
    (landing.trim_end_matches(['?', '&']), code)
}

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
        assert_eq!(opened.status(), StatusCode::SEE_OTHER);
        let to = location(&opened);
        let (landing, _) = split_handoff(&to);
        assert_eq!(landing, "/settings?orderId=4f9c2e10-7b7e-4d2a-9a57-0c1e5b1c2d3e&customerId=c-17");
        assert!(!to.contains(OWNER_TOKEN) && !to.contains("account") && !to.contains("tenantId"), "{to}");
        let page = app.follow(&opened).await;
        assert_eq!(page.status(), StatusCode::OK);
        let html = page.text().await.unwrap();
        assert!(html.contains(r#"name="settings[org_name]""#), "the settings page");
        assert_eq!(app.session_rows().await.len(), 1);
        // Control: the dashboard's own URL still lands on the dashboard.
        let dashboard = TestApp::bare_client()
            .get(app.url(&format!("/app?tenantId={TENANT}&account={OWNER_TOKEN}")))
            .send()
            .await
            .unwrap();
        assert_eq!(split_handoff(&location(&dashboard)).0, "/app");
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
    assert_eq!(opened.status(), StatusCode::SEE_OTHER);
    let page = app.follow(&opened).await.text().await.unwrap();
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
        for n in 0..100 {
            assert_eq!(open(OWNER_TOKEN).await.unwrap().status(), StatusCode::SEE_OTHER, "open {n}");
        }
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
