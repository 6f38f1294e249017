//! Deleting dead sessions — expired, or idle longer than `SESSION_IDLE_TIMEOUT` — in bounded
//! batches, so that a backlog of millions never holds a long lock or stalls requests: each batch
//! is its own short statement, and the loop yields between batches.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::active_since;
use crate::{
    db::{Backend, Db, now, on_pool},
    metrics,
};

/// Rows deleted per statement by default.
pub const DEFAULT_BATCH_SIZE: i64 = 2_000;
/// Pause between batches, leaving the database (SQLite's single writer especially) to requests.
const PAUSE_BETWEEN_BATCHES: Duration = Duration::from_millis(5);

/// Deletes every session past its `expires_at`, and every session unused for `idle_timeout` or
/// longer (the store's idle rule; `None` when the idle rule is off); returns how many.
pub async fn delete_expired(db: &Db, batch_size: i64, idle_timeout: Option<Duration>) -> Result<u64, sqlx::Error> {
    let batch_size = batch_size.max(1);
    let now = now();
    // With the idle rule off, no `last_activity_at` is at or before the epoch.
    let idle_before = active_since(now, idle_timeout);
    let mut total = 0;
    loop {
        let deleted = delete_batch(db, now, idle_before, batch_size).await?;
        total += deleted;
        if deleted < batch_size as u64 {
            break;
        }
        tokio::time::sleep(PAUSE_BETWEEN_BATCHES).await;
    }
    metrics::cleanup_finished(total);
    Ok(total)
}

/// One batch: at most `batch_size` rows expired before `now` or last used at or before
/// `idle_before`.
async fn delete_batch(
    db: &Db,
    now: DateTime<Utc>,
    idle_before: DateTime<Utc>,
    batch_size: i64,
) -> Result<u64, sqlx::Error> {
    // PostgreSQL skips rows another transaction holds (a sign-in, a touch) instead of waiting.
    let skip_locked = if db.backend() == Backend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "DELETE FROM app_sessions WHERE id IN
             (SELECT id FROM app_sessions WHERE expires_at < $1 OR last_activity_at <= $2 LIMIT $3 {skip_locked})"
    );
    on_pool!(db, |c| sqlx::query(&sql).bind(now).bind(idle_before).bind(batch_size).execute(c).await?.rows_affected())
}

/// The server's background cleanup: every `interval`, logs what it deleted.
pub async fn run_periodically(db: Db, interval: Duration, idle_timeout: Option<Duration>) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick is immediate: start one interval after start-up
    loop {
        ticker.tick().await;
        match delete_expired(&db, DEFAULT_BATCH_SIZE, idle_timeout).await {
            Ok(deleted) => tracing::info!(deleted, "Session cleanup: deleted {deleted} expired sessions"),
            Err(err) => tracing::error!(error = %err, "session cleanup failed; will retry at the next interval"),
        }
    }
}
