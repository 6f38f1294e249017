//! Criterion micro-benchmarks of the HTTP stack, in process (no sockets, no load generator): the
//! app's real router, built as `libero serve` builds it, answering one request at a time.
//!
//! - `bare_hello`: `/__bench/hello`, a bare axum handler outside every layer (the floor);
//! - `healthz`: `/healthz` through every layer the app puts on it;
//! - `api_without_session`: `POST /api/session_info` without a cookie — the guard's 401 path;
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
use criterion::{Criterion, criterion_group, criterion_main};
use leptos::config::LeptosOptions;
use libero::server::{Application, config::Config};
use tokio::runtime::Runtime;
use tower::ServiceExt;

const SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";

fn app(rt: &Runtime, dir: &std::path::Path) -> Router {
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
    libero::server::router(application.state().clone())
}

fn request(method: Method, path: &str) -> Request<Body> {
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
    request.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 40000))));
    request
}

async fn answer(router: &Router, method: Method, path: &str) -> StatusCode {
    let response = router.clone().oneshot(request(method, path)).await.unwrap();
    let status = response.status();
    black_box(axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap());
    status
}

fn stack(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let router = app(&rt, dir.path());
    let cases = [
        ("bare_hello", Method::GET, "/__bench/hello", StatusCode::OK),
        ("healthz", Method::GET, "/healthz", StatusCode::OK),
        ("api_without_session", Method::POST, "/api/session_info", StatusCode::UNAUTHORIZED),
        ("landing", Method::GET, "/", StatusCode::OK),
    ];
    let mut group = c.benchmark_group("stack");
    group.measurement_time(Duration::from_secs(4));
    for (name, method, path, expected) in cases {
        assert_eq!(rt.block_on(answer(&router, method.clone(), path)), expected, "{name}: {path}");
        group.bench_function(name, |b| b.to_async(&rt).iter(|| answer(&router, method.clone(), path)));
    }
    group.finish();
}

criterion_group!(benches, stack);
criterion_main!(benches);
