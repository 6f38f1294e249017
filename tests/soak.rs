//! Memory stays flat under sustained signed-in traffic in the default configuration: no
//! `METRICS_TOKEN`, so nobody scrapes `/metrics` and only the server's own upkeep timer folds the
//! latency histograms' samples away. The real binary; its memory read from `/proc/<pid>/status`.
#![cfg(target_os = "linux")]

mod common;

use std::time::{Duration, Instant};

use common::{CALLBACK_PASSWORD, CALLBACK_USER, OWNER_TOKEN, TENANT, TestApp, child::ChildServer};
use reqwest::{StatusCode, header};

/// Concurrent clients, each on its own keep-alive connection.
const CLIENTS: usize = 4;
/// Requests that bring the server to its working size (connections, caches, allocator): its
/// heap creeps by 2–6 bytes a request over the first tens of thousands.
const WARM_UP: usize = 30_000;
/// Requests over which the heap is watched, in [`SEGMENTS`] equal parts.
const MEASURED: usize = 30_000;
/// The measured requests are watched in parts: the allocator now and then grows the heap by a
/// one-off step (up to ~2 MB seen, anywhere in a run, and twice in one run), a leak grows it in
/// every part. The [`STEPS_LEFT_OUT`] parts that grew most are left out.
const SEGMENTS: usize = 6;
/// How many of the parts that grew most are not counted (the allocator's one-off steps).
const STEPS_LEFT_OUT: usize = 2;
/// What a request may add to the heap, on average over the other parts. Without upkeep every
/// request kept its latency sample: about 20 bytes a request here (15 → 35 MB over 756,000 requests
/// in production); with it, after the warm-up, 0–3.
const MAX_BYTES_PER_REQUEST: u64 = 10;

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
    let mut server = ChildServer::start(&[
        ("COMMERCE7_API_URL", &api),
        // Request logs off: they cost time and no memory. The start-up line stays (it has the port).
        ("RUST_LOG", "warn,libero=info"),
        // One malloc arena instead of one per thread: the heap grows in fewer one-off steps,
        // each of which could otherwise pass for a leak of this size.
        ("MALLOC_ARENA_MAX", "1"),
    ])
    .await;
    c7.set_app_url(&server.base);
    assert_eq!(c7.send_install(TENANT).await.unwrap().as_u16(), 200);
    let sign_in = TestApp::bare_client()
        .get(format!("{}/app?tenantId={TENANT}&account={OWNER_TOKEN}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), StatusCode::OK);
    let cookie = sign_in.headers()[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();

    let started = Instant::now();
    signed_in_requests(&server.base, &cookie, WARM_UP).await;
    let warm = Memory::of(server.pid());
    let mut growths = Vec::new();
    let mut last = warm;
    for _ in 0..SEGMENTS {
        signed_in_requests(&server.base, &cookie, MEASURED / SEGMENTS).await;
        let now = Memory::of(server.pid());
        growths.push(now.anon.saturating_sub(last.anon));
        last = now;
    }
    let end = last;
    let mut sorted = growths.clone();
    sorted.sort_unstable();
    let counted: u64 = sorted[..SEGMENTS - STEPS_LEFT_OUT].iter().sum();
    let max_counted = (MEASURED / SEGMENTS * (SEGMENTS - STEPS_LEFT_OUT)) as u64 * MAX_BYTES_PER_REQUEST / 1024;
    eprintln!(
        "soak: {} signed-in requests in {:.1?}; after warm-up VmRSS {} kB (RssAnon {} kB), after {MEASURED} more \
         VmRSS {} kB (RssAnon {} kB); heap growth per part {growths:?} kB, {counted} kB without the \
         {STEPS_LEFT_OUT} largest (at most {max_counted} kB)",
        WARM_UP + MEASURED,
        started.elapsed(),
        warm.rss,
        warm.anon,
        end.rss,
        end.anon,
    );
    assert!(
        counted < max_counted,
        "the heap grew by {counted} kB over {} signed-in requests after warm-up (per part: {growths:?} kB; \
         {warm:?} → {end:?})",
        MEASURED / SEGMENTS * (SEGMENTS - STEPS_LEFT_OUT)
    );

    server.terminate();
    assert!(server.exit_status().await.success());
}
