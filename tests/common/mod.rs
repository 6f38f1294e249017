//! Test helpers: start the real app on port 0 against a fresh SQLite file or a fresh PostgreSQL
//! database, and talk to it over real HTTP.
#![allow(dead_code)]

use std::{collections::HashMap, net::SocketAddr, path::PathBuf};

use leptos::config::LeptosOptions;
use libero::server::{Application, config::Config, db::Db};
use sqlx::{Connection, Executor, PgConnection};
use tokio::sync::oneshot;

/// Where the tests find PostgreSQL (override with `TEST_POSTGRES_URL`).
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// A secret that satisfies the rules.
pub const TEST_SECRET: &str = "test-secret-0123456789abcdef0123456789abcdef";

/// The two databases every behaviour is proven on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestDb {
    Sqlite,
    Postgres,
}

/// A fresh, empty database that is removed when dropped.
pub struct FreshDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

impl FreshDatabase {
    /// Creates the database, or returns `None` (after saying so) when PostgreSQL is not reachable
    /// outside CI. In CI (`CI` set) an unreachable PostgreSQL fails the test.
    pub async fn create(kind: TestDb) -> Option<Self> {
        match kind {
            TestDb::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let path: PathBuf = dir.path().join("libero-test.db");
                Some(Self {
                    url: format!("sqlite://{}", path.display()),
                    _dir: Some(dir),
                    pg_name: None,
                })
            }
            TestDb::Postgres => {
                let admin = postgres_admin_url();
                let mut conn = match PgConnection::connect(&admin).await {
                    Ok(conn) => conn,
                    Err(err) if std::env::var_os("CI").is_none() => {
                        eprintln!(
                            "SKIPPED (PostgreSQL unreachable at {admin}: {err}); set CI=1 to make this a failure"
                        );
                        return None;
                    }
                    Err(err) => {
                        panic!("PostgreSQL is required in CI but unreachable at {admin}: {err}")
                    }
                };
                let name = format!("libero_test_{}", uuid::Uuid::new_v4().simple());
                conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
                    .await
                    .expect("create test database");
                let base = admin
                    .rsplit_once('/')
                    .map(|(base, _)| base)
                    .unwrap_or(&admin);
                Some(Self {
                    url: format!("{base}/{name}"),
                    _dir: None,
                    pg_name: Some(name),
                })
            }
        }
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop runs outside any runtime guarantee: use a thread with its own small runtime.
            let admin = postgres_admin_url();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    if let Ok(mut conn) = PgConnection::connect(&admin).await {
                        let _ = conn
                            .execute(
                                format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#)
                                    .as_str(),
                            )
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

/// A running app on a random port.
pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub db: Db,
    pub database: FreshDatabase,
    /// A client that keeps cookies, never follows redirects and accepts the test's self-made
    /// http cookies (`COOKIE_SECURE` is off in tests: there is no TLS on loopback).
    pub client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Settings for a test app; extra variables override the defaults.
pub fn test_config(database_url: &str, extra: &[(&str, String)]) -> Config {
    let mut vars: HashMap<String, String> = HashMap::from([
        ("SESSION_SECRET".to_owned(), TEST_SECRET.to_owned()),
        ("DATABASE_URL".to_owned(), database_url.to_owned()),
        ("COOKIE_SECURE".to_owned(), "false".to_owned()),
        ("COMMERCE7_USER".to_owned(), "c7-callbacks".to_owned()),
        (
            "COMMERCE7_PASSWORD".to_owned(),
            "callback-password".to_owned(),
        ),
        (
            "COMMERCE7_API_URL".to_owned(),
            "http://127.0.0.1:9/v1".to_owned(),
        ),
        ("COMMERCE7_TIMEOUT".to_owned(), "2s".to_owned()),
    ]);
    for (k, v) in extra {
        vars.insert((*k).to_owned(), v.clone());
    }
    Config::from_lookup(|k| vars.get(k).cloned()).expect("valid test settings")
}

/// Leptos options for tests: port 0, the site built by `cargo leptos build` if present.
pub fn test_leptos_options() -> LeptosOptions {
    LeptosOptions::builder()
        .output_name("libero")
        .site_root(concat!(env!("CARGO_MANIFEST_DIR"), "/target/site"))
        .site_pkg_dir("pkg")
        .site_addr(SocketAddr::from(([127, 0, 0, 1], 0)))
        .build()
}

impl TestApp {
    /// Starts the app against a fresh database of `kind`; `None` when PostgreSQL is skipped.
    pub async fn spawn(kind: TestDb) -> Option<Self> {
        Self::spawn_with(kind, &[]).await
    }

    /// Like [`TestApp::spawn`], with extra settings.
    pub async fn spawn_with(kind: TestDb, extra: &[(&str, String)]) -> Option<Self> {
        let database = FreshDatabase::create(kind).await?;
        let config = test_config(&database.url, extra);
        let app = Application::build(config, test_leptos_options())
            .await
            .expect("the app starts");
        let addr = app.local_addr();
        let db = app.state().db.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Some(Self {
            addr,
            base: format!("http://{addr}"),
            db,
            database,
            client,
            shutdown: Some(tx),
            server: Some(server),
        })
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A GET with the shared cookie-keeping client.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Stops the server and waits for it to finish its requests.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

/// Runs a test body on both databases: `both_databases!(name, |app| async move { … })` makes
/// `name_on_sqlite` and `name_on_postgres`.
#[macro_export]
macro_rules! on_both_databases {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                ($body)($crate::common::TestDb::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                ($body)($crate::common::TestDb::Postgres).await
            }
        }
    };
}
