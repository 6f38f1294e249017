//! The wiring: the only module that puts the others together into the HTTP application.

use std::{future::Future, io, net::SocketAddr, sync::Arc};

use axum::{Router, middleware::from_fn_with_state, routing::post};
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;

#[cfg(feature = "bench")]
use super::bench;
use super::{
    commerce7::Commerce7,
    config::Config,
    csp,
    db::Db,
    delivery, error_page, http, metrics, ratelimit,
    sessions::{self, AppSessionStore, SessionCookies},
    state::{AppState, State},
    webhooks,
};
use crate::app::{App, shell};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The database could not be opened.
    #[error("cannot connect to the database: {0}")]
    Database(#[source] sqlx::Error),
    /// The HTTP client for Commerce7 could not be built.
    #[error("cannot build the Commerce7 client: {0}")]
    Commerce7(#[from] reqwest::Error),
    /// The front end's files are not where the build's hash file says.
    #[error("cannot serve the front end: {0}")]
    FrontEnd(#[from] delivery::FrontEndError),
    /// A migration failed: the schema is not what the code expects.
    #[error("database migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// The listening address is taken or not allowed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

/// A built, bound server, ready to run (the zero-to-production `Application`).
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    /// Connects to the database, applies migrations, and binds `leptos_options.site_addr`
    /// (port 0 picks a free port, as the tests do).
    pub async fn build(config: Config, leptos_options: LeptosOptions) -> Result<Self, StartupError> {
        delivery::FrontEnd::resolve(&leptos_options)?.install();
        let db = Db::connect(config.database_url.expose()).await.map_err(StartupError::Database)?;
        db.migrate().await?;
        let addr = leptos_options.site_addr;
        let listener = TcpListener::bind(addr).await.map_err(|source| StartupError::Bind { addr, source })?;
        let store = Arc::new(AppSessionStore::new(db.clone(), config.session_idle_timeout));
        let sessions = SessionCookies::new(config.session_secret.expose(), config.cookie_secure, store);
        let tab_tokens = sessions::tab::TabTokens::new(config.session_secret.expose());
        let commerce7 = Commerce7::new(&config.commerce7_api_url, config.commerce7_timeout)?;
        if config.commerce7_user.is_none() || config.commerce7_password.is_none() {
            tracing::warn!(
                "COMMERCE7_USER/COMMERCE7_PASSWORD are not set: install and uninstall callbacks will be refused"
            );
        }
        let limits = ratelimit::RateLimiters::new(config.rate_limit_sign_in, config.rate_limit_callbacks);
        let state = AppState(Arc::new(State {
            leptos_options,
            db,
            config: Arc::new(config),
            sessions,
            tab_tokens,
            commerce7,
            metrics: metrics::recorder(),
            limits,
        }));
        let router = router(state.clone());
        Ok(Self { listener, router, state })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// The shared state (the tests use its database handle).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight and closes the pool.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send + 'static) -> io::Result<()> {
        let db = self.state.db.clone();
        let mut background = Vec::new();
        if let Some(interval) = self.state.config.session_cleanup_interval {
            background.push(tokio::spawn(sessions::cleanup::run_periodically(
                db.clone(),
                interval,
                self.state.config.session_idle_timeout,
            )));
        }
        background
            .push(tokio::spawn(metrics::run_upkeep_periodically(self.state.metrics.clone(), metrics::UPKEEP_INTERVAL)));
        let limits = self.state.limits.clone();
        background.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                ticker.tick().await;
                limits.shrink();
            }
        }));
        let result = axum::serve(self.listener, self.router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(shutdown)
            .await;
        background.iter().for_each(tokio::task::JoinHandle::abort);
        // Closing waits for every checked-out connection; never let that hang a shutdown.
        let timeout = std::time::Duration::from_secs(10);
        if tokio::time::timeout(timeout, db.close()).await.is_err() {
            tracing::warn!("database pool did not close within 10 s; exiting anyway");
        }
        result
    }
}

/// The Leptos route list, generated once per process.
///
/// Generating it renders the whole app with a *process-global* flag set that parks every
/// `Resource` first polled meanwhile, for good (leptos_server's `SuppressResourceLoad`, see
/// leptos-rs/leptos#4773). A process that built a second router while serving — the integration
/// tests start one app per test in one process — would now and then leave an `/app` render
/// waiting forever. Once per process, before any router exists, nothing can be rendering yet.
fn route_list() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> = std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The whole HTTP application: operational endpoints, Leptos pages and server functions, static
/// files, and the layers every response goes through.
///
/// Only what can be signed in to — pages, server functions, `/logout`, `/resume` and the
/// fallback — sits behind the CSRF check, the session and the guard. Health and readiness,
/// `/metrics`, the Commerce7 callbacks and `/pkg` files answer without a session. Every answer
/// goes through the request-id layers, the Content-Security-Policy layer and one stack — trace,
/// default headers, metrics — and all but the probes' and the callbacks' few bytes through
/// compression.
pub fn router(state: AppState) -> Router {
    let routes = route_list();
    let context_state = state.clone();
    let provide_state = move || {
        provide_context(context_state.clone());
        csp::provide_request_nonce();
    };
    let options = state.leptos_options.clone();

    let signed_in = Router::new()
        .route("/logout", post(sessions::logout::logout))
        .route("/resume", axum::routing::get(sessions::logout::resume_page))
        .leptos_routes_with_context(&state, routes, provide_state.clone(), {
            let options = options.clone();
            move || shell(options.clone())
        });
    #[cfg(feature = "bench")]
    let signed_in = signed_in.merge(bench::reauth_route()).merge(bench::twin_route(
        leptos_axum::render_app_async_with_context(provide_state.clone(), {
            let options = options.clone();
            move || shell(options.clone())
        }),
    ));
    let signed_in = signed_in
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(provide_state, shell))
        // Outermost first: the CSRF check, then the session it lets through, then the guard.
        .layer(
            ServiceBuilder::new()
                .layer(from_fn_with_state(state.clone(), sessions::csrf_guard))
                .layer(from_fn_with_state(state.sessions.clone(), sessions::session_layer))
                .layer(from_fn_with_state(state.clone(), sessions::session_guard)),
        );

    let callbacks = Router::new()
        .route("/install", post(webhooks::install))
        .route("/uninstall", post(webhooks::uninstall))
        .route_layer(from_fn_with_state(state.clone(), webhooks::limit_callbacks));
    // Compression where a body can reach its 1 KiB threshold: pages and server functions,
    // /metrics and /pkg files. The probes and the callbacks answer a few bytes of JSON.
    let compressible = Router::new()
        .route("/metrics", axum::routing::get(http::metrics))
        .merge(delivery::pkg_routes(&options))
        .merge(signed_in)
        .layer(delivery::compression());
    let [referrer, nosniff, cache] = http::default_headers();
    let policy =
        csp::ContentSecurityPolicy::new(&state.config.frame_ancestors, state.config.commerce7_frame_script.as_deref());
    let router = Router::new()
        .merge(http::operational_routes())
        .merge(callbacks)
        .merge(compressible)
        // On each route and the fallback, innermost first: the metrics (which need the matched
        // route template), the default headers, the trace (the request's span around them all).
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(SetResponseHeaderLayer::if_not_present(referrer.0, referrer.1))
        .layer(SetResponseHeaderLayer::if_not_present(nosniff.0, nosniff.1))
        .layer(SetResponseHeaderLayer::if_not_present(cache.0, cache.1))
        .layer(http::trace())
        // The error pages' settings (SUPPORT_URL) for every request, wherever its page is made.
        .layer(error_page::settings_layer(&state.config))
        // Outermost first: a client's request id is kept only if it is a bounded token, else
        // made; it goes back on the answer; then the answer's Content-Security-Policy.
        .layer(from_fn_with_state(policy, csp::layer))
        .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(tower_http::request_id::MakeRequestUuid))
        .layer(tower::util::MapRequestLayer::new(http::sanitize_request_id::<axum::body::Body>))
        .with_state(state.clone());
    #[cfg(feature = "bench")]
    let router = router.merge(bench::bare_routes());
    router
}
