//! Memory stays flat under sustained signed-in traffic in the default configuration: no
//! `METRICS_TOKEN`, so nobody scrapes `/metrics` and only the server's own upkeep timer folds the
//! latency histograms' samples away. The real binary; its RSS read from `/proc/<pid>/status`.
#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use common::{CALLBACK_PASSWORD, CALLBACK_USER, OWNER_TOKEN, TENANT, TestApp, child::ChildServer};
use reqwest::{StatusCode, header};

/// Concurrent clients, each on its own keep-alive connection.
const CLIENTS: usize = 4;
/// Requests that bring the server to its working size (connections, allocator arenas, caches:
/// its heap still creeps by ~200 kB over the first 40,000 requests, most of it early).
const WARM_UP: usize = 20_000;
/// Requests over which the heap is watched.
const MEASURED: usize = 30_000;
/// What the measured requests may add to the heap. Without upkeep every request kept its latency
/// sample: ~21 bytes a request here (640 kB over these 30,000; 15 → 35 MB over 756,000 in
/// production); with it, 40–124 kB in the runs measured while writing this test.
const MAX_GROWTH_KB: u64 = 320;

/// The server's memory from `/proc/<pid>/status`, in kB.
#[derive(Debug, Clone, Copy)]
struct Memory {
    /// `VmRSS`: everything resident.
    rss: u64,
    /// `RssAnon`: the heap and stacks, where a leak shows. The rest of `VmRSS` is mostly the
    /// debug binary's code pages, which fault in as code runs for the first time.
    anon: u64,
}

impl Memory {
    fn of(pid: u32) -> Self {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server's /proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
                .unwrap_or_else(|| panic!("a {name} line in /proc/{pid}/status"))
        };
        Self { rss: field("VmRSS:"), anon: field("RssAnon:") }
    }
}

/// Sends `total` signed-in `POST /api/session_info` requests from [`CLIENTS`] clients at once.
async fn signed_in_requests(base: &str, cookie: &str, total: usize) {
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let (url, cookie, origin) = (format!("{base}/api/session_info"), cookie.to_owned(), base.to_owned());
            tokio::spawn(async move {
                for _ in 0..total / CLIENTS {
                    let response = client
                        .post(&url)
                        .header(header::COOKIE, &cookie)
                        .header(header::ORIGIN, &origin)
                        .header("sec-fetch-site", "same-origin")
                        .send()
                        .await
                        .expect("the server answers");
                    assert_eq!(response.status(), StatusCode::OK, "still signed in");
                    response.bytes().await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_flat_under_signed_in_traffic_without_metrics_token() {
    let c7 = fake_commerce7::FakeCommerce7::start(
        ([127, 0, 0, 1], 0).into(),
        fake_commerce7::FakeConfig::demo("http://127.0.0.1:9", CALLBACK_USER, CALLBACK_PASSWORD),
    )
    .await
    .unwrap();
    let api = c7.api_url();
    // Request logs off: they cost time and no memory. The start-up line stays (it gives the port).
    let mut server = ChildServer::start(&[("COMMERCE7_API_URL", &api), ("RUST_LOG", "warn,libero=info"), ("LIBERO_EXP", "1"), ("MALLOC_ARENA_MAX", "1"), (std::env::var("EXP").unwrap().as_str(), "1")]).await;
    c7.set_app_url(&server.base);
    assert_eq!(c7.send_install(TENANT).await.unwrap().as_u16(), 200);
    let sign_in = TestApp::bare_client()
        .get(format!("{}/app?tenantId={TENANT}&account={OWNER_TOKEN}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), StatusCode::SEE_OTHER);
    let cookie = sign_in.headers()[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();

    let started = Instant::now();
    signed_in_requests(&server.base, &cookie, WARM_UP).await;
    let warm = Memory::of(server.pid());
    for i in 0..6 { signed_in_requests(&server.base, &cookie, MEASURED / 3).await; eprintln!("+{}: {:?}", (i + 1) * MEASURED / 3, Memory::of(server.pid())); }
    let end = Memory::of(server.pid());
    let growth = end.anon.saturating_sub(warm.anon);
    eprintln!(
        "soak: {} signed-in requests in {:.1?}; after warm-up VmRSS {} kB (RssAnon {} kB), after {MEASURED} more \
         VmRSS {} kB (RssAnon {} kB): heap +{growth} kB",
        WARM_UP + MEASURED,
        started.elapsed(),
        warm.rss,
        warm.anon,
        end.rss,
        end.anon,
    );
    assert!(
        growth < MAX_GROWTH_KB,
        "the heap grew by {growth} kB over {MEASURED} signed-in requests after warm-up ({warm:?} → {end:?})"
    );

    server.terminate();
    assert!(server.exit_status().await.success());
}
