//! Server functions (`/api/…`) and the types they share with the browser.

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
    use crate::server::{AppState, sessions::CurrentSession};
    use leptos::prelude::*;

    /// The guard's validated session for this request, or 401. The first line of every
    /// protected server function.
    pub fn require_session() -> Result<CurrentSession, AppError> {
        use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<CurrentSession>().cloned())
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
}
