//! Sessions on the web, over the session core ([`libero_sessions`], re-exported here: the store,
//! the tokens, the lists): the signed cookie ([`cookie`]); resolving a request's credential
//! ([`credential`]); the guard in front of the Leptos routes ([`guard`]); the Commerce7 sign-in
//! ([`sign_in`]); sign-out and `/resume` ([`logout`]); the cross-site check ([`csrf`]). Here: the
//! paths they share and the answers they give alike.

pub mod cookie;
pub mod credential;
pub mod csrf;
pub mod guard;
pub mod logout;
pub mod sign_in;

pub use cookie::{SessionCookies, session_layer};
pub use credential::{Credential, CurrentSession, TabBootstrap};
pub use csrf::csrf_guard;
pub use guard::session_guard;
pub use libero_sessions::*;

use axum::{
    Json,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::server::delivery::no_store;
use crate::{
    error::AppError,
    server::error_page::{ErrorKind, error_page},
};

/// `/app/` is `/app` to the guard (the page then redirects to the path without the slash).
pub fn normalized(path: &str) -> &str {
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

/// A `303` to `location`, not stored.
pub fn see_other(location: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, HeaderValue::from_static(location))], no_store()).into_response()
}

/// A server function's error as JSON, with its status, not stored.
pub fn api_error(error: AppError) -> Response {
    (error.status(), no_store(), Json(error)).into_response()
}

/// Whether the request asks for HTML: a page, or a form the browser posts itself (before
/// hydration) — it gets a page or a redirect, never JSON. The app's own calls ask for JSON.
pub fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// The database failed: the page that says so, or the server functions' `unavailable` error.
pub fn unavailable(err: &dyn std::fmt::Display, is_page: bool) -> Response {
    tracing::error!(error = %err, "session lookup failed");
    if is_page { error_page(ErrorKind::DatabaseUnavailable) } else { api_error(AppError::Unavailable) }
}

/// A header map of `pairs`, for the guard modules' tests.
#[cfg(test)]
fn test_headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    pairs.iter().map(|&(k, v)| (header::HeaderName::from_static(k), HeaderValue::from_static(v))).collect()
}
