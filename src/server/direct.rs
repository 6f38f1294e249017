//! Reads of the SQLite file on the request's own thread, for the one query of every signed-in
//! request (the session guard's lookup, [`AppSessionStore::validate_key`]).
//!
//! sqlx runs every SQLite connection on a thread of its own: a statement is a message to that
//! thread and its rows a message back, two thread wake-ups per query. On the bench machine that
//! hand-off was most of the guard's cost on SQLite (`bench/profile.md`: futex calls and sqlx's
//! channel outweighed SQLite itself several times over), while SQLite answers a primary-key read
//! from its page cache in a few microseconds. [`DirectReads`] keeps a few connections of its own —
//! rusqlite, on the very SQLite library sqlx links (one `libsqlite3-sys`, bundled) — and runs the
//! read where the request already is, without an `await`:
//!
//! - **Read-only.** Opened with `SQLITE_OPEN_READ_ONLY`: this path cannot write, whatever SQL it
//!   is given.
//! - **No cache.** Every call reads the row as committed in the database file at that moment (a
//!   new read transaction per statement), so a logout or an uninstall by this process or any
//!   other one on the same file ends the session at the very next request, exactly as on sqlx's
//!   connections.
//! - **Does not wait for locks.** `busy_timeout` is 0: when the database is locked (in WAL mode,
//!   which the app uses, only WAL recovery or another process in exclusive locking mode does
//!   that) the read fails at once with `SQLITE_BUSY` and the caller hands it to sqlx, whose worker
//!   thread waits up to the pool's `busy_timeout`. The runtime thread is held for the read — and,
//!   on a connection's first use (and every [`LANE_MAX_LIFETIME`] after), for opening the file
//!   and reading its schema.
//! - **Never in the way.** Every slot busy, a connection that cannot be opened, or any error at
//!   all: the call returns `None` and the caller runs the same query through sqlx, which answers
//!   — or reports the error — exactly as it did before this path existed. A connection whose
//!   error was not about one row (I/O, a corrupt file, a missing table) is closed and its slot
//!   rests for [`OPEN_RETRY`], as after a failed open, so a lasting fault does not cost an `open`
//!   per request.
//! - **Only for a database file.** The file is the one sqlx's own connection reports as `main`
//!   (`pragma_database_list`), asked at the first lookup (again after [`OPEN_RETRY`] if that
//!   failed); an in-memory database (`sqlite::memory:`, `mode=memory`) has no file, is private to
//!   sqlx's connections and has no direct path. The connections use SQLite's default VFS: a
//!   `DATABASE_URL` naming another one (`vfs=`, or `immutable=1`) is not supported.
//! - A connection older than [`LANE_MAX_LIFETIME`] is reopened, as sqlx's pool and the lookup
//!   lanes replace theirs: a file replaced under the server (a restore by renaming over it) is
//!   seen within that time, as on sqlx's own connections.
//!
//! [`AppSessionStore::validate_key`]: super::sessions::AppSessionStore::validate_key

use std::{
    path::{Path, PathBuf},
    sync::{
        Mutex, MutexGuard, TryLockError,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rusqlite::{Connection, ErrorCode, OpenFlags};
use sqlx::SqlitePool;
use tokio::sync::OnceCell;

#[cfg(doc)]
use super::db::LANE_MAX_LIFETIME;

/// How long a slot whose connection could not be opened, or failed, rests before it opens one
/// again; also how long a failed [`DirectReads::resolve`] waits before it asks again.
pub const OPEN_RETRY: Duration = Duration::from_secs(10);

/// Prepared statements kept per connection (the guard uses one).
const STATEMENT_CACHE: usize = 8;

/// A few read-only connections to the SQLite file, used on the caller's thread (module docs).
pub struct DirectReads {
    /// The database file, once asked of sqlx (`None` inside: no file, no direct path).
    file: OnceCell<Option<PathBuf>>,
    /// After a failed [`DirectReads::resolve`]: no new attempt before this.
    resolve_after: Mutex<Option<Instant>>,
    slots: Box<[Mutex<Slot>]>,
    max_lifetime: Duration,
    served: AtomicU64,
    handed_over: AtomicU64,
}

#[derive(Default)]
struct Slot {
    conn: Option<(Connection, Instant)>,
    /// After a failed open: no new attempt before this.
    closed_until: Option<Instant>,
}

/// How many reads the direct path served and how many it handed to sqlx (for `/metrics`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirectCounts {
    /// Reads answered on the caller's thread.
    pub served: u64,
    /// Reads handed to sqlx: every slot busy, no connection, the database locked, or an error.
    pub handed_over: u64,
}

impl DirectReads {
    /// `count` connections (opened on first use), replaced after `max_lifetime`.
    pub fn new(count: usize, max_lifetime: Duration) -> Self {
        Self {
            file: OnceCell::new(),
            resolve_after: Mutex::new(None),
            slots: (0..count.max(1)).map(|_| Mutex::new(Slot::default())).collect(),
            max_lifetime,
            served: AtomicU64::new(0),
            handed_over: AtomicU64::new(0),
        }
    }

    /// One slot per thread that can run a request at once — the runtime's workers (by default
    /// one per core; more when `TOKIO_WORKER_THREADS` says so): a read holds its slot only while
    /// it runs, never across an `await`.
    pub fn per_worker(max_lifetime: Duration) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let workers = tokio::runtime::Handle::try_current().map_or(0, |rt| rt.metrics().num_workers());
        Self::new(cores.max(workers), max_lifetime)
    }

    /// Learns the database file from `pool` (once; later calls return at once). `false` when the
    /// database has no file (in memory), or when the pool could not say — then the read goes to
    /// sqlx, counts as handed over, and the pool is asked again after [`OPEN_RETRY`].
    pub async fn resolve(&self, pool: &SqlitePool) -> bool {
        if let Some(file) = self.file.get() {
            return file.is_some();
        }
        if lock(&self.resolve_after).is_some_and(|after| Instant::now() < after) {
            self.handed_over.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        match self.file.get_or_try_init(|| database_file(pool)).await {
            Ok(file) => file.is_some(),
            Err(err) => {
                tracing::warn!(error = %err, retry_in = ?OPEN_RETRY,
                    "could not learn the SQLite file; session lookups use sqlx meanwhile");
                *lock(&self.resolve_after) = Some(Instant::now() + OPEN_RETRY);
                self.handed_over.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// The database file, when [`DirectReads::resolve`] found one.
    pub fn file(&self) -> Option<&Path> {
        self.file.get().and_then(Option::as_deref)
    }

    /// Runs `read` on a free connection of its own, on this thread; `None` when it could not
    /// (the caller then runs the same query through sqlx). Call [`DirectReads::resolve`] first.
    pub fn read<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<T> {
        let file = self.file()?;
        let Some(mut slot) = self.slots.iter().find_map(try_lock) else {
            return self.hand_over();
        };
        let Some(conn) = slot.connection(file, self.max_lifetime) else {
            return self.hand_over();
        };
        match read(conn) {
            Ok(value) => {
                self.served.fetch_add(1, Ordering::Relaxed);
                Some(value)
            }
            Err(err) => {
                if !keeps_connection(&err) {
                    tracing::warn!(error = %err, retry_in = ?OPEN_RETRY,
                        "direct SQLite read failed; closing its connection (session lookups use sqlx meanwhile)");
                    slot.conn = None;
                    slot.closed_until = Some(Instant::now() + OPEN_RETRY);
                }
                self.hand_over()
            }
        }
    }

    fn hand_over<T>(&self) -> Option<T> {
        self.handed_over.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// What this path has done so far.
    pub fn counts(&self) -> DirectCounts {
        DirectCounts {
            served: self.served.load(Ordering::Relaxed),
            handed_over: self.handed_over.load(Ordering::Relaxed),
        }
    }

    /// Closes every connection (graceful shutdown; a later read opens one again).
    pub fn close(&self) {
        for slot in &self.slots {
            lock(slot).conn = None;
        }
    }
}

impl std::fmt::Debug for DirectReads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectReads")
            .field("file", &self.file.get())
            .field("slots", &self.slots.len())
            .field("counts", &self.counts())
            .finish()
    }
}

/// `mutex`, locked; poisoning is ignored (what it guards stays consistent at every step).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A free slot; a slot poisoned by a panicking read is taken back with its connection dropped
/// (the statement it was running is finalised with it).
fn try_lock(slot: &Mutex<Slot>) -> Option<MutexGuard<'_, Slot>> {
    match slot.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::WouldBlock) => None,
        Err(TryLockError::Poisoned(poisoned)) => {
            let mut guard = poisoned.into_inner();
            guard.conn = None;
            slot.clear_poison();
            Some(guard)
        }
    }
}

impl Slot {
    /// This slot's connection, opened (or replaced, past `max_lifetime`) as needed; `None` while
    /// a failed open is waiting out [`OPEN_RETRY`].
    fn connection(&mut self, file: &Path, max_lifetime: Duration) -> Option<&Connection> {
        if self.conn.as_ref().is_some_and(|(_, opened)| opened.elapsed() >= max_lifetime) {
            self.conn = None;
        }
        if self.conn.is_none() {
            if self.closed_until.is_some_and(|until| Instant::now() < until) {
                return None;
            }
            match open(file) {
                Ok(conn) => {
                    self.closed_until = None;
                    self.conn = Some((conn, Instant::now()));
                }
                Err(err) => {
                    tracing::warn!(error = %err, file = %file.display(), retry_in = ?OPEN_RETRY,
                        "could not open the SQLite file for direct reads; session lookups use sqlx meanwhile");
                    self.closed_until = Some(Instant::now() + OPEN_RETRY);
                    return None;
                }
            }
        }
        self.conn.as_ref().map(|(conn, _)| conn)
    }
}

/// A read-only connection to `file` that never waits for a lock. Never creates the file.
fn open(file: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::ZERO)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// Whether `err` leaves the connection fit for the next read: a lock held by a writer, or a
/// value that did not decode (a matter of one row, which sqlx's decoders then read).
fn keeps_connection(err: &rusqlite::Error) -> bool {
    match err {
        rusqlite::Error::SqliteFailure(failure, _) => {
            matches!(failure.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        }
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..) => true,
        _ => false,
    }
}

/// The file of the `main` database of `pool`'s connections; `None` for an in-memory database
/// (SQLite reports an empty file name for it).
async fn database_file(pool: &SqlitePool) -> Result<Option<PathBuf>, sqlx::Error> {
    let file: Option<String> = sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
        .fetch_optional(pool)
        .await?
        .flatten();
    Ok(file.filter(|file| !file.is_empty()).map(PathBuf::from))
}

#[cfg(test)]
mod tests {
    use rusqlite::OptionalExtension;

    use super::*;
    use crate::server::db::Db;

    /// A SQLite file with one table and one row, through the app's own pool (WAL mode, as served).
    async fn database(dir: &tempfile::TempDir) -> SqlitePool {
        let url = format!("sqlite://{}", dir.path().join("direct.db").display());
        let Db::Sqlite(pool) = Db::connect(&url).await.unwrap() else { unreachable!() };
        sqlx::query("CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT NOT NULL)").execute(&pool).await.unwrap();
        sqlx::query("INSERT INTO t VALUES ('a', 'one')").execute(&pool).await.unwrap();
        pool
    }

    /// [`database`] with `DirectReads` of one slot over it, its file learned.
    async fn resolved(lifetime: Duration) -> (tempfile::TempDir, SqlitePool, DirectReads) {
        let dir = tempfile::tempdir().unwrap();
        let pool = database(&dir).await;
        let reads = DirectReads::new(1, lifetime);
        assert!(reads.resolve(&pool).await);
        (dir, pool, reads)
    }

    fn value_of(reads: &DirectReads, id: &str) -> Option<Option<String>> {
        reads.read(|conn| {
            conn.prepare_cached("SELECT v FROM t WHERE id = ?1")?.query_row([id], |row| row.get(0)).optional()
        })
    }

    #[tokio::test]
    async fn reads_the_row_as_committed_by_another_connection_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let pool = database(&dir).await;
        let reads = DirectReads::new(2, Duration::from_secs(60));
        assert!(reads.resolve(&pool).await);
        assert_eq!(value_of(&reads, "a"), Some(Some("one".to_owned())));
        // A write through sqlx (standing for another request, or another instance) is seen by
        // the very next direct read: nothing is cached.
        sqlx::query("DELETE FROM t WHERE id = 'a'").execute(&pool).await.unwrap();
        assert_eq!(value_of(&reads, "a"), Some(None));
        assert_eq!(reads.counts(), DirectCounts { served: 2, handed_over: 0 });
    }

    #[tokio::test]
    async fn an_in_memory_database_has_no_direct_path() {
        let Db::Sqlite(pool) = Db::connect("sqlite::memory:").await.unwrap() else { unreachable!() };
        let reads = DirectReads::new(2, Duration::from_secs(60));
        assert!(!reads.resolve(&pool).await);
        assert_eq!(reads.read(|_| Ok(())), None);
        // Control: a file database has one.
        let dir = tempfile::tempdir().unwrap();
        assert!(DirectReads::new(1, Duration::from_secs(60)).resolve(&database(&dir).await).await);
    }

    #[tokio::test]
    async fn cannot_write_even_when_asked_to() {
        let (_dir, pool, reads) = resolved(Duration::from_secs(60)).await;
        let wrote = reads.read(|conn| conn.execute("DELETE FROM t", []));
        assert_eq!(wrote, None, "a read-only connection refuses the write and hands it over");
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM t").fetch_one(&pool).await.unwrap();
        assert_eq!(left, 1);
        assert_eq!(reads.counts(), DirectCounts { served: 0, handed_over: 1 });
        // Control: a read is served (after the slot's rest: the refused write closed its connection).
        reads.slots[0].lock().unwrap().closed_until = None;
        assert_eq!(value_of(&reads, "a"), Some(Some("one".to_owned())));
    }

    #[tokio::test]
    async fn a_locked_database_is_handed_over_at_once_instead_of_waited_for() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("locked.db");
        // A rollback-journal database (in WAL mode readers are never blocked by a writer), held
        // under an exclusive lock by another connection.
        let writer = Connection::open(&file).unwrap();
        writer
            .execute_batch("CREATE TABLE t (id TEXT PRIMARY KEY, v TEXT NOT NULL); INSERT INTO t VALUES ('a', 'one');")
            .unwrap();
        let url = format!("sqlite://{}?mode=rw", file.display());
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let reads = DirectReads::new(1, Duration::from_secs(60));
        assert!(reads.resolve(&pool).await);
        assert_eq!(value_of(&reads, "a"), Some(Some("one".to_owned())), "control: unlocked, it reads");

        writer.execute_batch("BEGIN EXCLUSIVE; UPDATE t SET v = 'two';").unwrap();
        let started = Instant::now();
        assert_eq!(value_of(&reads, "a"), None);
        assert!(started.elapsed() < Duration::from_secs(1), "busy_timeout 0: no wait ({:?})", started.elapsed());
        assert_eq!(reads.counts(), DirectCounts { served: 1, handed_over: 1 });

        writer.execute_batch("COMMIT").unwrap();
        assert_eq!(value_of(&reads, "a"), Some(Some("two".to_owned())), "the same connection reads again");
    }

    #[tokio::test]
    async fn a_failing_connection_is_closed_and_its_slot_rests_before_reopening() {
        let (_dir, _pool, reads) = resolved(Duration::from_secs(60)).await;
        assert_eq!(value_of(&reads, "a"), Some(Some("one".to_owned())));
        let opened = |reads: &DirectReads| reads.slots[0].lock().unwrap().conn.as_ref().map(|(_, at)| *at);
        let first = opened(&reads).expect("open after a served read");

        // A fault that is not about one row (here: a table that does not exist).
        assert_eq!(reads.read(|conn| conn.query_row("SELECT 1 FROM missing", [], |_| Ok(()))), None);
        assert_eq!(opened(&reads), None, "closed");
        assert_eq!(value_of(&reads, "a"), None, "resting: handed over without opening the file");
        assert_eq!(opened(&reads), None);
        assert_eq!(reads.counts(), DirectCounts { served: 1, handed_over: 2 });

        // Control: after the rest a new connection is opened and serves.
        reads.slots[0].lock().unwrap().closed_until = Some(Instant::now());
        assert_eq!(value_of(&reads, "a"), Some(Some("one".to_owned())));
        assert!(opened(&reads).is_some_and(|at| at > first), "a new connection");
    }

    #[tokio::test]
    async fn a_database_whose_file_cannot_be_learned_is_asked_again_after_a_rest() {
        let dir = tempfile::tempdir().unwrap();
        let pool = database(&dir).await;
        let reads = DirectReads::new(1, Duration::from_secs(60));
        pool.close().await;
        assert!(!reads.resolve(&pool).await, "a closed pool cannot say");
        assert!(!reads.resolve(&pool).await, "resting: not asked again");
        assert_eq!(reads.counts(), DirectCounts { served: 0, handed_over: 2 });

        // Control: once the rest is over, a pool that answers gives the file.
        let other = tempfile::tempdir().unwrap();
        let pool = database(&other).await;
        *reads.resolve_after.lock().unwrap() = Some(Instant::now());
        assert!(reads.resolve(&pool).await);
        assert!(reads.file().is_some());
    }

    #[tokio::test]
    async fn a_busy_slot_is_not_waited_for() {
        let (_dir, _pool, reads) = resolved(Duration::from_secs(60)).await;
        let inner = reads.read(|_| Ok(value_of(&reads, "a")));
        assert_eq!(inner, Some(None), "the one slot was held by the outer read");
        assert_eq!(reads.counts(), DirectCounts { served: 1, handed_over: 1 });
        // Control: with the slot free again, the same read is served.
        assert_eq!(value_of(&reads, "a"), Some(Some("one".to_owned())));
    }

    #[tokio::test]
    async fn a_file_that_cannot_be_opened_is_not_retried_on_every_read() {
        let (dir, _pool, reads) = resolved(Duration::from_secs(60)).await;
        let file = reads.file().unwrap().to_owned();
        let moved = dir.path().join("moved.db");
        std::fs::rename(&file, &moved).unwrap();
        assert_eq!(value_of(&reads, "a"), None, "no file: handed over");
        std::fs::rename(&moved, &file).unwrap();
        assert_eq!(value_of(&reads, "a"), None, "the failed open waits out OPEN_RETRY");
        assert!(reads.slots[0].lock().unwrap().closed_until.is_some());
        // Control: once the wait is over, the slot opens the file again.
        reads.slots[0].lock().unwrap().closed_until = Some(Instant::now());
        assert_eq!(value_of(&reads, "a"), Some(Some("one".to_owned())));
    }

    #[tokio::test]
    async fn a_connection_past_its_lifetime_is_replaced() {
        let (_dir, _pool, reads) = resolved(Duration::ZERO).await;
        assert_eq!(value_of(&reads, "a"), Some(Some("one".to_owned())));
        let first = reads.slots[0].lock().unwrap().conn.as_ref().map(|(_, at)| *at).unwrap();
        assert_eq!(value_of(&reads, "a"), Some(Some("one".to_owned())));
        let second = reads.slots[0].lock().unwrap().conn.as_ref().map(|(_, at)| *at).unwrap();
        assert!(second > first, "a new connection was opened");
    }
}
