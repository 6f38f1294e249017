#![allow(dead_code)] // each script uses part of it

//! Shared set-up of the load scripts: the app and the fake Commerce7 on loopback, the demo
//! tenant installed, and a browser signed in.

use std::net::SocketAddr;

use fake_commerce7::{FakeCommerce7, FakeConfig};
use leptos::config::LeptosOptions;
use libero::server::{config::Config, db::Db, startup::Application};

/// A running app for a load script.
pub struct Bench {
    /// The fake Commerce7 (kept alive for the run).
    pub c7: FakeCommerce7,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The app's pool.
    pub db: Db,
    /// A browser signed in to the demo tenant (cookie kept, redirects off).
    pub browser: reqwest::Client,
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    _dir: tempfile::TempDir,
}

/// Starts the app on `BENCH_DATABASE_URL` (default: a temporary SQLite file) with `extra`
/// settings, installs `demo-winery` and signs a browser in.
pub async fn start(extra: &[(&str, &str)]) -> Bench {
    let dir = tempfile::tempdir().expect("temp dir");
    let database_url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let c7 = FakeCommerce7::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        FakeConfig::demo("http://127.0.0.1:9", "bench", "bench-password"),
    )
    .await
    .expect("fake Commerce7");
    let mut vars = vec![
        ("SESSION_SECRET", "bench-secret-0123456789abcdef0123456789abcdef".to_owned()),
        ("DATABASE_URL", database_url.clone()),
        ("COOKIE_SECURE", "false".to_owned()),
        ("COMMERCE7_API_URL", c7.api_url()),
        ("COMMERCE7_USER", "bench".to_owned()),
        ("COMMERCE7_PASSWORD", "bench-password".to_owned()),
        ("RATE_LIMIT_SIGN_IN", "0".to_owned()),
        ("SESSION_CLEANUP_INTERVAL", "0".to_owned()),
    ];
    vars.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let config =
        Config::from_lookup(|k| vars.iter().rev().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).expect("settings");
    let options = LeptosOptions::builder()
        .output_name("libero")
        .site_root("target/site")
        .site_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .build();
    let app = Application::build(config, options).await.expect("app");
    let base = format!("http://{}", app.local_addr());
    let db = app.state().db.clone();
    c7.set_app_url(&base);
    tokio::spawn(app.run_until(std::future::pending()));
    assert_eq!(c7.send_install("demo-winery").await.expect("install").as_u16(), 200);

    let browser =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).cookie_store(true).build().unwrap();
    let signed_in =
        browser.get(format!("{base}/app?tenantId=demo-winery&account=demo-owner-token")).send().await.unwrap();
    assert_eq!(signed_in.status().as_u16(), 303);
    let backend = if database_url.starts_with("postgres") { "postgres" } else { "sqlite" };
    Bench { c7, base, db, browser, backend, _dir: dir }
}
