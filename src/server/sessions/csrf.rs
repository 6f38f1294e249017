//! The cross-site (CSRF) check: the cookie is `SameSite=None`, so a cookie-authenticated state
//! change must come from the app's own origin.

use axum::{
    extract::{Request, State},
    http::{HeaderMap, Method, header},
    middleware::Next,
    response::Response,
};

use super::{API_PREFIX, accepts_html, api_error, credential::bearer_token, normalized};
use crate::{
    error::AppError,
    server::{
        error_page::{ErrorKind, error_page},
        state::AppState,
    },
};

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
    use crate::server::sessions::test_headers as headers;

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
}
