//! Load script: the latency of a signed-in request on the fast path (signed cookie + one indexed
//! `app_sessions` row) against a sign-in through the fake Commerce7 (one API call).
//!
//! ```text
//! cargo run --release --features ssr --example session_latency -- [requests] [commerce7-latency-ms]
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/libero_bench cargo run --release …
//! ```
//! Everything runs on loopback; the loops are bounded by the request count.

mod support;

use std::time::{Duration, Instant};

fn summary(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "{label:<52} n={:<5} mean={:>9.2?} p50={:>9.2?} p95={:>9.2?} max={:>9.2?}",
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

    let bench = support::start(&[("SESSION_TOUCH_INTERVAL", "60s")]).await;
    let base = &bench.base;
    bench.c7.set_latency(c7_latency);
    let sign_in_url = format!("{base}/app?tenantId=demo-winery&account=demo-owner-token");

    // Sign-ins: a new browser each time, so every one verifies with Commerce7.
    let mut sign_ins = Vec::with_capacity(requests);
    for _ in 0..requests {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        let started = Instant::now();
        let response = client.get(&sign_in_url).send().await.expect("sign-in");
        sign_ins.push(started.elapsed());
        assert_eq!(response.status().as_u16(), 303);
    }

    // Fast path: the signed-in browser.
    let calls_before = bench.c7.user_calls();
    let (mut pages, mut api) = (Vec::with_capacity(requests), Vec::with_capacity(requests));
    for _ in 0..requests {
        let started = Instant::now();
        let response = bench.browser.get(format!("{base}/app")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let _ = response.bytes().await;
        pages.push(started.elapsed());
        let started = Instant::now();
        let response =
            bench.browser.post(format!("{base}/api/session_info")).header("origin", base).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let _ = response.bytes().await;
        api.push(started.elapsed());
    }
    assert_eq!(bench.c7.user_calls(), calls_before, "the fast path never calls Commerce7");

    println!("database: {}", bench.backend);
    println!("Commerce7 latency added by the fake: {c7_latency:?}");
    summary("sign-in through Commerce7 (GET /app?…)", sign_ins);
    summary("signed-in dashboard, fast path (GET /app)", pages);
    summary("signed-in server function (POST /api/session_info)", api);
}
