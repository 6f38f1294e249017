//! What every request shares: handlers read it with `State`, components and server functions with
//! `expect_context::<AppState>()`.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::prelude::LeptosOptions;

use super::{commerce7::Commerce7, config::Config, db::Db, ratelimit, sessions};

/// Shared state of every request: handlers read it with `State`, components and server
/// functions with `expect_context::<AppState>()`. One `Arc`: every middleware and handler
/// clones it per request, so a clone must be one reference count, not one per field (a profile
/// of a signed-in request found the field-by-field clone and drop: bench/profile.md).
#[derive(Clone)]
pub struct AppState(pub(super) Arc<State>);

impl std::ops::Deref for AppState {
    type Target = State;

    fn deref(&self) -> &State {
        &self.0
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

/// What [`AppState`] shares.
pub struct State {
    /// Where the site lives and how to render it.
    pub leptos_options: LeptosOptions,
    /// The connection pool.
    pub db: Db,
    /// The parsed settings.
    pub config: Arc<Config>,
    /// The session cookie and its store.
    pub sessions: sessions::SessionCookies,
    /// Mints and verifies the per-tab session tokens.
    pub tab_tokens: sessions::tab::TabTokens,
    /// The Commerce7 API client.
    pub commerce7: Commerce7,
    /// The Prometheus recorder's handle.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Per-IP rate limits.
    pub limits: ratelimit::RateLimiters,
}
