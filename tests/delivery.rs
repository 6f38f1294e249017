//! Front-end delivery (issue 10): the built `/pkg` files under hashed names, sent as their
//! precompressed brotli or gzip siblings as the client asks and cached for a year; pages and
//! server-function answers compressed on the fly; `no-cache` on public HTML, `no-store` on
//! signed-in answers kept.
//!
//! These tests serve the real site in `target/site`, built by `cargo leptos build` and
//! `scripts/precompress.mjs` (`make test` runs both before `cargo test`); without it they fail
//! and say so. Compression does not touch the database: they run on SQLite only.

mod common;

use std::{
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use chrono::{TimeDelta, Utc};
use common::{TENANT, TEST_SECRET, TestApp, TestDb, child::ChildServer};
use libero::server::{
    db::Db,
    delivery::{IMMUTABLE, MIN_COMPRESSED_SIZE, carries_content_hash},
};
use reqwest::{StatusCode, header};
use serde_json::Value;

/// What Chromium sends.
const BROWSER_ENCODINGS: &str = "gzip, deflate, br, zstd";

fn site_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target/site")
}

/// The built front end: the hashed wasm, JS and CSS in `target/site/pkg`, each with its `.br`
/// and `.gz` sibling.
struct BuiltSite {
    wasm: String,
    js: String,
    css: String,
    /// The lazily loaded chunks (`/pkg/split___….wasm`, and any chunk they share) and their
    /// loader `/pkg/__wasm_split.<hash>.js`.
    split: Vec<String>,
}

impl BuiltSite {
    /// Finds the build, or fails the test saying how to make one.
    fn find() -> Self {
        let pkg = site_root().join("pkg");
        let how = "tests/delivery.rs serves the built front end. Build it first (make test does): \
                   `cargo leptos build --frontend-only --split && node scripts/precompress.mjs target/site/pkg`";
        let names: Vec<String> = std::fs::read_dir(&pkg)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}\n{how}", pkg.display()))
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        let hashed = |ext: &str| {
            let mut found: Vec<&String> = names
                .iter()
                .filter(|n| n.starts_with("libero.") && n.ends_with(ext) && carries_content_hash(n))
                .collect();
            found.sort_by_key(|n| std::fs::metadata(pkg.join(n.as_str())).and_then(|m| m.modified()).ok());
            let name = found.pop().unwrap_or_else(|| {
                panic!("{} has no hashed libero{ext} (hash-files is on in Cargo.toml)\n{how}", pkg.display())
            });
            precompressed(&pkg, name)
        };
        // The lazily loaded routes' chunks and their loader (`cargo leptos --split`).
        let split: Vec<String> = names
            .iter()
            .filter(|n| {
                carries_content_hash(n)
                    && ((!n.starts_with("libero.") && n.ends_with(".wasm"))
                        || (n.starts_with("__wasm_split.") && n.ends_with(".js")))
            })
            .map(|n| precompressed(&pkg, n))
            .collect();
        assert!(
            split.iter().filter(|n| n.ends_with(".wasm")).count() >= 2 && split.iter().any(|n| n.ends_with(".js")),
            "no lazy chunks (settings, landing) and loader in {}: the build must run with --split\n{how}",
            pkg.display()
        );
        Self { wasm: hashed(".wasm"), js: hashed(".js"), css: hashed(".css"), split }
    }

    /// Every front-end file: the main module, its JS, the stylesheet, the chunks and their loader.
    fn all(&self) -> Vec<&str> {
        [&self.wasm, &self.js, &self.css].into_iter().chain(&self.split).map(String::as_str).collect()
    }

    /// The file behind a `/pkg/…` URL.
    fn bytes(&self, url: &str) -> Vec<u8> {
        std::fs::read(site_root().join(url.trim_start_matches('/'))).unwrap()
    }
}

/// `/pkg/<name>`, after checking that the build wrote its `.br` and `.gz` siblings.
fn precompressed(pkg: &Path, name: &str) -> String {
    for sibling in [".br", ".gz"] {
        assert!(
            pkg.join(format!("{name}{sibling}")).is_file(),
            "{name}{sibling} is missing in {}: run `node scripts/precompress.mjs target/site/pkg`",
            pkg.display()
        );
    }
    format!("/pkg/{name}")
}

/// An app serving the built site (the tests' Leptos options point at `target/site`).
async fn app_with_site() -> (TestApp, BuiltSite) {
    let site = BuiltSite::find();
    let app = TestApp::spawn(TestDb::Sqlite).await.expect("SQLite needs no server");
    (app, site)
}

async fn get(app: &TestApp, path: &str, accept_encoding: Option<&str>) -> reqwest::Response {
    let mut request = app.client.get(app.url(path));
    if let Some(encodings) = accept_encoding {
        request = request.header(header::ACCEPT_ENCODING, encodings);
    }
    request.send().await.unwrap()
}

fn header_of(response: &reqwest::Response, name: header::HeaderName) -> &str {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// The body as sent, and decoded according to its `Content-Encoding`.
async fn decoded(response: reqwest::Response) -> (String, Vec<u8>) {
    let encoding = header_of(&response, header::CONTENT_ENCODING).to_owned();
    let sent = response.bytes().await.unwrap();
    let mut body = Vec::new();
    match encoding.as_str() {
        "br" => brotli::Decompressor::new(&sent[..], 4096).read_to_end(&mut body).map(drop),
        "gzip" => flate2::read::GzDecoder::new(&sent[..]).read_to_end(&mut body).map(drop),
        "" => {
            body.extend_from_slice(&sent);
            Ok(())
        }
        other => panic!("unexpected Content-Encoding {other}"),
    }
    .unwrap_or_else(|e| panic!("the {encoding} body does not decode: {e}"));
    (encoding, body)
}

// --- /pkg: precompressed --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkg_files_are_sent_as_brotli_to_a_browser() {
    let (app, site) = app_with_site().await;
    for url in site.all() {
        let response = get(&app, url, Some(BROWSER_ENCODINGS)).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let sent = response.content_length();
        let (encoding, body) = decoded(response).await;
        assert_eq!(encoding, "br", "{url}");
        assert_eq!(body, site.bytes(url), "{url}: the brotli body decodes to the file");
        if url == site.wasm {
            assert!(sent.unwrap() * 3 < body.len() as u64, "the wasm goes at a third of its size or less");
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkg_files_are_sent_as_gzip_to_a_client_that_accepts_only_gzip() {
    let (app, site) = app_with_site().await;
    for url in site.all() {
        let (encoding, body) = decoded(get(&app, url, Some("gzip")).await).await;
        assert_eq!(encoding, "gzip", "{url}");
        assert_eq!(body, site.bytes(url), "{url}: the gzip body decodes to the file");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkg_files_are_sent_unencoded_to_a_client_that_accepts_no_encoding() {
    let (app, site) = app_with_site().await;
    for url in site.all() {
        for accepted in [None, Some("identity")] {
            let response = get(&app, url, accepted).await;
            assert_eq!(response.content_length(), Some(site.bytes(url).len() as u64), "{url} {accepted:?}");
            let (encoding, body) = decoded(response).await;
            assert_eq!(encoding, "", "{url} {accepted:?}: no Content-Encoding");
            assert_eq!(body, site.bytes(url), "{url} {accepted:?}");
        }
        let (control, _) = decoded(get(&app, url, Some("br")).await).await;
        assert_eq!(control, "br", "control: {url} has a brotli sibling, which was not sent");
    }
    app.stop().await;
}

// --- Caching ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashed_pkg_files_are_cached_for_a_year_as_immutable() {
    let (app, site) = app_with_site().await;
    for url in site.all() {
        for accepted in [Some(BROWSER_ENCODINGS), Some("gzip"), None] {
            let response = get(&app, url, accepted).await;
            assert_eq!(header_of(&response, header::CACHE_CONTROL), IMMUTABLE, "{url} {accepted:?}");
            assert_eq!(IMMUTABLE, "public, max-age=31536000, immutable");
            let vary = header_of(&response, header::VARY).to_ascii_lowercase();
            assert!(vary.contains("accept-encoding"), "{url} {accepted:?}: Vary names Accept-Encoding ({vary:?})");
        }
    }
    let control = get(&app, "/favicon.svg", Some(BROWSER_ENCODINGS)).await;
    assert_eq!(control.status(), StatusCode::OK);
    assert_eq!(header_of(&control, header::CACHE_CONTROL), "no-cache", "control: a file without a hashed name");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_html_is_revalidated_before_each_reuse() {
    let (app, _site) = app_with_site().await;
    let landing = get(&app, "/", Some(BROWSER_ENCODINGS)).await;
    assert_eq!(landing.status(), StatusCode::OK);
    assert_eq!(header_of(&landing, header::CACHE_CONTROL), "no-cache", "the landing page");
    let not_found = get(&app, "/no/such/page", Some(BROWSER_ENCODINGS)).await;
    assert_eq!(not_found.status(), StatusCode::NOT_FOUND);
    assert_eq!(header_of(&not_found, header::CACHE_CONTROL), "no-cache", "the 404 page");
    let control = get(&app, "/app", Some(BROWSER_ENCODINGS)).await;
    assert_eq!(header_of(&control, header::CACHE_CONTROL), "no-store", "control: a signed-in address is no-store");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_in_answers_stay_no_store_when_compressed() {
    BuiltSite::find();
    let app = TestApp::signed_in(TestDb::Sqlite).await.expect("SQLite needs no server");
    let page = get(&app, "/app", Some(BROWSER_ENCODINGS)).await;
    assert_eq!(page.status(), StatusCode::OK, "the signed-in dashboard");
    assert_eq!(header_of(&page, header::CACHE_CONTROL), "no-store");
    assert_eq!(header_of(&page, header::CONTENT_ENCODING), "br", "and it is compressed");
    let settings = get(&app, "/settings", Some(BROWSER_ENCODINGS)).await;
    assert_eq!(settings.status(), StatusCode::OK);
    assert_eq!(header_of(&settings, header::CACHE_CONTROL), "no-store");
    let info =
        app.post_same_origin("/api/session_info").header(header::ACCEPT_ENCODING, BROWSER_ENCODINGS).send().await;
    let info = info.unwrap();
    assert_eq!(info.status(), StatusCode::OK);
    assert_eq!(header_of(&info, header::CACHE_CONTROL), "no-store", "a server function's answer");
    app.stop().await;
}

// --- Compression on the fly -------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_compressed_as_the_client_asks() {
    let (app, _site) = app_with_site().await;
    for (accepted, expected) in [(BROWSER_ENCODINGS, "br"), ("gzip", "gzip")] {
        let response = get(&app, "/", Some(accepted)).await;
        assert!(header_of(&response, header::VARY).to_ascii_lowercase().contains("accept-encoding"));
        let (encoding, body) = decoded(response).await;
        assert_eq!(encoding, expected, "{accepted}");
        assert!(String::from_utf8(body).unwrap().contains("Libero for Commerce7"), "{accepted}: the page decodes");
    }
    let (control, body) = decoded(get(&app, "/", None).await).await;
    assert_eq!(control, "", "control: no Accept-Encoding, no encoding");
    assert!(String::from_utf8(body).unwrap().contains("Libero for Commerce7"));
    app.stop().await;
}

/// Sessions of the signed-in owner beside her own, so that "Your sessions" lists `count` more.
async fn add_sessions_of_the_owner(app: &TestApp, count: i64) {
    let Db::Sqlite(pool) = &app.db else { unreachable!("SQLite only") };
    let client_id = app.client_id(TENANT).await.expect("tenant installed");
    let now = Utc::now();
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO app_sessions (id, client_id, tenant_id, user_id, theme, data, ip_address, user_agent,
                                   last_activity_at, expires_at, created_at, updated_at)
         SELECT 'delivery-' || i, c.id, c.tenant_id, 'c7-user-dana', 'light', '{}', '203.0.113.' || i,
                'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36',
                ?3, ?4, ?3, ?3 FROM n, clients c WHERE c.id = ?2",
    )
    .bind(count)
    .bind(client_id)
    .bind(now)
    .bind(now + TimeDelta::hours(1))
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_function_answers_from_1_kib_are_compressed() {
    BuiltSite::find();
    let app = TestApp::signed_in(TestDb::Sqlite).await.expect("SQLite needs no server");
    assert_eq!(MIN_COMPRESSED_SIZE, 1024);
    add_sessions_of_the_owner(&app, 12).await;
    let call = |endpoint: &str| {
        app.post_same_origin(&format!("/api/{endpoint}")).header(header::ACCEPT_ENCODING, BROWSER_ENCODINGS).send()
    };

    let large = call("list_my_sessions").await.unwrap();
    assert_eq!(large.status(), StatusCode::OK);
    let (encoding, body) = decoded(large).await;
    assert!(body.len() >= 1024, "the list is over the threshold ({} bytes)", body.len());
    assert_eq!(encoding, "br", "a {}-byte answer is compressed", body.len());
    let sessions: Vec<Value> = serde_json::from_slice(&body).expect("it decodes to the JSON list");
    assert_eq!(sessions.len(), 13, "the owner's own session and the 12 added");

    let small = call("session_info").await.unwrap();
    assert_eq!(small.status(), StatusCode::OK);
    let (encoding, body) = decoded(small).await;
    assert!(body.len() < 1024, "session_info is under the threshold ({} bytes)", body.len());
    assert_eq!(encoding, "", "a {}-byte answer is sent as it is", body.len());
    app.stop().await;
}

// --- The real binary with hashed names ----------------------------------------------------------

/// Where `cargo leptos build` (debug) writes the hash file: next to the server binary.
fn hash_file() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debug/hash.txt");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo leptos build --frontend-only --split` (make test does)",
        path.display()
    );
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_and_error_pages_link_the_hashed_files() {
    let site = BuiltSite::find();
    let hash_file = hash_file();
    let root = site_root();
    let server = ChildServer::start(&[
        ("LEPTOS_SITE_ROOT", root.to_str().unwrap()),
        ("LEPTOS_HASH_FILES", "true"),
        ("LEPTOS_HASH_FILE_NAME", hash_file.to_str().unwrap()),
    ])
    .await;
    let client = TestApp::bare_client();
    let landing = client.get(format!("{}/", server.base)).send().await.unwrap().text().await.unwrap();
    for url in [&site.wasm, &site.js, &site.css] {
        assert!(landing.contains(&format!("\"{url}\"")), "the landing page links {url}");
    }
    // Its own lazy chunk is preloaded with the page, and the chunk loader; not the settings page's.
    let chunk = |route: &str| site.split.iter().find(|url| url.contains(route)).expect("the route's chunk").as_str();
    let loader = site.split.iter().find(|url| url.ends_with(".js")).expect("the chunk loader");
    assert!(landing.contains(&format!("\"{}\"", chunk("landing_route"))), "the landing page preloads its chunk");
    assert!(landing.contains(&format!("\"{loader}\"")), "and the chunk loader");
    assert!(!landing.contains(chunk("settings_route")), "but not the settings page's chunk");
    let error = client.get(format!("{}/app?tenantId=&account=", server.base)).send().await.unwrap();
    assert_eq!(error.status(), StatusCode::BAD_REQUEST, "the bad-link error page");
    let error = error.text().await.unwrap();
    assert!(error.contains(&format!("href=\"{}\"", site.css)), "the error page links {}", site.css);
    assert!(!landing.contains("/pkg/libero.css") && !error.contains("/pkg/libero.css"), "no plain name is linked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_without_its_hash_file_refuses_to_start() {
    BuiltSite::find();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-hash.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_libero"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SESSION_SECRET", TEST_SECRET)
        .env("DATABASE_URL", format!("sqlite://{}", dir.path().join("app.db").display()))
        .env("COOKIE_SECURE", "false")
        .env("LEPTOS_OUTPUT_NAME", "libero")
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("LEPTOS_SITE_ROOT", site_root())
        .env("LEPTOS_HASH_FILES", "true")
        .env("LEPTOS_HASH_FILE_NAME", &missing)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("libero starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("libero kept running without its hash file");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let output = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it exits with an error");
    assert!(said.contains(missing.to_str().unwrap()), "the message names the missing file: {said}");

    // Control: the same settings with the build's hash file start (ChildServer waits until it
    // listens, and fails if it exits).
    let hash_file = hash_file();
    let root = site_root();
    ChildServer::start(&[
        ("LEPTOS_SITE_ROOT", root.to_str().unwrap()),
        ("LEPTOS_HASH_FILES", "true"),
        ("LEPTOS_HASH_FILE_NAME", hash_file.to_str().unwrap()),
    ])
    .await;
}
