//! The database: SQLite (embedded default) or PostgreSQL (production), chosen by `DATABASE_URL`.
//!
//! Both backends run the same operations; each query is written once per dialect, explicitly,
//! and every one of them is exercised by the integration tests on both databases.

use std::{
    str::FromStr,
    sync::Arc,
    time::{Duration, Instant},
};

use sqlx::{
    ConnectOptions, Connection, PgPool, Postgres, Sqlite, SqlitePool,
    migrate::{MigrateError, Migrator},
    pool::{PoolConnectionMetadata, PoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous},
};
use tokio::{
    sync::{Mutex, MutexGuard},
    time::error::Elapsed,
};

/// The SQLite migrations embedded in this binary.
pub static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
/// The PostgreSQL migrations embedded in this binary.
pub static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// How long a request waits for a pooled connection before answering "database unavailable".
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a lookup lane may take to open its connection. Shorter than [`ACQUIRE_TIMEOUT`]: a
/// lane that cannot connect hands the query to the pool, which then has its own wait.
const LANE_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long one query on a lookup lane to PostgreSQL may take before its connection is taken for
/// lost (a connection dropped silently — a NAT or proxy forgetting it without a reset — never
/// answers and never errors). The lanes' reads (the session lookup, a primary-key read, and the
/// dashboard's list of the user's sessions) normally answer in about a millisecond.
pub const LANE_QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// How long SQLite may wait for a lock (`busy_timeout`) before a query fails with "database is
/// locked".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The lanes' query timeout on SQLite: above [`SQLITE_BUSY_TIMEOUT`], so a read waiting for a
/// lock fails with SQLite's own error rather than as a lost connection. (An embedded database
/// has no network link to lose: this only bounds a stuck worker.)
pub const SQLITE_LANE_QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// A lookup lane's connection older than this is closed and replaced before its next query, as
/// sqlx's pool does with its own (its default `max_lifetime`): after a failover that leaves the
/// old host reachable, no lane keeps talking to it for longer.
pub const LANE_MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// How long a retired lane's connection is given to say goodbye (`Terminate`) in the background.
const LANE_CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

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

/// A few connections of their own, outside the pool, for the one query on every signed-in request
/// (the session guard's lookup).
///
/// A pooled connection costs two round trips per query, not one: sqlx pings every connection it
/// takes back, in a task of its own (on SQLite, a hop to the connection's worker thread and
/// back; on PostgreSQL, a `Sync` to the server and its answer). A lane is a connection held
/// behind a lock and never returned to a pool, so its query is the only round trip. It runs the
/// same prepared statement on the same database — every request still reads the row, so a
/// logout or uninstall on any instance ends the session at once.
///
/// - Connected lazily, with the pool's own options (same file, pragmas, TLS, timeouts).
/// - When every lane is busy (or a new connection cannot be opened), [`Lanes::acquire`] says so
///   and the caller uses the pool: the lanes never queue a request.
/// - A lane whose connection broke (a database restart, a proxy cutting idle connections) or
///   stopped answering ([`LaneLimits::query_timeout`]) is reconnected and the query retried once
///   ([`on_lane!`](crate::on_lane), [`is_disconnect`]): a read is safe to repeat, and the fresh connection
///   cannot be stale. A connection that timed out is dropped, never reused: its abandoned query
///   may still be on the wire.
/// - A connection older than [`LaneLimits::max_lifetime`] is closed and replaced at its next use
///   (an idle lane keeps its connection until then), as the pool replaces its own.
/// - A request dropped mid-query (its client went away) leaves its lane usable: sqlx finishes
///   reading the abandoned answer before it sends the next query (PostgreSQL), and SQLite's
///   worker ends the abandoned statement on its own.
pub struct Lanes<C: Connection> {
    slots: Box<[Mutex<Option<Opened<C>>>]>,
    options: Arc<<C as Connection>::Options>,
    limits: LaneLimits,
}

/// How long a lane's query and connection may last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LaneLimits {
    /// One query taking longer than this counts as a lost connection ([`LANE_QUERY_TIMEOUT`]).
    pub query_timeout: Duration,
    /// A connection this old is replaced before its next query ([`LANE_MAX_LIFETIME`]).
    pub max_lifetime: Duration,
}

impl Default for LaneLimits {
    /// PostgreSQL's limits.
    fn default() -> Self {
        Self { query_timeout: LANE_QUERY_TIMEOUT, max_lifetime: LANE_MAX_LIFETIME }
    }
}

impl LaneLimits {
    /// SQLite's limits: a query timeout above its `busy_timeout`.
    pub fn sqlite() -> Self {
        Self { query_timeout: SQLITE_LANE_QUERY_TIMEOUT, ..Self::default() }
    }
}

/// A lane's connection and when it was opened.
struct Opened<C> {
    conn: C,
    at: Instant,
}

/// One lane, held for one query: derefs to its connection.
pub struct Lane<'a, C: Connection> {
    slot: MutexGuard<'a, Option<Opened<C>>>,
    options: &'a <C as Connection>::Options,
    limits: LaneLimits,
}

impl<C: Connection> Lanes<C> {
    /// `count` lanes to the database the pool with `options` connects to.
    pub fn new(options: Arc<<C as Connection>::Options>, count: usize, limits: LaneLimits) -> Self {
        let slots = (0..count).map(|_| Mutex::new(None)).collect();
        Self { slots, options, limits }
    }

    /// The first free lane, connected; `None` when every lane is busy or a new connection could
    /// not be opened (the caller uses the pool, which may still have connections to spare). The
    /// scan starts at the first lane, so a quiet instance keeps one or two connections busy and
    /// opens more only as concurrent requests need them. A connection past its lifetime is
    /// replaced here, before it is handed out.
    pub async fn acquire(&self) -> Result<Option<Lane<'_, C>>, sqlx::Error> {
        for slot in &self.slots {
            if let Ok(slot) = slot.try_lock() {
                let mut lane = Lane { slot, options: &self.options, limits: self.limits };
                if lane.slot.as_ref().is_some_and(|opened| opened.at.elapsed() >= self.limits.max_lifetime) {
                    lane.retire();
                }
                if lane.slot.is_none()
                    && let Err(err) = lane.reconnect().await
                {
                    tracing::warn!(error = %err, "could not open a lookup connection; using the pool");
                    return Ok(None);
                }
                return Ok(Some(lane));
            }
        }
        Ok(None)
    }

    /// Closes every lane's connection (graceful shutdown; a lane used later connects again).
    pub async fn close(&self) {
        for slot in &self.slots {
            if let Some(opened) = slot.lock().await.take() {
                let _ = opened.conn.close().await;
            }
        }
    }
}

impl<C: Connection> Lane<'_, C> {
    /// How long one query on this lane may take ([`on_lane!`](crate::on_lane)).
    pub fn query_timeout(&self) -> Duration {
        self.limits.query_timeout
    }

    /// The outcome of one query under [`Lane::query_timeout`]: no answer in time drops the
    /// connection (its abandoned query may still be on the wire) and reads as a lost connection,
    /// a `TimedOut` I/O error that [`is_disconnect`] accepts.
    pub fn settle<T>(&mut self, answer: Result<Result<T, sqlx::Error>, Elapsed>) -> Result<T, sqlx::Error> {
        answer.unwrap_or_else(|_| {
            self.discard();
            Err(sqlx::Error::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the lookup connection did not answer within {:?}", self.limits.query_timeout),
            )))
        })
    }

    /// [`Lane::settle`] for the retry: a fresh connection that failed as well is dropped, so the
    /// next request starts on a new one.
    pub fn settle_retry<T>(&mut self, answer: Result<Result<T, sqlx::Error>, Elapsed>) -> Result<T, sqlx::Error> {
        let settled = self.settle(answer);
        if settled.as_ref().is_err_and(is_disconnect) {
            self.discard();
        }
        settled
    }

    /// Reconnects after `lost` (an error [`is_disconnect`] accepted), for the one retry; `false`
    /// when no new connection could be opened (the caller then reads on the pool).
    pub async fn reconnect_after(&mut self, lost: &sqlx::Error) -> bool {
        tracing::info!(error = %lost, "lookup connection lost; reconnecting");
        match self.reconnect().await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(error = %err, "could not reopen a lookup connection; using the pool");
                false
            }
        }
    }

    /// Replaces this lane's connection with a new one (the old one, if any, is dropped), within
    /// [`LANE_CONNECT_TIMEOUT`].
    pub async fn reconnect(&mut self) -> Result<(), sqlx::Error> {
        self.discard();
        let conn = tokio::time::timeout(LANE_CONNECT_TIMEOUT, self.options.connect())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        *self.slot = Some(Opened { conn, at: Instant::now() });
        Ok(())
    }

    /// Drops the connection as it is (broken, or an abandoned query still on it).
    fn discard(&mut self) {
        *self.slot = None;
    }

    /// Closes a healthy connection that served its time, in the background (the request does not
    /// wait for the database to acknowledge).
    fn retire(&mut self) {
        if let Some(opened) = self.slot.take() {
            let closing = opened.conn.close();
            tokio::spawn(async move {
                if let Ok(Err(err)) = tokio::time::timeout(LANE_CLOSE_TIMEOUT, closing).await {
                    tracing::debug!(error = %err, "closing a retired lookup connection");
                }
            });
        }
    }
}

impl<C: Connection> std::ops::Deref for Lane<'_, C> {
    type Target = C;

    fn deref(&self) -> &C {
        &self.slot.as_ref().expect("a lane is connected while held").conn
    }
}

impl<C: Connection> std::ops::DerefMut for Lane<'_, C> {
    fn deref_mut(&mut self) -> &mut C {
        &mut self.slot.as_mut().expect("a lane is connected while held").conn
    }
}

/// Runs `$query`, an expression of the executor `$conn` (a future of `Result<_, sqlx::Error>`),
/// on a free lane of `$lanes` — within the lane's query timeout, and once more on a fresh
/// connection when the lane's had broken or stopped answering — or on `$pool` when every lane
/// is busy, or when no fresh connection could be opened for the retry. Used where the caller returns `Result<_, sqlx::Error>` (`?` inside).
///
/// A macro, not a method taking a closure: the query borrows the connection, and the future of
/// a closure over `&mut C` cannot be proven `Send` for every lifetime, which the server
/// functions' futures must be.
#[doc(hidden)]
#[macro_export]
macro_rules! on_lane {
    ($lanes:expr, $pool:expr, |$conn:ident| $query:expr) => {
        match $lanes.acquire().await? {
            Some(mut lane) => {
                let timeout = lane.query_timeout();
                let first = {
                    let $conn = &mut *lane;
                    $crate::server::db::within(timeout, $query).await
                };
                match lane.settle(first) {
                    Err(err) if $crate::server::db::is_disconnect(&err) => {
                        if lane.reconnect_after(&err).await {
                            let second = {
                                let $conn = &mut *lane;
                                $crate::server::db::within(timeout, $query).await
                            };
                            lane.settle_retry(second)
                        } else {
                            drop(lane);
                            let $conn = $pool;
                            $query.await
                        }
                    }
                    done => done,
                }
            }
            None => {
                let $conn = $pool;
                $query.await
            }
        }
    };
}

/// `future`, given up after `timeout` (for [`on_lane!`](crate::on_lane)).
pub fn within<F: Future>(timeout: Duration, future: F) -> tokio::time::Timeout<F> {
    tokio::time::timeout(timeout, future)
}

/// Whether `err` means the connection itself is gone (so a fresh one may succeed), not that the
/// query failed: I/O, TLS or protocol trouble, SQLite's worker gone, or PostgreSQL's "connection
/// exception" (`08…`) and "operator intervention" (`57P…`: terminated, shutting down) classes.
pub fn is_disconnect(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
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

    #[test]
    fn only_a_lost_connection_counts_as_a_disconnect() {
        let reset = || std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert!(is_disconnect(&sqlx::Error::Io(reset())));
        assert!(is_disconnect(&sqlx::Error::WorkerCrashed));
        assert!(is_disconnect(&sqlx::Error::Protocol("unexpected message".into())));
        // A query that failed on a healthy connection is not retried.
        assert!(!is_disconnect(&sqlx::Error::RowNotFound));
        assert!(!is_disconnect(&sqlx::Error::PoolTimedOut));
        assert!(!is_disconnect(&sqlx::Error::ColumnNotFound("tenant_id".into())));
    }

    #[tokio::test]
    async fn a_lane_reads_what_the_pool_wrote_and_every_lane_busy_means_none() {
        let Db::Sqlite(pool) = Db::connect("sqlite::memory:").await.unwrap() else { unreachable!() };
        sqlx::query("CREATE TABLE t (v INTEGER)").execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO t VALUES (7)").execute(&pool).await.unwrap();
        let lanes = Lanes::<sqlx::SqliteConnection>::new(pool.connect_options(), 2, LaneLimits::default());
        let mut first = lanes.acquire().await.unwrap().expect("a free lane");
        let v: i64 = sqlx::query_scalar("SELECT v FROM t").fetch_one(&mut *first).await.unwrap();
        assert_eq!(v, 7, "the same database as the pool's");
        let second = lanes.acquire().await.unwrap().expect("the other lane");
        assert!(lanes.acquire().await.unwrap().is_none(), "both held: the caller uses the pool");
        drop(second);
        assert!(lanes.acquire().await.unwrap().is_some(), "a released lane is free again");
        drop(first);
        lanes.close().await;
    }

    /// A SQLite file `name` in `dir`, created on first connect.
    fn file_db(dir: &tempfile::TempDir, name: &str) -> SqliteConnectOptions {
        SqliteConnectOptions::from_str(&format!("sqlite://{}/{name}", dir.path().display()))
            .unwrap()
            .create_if_missing(true)
    }

    #[tokio::test]
    async fn a_lane_that_cannot_connect_hands_the_query_to_the_pool() {
        // Positive control: the same lanes over a database that exists hand out a lane.
        let dir = tempfile::tempdir().unwrap();
        let good = file_db(&dir, "ok.db");
        let lanes = Lanes::<sqlx::SqliteConnection>::new(Arc::new(good), 1, LaneLimits::default());
        assert!(lanes.acquire().await.unwrap().is_some(), "a reachable database gives a lane");
        lanes.close().await;
        // A database that cannot be opened: no error for the request, `None`, so the pool decides.
        let missing =
            SqliteConnectOptions::from_str(&format!("sqlite://{}/no/such/dir.db", dir.path().display())).unwrap();
        let lanes = Lanes::<sqlx::SqliteConnection>::new(Arc::new(missing), 1, LaneLimits::default());
        assert!(lanes.acquire().await.unwrap().is_none(), "no lane: the caller uses the pool");
    }

    #[tokio::test]
    async fn a_lane_past_its_lifetime_reads_on_a_new_connection() {
        let dir = tempfile::tempdir().unwrap();
        let options = file_db(&dir, "life.db");
        let limits = LaneLimits { max_lifetime: Duration::from_secs(1), ..LaneLimits::sqlite() };
        let lanes = Lanes::<sqlx::SqliteConnection>::new(Arc::new(options), 1, limits);
        // A TEMP table lives and dies with its connection: it tells whether the lane reconnected.
        let marked = async || -> Result<i64, sqlx::Error> {
            let mut lane = lanes.acquire().await?.expect("a free lane");
            sqlx::query_scalar("SELECT count(*) FROM sqlite_temp_master WHERE name = 'mark'")
                .fetch_one(&mut *lane)
                .await
        };
        let mut lane = lanes.acquire().await.unwrap().expect("a free lane");
        sqlx::query("CREATE TEMP TABLE mark (v INTEGER)").execute(&mut *lane).await.unwrap();
        drop(lane);
        assert_eq!(marked().await.unwrap(), 1, "positive control: within its lifetime the lane keeps its connection");
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(marked().await.unwrap(), 0, "past its lifetime: a new connection");
        lanes.close().await;
    }
}
