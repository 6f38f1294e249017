//! Deleting expired sessions in bounded batches, so that a backlog of millions never holds a
//! long lock or stalls requests: each batch is its own short statement, and the loop yields
//! between batches.

use std::time::Duration;

use crate::server::{
    db::{Db, now},
    metrics,
};

/// Rows deleted per statement by default.
pub const DEFAULT_BATCH_SIZE: i64 = 2_000;
/// Pause between batches, leaving the database (SQLite's single writer especially) to requests.
const PAUSE_BETWEEN_BATCHES: Duration = Duration::from_millis(5);

/// Deletes every session whose `expires_at` has passed; returns how many.
pub async fn delete_expired(db: &Db, batch_size: i64) -> Result<u64, sqlx::Error> {
    let batch_size = batch_size.max(1);
    let cutoff = now();
    let mut total = 0;
    loop {
        let deleted = match db {
            Db::Sqlite(pool) => sqlx::query(
                "DELETE FROM app_sessions WHERE id IN
                     (SELECT id FROM app_sessions WHERE expires_at < ?1 LIMIT ?2)",
            )
            .bind(cutoff)
            .bind(batch_size)
            .execute(pool)
            .await?
            .rows_affected(),
            Db::Postgres(pool) => sqlx::query(
                "DELETE FROM app_sessions WHERE id IN
                     (SELECT id FROM app_sessions WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            )
            .bind(cutoff)
            .bind(batch_size)
            .execute(pool)
            .await?
            .rows_affected(),
        };
        total += deleted;
        if deleted < batch_size as u64 {
            break;
        }
        tokio::time::sleep(PAUSE_BETWEEN_BATCHES).await;
    }
    metrics::cleanup_finished(total);
    Ok(total)
}

/// The server's background cleanup: every `interval`, logs what it deleted.
pub async fn run_periodically(db: Db, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate: start one interval after start-up
    loop {
        ticker.tick().await;
        match delete_expired(&db, DEFAULT_BATCH_SIZE).await {
            Ok(deleted) => tracing::info!(deleted, "Session cleanup: deleted {deleted} expired sessions"),
            Err(err) => tracing::error!(error = %err, "session cleanup failed; will retry at the next interval"),
        }
    }
}
