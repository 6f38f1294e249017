//! Bench-only routes, compiled with the cargo feature `bench` (`make bench` builds it, into its
//! own target directory `target/bench`; a normal or release build of the app never has them, and
//! a binary that has them refuses to start under `LEPTOS_ENV=PROD`: see
//! `config::refuse_bench_routes`). They give the benchmark floors measured by the same binary, in
//! the same run:
//!
//! - `GET /__bench/hello`: a bare axum handler outside every layer — the floor of the HTTP stack;
//! - `GET /__bench/app`: the signed-in dashboard (`/app`) rendered exactly as the guard renders
//!   it, through every layer but the guard: the session (and its tab token) is validated once, at
//!   the first request, and reused. `/app` against this twin is the guard's share of identical
//!   work (on PostgreSQL the guard of `/app` reads the dashboard's session list in its own
//!   statement; the twin, without a guard, runs the list's query alone);
//! - `GET /__bench/reauth?tenantId=…&account=…[&slow=1]`: the path the database-backed sessions
//!   replaced — every request verified with Commerce7 (the configured one, or with `slow=1` the
//!   one at `BENCH_SLOW_COMMERCE7_URL`), answering what `/api/session_info` answers.

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use tokio::sync::OnceCell;
use tower_sessions::Session;

use super::{
    commerce7::Commerce7,
    sessions::{
        CurrentSession, TabBootstrap,
        credential::{current_session, mint_tab_token},
    },
    state::AppState,
};

/// The re-authorisation path: one Commerce7 call per request, no session.
pub fn reauth_route() -> Router<AppState> {
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Query {
        tenant_id: String,
        account: String,
        slow: Option<String>,
    }
    static SLOW: std::sync::OnceLock<Option<Commerce7>> = std::sync::OnceLock::new();
    Router::new().route(
        "/__bench/reauth",
        get(|State(state): State<AppState>, axum::extract::Query(q): axum::extract::Query<Query>| async move {
            let commerce7 = if q.slow.is_some() {
                let slow = SLOW.get_or_init(|| {
                    let url = std::env::var("BENCH_SLOW_COMMERCE7_URL").ok()?;
                    Commerce7::new(&url, state.config.commerce7_timeout).ok()
                });
                match slow {
                    Some(slow) => slow.clone(),
                    None => {
                        return (StatusCode::SERVICE_UNAVAILABLE, "BENCH_SLOW_COMMERCE7_URL is not set")
                            .into_response();
                    }
                }
            } else {
                state.commerce7.clone()
            };
            match commerce7.verify_user(&q.tenant_id, &q.account).await {
                Ok(user) => axum::Json(serde_json::json!({
                    "tenant_id": q.tenant_id,
                    "user_name": user.display_name(),
                    "user_email": user.email,
                }))
                .into_response(),
                Err(_) => StatusCode::UNAUTHORIZED.into_response(),
            }
        }),
    )
}

/// The floor: no layer, no state.
pub fn bare_routes() -> Router {
    Router::new().route("/__bench/hello", get(|| async { "Hello, World!" }))
}

static TWIN: OnceCell<(CurrentSession, TabBootstrap)> = OnceCell::const_new();

/// The unguarded twin of `/app`; `render` is the Leptos renderer of the app's pages.
pub fn twin_route<R, F>(render: R) -> Router<AppState>
where
    R: Fn(Request<Body>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    Router::new().route(
        "/__bench/app",
        get(move |State(state): State<AppState>, mut req: Request| {
            let render = render.clone();
            async move {
                let session = req.extensions().get::<Session>().cloned();
                let twin = TWIN
                    .get_or_try_init(|| async {
                        let session = session.ok_or("no session layer")?;
                        let current = current_session(&state, &session)
                            .await
                            .map_err(|_| "session lookup failed")?
                            .ok_or("sign in first: the twin borrows that session")?;
                        let tab = mint_tab_token(&state, &current);
                        Ok::<_, &'static str>((current, tab))
                    })
                    .await;
                let (current, tab) = match twin {
                    Ok(twin) => twin.clone(),
                    Err(reason) => return (StatusCode::UNAUTHORIZED, reason).into_response(),
                };
                req.extensions_mut().insert(current);
                req.extensions_mut().insert(tab);
                *req.uri_mut() = "/app".parse().expect("a valid path");
                let mut response = render(req).await;
                response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
                response
            }
        }),
    )
}
