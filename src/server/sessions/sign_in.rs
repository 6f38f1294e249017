//! The Commerce7 sign-in: a page opened with `tenantId` and `account` is verified with one
//! Commerce7 call (or recognised on the fast path), gets a session and a handoff code, and lands
//! on itself.

use std::{net::IpAddr, sync::Arc};

use axum::{
    extract::{Query, Request},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tower_sessions::Session;

use super::{
    AuthSession, Theme,
    credential::{Credential, CurrentSession, Found, WithoutScript, current_session, render_page, with_handoff},
    hash_token, normalized,
    store::Handoff,
    tab::is_tenant_slug,
    to_offset,
};
use crate::server::{
    clients,
    commerce7::VerifyError,
    db::now,
    error_page::{ErrorKind, NoSession, error_page, no_session_page},
    metrics, ratelimit,
    state::AppState,
};

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
pub(super) struct SignInQuery {
    pub(super) tenant_id: String,
    pub(super) account: String,
    pub(super) theme: Option<Theme>,
    /// Where the sign-in lands: the page it was opened at, with the context Commerce7 gave it
    /// (`orderId`, `customerId`, `productId`, …) and never the account token.
    pub(super) landing: String,
}

/// The parameters of a sign-in URL that are the sign-in's own, or the app's: never carried to
/// the page.
pub(super) const SIGN_IN_PARAMS: [&str; 7] =
    ["tenantId", "account", "adminUITheme", "handoff", "__path", "__err", "__sig"];

/// The page a sign-in at `uri` lands on: its path and its other *plain* parameters — a name of
/// letters, digits and `_` (at most 40), a value of URL-unreserved characters (at most 200), at
/// most 10 of them; anything else is dropped rather than carried into the page's address.
pub(super) fn landing(uri: &Uri) -> String {
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
pub(super) struct SignInParams {
    pub(super) tenant_id: Option<String>,
    pub(super) account: Option<String>,
    #[serde(rename = "adminUITheme")]
    pub(super) admin_ui_theme: Option<String>,
}

impl SignInQuery {
    /// `Some` when the URL carries `tenantId` or `account` (a sign-in attempt, valid or not).
    pub(super) fn from_uri(uri: &Uri) -> Option<Result<Self, ()>> {
        uri.query()?;
        let Ok(Query(params)) = Query::<SignInParams>::try_from_uri(uri) else {
            return Some(Err(()));
        };
        if params.tenant_id.is_none() && params.account.is_none() {
            return None;
        }
        let theme = params.admin_ui_theme.as_deref().map(|t| Theme::parse(Some(t)));
        Some(match (params.tenant_id, params.account) {
            // An account token with a control character (a tab, a line break) is no token.
            (Some(tenant_id), Some(account))
                if is_tenant_slug(&tenant_id)
                    && !account.is_empty()
                    && account.len() <= 8192
                    && !account.chars().any(char::is_control) =>
            {
                Ok(Self { tenant_id, account, theme, landing: landing(uri) })
            }
            _ => Err(()),
        })
    }
}
pub(super) fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|ua| ua.chars().take(512).collect())
}

/// Where a sign-in comes from, recorded on the session row.
pub(super) struct ClientInfo {
    pub(super) ip: Option<IpAddr>,
    pub(super) user_agent: Option<String>,
}

/// A sign-in that succeeded: the session's row and the page it opens, answered by
/// [`open_signed_in`].
pub(super) struct Opened {
    /// The session as the sign-in just wrote it (no need to read it back).
    pub(super) current: CurrentSession,
    /// The page the sign-in was opened at, with its plain context: `<page>?<context>`.
    pub(super) landing: String,
    /// A handoff code for the session (its hash is on the row), for a browser without script.
    pub(super) code: String,
    /// The new cookie, when the sign-in started a new session.
    pub(super) cookie: Option<HeaderValue>,
}

/// The answer to a successful sign-in: the page it was opened at, rendered in this very response
/// for the session (no redirect: the merchant waits for one round trip less), as if opened at
/// `<page>?<context>` — the sign-in's own parameters never reach the page. The account token
/// must not stay in the address bar, the history or a `Referer`: the page sends no `Referer`,
/// its script replaces the address (`history.replaceState`) before anything else runs, and a
/// browser that runs no script is sent on at once by a `<noscript>` refresh to the page with a
/// handoff code instead.
pub(super) async fn open_signed_in(state: &AppState, mut req: Request, next: Next, opened: Opened) -> Response {
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
pub(super) async fn sign_in(
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
        Err(err) => return Err(database_failed(err, "session lookup failed during sign-in")),
    };

    // The tenant first: a junk or uninstalled tenant costs Commerce7 nothing.
    let client = match clients::find_by_tenant(&state.db, &query.tenant_id).await {
        Ok(Some(client)) if client.is_installed() => client,
        Ok(_) => {
            metrics::sign_in("not_installed");
            tracing::info!(tenant_id = %query.tenant_id, "sign-in for a tenant that has not installed Libero");
            return Err(error_page(ErrorKind::NotInstalled));
        }
        Err(err) => return Err(database_failed(err, "client lookup failed during sign-in")),
    };

    let slot = rate_limited(state, origin.ip)?;
    let verified = state.commerce7.verify_user(&query.tenant_id, &query.account).await;
    // A failed verification uses up its slot, and so does one given up half-way (this future
    // dropped before here); any other gives it back (a success, Commerce7 busy or down).
    if let Some(slot) = slot
        && !matches!(verified, Err(VerifyError::Refused { .. } | VerifyError::Rejected { .. }))
    {
        slot.give_back();
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
        return Err(database_failed(err, "could not record the user's role at sign-in"));
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
            Err(err) => return Err(database_failed(err, "could not renew a session at sign-in")),
        }
    }

    let now = now();
    let ttl = chrono::TimeDelta::from_std(state.config.session_ttl).unwrap_or(chrono::TimeDelta::hours(8));
    let auth = AuthSession {
        client_id: client.id,
        tenant_id: client.tenant_id,
        user_name: user.display_name(),
        user_id: user.id,
        user_email: user.email.filter(|email| !email.contains(char::is_control)),
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
        user_role: role,
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
pub(super) async fn fast_path(
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
        Err(err) => Err(database_failed(err, "could not store a handoff code")),
    }
}

/// Takes a slot of the address's allowance for the verification about to be asked of Commerce7:
/// an address that had `RATE_LIMIT_SIGN_IN` sign-ins refused in the window (or as many
/// verifications in flight at once) is not let through to Commerce7 until the window ends; a
/// verification that is not refused gives its slot back ([`give_back`](ratelimit::Slot::give_back)).
/// `None`: no limit.
pub(super) fn rate_limited(state: &AppState, ip: Option<IpAddr>) -> Result<Option<ratelimit::Slot>, Response> {
    let (Some(limiter), Some(ip)) = (&state.limits.sign_in, ip) else {
        return Ok(None);
    };
    limiter.check(ip).map(Some).map_err(|wait| {
        metrics::sign_in("rate_limited");
        metrics::rate_limited("sign_in");
        tracing::warn!(%ip, "sign-in rate limit exceeded");
        let mut response = error_page(ErrorKind::TooManyAttempts);
        response.headers_mut().insert(header::RETRY_AFTER, ratelimit::retry_after(wait));
        response
    })
}

/// Commerce7 refused the token (401/403, or 404/422 for it): the 401 page, and this browser's
/// session *of that tenant* ends too. Someone presented a token that is not the session's and is not valid: on a shared
/// computer the previous user's session must not be one click away. Another winery's session
/// (another tab's) is left alone.
pub(super) async fn refused(session: &Session, tenant_id: &str, same_tenant: bool) -> Response {
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
pub(super) async fn start_session(
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
        Err(err) => return Err(database_failed(err, "could not start a session")),
    };
    metrics::sign_in("ok");
    tracing::info!(tenant_id = %auth.tenant_id, user_id = %auth.user_id, "merchant signed in");
    let max_age = to_offset(auth.expires_at) - time::OffsetDateTime::now_utc();
    let cookie = Some(state.sessions.issue(id, max_age));
    let current = CurrentSession { auth: Arc::new(auth), row_id, via: Credential::SignIn };
    Ok(Opened { current, landing, code, cookie })
}

/// A sign-in the database failed: counted as `error`, logged with what failed, answered 503.
fn database_failed(err: impl std::fmt::Display, what: &str) -> Response {
    metrics::sign_in("error");
    tracing::error!(error = %err, "{what}");
    error_page(ErrorKind::DatabaseUnavailable)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::sessions::test_headers as headers;

    #[test]
    pub(super) fn only_document_and_iframe_navigations_may_sign_in() {
        assert!(is_navigation(&headers(&[])), "no Sec-Fetch-Dest: an older browser");
        assert!(is_navigation(&headers(&[("sec-fetch-dest", "iframe")])));
        assert!(is_navigation(&headers(&[("sec-fetch-dest", "document")])));
        for dest in ["image", "empty", "script", "frame", "style", "object", "embed"] {
            assert!(!is_navigation(&headers(&[("sec-fetch-dest", dest)])), "{dest}");
        }
    }

    #[test]
    pub(super) fn sign_in_query_is_parsed_and_decoded() {
        let uri: Uri = "/app?tenantId=demo-winery&account=abc%2Bdef%3D&adminUITheme=dark".parse().unwrap();
        let query = SignInQuery::from_uri(&uri).unwrap().unwrap();
        assert_eq!(query.tenant_id, "demo-winery");
        assert_eq!(query.account, "abc+def=");
        assert_eq!(query.theme, Some(Theme::Dark));
    }

    #[test]
    pub(super) fn a_sign_in_lands_on_its_page_with_its_plain_context_only() {
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
    pub(super) fn a_sign_in_query_missing_the_account_is_malformed() {
        let uri: Uri = "/app?tenantId=demo-winery".parse().unwrap();
        assert!(SignInQuery::from_uri(&uri).unwrap().is_err());
        let uri: Uri = "/app?other=1".parse().unwrap();
        assert!(SignInQuery::from_uri(&uri).is_none());
    }
}
