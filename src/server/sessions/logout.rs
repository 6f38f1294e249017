//! Sign-out (`POST /logout`, the plain form) and `/resume`.

use axum::{Extension, extract::State, http::StatusCode, response::Response};
use tower_sessions::Session;

use super::{credential::current_session, hash_token, see_other, tab};
use crate::server::{
    error_page::{ErrorKind, NoSession, error_page, no_session_page},
    state::AppState,
};

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
pub(super) async fn end_named_session(
    state: &AppState,
    session: &Session,
    claims: &tab::TabClaims,
) -> Result<(), String> {
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
