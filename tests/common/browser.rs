//! A browser of its own for the multi-browser tests: its own cookie jar and `User-Agent`,
//! redirects off. The spec files add the calls of their own feature (`impl Browser` there).

use std::sync::Arc;

use reqwest::{StatusCode, cookie::CookieStore};

use super::TestApp;

pub const CHROME_ON_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
pub const FIREFOX_ON_MACOS: &str =
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.5; rv:127.0) Gecko/20100101 Firefox/127.0";
pub const SAFARI_ON_IOS: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

pub struct Browser {
    pub client: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
    pub base: String,
}

impl Browser {
    pub fn new(app: &TestApp, user_agent: &str) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(user_agent)
            .build()
            .unwrap();
        Self { client, jar, base: app.base.clone() }
    }

    /// Opens `page?tenantId&account` as Commerce7 does; returns the sign-in's answer (the page).
    pub async fn open(&self, page: &str, tenant: &str, account: &str) -> reqwest::Response {
        let url = format!("{}{page}?tenantId={tenant}&account={account}&adminUITheme=light", self.base);
        self.client.get(url).header("sec-fetch-dest", "iframe").send().await.unwrap()
    }

    /// A new browser in which `account`'s user of `tenant` opens the dashboard.
    pub async fn signed_in(app: &TestApp, user_agent: &str, tenant: &str, account: &str) -> Self {
        let browser = Self::new(app, user_agent);
        super::signed_in_page(browser.open("/app", tenant, account).await).await;
        assert!(browser.cookie().is_some(), "the browser holds a session cookie");
        browser
    }

    /// The `__libero_session=…` cookie this browser holds.
    pub fn cookie(&self) -> Option<String> {
        let header = self.jar.cookies(&self.base.parse().unwrap())?;
        header.to_str().unwrap().split("; ").find(|c| c.starts_with("__libero_session=")).map(str::to_owned)
    }

    /// The session token inside the signed cookie (after the 44-character HMAC).
    pub fn token(&self) -> String {
        let cookie = self.cookie().expect("cookie held");
        let value = cookie.trim_start_matches("__libero_session=");
        value.replace("%2B", "+").replace("%2F", "/").replace("%3D", "=")[44..].to_owned()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).send().await.unwrap()
    }

    /// A POST as the app's own pages send it.
    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .header("sec-fetch-site", "same-origin")
    }

    pub async fn dashboard_status(&self) -> StatusCode {
        self.get("/app").await.status()
    }

    /// Asserts that this browser's session has ended: its dashboard is the "no session" page
    /// saying so (the cookie it still sends is dead), never the landing page.
    pub async fn assert_signed_out(&self, what: &str) {
        let response = self.get("/app").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
        super::no_session_page(response, "ended").await;
    }
}
