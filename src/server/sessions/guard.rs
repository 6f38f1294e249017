//! The session guard, the Commerce7 sign-in, logout, and the cross-site (CSRF) check.
//!
//! They run as axum middleware in front of the Leptos routes, so redirects and `Set-Cookie` go
//! out before streaming SSR has sent any header. The validated session reaches components and
//! server functions through the request extensions ([`CurrentSession`]), never a second lookup.

use axum::{
    Extension, Json,
    extract::{Query, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tower_sessions::{Session, session::Expiry};

use super::{AUTH_KEY, AuthSession, Theme, cookie::CookieToken, to_offset};
use crate::{
    error::AppError,
    server::{
        AppState, clients,
        commerce7::VerifyError,
        db::now,
        error_page::{ErrorKind, error_page},
        metrics, ratelimit,
    },
};

/// The validated session of this request.
#[derive(Clone, PartialEq)]
pub struct CurrentSession(pub AuthSession);

impl std::fmt::Debug for CurrentSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurrentSession")
            .field("tenant_id", &self.0.tenant_id)
            .field("user_id", &self.0.user_id)
            .finish_non_exhaustive()
    }
}

/// `/app/` is `/app`: the router accepts a trailing slash, so the guard must too.
fn normalized(path: &str) -> &str {
    match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    }
}

/// Pages that need a session.
pub const PROTECTED_PAGES: [&str; 2] = ["/app", "/settings"];
/// Where the server functions live.
pub const API_PREFIX: &str = "/api/";

#[derive(Debug, thiserror::Error)]
enum GuardError {
    #[error("session store: {0}")]
    Session(#[from] tower_sessions::session::Error),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
}

/// Loads and validates this request's session, refreshing `last_activity_at` when it is due.
async fn current_session(state: &AppState, session: &Session) -> Result<Option<CurrentSession>, GuardError> {
    let Some(id) = session.id() else {
        return Ok(None);
    };
    let Some(mut auth) = session.get::<AuthSession>(AUTH_KEY).await? else {
        return Ok(None);
    };
    let touch_every =
        chrono::TimeDelta::from_std(state.config.session_touch_interval).unwrap_or(chrono::TimeDelta::MAX);
    if now() - auth.last_activity_at >= touch_every {
        auth.last_activity_at = state.sessions.store().touch(&id).await?;
    }
    Ok(Some(CurrentSession(auth)))
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

fn api_error(error: AppError) -> Response {
    let status = error.status();
    (status, [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], Json(error)).into_response()
}

/// Middleware: guards `/app`, `/settings` (303 → `/`) and the server functions (401), and signs
/// the merchant in on `GET /app?tenantId=…&account=…`.
pub async fn session_guard(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = normalized(req.uri().path());
    let is_page = PROTECTED_PAGES.contains(&path);
    let is_api = path.starts_with(API_PREFIX);
    if !is_page && !is_api {
        return next.run(req).await;
    }
    let Some(session) = req.extensions().get::<Session>().cloned() else {
        tracing::error!("session layer missing in front of the guard");
        return error_page(ErrorKind::DatabaseUnavailable);
    };

    if path == "/app" && req.method() == Method::GET {
        if let Some(query) = SignInQuery::from_uri(req.uri()) {
            let client = ClientInfo { ip: ratelimit::request_ip(&state, &req), user_agent: user_agent(req.headers()) };
            return sign_in(&state, &session, query, client).await;
        }
    }

    if session.id().is_none() {
        // No cookie, or one that failed its signature: the store is not even asked.
        metrics::validation(match req.extensions().get::<CookieToken>() {
            Some(CookieToken::Rejected(_)) => "bad_signature",
            _ => "missing",
        });
    }
    match current_session(&state, &session).await {
        Ok(Some(current)) => {
            req.extensions_mut().insert(current);
            next.run(req).await
        }
        Ok(None) => {
            let sent = req.extensions().get::<CookieToken>().is_some_and(CookieToken::was_sent);
            if sent {
                // Tell the browser to drop the dead cookie.
                session.clear().await;
            }
            if is_page { see_other("/") } else { api_error(AppError::Unauthorized) }
        }
        Err(err) => {
            tracing::error!(error = %err, "session lookup failed");
            if is_page { error_page(ErrorKind::DatabaseUnavailable) } else { api_error(AppError::Unavailable) }
        }
    }
}

/// The query string Commerce7 opens the app with.
#[derive(Clone, PartialEq, Eq)]
struct SignInQuery {
    tenant_id: String,
    account: String,
    theme: Option<Theme>,
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
                Ok(Self { tenant_id, account, theme })
            }
            _ => Err(()),
        })
    }
}

/// Commerce7 tenant ids are slugs.
pub fn is_tenant_slug(value: &str) -> bool {
    !value.is_empty() && value.len() <= 100 && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|ua| ua.chars().take(512).collect())
}

/// Where a sign-in comes from, recorded on the session row.
struct ClientInfo {
    ip: Option<std::net::IpAddr>,
    user_agent: Option<String>,
}

async fn sign_in(state: &AppState, session: &Session, query: Result<SignInQuery, ()>, origin: ClientInfo) -> Response {
    let Ok(query) = query else {
        metrics::sign_in("bad_link");
        return error_page(ErrorKind::BadSignInLink);
    };

    // Fast path: this browser already has a valid session for this tenant. No Commerce7 call.
    match current_session(state, session).await {
        Ok(Some(CurrentSession(mut auth))) if auth.tenant_id == query.tenant_id => {
            if let Some(theme) = query.theme.filter(|t| *t != auth.theme) {
                auth.theme = theme;
                // The save re-issues the cookie: keep its Max-Age the remaining lifetime.
                session.set_expiry(Some(Expiry::AtDateTime(to_offset(auth.expires_at))));
                if let Err(err) = session.insert(AUTH_KEY, &auth).await {
                    tracing::error!(error = %err, "could not update the session theme");
                }
            }
            metrics::sign_in("fast_path");
            return see_other("/app");
        }
        Ok(_) => {}
        Err(err) => {
            metrics::sign_in("error");
            tracing::error!(error = %err, "session lookup failed during sign-in");
            return error_page(ErrorKind::DatabaseUnavailable);
        }
    }

    // Only attempts that would reach Commerce7 count against the limit.
    if let (Some(limiter), Some(ip)) = (&state.limits.sign_in, origin.ip) {
        if let Err(wait) = limiter.check(ip) {
            metrics::sign_in("rate_limited");
            metrics::rate_limited("sign_in");
            tracing::warn!(%ip, "sign-in rate limit exceeded");
            let mut response = error_page(ErrorKind::TooManyAttempts);
            response.headers_mut().insert(header::RETRY_AFTER, ratelimit::retry_after(wait));
            return response;
        }
    }

    let user = match state.commerce7.verify_user(&query.tenant_id, &query.account).await {
        Ok(user) => user,
        Err(VerifyError::Unauthorized) => {
            metrics::sign_in("commerce7_refused");
            tracing::info!(tenant_id = %query.tenant_id, "sign-in refused by Commerce7");
            return error_page(ErrorKind::Commerce7Refused);
        }
        Err(VerifyError::Unavailable(_)) => {
            metrics::sign_in("commerce7_unavailable");
            return error_page(ErrorKind::Commerce7Unavailable);
        }
    };

    let client = match clients::find_by_tenant(&state.db, &query.tenant_id).await {
        Ok(Some(client)) if client.is_installed() => client,
        Ok(_) => {
            metrics::sign_in("not_installed");
            tracing::info!(tenant_id = %query.tenant_id, "sign-in for a tenant that has not installed Libero");
            return error_page(ErrorKind::NotInstalled);
        }
        Err(err) => {
            tracing::error!(error = %err, "client lookup failed during sign-in");
            return error_page(ErrorKind::DatabaseUnavailable);
        }
    };

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
        created_at: now,
        last_activity_at: now,
        expires_at: now + ttl,
    };
    // Fixation defence: whatever session this browser had is deleted and a new id is issued.
    let fresh = async {
        session.cycle_id().await?;
        session.clear().await;
        session.insert(AUTH_KEY, &auth).await
    };
    if let Err(err) = fresh.await {
        tracing::error!(error = %err, "could not start a session");
        return error_page(ErrorKind::DatabaseUnavailable);
    }
    session.set_expiry(Some(Expiry::AtDateTime(to_offset(auth.expires_at))));
    metrics::sign_in("ok");
    tracing::info!(tenant_id = %auth.tenant_id, user_id = %auth.user_id, "merchant signed in");
    // The account token must not stay in the URL, the history or a Referer.
    see_other("/app")
}

/// `POST /logout`: deletes the session row, clears the cookie, 303 → `/`. Works as a plain form
/// POST without JavaScript.
pub async fn logout(Extension(session): Extension<Session>) -> Response {
    if let Err(err) = session.flush().await {
        tracing::error!(error = %err, "could not delete the session at logout");
        return error_page(ErrorKind::DatabaseUnavailable);
    }
    see_other("/")
}

/// Whether a request comes from the app's own origin, by `Sec-Fetch-Site` or else `Origin`.
pub fn is_same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        return site.as_bytes() == b"same-origin";
    }
    let (Some(origin), Some(host)) = (headers.get(header::ORIGIN), headers.get(header::HOST)) else {
        return false;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let authority = origin.strip_prefix("https://").or_else(|| origin.strip_prefix("http://"));
    authority.is_some_and(|authority| authority.as_bytes() == host.as_bytes())
}

/// Middleware: because the cookie is `SameSite=None`, a cookie-authenticated state change
/// (`POST /logout`, server functions) must come from the app's own origin; others get 403.
pub async fn csrf_guard(req: Request, next: Next) -> Response {
    let path = normalized(req.uri().path());
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let cookie_authenticated = path == "/logout" || path.starts_with(API_PREFIX);
    if changes_state && cookie_authenticated && !is_same_origin(req.headers()) {
        tracing::warn!(path, "cross-site request refused");
        return if path.starts_with(API_PREFIX) {
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
        assert!(is_same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
    }

    #[test]
    fn sec_fetch_site_cross_site_or_same_site_is_refused() {
        assert!(!is_same_origin(&headers(&[("sec-fetch-site", "cross-site"), ("origin", "http://a"), ("host", "a")])));
        assert!(!is_same_origin(&headers(&[("sec-fetch-site", "same-site")])));
    }

    #[test]
    fn origin_matching_host_is_accepted_and_others_refused() {
        assert!(is_same_origin(&headers(&[("origin", "http://127.0.0.1:3000"), ("host", "127.0.0.1:3000")])));
        assert!(!is_same_origin(&headers(&[("origin", "https://evil.example"), ("host", "127.0.0.1:3000")])));
        assert!(!is_same_origin(&headers(&[("origin", "null"), ("host", "127.0.0.1:3000")])));
        assert!(!is_same_origin(&headers(&[("host", "127.0.0.1:3000")])), "no origin information at all");
    }

    #[test]
    fn tenant_slugs_are_short_and_plain() {
        assert!(is_tenant_slug("demo-winery"));
        assert!(is_tenant_slug("winery_2"));
        assert!(!is_tenant_slug(""));
        assert!(!is_tenant_slug("a/b"));
        assert!(!is_tenant_slug(&"a".repeat(101)));
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
    fn a_sign_in_query_missing_the_account_is_malformed() {
        let uri: Uri = "/app?tenantId=demo-winery".parse().unwrap();
        assert!(SignInQuery::from_uri(&uri).unwrap().is_err());
        let uri: Uri = "/app?other=1".parse().unwrap();
        assert!(SignInQuery::from_uri(&uri).is_none());
    }
}
