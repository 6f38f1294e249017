//! Criterion micro-benchmarks of the session hot path: cookie and tab-token signing and
//! verification, and the store's load (validate), touch, create and delete on SQLite and — when
//! `BENCH_POSTGRES_URL` (or `TEST_POSTGRES_URL`) reaches a server — PostgreSQL.
//!
//! ```text
//! cargo bench --features ssr --bench sessions
//! ```
//! Each database is fresh (a temporary SQLite file; a new PostgreSQL database, dropped after).

use std::{hint::black_box, sync::Arc, time::Duration};

use chrono::Utc;
use criterion::{Criterion, criterion_group, criterion_main};
use libero::server::{
    db::Db,
    sessions::{
        AppSessionStore, AuthSession, SessionCookies, cookie::CookieToken, hash_token, store::Handoff, tab::TabTokens,
    },
};
use tokio::runtime::Runtime;

mod support;
use tower_sessions::session::Id;

const SECRET: &str = "bench-secret-0123456789abcdef0123456789abcdef";

fn tokens(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let db = rt.block_on(Db::connect("sqlite::memory:")).unwrap();
    let cookies = SessionCookies::new(SECRET, true, Arc::new(AppSessionStore::new(db, None)));
    let id = Id::default();
    let set_cookie = cookies.issue(id, time::Duration::hours(8));
    let pair = set_cookie.to_str().unwrap().split(';').next().unwrap().to_owned();
    let mut request = axum::http::HeaderMap::new();
    request.insert(axum::http::header::COOKIE, pair.parse().unwrap());
    assert_eq!(cookies.read(&request), CookieToken::Signed(id));

    let tabs = TabTokens::new(SECRET);
    let row = hash_token(&id.to_string());
    let expires = Utc::now() + chrono::TimeDelta::minutes(15);
    let token = tabs.mint("demo-winery", &row, 0, expires);

    let mut group = c.benchmark_group("credentials");
    group.bench_function("cookie: sign", |b| b.iter(|| cookies.issue(black_box(id), time::Duration::hours(8))));
    group.bench_function("cookie: verify", |b| b.iter(|| cookies.read(black_box(&request))));
    group.bench_function("tab token: mint", |b| {
        b.iter(|| tabs.mint(black_box("demo-winery"), black_box(&row), 0, expires))
    });
    group.bench_function("tab token: verify", |b| b.iter(|| tabs.verify(black_box(&token), Utc::now()).unwrap()));
    group.finish();
}

async fn prepared(url: &str) -> (AppSessionStore, AuthSession) {
    let db = Db::connect(url).await.expect("database");
    db.migrate().await.expect("migrations");
    let client = support::install_demo(&db).await;
    (AppSessionStore::new(db, Some(Duration::from_secs(3600))), support::identity(&client))
}

fn store_on(c: &mut Criterion, label: &str, url: &str) {
    let rt = Runtime::new().unwrap();
    let (store, auth) = rt.block_on(prepared(url));
    let (_, handoff) = Handoff::issue(Utc::now());
    let (_, key) = rt.block_on(store.create_signed_in(&auth, &handoff)).unwrap();

    let mut group = c.benchmark_group(format!("store ({label})"));
    group.bench_function("load (validate one row)", |b| {
        b.to_async(&rt).iter(|| async { store.validate_key(black_box(&key)).await.unwrap().unwrap() })
    });
    group.bench_function("touch", |b| {
        b.to_async(&rt).iter(|| async { store.touch(black_box(&key), Utc::now()).await.unwrap() })
    });
    group.bench_function("create + delete", |b| {
        b.to_async(&rt).iter(|| async {
            let (_, handoff) = Handoff::issue(Utc::now());
            let (_, created) = store.create_signed_in(&auth, &handoff).await.unwrap();
            store.delete_key(&created).await.unwrap();
        })
    });
    group.finish();
}

fn store(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    store_on(c, "SQLite", &format!("sqlite://{}/bench.db?mode=rwc", dir.path().display()));

    let admin = std::env::var("BENCH_POSTGRES_URL")
        .or_else(|_| std::env::var("TEST_POSTGRES_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let rt = Runtime::new().unwrap();
    let name = format!("libero_criterion_{}", std::process::id());
    let created = rt.block_on(async {
        let pool = sqlx::PgPool::connect(&admin).await.ok()?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&pool).await.ok()?;
        Some(pool)
    });
    let Some(pool) = created else {
        eprintln!("PostgreSQL not reachable at {admin}: its store benchmarks are skipped");
        return;
    };
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    store_on(c, "PostgreSQL", url.as_str());
    rt.block_on(async {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&pool).await;
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = tokens, store
}
criterion_main!(benches);
