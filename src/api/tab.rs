//! The tab's credential: renewing its tab token, exchanging it for a handoff code (a frame
//! reload without the cookie), and signing out with it.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;
use crate::tab::TabClient;

/// A fresh tab token for the same session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewedTab {
    /// The tab token (send it as `Authorization: Bearer`).
    pub token: String,
    /// Its tenant.
    pub tenant: String,
    /// `light` or `dark`.
    pub theme: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// A new tab token for the session of the presented one. Only a tab token may renew itself: a
/// cookie alone gets 401 (it may belong to another winery's tab).
#[server(prefix = "/api", endpoint = "renew_tab_token", output = crate::codec::Json, client = TabClient)]
pub async fn renew_tab_token() -> Result<RenewedTab, AppError> {
    use crate::server::sessions::credential::mint_tab_token;

    let current = ssr::require_bearer()?;
    let minted = mint_tab_token(&super::ssr::state(), &current);
    Ok(RenewedTab {
        token: minted.token,
        tenant: minted.tenant_id,
        theme: minted.theme.as_str().to_owned(),
        expires_in: minted.expires_in,
    })
}

/// A handoff code (single use, 60 s) for the session of the presented tab token: the page
/// reloads with it when the browser kept no cookie. Tab token only, like the renewal.
#[server(prefix = "/api", endpoint = "resume_tab", output = crate::codec::Json, client = TabClient)]
pub async fn resume_tab() -> Result<String, AppError> {
    use crate::api::ssr::{fail, state, unavailable};
    use crate::server::{db::now, sessions::store::Handoff};

    let current = ssr::require_bearer()?;
    let (code, handoff) = Handoff::issue(now());
    match state().sessions.store().set_handoff(&current.row_id, &handoff, Some(current.auth.tab_generation)).await {
        Ok(true) => Ok(code),
        Ok(false) => Err(fail(AppError::Unauthorized)),
        Err(err) => Err(unavailable(err, "storing a handoff code failed")),
    }
}

/// Signs this tab's session out: deletes its row (every instance sees it at once), and clears
/// the cookie too when the cookie names that same session (never another winery's).
#[server(prefix = "/api", endpoint = "logout", output = crate::codec::Json, client = TabClient)]
pub async fn logout() -> Result<(), AppError> {
    use crate::api::ssr::{require_session, state, unavailable};
    use crate::server::sessions::hash_token;

    let current = require_session()?;
    state()
        .sessions
        .store()
        .delete_key(&current.row_id)
        .await
        .map_err(|err| unavailable(err, "deleting the session at logout failed"))?;
    let cookie_session =
        with_context::<http::request::Parts, _>(|parts| parts.extensions.get::<tower_sessions::Session>().cloned())
            .flatten();
    if let Some(session) = cookie_session
        && session.id().is_some_and(|id| hash_token(&id.to_string()) == current.row_id)
    {
        // The row is already gone; this empties the session so the layer clears the cookie.
        let _ = session.flush().await;
    }
    tracing::info!(tenant_id = %current.auth.tenant_id, via = ?current.via, "merchant signed out");
    Ok(())
}

#[cfg(feature = "ssr")]
mod ssr {
    use crate::{
        api::{AppError, ssr::fail},
        server::sessions::{Credential, CurrentSession},
    };

    /// The session of this request if a tab token authenticated it, else 401.
    pub fn require_bearer() -> Result<CurrentSession, AppError> {
        crate::api::ssr::require_session()
            .ok()
            .filter(|current| current.via == Credential::Bearer)
            .ok_or_else(|| fail(AppError::Unauthorized))
    }
}
