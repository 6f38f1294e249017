//! Resolving a request's credential — the cookie, a tab token (bearer or form field), a handoff
//! code — to a valid session ([`CurrentSession`], handed to components and server functions
//! through the request extensions, never a second lookup), and handing a signed-in page its tab
//! token.

use std::sync::Arc;

use axum::{
    extract::{Query, Request},
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use tower_sessions::Session;

use super::{AuthSession, Theme, hash_token, normalized, tab};
use crate::server::{db::now, http::authorization_credentials, metrics, state::AppState};

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

/// Refreshes `last_activity_at` when it is due (at most once per `SESSION_TOUCH_INTERVAL`).
pub(super) async fn touch_if_due(state: &AppState, row_id: &str, auth: &mut AuthSession) -> Result<(), sqlx::Error> {
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
pub async fn current_session(state: &AppState, session: &Session) -> Result<Option<CurrentSession>, sqlx::Error> {
    Ok(cookie_session(state, session).await?.map(|found| found.current))
}

/// [`current_session`], as a [`Found`].
pub(super) async fn cookie_session(state: &AppState, session: &Session) -> Result<Option<Found>, sqlx::Error> {
    let Some(id) = session.id() else {
        return Ok(None);
    };
    session_named(state, hash_token(&id.to_string()), Credential::Cookie, None, true).await
}

/// A valid session.
pub(super) struct Found {
    pub(super) current: CurrentSession,
    /// Named by a tab token past its expiry (a plain form of an old page, a late sign-out).
    pub(super) expired: bool,
}

/// Loads and validates the session a row id points at (from the cookie, a tab token or a
/// handoff code), checked against the tenant and tab-token generation `at` which a tab token or
/// a handoff code was issued, if any, before anything is written: a refused token never keeps a
/// session awake. `touch` refreshes
/// `last_activity_at` when due (not for the tab's automatic token renewal, which is no activity
/// of the merchant's).
pub(super) async fn session_named(
    state: &AppState,
    row_id: String,
    via: Credential,
    at: Option<(&str, i64)>,
    touch: bool,
) -> Result<Option<Found>, sqlx::Error> {
    match state.sessions.store().validate_key(&row_id).await? {
        Ok(mut auth) => {
            if let Some((tenant_id, generation)) = at
                // A tab token's MAC binds the tenant to the row; a row never changes tenant. Checked all the same.
                && (auth.tenant_id != tenant_id || auth.tab_generation != generation)
            {
                metrics::validation("bearer_old_generation");
                tracing::info!(?via, "tab token or handoff code of an ended generation refused");
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
/// session of the token's tenant at the token's generation. `touch` as in [`session_named`].
/// `expiry`: whether a correctly signed token past its expiry still names its session
/// ([`TokenUse`]).
pub(super) async fn tab_session(
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
    let found =
        session_named(state, claims.row_id.clone(), via, Some((&claims.tenant_id, claims.generation)), touch).await?;
    Ok(found.map(|found| Found { expired: claims.expires_at <= now(), ..found }))
}

/// How strictly a tab token's expiry is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenUse {
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
pub(super) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    authorization_credentials(headers, "Bearer")
}

/// `<page>?<its context>&handoff=<code>`: the page a sign-in opened, reached by a handoff code.
pub(super) fn with_handoff(landing: &str, code: &str) -> String {
    let separator = if landing.contains('?') { '&' } else { '?' };
    format!("{landing}{separator}handoff={code}")
}

/// Renders a signed-in page for `found`'s session, handing its tab a fresh tab token. The page is `no-store` (set by the caller) and sends no
/// `Referer` (its URL may still hold a handoff code, or the sign-in's account token, until the script
/// has removed it).
///
/// A server-function error in the page's query that the server did not sign for this session
/// (a crafted link) is not shown: the answer is `303` to the same page without it.
pub(super) async fn render_page(state: &AppState, mut req: Request, next: Next, found: Found) -> Response {
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
pub(super) fn handoff_param(uri: &Uri) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Params {
        handoff: Option<String>,
    }
    uri.query()?;
    let Query(params) = Query::<Params>::try_from_uri(uri).ok()?;
    params.handoff.filter(|code| tab::is_handoff_code(code))
}

/// [`TabBootstrap::without_script`] of the page a sign-in answers with.
#[derive(Debug, Clone)]
pub(super) struct WithoutScript(pub(super) String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_handoff_codes_of_the_right_shape_are_read_from_the_query() {
        let code = tab::new_handoff_code();
        let uri: Uri = format!("/app?handoff={code}").parse().unwrap();
        assert_eq!(handoff_param(&uri), Some(code));
        assert_eq!(handoff_param(&"/app?handoff=short".parse().unwrap()), None);
        assert_eq!(handoff_param(&"/app".parse().unwrap()), None);
    }
}
