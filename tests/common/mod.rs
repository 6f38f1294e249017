//! Test helpers: start the real app on port 0 against a fresh SQLite file or a fresh PostgreSQL
//! database, and talk to it over real HTTP.
#![allow(dead_code)]

pub mod browser;
pub mod child;
pub mod proxy;

use std::{collections::HashMap, net::SocketAddr, path::PathBuf};

use chrono::{DateTime, Utc};
use fake_commerce7::{FakeCommerce7, FakeConfig};
use leptos::config::LeptosOptions;
use libero::server::{config::Config, db::Db, startup::Application};
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::oneshot;

/// Where the tests find PostgreSQL (override with `TEST_POSTGRES_URL`).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A secret that satisfies the rules.
pub const TEST_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";

/// The two databases every behaviour is proven on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestDb {
    Sqlite,
    Postgres,
}

/// A fresh, empty database that is removed when dropped.
pub struct FreshDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl FreshDatabase {
    /// Creates the database. When PostgreSQL cannot be reached this is a *skip*, never a pass:
    /// under `make test` (which sets `LIBERO_TEST_SKIP_LOG`) the test's name, the URL and the
    /// reason are appended to that file and `None` is returned, and `make test` counts it as
    /// skipped; under `CI`, or when run without that file, the test fails with the reason.
    pub async fn create(kind: TestDb) -> Option<Self> {
        match kind {
            TestDb::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path: PathBuf = dir.path().join("libero-test.db");
                Some(Self { url: format!("sqlite://{}", path.display()), _dir: Some(dir), pg_name: None })
            }
            TestDb::Postgres => {
                let admin = postgres_admin_url();
                let mut conn = match PgConnection::connect(&admin).await {
                    Ok(conn) => conn,
                    Err(err) => {
                        skip_or_fail(&format!("PostgreSQL unreachable at {}: {err}", redacted(&admin)));
                        return None;
                    }
                };
                let name = format!("libero_test_{}", uuid::Uuid::new_v4().simple());
                conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str()).await.expect("create test database");
                Some(Self { url: with_database(&admin, &name), _dir: None, pg_name: Some(name) })
            }
        }
    }
}

impl FreshDatabase {
    /// The PostgreSQL database's name (`None` for SQLite).
    pub fn postgres_name(&self) -> Option<&str> {
        self.pg_name.as_deref()
    }
}

/// The test's own name, as libtest reports it (`module::on_postgres`).
fn current_test_name() -> String {
    std::thread::current().name().filter(|n| *n != "main").unwrap_or("<unnamed test>").to_owned()
}

/// Records a skip for `make test`, or fails the test where a skip is not allowed.
pub fn skip_or_fail(reason: &str) {
    let name = current_test_name();
    let log = std::env::var_os("LIBERO_TEST_SKIP_LOG");
    match log {
        Some(path) if std::env::var_os("CI").is_none() => {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .unwrap_or_else(|e| panic!("cannot record the skip of {name} in {path:?}: {e}"));
            writeln!(file, "{} {name}\t{reason}", env!("CARGO_CRATE_NAME")).expect("write the skip log");
            eprintln!("SKIPPED {name}: {reason}");
        }
        Some(_) => panic!("{reason} (CI is set: a skipped test is a failure)"),
        None => panic!(
            "{reason}\nStart PostgreSQL or point TEST_POSTGRES_URL at one; `make test` reports these tests as skipped instead."
        ),
    }
}

/// `url` with its password replaced, for messages.
pub fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

/// `admin` pointing at database `name`, whatever form the URL takes (query, no port, no user).
fn with_database(admin: &str, name: &str) -> String {
    let mut url = url::Url::parse(admin).unwrap_or_else(|e| panic!("TEST_POSTGRES_URL is not a URL ({e})"));
    url.set_path(&format!("/{name}"));
    url.to_string()
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop runs outside any runtime guarantee: use a thread with its own small runtime.
            let admin = postgres_admin_url();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async move {
                    if let Ok(mut conn) = PgConnection::connect(&admin).await {
                        let _ =
                            conn.execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str()).await;
                    }
                });
            })
            .join();
        }
    }
}

/// Callback credentials the test app is configured with.
pub const CALLBACK_USER: &str = "c7-callbacks";
pub const CALLBACK_PASSWORD: &str = "callback-password";

/// The demo tenant the fake Commerce7 knows, and its owner's account token.
pub const TENANT: &str = "demo-winery";
pub const OWNER_TOKEN: &str = "demo-owner-token";
/// Sam Staff of the demo tenant.
pub const STAFF_TOKEN: &str = "demo-staff-token";
pub const OTHER_TENANT: &str = "second-cellar";
pub const OTHER_TOKEN: &str = "second-owner-token";

/// A running app on a random port, with a fake Commerce7 beside it.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub db: Db,
    /// The running app's shared state (to build a second router beside it).
    pub state: libero::server::state::AppState,
    pub database: FreshDatabase,
    pub c7: FakeCommerce7,
    /// A client that keeps cookies, never follows redirects and accepts the test's self-made
    /// http cookies (`COOKIE_SECURE` is off in tests: there is no TLS on loopback).
    pub client: reqwest::Client,
    pub jar: std::sync::Arc<reqwest::cookie::Jar>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Settings for a test app; extra variables override the defaults.
pub fn test_config(database_url: &str, extra: &[(&str, String)]) -> Config {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("SESSION_SECRET".to_owned(), TEST_SECRET.to_owned()),
        ("DATABASE_URL".to_owned(), database_url.to_owned()),
        ("COOKIE_SECURE".to_owned(), "false".to_owned()),
        ("COMMERCE7_USER".to_owned(), "c7-callbacks".to_owned()),
        ("COMMERCE7_PASSWORD".to_owned(), "callback-password".to_owned()),
        ("COMMERCE7_API_URL".to_owned(), "http://127.0.0.1:9/v1".to_owned()),
        ("COMMERCE7_TIMEOUT".to_owned(), "2s".to_owned()),
    ]);
    for (k, v) in extra {
        vars.insert((*k).to_owned(), v.clone());
    }
    Config::from_lookup(|k| vars.get(k).cloned()).expect("valid test settings")
}

/// Leptos options for tests: port 0, the site built by `cargo leptos build` if present.
pub fn test_leptos_options() -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("libero")
        .site_root(concat!(env!("CARGO_MANIFEST_DIR"), "/target/site"))
        .site_pkg_dir("pkg")
        .site_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .build()
}

impl TestApp {
    /// Starts the app against a fresh database of `kind`; `None` when PostgreSQL is skipped.
    pub async fn spawn(kind: TestDb) -> Option<Self> {
        Self::spawn_with(kind, &[]).await
    }

    /// Like [`TestApp::spawn`], with extra settings.
    pub async fn spawn_with(kind: TestDb, extra: &[(&str, String)]) -> Option<Self> {
        Some(Self::spawn_on(FreshDatabase::create(kind).await?, extra).await)
    }

    /// Starts the app against `database`, reached at its `url`.
    pub async fn spawn_on(database: FreshDatabase, extra: &[(&str, String)]) -> Self {
        let c7 = FakeCommerce7::start(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            FakeConfig::demo("http://127.0.0.1:9", CALLBACK_USER, CALLBACK_PASSWORD),
        )
        .await
        .expect("the fake Commerce7 starts");
        let mut settings = vec![("COMMERCE7_API_URL", c7.api_url())];
        settings.extend(extra.iter().cloned());
        let config = test_config(&database.url, &settings);
        let app = Application::build(config, test_leptos_options()).await.expect("the app starts");
        let addr = app.local_addr();
        let db = app.state().db.clone();
        let state = app.state().clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        c7.set_app_url(&format!("http://{addr}"));
        Self {
            addr,
            base: format!("http://{addr}"),
            db,
            state,
            database,
            c7,
            client,
            jar,
            shutdown: Some(tx),
            server: Some(server),
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A GET with the shared cookie-keeping client.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("request")
    }

    /// GETs the `Location` of a redirect with the shared client, as a browser would (the client
    /// follows no redirect by itself).
    pub async fn follow(&self, redirect: &reqwest::Response) -> reqwest::Response {
        assert!(redirect.status().is_redirection(), "a redirect to follow, got {}", redirect.status());
        let location = redirect.headers()[reqwest::header::LOCATION].to_str().unwrap();
        assert!(location.starts_with('/'), "a path on the app itself: {location}");
        self.get(location).await
    }

    /// A POST from the app's own pages (the browser's `Origin` and `Sec-Fetch-Site`).
    pub fn post_same_origin(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).header("origin", &self.base).header("sec-fetch-site", "same-origin")
    }

    /// Installs a tenant through the fake Commerce7's install callback.
    pub async fn install(&self, tenant: &str) {
        let status = self.c7.send_install(tenant).await.expect("install callback sent");
        assert_eq!(status.as_u16(), 200, "install callback accepted");
    }

    /// Installs the demo tenant and signs its owner in, as the Commerce7 iframe does.
    pub async fn signed_in(kind: TestDb) -> Option<Self> {
        Self::signed_in_with(kind, &[]).await
    }

    /// [`TestApp::signed_in`] with extra settings.
    pub async fn signed_in_with(kind: TestDb, extra: &[(&str, String)]) -> Option<Self> {
        let app = Self::spawn_with(kind, extra).await?;
        app.install(TENANT).await;
        signed_in_page(app.sign_in(TENANT, OWNER_TOKEN).await).await;
        Some(app)
    }

    /// `GET /app?tenantId=…&account=…` with the shared client.
    pub async fn sign_in(&self, tenant: &str, token: &str) -> reqwest::Response {
        self.get(&format!("/app?tenantId={tenant}&account={token}&adminUITheme=light")).await
    }

    /// Inserts `count` sessions of the demo tenant with the given activity and expiry, ids
    /// `<prefix>-<n>`.
    pub async fn insert_sessions(
        &self,
        prefix: &str,
        count: i64,
        last_activity: DateTime<Utc>,
        expires: DateTime<Utc>,
    ) {
        let client_id = self.client_id(TENANT).await.expect("tenant installed");
        match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                     INSERT INTO app_sessions (id, client_id, tenant_id, user_id, theme, data, last_activity_at, expires_at, created_at, updated_at)
                     SELECT ?2 || '-' || i, c.id, c.tenant_id, 'c7-user-old', 'light', '{}', ?4, ?5, ?4, ?4 FROM n, clients c WHERE c.id = ?3",
                )
                .bind(count)
                .bind(prefix)
                .bind(client_id)
                .bind(last_activity)
                .bind(expires)
                .execute(pool)
                .await
                .unwrap();
            }
            Db::Postgres(pool) => {
                sqlx::query(
                    "INSERT INTO app_sessions (id, client_id, tenant_id, user_id, theme, data, last_activity_at, expires_at, created_at, updated_at)
                     SELECT $2 || '-' || i, c.id, c.tenant_id, 'c7-user-old', 'light', '{}', $4, $5, $4, $4
                       FROM generate_series(1, $1) AS i, clients c WHERE c.id = $3::uuid",
                )
                .bind(count)
                .bind(prefix)
                .bind(client_id)
                .bind(last_activity)
                .bind(expires)
                .execute(pool)
                .await
                .unwrap();
            }
        }
    }

    /// Every session row.
    pub async fn session_rows(&self) -> Vec<SessionRow> {
        match &self.db {
            Db::Sqlite(pool) => sqlx::query_as(
                "SELECT id, client_id, user_id, user_name, theme, data, expires_at, last_activity_at, created_at, updated_at,
                        install_generation, account_token_hash FROM app_sessions",
            )
            .fetch_all(pool)
            .await
            .unwrap(),
            Db::Postgres(pool) => sqlx::query_as(
                "SELECT id, client_id::text AS client_id, user_id, user_name, theme, data::text AS data, expires_at,
                        last_activity_at, created_at, updated_at, install_generation, account_token_hash FROM app_sessions",
            )
            .fetch_all(pool)
            .await
            .unwrap(),
        }
    }

    /// The only session row (panics unless there is exactly one).
    pub async fn only_session(&self) -> SessionRow {
        let mut rows = self.session_rows().await;
        assert_eq!(rows.len(), 1, "exactly one session row");
        rows.remove(0)
    }

    /// `clients.id` of a tenant, as text.
    pub async fn client_id(&self, tenant: &str) -> Option<String> {
        match &self.db {
            Db::Sqlite(pool) => sqlx::query_scalar("SELECT id FROM clients WHERE tenant_id = ?1")
                .bind(tenant)
                .fetch_optional(pool)
                .await
                .unwrap(),
            Db::Postgres(pool) => sqlx::query_scalar("SELECT id::text FROM clients WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_optional(pool)
                .await
                .unwrap(),
        }
    }

    /// Number of client rows.
    pub async fn client_count(&self) -> i64 {
        match &self.db {
            Db::Sqlite(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM clients").fetch_one(pool).await.unwrap(),
            Db::Postgres(pool) => sqlx::query_scalar("SELECT COUNT(*) FROM clients").fetch_one(pool).await.unwrap(),
        }
    }

    /// Runs `UPDATE app_sessions SET <column> = $1` (test 4 of the guide, and idle checks).
    pub async fn set_session_time(&self, column: &str, value: DateTime<Utc>) {
        assert!(["expires_at", "last_activity_at"].contains(&column));
        match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query(&format!("UPDATE app_sessions SET {column} = ?1")).bind(value).execute(pool).await.unwrap();
            }
            Db::Postgres(pool) => {
                sqlx::query(&format!("UPDATE app_sessions SET {column} = $1")).bind(value).execute(pool).await.unwrap();
            }
        }
    }

    /// `updated_at` of the only session row.
    pub async fn session_updated_at(&self) -> DateTime<Utc> {
        match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query_scalar("SELECT updated_at FROM app_sessions").fetch_one(pool).await.unwrap()
            }
            Db::Postgres(pool) => {
                sqlx::query_scalar("SELECT updated_at FROM app_sessions").fetch_one(pool).await.unwrap()
            }
        }
    }

    /// Sets `uninstalled_at` directly, as an operator's `UPDATE` by hand would (not through the
    /// uninstall callback, which deletes the sessions itself).
    pub async fn mark_uninstalled(&self, tenant: &str) {
        let now = Utc::now();
        match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query("UPDATE clients SET uninstalled_at = ?1 WHERE tenant_id = ?2")
                    .bind(now)
                    .bind(tenant)
                    .execute(pool)
                    .await
                    .unwrap();
            }
            Db::Postgres(pool) => {
                sqlx::query("UPDATE clients SET uninstalled_at = $1 WHERE tenant_id = $2")
                    .bind(now)
                    .bind(tenant)
                    .execute(pool)
                    .await
                    .unwrap();
            }
        }
    }

    /// The `__libero_session` cookie the shared client holds, as sent (`name=value`).
    pub fn session_cookie(&self) -> Option<String> {
        use reqwest::cookie::CookieStore;
        let header = self.jar.cookies(&self.base.parse().unwrap())?;
        header.to_str().unwrap().split("; ").find(|c| c.starts_with("__libero_session=")).map(str::to_owned)
    }

    /// A client with no cookies and no redirects.
    pub fn bare_client() -> reqwest::Client {
        reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// Stops the server and waits for it to finish its requests.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            // A test must fail, not hang, if the server does not drain.
            let abort = server.abort_handle();
            if tokio::time::timeout(std::time::Duration::from_secs(20), server).await.is_err() {
                abort.abort();
                panic!("the server did not shut down within 20 s");
            }
        }
    }
}

/// What a successful sign-in answers with: the page itself.
pub struct SignedIn {
    /// The page's HTML.
    pub html: String,
    /// Where its `<noscript>` refresh sends a browser that runs no script:
    /// `<page>?<context>&handoff=<code>`.
    pub without_script: String,
}

impl SignedIn {
    /// The handoff code of the `<noscript>` refresh.
    pub fn code(&self) -> &str {
        self.without_script.rsplit_once("handoff=").expect("a handoff code").1
    }

    /// The page the sign-in opened, with its context: the refresh's address without the code.
    pub fn landing(&self) -> &str {
        self.without_script.rsplit_once("handoff=").expect("a handoff code").0.trim_end_matches(['?', '&'])
    }

    /// The page's tab token.
    pub fn token(&self) -> String {
        tab_token(&self.html).expect("the page hands its tab a token")
    }
}

/// Checks that `response` is a successful sign-in's answer — `200`, the page itself, `no-store`,
/// no `Referer` to leak the URL, a tab token handed over by the sign-in (`data-via="sign-in"`),
/// and a `<noscript>` refresh to the page with a handoff code (43 characters of base64url) and
/// nothing else of the sign-in (no account token, tenant or theme) — and returns it.
pub async fn signed_in_page(response: reqwest::Response) -> SignedIn {
    use reqwest::header;
    let url = response.url().clone();
    assert_eq!(response.status().as_u16(), 200, "the sign-in answers with its page: {url}");
    assert!(response.headers().get(header::LOCATION).is_none(), "no redirect: {url}");
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    assert_eq!(response.headers()[header::REFERRER_POLICY], "no-referrer");
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"data-via="sign-in""#), "a tab token from the sign-in: {html}");
    const REFRESH: &str = r#"<noscript><meta http-equiv="refresh" content="0; url="#;
    let start = html.find(REFRESH).unwrap_or_else(|| panic!("a <noscript> refresh: {html}")) + REFRESH.len();
    let without_script = html[start..].split('"').next().unwrap().replace("&amp;", "&");
    let signed_in = SignedIn { html, without_script };
    let code = signed_in.code();
    assert_eq!(code.len(), 43, "a 256-bit code, base64url: {}", signed_in.without_script);
    assert!(code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "base64url: {code}");
    for param in ["account=", "tenantId=", "adminUITheme="] {
        assert!(!signed_in.without_script.contains(param), "no {param} in {}", signed_in.without_script);
    }
    if let Some(account) = url.query_pairs().find(|(name, _)| name == "account").map(|(_, value)| value.into_owned()) {
        assert!(!signed_in.html.contains(&account), "the account token is nowhere in the page");
    }
    signed_in
}

/// The handoff code a successful sign-in's page carries for a browser without script (see
/// [`signed_in_page`]).
pub async fn handoff_code(response: reqwest::Response) -> String {
    signed_in_page(response).await.code().to_owned()
}

/// Checks that `response` is the "no session" page a signed-in address answers without a session
/// — `401`, `no-store`, `<section id="no-session" data-reason="{reason}">` (`ended` when a dead
/// cookie was sent, `missing` when none was), never the public landing page and never a tab
/// token — and returns its HTML.
pub async fn no_session_page(response: reqwest::Response, reason: &str) -> String {
    use reqwest::header;
    let url = response.url().path().to_owned();
    assert_eq!(response.status().as_u16(), 401, "{url}: the no-session page, not a redirect");
    assert!(response.headers().get(header::LOCATION).is_none(), "{url}: no redirect");
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store", "{url}");
    let html = response.text().await.unwrap();
    assert!(html.contains(r#"id="no-session""#), "{url}: the no-session page: {html}");
    assert!(html.contains(&format!(r#"data-reason="{reason}""#)), "{url}: data-reason={reason:?}: {html}");
    assert!(!html.contains("Open Libero from your Commerce7 admin."), "{url}: not the landing page");
    assert!(!html.contains(r#"<meta name="libero-tab" content="#), "{url}: no tab token without a session");
    html
}

/// The tab token in a signed-in page's `<meta name="libero-tab" content="…">`.
pub fn tab_token(html: &str) -> Option<String> {
    let start = html.find(r#"<meta name="libero-tab" content=""#)? + r#"<meta name="libero-tab" content=""#.len();
    Some(html[start..].split('"').next()?.to_owned())
}

/// Signs `tenant` in with a cookie-less client and returns the tab token of the page the sign-in
/// answers with: exactly what a browser that keeps no cookie does.
pub async fn tab_of(app: &TestApp, tenant: &str, account: &str) -> String {
    let client = TestApp::bare_client();
    let sign_in = client
        .get(app.url(&format!("/app?tenantId={tenant}&account={account}")))
        .header("sec-fetch-dest", "iframe")
        .send()
        .await
        .unwrap();
    signed_in_page(sign_in).await.token()
}

/// Signs `tenant` in with the app's cookie-keeping client (one browser) and returns the HTML and
/// the tab token of the page the sign-in answers with.
pub async fn browser_tab(app: &TestApp, tenant: &str, account: &str) -> (String, String) {
    let page = signed_in_page(app.sign_in(tenant, account).await).await;
    let token = page.token();
    (page.html, token)
}

/// `POST /api/<endpoint>` with a tab token and nothing else (no cookie, no Origin).
pub async fn call_with_bearer(app: &TestApp, endpoint: &str, token: &str) -> reqwest::Response {
    TestApp::bare_client()
        .post(app.url(&format!("/api/{endpoint}")))
        .header(reqwest::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap()
}

/// Whether a response removes the session cookie (`Set-Cookie` of an empty value, `Max-Age=0`).
pub fn clears_the_cookie(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("__libero_session=;") && c.contains("Max-Age=0"))
}

/// One `app_sessions` row, as the tests look at it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SessionRow {
    pub id: String,
    pub client_id: String,
    pub user_id: String,
    pub user_name: Option<String>,
    pub theme: String,
    pub data: String,
    pub expires_at: DateTime<Utc>,
    pub last_activity_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub install_generation: i64,
    /// SHA-256 (hex) of the account token the session was verified with.
    pub account_token_hash: Option<String>,
}

/// Runs a test body on both databases: `both_databases!(name, |app| async move { … })` makes
/// `name_on_sqlite` and `name_on_postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                ($body)($crate::common::TestDb::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                ($body)($crate::common::TestDb::Postgres).await
            }
        }
    };
}

/// Holds the database's lock on a row (PostgreSQL: the `FOR UPDATE` statement it is taken with;
/// SQLite: the single write lock) so that requests writing it pile up behind it.
pub enum RowLock {
    /// The lock's connection, and the app's pool (whose connections the waiting writes hold).
    Sqlite(sqlx::SqliteConnection, sqlx::SqlitePool),
    Postgres(sqlx::PgConnection, String),
}

impl RowLock {
    pub async fn take(app: &TestApp, for_update: &str, bind: &str) -> Self {
        match app.db {
            Db::Sqlite(ref pool) => {
                let mut conn = sqlx::SqliteConnection::connect(&app.database.url).await.unwrap();
                conn.execute("BEGIN IMMEDIATE").await.unwrap();
                Self::Sqlite(conn, pool.clone())
            }
            Db::Postgres(_) => {
                let mut conn = PgConnection::connect(&app.database.url).await.unwrap();
                conn.execute("BEGIN").await.unwrap();
                sqlx::query(for_update).bind(bind).execute(&mut conn).await.unwrap();
                let name = app.database.postgres_name().unwrap().to_owned();
                Self::Postgres(conn, name)
            }
        }
    }

    /// Returns once `n` other statements wait on the lock. PostgreSQL reports it; on SQLite a
    /// write waiting for the lock holds its pool connection (a read holds one for microseconds),
    /// so `n` connections taken at two looks 25 ms apart are `n` waiting writes.
    pub async fn wait_for_waiters(&mut self, n: i64) {
        match self {
            Self::Sqlite(_, pool) => {
                let mut seen = 0;
                for _ in 0..200 {
                    let taken = pool.size() as i64 - pool.num_idle() as i64;
                    seen = if taken >= n { seen + 1 } else { 0 };
                    if seen == 2 {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                }
                panic!("the saves never waited on the write lock together");
            }
            Self::Postgres(_, name) => {
                let mut observer = PgConnection::connect(&postgres_admin_url()).await.unwrap();
                for _ in 0..200 {
                    let waiting: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                    )
                    .bind(&*name)
                    .fetch_one(&mut observer)
                    .await
                    .unwrap();
                    if waiting >= n {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(25)).await;
                }
                panic!("the saves never waited on the row lock together");
            }
        }
    }

    /// Lets the waiting requests go on, nothing written.
    pub async fn release(self) {
        self.end_with(None).await;
    }

    /// Runs `statement` (bound to `bind`) under the lock, then lets the waiting requests go on.
    pub async fn commit_after(self, statement: &str, bind: &str) {
        self.end_with(Some((statement, bind))).await;
    }

    async fn end_with(self, statement: Option<(&str, &str)>) {
        let end = if statement.is_some() { "COMMIT" } else { "ROLLBACK" };
        match self {
            Self::Sqlite(mut conn, _) => {
                if let Some((sql, bind)) = statement {
                    sqlx::query(sql).bind(bind).execute(&mut conn).await.unwrap();
                }
                conn.execute(end).await.unwrap();
            }
            Self::Postgres(mut conn, _) => {
                if let Some((sql, bind)) = statement {
                    sqlx::query(sql).bind(bind).execute(&mut conn).await.unwrap();
                }
                conn.execute(end).await.unwrap();
            }
        }
    }
}
