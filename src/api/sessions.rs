//! "Your sessions": the signed-in user's own active sessions for this winery, and signing them
//! out. Scoped to the same tenant *and* the same user in the SQL itself
//! (`server::sessions::manage`); the browser sees opaque handles, never row ids.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;

/// One of the user's sessions, as the dashboard lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MySession {
    /// Opaque name to sign this session out with (not the row id, not the token).
    pub handle: String,
    /// Browser and operating system, e.g. "Chrome on Windows".
    pub device: String,
    /// IP address at sign-in.
    pub ip_address: Option<String>,
    /// Sign-in time, RFC 3339.
    pub signed_in_at: String,
    /// Last request, RFC 3339 (to within `SESSION_TOUCH_INTERVAL`).
    pub last_active_at: String,
    /// Whether this is the session of the browser asking.
    pub current: bool,
}

/// The signed-in user's active sessions for this winery: this browser's first, then the most
/// recently used.
#[server(prefix = "/api", endpoint = "list_my_sessions", output = crate::codec::Json, client = crate::tab::TabClient)]
pub async fn list_my_sessions() -> Result<Vec<MySession>, AppError> {
    use crate::api::ssr::{handles, require_session, rfc3339, state, unavailable};
    use crate::server::sessions::{manage, user_agent::Device};

    let current = require_session()?;
    let me = &current.auth;
    let state = state();
    let handles = handles();
    let rows = manage::list_own(state.sessions.store(), me.client_id, &me.user_id, state.config.session_idle_timeout)
        .await
        .map_err(|e| unavailable(e, "listing the user's sessions failed"))?;
    let mut sessions: Vec<MySession> = rows
        .iter()
        .map(|row| MySession {
            handle: handles.of(&row.id),
            device: Device::parse(row.user_agent.as_deref()).label(),
            ip_address: row.ip_address.clone(),
            signed_in_at: rfc3339(row.created_at),
            last_active_at: rfc3339(row.last_activity_at),
            current: row.id == current.row_id,
        })
        .collect();
    sessions.sort_by_key(|s| !s.current);
    Ok(sessions)
}

/// [`sign_out_session`]'s work.
#[cfg(feature = "ssr")]
async fn sign_out_one(handle: String) -> Result<(), AppError> {
    use crate::api::ssr::{fail, handles, require_session, state, unavailable};
    use crate::server::sessions::manage;

    let current = require_session()?;
    let me = &current.auth;
    let handles = handles();
    if handles.names(&handle, &current.row_id) {
        return Err(fail(AppError::BadRequest {
            message: "to sign out of this browser, use Sign out at the top of the page".to_owned(),
        }));
    }
    let ended = manage::end_own(&state().db, me.client_id, &me.user_id, &handles, &handle)
        .await
        .map_err(|e| unavailable(e, "signing a session out failed"))?;
    if !ended {
        return Err(fail(AppError::SessionNotFound));
    }
    tracing::info!(tenant_id = %me.tenant_id, user_id = %me.user_id, "user signed out one of their other sessions");
    Ok(())
}

/// Signs out one of the user's *other* sessions. A handle that is not one of the user's own
/// sessions gets 404 (whether it exists for someone else or not at all); this browser's own
/// session is refused — that is what *Sign out* at the top is for. A plain form post is
/// answered with a redirect to the dashboard.
#[server(prefix = "/api", endpoint = "sign_out_session", output = crate::codec::Json, client = crate::tab::TabClient)]
pub async fn sign_out_session(handle: String) -> Result<(), AppError> {
    use leptos::server_fn::ServerFn as _;

    let done = sign_out_one(handle).await;
    crate::api::ssr::answer_plain_form(ssr::DASHBOARD, SignOutSession::PATH, done.as_ref().err(), None).await;
    done
}

/// What *Sign out all other sessions* did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OthersSignedOut {
    /// How many other sessions ended.
    pub ended: u64,
    /// This tab's new credential when it asked with its tab token (`Authorization: Bearer`):
    /// every tab token of the current session minted before — another tab's, or a copy of this
    /// one's elsewhere — is refused from now on. `None` for a plain form or a cookie: that page
    /// gets a fresh token by the redirect it is answered with.
    pub tab: Option<super::tab::RenewedTab>,
}

/// Signs out every session of the user for this winery except this browser's, and every tab
/// token of this session but the fresh one it returns to the tab asking (a copy of a tab token
/// shares the row, so ending other rows alone would not reach it).
#[server(prefix = "/api", endpoint = "sign_out_other_sessions", output = crate::codec::Json, client = crate::tab::TabClient)]
pub async fn sign_out_other_sessions() -> Result<OthersSignedOut, AppError> {
    use leptos::server_fn::ServerFn as _;

    let done = ssr::sign_out_others().await;
    let moved_to = done.as_ref().ok().map(|(_, generation)| *generation);
    crate::api::ssr::answer_plain_form(ssr::DASHBOARD, SignOutOtherSessions::PATH, done.as_ref().err(), moved_to).await;
    done.map(|(signed_out, _)| signed_out)
}

#[cfg(feature = "ssr")]
mod ssr {
    use crate::{api::AppError, server::sessions::CurrentSession};

    /// Where the panel lives.
    pub const DASHBOARD: &str = "/app";

    /// Ends the user's other sessions and moves this session's tab-token generation on; the tab
    /// asking gets a token of the new generation, which is returned too.
    pub async fn sign_out_others() -> Result<(super::OthersSignedOut, i64), AppError> {
        use crate::api::ssr::{fail, require_session, state, unavailable};
        use crate::server::sessions::{Credential, credential::mint_tab_token, manage};

        let current = require_session()?;
        let state = state();
        let me = &current.auth;
        let ended = manage::end_own_others(
            &state.db,
            me.client_id,
            &me.user_id,
            &current.row_id,
            state.config.session_idle_timeout,
        )
        .await
        .map_err(|e| unavailable(e, "signing other sessions out failed"))?;
        let generation = state
            .sessions
            .store()
            .next_tab_generation(&current.row_id, me.tab_generation)
            .await
            .map_err(|e| unavailable(e, "ending this session's other tab tokens failed"))?
            .ok_or_else(|| fail(AppError::Unauthorized))?;
        let mut auth = (*current.auth).clone();
        auth.tab_generation = generation;
        let renewed = CurrentSession { auth: std::sync::Arc::new(auth), ..current.clone() };
        let minted = mint_tab_token(&state, &renewed);
        tracing::info!(
            tenant_id = %me.tenant_id,
            user_id = %me.user_id,
            ended,
            "user signed out their other sessions and this session's other tab tokens"
        );
        let tab = (current.via == Credential::Bearer).then(|| super::super::tab::RenewedTab {
            token: minted.token,
            tenant: minted.tenant_id,
            theme: minted.theme.as_str().to_owned(),
            expires_in: minted.expires_in,
        });
        Ok((super::OthersSignedOut { ended, tab }, generation))
    }
}
