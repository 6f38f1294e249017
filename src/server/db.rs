//! The database: SQLite (embedded default) or PostgreSQL (production), chosen by `DATABASE_URL`.
//!
//! Both backends run the same operations; each query is written once per dialect, explicitly,
//! and every one of them is exercised by the integration tests on both databases.

use std::{str::FromStr, time::Duration};

use sqlx::{
    PgPool, Postgres, Sqlite, SqlitePool,
    migrate::{MigrateError, Migrator},
    pool::{PoolConnectionMetadata, PoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};

/// The SQLite migrations embedded in this binary.
pub static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
/// The PostgreSQL migrations embedded in this binary.
pub static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a request waits for a pooled connection before answering "database unavailable".
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled connection idle for longer than this is pinged before it is handed out.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

/// A pool of up to `max` connections, handed out through [`ping_if_idle`].
fn pool_options<DB: sqlx::Database>(max: u32) -> PoolOptions<DB> {
    PoolOptions::new()
        .max_connections(max)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| Box::pin(ping_if_idle(conn, meta)))
}

/// The pool's check before it hands out a connection. sqlx pings every connection when it is
/// released (always), and by default pings it again on every acquire: one more round trip to
/// PostgreSQL — or one more hop to SQLite's worker thread — per query, on a connection verified a
/// moment ago. Here the acquire ping is kept only for a connection idle long enough to have been
/// cut meanwhile (a database restart, a proxy's idle timeout); a failed ping discards it and the
/// pool hands out another.
async fn ping_if_idle<C: sqlx::Connection>(conn: &mut C, meta: PoolConnectionMetadata) -> Result<bool, sqlx::Error> {
    if meta.idle_for >= PING_WHEN_IDLE_FOR {
        conn.ping().await?;
    }
    Ok(true)
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
            let pool = pool_options::<Postgres>(20).connect(url).await?;
            Ok(Self::Postgres(pool))
        } else {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
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
