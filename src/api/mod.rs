//! Server functions (`/api/…`) and the types they share with the browser.

pub mod reports;
pub mod session;
pub mod sessions;
pub mod settings;
pub mod tab;

pub use crate::error::AppError;

/// Server-side helpers shared by the server functions.
#[cfg(feature = "ssr")]
pub mod ssr {
    pub use crate::error::fail;

    use super::AppError;
    use crate::server::{sessions::CurrentSession, state::AppState};
    use leptos::prelude::*;

    /// The guard's validated session for this request, or 401. The first line of every
    /// protected server function.
    pub fn require_session() -> Result<CurrentSession, AppError> {
        with_context::<http::request::Parts, _>(|parts| parts.extensions.get::<CurrentSession>().cloned())
            .flatten()
            .ok_or_else(|| fail(AppError::Unauthorized))
    }

    /// Logs a database error with context and turns it into a 503 for the browser.
    pub fn unavailable(err: impl std::fmt::Display, what: &str) -> AppError {
        tracing::error!(error = %err, "{what}");
        fail(AppError::Unavailable)
    }

    /// The shared state.
    pub fn state() -> AppState {
        expect_context::<AppState>()
    }

    /// The session handles' key, drawn from `SESSION_SECRET`.
    pub fn handles() -> crate::server::sessions::manage::SessionHandles {
        crate::server::sessions::manage::SessionHandles::new(state().config.session_secret.expose())
    }

    /// A timestamp as the browser gets it (RFC 3339, whole seconds, UTC).
    pub fn rfc3339(at: chrono::DateTime<chrono::Utc>) -> String {
        at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }

    /// A form the browser posted itself (no WebAssembly yet, or none at all) asks for HTML: it
    /// gets `303 → page`, never JSON. The redirect carries a fresh handoff code for this
    /// session, so the page opens where the browser keeps no cookie (not when the form's tab token
    /// had expired: that one may act, never become a live credential), and the error, if any, in
    /// leptos's `__path`/`__err` query — signed for this session (`__sig`, see
    /// `server::sessions::form_error`), so that only errors the server produced are ever shown.
    /// The code is stored only while the session's tab tokens are at the generation the form was
    /// let in at — or at `moved_to`, the one this call moved them to (*Sign out all other
    /// sessions*): a form let in just before that sign-out gets no credential of the new one.
    /// A call from the app itself (JSON) is left alone.
    pub async fn answer_plain_form(page: &str, server_fn_path: &str, error: Option<&AppError>, moved_to: Option<i64>) {
        use crate::server::{
            db::now,
            sessions::{
                form_error::{ERROR_PARAM, FormErrors, PATH_PARAM, SIGNATURE_PARAM},
                guard::ExpiredTabToken,
                store::Handoff,
            },
        };
        use http::{HeaderValue, StatusCode, header};
        use leptos::server_fn::error::ServerFnUrlError;

        // What the request says, read in place: a JSON call (every call from the app) stops here.
        // A form whose tab token had expired acts once more, but gets no fresh credential.
        let read = with_context::<http::request::Parts, _>(|parts| {
            let fresh_credential = parts.extensions.get::<ExpiredTabToken>().is_none();
            let current = || parts.extensions.get::<CurrentSession>().cloned();
            crate::server::sessions::accepts_html(&parts.headers).then(|| (current(), fresh_credential))
        });
        let Some((current, fresh_credential)) = read.flatten() else { return };
        let Some(response) = use_context::<leptos_axum::ResponseOptions>() else { return };
        let location = match (current.as_ref(), error) {
            // Without a session there is no page to go back to: the page that says so.
            (None, _) | (_, Some(AppError::Unauthorized)) => "/resume".to_owned(),
            (Some(current), error) => {
                let state = state();
                let (code, handoff) = Handoff::issue(now());
                let stored = if fresh_credential {
                    let generation = moved_to.unwrap_or(current.auth.tab_generation);
                    state.sessions.store().set_handoff(&current.row_id, &handoff, Some(generation)).await
                } else {
                    Ok(false)
                };
                let code = match stored {
                    Ok(true) => Some(code),
                    // Gone, unreachable or not to be handed out: the page then decides by the
                    // cookie (or the tab's own resume), as any page.
                    Ok(false) => None,
                    Err(err) => {
                        tracing::warn!(error = %err, "could not store a handoff code for a form's answer");
                        None
                    }
                };
                let mut query = form_urlencoded::Serializer::new(String::new());
                if let Some(code) = &code {
                    query.append_pair("handoff", code);
                }
                if let Some(error) = error {
                    let encoded = ServerFnUrlError::new(server_fn_path, error.clone());
                    let encoded = encoded.to_url("http://libero/").ok();
                    let err = encoded.as_ref().and_then(|url| {
                        url.query_pairs().find(|(name, _)| name == ERROR_PARAM).map(|(_, v)| v.into_owned())
                    });
                    if let Some(err) = err {
                        let signature = FormErrors::new(state.config.session_secret.expose()).sign(
                            &current.row_id,
                            server_fn_path,
                            &err,
                        );
                        query
                            .append_pair(PATH_PARAM, server_fn_path)
                            .append_pair(ERROR_PARAM, &err)
                            .append_pair(SIGNATURE_PARAM, &signature);
                    }
                }
                let query = query.finish();
                if query.is_empty() { page.to_owned() } else { format!("{page}?{query}") }
            }
        };
        if let Ok(location) = HeaderValue::from_str(&location) {
            response.set_status(StatusCode::SEE_OTHER);
            response.insert_header(header::LOCATION, location);
        }
    }
}
