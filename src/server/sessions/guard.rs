//! The session guard: the middleware in front of the Leptos routes that decides, per request,
//! which credential counts (a tab token alone, else a handoff code, else the cookie) and answers
//! what has none — so that redirects and `Set-Cookie` go out before streaming SSR has sent any
//! header.

use axum::{
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tower_sessions::Session;

use super::{
    API_PREFIX, LOGOUT_API_PATH, PROTECTED_PAGES, RENEWAL_PATH, accepts_html, api_error,
    cookie::CookieToken,
    credential::{
        Credential, TokenUse, bearer_token, cookie_session, handoff_param, render_page, session_named, tab_session,
    },
    normalized,
    sign_in::{ClientInfo, SignInQuery, is_navigation, open_signed_in, sign_in, user_agent},
    unavailable,
};
use crate::{
    error::AppError,
    server::{
        error_page::{ErrorKind, NoSession, error_page, no_session_page},
        metrics, ratelimit,
        state::AppState,
    },
};

/// The server functions a signed-in page posts as a plain form (before hydration): only these
/// read the form's `tab` field.
pub(super) const FORM_PATHS: [&str; 4] =
    ["/api/save_settings", "/api/sign_out_session", "/api/sign_out_other_sessions", "/api/sign_out_user_everywhere"];

/// The largest form body the guard reads for its `tab` field (the app's forms are a few hundred
/// bytes).
pub(super) const MAX_FORM_BYTES: usize = 64 * 1024;

/// `308` to the same page without its trailing slash, query kept (a handoff code is meant to
/// travel in the URL; an account token never reaches here: the sign-in is answered before).
pub(super) fn canonical_redirect(uri: &Uri) -> Response {
    let path = normalized(uri.path());
    let target = uri.query().map_or_else(|| path.to_owned(), |query| format!("{path}?{query}"));
    match HeaderValue::from_str(&target) {
        Ok(location) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// Middleware: guards the pages (`/app`, `/settings`, `/reports/sessions`: the "no session" page,
/// 401) and the server functions (401), and signs the merchant in on `GET /app?tenantId=…&account=…`.
/// Every answer on these paths — pages, server-function results and errors, redirects — is
/// `Cache-Control: no-store`: nothing signed-in may be kept by a cache or shown again by Back after logout.
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
pub(super) async fn guard(state: AppState, mut req: Request, next: Next, is_page: bool) -> Response {
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
            // Read at the generation it was issued at: *Sign out all other sessions* in between opens nothing.
            Ok(Some((row_id, tenant, generation))) => {
                session_named(&state, row_id, Credential::Handoff, Some((&tenant, generation)), true).await
            }
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
        Ok(Some(found)) => {
            req.extensions_mut().insert(found.current);
            let response = next.run(req).await;
            if html { html_for_a_plain_form(response) } else { response }
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

/// A server function's answer to a plain form (`Accept: text/html`): the server functions
/// redirect back to their page themselves (`api::ssr::answer_plain_form`); anything else that
/// would reach the browser as JSON — arguments that do not decode, say — becomes a page.
pub(super) fn html_for_a_plain_form(response: Response) -> Response {
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
pub(super) fn is_form_post(req: &Request) -> bool {
    req.method() == Method::POST
        && req
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|content_type| content_type.as_bytes().starts_with(b"application/x-www-form-urlencoded"))
}

/// Reads a form's body and takes its `tab` field out: the field's value (when present and not
/// empty), and the request with the other fields as its body; `None` for a body over
/// [`MAX_FORM_BYTES`].
pub(super) async fn take_tab_field(req: Request) -> Option<(Option<String>, Request)> {
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
