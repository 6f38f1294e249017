//! The database: SQLite (embedded default) or PostgreSQL (production), chosen by `DATABASE_URL`.
//!
//! Both backends run the same operations, and every one of them is exercised by the integration
//! tests on both databases. A query is written once where its SQL is the same on both
//! ([`on_pool!`]: sqlx numbers parameters `$1`, `$2`, … on SQLite as on PostgreSQL), and once per
//! dialect only where the SQL truly differs.

use std::{str::FromStr, time::Duration};

use sqlx::{
    PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool,
    encode::IsNull,
    error::BoxDynError,
    migrate::{MigrateError, Migrator},
    pool::{Pool, PoolConnection, PoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};
use uuid::Uuid;

/// The SQLite migrations embedded in this binary.
pub static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/sqlite");
/// The PostgreSQL migrations embedded in this binary.
pub static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../../migrations/postgres");

/// How long a request waits for a pooled connection before answering "database unavailable".
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long SQLite may wait for a lock (`busy_timeout`) before a query fails with "database is
/// locked": within [`QUERY_TIMEOUT`], so that a write waiting on the lock ends with that error.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(4);
/// How long one database operation may take: taking a connection, then its statements. A
/// connection the database ended is replaced when it is next taken (see [`PING_AFTER_IDLE`]) or
/// after the one query it fails; a connection dropped *silently* (a NAT or a failover forgetting
/// it: no reset, no answer ever) would never answer or fail, and this bounds it: the request gets
/// "database unavailable" instead of hanging, and [`bounded`] drops the connection.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL connection that sat in the pool this long is pinged before it is handed out, and
/// replaced if the database ended it (a restart, a proxy's idle timeout); one used more recently
/// is handed out as it is — HikariCP's rule (`aliveBypassWindowMs`, 500 ms). sqlx's own
/// `test_before_acquire` pings before every use: a third round trip on every signed-in request,
/// where sqlx already pings each connection when it comes back (its test on release). A
/// connection the database ended while the pool is busy fails the one query that meets it (503)
/// and is then dropped.
pub const PING_AFTER_IDLE: Duration = Duration::from_millis(500);

/// A pool of up to `max` connections, as sqlx configures it, with [`ACQUIRE_TIMEOUT`].
fn pool_options<DB: sqlx::Database>(max: u32) -> PoolOptions<DB> {
    PoolOptions::new().max_connections(max).acquire_timeout(ACQUIRE_TIMEOUT)
}

/// `run` on a connection taken from `pool`, the two given up after [`QUERY_TIMEOUT`] (a `TimedOut`
/// I/O error) — every query but the migrations goes through here ([`on_pool!`]). A connection
/// whose work does not finish — given up here, or dropped by the caller (a client gone,
/// `/readyz`'s shorter wait) — is detached from the pool and dropped, not returned: sqlx pings a
/// returned connection (and a graceful close says goodbye over TLS), and on a silently dropped one
/// either would wait as long as TCP keeps it, holding its place in the pool; with every place held
/// so, no request would get a connection again. A transaction given up so is rolled back when the
/// database sees the connection close.
pub async fn bounded<DB: sqlx::Database, T>(
    pool: &Pool<DB>,
    run: impl AsyncFnOnce(&mut DB::Connection) -> Result<T, sqlx::Error>,
) -> Result<T, sqlx::Error> {
    within(QUERY_TIMEOUT, pool, run).await
}

async fn within<DB: sqlx::Database, T>(
    timeout: Duration,
    pool: &Pool<DB>,
    run: impl AsyncFnOnce(&mut DB::Connection) -> Result<T, sqlx::Error>,
) -> Result<T, sqlx::Error> {
    let running = async {
        let mut taken = Unfinished(Some(pool.acquire().await?));
        let result = run(taken.0.as_mut().expect("held until the work finishes")).await;
        drop(taken.0.take()); // Finished: back to the pool.
        result
    };
    let given_up = |_| {
        let message = format!("the database did not answer within {timeout:?}");
        Err(sqlx::Error::Io(std::io::Error::new(std::io::ErrorKind::TimedOut, message)))
    };
    tokio::time::timeout(timeout, running).await.unwrap_or_else(given_up)
}

/// A connection whose work has not finished: if dropped so, it leaves the pool (its place freed at
/// once) and its socket is closed, without the goodbye a graceful close would wait to send.
struct Unfinished<DB: sqlx::Database>(Option<PoolConnection<DB>>);

impl<DB: sqlx::Database> Drop for Unfinished<DB> {
    fn drop(&mut self) {
        drop(self.0.take().map(PoolConnection::detach));
    }
}

/// `$body` on a connection `$c` taken from whichever pool `$db` holds, [`bounded`]: one SQL text,
/// and one set of binds, for both databases. `?` in `$body` fails the operation; the whole is
/// `Result<` the body's value `, sqlx::Error>`.
#[macro_export]
macro_rules! on_pool {
    ($db:expr, |$c:ident| $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite(pool) => $crate::db::bounded(pool, async |$c| Ok($body)).await,
            $crate::db::Db::Postgres(pool) => $crate::db::bounded(pool, async |$c| Ok($body)).await,
        }
    };
}
pub use crate::on_pool;

/// A client's id as a query parameter: a `uuid` on PostgreSQL, its hyphenated text on SQLite
/// (each database's type of `clients.id` and `app_sessions.client_id`), so that one query binds
/// it the same way on both.
#[derive(Clone, Copy, Debug)]
pub struct ClientKey(pub Uuid);

impl sqlx::Type<Sqlite> for ClientKey {
    fn type_info() -> sqlx::sqlite::SqliteTypeInfo {
        <String as sqlx::Type<Sqlite>>::type_info()
    }
}

impl<'q> sqlx::Encode<'q, Sqlite> for ClientKey {
    fn encode_by_ref(&self, buf: &mut Vec<sqlx::sqlite::SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <String as sqlx::Encode<'q, Sqlite>>::encode(self.0.to_string(), buf)
    }
}

impl sqlx::Type<Postgres> for ClientKey {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        <Uuid as sqlx::Type<Postgres>>::type_info()
    }
}

impl sqlx::Encode<'_, Postgres> for ClientKey {
    fn encode_by_ref(&self, buf: &mut sqlx::postgres::PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <Uuid as sqlx::Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
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

impl Backend {
    /// The database a `DATABASE_URL` names (`postgres://`, `postgresql://` or `sqlite:`), `None`
    /// for anything else: the one reading of its scheme (settings, start-up, doctor, import).
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else {
            None
        }
    }

    /// Whether a SQLite `DATABASE_URL` names an in-memory database (`sqlite::memory:`,
    /// `?mode=memory`): there is no file to look for.
    pub fn is_in_memory(url: &str) -> bool {
        url.contains(":memory:") || url.contains("mode=memory")
    }

    /// Its name, for people.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        }
    }

    /// Its migrations, as this binary embeds them.
    pub fn migrator(self) -> &'static Migrator {
        match self {
            Self::Sqlite => &SQLITE_MIGRATIONS,
            Self::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

impl Db {
    /// Connects to `url`, creating the SQLite file if it does not exist.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        if Backend::of_url(url) == Some(Backend::Postgres) {
            let pool = pool_options::<Postgres>(10)
                .test_before_acquire(false)
                .before_acquire(|connection, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PING_AFTER_IDLE {
                            sqlx::Connection::ping(connection).await?;
                        }
                        Ok(true)
                    })
                })
                .connect(url)
                .await?;
            Ok(Self::Postgres(pool))
        } else {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT);
            // No ping before a connection is handed out (on PostgreSQL only after
            // [`PING_AFTER_IDLE`]): an embedded database has no server to end a connection, and on
            // SQLite each ping is one more hop to the connection's worker thread.
            let pool = pool_options::<Sqlite>(8).test_before_acquire(false).connect_with(options).await?;
            Ok(Self::Sqlite(pool))
        }
    }

    /// Applies the pending migrations of this backend (not [`bounded`]: a migration may take long).
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
        on_pool!(self, |c| sqlx::query("SELECT 1").execute(c).await.map(|_| ())?)
    }

    /// Closes every connection (graceful shutdown).
    pub async fn close(&self) {
        match self {
            Self::Sqlite(pool) => pool.close().await,
            Self::Postgres(pool) => pool.close().await,
        }
    }
}

/// A migration as `_sqlx_migrations` records it.
#[derive(Debug, sqlx::FromRow)]
pub struct Recorded {
    /// Its version.
    pub version: i64,
    /// The checksum of the file that was applied.
    pub checksum: Vec<u8>,
    /// `false` when it failed part-way.
    pub success: bool,
}

const RECORDED: &str = "SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version";

/// What an SQLite database's `_sqlx_migrations` records, none before its first migration, read
/// without writing (sqlx's own `Migrate` creates the table): for the doctor and the import.
pub async fn recorded_migrations_sqlite(conn: &mut SqliteConnection) -> Result<Vec<Recorded>, sqlx::Error> {
    let exists: bool =
        sqlx::query_scalar("SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'")
            .fetch_one(&mut *conn)
            .await?;
    if exists { sqlx::query_as(RECORDED).fetch_all(conn).await } else { Ok(Vec::new()) }
}

/// [`recorded_migrations_sqlite`] on PostgreSQL.
pub async fn recorded_migrations_postgres(conn: &mut PgConnection) -> Result<Vec<Recorded>, sqlx::Error> {
    let exists: bool =
        sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL").fetch_one(&mut *conn).await?;
    if exists { sqlx::query_as(RECORDED).fetch_all(conn).await } else { Ok(Vec::new()) }
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
    async fn work_that_does_not_finish_drops_its_connection_whether_given_up_or_cancelled() {
        let pool = SqlitePool::connect("sqlite::memory:").await.unwrap();
        let started = std::sync::atomic::AtomicUsize::new(0);
        let stall = async |_: &mut sqlx::SqliteConnection| {
            started.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            std::future::pending::<Result<(), sqlx::Error>>().await
        };
        let given_up = within(Duration::from_millis(300), &pool, stall).await;
        let Err(sqlx::Error::Io(given_up)) = given_up else { panic!("a timed-out I/O error: {given_up:?}") };
        assert_eq!(given_up.to_string(), "the database did not answer within 300ms");
        let cancelled = tokio::time::timeout(Duration::from_millis(300), bounded(&pool, stall)).await;
        assert!(cancelled.is_err(), "dropped by its caller");
        assert_eq!(started.into_inner(), 2, "both had their connection");
        assert_eq!(pool.size(), 0, "neither connection went back to the pool");

        // Control: work that finishes is passed through, and its connection stays in the pool.
        let seven = bounded(&pool, async |c| sqlx::query_scalar::<_, i64>("SELECT 7").fetch_one(c).await);
        assert_eq!(seven.await.unwrap(), 7);
        assert_eq!(pool.size(), 1, "the connection stays in the pool");
    }
}
