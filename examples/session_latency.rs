//! Load script: the latency of a signed-in request on the fast path (signed cookie + one indexed
//! `app_sessions` row) against a sign-in through the fake Commerce7 (one API call).
//!
//! ```text
//! cargo run --release --features ssr --example session_latency -- [requests] [commerce7-latency-ms]
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/libero_bench cargo run --release …
//! ```
//! Everything runs on loopback; the loops are bounded by the request count.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use leptos::config::LeptosOptions;
use libero::{
    fake_commerce7::{FakeCommerce7, FakeConfig},
    server::{Application, config::Config},
};

fn summary(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{label:<44} n={:<5} mean={:>8.2?} p50={:>8.2?} p95={:>8.2?} max={:>8.2?}",
        samples.len(),
        mean,
        pick(0.5),
        pick(0.95),
        pick(1.0)
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let requests: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(500);
    let c7_latency = Duration::from_millis(args.next().and_then(|a| a.parse().ok()).unwrap_or(0));

    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));

    let c7 = FakeCommerce7::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        FakeConfig::demo("http://127.0.0.1:9", "bench", "bench-password"),
    )
    .await
    .expect("fake Commerce7");
    let vars = [
        ("SESSION_SECRET", "bench-secret-0123456789abcdef0123456789abcdef".to_owned()),
        ("DATABASE_URL", database_url.clone()),
        ("COOKIE_SECURE", "false".to_owned()),
        ("COMMERCE7_API_URL", c7.api_url()),
        ("COMMERCE7_USER", "bench".to_owned()),
        ("COMMERCE7_PASSWORD", "bench-password".to_owned()),
        ("SESSION_TOUCH_INTERVAL", "60s".to_owned()),
        ("RATE_LIMIT_SIGN_IN", "0".to_owned()),
    ];
    let config = Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).expect("settings");
    let options = LeptosOptions::builder()
        .output_name("libero")
        .site_root("target/site")
        .site_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .build();
    let app = Application::build(config, options).await.expect("app");
    let base = format!("http://{}", app.local_addr());
    c7.set_app_url(&base);
    tokio::spawn(app.run_until(std::future::pending()));
    assert_eq!(c7.send_install("demo-winery").await.expect("install").as_u16(), 200);
    c7.set_latency(c7_latency);

    let sign_in_url = format!("{base}/app?tenantId=demo-winery&account=demo-owner-token");
    let no_redirects = || reqwest::Client::builder().redirect(reqwest::redirect::Policy::none());

    // Sign-ins: a new browser each time, so every one verifies with Commerce7.
    let mut sign_ins = Vec::with_capacity(requests);
    for _ in 0..requests {
        let client = no_redirects().build().unwrap();
        let started = Instant::now();
        let response = client.get(&sign_in_url).send().await.expect("sign-in");
        sign_ins.push(started.elapsed());
        assert_eq!(response.status().as_u16(), 303);
    }

    // Fast path: one signed-in browser.
    let browser = no_redirects().cookie_store(true).build().unwrap();
    assert_eq!(browser.get(&sign_in_url).send().await.unwrap().status().as_u16(), 303);
    let calls_before = c7.user_calls();
    let (mut pages, mut api) = (Vec::with_capacity(requests), Vec::with_capacity(requests));
    for _ in 0..requests {
        let started = Instant::now();
        let response = browser.get(format!("{base}/app")).send().await.unwrap();
        let _ = response.bytes().await;
        pages.push(started.elapsed());
        let started = Instant::now();
        let response = browser.post(format!("{base}/api/session_info")).header("origin", &base).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let _ = response.bytes().await;
        api.push(started.elapsed());
    }
    assert_eq!(c7.user_calls(), calls_before, "the fast path never calls Commerce7");

    println!("database: {}", if database_url.starts_with("postgres") { "postgres" } else { "sqlite" });
    println!("Commerce7 latency added by the fake: {c7_latency:?}");
    summary("sign-in through Commerce7 (GET /app?…)", sign_ins);
    summary("signed-in dashboard, fast path (GET /app)", pages);
    summary("signed-in server function (POST /api/session_info)", api);
}
