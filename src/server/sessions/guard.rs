//! The session guard, the Commerce7 sign-in, logout, and the cross-site (CSRF) check.
//!
//! They run as axum middleware in front of the Leptos routes, so redirects and `Set-Cookie` go
//! out before streaming SSR has sent any header. The validated session reaches components and
//! server functions through the request extensions ([`CurrentSession`]), never a second lookup.

use std::sync::Arc;

use axum::{
    Extension, Json,
    extract::{Query, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tower_sessions::Session;

use super::{
    AuthSession, Theme,
    cookie::CookieToken,
    hash_token,
    store::Handoff,
    tab::{self, is_tenant_slug},
    to_offset,
};
use crate::{
    error::AppError,
    server::{
        clients,
        commerce7::VerifyError,
        db::now,
        error_page::{ErrorKind, NoSession, error_page, no_session_page},
        http::authorization_credentials,
        metrics, ratelimit,
        state::AppState,
    },
};

/// How this request's session was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// The `__libero_session` cookie.
    Cookie,
    /// A handoff code in the page's URL (`?handoff=`), redeemed by this request.
    Handoff,
    /// The sign-in itself: Commerce7 verified this request's account token (or the fast path
    /// recognised it), and the page is the sign-in's answer.
    SignIn,
    /// A tab token in `Authorization: Bearer`.
    Bearer,
    /// A tab token in the `tab` field of a form the page posted itself (before hydration).
    Form,
}

impl Credential {
    /// The `data-via` value of the page's tab meta tag.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cookie => "cookie",
            Self::Handoff => "handoff",
            Self::SignIn => "sign-in",
            Self::Bearer => "bearer",
            Self::Form => "form",
        }
    }
}

/// The validated session of this request.
#[derive(Clone, PartialEq)]
pub struct CurrentSession {
    /// Who is signed in, for which tenant. Shared: the request's extensions, the server
    /// function's context and its `require_session` each hold this session, and a clone is one
    /// reference count instead of a dozen strings.
    pub auth: Arc<AuthSession>,
    /// `app_sessions.id` of the session (server-side only: never sent to the browser as such).
    pub row_id: String,
    /// What authenticated this request.
    pub via: Credential,
}

impl std::fmt::Debug for CurrentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentSession")
            .field("tenant_id", &self.auth.tenant_id)
            .field("user_id", &self.auth.user_id)
            .field("via", &self.via)
            .finish_non_exhaustive()
    }
}

/// What a page rendered with a session hands to its tab: a fresh tab token (the shell puts it in
/// a `<meta name="libero-tab">` of this `no-store` page only).
#[derive(Clone, PartialEq, Eq)]
pub struct TabBootstrap {
    /// The tab token.
    pub token: String,
    /// Its tenant.
    pub tenant_id: String,
    /// The admin theme of the session.
    pub theme: Theme,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// What authenticated the page: only a page opened by the sign-in or a handoff code may move
    /// a tab to another winery (the script checks it).
    pub via: Credential,
    /// On the page a sign-in answers with: the same page with a handoff code instead of the
    /// sign-in's parameters, where a browser that runs no script is sent at once (`<noscript>`
    /// refresh), so that the account token leaves its address bar without the script too.
    pub without_script: Option<String>,
}

impl std::fmt::Debug for TabBootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TabBootstrap").field("tenant_id", &self.tenant_id).finish_non_exhaustive()
    }
}

/// `/app/` is `/app` to the guard (the page then redirects to the path without the slash).
fn normalized(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    }
}

/// Pages that need a session.
pub const PROTECTED_PAGES: [&str; 3] = ["/app", "/settings", REPORT_PAGE];
/// The Report extension "Who is signed in to Libero at this winery" (`pages::reports`).
pub const REPORT_PAGE: &str = "/reports/sessions";
/// Where the server functions live.
pub const API_PREFIX: &str = "/api/";
/// The tab's automatic token renewal: it keeps the tab's credential fresh but is no activity of
/// the merchant's, so it never moves `last_activity_at` (an unattended tab still goes idle).
pub const RENEWAL_PATH: &str = "/api/renew_tab_token";
/// The hydrated *Sign out*: its tab token names the session to end even past its expiry.
pub const LOGOUT_API_PATH: &str = "/api/logout";
/// The server functions a signed-in page posts as a plain form (before hydration): only these
/// read the form's `tab` field.
const FORM_PATHS: [&str; 4] =
    ["/api/save_settings", "/api/sign_out_session", "/api/sign_out_other_sessions", "/api/sign_out_user_everywhere"];
/// The largest form body the guard reads for its `tab` field (the app's forms are a few hundred
/// bytes).
const MAX_FORM_BYTES: usize = 64 * 1024;

/// Why a session lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The tower-sessions layer failed (its store).
    #[error("session store: {0}")]
    Session(#[from] tower_sessions::session::Error),
    /// A query failed.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Refreshes `last_activity_at` when it is due (at most once per `SESSION_TOUCH_INTERVAL`).
async fn touch_if_due(state: &AppState, row_id: &str, auth: &mut AuthSession) -> Result<(), sqlx::Error> {
    let touch_every =
        chrono::TimeDelta::from_std(state.config.session_touch_interval).unwrap_or(chrono::TimeDelta::MAX);
    let now = now();
    if now - auth.last_activity_at >= touch_every {
        let due_since = now.checked_sub_signed(touch_every).unwrap_or(now);
        if let Some(touched) = state.sessions.store().touch(row_id, due_since).await? {
            auth.last_activity_at = touched;
        }
    }
    Ok(())
}

/// Loads and validates this request's cookie session, refreshing `last_activity_at` when due.
/// The row is read straight from the store (the identity from its columns): the tower-sessions
/// [`Session`] is only loaded when a handler changes it.
pub async fn current_session(state: &AppState, session: &Session) -> Result<Option<CurrentSession>, GuardError> {
    Ok(cookie_session(state, session).await?.map(|found| found.current))
}

/// [`current_session`], as a [`Found`].
async fn cookie_session(state: &AppState, session: &Session) -> Result<Option<Found>, GuardError> {
    let Some(id) = session.id() else {
        return Ok(None);
    };
    Ok(session_of_row(state, hash_token(&id.to_string()), Credential::Cookie, true).await?)
}

/// A valid session.
struct Found {
    current: CurrentSession,
    /// Named by a tab token past its expiry (a plain form of an old page, a late sign-out).
    expired: bool,
}

/// Loads and validates the session a row id points at (from the cookie, a tab token or a
/// handoff code); `touch` refreshes `last_activity_at` when due (not for the tab's automatic
/// token renewal, which is no activity of the merchant's).
async fn session_of_row(
    state: &AppState,
    row_id: String,
    via: Credential,
    touch: bool,
) -> Result<Option<Found>, sqlx::Error> {
    session_named(state, row_id, via, None, touch).await
}

/// [`session_of_row`], the row also checked against what a tab token claims (its tenant and
/// generation) before anything is written: a refused token never keeps a session awake.
async fn session_named(
    state: &AppState,
    row_id: String,
    via: Credential,
    claims: Option<&tab::TabClaims>,
    touch: bool,
) -> Result<Option<Found>, sqlx::Error> {
    match state.sessions.store().validate_key(&row_id).await? {
        Ok(mut auth) => {
            if let Some(claims) = claims
                // The MAC binds the tenant to the row; a row never changes tenant. Checked all the same.
                && (auth.tenant_id != claims.tenant_id || auth.tab_generation != claims.generation)
            {
                metrics::validation("bearer_old_generation");
                tracing::info!(?via, "tab token of an ended generation refused");
                return Ok(None);
            }
            if touch {
                touch_if_due(state, &row_id, &mut auth).await?;
            }
            Ok(Some(Found { current: CurrentSession { auth: Arc::new(auth), row_id, via }, expired: false }))
        }
        Err(reason) => {
            tracing::debug!(reason = reason.as_str(), ?via, "session not valid");
            Ok(None)
        }
    }
}

/// The session of a tab token: the token must verify, and the row it names must be a valid
/// session of the token's tenant at the token's generation. `touch` as in [`session_of_row`].
/// `expiry`: whether a correctly signed token past its expiry still names its session
/// ([`TokenUse`]).
async fn tab_session(
    state: &AppState,
    token: &str,
    via: Credential,
    expiry: TokenUse,
    touch: bool,
) -> Result<Option<Found>, sqlx::Error> {
    let verified = match expiry {
        TokenUse::Strict => state.tab_tokens.verify(token, now()),
        TokenUse::ExpiredOk => state.tab_tokens.verify_signed(token),
    };
    let claims = match verified {
        Ok(claims) => claims,
        Err(reason) => {
            metrics::validation(reason.as_str());
            tracing::info!(reason = reason.as_str(), "tab token refused");
            return Ok(None);
        }
    };
    let found = session_named(state, claims.row_id.clone(), via, Some(&claims), touch).await?;
    Ok(found.map(|mut found| {
        found.expired = claims.expires_at <= now();
        found
    }))
}

/// How strictly a tab token's expiry is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenUse {
    /// Valid until its expiry (15 minutes; the hydrated tab renews it).
    Strict,
    /// Correctly signed is enough: a plain form (a page without WebAssembly is older than 15
    /// minutes as a rule) and signing out. The row's own validity still decides.
    ExpiredOk,
}

/// A tab token for `current`'s session, as the page hands it over.
pub fn mint_tab_token(state: &AppState, current: &CurrentSession) -> TabBootstrap {
    let lifetime = super::tab::TAB_TOKEN_LIFETIME;
    let expires_at = now() + chrono::TimeDelta::from_std(lifetime).expect("15 min fits");
    TabBootstrap {
        token: state.tab_tokens.mint(&current.auth.tenant_id, &current.row_id, current.auth.tab_generation, expires_at),
        tenant_id: current.auth.tenant_id.clone(),
        theme: current.auth.theme,
        expires_in: lifetime.as_secs(),
        via: current.via,
        without_script: None,
    }
}

/// The tab token of a request: the credentials of an `Authorization: Bearer` header (any case),
/// empty when the header names the scheme with nothing after it.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    authorization_credentials(headers, "Bearer")
}

fn see_other(location: &'static str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, HeaderValue::from_static(location)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response()
}

/// `308` to the same page without its trailing slash, query kept (a handoff code is meant to
/// travel in the URL; an account token never reaches here: the sign-in is answered before).
fn canonical_redirect(uri: &Uri) -> Response {
    let path = normalized(uri.path());
    let target = match uri.query() {
        Some(query) => format!("{path}?{query}"),
        None => path.to_owned(),
    };
    match HeaderValue::from_str(&target) {
        Ok(location) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// `<page>?<its context>&handoff=<code>`: the page a sign-in opened, reached by a handoff code.
fn with_handoff(landing: &str, code: &str) -> String {
    let separator = if landing.contains('?') { '&' } else { '?' };
    format!("{landing}{separator}handoff={code}")
}

fn api_error(error: AppError) -> Response {
    let status = error.status();
    (status, [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], Json(error)).into_response()
}

/// Middleware: guards `/app`, `/settings` (303 → `/`) and the server functions (401), and signs
/// the merchant in on `GET /app?tenantId=…&account=…`. Every answer on these paths — pages,
/// server-function results and errors, redirects — is `Cache-Control: no-store`: nothing
/// signed-in may be kept by a cache or shown again by Back after logout.
pub async fn session_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = normalized(req.uri().path());
    let is_page = PROTECTED_PAGES.contains(&path);
    let is_api = path.starts_with(API_PREFIX);
    if !is_page && !is_api {
        return next.run(req).await;
    }
    let mut response = guard(state, req, next, is_page).await;
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn guard(state: AppState, mut req: Request, next: Next, is_page: bool) -> Response {
    let Some(session) = req.extensions().get::<Session>().cloned() else {
        tracing::error!("session layer missing in front of the guard");
        return error_page(ErrorKind::DatabaseUnavailable);
    };

    if is_page
        && req.method() == Method::GET
        && let Some(query) = SignInQuery::from_uri(req.uri())
    {
        if !is_navigation(req.headers()) {
            // An <img>, a fetch() or a <script> pointed at the sign-in URL by another site: it
            // may neither sign this browser in nor end its session.
            metrics::sign_in("wrong_destination");
            tracing::info!("sign-in refused: not a document or iframe navigation");
            return error_page(ErrorKind::BadSignInLink);
        }
        let client = ClientInfo {
            ip: ratelimit::request_ip(&req, state.config.trusted_proxy_hops),
            user_agent: user_agent(req.headers()),
        };
        return match sign_in(&state, &session, query, client).await {
            Ok(opened) => open_signed_in(&state, req, next, opened).await,
            Err(response) => response,
        };
    }

    // `/app/` is `/app`: the guard treats them alike, and the router only knows the one.
    if is_page && req.uri().path() != normalized(req.uri().path()) {
        return canonical_redirect(req.uri());
    }

    let html = is_page || accepts_html(req.headers());

    // A tab token decides alone: valid, or 401 — never a fall-back to the cookie, which may
    // belong to another winery's tab.
    if let Some(token) = bearer_token(req.headers()) {
        let path = normalized(req.uri().path());
        let is_activity = path != RENEWAL_PATH;
        let expiry = if path == LOGOUT_API_PATH { TokenUse::ExpiredOk } else { TokenUse::Strict };
        let found = tab_session(&state, token, Credential::Bearer, expiry, is_activity);
        return match found.await {
            Ok(Some(found)) if is_page => render_page(&state, req, next, found).await,
            Ok(Some(found)) => {
                req.extensions_mut().insert(found.current);
                next.run(req).await
            }
            Ok(None) if is_page => {
                no_session_page(NoSession::Ended, StatusCode::UNAUTHORIZED, &state.config.frame_ancestors)
            }
            Ok(None) => api_error(AppError::Unauthorized),
            Err(err) => unavailable(&err, is_page),
        };
    }

    // A form the page posted itself (before hydration) carries the page's tab token in its `tab`
    // field: it decides alone, like the bearer, so the form acts on the tab's winery and not on
    // the cookie's (which may be another tab's). The field is taken out of the body.
    if html && !is_page && is_form_post(&req) && FORM_PATHS.contains(&normalized(req.uri().path())) {
        let Some((field, with_rest)) = take_tab_field(req).await else {
            return error_page(ErrorKind::FormNotRead);
        };
        req = with_rest;
        if let Some(token) = field {
            let found = tab_session(&state, &token, Credential::Form, TokenUse::ExpiredOk, true);
            return match found.await {
                Ok(Some(found)) => {
                    if found.expired {
                        // It may act once more for its page, never mint a fresh credential.
                        req.extensions_mut().insert(ExpiredTabToken);
                    }
                    req.extensions_mut().insert(found.current);
                    html_for_a_plain_form(next.run(req).await)
                }
                Ok(None) => no_session_page(NoSession::Ended, StatusCode::UNAUTHORIZED, &state.config.frame_ancestors),
                Err(err) => unavailable(&err, true),
            };
        }
    }

    // A page opened with a handoff code: the session it was issued for, once.
    if is_page
        && req.method() == Method::GET
        && let Some(code) = handoff_param(req.uri())
    {
        let redeemed = match state.sessions.store().redeem_handoff(&code).await {
            Ok(Some(row_id)) => session_of_row(&state, row_id, Credential::Handoff, true).await,
            Ok(None) => Ok(None),
            Err(err) => Err(err),
        };
        match redeemed {
            Ok(Some(found)) => {
                metrics::validation("handoff_ok");
                return render_page(&state, req, next, found).await;
            }
            // Used, expired, unknown or its session ended: the cookie decides.
            Ok(None) => metrics::validation("handoff_refused"),
            Err(err) => return unavailable(&err, is_page),
        }
    }

    let cookie = req.extensions().get::<CookieToken>().copied().unwrap_or(CookieToken::Absent);
    if session.id().is_none() {
        // No cookie, or one that failed its signature: the store is not even asked.
        metrics::validation(match cookie {
            CookieToken::Rejected(_) => "bad_signature",
            _ => "missing",
        });
    }
    match cookie_session(&state, &session).await {
        Ok(Some(found)) if is_page => render_page(&state, req, next, found).await,
        Ok(Some(found)) if html => {
            req.extensions_mut().insert(found.current);
            html_for_a_plain_form(next.run(req).await)
        }
        Ok(Some(found)) => {
            req.extensions_mut().insert(found.current);
            next.run(req).await
        }
        Ok(None) => {
            if cookie.was_sent() {
                // Tell the browser to drop the dead cookie (the row is already gone).
                if let Err(err) = session.flush().await {
                    tracing::warn!(error = %err, "could not forget a dead session");
                }
            }
            if html {
                let reason = if cookie.was_sent() { NoSession::Ended } else { NoSession::Missing };
                no_session_page(reason, StatusCode::UNAUTHORIZED, &state.config.frame_ancestors)
            } else {
                api_error(AppError::Unauthorized)
            }
        }
        Err(err) => unavailable(&err, html),
    }
}

/// Whether the request asks for HTML: a page, or a form the browser posts itself (before
/// hydration) — it gets a page or a redirect, never JSON. The app's own calls ask for JSON.
fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// A server function's answer to a plain form (`Accept: text/html`): the server functions
/// redirect back to their page themselves (`api::ssr::answer_plain_form`); anything else that
/// would reach the browser as JSON — arguments that do not decode, say — becomes a page.
fn html_for_a_plain_form(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|content_type| content_type.as_bytes().starts_with(b"application/json"));
    match response.status() {
        status if is_json && status.is_server_error() => error_page(ErrorKind::DatabaseUnavailable),
        status if is_json && status.is_client_error() => error_page(ErrorKind::FormNotRead),
        _ => response,
    }
}

/// Marks a request whose plain form named its session with a tab token past its expiry: it may
/// act for its page once more, but is never answered with a fresh credential (a handoff code or
/// a tab token) — a token seen long ago must not become a live one.
#[derive(Debug, Clone, Copy)]
pub struct ExpiredTabToken;

/// A `POST` of an HTML form's fields.
fn is_form_post(req: &Request) -> bool {
    req.method() == Method::POST
        && req
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|content_type| content_type.as_bytes().starts_with(b"application/x-www-form-urlencoded"))
}

/// Reads a form's body and takes its `tab` field out: the field's value (when present and not
/// empty), and the request with the other fields as its body; `None` for a body over
/// [`MAX_FORM_BYTES`].
async fn take_tab_field(req: Request) -> Option<(Option<String>, Request)> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES).await.ok()?;
    let mut field = None;
    let mut rest = form_urlencoded::Serializer::new(String::new());
    for (name, value) in form_urlencoded::parse(&bytes) {
        if name == "tab" {
            field = Some(value.into_owned()).filter(|token| !token.is_empty());
        } else {
            rest.append_pair(&name, &value);
        }
    }
    let body = if field.is_some() { axum::body::Body::from(rest.finish()) } else { axum::body::Body::from(bytes) };
    Some((field, Request::from_parts(parts, body)))
}

fn unavailable(err: &dyn std::fmt::Display, is_page: bool) -> Response {
    tracing::error!(error = %err, "session lookup failed");
    if is_page { error_page(ErrorKind::DatabaseUnavailable) } else { api_error(AppError::Unavailable) }
}

/// Renders a signed-in page for `found`'s session, handing its tab a fresh tab token. The page is `no-store` (set by the caller) and sends no
/// `Referer` (its URL may still hold a handoff code, or the sign-in's account token, until the script
/// has removed it).
///
/// A server-function error in the page's query that the server did not sign for this session
/// (a crafted link) is not shown: the answer is `303` to the same page without it.
async fn render_page(state: &AppState, mut req: Request, next: Next, found: Found) -> Response {
    let Found { current, .. } = found;
    if let Some(query) = req.uri().query() {
        let errors = super::form_error::FormErrors::new(state.config.session_secret.expose());
        if let Some(kept) = errors.unsigned_error_removed(query, &current.row_id) {
            tracing::warn!("a page's query held an error the server did not sign: removed");
            let path = normalized(req.uri().path());
            let location = if kept.is_empty() { path.to_owned() } else { format!("{path}?{kept}") };
            return match HeaderValue::from_str(&location) {
                Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
                Err(_) => StatusCode::BAD_REQUEST.into_response(),
            };
        }
    }
    let mut tab = mint_tab_token(state, &current);
    tab.without_script = req.extensions_mut().remove::<WithoutScript>().map(|url| url.0);
    req.extensions_mut().insert(tab);
    req.extensions_mut().insert(current);
    let mut response = next.run(req).await;
    response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The `handoff` query parameter, when it has the shape of a code.
fn handoff_param(uri: &Uri) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Params {
        handoff: Option<String>,
    }
    uri.query()?;
    let Query(params) = Query::<Params>::try_from_uri(uri).ok()?;
    params.handoff.filter(|code| tab::is_handoff_code(code))
}

/// Whether a request is a navigation that may sign in: `Sec-Fetch-Dest` absent (older
/// browsers, non-browser clients), `document` (the app in its own tab) or `iframe` (inside the
/// Commerce7 admin).
pub fn is_navigation(headers: &HeaderMap) -> bool {
    headers.get("sec-fetch-dest").is_none_or(|dest| {
        dest.as_bytes().eq_ignore_ascii_case(b"iframe") || dest.as_bytes().eq_ignore_ascii_case(b"document")
    })
}

/// The query string Commerce7 opens an extension's page with.
#[derive(Clone, PartialEq, Eq)]
struct SignInQuery {
    tenant_id: String,
    account: String,
    theme: Option<Theme>,
    /// Where the sign-in lands: the page it was opened at, with the context Commerce7 gave it
    /// (`orderId`, `customerId`, `productId`, …) and never the account token.
    landing: String,
}

/// The parameters of a sign-in URL that are the sign-in's own, or the app's: never carried to
/// the page.
const SIGN_IN_PARAMS: [&str; 7] = ["tenantId", "account", "adminUITheme", "handoff", "__path", "__err", "__sig"];

/// The page a sign-in at `uri` lands on: its path and its other *plain* parameters — a name of
/// letters, digits and `_` (at most 40), a value of URL-unreserved characters (at most 200), at
/// most 10 of them; anything else is dropped rather than carried into the page's address.
fn landing(uri: &Uri) -> String {
    let mut kept = form_urlencoded::Serializer::new(String::new());
    let mut count = 0;
    for (name, value) in form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes()) {
        let plain_name = (1..=40).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        let plain_value = value.len() <= 200
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if plain_name && plain_value && !SIGN_IN_PARAMS.contains(&&*name) && count < 10 {
            kept.append_pair(&name, &value);
            count += 1;
        }
    }
    let kept = kept.finish();
    let path = normalized(uri.path());
    if kept.is_empty() { path.to_owned() } else { format!("{path}?{kept}") }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct SignInParams {
    tenant_id: Option<String>,
    account: Option<String>,
    #[serde(rename = "adminUITheme")]
    admin_ui_theme: Option<String>,
}

impl SignInQuery {
    /// `Some` when the URL carries `tenantId` or `account` (a sign-in attempt, valid or not).
    fn from_uri(uri: &Uri) -> Option<Result<Self, ()>> {
        uri.query()?;
        let Ok(Query(params)) = Query::<SignInParams>::try_from_uri(uri) else {
            return Some(Err(()));
        };
        if params.tenant_id.is_none() && params.account.is_none() {
            return None;
        }
        let theme = params.admin_ui_theme.as_deref().map(|t| Theme::parse(Some(t)));
        Some(match (params.tenant_id, params.account) {
            (Some(tenant_id), Some(account))
                if is_tenant_slug(&tenant_id) && !account.is_empty() && account.len() <= 8192 =>
            {
                Ok(Self { tenant_id, account, theme, landing: landing(uri) })
            }
            _ => Err(()),
        })
    }
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|ua| ua.chars().take(512).collect())
}

/// Where a sign-in comes from, recorded on the session row.
struct ClientInfo {
    ip: Option<std::net::IpAddr>,
    user_agent: Option<String>,
}

/// A sign-in that succeeded: the session's row and the page it opens, answered by
/// [`open_signed_in`].
struct Opened {
    /// The session as the sign-in just wrote it (no need to read it back).
    current: CurrentSession,
    /// The page the sign-in was opened at, with its plain context: `<page>?<context>`.
    landing: String,
    /// A handoff code for the session (its hash is on the row), for a browser without script.
    code: String,
    /// The new cookie, when the sign-in started a new session.
    cookie: Option<HeaderValue>,
}

/// [`TabBootstrap::without_script`] of the page a sign-in answers with.
#[derive(Debug, Clone)]
struct WithoutScript(String);

/// The answer to a successful sign-in: the page it was opened at, rendered in this very response
/// for the session (no redirect: the merchant waits for one round trip less), as if opened at
/// `<page>?<context>` — the sign-in's own parameters never reach the page. The account token
/// must not stay in the address bar, the history or a `Referer`: the page sends no `Referer`,
/// its script replaces the address (`history.replaceState`) before anything else runs, and a
/// browser that runs no script is sent on at once by a `<noscript>` refresh to the page with a
/// handoff code instead.
async fn open_signed_in(state: &AppState, mut req: Request, next: Next, opened: Opened) -> Response {
    let Opened { current, landing, code, cookie } = opened;
    if req.uri().path() != normalized(req.uri().path()) {
        // Opened at `/app/`: the router serves the page only at its own address, so the browser
        // is sent there, with a handoff code (the sign-in's answer before the page rendered itself).
        let mut response = match HeaderValue::from_str(&with_handoff(&landing, &code)) {
            Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
            Err(_) => return error_page(ErrorKind::BadSignInLink),
        };
        response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        if let Some(cookie) = cookie {
            response.headers_mut().append(header::SET_COOKIE, cookie);
        }
        return response;
    }
    let Ok(uri) = landing.parse::<Uri>() else {
        // `landing` is a path and plain parameters: it always parses.
        return error_page(ErrorKind::BadSignInLink);
    };
    *req.uri_mut() = uri;
    req.extensions_mut().insert(WithoutScript(with_handoff(&landing, &code)));
    let mut response = render_page(state, req, next, Found { current, expired: false }).await;
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// `GET /app?tenantId&account`: the fast path when this browser's session was verified with this
/// very account token for this tenant; otherwise the tenant must be installed, then Commerce7
/// verifies the token and a new session (new id) replaces this browser's.
async fn sign_in(
    state: &AppState,
    session: &Session,
    query: Result<SignInQuery, ()>,
    origin: ClientInfo,
) -> Result<Opened, Response> {
    let Ok(query) = query else {
        metrics::sign_in("bad_link");
        return Err(error_page(ErrorKind::BadSignInLink));
    };

    // Fast path: same tenant AND the same account token as at sign-in. No Commerce7 call. Any
    // other token (another user on a shared computer, a junk one) goes to Commerce7.
    let existing = match current_session(state, session).await {
        Ok(Some(current))
            if current.auth.tenant_id == query.tenant_id && current.auth.was_verified_with(&query.account) =>
        {
            return fast_path(state, current, query.theme, query.landing).await;
        }
        Ok(existing) => existing,
        Err(err) => {
            metrics::sign_in("error");
            tracing::error!(error = %err, "session lookup failed during sign-in");
            return Err(error_page(ErrorKind::DatabaseUnavailable));
        }
    };

    // The tenant first: a junk or uninstalled tenant costs Commerce7 nothing.
    let client = match clients::find_by_tenant(&state.db, &query.tenant_id).await {
        Ok(Some(client)) if client.is_installed() => client,
        Ok(_) => {
            metrics::sign_in("not_installed");
            tracing::info!(tenant_id = %query.tenant_id, "sign-in for a tenant that has not installed Libero");
            return Err(error_page(ErrorKind::NotInstalled));
        }
        Err(err) => {
            metrics::sign_in("error");
            tracing::error!(error = %err, "client lookup failed during sign-in");
            return Err(error_page(ErrorKind::DatabaseUnavailable));
        }
    };

    if let Some(response) = rate_limited(state, origin.ip) {
        return Err(response);
    }

    let verified = state.commerce7.verify_user(&query.tenant_id, &query.account).await;
    if !matches!(verified, Err(VerifyError::Refused { .. } | VerifyError::Rejected { .. })) {
        not_a_refusal(state, origin.ip);
    }
    let user = match verified {
        Ok(user) => user,
        // A refusal of the token (401/403, or 404/422 for it): this browser's session of the
        // winery ends too. The other answers end nothing: a 429, another 4xx and an outage say
        // nothing about who holds the session.
        Err(VerifyError::Refused { .. }) => {
            let same_tenant = existing.as_ref().is_some_and(|current| current.auth.tenant_id == query.tenant_id);
            return Err(refused(session, &query.tenant_id, same_tenant).await);
        }
        Err(VerifyError::Busy { retry_after }) => {
            metrics::sign_in("commerce7_busy");
            return Err(error_page(ErrorKind::Commerce7Busy { retry_after }));
        }
        Err(VerifyError::Rejected { .. }) => {
            // A failed verification all the same: its slot of the address's allowance is kept.
            metrics::sign_in("commerce7_rejected");
            return Err(error_page(ErrorKind::Commerce7Rejected));
        }
        Err(VerifyError::Unavailable(_)) => {
            metrics::sign_in("commerce7_unavailable");
            return Err(error_page(ErrorKind::Commerce7Unavailable));
        }
    };

    // The role as Commerce7 says it now, on every session of this user at this winery (another
    // browser's too): a demotion takes effect at the user's next open, wherever they are.
    let role = super::report::stored_role(user.role.as_deref());
    if let Err(err) = state.sessions.store().set_user_role(client.id, &user.id, role.as_deref()).await {
        metrics::sign_in("error");
        tracing::error!(error = %err, "could not record the user's role at sign-in");
        return Err(error_page(ErrorKind::DatabaseUnavailable));
    }

    // The same user of the same winery as this browser's session: that session goes on, now bound
    // to the new token (Commerce7 mints one for every open). Replacing it would end the page open
    // in another tab, with whatever the merchant had typed there.
    if let Some(current) =
        existing.as_ref().filter(|current| current.auth.tenant_id == query.tenant_id && current.auth.user_id == user.id)
    {
        let (code, handoff) = Handoff::issue(now());
        let account_hash = hash_token(&query.account);
        let theme = query.theme.unwrap_or(current.auth.theme);
        match state.sessions.store().rebind(&current.row_id, &account_hash, theme, role.as_deref(), &handoff).await {
            Ok(true) => {
                metrics::sign_in("same_user");
                tracing::info!(tenant_id = %query.tenant_id, user_id = %user.id, "merchant reopened Libero");
                let mut auth = (*current.auth).clone();
                auth.account_token_hash = Some(account_hash);
                auth.theme = theme;
                auth.user_role = role;
                let current =
                    CurrentSession { auth: Arc::new(auth), row_id: current.row_id.clone(), via: Credential::SignIn };
                return Ok(Opened { current, landing: query.landing, code, cookie: None });
            }
            // Deleted since it was read (a logout elsewhere): a new session, as for anyone else.
            Ok(false) => {}
            Err(err) => {
                metrics::sign_in("error");
                tracing::error!(error = %err, "could not renew a session at sign-in");
                return Err(error_page(ErrorKind::DatabaseUnavailable));
            }
        }
    }

    let now = now();
    let ttl = chrono::TimeDelta::from_std(state.config.session_ttl).unwrap_or(chrono::TimeDelta::hours(8));
    let auth = AuthSession {
        client_id: client.id,
        tenant_id: client.tenant_id,
        user_name: user.display_name(),
        user_id: user.id,
        user_email: user.email,
        theme: query.theme.unwrap_or_default(),
        ip_address: origin.ip.map(|ip| ip.to_string()),
        user_agent: origin.user_agent,
        // One reading of the app's clock for every timestamp of the row.
        created_at: now,
        last_activity_at: now,
        expires_at: now + ttl,
        install_generation: client.install_generation,
        account_token_hash: Some(hash_token(&query.account)),
        tab_generation: 0,
        user_role: super::report::stored_role(user.role.as_deref()),
    };
    // This browser's previous session of the same tenant ends; another tenant's stays (its tab
    // still holds a tab token for it).
    let replaced = existing.filter(|current| current.auth.tenant_id == auth.tenant_id).map(|current| current.row_id);
    start_session(state, auth, replaced.as_deref(), query.landing).await
}

/// Reopened with the token this session was verified with: the same session opens, with a new
/// handoff code for a browser without script, and the theme updated if it changed. Both are `UPDATE … WHERE id` of the row the
/// lookup found: if a logout, a revocation or the cleanup deleted it meanwhile, nothing is
/// written and the merchant is told to open Libero again — a reopening never brings it back.
async fn fast_path(
    state: &AppState,
    current: CurrentSession,
    theme: Option<Theme>,
    landing: String,
) -> Result<Opened, Response> {
    let mut auth = (*current.auth).clone();
    if let Some(theme) = theme.filter(|t| *t != current.auth.theme) {
        match state.sessions.store().set_theme(&current.row_id, theme).await {
            Ok(true) => auth.theme = theme,
            // Gone: the handoff write below finds it gone too and says so.
            Ok(false) => {}
            Err(err) => tracing::error!(error = %err, "could not update the session theme"),
        }
    }
    let (code, handoff) = Handoff::issue(now());
    match state.sessions.store().set_handoff(&current.row_id, &handoff, None).await {
        Ok(true) => {
            metrics::sign_in("fast_path");
            let current = CurrentSession { auth: Arc::new(auth), row_id: current.row_id, via: Credential::SignIn };
            Ok(Opened { current, landing, code, cookie: None })
        }
        Ok(false) => {
            // Deleted between the lookup and now (a logout in another tab): sign in again.
            metrics::sign_in("error");
            Err(no_session_page(NoSession::Ended, StatusCode::UNAUTHORIZED, &state.config.frame_ancestors))
        }
        Err(err) => {
            metrics::sign_in("error");
            tracing::error!(error = %err, "could not store a handoff code");
            Err(error_page(ErrorKind::DatabaseUnavailable))
        }
    }
}

/// Gives back the slot [`rate_limited`] took for a verification Commerce7 did not refuse (a
/// success, Commerce7 busy or down): only refusals use up an address's allowance.
fn not_a_refusal(state: &AppState, ip: Option<std::net::IpAddr>) {
    if let (Some(limiter), Some(ip)) = (&state.limits.sign_in, ip) {
        limiter.release(ip);
    }
}

/// Takes a slot of the address's allowance for the verification about to be asked of Commerce7:
/// an address that had `RATE_LIMIT_SIGN_IN` sign-ins refused in the window (or as many
/// verifications in flight at once) is not let through to Commerce7 until the window ends; a
/// verification that is not refused gives its slot back ([`not_a_refusal`]).
fn rate_limited(state: &AppState, ip: Option<std::net::IpAddr>) -> Option<Response> {
    let (Some(limiter), Some(ip)) = (&state.limits.sign_in, ip) else {
        return None;
    };
    let wait = limiter.check(ip).err()?;
    metrics::sign_in("rate_limited");
    metrics::rate_limited("sign_in");
    tracing::warn!(%ip, "sign-in rate limit exceeded");
    let mut response = error_page(ErrorKind::TooManyAttempts);
    response.headers_mut().insert(header::RETRY_AFTER, ratelimit::retry_after(wait));
    Some(response)
}

/// Commerce7 refused the token (401/403, or 404/422 for it): the 401 page, and this browser's
/// session *of that tenant* ends too. Someone presented a token that is not the session's and is not valid: on a shared
/// computer the previous user's session must not be one click away. Another winery's session
/// (another tab's) is left alone.
async fn refused(session: &Session, tenant_id: &str, same_tenant: bool) -> Response {
    metrics::sign_in("commerce7_refused");
    tracing::info!(tenant_id = %tenant_id, "sign-in refused by Commerce7");
    if same_tenant
        && session.id().is_some()
        && let Err(err) = session.flush().await
    {
        // The cookie is still cleared (the session is empty), so this browser is signed out.
        tracing::error!(error = %err, "could not delete the session after a refused sign-in");
    }
    error_page(ErrorKind::Commerce7Refused)
}

/// A new session under a new cookie token (fixation defence), `replaced` (this browser's
/// previous session of the same tenant) deleted; the page opens in this very answer, which also
/// sets the cookie.
async fn start_session(
    state: &AppState,
    auth: AuthSession,
    replaced: Option<&str>,
    landing: String,
) -> Result<Opened, Response> {
    let store = state.sessions.store();
    let (code, handoff) = Handoff::issue(now());
    let created = async {
        if let Some(row_id) = replaced {
            store.delete_key(row_id).await?;
        }
        store.create_signed_in(&auth, &handoff).await
    };
    let (id, row_id) = match created.await {
        Ok(created) => created,
        Err(err) if super::store::is_not_installed(&err) => {
            // Uninstalled (or reinstalled) since the client was read above: the database refused
            // a session for the installation that has ended.
            metrics::sign_in("not_installed");
            tracing::info!(tenant_id = %auth.tenant_id, "sign-in lost a race with an uninstall or a reinstall");
            return Err(error_page(ErrorKind::NotInstalled));
        }
        Err(err) => {
            metrics::sign_in("error");
            tracing::error!(error = %err, "could not start a session");
            return Err(error_page(ErrorKind::DatabaseUnavailable));
        }
    };
    metrics::sign_in("ok");
    tracing::info!(tenant_id = %auth.tenant_id, user_id = %auth.user_id, "merchant signed in");
    let max_age = to_offset(auth.expires_at) - time::OffsetDateTime::now_utc();
    let cookie = Some(state.sessions.issue(id, max_age));
    let current = CurrentSession { auth: Arc::new(auth), row_id, via: Credential::SignIn };
    Ok(Opened { current, landing, code, cookie })
}

/// `POST /logout`: the plain form POST of *Sign out* (before or without hydration, and the
/// hydrated page's fall-back when `/api/logout` answered 401), 303 → `/`. Sign-out is never
/// refused and never reports what it did not do:
///
/// - the form carries the page's tab token in the field `tab`; a correctly signed token names
///   the session to end even past its 15 minutes (a page without WebAssembly is older than that
///   as a rule), at the token's generation. That session is deleted, and the cookie is cleared
///   too when it names the same session (it may be another winery's tab's);
/// - when that deletes nothing — the session is already gone, or the token's generation has
///   ended — the session the cookie names ends if it is of the token's winery (never another
///   winery's tab's);
/// - without the field, or with one that does not verify (junk, another secret), the session
///   the cookie names ends, and the cookie is cleared.
pub async fn logout(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    body: axum::body::Bytes,
) -> Response {
    let named = form_urlencoded::parse(&body)
        .find(|(name, _)| name == "tab")
        .and_then(|(_, token)| state.tab_tokens.verify_signed(&token).ok());
    let ended = match named {
        Some(claims) => end_named_session(&state, &session, &claims).await,
        None => session.flush().await.map_err(|err| err.to_string()),
    };
    if let Err(err) = ended {
        tracing::error!(error = %err, "could not delete the session at logout");
        return error_page(ErrorKind::DatabaseUnavailable);
    }
    see_other("/")
}

/// [`logout`] with a correctly signed tab token: its session at its generation, else the
/// cookie's session of the same winery.
async fn end_named_session(state: &AppState, session: &Session, claims: &tab::TabClaims) -> Result<(), String> {
    let store = state.sessions.store();
    let cookie_row = session.id().map(|id| hash_token(&id.to_string()));
    let deleted = store.delete_at_generation(&claims.row_id, claims.generation).await.map_err(|e| e.to_string())?;
    if deleted {
        if cookie_row.as_deref() == Some(claims.row_id.as_str()) {
            session.flush().await.map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    let cookies = current_session(state, session).await.map_err(|e| e.to_string())?;
    if cookies.is_some_and(|current| current.auth.tenant_id == claims.tenant_id) {
        session.flush().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `GET /resume`: where a tab goes when it cannot resume its session in place. Its script
/// resumes the tab's session if it still can, or says why not.
pub async fn resume_page(State(state): State<AppState>) -> Response {
    no_session_page(NoSession::Missing, StatusCode::OK, &state.config.frame_ancestors)
}

/// Whether a request comes from the app's own origin: by `Sec-Fetch-Site` when the browser sends
/// it, else by `Origin`, which must be exactly `<scheme>://<Host>`. The scheme is `https` when
/// the app is served over TLS (`tls`: `COOKIE_SECURE=true`, directly or behind a TLS-terminating
/// proxy), `http` otherwise — an `https://` page is not the same origin as the plain-http app on
/// the same host, nor the other way round.
pub fn is_same_origin(headers: &HeaderMap, tls: bool) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST)) else {
        return false;
    };
    let (Ok(origin), Ok(host)) = (origin.to_str(), host.to_str()) else {
        return false;
    };
    let scheme = if tls { "https://" } else { "http://" };
    origin
        .get(..scheme.len())
        .is_some_and(|given| given.eq_ignore_ascii_case(scheme) && origin[scheme.len()..].eq_ignore_ascii_case(host))
}

/// Middleware: because the cookie is `SameSite=None`, a cookie-authenticated state change
/// (`POST /logout`, server functions) must come from the app's own origin; others get 403. A
/// request with `Authorization: Bearer` is not cookie-authenticated (the guard decides it by the
/// tab token alone, which another site cannot read), so it needs no origin check.
pub async fn csrf_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = normalized(req.uri().path());
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let cookie_authenticated =
        path == "/logout" || (path.starts_with(API_PREFIX) && bearer_token(req.headers()).is_none());
    if changes_state && cookie_authenticated && !is_same_origin(req.headers(), state.config.cookie_secure) {
        tracing::warn!(path, "cross-site request refused");
        return if path.starts_with(API_PREFIX) && !accepts_html(req.headers()) {
            api_error(AppError::Forbidden)
        } else {
            error_page(ErrorKind::CrossSite)
        };
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn sec_fetch_site_same_origin_is_accepted() {
        assert!(is_same_origin(&headers(&[("sec-fetch-site", "same-origin")]), true));
    }

    #[test]
    fn sec_fetch_site_cross_site_or_same_site_is_refused() {
        let cross = headers(&[("sec-fetch-site", "cross-site"), ("origin", "http://a"), ("host", "a")]);
        assert!(!is_same_origin(&cross, false));
        assert!(!is_same_origin(&headers(&[("sec-fetch-site", "same-site")]), true));
    }

    #[test]
    fn origin_matching_host_is_accepted_and_others_refused() {
        assert!(is_same_origin(&headers(&[("origin", "http://127.0.0.1:3000"), ("host", "127.0.0.1:3000")]), false));
        assert!(!is_same_origin(&headers(&[("origin", "https://evil.example"), ("host", "127.0.0.1:3000")]), false));
        assert!(!is_same_origin(&headers(&[("origin", "null"), ("host", "127.0.0.1:3000")]), false));
        assert!(!is_same_origin(&headers(&[("host", "127.0.0.1:3000")]), false), "no origin information at all");
    }

    #[test]
    fn the_origin_fallback_compares_the_scheme_with_how_the_app_is_served() {
        let https = headers(&[("origin", "https://libero.example"), ("host", "libero.example")]);
        let http = headers(&[("origin", "http://libero.example"), ("host", "libero.example")]);
        assert!(is_same_origin(&https, true), "served over TLS: the https origin is ours");
        assert!(!is_same_origin(&http, true), "served over TLS: a plain-http page on the host is not");
        assert!(is_same_origin(&http, false), "served over plain http: the http origin is ours");
        assert!(!is_same_origin(&https, false), "served over plain http: an https page is not");
    }

    #[test]
    fn the_origin_fallback_ignores_case_but_not_prefixes() {
        assert!(is_same_origin(&headers(&[("origin", "HTTPS://Libero.Example"), ("host", "libero.example")]), true));
        let longer = headers(&[("origin", "https://libero.example.evil"), ("host", "libero.example")]);
        assert!(!is_same_origin(&longer, true));
        assert!(!is_same_origin(&headers(&[("origin", "https:/"), ("host", "")]), true));
    }

    #[test]
    fn only_document_and_iframe_navigations_may_sign_in() {
        assert!(is_navigation(&headers(&[])), "no Sec-Fetch-Dest: an older browser");
        assert!(is_navigation(&headers(&[("sec-fetch-dest", "iframe")])));
        assert!(is_navigation(&headers(&[("sec-fetch-dest", "document")])));
        for dest in ["image", "empty", "script", "frame", "style", "object", "embed"] {
            let mut map = HeaderMap::new();
            map.insert("sec-fetch-dest", HeaderValue::from_str(dest).unwrap());
            assert!(!is_navigation(&map), "{dest}");
        }
    }

    #[test]
    fn only_handoff_codes_of_the_right_shape_are_read_from_the_query() {
        let code = tab::new_handoff_code();
        let uri: Uri = format!("/app?handoff={code}").parse().unwrap();
        assert_eq!(handoff_param(&uri), Some(code));
        assert_eq!(handoff_param(&"/app?handoff=short".parse().unwrap()), None);
        assert_eq!(handoff_param(&"/app".parse().unwrap()), None);
    }

    #[test]
    fn sign_in_query_is_parsed_and_decoded() {
        let uri: Uri = "/app?tenantId=demo-winery&account=abc%2Bdef%3D&adminUITheme=dark".parse().unwrap();
        let query = SignInQuery::from_uri(&uri).unwrap().unwrap();
        assert_eq!(query.tenant_id, "demo-winery");
        assert_eq!(query.account, "abc+def=");
        assert_eq!(query.theme, Some(Theme::Dark));
    }

    #[test]
    fn a_sign_in_lands_on_its_page_with_its_plain_context_only() {
        let uri: Uri =
            "/settings/?tenantId=t&account=secret&orderId=o-1&adminUITheme=dark&handoff=x&__err=e&customerId=c_2"
                .parse()
                .unwrap();
        assert_eq!(landing(&uri), "/settings?orderId=o-1&customerId=c_2");
        let odd: Uri = "/app?tenantId=t&account=a&orderId=%3Cscript%3E&bad%20name=1&productId=p.3~".parse().unwrap();
        assert_eq!(landing(&odd), "/app?productId=p.3%7E", "values or names that are not plain are dropped");
        let many: String = (0..12).map(|n| format!("&k{n}=v")).collect();
        let many: Uri = format!("/app?tenantId=t&account=a{many}").parse().unwrap();
        assert_eq!(landing(&many).matches('=').count(), 10, "at most ten");
        assert_eq!(landing(&"/app?tenantId=t&account=a".parse().unwrap()), "/app");
    }

    #[test]
    fn a_sign_in_query_missing_the_account_is_malformed() {
        let uri: Uri = "/app?tenantId=demo-winery".parse().unwrap();
        assert!(SignInQuery::from_uri(&uri).unwrap().is_err());
        let uri: Uri = "/app?other=1".parse().unwrap();
        assert!(SignInQuery::from_uri(&uri).is_none());
    }
}
