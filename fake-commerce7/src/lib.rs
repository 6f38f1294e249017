//! A fake Commerce7 for tests and local development.
//!
//! It answers `GET /v1/account/user` the way Commerce7 does (for the users and tenants it is
//! given, with optional latency and a switchable failure mode — any status in Commerce7's error
//! body `{statusCode, type, message, errors}`, with an optional `Retry-After`), sends the install and
//! uninstall callbacks to the app with Basic auth, and serves an **admin simulator** page
//! that embeds the app in an iframe the way the Commerce7 admin does.
//!
//! Account tokens: in [`TokenMode::Fresh`] (the default) every open from the admin simulator
//! mints a new JWT-shaped token, as Commerce7 does ([`tokens`]), which only this fake's
//! `GET /v1/account/user` can verify; in [`TokenMode::Fixed`] it hands out each user's fixed
//! `token`. The fixed tokens are accepted in both modes (they stand for a token an admin opened
//! earlier: Commerce7 documents no expiry), so tests can sign in with a known token directly.
//!
//! Routes:
//! - `GET /v1/account/user`: header `Authorization: <account token>`, header `tenant: <tenantId>`.
//! - `GET /`: the admin simulator (tenants, install/uninstall buttons, "open the app" links).
//! - `GET /admin/open?tenantId=..&user=<user id>|token=<token>&theme=light|dark`: the app in an
//!   iframe (`#app-frame`) plus a tiny third-party-cookie probe iframe (`#control-frame`); with
//!   `user`, the account token of the current [`TokenMode`].
//! - `POST /admin/install`, `POST /admin/uninstall` (form field `tenantId`): send the callback.
//! - `GET /control/set`, `GET /control/check`: the third-party-cookie probe.
//! - `GET /healthz`: `ok`.
//!
//! Account tokens are never logged.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Form, Query, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, COOKIE, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub mod tokens;

use tokens::Minter;
pub use tokens::{Claims, TokenMode};

/// Timeout of the install/uninstall callbacks sent to the app.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`FakeCommerce7::shutdown`] waits for open connections before aborting the server.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The account token used by the "invalid account token" link of the admin simulator.
pub const INVALID_TOKEN: &str = "invalid-token";
/// Name of the third-party-cookie probe cookie set by `GET /control/set`.
pub const CONTROL_COOKIE: &str = "c7_control";

/// An admin user known to the fake Commerce7: who `GET /v1/account/user` answers for.
///
/// Serialized in camelCase (`token`, `tenantId`, `id`, `firstName`, `lastName`, `email`,
/// `role`), which is also the format of the `FAKE_C7_USERS` file of the binary.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FakeUser {
    /// The user's fixed account token: what an open hands the app (`account` query parameter) in
    /// [`TokenMode::Fixed`]; `GET /v1/account/user` accepts it in both modes.
    pub token: String,
    /// The tenant (slug) this user has access to.
    pub tenant_id: String,
    /// The Commerce7 user id.
    pub id: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email address.
    pub email: String,
    /// The user's role, e.g. `Admin Owner`; omitted from the answer when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

impl fmt::Debug for FakeUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeUser")
            .field("token", &"<redacted>")
            .field("tenant_id", &self.tenant_id)
            .field("id", &self.id)
            .field("first_name", &self.first_name)
            .field("last_name", &self.last_name)
            .field("email", &self.email)
            .field("role", &self.role)
            .finish()
    }
}

impl FakeUser {
    fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name).trim().to_owned()
    }
}

/// Configuration of a [`FakeCommerce7`].
#[derive(Clone)]
pub struct FakeConfig {
    /// The users (and through them the tenants) the fake knows.
    pub users: Vec<FakeUser>,
    /// Latency added to every `GET /v1/account/user` answer.
    pub latency: Duration,
    /// Base URL of the app, e.g. `http://127.0.0.1:3000` (a trailing slash is ignored). The
    /// admin simulator frames `{app_url}/app` and callbacks go to `{app_url}/install` and
    /// `{app_url}/uninstall`.
    pub app_url: String,
    /// Basic-auth user name of the install/uninstall callbacks.
    pub callback_user: String,
    /// Basic-auth password of the install/uninstall callbacks.
    pub callback_password: String,
    /// Which account token an open from the admin simulator hands out.
    pub tokens: TokenMode,
    /// The answers to the app's client settings, sent at the top level of the install body
    /// under their codes (Libero declares none: empty by default).
    pub client_settings: Map<String, Value>,
}

impl fmt::Debug for FakeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeConfig")
            .field("users", &self.users)
            .field("latency", &self.latency)
            .field("app_url", &self.app_url)
            .field("callback_user", &self.callback_user)
            .field("callback_password", &"<redacted>")
            .field("tokens", &self.tokens)
            .field("client_settings", &self.client_settings)
            .finish()
    }
}

impl FakeConfig {
    /// The demo setup: tenant `demo-winery` with an owner (`demo-owner-token`, Dana Owner,
    /// role `Admin Owner`) and a staff user without role (`demo-staff-token`, Sam Staff), and
    /// tenant `second-cellar` with an owner (`second-owner-token`, Lee Vintner). No latency,
    /// fresh tokens on every open, no client-settings answers.
    pub fn demo(
        app_url: impl Into<String>,
        callback_user: impl Into<String>,
        callback_password: impl Into<String>,
    ) -> Self {
        Self {
            users: demo_users(),
            latency: Duration::ZERO,
            app_url: app_url.into(),
            callback_user: callback_user.into(),
            callback_password: callback_password.into(),
            tokens: TokenMode::Fresh,
            client_settings: Map::new(),
        }
    }
}

/// The demo users of [`FakeConfig::demo`].
pub fn demo_users() -> Vec<FakeUser> {
    let user =
        |token: &str, tenant: &str, id: &str, first: &str, last: &str, email: &str, role: Option<&str>| FakeUser {
            token: token.to_owned(),
            tenant_id: tenant.to_owned(),
            id: id.to_owned(),
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            email: email.to_owned(),
            role: role.map(str::to_owned),
        };
    vec![
        user(
            "demo-owner-token",
            "demo-winery",
            "c7-user-dana",
            "Dana",
            "Owner",
            "dana@demo-winery.example",
            Some("Admin Owner"),
        ),
        user("demo-staff-token", "demo-winery", "c7-user-sam", "Sam", "Staff", "sam@demo-winery.example", None),
        user(
            "second-owner-token",
            "second-cellar",
            "c7-user-lee",
            "Lee",
            "Vintner",
            "lee@second-cellar.example",
            Some("Admin Owner"),
        ),
    ]
}

impl Shared {
    fn app_url(&self) -> String {
        self.app_url.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// State shared by the handlers and the [`FakeCommerce7`] handle.
struct Shared {
    users: Vec<FakeUser>,
    /// Roles changed since start ([`FakeCommerce7::set_role`]), by (tenant, user id): what
    /// `GET /v1/account/user` answers instead of the configured role.
    roles: Mutex<HashMap<(String, String), Option<String>>>,
    app_url: Mutex<String>,
    callback_user: String,
    callback_password: String,
    /// `http://127.0.0.1:PORT` (or the bound address when it is not loopback/unspecified).
    origin: String,
    latency: Mutex<Duration>,
    /// 0 means "no failure".
    failure: AtomicU16,
    /// The `Retry-After` of simulated failures, as sent (`None`: no header).
    retry_after: Mutex<Option<String>>,
    user_calls: AtomicUsize,
    http: reqwest::Client,
    /// Mints and verifies the fresh account tokens, under a key drawn at start.
    minter: Minter,
    token_mode: Mutex<TokenMode>,
    client_settings: Map<String, Value>,
}

type AppState = Arc<Shared>;

impl Shared {
    fn latency(&self) -> Duration {
        *self.latency.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn failure(&self) -> Option<u16> {
        match self.failure.load(Ordering::SeqCst) {
            0 => None,
            code => Some(code),
        }
    }

    /// Distinct tenant ids, in order of first appearance.
    fn tenants(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.users.iter().map(|u| u.tenant_id.as_str()).filter(|t| seen.insert(*t)).collect()
    }

    /// The user's role now: as changed by [`FakeCommerce7::set_role`], else as configured.
    fn role_of(&self, user: &FakeUser) -> Option<String> {
        let roles = self.roles.lock().unwrap_or_else(PoisonError::into_inner);
        match roles.get(&(user.tenant_id.clone(), user.id.clone())) {
            Some(changed) => changed.clone(),
            None => user.role.clone(),
        }
    }

    fn users_of<'a>(&'a self, tenant_id: &'a str) -> impl Iterator<Item = &'a FakeUser> + 'a {
        self.users.iter().filter(move |u| u.tenant_id == tenant_id)
    }

    fn token_mode(&self) -> TokenMode {
        *self.token_mode.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A new signed token for `user`, as Commerce7 mints one when the admin opens the app.
    fn mint(&self, user: &FakeUser) -> String {
        self.minter.mint(&user.id, &user.first_name, &user.last_name, &user.email)
    }

    /// The account token an open from the admin simulator hands `user` in the current mode.
    fn open_token(&self, user: &FakeUser) -> String {
        match self.token_mode() {
            TokenMode::Fresh => self.mint(user),
            TokenMode::Fixed => user.token.clone(),
        }
    }

    /// Whom `GET /v1/account/user` answers for: the user of `tenant` whose fixed token this is,
    /// or the user of `tenant` a token minted here names (its `sub`) — as Commerce7, which
    /// answers for the token's user when that user has access to the tenant.
    fn account_user(&self, token: &str, tenant: &str) -> Option<&FakeUser> {
        let mut users = self.users.iter().filter(|u| u.tenant_id == tenant);
        if let Some(user) = users.clone().find(|u| u.token == token) {
            return Some(user);
        }
        let claims = self.minter.verify(token)?;
        users.find(|u| u.id == claims.sub)
    }

    /// The installing user of a tenant: its first user, or a made-up one for unknown tenants
    /// (so that callbacks for unknown tenants can be tested too).
    fn installer(&self, tenant_id: &str) -> CallbackUser {
        match self.users_of(tenant_id).next() {
            Some(u) => CallbackUser {
                id: u.id.clone(),
                email: u.email.clone(),
                first_name: u.first_name.clone(),
                last_name: u.last_name.clone(),
            },
            None => CallbackUser {
                id: "c7-user-installer".to_owned(),
                email: format!("installer@{tenant_id}.example"),
                first_name: "Installer".to_owned(),
                last_name: "User".to_owned(),
            },
        }
    }

    async fn send_callback(&self, kind: CallbackKind, tenant_id: &str) -> Result<StatusCode, reqwest::Error> {
        let user = self.installer(tenant_id);
        let url = format!("{}/{}", self.app_url(), kind.path());
        let request = self.http.post(&url).basic_auth(&self.callback_user, Some(&self.callback_password));
        let request = match kind {
            CallbackKind::Install => {
                let organization = demo_organization(tenant_id);
                request.json(&InstallBody {
                    tenant_id,
                    user,
                    organization_name: Some(organization.name),
                    organization_address: Some(organization.address),
                    organization_website: Some(organization.website),
                    organization_phone: Some(organization.phone),
                    client_settings: &self.client_settings,
                })
            }
            CallbackKind::Uninstall => request.json(&UninstallBody { tenant_id, user }),
        };
        let result = request.send().await.map(|r| r.status());
        match &result {
            Ok(status) => tracing::info!(
                callback = kind.path(),
                tenant = ?tenant_id,
                status = status.as_u16(),
                "callback sent to the app"
            ),
            Err(err) => tracing::warn!(
                callback = kind.path(),
                tenant = ?tenant_id,
                error = %error_chain(err),
                "callback to the app failed"
            ),
        }
        result
    }
}

#[derive(Clone, Copy, Debug)]
enum CallbackKind {
    Install,
    Uninstall,
}

impl CallbackKind {
    fn path(self) -> &'static str {
        match self {
            Self::Install => "install",
            Self::Uninstall => "uninstall",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Install => "Install",
            Self::Uninstall => "Uninstall",
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CallbackUser {
    id: String,
    email: String,
    first_name: String,
    last_name: String,
}

/// The install body, with Commerce7's field set: `tenantId`, `user`, the four organisation
/// fields (each may be missing) and the client-settings answers at the top level by code.
#[derive(Serialize)]
struct InstallBody<'a> {
    #[serde(rename = "tenantId")]
    tenant_id: &'a str,
    user: CallbackUser,
    #[serde(rename = "organization-name", skip_serializing_if = "Option::is_none")]
    organization_name: Option<String>,
    #[serde(rename = "organization-address", skip_serializing_if = "Option::is_none")]
    organization_address: Option<String>,
    #[serde(rename = "organization-website", skip_serializing_if = "Option::is_none")]
    organization_website: Option<String>,
    #[serde(rename = "organization-phone", skip_serializing_if = "Option::is_none")]
    organization_phone: Option<String>,
    #[serde(flatten)]
    client_settings: &'a Map<String, Value>,
}

/// The organisation the fake's install callback describes for a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoOrganization {
    /// `organization-name`: the tenant slug made readable (`demo-winery` → `Demo Winery`).
    pub name: String,
    /// `organization-address`.
    pub address: String,
    /// `organization-website`: `https://<tenant>.example`.
    pub website: String,
    /// `organization-phone`.
    pub phone: String,
}

/// What the fake's install callback sends for `tenant_id` as its organisation.
pub fn demo_organization(tenant_id: &str) -> DemoOrganization {
    DemoOrganization {
        name: pretty_tenant_name(tenant_id),
        address: "1 Vineyard Lane, Napa, CA 94558, US".to_owned(),
        website: format!("https://{tenant_id}.example"),
        phone: "+1 707 555 0100".to_owned(),
    }
}

#[derive(Serialize)]
struct UninstallBody<'a> {
    #[serde(rename = "tenantId")]
    tenant_id: &'a str,
    user: CallbackUser,
}

/// A running fake Commerce7 server. Dropping it stops the server (without waiting);
/// [`FakeCommerce7::shutdown`] stops it and waits.
pub struct FakeCommerce7 {
    state: AppState,
    addr: SocketAddr,
    shutdown_tx: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl fmt::Debug for FakeCommerce7 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeCommerce7").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl FakeCommerce7 {
    /// Binds `addr` (port 0 picks a free port) and serves the fake on the current tokio
    /// runtime. Fails when the address cannot be bound or the HTTP client cannot be built.
    pub async fn start(addr: SocketAddr, config: FakeConfig) -> io::Result<FakeCommerce7> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            .timeout(CALLBACK_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(io::Error::other)?;
        let state: AppState = Arc::new(Shared {
            users: config.users,
            roles: Mutex::new(HashMap::new()),
            app_url: Mutex::new(config.app_url.trim_end_matches('/').to_owned()),
            callback_user: config.callback_user,
            callback_password: config.callback_password,
            origin: origin_of(addr),
            latency: Mutex::new(config.latency),
            failure: AtomicU16::new(0),
            retry_after: Mutex::new(None),
            user_calls: AtomicUsize::new(0),
            http,
            minter: Minter::new(),
            token_mode: Mutex::new(config.tokens),
            client_settings: config.client_settings,
        });
        let app = router(state.clone());
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // Either an explicit signal or the handle being dropped.
                    let _ = shutdown_rx.await;
                })
                .await
        });
        tracing::debug!(%addr, "fake Commerce7 listening");
        Ok(FakeCommerce7 { state, addr, shutdown_tx: Some(shutdown_tx), task: Some(task) })
    }

    /// The bound address (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The fake's origin, e.g. `http://127.0.0.1:4010`.
    pub fn origin(&self) -> String {
        self.state.origin.clone()
    }

    /// The Commerce7 API base URL to give the app (`COMMERCE7_API_URL`), e.g.
    /// `http://127.0.0.1:4010/v1`.
    pub fn api_url(&self) -> String {
        format!("{}/v1", self.state.origin)
    }

    /// The admin simulator page on `localhost`, e.g. `http://localhost:4010/`: a different
    /// site from the `127.0.0.1` app, so the app is framed cross-site as in Commerce7.
    pub fn admin_url(&self) -> String {
        admin_url_of(self.addr)
    }

    /// Number of `GET /v1/account/user` requests received so far (counted on arrival,
    /// before the latency).
    pub fn user_calls(&self) -> usize {
        self.state.user_calls.load(Ordering::SeqCst)
    }

    /// Points the simulator and the callbacks at another app URL (tests learn the app's port
    /// only after the fake has started).
    pub fn set_app_url(&self, app_url: &str) {
        *self.state.app_url.lock().unwrap_or_else(|e| e.into_inner()) = app_url.trim_end_matches('/').to_owned();
    }

    /// Changes the latency added to `GET /v1/account/user` (for requests arriving from now on).
    pub fn set_latency(&self, latency: Duration) {
        *self.state.latency.lock().unwrap_or_else(PoisonError::into_inner) = latency;
    }

    /// With `Some(code)`, `GET /v1/account/user` answers that status (e.g. 503) with a
    /// Commerce7-style error body; `None` restores normal answers. Codes outside 100..=999
    /// are answered as 500.
    pub fn set_failure(&self, status: Option<u16>) {
        // 0 is the "no failure" marker; map an (invalid) Some(0) to 500.
        let code = match status {
            None => 0,
            Some(0) => 500,
            Some(code) => code,
        };
        self.state.failure.store(code, Ordering::SeqCst);
    }

    /// The `Retry-After` header of the simulated failures of [`FakeCommerce7::set_failure`]
    /// (e.g. `Some("17")` with a 429, Commerce7's rate limit); `None`, the default, sends none.
    /// The text is sent as given — seconds, an HTTP date or junk — so tests can try what a
    /// server might send; text that is not a valid header value sends none.
    pub fn set_retry_after(&self, value: Option<&str>) {
        *self.state.retry_after.lock().unwrap_or_else(PoisonError::into_inner) = value.map(str::to_owned);
    }

    /// Changes user `user_id` of `tenant_id`'s role in Commerce7 (`None`: no role, as older
    /// answers): `GET /v1/account/user` answers it from now on, whichever token it is asked with
    /// — a promotion or demotion by the winery's owner. `false` for an unknown user.
    pub fn set_role(&self, tenant_id: &str, user_id: &str, role: Option<&str>) -> bool {
        if !self.state.users_of(tenant_id).any(|u| u.id == user_id) {
            return false;
        }
        let mut roles = self.state.roles.lock().unwrap_or_else(PoisonError::into_inner);
        roles.insert((tenant_id.to_owned(), user_id.to_owned()), role.map(str::to_owned));
        true
    }

    /// Which account token an open from the admin simulator hands out from now on.
    pub fn set_token_mode(&self, mode: TokenMode) {
        *self.state.token_mode.lock().unwrap_or_else(PoisonError::into_inner) = mode;
    }

    /// The current token mode.
    pub fn token_mode(&self) -> TokenMode {
        self.state.token_mode()
    }

    /// A new signed account token for user `user_id` of `tenant_id`, whatever the mode (what an
    /// open hands out in [`TokenMode::Fresh`]); `None` for an unknown user.
    pub fn mint_token(&self, tenant_id: &str, user_id: &str) -> Option<String> {
        self.state.users_of(tenant_id).find(|u| u.id == user_id).map(|user| self.state.mint(user))
    }

    /// The account token an open from the admin simulator would hand user `user_id` of
    /// `tenant_id` now: a fresh one, or in [`TokenMode::Fixed`] the user's fixed token.
    pub fn open_token(&self, tenant_id: &str, user_id: &str) -> Option<String> {
        self.state.users_of(tenant_id).find(|u| u.id == user_id).map(|user| self.state.open_token(user))
    }

    /// Sends the install callback for `tenant_id` to `{app_url}/install` with Basic auth, the
    /// tenant's first user as installer (a made-up user for an unknown tenant), the tenant's
    /// [`demo_organization`] and the configured client-settings answers, and returns the app's
    /// status.
    pub async fn send_install(&self, tenant_id: &str) -> Result<reqwest::StatusCode, reqwest::Error> {
        self.state.send_callback(CallbackKind::Install, tenant_id).await
    }

    /// Sends the uninstall callback for `tenant_id` to `{app_url}/uninstall` with Basic auth
    /// and returns the app's status.
    pub async fn send_uninstall(&self, tenant_id: &str) -> Result<reqwest::StatusCode, reqwest::Error> {
        self.state.send_callback(CallbackKind::Uninstall, tenant_id).await
    }

    /// Stops the server: stops accepting connections, lets open ones finish for a few
    /// seconds, then aborts what is left.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take() {
            match tokio::time::timeout(SHUTDOWN_GRACE, &mut task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(err))) => tracing::warn!(error = %err, "fake Commerce7 server error"),
                Ok(Err(err)) => tracing::warn!(error = %err, "fake Commerce7 task failed"),
                Err(_) => {
                    tracing::warn!("fake Commerce7 did not stop in time; aborting");
                    task.abort();
                }
            }
        }
    }
}

impl Drop for FakeCommerce7 {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
    }
}

/// `http://IP:PORT` for a bound address, using 127.0.0.1 for an unspecified address.
fn origin_of(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() { IpAddr::V4(Ipv4Addr::LOCALHOST) } else { addr.ip() };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

/// The admin simulator URL: `localhost` for loopback/unspecified addresses.
pub fn admin_url_of(addr: SocketAddr) -> String {
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        format!("http://localhost:{}/", addr.port())
    } else {
        format!("http://{addr}/")
    }
}

/// The fake's routes over its shared state.
fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/account/user", get(account_user))
        .route("/", get(admin_index))
        .route("/admin/open", get(admin_open))
        .route("/admin/install", post(admin_install))
        .route("/admin/uninstall", post(admin_uninstall))
        .route("/control/set", get(control_set))
        .route("/control/check", get(control_check))
        .route("/healthz", get(healthz))
        .route("/admin/calls", get(admin_calls))
        .route("/v2/commerce7.js", get(frame_script))
        .fallback(not_found)
        .with_state(state)
}

// ---------------------------------------------------------------------------------------------
// GET /v1/account/user
// ---------------------------------------------------------------------------------------------

/// Commerce7's error body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct C7Error {
    status_code: u16,
    #[serde(rename = "type")]
    kind: &'static str,
    message: String,
    errors: Vec<serde_json::Value>,
}

/// The 200 answer of `GET /v1/account/user`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AccountUser<'a> {
    id: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
}

fn c7_error(status: StatusCode, kind: &'static str, message: String) -> Response {
    let body = C7Error { status_code: status.as_u16(), kind, message, errors: Vec::new() };
    (status, Json(body)).into_response()
}

fn error_type(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "notFound",
        422 => "validationError",
        429 => "tooManyRequests",
        500 => "internalServerError",
        502 => "badGateway",
        503 => "serviceUnavailable",
        504 => "gatewayTimeout",
        _ => "error",
    }
}

/// "Service Unavailable" → "Service unavailable".
fn error_message(status: StatusCode) -> String {
    let reason = status.canonical_reason().unwrap_or("Error");
    let mut chars = reason.chars();
    match chars.next() {
        Some(first) => first.to_string() + &chars.as_str().to_lowercase(),
        None => String::from("Error"),
    }
}

async fn account_user(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.user_calls.fetch_add(1, Ordering::SeqCst);
    let latency = state.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let tenant = headers.get("tenant").and_then(|v| v.to_str().ok());

    if let Some(code) = state.failure() {
        let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        tracing::info!(tenant = ?tenant, status = status.as_u16(), "account/user: simulated failure");
        let mut response = c7_error(status, error_type(status), error_message(status));
        let retry_after = state.retry_after.lock().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(&v).ok()) {
            response.headers_mut().insert(RETRY_AFTER, value);
        }
        return response;
    }

    let token = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    let user = match (token, tenant) {
        (Some(token), Some(tenant)) if !token.is_empty() => state.account_user(token, tenant),
        _ => None,
    };
    match user {
        Some(user) => {
            tracing::info!(tenant = ?tenant, user_id = ?user.id, status = 200, "account/user");
            let role = state.role_of(user);
            let body = AccountUser {
                id: &user.id,
                first_name: &user.first_name,
                last_name: &user.last_name,
                email: &user.email,
                role: role.as_deref(),
            };
            (StatusCode::OK, Json(body)).into_response()
        }
        None => {
            tracing::info!(
                tenant = ?tenant,
                has_token = token.is_some(),
                status = 401,
                "account/user: unauthorized"
            );
            c7_error(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized user".to_owned())
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Admin simulator
// ---------------------------------------------------------------------------------------------

const STYLE: &str = r#"
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: #f4f5f7; color: #1d2330; }
body.theme-dark { background: #16181d; color: #e6e8ec; color-scheme: dark; }
header.bar { background: #1d2330; color: #fff; padding: 0.75rem 1.5rem; display: flex; align-items: center; gap: 1.5rem; flex-wrap: wrap; }
header.bar h1 { font-size: 1.15rem; margin: 0; }
header.bar a { color: #cfe0ff; }
header.bar p { margin: 0; font-size: 0.9rem; opacity: 0.85; }
main { padding: 1.25rem 1.5rem; max-width: 72rem; }
main.wide { max-width: none; }
section.tenant { background: #fff; border: 1px solid #d5d9e0; border-radius: 6px; padding: 1rem 1.25rem; margin-bottom: 1rem; }
body.theme-dark section.tenant { background: #20232a; border-color: #3a3f4b; }
h2 { font-size: 1.1rem; margin: 0 0 0.5rem; }
h3 { font-size: 0.95rem; margin: 0.75rem 0 0.25rem; }
.slug { font-weight: normal; color: #5b6475; font-size: 0.9rem; }
.actions { display: flex; gap: 0.5rem; flex-wrap: wrap; }
.actions form { margin: 0; }
button { font: inherit; padding: 0.4rem 0.9rem; border-radius: 4px; border: 1px solid #2f5bd3; background: #2f5bd3; color: #fff; cursor: pointer; }
button.secondary { background: #fff; color: #2f5bd3; }
button:focus-visible, a:focus-visible { outline: 3px solid #f5a623; outline-offset: 2px; }
ul { padding-left: 1.25rem; margin: 0.25rem 0; }
a { color: #2f5bd3; }
body.theme-dark a { color: #8fb0ff; }
.result { background: #fff; border: 1px solid #d5d9e0; border-radius: 6px; padding: 1rem 1.25rem; }
.result.error { border-color: #c0392b; }
#app-frame { display: block; width: 100%; height: 480px; border: 1px solid #8a93a3; background: #fff; }
#control-frame { width: 1px; height: 1px; border: 0; opacity: 0.01; }
code { font-size: 0.9em; }
"#;

/// Minimal HTML escaping for text and attribute values.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query-string component (everything but RFC 3986 unreserved characters).
fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(char::from(b)),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `demo-winery` → `Demo Winery`.
fn pretty_tenant_name(tenant_id: &str) -> String {
    let words: Vec<String> = tenant_id
        .split(['-', '_', ' '])
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect();
    if words.is_empty() { tenant_id.to_owned() } else { words.join(" ") }
}

/// A full HTML page with the admin chrome.
fn page(title: &str, body_class: &str, main_class: &str, content: &str) -> String {
    format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body class="{body_class}">
<header class="bar">
<h1>Commerce7 admin (simulator)</h1>
<nav aria-label="Simulator"><a href="/">All tenants</a></nav>
</header>
<main class="{main_class}">
{content}
</main>
</body>
</html>
"#,
        title = esc(title),
        body_class = esc(body_class),
        main_class = esc(main_class),
    )
}

fn html_response(status: StatusCode, html: String) -> Response {
    (status, [(CACHE_CONTROL, HeaderValue::from_static("no-store"))], Html(html)).into_response()
}

fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    let content = format!(
        r#"<h2>{title}</h2>
<div class="result error" role="alert"><p>{message}</p></div>
<p><a href="/">Back to the tenants</a></p>"#,
        title = esc(title),
        message = esc(message),
    );
    html_response(status, page(title, "", "", &content))
}

fn open_link(tenant_id: &str, key: &str, value: &str, theme: &str) -> String {
    format!("/admin/open?tenantId={}&{}={}&theme={}", url_encode(tenant_id), key, url_encode(value), url_encode(theme))
}

async fn admin_index(State(state): State<AppState>) -> Response {
    let mut content = format!(
        r#"<p>This page stands in for the Commerce7 admin. It frames Libero from <code>{app}</code> the way
Commerce7 does and sends the install and uninstall callbacks. Commerce7 API: <code>{api}</code>.</p>
<p id="token-mode" data-mode="{mode}">{mode_text}</p>
"#,
        app = esc(&state.app_url()),
        api = esc(&format!("{}/v1", state.origin)),
        mode = state.token_mode().as_str(),
        mode_text = match state.token_mode() {
            TokenMode::Fresh => "Each open hands the app a new account token, as Commerce7 does.",
            TokenMode::Fixed => "Each open hands the app the user's fixed account token (FAKE_C7_TOKENS=fixed).",
        },
    );
    let tenants = state.tenants();
    if tenants.is_empty() {
        content.push_str("<p>No tenants are configured.</p>\n");
    }
    for (index, tenant) in tenants.iter().enumerate() {
        let t = esc(tenant);
        let heading_id = format!("tenant-{index}");
        content.push_str(&format!(
            r#"<section class="tenant" aria-labelledby="{heading_id}">
<h2 id="{heading_id}">{name} <span class="slug">({t})</span></h2>
<div class="actions">
<form method="post" action="/admin/install"><input type="hidden" name="tenantId" value="{t}"><button type="submit">Install Libero</button></form>
<form method="post" action="/admin/uninstall"><input type="hidden" name="tenantId" value="{t}"><button type="submit" class="secondary">Uninstall Libero</button></form>
</div>
<h3>Open Libero as</h3>
<ul>
"#,
            name = esc(&pretty_tenant_name(tenant)),
        ));
        for user in state.users_of(tenant) {
            let name = esc(&user.full_name());
            let role =
                user.role.as_deref().map(|r| format!(" <span class=\"slug\">({})</span>", esc(r))).unwrap_or_default();
            content.push_str(&format!(
                r#"<li>{name}{role}: <a href="{light}">Open as {name} (light theme)</a> · <a href="{dark}">Open as {name} (dark theme)</a></li>
"#,
                light = esc(&open_link(tenant, "user", &user.id, "light")),
                dark = esc(&open_link(tenant, "user", &user.id, "dark")),
            ));
        }
        if index == 0 {
            content.push_str(&format!(
                r#"<li><a href="{href}">Open with an invalid account token</a></li>
"#,
                href = esc(&open_link(tenant, "token", INVALID_TOKEN, "light")),
            ));
        }
        content.push_str("</ul>\n</section>\n");
    }
    html_response(StatusCode::OK, page("Commerce7 admin (simulator)", "", "", &content))
}

/// Query of `GET /admin/open`.
#[derive(Debug, Deserialize)]
struct OpenQuery {
    #[serde(rename = "tenantId", default)]
    tenant_id: Option<String>,
    /// The extension to open: `app` (the Store menu page, default), `settings` (the Settings
    /// page) or `reports/sessions` (the Report "Who is signed in"). Commerce7 opens each
    /// extension at its own URL.
    #[serde(default)]
    page: Option<String>,
    /// A context id the extension's Location gives it (an Order-Detail tab's order).
    #[serde(rename = "orderId", default)]
    order_id: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    theme: Option<String>,
}

async fn admin_open(State(state): State<AppState>, Query(query): Query<OpenQuery>) -> Response {
    let Some(tenant_id) = query.tenant_id.filter(|t| !t.is_empty()) else {
        return message_page(StatusCode::BAD_REQUEST, "Missing tenant", "The tenantId query parameter is required.");
    };
    let theme = match query.theme.as_deref() {
        Some("dark") => "dark",
        _ => "light",
    };
    let (token, who) = if let Some(user_id) = query.user.filter(|u| !u.is_empty()) {
        match state.users_of(&tenant_id).find(|u| u.id == user_id) {
            Some(user) => (state.open_token(user), format!("{} ({})", user.full_name(), user.email)),
            None => {
                return message_page(
                    StatusCode::NOT_FOUND,
                    "Unknown user",
                    &format!("No user {user_id} in tenant {tenant_id}."),
                );
            }
        }
    } else if let Some(token) = query.token {
        (token, "a user with a given account token".to_owned())
    } else {
        return message_page(
            StatusCode::BAD_REQUEST,
            "Missing user",
            "Give either the user or the token query parameter.",
        );
    };

    let extension = match query.page.as_deref() {
        None | Some("app") => "app",
        Some("settings") => "settings",
        Some("reports/sessions") => "reports/sessions",
        Some(other) => {
            return message_page(StatusCode::NOT_FOUND, "Unknown extension", &format!("No extension page {other}."));
        }
    };
    let context = query.order_id.map(|id| format!("&orderId={}", url_encode(&id))).unwrap_or_default();
    let app_src = format!(
        "{}/{extension}?tenantId={}{context}&account={}&adminUITheme={}",
        state.app_url(),
        url_encode(&tenant_id),
        url_encode(&token),
        theme
    );
    let control_src = format!("{}/control/set", state.origin);
    let content = format!(
        r#"<h2>{name} <span class="slug">({t})</span>: Libero</h2>
<p>Signed in to the admin as {who}; admin theme: {theme}.</p>
<iframe id="app-frame" title="Libero" src="{app_src}"></iframe>
<iframe id="control-frame" title="Third-party cookie probe" src="{control_src}" width="1" height="1"></iframe>
<script>{FRAME_SIZING}</script>
"#,
        name = esc(&pretty_tenant_name(&tenant_id)),
        t = esc(&tenant_id),
        who = esc(&who),
        app_src = esc(&app_src),
        control_src = esc(&control_src),
    );
    let title = format!("Libero · {} · Commerce7 admin (simulator)", tenant_id);
    html_response(StatusCode::OK, page(&title, &format!("theme-{theme}"), "wide", &content))
}

/// The admin page's side of frame sizing: the frame takes the height its page reports through
/// the frame script ([`FRAME_SCRIPT`]), as Commerce7's admin does with its own.
const FRAME_SIZING: &str = r#"window.addEventListener("message", function (event) {
  var frame = document.getElementById("app-frame");
  var data = event.data;
  if (!frame || event.source !== frame.contentWindow || !data || data.type !== "commerce7:frame-height") return;
  var height = Number(data.height);
  // The frame's own border is outside the page's height.
  if (height > 0 && height < 100000) frame.style.height = Math.ceil(height + frame.offsetHeight - frame.clientHeight) + "px";
});"#;

/// The simulator's stand-in for Commerce7's frame script (`/v2/commerce7.js`): inside a frame it
/// reports the page's content height to the admin page — on load and whenever it changes — so
/// that the admin sizes the frame to the page. A layout whose height follows the frame's (a
/// `100vh` body, a fixed footer) never reports less than the frame's height, and shows it.
const FRAME_SCRIPT: &str = r#"(function () {
  if (window.parent === window) return;
  var last = 0;
  function report() {
    var body = document.body;
    if (!body) return;
    var style = getComputedStyle(body);
    var height = body.getBoundingClientRect().height + parseFloat(style.marginTop) + parseFloat(style.marginBottom);
    height = Math.ceil(height);
    if (height !== last) {
      last = height;
      window.parent.postMessage({ type: "commerce7:frame-height", height: height }, "*");
    }
  }
  function start() {
    report();
    if (window.ResizeObserver) new ResizeObserver(report).observe(document.body);
    window.addEventListener("load", report);
  }
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
"#;

/// `GET /v2/commerce7.js`: [`FRAME_SCRIPT`].
async fn frame_script() -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
            (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        FRAME_SCRIPT,
    )
        .into_response()
}

/// Form of `POST /admin/install` and `POST /admin/uninstall`.
#[derive(Debug, Deserialize)]
struct TenantForm {
    #[serde(rename = "tenantId", default)]
    tenant_id: String,
}

async fn admin_install(State(state): State<AppState>, Form(form): Form<TenantForm>) -> Response {
    admin_callback(&state, CallbackKind::Install, form.tenant_id.trim()).await
}

async fn admin_uninstall(State(state): State<AppState>, Form(form): Form<TenantForm>) -> Response {
    admin_callback(&state, CallbackKind::Uninstall, form.tenant_id.trim()).await
}

async fn admin_callback(state: &Shared, kind: CallbackKind, tenant_id: &str) -> Response {
    if tenant_id.is_empty() {
        return message_page(StatusCode::BAD_REQUEST, "Missing tenant", "The tenantId form field is required.");
    }
    let (status, class, message) = match state.send_callback(kind, tenant_id).await {
        Ok(answer) => (
            StatusCode::OK,
            if answer.is_success() { "result" } else { "result error" },
            format!("{} callback for {tenant_id}: Libero answered {answer}", kind.label()),
        ),
        Err(err) => (
            StatusCode::BAD_GATEWAY,
            "result error",
            format!("{} callback for {tenant_id} failed: {}", kind.label(), error_chain(&err)),
        ),
    };
    let title = format!("{} callback", kind.label());
    let content = format!(
        r#"<h2>{title}</h2>
<div class="{class}" role="status"><p>{message}</p></div>
<p><a href="/">Back to the tenants</a></p>"#,
        title = esc(&title),
        message = esc(&message),
    );
    html_response(status, page(&title, "", "", &content))
}

/// An error and its sources, joined with ": ".
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        source = inner.source();
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Third-party-cookie probe, health, 404
// ---------------------------------------------------------------------------------------------

async fn control_set() -> Response {
    (
        [
            (
                SET_COOKIE,
                HeaderValue::from_static("c7_control=1; Path=/; SameSite=None; Secure; Max-Age=600"),
            ),
            (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        Html(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Control cookie</title></head><body><p>control cookie set</p></body></html>",
        ),
    )
        .into_response()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ControlCheck {
    control_cookie: bool,
}

fn has_control_cookie(headers: &HeaderMap) -> bool {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.split_once('='))
        .any(|(name, _)| name.trim() == CONTROL_COOKIE)
}

async fn control_check(headers: HeaderMap) -> Response {
    (
        [(CACHE_CONTROL, HeaderValue::from_static("no-store"))],
        Json(ControlCheck { control_cookie: has_control_cookie(&headers) }),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

/// `GET /admin/calls`: how many `GET /v1/account/user` the fake has answered, for browser tests
/// that count Commerce7 calls per open (`{"accountUser": n}`).
async fn admin_calls(State(state): State<AppState>) -> Response {
    let calls = state.user_calls.load(Ordering::SeqCst);
    ([(CACHE_CONTROL, HeaderValue::from_static("no-store"))], Json(serde_json::json!({ "accountUser": calls })))
        .into_response()
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "not found").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap as TestHeaders;
    use serde_json::{Value, json};
    use tokio::sync::mpsc;

    async fn start_demo(app_url: &str) -> FakeCommerce7 {
        let addr: SocketAddr = "127.0.0.1:0".parse().expect("valid address");
        FakeCommerce7::start(addr, FakeConfig::demo(app_url, "cb-user", "cb-pass"))
            .await
            .expect("fake Commerce7 starts")
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().expect("client builds")
    }

    async fn get_user(fake: &FakeCommerce7, token: &str, tenant: &str) -> (u16, Value) {
        let response = client()
            .get(format!("{}/account/user", fake.api_url()))
            .header("Authorization", token)
            .header("tenant", tenant)
            .send()
            .await
            .expect("request succeeds");
        let status = response.status().as_u16();
        let body = response.json::<Value>().await.expect("JSON body");
        (status, body)
    }

    #[tokio::test]
    async fn known_token_and_tenant_returns_the_user() {
        let fake = start_demo("http://127.0.0.1:9").await;
        assert!(fake.api_url().starts_with("http://127.0.0.1:"));
        assert!(fake.api_url().ends_with("/v1"));

        let (status, body) = get_user(&fake, "demo-owner-token", "demo-winery").await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({
                "id": "c7-user-dana",
                "firstName": "Dana",
                "lastName": "Owner",
                "email": "dana@demo-winery.example",
                "role": "Admin Owner"
            })
        );

        let (status, body) = get_user(&fake, "demo-staff-token", "demo-winery").await;
        assert_eq!(status, 200);
        assert_eq!(body["id"], "c7-user-sam");
        assert!(body.get("role").is_none(), "role omitted when None");
        fake.shutdown().await;
    }

    #[tokio::test]
    async fn wrong_tenant_or_token_is_unauthorized() {
        let fake = start_demo("http://127.0.0.1:9").await;
        let expected = json!({
            "statusCode": 401,
            "type": "unauthorized",
            "message": "Unauthorized user",
            "errors": []
        });
        let (status, body) = get_user(&fake, "demo-owner-token", "second-cellar").await;
        assert_eq!(status, 401);
        assert_eq!(body, expected);

        let (status, body) = get_user(&fake, "invalid-token", "demo-winery").await;
        assert_eq!(status, 401);
        assert_eq!(body, expected);

        // "Bearer " is not how Commerce7 takes the token.
        let (status, _) = get_user(&fake, "Bearer demo-owner-token", "demo-winery").await;
        assert_eq!(status, 401);

        // No headers at all.
        let response = client().get(format!("{}/account/user", fake.api_url())).send().await.expect("request succeeds");
        assert_eq!(response.status().as_u16(), 401);
        fake.shutdown().await;
    }

    #[tokio::test]
    async fn failure_mode_answers_the_given_status() {
        let fake = start_demo("http://127.0.0.1:9").await;
        fake.set_failure(Some(503));
        let (status, body) = get_user(&fake, "demo-owner-token", "demo-winery").await;
        assert_eq!(status, 503);
        assert_eq!(
            body,
            json!({
                "statusCode": 503,
                "type": "serviceUnavailable",
                "message": "Service unavailable",
                "errors": []
            })
        );
        fake.set_failure(None);
        let (status, _) = get_user(&fake, "demo-owner-token", "demo-winery").await;
        assert_eq!(status, 200);
        fake.shutdown().await;
    }

    #[tokio::test]
    async fn failure_mode_answers_429_with_retry_after_and_404_422_in_commerce7s_body() {
        let fake = start_demo("http://127.0.0.1:9").await;
        let answer = |token: &'static str| {
            client()
                .get(format!("{}/account/user", fake.api_url()))
                .header("Authorization", token)
                .header("tenant", "demo-winery")
                .send()
        };
        fake.set_failure(Some(429));
        let response = answer("demo-owner-token").await.expect("request succeeds");
        assert_eq!(response.status().as_u16(), 429);
        assert!(response.headers().get(RETRY_AFTER).is_none(), "no Retry-After unless set");
        fake.set_retry_after(Some("17"));
        let response = answer("demo-owner-token").await.expect("request succeeds");
        assert_eq!(response.status().as_u16(), 429);
        assert_eq!(response.headers()[RETRY_AFTER], "17");
        assert_eq!(
            response.json::<Value>().await.expect("JSON body"),
            json!({"statusCode": 429, "type": "tooManyRequests", "message": "Too many requests", "errors": []})
        );
        fake.set_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT"));
        let response = answer("demo-owner-token").await.expect("request succeeds");
        assert_eq!(response.headers()[RETRY_AFTER], "Wed, 21 Oct 2015 07:28:00 GMT", "sent as given");
        fake.set_retry_after(None);

        for (code, kind, message) in [(404, "notFound", "Not found"), (422, "validationError", "Unprocessable entity")]
        {
            fake.set_failure(Some(code));
            let (status, body) = get_user(&fake, "demo-owner-token", "demo-winery").await;
            assert_eq!(status, code);
            assert_eq!(body, json!({"statusCode": code, "type": kind, "message": message, "errors": []}));
        }
        fake.set_failure(None);
        let response = answer("demo-owner-token").await.expect("request succeeds");
        assert_eq!(response.status().as_u16(), 200, "normal answers again");
        assert!(response.headers().get(RETRY_AFTER).is_none());
        fake.shutdown().await;
    }

    #[tokio::test]
    async fn user_calls_are_counted_and_latency_applies() {
        let fake = start_demo("http://127.0.0.1:9").await;
        assert_eq!(fake.user_calls(), 0);
        get_user(&fake, "demo-owner-token", "demo-winery").await;
        get_user(&fake, "nope", "demo-winery").await;
        fake.set_failure(Some(503));
        get_user(&fake, "demo-owner-token", "demo-winery").await;
        assert_eq!(fake.user_calls(), 3);

        fake.set_failure(None);
        fake.set_latency(Duration::from_millis(150));
        let started = std::time::Instant::now();
        let (status, _) = get_user(&fake, "demo-owner-token", "demo-winery").await;
        assert_eq!(status, 200);
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert_eq!(fake.user_calls(), 4);

        // Other routes are not counted.
        let health = client().get(format!("{}/healthz", fake.origin())).send().await.expect("request succeeds");
        assert_eq!(health.status().as_u16(), 200);
        assert_eq!(health.text().await.expect("body"), "ok");
        assert_eq!(fake.user_calls(), 4);
        fake.shutdown().await;
    }

    #[tokio::test]
    async fn admin_pages_render_escaped_links_and_frames() {
        let fake = start_demo("http://127.0.0.1:3000/").await;
        let index = client()
            .get(format!("{}/", fake.origin()))
            .send()
            .await
            .expect("request succeeds")
            .text()
            .await
            .expect("body");
        assert!(index.contains("Commerce7 admin (simulator)"));
        assert!(index.contains("Install Libero"));
        assert!(index.contains("Uninstall Libero"));
        assert!(index.contains("second-cellar"));
        assert!(index.contains("/admin/open?tenantId=demo-winery&amp;user=c7-user-dana&amp;theme=dark"));
        assert!(index.contains("Open with an invalid account token"));
        assert!(!index.contains("demo-owner-token"), "tokens stay out of the index");
        assert!(index.contains(r#"<p id="token-mode" data-mode="fresh">"#));

        fake.set_token_mode(TokenMode::Fixed);
        let open = client()
            .get(format!("{}/admin/open?tenantId=demo-winery&user=c7-user-dana&theme=dark", fake.origin()))
            .send()
            .await
            .expect("request succeeds")
            .text()
            .await
            .expect("body");
        assert!(open.contains(
            r#"id="app-frame" title="Libero" src="http://127.0.0.1:3000/app?tenantId=demo-winery&amp;account=demo-owner-token&amp;adminUITheme=dark""#
        ));
        assert!(open.contains(&format!(
            r#"id="control-frame" title="Third-party cookie probe" src="http://127.0.0.1:{}/control/set""#,
            fake.addr().port()
        )));

        let unknown = client()
            .get(format!("{}/admin/open?tenantId=demo-winery&user=%3Cscript%3E", fake.origin()))
            .send()
            .await
            .expect("request succeeds");
        assert_eq!(unknown.status().as_u16(), 404);
        let text = unknown.text().await.expect("body");
        assert!(text.contains("&lt;script&gt;"));
        assert!(!text.contains("<script>"));
        fake.shutdown().await;
    }

    #[tokio::test]
    async fn control_cookie_probe() {
        let fake = start_demo("http://127.0.0.1:9").await;
        let set = client().get(format!("{}/control/set", fake.origin())).send().await.expect("request succeeds");
        assert_eq!(
            set.headers().get(SET_COOKIE).and_then(|v| v.to_str().ok()),
            Some("c7_control=1; Path=/; SameSite=None; Secure; Max-Age=600")
        );
        assert!(set.headers().get("x-frame-options").is_none());

        let check = |cookie: Option<&'static str>| {
            let mut request = client().get(format!("{}/control/check", fake.origin()));
            if let Some(cookie) = cookie {
                request = request.header("Cookie", cookie);
            }
            async move { request.send().await.expect("request succeeds").json::<Value>().await.expect("JSON body") }
        };
        assert_eq!(check(None).await, json!({"controlCookie": false}));
        assert_eq!(check(Some("other=2; c7_control=1")).await, json!({"controlCookie": true}));
        fake.shutdown().await;
    }

    /// A stand-in for the app that records the callbacks it receives.
    async fn start_recorder() -> (String, mpsc::UnboundedReceiver<(String, Option<String>, Value)>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let record = |path: &'static str| {
            let tx = tx.clone();
            move |headers: TestHeaders, Json(body): Json<Value>| {
                let tx = tx.clone();
                async move {
                    let auth = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
                    let _ = tx.send((path.to_owned(), auth, body));
                    StatusCode::OK
                }
            }
        };
        let app =
            Router::new().route("/install", post(record("install"))).route("/uninstall", post(record("uninstall")));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("recorder binds");
        let addr = listener.local_addr().expect("recorder address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), rx)
    }

    #[tokio::test]
    async fn callbacks_carry_basic_auth_and_the_documented_bodies() {
        use base64::Engine as _;

        let (app_url, mut rx) = start_recorder().await;
        let fake = start_demo(&app_url).await;
        let expected_auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("cb-user:cb-pass"));

        let status = fake.send_install("demo-winery").await.expect("install sent");
        assert_eq!(status.as_u16(), 200);
        let (path, auth, body) = rx.recv().await.expect("install recorded");
        assert_eq!(path, "install");
        assert_eq!(auth.as_deref(), Some(expected_auth.as_str()));
        assert_eq!(
            body,
            json!({
                "tenantId": "demo-winery",
                "user": {
                    "id": "c7-user-dana",
                    "email": "dana@demo-winery.example",
                    "firstName": "Dana",
                    "lastName": "Owner"
                },
                "organization-name": "Demo Winery",
                "organization-address": "1 Vineyard Lane, Napa, CA 94558, US",
                "organization-website": "https://demo-winery.example",
                "organization-phone": "+1 707 555 0100"
            })
        );

        let status = fake.send_uninstall("second-cellar").await.expect("uninstall sent");
        assert_eq!(status.as_u16(), 200);
        let (path, auth, body) = rx.recv().await.expect("uninstall recorded");
        assert_eq!(path, "uninstall");
        assert_eq!(auth.as_deref(), Some(expected_auth.as_str()));
        assert_eq!(
            body,
            json!({
                "tenantId": "second-cellar",
                "user": {
                    "id": "c7-user-lee",
                    "email": "lee@second-cellar.example",
                    "firstName": "Lee",
                    "lastName": "Vintner"
                }
            })
        );

        // The admin form sends the same callback and reports the answer.
        let page = client()
            .post(format!("{}/admin/install", fake.origin()))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("tenantId=demo-winery")
            .send()
            .await
            .expect("request succeeds")
            .text()
            .await
            .expect("body");
        assert!(page.contains("Install callback for demo-winery: Libero answered 200 OK"));
        let (path, _, _) = rx.recv().await.expect("install recorded");
        assert_eq!(path, "install");
        fake.shutdown().await;
    }

    #[tokio::test]
    async fn client_settings_answers_go_at_the_top_level_of_the_install_body() {
        let (app_url, mut rx) = start_recorder().await;
        let mut config = FakeConfig::demo(&app_url, "cb-user", "cb-pass");
        config.client_settings.insert("weeklyDigest".to_owned(), json!("yes"));
        let fake = FakeCommerce7::start("127.0.0.1:0".parse().expect("addr"), config).await.expect("starts");
        fake.send_install("second-cellar").await.expect("install sent");
        let (_, _, body) = rx.recv().await.expect("install recorded");
        assert_eq!(body["weeklyDigest"], "yes");
        assert_eq!(body["organization-name"], "Second Cellar");
        assert_eq!(body["organization-website"], "https://second-cellar.example");
        assert!(body.get("organization-contact").is_none() && body.get("weeklyReport").is_none());
        fake.shutdown().await;
    }

    /// The account token in the app frame's `src` of an `/admin/open` page.
    async fn opened_token(fake: &FakeCommerce7, query: &str) -> String {
        let page = client()
            .get(format!("{}/admin/open?{query}", fake.origin()))
            .send()
            .await
            .expect("request succeeds")
            .text()
            .await
            .expect("body");
        let start = page.find("&amp;account=").expect("an account token in the frame's src") + "&amp;account=".len();
        page[start..].split("&amp;").next().expect("a token").to_owned()
    }

    #[tokio::test]
    async fn every_open_mints_a_new_token_that_only_the_fake_verifies() {
        let fake = start_demo("http://127.0.0.1:9").await;
        assert_eq!(fake.token_mode(), TokenMode::Fresh, "the default");
        let first = opened_token(&fake, "tenantId=demo-winery&user=c7-user-dana").await;
        let second = opened_token(&fake, "tenantId=demo-winery&user=c7-user-dana").await;
        assert_ne!(first, second, "two opens, two tokens");
        for token in [&first, &second] {
            assert_eq!(token.split('.').count(), 3, "JWT-shaped: {token}");
            assert_ne!(token.as_str(), "demo-owner-token");
            let (status, body) = get_user(&fake, token, "demo-winery").await;
            assert_eq!(status, 200);
            assert_eq!(body["id"], "c7-user-dana");
            assert_eq!(body["role"], "Admin Owner");
        }
        // The payload names the user and carries iat in milliseconds.
        use base64::Engine as _;
        let payload = first.split('.').nth(1).expect("a payload");
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url"),
        )
        .expect("JSON");
        assert_eq!(claims["sub"], "c7-user-dana");
        assert_eq!(claims["email"], "dana@demo-winery.example");
        assert!(claims["iat"].as_u64().expect("a number") > 1_600_000_000_000, "milliseconds");

        // Minted tokens of the library's own API verify the same way; Sam's is Sam's.
        let sam = fake.mint_token("demo-winery", "c7-user-sam").expect("Sam is a user");
        assert_eq!(get_user(&fake, &sam, "demo-winery").await.1["id"], "c7-user-sam");
        assert_eq!(fake.mint_token("demo-winery", "nobody"), None);
        assert_ne!(fake.open_token("demo-winery", "c7-user-dana"), Some("demo-owner-token".to_owned()));
        fake.shutdown().await;
    }

    #[tokio::test]
    async fn a_changed_role_is_answered_from_then_on_for_every_token() {
        let fake = start_demo("http://127.0.0.1:9").await;
        let fresh = fake.mint_token("demo-winery", "c7-user-dana").expect("Dana");
        assert_eq!(get_user(&fake, &fresh, "demo-winery").await.1["role"], "Admin Owner", "control");
        assert!(fake.set_role("demo-winery", "c7-user-dana", Some("Sales Associate")));
        for token in [fresh.as_str(), "demo-owner-token"] {
            assert_eq!(get_user(&fake, token, "demo-winery").await.1["role"], "Sales Associate");
        }
        assert!(fake.set_role("demo-winery", "c7-user-dana", None));
        assert!(get_user(&fake, &fresh, "demo-winery").await.1.get("role").is_none(), "no role: omitted");
        assert!(fake.set_role("demo-winery", "c7-user-sam", Some("Admin")));
        assert_eq!(get_user(&fake, "demo-staff-token", "demo-winery").await.1["role"], "Admin");
        assert!(!fake.set_role("demo-winery", "nobody", Some("Admin")), "unknown user");
        assert!(!fake.set_role("second-cellar", "c7-user-sam", Some("Admin")), "Sam is not a user of that winery");
        fake.shutdown().await;
    }

    #[tokio::test]
    async fn the_report_extension_opens_at_its_own_url() {
        let fake = start_demo("http://127.0.0.1:9").await;
        let page = client()
            .get(format!("{}/admin/open?tenantId=demo-winery&user=c7-user-dana&page=reports/sessions", fake.origin()))
            .send()
            .await
            .expect("request succeeds");
        assert_eq!(page.status(), 200);
        let page = page.text().await.expect("body");
        assert!(
            page.contains(r#"src="http://127.0.0.1:9/reports/sessions?tenantId=demo-winery&amp;account="#),
            "{page}"
        );
        fake.shutdown().await;
    }

    #[tokio::test]
    async fn a_tampered_or_misplaced_fresh_token_is_refused_with_commerce7s_401() {
        let fake = start_demo("http://127.0.0.1:9").await;
        let unauthorized =
            json!({"statusCode": 401, "type": "unauthorized", "message": "Unauthorized user", "errors": []});
        let token = opened_token(&fake, "tenantId=demo-winery&user=c7-user-sam").await;
        // Control.
        assert_eq!(get_user(&fake, &token, "demo-winery").await.0, 200);

        use base64::Engine as _;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let parts: Vec<&str> = token.split('.').collect();
        let payload = String::from_utf8(engine.decode(parts[1]).expect("base64url")).expect("UTF-8");
        let as_dana = engine.encode(payload.replace("c7-user-sam", "c7-user-dana"));
        let mut bad_signature = parts[2].to_owned().into_bytes();
        bad_signature[0] = if bad_signature[0] == b'A' { b'B' } else { b'A' };
        let tampered = [
            format!("{}.{as_dana}.{}", parts[0], parts[2]),
            format!("{}.{}.{}", parts[0], parts[1], String::from_utf8(bad_signature).expect("ASCII")),
            format!("{}.{}", parts[0], parts[1]),
            format!("{token}x"),
        ];
        for forged in &tampered {
            assert_eq!(get_user(&fake, forged, "demo-winery").await, (401, unauthorized.clone()), "{forged}");
        }
        // A real token, but asked for a tenant its user has no access to.
        assert_eq!(get_user(&fake, &token, "second-cellar").await, (401, unauthorized.clone()));
        // Another fake's token (another key) for the same user.
        let other = start_demo("http://127.0.0.1:9").await;
        let foreign = other.mint_token("demo-winery", "c7-user-sam").expect("Sam is a user");
        assert_eq!(get_user(&fake, &foreign, "demo-winery").await, (401, unauthorized));
        other.shutdown().await;
        fake.shutdown().await;
    }

    #[tokio::test]
    async fn fixed_mode_hands_out_the_fixed_token_and_fixed_tokens_work_in_both_modes() {
        let fake = start_demo("http://127.0.0.1:9").await;
        // Fresh mode (the default) still accepts the fixed tokens.
        assert_eq!(get_user(&fake, "demo-owner-token", "demo-winery").await.0, 200);
        fake.set_token_mode(TokenMode::Fixed);
        assert_eq!(opened_token(&fake, "tenantId=demo-winery&user=c7-user-dana").await, "demo-owner-token");
        assert_eq!(opened_token(&fake, "tenantId=demo-winery&user=c7-user-dana").await, "demo-owner-token");
        assert_eq!(fake.open_token("second-cellar", "c7-user-lee").as_deref(), Some("second-owner-token"));
        assert_eq!(get_user(&fake, "demo-owner-token", "demo-winery").await.0, 200);
        // A token minted before the switch still verifies.
        let minted = fake.mint_token("demo-winery", "c7-user-dana").expect("Dana is a user");
        assert_eq!(get_user(&fake, &minted, "demo-winery").await.0, 200);
        let index =
            client().get(format!("{}/", fake.origin())).send().await.expect("request").text().await.expect("body");
        assert!(index.contains(r#"data-mode="fixed""#));
        fake.shutdown().await;

        let mut config = FakeConfig::demo("http://127.0.0.1:9", "cb-user", "cb-pass");
        config.tokens = TokenMode::Fixed;
        let fake = FakeCommerce7::start("127.0.0.1:0".parse().expect("addr"), config).await.expect("starts");
        assert_eq!(opened_token(&fake, "tenantId=second-cellar&user=c7-user-lee").await, "second-owner-token");
        fake.shutdown().await;
    }

    #[test]
    fn helpers() {
        assert_eq!(pretty_tenant_name("demo-winery"), "Demo Winery");
        assert_eq!(pretty_tenant_name("second_cellar"), "Second Cellar");
        assert_eq!(url_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(esc(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(error_message(StatusCode::SERVICE_UNAVAILABLE), "Service unavailable");
        let user = &demo_users()[0];
        assert!(!format!("{user:?}").contains("demo-owner-token"));
        let parsed: Vec<FakeUser> = serde_json::from_str(
            r#"[{"token":"t","tenantId":"x","id":"u","firstName":"F","lastName":"L","email":"e@x"}]"#,
        )
        .expect("users parse");
        assert_eq!(parsed[0].role, None);
        assert_eq!(admin_url_of("127.0.0.1:4010".parse().expect("addr")), "http://localhost:4010/");
    }
}
