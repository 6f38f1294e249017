//! Criterion micro-benchmarks of the HTTP stack, in process (no sockets, no load generator): the
//! app's real router, built as `libero serve` builds it, answering one request at a time.
//!
//! - `bare_hello`: `/__bench/hello`, a bare axum handler outside every layer (the floor);
//! - `healthz`: `/healthz` through every layer the app puts on it;
//! - `api_without_session`: `POST /api/session_info` without a cookie — the guard's 401 path;
//! - `api_with_cookie`: the same call with a signed-in session's cookie (one row read, no write:
//!   the touch is not due);
//! - `landing`: `GET /`, the server-rendered landing page (no session).
//!
//! `make bench` measures the same over HTTP with wrk; this one isolates the stack's own CPU time,
//! so a layer's cost can be seen by adding or removing it. It needs the cargo feature `bench`:
//!
//! ```text
//! cargo bench --features bench --bench stack
//! ```

use std::{hint::black_box, net::SocketAddr, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::ConnectInfo,
    http::{Method, Request, StatusCode, header},
};
use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use leptos::config::LeptosOptions;
use libero::server::{config::Config, sessions::store::Handoff, startup::Application, state::AppState};
use tokio::runtime::Runtime;
use tower::ServiceExt;

mod support;

const SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";

/// The app's router and the `Cookie` header of a signed-in session.
fn app(rt: &Runtime, dir: &std::path::Path) -> (Router, String) {
    let url = format!("sqlite://{}?mode=rwc", dir.join("stack.db").display());
    let vars = [
        ("SESSION_SECRET", SECRET.to_owned()),
        ("DATABASE_URL", url),
        ("COMMERCE7_API_URL", "http://127.0.0.1:9/v1".to_owned()),
        ("SESSION_CLEANUP_INTERVAL", "0".to_owned()),
    ];
    let config = Config::from_lookup(|k| vars.iter().find(|(name, _)| *name == k).map(|(_, v)| v.clone()))
        .expect("bench settings");
    let options = LeptosOptions::builder()
        .output_name("libero")
        .site_root("target/site")
        .site_pkg_dir("pkg")
        .site_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .build();
    // Logged exactly as `libero serve` logs (its default filter, or RUST_LOG), into a sink.
    libero::server::telemetry::init_with_writer(config.log_format, std::io::sink, false);
    let application = rt.block_on(Application::build(config, options)).expect("the app builds");
    let state = application.state().clone();
    let cookie = rt.block_on(signed_in(&state));
    (libero::server::startup::router(state), cookie)
}

/// Installs the demo winery and signs Dana in, as a sign-in would; returns her `Cookie` header.
async fn signed_in(state: &AppState) -> String {
    let client = support::install_demo(&state.db).await;
    let auth = support::identity(&client);
    let now = Utc::now();
    let (_, handoff) = Handoff::issue(now);
    let (id, _) = state.sessions.store().create_signed_in(&auth, &handoff).await.expect("a session");
    let set_cookie = state.sessions.issue(id, time::Duration::hours(8));
    set_cookie.to_str().unwrap().split(';').next().unwrap().to_owned()
}

fn request(method: Method, path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "127.0.0.1:3000")
        .header(header::USER_AGENT, "criterion")
        .header(header::ACCEPT, "*/*")
        // A same-origin call, as the app's own pages make it (past the CSRF check).
        .header("sec-fetch-site", "same-origin")
        .body(Body::empty())
        .unwrap();
    if let Some(cookie) = cookie {
        request.headers_mut().insert(header::COOKIE, cookie.parse().unwrap());
    }
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    request
}

async fn answer(router: &Router, method: Method, path: &str, cookie: Option<&str>) -> StatusCode {
    let response = router.clone().oneshot(request(method, path, cookie)).await.unwrap();
    let status = response.status();
    black_box(axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap());
    status
}

fn stack(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (router, cookie) = app(&rt, dir.path());
    let cases = [
        ("bare_hello", Method::GET, "/__bench/hello", None, StatusCode::OK),
        ("healthz", Method::GET, "/healthz", None, StatusCode::OK),
        ("api_without_session", Method::POST, "/api/session_info", None, StatusCode::UNAUTHORIZED),
        ("api_with_cookie", Method::POST, "/api/session_info", Some(cookie.as_str()), StatusCode::OK),
        ("landing", Method::GET, "/", None, StatusCode::OK),
    ];
    let mut group = c.benchmark_group("stack");
    group.measurement_time(Duration::from_secs(4));
    for (name, method, path, cookie, expected) in cases {
        assert_eq!(rt.block_on(answer(&router, method.clone(), path, cookie)), expected, "{name}: {path}");
        group.bench_function(name, |b| b.to_async(&rt).iter(|| answer(&router, method.clone(), path, cookie)));
    }
    group.finish();
}

criterion_group!(benches, stack);
criterion_main!(benches);
