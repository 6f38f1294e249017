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
/// Signed-in requests in each half: the first half warms the allocator up, the second is measured.
const REQUESTS_PER_HALF: usize = 0;
/// What the second half may add to the resident set. Without upkeep the histogram samples alone
/// add about 16 bytes a request (measured: ~1.3 MB per 40,000 requests here, 15 → 35 MB over
/// 756,000 in production); with it the growth is noise.
const MAX_GROWTH_KB: u64 = 512;

/// The server's resident set, in kB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the server's /proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line")
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
    let mut server = ChildServer::start(&[("COMMERCE7_API_URL", &api), ("RUST_LOG", "warn,libero=info"), ("SOAK_OLD_TMP", &std::env::var("SOAK_OLD_TMP").unwrap_or_default())]).await;
    c7.set_app_url(&server.base);
    assert_eq!(c7.send_install(TENANT).await.unwrap().as_u16(), 200);
    let sign_in = TestApp::bare_client()
        .get(format!("{}/app?tenantId={TENANT}&account={OWNER_TOKEN}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(sign_in.status(), StatusCode::SEE_OTHER);
    let cookie = sign_in.headers()[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();

    let cpu = |pid: String| { let st = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap(); let f: Vec<&str> = st.rsplit(')').next().unwrap().split_whitespace().collect(); f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap() };
    let st = |pid: u32| { let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap(); s.lines().filter(|l| l.starts_with("RssAnon") || l.starts_with("Threads")).collect::<Vec<_>>().join(" ") };
    let (c0, t0) = (cpu(server.pid().to_string()), cpu("self".into()));
    let started = Instant::now();
    let n: usize = std::env::var("SOAK_N").unwrap().parse().unwrap();
    signed_in_requests(&server.base, &cookie, n).await;
    let warm = rss_kb(server.pid());
    let wst = st(server.pid());
    for i in 0..std::env::var("SOAK_K").map_or(4, |k| k.parse().unwrap()) { signed_in_requests(&server.base, &cookie, n).await; eprintln!("after {} more: VmRSS {} {}  (warm: {})", (i+1)*n, rss_kb(server.pid()), st(server.pid()), wst); }
    let end = rss_kb(server.pid());
    let growth = end.saturating_sub(warm);
    eprintln!("cpu ticks: server {} test {}; {}", cpu(server.pid().to_string()) - c0, cpu("self".into()) - t0, st(server.pid()));
    eprintln!(
        "soak: {} signed-in requests in {:.1?}; RSS {warm} kB after the first half, {end} kB after the second (+{growth} kB)",
        2 * REQUESTS_PER_HALF,
        started.elapsed()
    );
    assert!(
        growth < MAX_GROWTH_KB,
        "RSS grew by {growth} kB over {REQUESTS_PER_HALF} signed-in requests after warm-up ({warm} → {end} kB)"
    );

    server.terminate();
    assert!(server.exit_status().await.success());
}
