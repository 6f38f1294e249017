//! The database: SQLite (embedded default) or PostgreSQL (production), chosen by `DATABASE_URL`.
//!
//! Both backends run the same operations; each query is written once per dialect, explicitly,
//! and every one of them is exercised by the integration tests on both databases.

use std::{str::FromStr, time::Duration};

use sqlx::{
    PgPool, Postgres, Sqlite, SqlitePool,
    migrate::{MigrateError, Migrator},
    pool::PoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};

/// The SQLite migrations embedded in this binary.
pub static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
/// The PostgreSQL migrations embedded in this binary.
pub static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a request waits for a pooled connection before answering "database unavailable".
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long SQLite may wait for a lock (`busy_timeout`) before a query fails with "database is
/// locked".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the session guard's read (taking a connection, then the query) may take. sqlx pings a
/// connection before it hands it out (`test_before_acquire`), so a connection the database ended
/// (a restart, a proxy's idle timeout) is replaced there; a connection dropped *silently* (a NAT
/// forgetting it: no reset, no answer ever) would never answer or fail, and this bounds it: the
/// request gets "database unavailable" instead of hanging, and the connection is dropped.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A pool of up to `max` connections, as sqlx configures it, with [`ACQUIRE_TIMEOUT`].
fn pool_options<DB: sqlx::Database>(max: u32) -> PoolOptions<DB> {
    PoolOptions::new().max_connections(max).acquire_timeout(ACQUIRE_TIMEOUT)
}

/// `read`, given up after [`READ_TIMEOUT`] (as a timed-out pool).
pub async fn bounded<T>(read: impl Future<Output = Result<T, sqlx::Error>>) -> Result<T, sqlx::Error> {
    within(READ_TIMEOUT, read).await
}

async fn within<T>(timeout: Duration, read: impl Future<Output = Result<T, sqlx::Error>>) -> Result<T, sqlx::Error> {
    tokio::time::timeout(timeout, read).await.unwrap_or(Err(sqlx::Error::PoolTimedOut))
}

/// A connection pool to one of the two supported databases.
#[derive(Clone, Debug)]
pub enum Db {
    /// Embedded SQLite (WAL mode, foreign keys on).
    Sqlite(SqlitePool),
    /// PostgreSQL / Supabase.
    Postgres(PgPool),
}

/// Which database a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

impl Db {
    /// Connects to `url`, creating the SQLite file if it does not exist.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = pool_options::<Postgres>(10).connect(url).await?;
            Ok(Self::Postgres(pool))
        } else {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            let pool = pool_options::<Sqlite>(8).connect_with(options).await?;
            Ok(Self::Sqlite(pool))
        }
    }

    /// Applies the pending migrations of this backend.
    pub async fn migrate(&self) -> Result<(), MigrateError> {
        match self {
            Self::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Self::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        }
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
            Self::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop),
        }
    }

    /// Closes every connection (graceful shutdown).
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// The current time, truncated to microseconds so that values round-trip through both databases
/// unchanged (PostgreSQL keeps microseconds).
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::{DurationRound, TimeDelta};
    chrono::Utc::now().duration_trunc(TimeDelta::microseconds(1)).expect("valid timestamp")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_read_that_never_answers_is_given_up_as_a_timed_out_pool() {
        let stalled = within(Duration::from_millis(10), std::future::pending::<Result<(), sqlx::Error>>());
        assert!(matches!(stalled.await, Err(sqlx::Error::PoolTimedOut)));
        // Control: a read that answers is passed through.
        assert_eq!(bounded(async { Ok::<_, sqlx::Error>(7) }).await.unwrap(), 7);
    }
}
