//! The install body Commerce7 sends (issue 27, item 5): `tenantId`, `user {id, email, firstName,
//! lastName}`, `organization-name`, `-address`, `-website`, `-phone` (each may be missing) and the
//! client-settings answers at the top level. Stored on both databases, refreshed by a reinstall,
//! and shown read-only on the settings page. Over real HTTP, with the fake Commerce7's callback
//! and with bodies posted by hand.

mod common;

use common::{CALLBACK_PASSWORD, CALLBACK_USER, OWNER_TOKEN, TENANT, TestApp};
use libero::server::db::Db;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// What the `clients` row of a tenant holds of an install.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct Installed {
    org_name: Option<String>,
    org_contact: Option<String>,
    user_id: Option<String>,
    user_email: Option<String>,
    org_address: Option<String>,
    org_website: Option<String>,
    org_phone: Option<String>,
    install_data: String,
}

impl Installed {
    fn install_data(&self) -> Value {
        serde_json::from_str(&self.install_data).expect("install_data is JSON")
    }

    fn organization(&self) -> [Option<&str>; 3] {
        [self.org_address.as_deref(), self.org_website.as_deref(), self.org_phone.as_deref()]
    }
}

async fn installed(app: &TestApp, tenant: &str) -> Installed {
    let columns = "org_name, org_contact, user_id, user_email, org_address, org_website, org_phone";
    match &app.db {
        Db::Sqlite(pool) => {
            sqlx::query_as(&format!("SELECT {columns}, install_data FROM clients WHERE tenant_id = ?1"))
                .bind(tenant)
                .fetch_one(pool)
                .await
        }
        Db::Postgres(pool) => {
            sqlx::query_as(&format!(
                "SELECT {columns}, install_data::text AS install_data FROM clients WHERE tenant_id = $1"
            ))
            .bind(tenant)
            .fetch_one(pool)
            .await
        }
    }
    .expect("the tenant's client row")
}

/// Posts an install body with the callbacks' Basic auth, as Commerce7 does.
async fn post_install(app: &TestApp, body: &Value) -> StatusCode {
    TestApp::bare_client()
        .post(app.url("/install"))
        .basic_auth(CALLBACK_USER, Some(CALLBACK_PASSWORD))
        .json(body)
        .send()
        .await
        .unwrap()
        .status()
}

/// Commerce7's whole field set for the demo winery, with one client-settings answer.
fn full_body() -> Value {
    json!({
        "tenantId": TENANT,
        "user": { "id": "c7-user-dana", "email": "dana@demo-winery.example", "firstName": "Dana", "lastName": "Owner" },
        "organization-name": "Demo Winery",
        "organization-address": "1 Vineyard Lane\nNapa, CA 94558",
        "organization-website": "https://demo-winery.example",
        "organization-phone": "+1 707 555 0100",
        "futureSetting": "yes"
    })
}

/// `get_settings` for the app's signed-in client.
async fn settings_of(app: &TestApp) -> Value {
    let response = app.post_same_origin("/api/get_settings").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// Signs Dana in (one browser: the app's cookie-keeping client) and returns the settings page.
async fn settings_page(app: &TestApp) -> String {
    assert_eq!(app.sign_in(TENANT, OWNER_TOKEN).await.status(), StatusCode::OK, "signed in");
    let page = app.get("/settings").await;
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.unwrap()
}

/// The content of the `<dd>` with `id`, without Leptos's hydration markers (`<!>`).
fn element(html: &str, id: &str) -> String {
    let start = html.find(&format!(r#"id="{id}""#)).unwrap_or_else(|| panic!("#{id} in the page"));
    let rest = &html[start..];
    let open_end = rest.find('>').unwrap() + 1;
    let content = &rest[open_end..open_end + rest[open_end..].find("</dd>").unwrap_or_else(|| panic!("#{id} ends"))];
    content.replace("<!>", "")
}

on_both_databases!(the_fakes_install_callback_sends_commerce7s_field_set_and_it_is_stored, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    let row = installed(&app, TENANT).await;
    assert_eq!(row.org_name.as_deref(), Some("Demo Winery"));
    assert_eq!(row.org_contact.as_deref(), Some("Dana Owner"), "the installer is the contact");
    assert_eq!(row.user_id.as_deref(), Some("c7-user-dana"));
    assert_eq!(row.user_email.as_deref(), Some("dana@demo-winery.example"));
    assert_eq!(
        row.organization(),
        [Some("1 Vineyard Lane, Napa, CA 94558, US"), Some("https://demo-winery.example"), Some("+1 707 555 0100")]
    );
    // install_data: every key but tenantId and user, as sent; nothing Commerce7 does not send.
    assert_eq!(
        row.install_data(),
        json!({
            "organization-name": "Demo Winery",
            "organization-address": "1 Vineyard Lane, Napa, CA 94558, US",
            "organization-website": "https://demo-winery.example",
            "organization-phone": "+1 707 555 0100"
        })
    );
    app.stop().await;
});

on_both_databases!(client_settings_answers_are_kept_in_install_data_by_code, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    assert_eq!(post_install(&app, &full_body()).await, StatusCode::OK);
    let row = installed(&app, TENANT).await;
    assert_eq!(row.install_data()["futureSetting"], "yes");
    assert!(row.install_data().get("user").is_none() && row.install_data().get("tenantId").is_none());
    assert_eq!(
        row.organization(),
        [Some("1 Vineyard Lane\nNapa, CA 94558"), Some("https://demo-winery.example"), Some("+1 707 555 0100")],
        "line breaks of the address kept"
    );
    app.stop().await;
});

// A NUL (which PostgreSQL's jsonb cannot hold) anywhere in the body is stored as a space, on both
// databases alike, instead of failing every retry of the install as "database unavailable"; the
// same body without it is the control (the test above).
on_both_databases!(a_nul_in_the_install_body_is_stored_as_a_space, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    let mut body = full_body();
    body["organization-name"] = json!("Demo\u{0}Winery");
    body["future\u{0}Setting"] = json!(["y\u{0}es"]);
    assert_eq!(post_install(&app, &body).await, StatusCode::OK);
    let row = installed(&app, TENANT).await;
    assert_eq!(row.org_name.as_deref(), Some("Demo Winery"));
    assert_eq!(row.install_data()["organization-name"], "Demo Winery");
    assert_eq!(row.install_data()["future Setting"], json!(["y es"]));
    app.stop().await;
});

on_both_databases!(each_optional_field_of_the_install_body_may_be_missing, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    let fields = ["organization-name", "organization-address", "organization-website", "organization-phone", "user"];
    for (index, missing) in fields.into_iter().enumerate() {
        let tenant = format!("winery-{index}");
        let mut body = full_body();
        body["tenantId"] = json!(tenant);
        body.as_object_mut().unwrap().remove(missing);
        assert_eq!(post_install(&app, &body).await, StatusCode::OK, "without {missing}");
        let row = installed(&app, &tenant).await;
        let got = match missing {
            "organization-name" => row.org_name.clone(),
            "organization-address" => row.org_address.clone(),
            "organization-website" => row.org_website.clone(),
            "organization-phone" => row.org_phone.clone(),
            _ => row.user_id.clone(),
        };
        assert_eq!(got, None, "{missing} missing: NULL");
        // Control: the fields that were sent are stored.
        let sent = [&row.org_name, &row.org_address, &row.org_website, &row.org_phone, &row.user_id];
        assert_eq!(sent.iter().filter(|v| v.is_some()).count(), 4, "without {missing}: {row:?}");
        if missing == "user" {
            assert_eq!((row.org_contact, row.user_email), (None, None), "no installer, no contact made up");
        }
    }
    // Nothing but the tenant: installed, every detail NULL.
    assert_eq!(post_install(&app, &json!({ "tenantId": "bare-winery" })).await, StatusCode::OK);
    let row = installed(&app, "bare-winery").await;
    assert_eq!(row.organization(), [None, None, None]);
    assert_eq!((row.org_name, row.org_contact, row.install_data), (None, None, "{}".to_owned()));
    // Blank or non-string values count as missing; the odd value stays in install_data as sent.
    let odd =
        json!({ "tenantId": "odd-winery", "organization-address": { "city": "Napa" }, "organization-phone": "   " });
    assert_eq!(post_install(&app, &odd).await, StatusCode::OK);
    let row = installed(&app, "odd-winery").await;
    assert_eq!(row.organization(), [None, None, None]);
    assert_eq!(row.install_data()["organization-address"], json!({ "city": "Napa" }));
    assert_eq!(app.client_count().await, 7);
    app.stop().await;
});

on_both_databases!(organization_contact_is_no_longer_needed_nor_read, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    // Commerce7's body, which has no organization-contact: the installer is the contact.
    assert_eq!(post_install(&app, &full_body()).await, StatusCode::OK);
    assert_eq!(installed(&app, TENANT).await.org_contact.as_deref(), Some("Dana Owner"));
    let _ = settings_page(&app).await;
    let form = settings_of(&app).await;
    assert_eq!(form["settings"]["contact_name"], "Dana Owner");
    assert_eq!(form["settings"]["contact_email"], "dana@demo-winery.example");
    assert_eq!(form["settings"]["org_name"], "Demo Winery");
    // A stray organization-contact (the old simulator's) does not override the installer.
    let mut body = full_body();
    body["organization-contact"] = json!("Someone Else");
    assert_eq!(post_install(&app, &body).await, StatusCode::OK);
    assert_eq!(installed(&app, TENANT).await.org_contact.as_deref(), Some("Dana Owner"));
    app.stop().await;
});

on_both_databases!(
    a_reinstall_replaces_the_details_from_commerce7_and_keeps_the_merchants_settings,
    |kind| async move {
        let Some(app) = TestApp::spawn(kind).await else { return };
        assert_eq!(post_install(&app, &full_body()).await, StatusCode::OK);
        let _ = settings_page(&app).await;
        // The merchant saves settings of their own.
        let version = settings_of(&app).await["version"].as_str().unwrap().to_owned();
        let saved = app
            .post_same_origin("/api/save_settings")
            .form(&[
                ("settings[org_name]", "Demo Winery Estate"),
                ("settings[contact_name]", "Dana Owner"),
                ("settings[contact_email]", "dana@demo-winery.example"),
                ("version", &version),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(saved.status(), StatusCode::OK);
        let answer: Value = saved.json().await.unwrap();
        assert_eq!(answer["from_commerce7"], Value::Null, "a save's answer does not claim to know them");

        // A repeated install (Commerce7 may retry, or the organisation changed): the new website,
        // no phone any more, the address unchanged.
        let mut changed = full_body();
        changed["organization-website"] = json!("https://www.demo-winery.example/");
        changed.as_object_mut().unwrap().remove("organization-phone");
        assert_eq!(post_install(&app, &changed).await, StatusCode::OK);
        let row = installed(&app, TENANT).await;
        assert_eq!(
            row.organization(),
            [Some("1 Vineyard Lane\nNapa, CA 94558"), Some("https://www.demo-winery.example/"), None],
            "Commerce7's latest body is the truth: a field it leaves out is cleared"
        );
        assert!(row.install_data().get("organization-phone").is_none());
        let form = settings_of(&app).await;
        assert_eq!(form["settings"]["org_name"], "Demo Winery Estate", "the merchant's settings survive");
        assert_eq!(
            form["from_commerce7"],
            json!({ "address": "1 Vineyard Lane\nNapa, CA 94558", "website": "https://www.demo-winery.example/", "phone": null })
        );

        // Uninstall, then install again with other details: the new install's.
        let uninstall = TestApp::bare_client()
            .post(app.url("/uninstall"))
            .basic_auth(CALLBACK_USER, Some(CALLBACK_PASSWORD))
            .json(&json!({ "tenantId": TENANT }))
            .send()
            .await
            .unwrap();
        assert_eq!(uninstall.status(), StatusCode::OK);
        let mut moved = full_body();
        moved["organization-address"] = json!("2 Cellar Road, Sonoma, CA 95476");
        assert_eq!(post_install(&app, &moved).await, StatusCode::OK);
        assert_eq!(
            installed(&app, TENANT).await.organization(),
            [Some("2 Cellar Road, Sonoma, CA 95476"), Some("https://demo-winery.example"), Some("+1 707 555 0100")]
        );
        app.stop().await;
    }
);

on_both_databases!(the_settings_page_shows_the_details_from_commerce7_as_text, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    assert_eq!(post_install(&app, &full_body()).await, StatusCode::OK);
    let html = settings_page(&app).await;
    assert!(html.contains("Organisation details from Commerce7"), "labelled: {html}");
    assert!(html.contains("Address (from Commerce7)") && html.contains("Phone (from Commerce7)"));
    assert_eq!(element(&html, "c7-address"), "1 Vineyard Lane<br>Napa, CA 94558");
    assert_eq!(element(&html, "c7-phone"), "+1 707 555 0100");
    // An http(s) website is a link, opened outside the admin's frame.
    let website = element(&html, "c7-website");
    assert!(
        website.starts_with(r#"<a href="https://demo-winery.example" target="_blank" rel="noopener noreferrer""#),
        "{website}"
    );
    assert!(website.ends_with(">https://demo-winery.example</a>"), "{website}");
    // Read-only: no input carries them.
    assert!(!html.contains(r#"value="+1 707 555 0100""#));
    assert!(!html.contains(r#"name="settings[org_phone]""#) && !html.contains(r#"name="settings[org_address]""#));
    // get_settings hands the page the three values.
    assert_eq!(
        settings_of(&app).await["from_commerce7"],
        json!({ "address": "1 Vineyard Lane\nNapa, CA 94558", "website": "https://demo-winery.example", "phone": "+1 707 555 0100" })
    );
    app.stop().await;
});

on_both_databases!(script_like_details_from_commerce7_are_escaped_and_never_a_link, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    const SCRIPT: &str = "</script><script>alert('address')</script>";
    let mut body = full_body();
    body["organization-address"] = json!(SCRIPT);
    body["organization-website"] = json!("javascript:alert(document.cookie)");
    body["organization-phone"] = json!("<img src=x onerror=alert(1)>");
    assert_eq!(post_install(&app, &body).await, StatusCode::OK);
    let html = settings_page(&app).await;
    assert_eq!(element(&html, "c7-address"), "&lt;/script&gt;&lt;script&gt;alert('address')&lt;/script&gt;");
    assert_eq!(element(&html, "c7-phone"), "&lt;img src=x onerror=alert(1)&gt;");
    assert_eq!(element(&html, "c7-website"), "javascript:alert(document.cookie)", "text, not a link");
    assert!(!html.contains("<script>alert("), "no injected script anywhere, the hydration data included");
    assert!(!html.contains("<img src=x"), "no injected element");
    assert!(!html.contains(r#"href="javascript:"#));
    // A website without a scheme is text too.
    body["organization-website"] = json!("www.demo-winery.example");
    assert_eq!(post_install(&app, &body).await, StatusCode::OK);
    let html = app.get("/settings").await.text().await.unwrap();
    assert_eq!(element(&html, "c7-website"), "www.demo-winery.example");
    app.stop().await;
});

on_both_databases!(details_commerce7_did_not_send_read_not_provided, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    let mut body = full_body();
    for field in ["organization-address", "organization-website", "organization-phone"] {
        body.as_object_mut().unwrap().remove(field);
    }
    assert_eq!(post_install(&app, &body).await, StatusCode::OK);
    let html = settings_page(&app).await;
    for id in ["c7-address", "c7-website", "c7-phone"] {
        assert_eq!(element(&html, id), "Not provided", "{id}");
    }
    app.stop().await;
});

on_both_databases!(a_fresh_token_from_the_simulator_signs_in_like_a_fixed_one, |kind| async move {
    let Some(app) = TestApp::spawn(kind).await else { return };
    app.install(TENANT).await;
    let token = app.c7.mint_token(TENANT, "c7-user-dana").expect("Dana is a user");
    assert_eq!(token.split('.').count(), 3, "JWT-shaped");
    let page = app.sign_in(TENANT, &token).await;
    assert_eq!(page.status(), StatusCode::OK, "verified by the fake's account/user");
    assert!(page.text().await.unwrap().contains("Dana Owner"));
    app.stop().await;
});
