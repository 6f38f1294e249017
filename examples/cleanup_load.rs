//! Load script: time to clean N expired sessions (default 100,000) while a signed-in browser
//! keeps requesting `/app`, and the worst request latency seen meanwhile.
//!
//! ```text
//! cargo run --release --features ssr --example cleanup_load -- [expired-rows] [batch-size]
//! BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/libero_bench cargo run --release …
//! ```
//! Use a database made for the run: it is migrated and filled with expired rows. Everything
//! runs on loopback and stops by itself.

mod support;

use std::time::{Duration, Instant};

use libero::server::{db::Db, sessions::cleanup};

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let rows: i64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let batch: i64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(cleanup::DEFAULT_BATCH_SIZE);

    let bench = support::start(&[("SESSION_TOUCH_INTERVAL", "0")]).await;
    let (base, db, browser) = (&bench.base, bench.db.clone(), &bench.browser);

    // Fill the backlog in one statement.
    let fill = Instant::now();
    let past = chrono::Utc::now() - chrono::TimeDelta::hours(2);
    match &db {
        Db::Sqlite(pool) => {
            let client: String = sqlx::query_scalar("SELECT id FROM clients").fetch_one(pool).await.unwrap();
            sqlx::query(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
                 INSERT INTO app_sessions (id, client_id, user_id, theme, data, last_activity_at, expires_at, created_at, updated_at)
                 SELECT 'expired-' || i, ?2, 'u', 'light', '{}', ?3, ?3, ?3, ?3 FROM n",
            )
            .bind(rows)
            .bind(client)
            .bind(past)
            .execute(pool)
            .await
            .unwrap();
        }
        Db::Postgres(pool) => {
            sqlx::query(
                "INSERT INTO app_sessions (id, client_id, user_id, theme, data, last_activity_at, expires_at, created_at, updated_at)
                 SELECT 'expired-' || i, (SELECT id FROM clients LIMIT 1), 'u', 'light', '{}', $2, $2, $2, $2
                 FROM generate_series(1, $1) AS i",
            )
            .bind(rows)
            .bind(past)
            .execute(pool)
            .await
            .unwrap();
            sqlx::query("ANALYZE app_sessions").execute(pool).await.unwrap();
        }
    }
    println!("database: {}", bench.backend);
    println!("filled {rows} expired rows in {:.2?}", fill.elapsed());

    let cleaner = db.clone();
    let started = Instant::now();
    let job = tokio::spawn(async move {
        let deleted = cleanup::delete_expired(&cleaner, batch, Some(std::time::Duration::from_secs(3600)))
            .await
            .expect("cleanup");
        (deleted, started.elapsed())
    });
    let mut latencies = Vec::new();
    while !job.is_finished() {
        let t = Instant::now();
        let response = browser.get(format!("{base}/app")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "requests are answered during the cleanup");
        let _ = response.bytes().await;
        latencies.push(t.elapsed());
    }
    let (deleted, took) = job.await.unwrap();
    assert_eq!(deleted, rows as u64);

    // Baseline without cleanup, for comparison.
    let mut baseline = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let _ = browser.get(format!("{base}/app")).send().await.unwrap().bytes().await;
        baseline.push(t.elapsed());
    }
    latencies.sort();
    baseline.sort();
    let p = |v: &[Duration], q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    println!("cleanup: deleted {deleted} rows in {took:.2?} (batch {batch})");
    println!(
        "GET /app during cleanup: n={} p50={:.2?} p99={:.2?} max={:.2?}",
        latencies.len(),
        p(&latencies, 0.5),
        p(&latencies, 0.99),
        latencies.last().unwrap()
    );
    println!(
        "GET /app without cleanup: n={} p50={:.2?} p99={:.2?} max={:.2?}",
        baseline.len(),
        p(&baseline, 0.5),
        p(&baseline, 0.99),
        baseline.last().unwrap()
    );
}
