//! Commerce7's answers told truthfully (issue 27, item 4), over real HTTP on SQLite and
//! PostgreSQL: each class of answer to `GET /account/user` gets its own page, status and metric
//! outcome — 200 signs in; 401/403 and 404/422 (a refusal of the token) get the 401 page and end
//! this browser's session of that winery; 429 gets "Commerce7 is busy" with `Retry-After`; any
//! other 4xx gets "Commerce7 did not accept this link" (400); 5xx, a timeout and a failed
//! connection get the 503 page, the only outage. `SUPPORT_URL` is linked from every error page
//! when set, and only then.
//!
//! The metrics recorder is process-wide: every test here takes its turn ([`ONE_AT_A_TIME`]) so
//! that the counts it compares before and after are its own.

mod common;

use std::time::Duration;

use common::{
    OTHER_TENANT, OTHER_TOKEN, OWNER_TOKEN, TENANT, TestApp, TestDb, clears_the_cookie, handoff_code, no_session_page,
};
use libero::server::db::Db;
use reqwest::{StatusCode, header};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A token Commerce7 does not know: a stale or foreign link.
const STALE_TOKEN: &str = "stale-account-token";

/// The `libero_sign_ins_total` outcomes of Commerce7's answers, and Libero's own limit.
const SIGN_IN_OUTCOMES: [&str; 5] =
    ["commerce7_refused", "commerce7_busy", "commerce7_rejected", "commerce7_unavailable", "rate_limited"];
/// The `libero_commerce7_request_duration_seconds` outcomes.
const CALL_OUTCOMES: [&str; 6] = ["ok", "refused", "busy", "rejected", "error", "timeout"];

/// Settings of every app here: metrics on; Libero's own sign-in limit off (a test makes many
/// refused sign-ins from 127.0.0.1) unless a test sets it.
fn settings(extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut all = vec![
        ("METRICS_TOKEN", "scrape-secret".to_owned()),
        ("RATE_LIMIT_SIGN_IN", "0".to_owned()),
        ("COMMERCE7_TIMEOUT", "1s".to_owned()),
    ];
    for (name, value) in extra {
        all.retain(|(n, _)| n != name);
        all.push((name, (*value).to_owned()));
    }
    all
}

async fn spawn(kind: TestDb, extra: &[(&'static str, &str)]) -> Option<TestApp> {
    let app = TestApp::spawn_with(kind, &settings(extra)).await?;
    app.install(TENANT).await;
    Some(app)
}

/// The value of the sample line `line_start` (name and labels), 0 when absent.
fn value(metrics: &str, line_start: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start) && l[line_start.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// The counts this file compares: sign-in outcomes and Commerce7 call outcomes.
#[derive(Debug, Clone, PartialEq)]
struct Counts(Vec<(String, f64)>);

async fn counts(app: &TestApp) -> Counts {
    let response = app.client.get(app.url("/metrics")).bearer_auth("scrape-secret").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let metrics = response.text().await.unwrap();
    let sign_ins = SIGN_IN_OUTCOMES.iter().map(|o| format!(r#"libero_sign_ins_total{{outcome="{o}"}}"#));
    let calls =
        CALL_OUTCOMES.iter().map(|o| format!(r#"libero_commerce7_request_duration_seconds_count{{outcome="{o}"}}"#));
    Counts(sign_ins.chain(calls).map(|name| (name.clone(), value(&metrics, &name))).collect())
}

impl Counts {
    /// Asserts that from `self` to `after` exactly the sign-in outcome `sign_in` and the call
    /// outcome `call` (when Commerce7 was called) went up by one, and nothing else moved.
    fn moved_only(&self, after: &Counts, sign_in: &str, call: Option<&str>, case: &str) {
        for ((name, before), (_, now)) in self.0.iter().zip(&after.0) {
            let expected = if name == &format!(r#"libero_sign_ins_total{{outcome="{sign_in}"}}"#)
                || call.is_some_and(|c| {
                    name == &format!(r#"libero_commerce7_request_duration_seconds_count{{outcome="{c}"}}"#)
                }) {
                1.0
            } else {
                0.0
            };
            assert_eq!(now - before, expected, "{case}: {name}");
        }
    }
}

/// The page's `<title>` without " · Libero", with the few entities the renderer writes undone.
fn title(html: &str) -> String {
    let start = html.find("<title>").expect("a title") + "<title>".len();
    let end = start + html[start..].find("</title>").expect("a closed title");
    html[start..end].trim_end_matches(" · Libero").replace("&#39;", "'").replace("&#x27;", "'").replace("&amp;", "&")
}

/// The `href` of the page's support link, if it has one.
fn support_link(html: &str) -> Option<String> {
    let link = html.split("<a ").find(|a| a.contains(r#"id="support""#))?;
    assert!(link.contains(r#"target="_blank""#) && link.contains(r#"rel="noopener noreferrer""#), "{link}");
    Some(link.split("href=\"").nth(1)?.split('"').next()?.replace("&amp;", "&"))
}

/// Opens the sign-in URL of `tenant` with `token` in a browser that keeps no cookie.
async fn open_without_cookie(app: &TestApp, tenant: &str, token: &str) -> reqwest::Response {
    TestApp::bare_client()
        .get(app.url(&format!("/app?tenantId={tenant}&account={token}&adminUITheme=light")))
        .header("sec-fetch-dest", "iframe")
        .send()
        .await
        .unwrap()
}

/// What a class of answers must look like to the merchant.
struct Expected {
    status: StatusCode,
    title: &'static str,
    sign_in: &'static str,
    call: &'static str,
}

const REFUSED: Expected = Expected {
    status: StatusCode::UNAUTHORIZED,
    title: "Commerce7 didn't recognise you",
    sign_in: "commerce7_refused",
    call: "refused",
};
const BUSY: Expected = Expected {
    status: StatusCode::TOO_MANY_REQUESTS,
    title: "Commerce7 is busy",
    sign_in: "commerce7_busy",
    call: "busy",
};
const REJECTED: Expected = Expected {
    status: StatusCode::BAD_REQUEST,
    title: "Commerce7 did not accept this link",
    sign_in: "commerce7_rejected",
    call: "rejected",
};
const UNAVAILABLE: Expected = Expected {
    status: StatusCode::SERVICE_UNAVAILABLE,
    title: "Libero couldn't reach Commerce7",
    sign_in: "commerce7_unavailable",
    call: "error",
};

/// Checks one failed sign-in against `expected` and returns the page.
async fn check_failed_sign_in(app: &TestApp, response: reqwest::Response, expected: &Expected, case: &str) -> String {
    assert_eq!(response.status(), expected.status, "{case}");
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store", "{case}");
    assert!(response.headers().get(header::LOCATION).is_none(), "{case}: no handoff");
    assert!(
        !response.headers().get_all(header::SET_COOKIE).iter().any(|c| c
            .to_str()
            .unwrap()
            .starts_with("__libero_session=")
            && !c.to_str().unwrap().contains("Max-Age=0")),
        "{case}: no session cookie"
    );
    if expected.status != StatusCode::TOO_MANY_REQUESTS {
        assert!(response.headers().get(header::RETRY_AFTER).is_none(), "{case}: Retry-After only when busy");
    }
    let html = response.text().await.unwrap();
    assert_eq!(title(&html), expected.title, "{case}");
    assert!(!html.contains(OWNER_TOKEN) && !html.contains(STALE_TOKEN), "{case}: no token in the page");
    assert!(app.session_rows().await.is_empty(), "{case}: no session");
    html
}

// --- Each class of answer: its page, status and outcome ------------------------------------------

on_both_databases!(each_class_of_commerce7_answer_gets_its_page_status_and_outcome, |kind| async move {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(app) = spawn(kind, &[]).await else { return };
    app.c7.set_retry_after(Some("17"));

    // 401 as Commerce7 really answers it: a token it does not know.
    let before = counts(&app).await;
    check_failed_sign_in(&app, open_without_cookie(&app, TENANT, STALE_TOKEN).await, &REFUSED, "401").await;
    before.moved_only(&counts(&app).await, REFUSED.sign_in, Some(REFUSED.call), "401");

    // (429, its own test below: Commerce7 is then not asked again for a while.)
    let cases: [(u16, &Expected); 12] = [
        (401, &REFUSED),
        (403, &REFUSED),
        (404, &REFUSED),
        (422, &REFUSED),
        (400, &REJECTED),
        (409, &REJECTED),
        (410, &REJECTED),
        (418, &REJECTED),
        (500, &UNAVAILABLE),
        (502, &UNAVAILABLE),
        (503, &UNAVAILABLE),
        (504, &UNAVAILABLE),
    ];
    for (code, expected) in cases {
        let case = format!("Commerce7 answering {code}");
        app.c7.set_failure(Some(code));
        let before = counts(&app).await;
        let calls = app.c7.user_calls();
        let response = open_without_cookie(&app, TENANT, OWNER_TOKEN).await;
        let retry_after = response.headers().get(header::RETRY_AFTER).map(|v| v.to_str().unwrap().to_owned());
        let html = check_failed_sign_in(&app, response, expected, &case).await;
        assert_eq!(app.c7.user_calls(), calls + 1, "{case}: one Commerce7 call");
        before.moved_only(&counts(&app).await, expected.sign_in, Some(expected.call), &case);
        assert_eq!(retry_after, None, "{case}");
        if expected.sign_in == "commerce7_rejected" {
            assert!(html.contains("reopen Libero from Commerce7"), "{case}: {html}");
        }
    }

    // Control: with Commerce7 answering 200 again, the same open signs in.
    app.c7.set_failure(None);
    let before = counts(&app).await;
    handoff_code(open_without_cookie(&app, TENANT, OWNER_TOKEN).await).await;
    assert_eq!(app.session_rows().await.len(), 1);
    let after = counts(&app).await;
    assert_eq!(after, before.with_call("ok"), "a success moves none of the failure outcomes");
    app.stop().await;
});

impl Counts {
    /// `self` with one more Commerce7 call of `outcome` (no failed sign-in).
    fn with_call(&self, outcome: &str) -> Counts {
        let name = format!(r#"libero_commerce7_request_duration_seconds_count{{outcome="{outcome}"}}"#);
        Counts(self.0.iter().map(|(n, v)| (n.clone(), if *n == name { v + 1.0 } else { *v })).collect())
    }
}

// Commerce7's 429 is remembered for its tenant until its Retry-After ends: an open meanwhile gets
// the same page with the seconds left, and Commerce7 is not asked again (each call would count
// against the tenant's limit). Controls: another winery is still asked, and the tenant is asked
// again once the wait is over.
on_both_databases!(a_429_is_remembered_for_its_tenant_until_its_retry_after_ends, |kind| async move {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(app) = spawn(kind, &[]).await else { return };
    app.install(OTHER_TENANT).await;
    app.c7.set_failure(Some(429));
    app.c7.set_retry_after(Some("17"));
    let before = counts(&app).await;
    let response = open_without_cookie(&app, TENANT, OWNER_TOKEN).await;
    assert_eq!(response.headers()[header::RETRY_AFTER], "17", "Commerce7's Retry-After is passed on");
    let html = check_failed_sign_in(&app, response, &BUSY, "429").await;
    assert!(html.contains("Commerce7 is busy, try again in 17 seconds."), "{html}");
    assert_eq!(app.c7.user_calls(), 1, "one Commerce7 call");
    before.moved_only(&counts(&app).await, BUSY.sign_in, Some(BUSY.call), "429");

    // Commerce7 would answer now, but it asked to wait: the same page, and it is not asked.
    app.c7.set_failure(None);
    let before = counts(&app).await;
    let again = open_without_cookie(&app, TENANT, OWNER_TOKEN).await;
    let left: u32 = again.headers()[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=17).contains(&left), "the seconds left: {left}");
    check_failed_sign_in(&app, again, &BUSY, "while it waits").await;
    assert_eq!(app.c7.user_calls(), 1, "Commerce7 is not asked again");
    before.moved_only(&counts(&app).await, BUSY.sign_in, None, "while it waits");

    // Control: another winery is asked, and signs in.
    handoff_code(open_without_cookie(&app, OTHER_TENANT, OTHER_TOKEN).await).await;
    assert_eq!(app.c7.user_calls(), 2);
    app.stop().await;

    // Control: once the wait is over, the tenant is asked again.
    let Some(app) = spawn(kind, &[]).await else { return };
    app.c7.set_failure(Some(429));
    app.c7.set_retry_after(Some("1"));
    check_failed_sign_in(&app, open_without_cookie(&app, TENANT, OWNER_TOKEN).await, &BUSY, "1 s").await;
    app.c7.set_failure(None);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    handoff_code(open_without_cookie(&app, TENANT, OWNER_TOKEN).await).await;
    assert_eq!(app.c7.user_calls(), 2, "asked again after its Retry-After");
    app.stop().await;
});

on_both_databases!(a_timeout_and_a_failed_connection_are_the_outage, |kind| async move {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(app) = spawn(kind, &[("COMMERCE7_TIMEOUT", "500ms")]).await else { return };
    app.c7.set_latency(Duration::from_secs(3));
    let before = counts(&app).await;
    // Commerce7 answers after 3 s, and would sign the merchant in: the outage is the timeout's.
    check_failed_sign_in(&app, open_without_cookie(&app, TENANT, OWNER_TOKEN).await, &UNAVAILABLE, "timeout").await;
    before.moved_only(&counts(&app).await, "commerce7_unavailable", Some("timeout"), "timeout");
    app.stop().await;

    let Some(app) = spawn(kind, &[("COMMERCE7_API_URL", "http://127.0.0.1:9/v1")]).await else { return };
    let before = counts(&app).await;
    check_failed_sign_in(&app, open_without_cookie(&app, TENANT, OWNER_TOKEN).await, &UNAVAILABLE, "no connection")
        .await;
    before.moved_only(&counts(&app).await, "commerce7_unavailable", Some("error"), "no connection");
    app.stop().await;

    // A 200 whose head comes at once and whose body never does: the timeout too, not an error.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stalling = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut stream, _)) = listener.accept().await {
            // The whole request first (an answer sent before it is one hyper refuses), then a head and a
            // body that stops after six of its 64 bytes.
            let mut request = Vec::new();
            while !request.ends_with(b"\r\n\r\n") {
                let mut byte = [0u8; 1];
                if stream.read(&mut byte).await.unwrap_or(0) == 0 {
                    break;
                }
                request.push(byte[0]);
            }
            let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 64\r\n\r\n{\"id\":";
            stream.write_all(head.as_bytes()).await.unwrap();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                drop(stream)
            });
        }
    });
    let Some(app) = spawn(kind, &[("COMMERCE7_TIMEOUT", "500ms"), ("COMMERCE7_API_URL", &stalling)]).await else {
        return;
    };
    let before = counts(&app).await;
    check_failed_sign_in(&app, open_without_cookie(&app, TENANT, OWNER_TOKEN).await, &UNAVAILABLE, "stalled body")
        .await;
    before.moved_only(&counts(&app).await, "commerce7_unavailable", Some("timeout"), "stalled body");
    app.stop().await;
});

// Commerce7 answering with a redirect (an API URL moved to https, say) is not followed — a
// redirect to another host or port would go on without the token and come back as a refusal that
// ends this browser's session — but is the outage. Control: the same open without it signs in.
on_both_databases!(a_redirect_from_commerce7_is_not_followed_and_is_the_outage, |kind| async move {
    let _turn = ONE_AT_A_TIME.lock().await;
    let target = std::sync::Arc::new(std::sync::OnceLock::<String>::new());
    let location = target.clone();
    let moved_to = axum::Router::new().fallback(move || {
        let location = location.get().cloned().unwrap_or_default();
        async move { (StatusCode::MOVED_PERMANENTLY, [(header::LOCATION, location)]) }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let moved = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, moved_to).await });
    let Some(app) = spawn(kind, &[("COMMERCE7_API_URL", &moved)]).await else { return };
    target.set(format!("{}/account/user", app.c7.api_url())).unwrap();
    let before = counts(&app).await;
    check_failed_sign_in(&app, open_without_cookie(&app, TENANT, OWNER_TOKEN).await, &UNAVAILABLE, "301").await;
    before.moved_only(&counts(&app).await, "commerce7_unavailable", Some("error"), "301");
    assert_eq!(app.c7.user_calls(), 0, "the redirect is not followed");
    app.stop().await;

    let Some(app) = spawn(kind, &[]).await else { return };
    handoff_code(open_without_cookie(&app, TENANT, OWNER_TOKEN).await).await;
    assert_eq!(app.c7.user_calls(), 1);
    app.stop().await;
});

/// The user fields of the only session: name, email and role as stored.
async fn stored_user(app: &TestApp) -> (Option<String>, Option<String>, Option<String>) {
    let sql = "SELECT user_name, user_email, user_role FROM app_sessions";
    match &app.db {
        Db::Sqlite(pool) => sqlx::query_as(sql).fetch_one(pool).await.unwrap(),
        Db::Postgres(pool) => sqlx::query_as(sql).fetch_one(pool).await.unwrap(),
    }
}

/// The API URL of a stand-in Commerce7 that answers every request with `user` (200).
async fn commerce7_answering(user: serde_json::Value) -> String {
    let answers = axum::Router::new().fallback(move || std::future::ready(axum::Json(user.clone())));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, answers).await });
    api_url
}

// A user id is what a session is for: Commerce7 answering 200 with an empty one, or one with a
// control character (a NUL, which PostgreSQL cannot store), is an unexpected answer — the 503 page,
// counted as Commerce7's (sign-in `commerce7_unavailable`, call `error`, not `ok`) — and no
// session; never a database error. Control: a plain id signs in.
on_both_databases!(a_commerce7_user_id_that_is_empty_or_has_a_control_character_signs_nobody_in, |kind| async move {
    let _turn = ONE_AT_A_TIME.lock().await;
    for (id, signs_in) in [("c7-user-dana", true), ("c7-user\u{0}dana", false), ("c7-user\ndana", false), ("", false)] {
        let user = serde_json::json!({ "id": id, "firstName": "Dana" });
        let Some(app) = spawn(kind, &[("COMMERCE7_API_URL", &commerce7_answering(user).await)]).await else { return };
        let before = counts(&app).await;
        let response = open_without_cookie(&app, TENANT, OWNER_TOKEN).await;
        let (sign_in, call) = if signs_in { ("ok", "ok") } else { ("commerce7_unavailable", "error") };
        before.moved_only(&counts(&app).await, sign_in, Some(call), &format!("{id:?}"));
        if signs_in {
            handoff_code(response).await;
            assert_eq!(app.session_rows().await.len(), 1, "{id:?}: signed in");
        } else {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{id:?}");
            assert!(response.text().await.unwrap().contains("Libero couldn't reach Commerce7"), "{id:?}");
            assert!(app.session_rows().await.is_empty(), "{id:?}: no session");
        }
        app.stop().await;
    }
});

// Commerce7's user fields are text its users typed: a control character in a name (a NUL, which
// PostgreSQL cannot store, or a line break) becomes a space, and an email or a role with one inside
// is not kept (a role so spelled is none of Commerce7's: the report fails closed) — the sign-in
// works either way, with a NUL and with another control character. Control: the same answer
// without them is stored as sent.
on_both_databases!(control_characters_in_a_users_name_email_or_role_never_fail_the_sign_in, |kind| async move {
    let _turn = ONE_AT_A_TIME.lock().await;
    let some = |value: &str| Some(value.to_owned());
    for (first, last, email, role, stored) in [
        ("Da\u{0}na", "Ow\nner", "dana\u{0}@example.com", "Admin\u{0}Owner", (some("Da na Ow ner"), None, None)),
        ("Dana", "Owner", "dana@exa\nmple.com", "Admin\tOwner", (some("Dana Owner"), None, None)),
        (
            "Dana",
            "Owner",
            "dana@example.com",
            "Admin Owner",
            (some("Dana Owner"), some("dana@example.com"), some("Admin Owner")),
        ),
    ] {
        let user = serde_json::json!({ "id": "c7-user-dana", "firstName": first, "lastName": last, "email": email, "role": role });
        let Some(app) = spawn(kind, &[("COMMERCE7_API_URL", &commerce7_answering(user).await)]).await else { return };
        handoff_code(open_without_cookie(&app, TENANT, OWNER_TOKEN).await).await;
        assert_eq!(stored_user(&app).await, stored, "{first:?} {last:?} {email:?} {role:?}");
        app.stop().await;
    }
});

on_both_databases!(retry_after_follows_commerce7_when_sane_else_60_seconds, |kind| async move {
    let _turn = ONE_AT_A_TIME.lock().await;
    // A fresh app for each: after a 429 Commerce7 is not asked again for the tenant until it ends.
    for (given, expected) in [
        (None, "60"),
        (Some("17"), "17"),
        (Some("600"), "600"),
        (Some("1"), "1"),
        (Some("0"), "1"),
        (Some("601"), "60"),
        (Some("86400"), "60"),
        (Some("-3"), "60"),
        (Some("2.5"), "60"),
        (Some("soon"), "60"),
        (Some("Wed, 21 Oct 2015 07:28:00 GMT"), "60"),
    ] {
        let Some(app) = spawn(kind, &[]).await else { return };
        app.c7.set_failure(Some(429));
        app.c7.set_retry_after(given);
        let response = open_without_cookie(&app, TENANT, OWNER_TOKEN).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{given:?}");
        assert_eq!(response.headers()[header::RETRY_AFTER], expected, "Commerce7 said {given:?}");
        let html = response.text().await.unwrap();
        let unit = if expected == "1" { "second" } else { "seconds" };
        assert!(html.contains(&format!("try again in {expected} {unit}.")), "{given:?}: {html}");
        assert!(app.session_rows().await.is_empty());
        app.stop().await;
    }
});

// --- Which answers end this browser's session ----------------------------------------------------

/// Signs the demo owner in with the app's cookie-keeping client and returns the session's row id.
async fn signed_in(app: &TestApp) -> String {
    handoff_code(app.sign_in(TENANT, OWNER_TOKEN).await).await;
    assert_eq!(app.get("/app").await.status(), StatusCode::OK, "signed in");
    let rows = app.session_rows().await;
    assert_eq!(rows.len(), 1, "one session");
    rows[0].id.clone()
}

on_both_databases!(a_refusal_ends_this_browsers_session_of_that_winery_and_nothing_else_does, |kind| async move {
    let _turn = ONE_AT_A_TIME.lock().await;
    let Some(app) = spawn(kind, &[("COMMERCE7_TIMEOUT", "500ms")]).await else { return };

    // A refusal — 401 as Commerce7 answers a token it does not know, then 403, 404 and 422 — ends
    // this browser's session of the winery, as a 401 always has.
    for code in [None, Some(401), Some(403), Some(404), Some(422)] {
        let case = format!("refusal {code:?}");
        signed_in(&app).await;
        app.c7.set_failure(code);
        let response = app.sign_in(TENANT, STALE_TOKEN).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{case}");
        assert!(clears_the_cookie(&response), "{case}: the cookie is cleared");
        assert!(app.session_rows().await.is_empty(), "{case}: the session is gone");
        no_session_page(app.get("/app").await, "missing").await;
        app.c7.set_failure(None);
    }

    // Controls: another 4xx, a 5xx, a timeout and a 429 end nothing — the same session goes on.
    // (The 429 last: Commerce7 is not asked again for the tenant until its Retry-After ends.)
    let row = signed_in(&app).await;
    for (failure, status) in [
        (Some(400), StatusCode::BAD_REQUEST),
        (Some(409), StatusCode::BAD_REQUEST),
        (Some(500), StatusCode::SERVICE_UNAVAILABLE),
        (Some(503), StatusCode::SERVICE_UNAVAILABLE),
        (None, StatusCode::SERVICE_UNAVAILABLE), // a timeout
        (Some(429), StatusCode::TOO_MANY_REQUESTS),
    ] {
        let case = format!("{failure:?}");
        app.c7.set_failure(failure);
        if failure.is_none() {
            app.c7.set_latency(Duration::from_secs(3));
        }
        let response = app.sign_in(TENANT, STALE_TOKEN).await;
        assert_eq!(response.status(), status, "{case}");
        assert!(!clears_the_cookie(&response), "{case}: the cookie stays");
        assert!(response.headers().get(header::SET_COOKIE).is_none(), "{case}: no cookie change at all");
        app.c7.set_failure(None);
        app.c7.set_latency(Duration::ZERO);
        let rows = app.session_rows().await;
        assert_eq!(rows.len(), 1, "{case}: the session stays");
        assert_eq!(rows[0].id, row, "{case}: the same session");
        let page = app.get("/app").await;
        assert_eq!(page.status(), StatusCode::OK, "{case}: the dashboard still opens");
        assert!(page.text().await.unwrap().contains(r#"data-tenant="demo-winery""#), "{case}");
    }

    app.stop().await;

    // A refusal ends only *that winery's* session of this browser: with another winery's
    // session in the cookie, a refusal for the first leaves it. (A fresh app: the last control's
    // 429 keeps Commerce7 from being asked for the tenant for a while.)
    let Some(app) = spawn(kind, &[]).await else { return };
    signed_in(&app).await;
    app.install(OTHER_TENANT).await;
    handoff_code(app.sign_in(OTHER_TENANT, OTHER_TOKEN).await).await;
    assert_eq!(app.session_rows().await.len(), 2, "both wineries' sessions (the first kept for its tab)");
    app.c7.set_failure(Some(404));
    let response = app.sign_in(TENANT, STALE_TOKEN).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(!clears_the_cookie(&response), "the cookie is the other winery's: kept");
    assert_eq!(app.session_rows().await.len(), 2, "neither winery's session ends");
    app.c7.set_failure(None);
    let page = app.get("/app").await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains(r#"data-tenant="second-cellar""#));
    app.stop().await;
});

// --- Libero's own limit keeps its outcome ----------------------------------------------------------

on_both_databases!(libero_s_own_sign_in_limit_is_rate_limited_not_commerce7_busy, |kind| async move {
    let _turn = ONE_AT_A_TIME.lock().await;
    let support = "https://help.example.com/libero";
    let Some(app) = spawn(kind, &[("RATE_LIMIT_SIGN_IN", "1/min"), ("SUPPORT_URL", support)]).await else {
        return;
    };
    // One refused sign-in uses this address's allowance, whichever attempts the limit counts.
    let before = counts(&app).await;
    check_failed_sign_in(&app, open_without_cookie(&app, TENANT, STALE_TOKEN).await, &REFUSED, "first").await;
    before.moved_only(&counts(&app).await, "commerce7_refused", Some("refused"), "first");

    let before = counts(&app).await;
    let calls = app.c7.user_calls();
    let limited = open_without_cookie(&app, TENANT, STALE_TOKEN).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().get(header::RETRY_AFTER).is_some(), "Libero's limit says when, too");
    let html = limited.text().await.unwrap();
    assert_eq!(title(&html), "Too many sign-in attempts", "Libero's own page, not Commerce7's");
    assert_eq!(support_link(&html).as_deref(), Some(support));
    assert_eq!(app.c7.user_calls(), calls, "Commerce7 is not asked");
    before.moved_only(&counts(&app).await, "rate_limited", None, "Libero's limit");
    app.stop().await;
});

// --- SUPPORT_URL -------------------------------------------------------------------------------

/// One of each error page a merchant can meet at sign-in, plus the cross-site page, as
/// (what, page).
async fn error_pages(app: &TestApp) -> Vec<(&'static str, String)> {
    let mut pages = Vec::new();
    let mut add = async |what: &'static str, response: reqwest::Response, status: StatusCode| {
        assert_eq!(response.status(), status, "{what}");
        pages.push((what, response.text().await.unwrap()));
    };
    add("refused", open_without_cookie(app, TENANT, STALE_TOKEN).await, StatusCode::UNAUTHORIZED).await;
    for (what, code, status) in [
        ("404", 404, StatusCode::UNAUTHORIZED),
        ("rejected", 400, StatusCode::BAD_REQUEST),
        ("unavailable", 503, StatusCode::SERVICE_UNAVAILABLE),
        ("busy", 429, StatusCode::TOO_MANY_REQUESTS), // last: the tenant is not asked again for a while
    ] {
        app.c7.set_failure(Some(code));
        add(what, open_without_cookie(app, TENANT, OWNER_TOKEN).await, status).await;
    }
    app.c7.set_failure(None);
    add("not installed", open_without_cookie(app, OTHER_TENANT, OTHER_TOKEN).await, StatusCode::FORBIDDEN).await;
    let incomplete = TestApp::bare_client().get(app.url(&format!("/app?tenantId={TENANT}"))).send().await.unwrap();
    add("bad link", incomplete, StatusCode::BAD_REQUEST).await;
    let cross_site = TestApp::bare_client()
        .post(app.url("/logout"))
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    add("cross-site", cross_site, StatusCode::FORBIDDEN).await;
    pages
}

on_both_databases!(support_url_is_linked_from_every_error_page_when_set_and_only_then, |kind| async move {
    let _turn = ONE_AT_A_TIME.lock().await;
    let support = "https://help.example.com/libero?from=error&lang=en";
    let Some(app) = spawn(kind, &[("SUPPORT_URL", support)]).await else { return };
    for (what, html) in error_pages(&app).await {
        assert_eq!(support_link(&html).as_deref(), Some(support), "{what}: {html}");
        assert!(html.contains("Read Libero&#39;s support docs") || html.contains("Read Libero's support docs"));
    }
    app.stop().await;

    // Negative control: the same pages of an app without SUPPORT_URL have no such link.
    let Some(app) = spawn(kind, &[]).await else { return };
    for (what, html) in error_pages(&app).await {
        assert_eq!(support_link(&html), None, "{what}: {html}");
        assert!(!html.contains("support docs") && !html.contains("help.example.com"), "{what}: {html}");
    }
    app.stop().await;
});
