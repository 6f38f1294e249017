//! A tower-sessions [`SessionStore`] adapted to the `app_sessions` schema, on SQLite and
//! PostgreSQL (tower-sessions-sqlx-store is the model).
//!
//! - The row id is the SHA-256 of the cookie token, never the token.
//! - `create` inserts (retrying on the astronomically unlikely id collision); `save` is a plain
//!   `UPDATE … WHERE id`, never an upsert, so a request in flight cannot bring back a session
//!   that logout or uninstall deleted.
//! - `load` only returns a *valid* session ([`verdict`]): the row exists, is not expired and not
//!   idle. Dead rows are deleted on sight. That its client is installed, on the install
//!   generation and tenant the session was signed in under, is an invariant the database keeps
//!   (triggers: `migrations/*/…self_contained_sessions.sql`): a row cannot be written for another
//!   one, and uninstalling or reinstalling the client deletes its rows in the same transaction.
//!   So the lookup reads one row by its primary key, without the client's.
//! - Every timestamp of a row comes from the app's clock (`db::now()`).

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tower_sessions_core::{
    SessionStore,
    session::{Id, Record},
    session_store,
};
use tower_sessions_sqlx_store::SqlxStoreError;
use uuid::Uuid;

use crate::{AUTH_KEY, AuthSession, Theme, hash_token, idle_cutoff, to_offset};
use crate::{
    db::{Backend, ClientKey, Db, now, on_pool},
    metrics,
};

/// Why a session id did not yield a session (for logs and metrics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Invalid {
    /// No row with that id.
    Missing,
    /// Past `expires_at`.
    Expired,
    /// Unused for longer than the idle timeout.
    Idle,
}

impl Invalid {
    /// A short label for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Expired => "expired",
            Self::Idle => "idle",
        }
    }
}

/// The name both databases give the refusal of a session row whose client is not installed at
/// the row's generation, or not under its tenant id (the trigger of `…self_contained_sessions.sql`).
const NOT_INSTALLED: &str = "app_sessions_installed_client";

/// Whether `err` is the database refusing a session for a client that is not installed (any
/// more, or at that generation): a sign-in that raced an uninstall or a reinstall lost the race.
pub fn is_not_installed(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|db| db.constraint() == Some(NOT_INSTALLED) || db.message().starts_with(NOT_INSTALLED))
}

/// A handoff code as stored: the SHA-256 of the code and when it stops being accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handoff {
    /// SHA-256 (hex) of the code.
    pub hash: String,
    /// `now + HANDOFF_LIFETIME`.
    pub expires_at: DateTime<Utc>,
}

impl Handoff {
    /// A new random code (to send to the browser once) and what to store of it.
    pub fn issue(now: DateTime<Utc>) -> (String, Self) {
        let code = crate::tab::new_handoff_code();
        let lifetime = chrono::TimeDelta::from_std(crate::tab::HANDOFF_LIFETIME).expect("60 s fits");
        let stored = Self { hash: hash_token(&code), expires_at: now + lifetime };
        (code, stored)
    }
}

/// The `app_sessions` store.
#[derive(Debug, Clone)]
pub struct AppSessionStore {
    db: Db,
    idle_timeout: Option<Duration>,
}

/// The session guard's one query: the session row by its primary key, alone (its client's state
/// is the table's invariant, see the module: no join), and only the columns the identity is made
/// of (not `data`: an app session keeps nothing else, see [`SessionStore::save`]). One text for
/// both databases: `client_id` is a `uuid` on PostgreSQL, text on SQLite, and text to the row.
const SELECT_SESSION: &str = "SELECT CAST(client_id AS TEXT) AS client_id, user_id, user_name, user_email, theme,
        ip_address, user_agent, last_activity_at, expires_at, created_at, install_generation, account_token_hash,
        tenant_id, tab_generation, user_role
   FROM app_sessions WHERE id = $1";

#[derive(sqlx::FromRow)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct SessionRow {
    client_id: String,
    tenant_id: String,
    user_id: String,
    user_name: Option<String>,
    user_email: Option<String>,
    theme: String,
    ip_address: Option<String>,
    user_agent: Option<String>,
    last_activity_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    install_generation: i64,
    account_token_hash: Option<String>,
    tab_generation: i64,
    user_role: Option<String>,
}

/// What a session's validity depends on at `now`, as read from its row. (Its client being
/// installed, on the session's generation and tenant, is the table's invariant: see the module.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// `app_sessions.expires_at`.
    pub expires_at: DateTime<Utc>,
    /// `app_sessions.last_activity_at`.
    pub last_activity_at: DateTime<Utc>,
}

/// Why a session is not valid at `now`, or `None` when it is.
pub fn verdict(facts: &Facts, now: DateTime<Utc>, idle_timeout: Option<Duration>) -> Option<Invalid> {
    if facts.expires_at <= now {
        Some(Invalid::Expired)
    } else if idle_cutoff(now, idle_timeout).is_some_and(|cutoff| facts.last_activity_at <= cutoff) {
        Some(Invalid::Idle)
    } else {
        None
    }
}

fn backend<E: std::fmt::Display>(err: E) -> session_store::Error {
    session_store::Error::Backend(err.to_string())
}

fn db_error(err: sqlx::Error) -> session_store::Error {
    SqlxStoreError::from(err).into()
}

impl AppSessionStore {
    /// A store over `db`; `idle_timeout` of `None` disables the idle rule.
    pub fn new(db: Db, idle_timeout: Option<Duration>) -> Self {
        Self { db, idle_timeout }
    }

    /// The database it reads and writes.
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Loads and validates the session of a cookie token, as a tower-sessions record: the
    /// identity under [`AUTH_KEY`], and nothing else.
    pub async fn validate(&self, id: &Id) -> Result<Result<(AuthSession, Record), Invalid>, sqlx::Error> {
        let key = hash_token(&id.to_string());
        let auth = match self.validate_key(&key).await? {
            Ok(auth) => auth,
            Err(reason) => return Ok(Err(reason)),
        };
        let identity = serde_json::to_value(&auth).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        let record = Record {
            id: *id,
            data: HashMap::from([(AUTH_KEY.to_owned(), identity)]),
            expiry_date: to_offset(auth.expires_at),
        };
        Ok(Ok((auth, record)))
    }

    /// Loads and validates the session whose row id is `key` — the guard's path for the cookie
    /// and the tab token alike: one prepared statement on the pool, within
    /// [`QUERY_TIMEOUT`](crate::db::QUERY_TIMEOUT) like every query, the identity decoded straight from the
    /// columns. The verdict is counted in the metrics; a dead row is deleted on sight.
    pub async fn validate_key(&self, key: &str) -> Result<Result<AuthSession, Invalid>, sqlx::Error> {
        let row: Option<SessionRow> =
            on_pool!(&self.db, |c| sqlx::query_as(SELECT_SESSION).bind(key).fetch_optional(c).await?)?;
        let Some(row) = row else {
            metrics::validation(Invalid::Missing.as_str());
            return Ok(Err(Invalid::Missing));
        };

        let facts = Facts { expires_at: row.expires_at, last_activity_at: row.last_activity_at };
        let invalid = verdict(&facts, now(), self.idle_timeout);
        metrics::validation(invalid.map_or("ok", Invalid::as_str));
        if let Some(reason) = invalid {
            // Dead sessions are never revived: remove them now rather than at the next cleanup.
            self.delete_key(key).await?;
            return Ok(Err(reason));
        }

        let client_id = Uuid::parse_str(&row.client_id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
        let auth = AuthSession {
            client_id,
            tenant_id: row.tenant_id,
            user_id: row.user_id,
            user_name: row.user_name,
            user_email: row.user_email,
            theme: Theme::parse(Some(&row.theme)),
            ip_address: row.ip_address,
            user_agent: row.user_agent,
            created_at: row.created_at,
            last_activity_at: row.last_activity_at,
            expires_at: row.expires_at,
            install_generation: row.install_generation,
            account_token_hash: row.account_token_hash,
            tab_generation: row.tab_generation,
            user_role: row.user_role,
        };
        Ok(Ok(auth))
    }

    /// Moves `last_activity_at` of the row `key` to now — unless another request already did so
    /// after `due_since` (the condition is in the `UPDATE`, so when many requests of one session
    /// find it due at once, one row write happens, not one per request). Returns the new time
    /// when this call wrote it.
    pub async fn touch(&self, key: &str, due_since: DateTime<Utc>) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
        let now = now();
        let written = on_pool!(&self.db, |c| {
            sqlx::query("UPDATE app_sessions SET last_activity_at = $1 WHERE id = $2 AND last_activity_at <= $3")
                .bind(now)
                .bind(key)
                .bind(due_since)
                .execute(c)
                .await?
                .rows_affected()
        })?;
        if written == 0 {
            return Ok(None);
        }
        metrics::session_touched();
        Ok(Some(now))
    }

    /// Records the role Commerce7 gives `user_id` now on every session of that user at the
    /// client `client_id` (every browser's): what the Report extension's access is decided by.
    pub async fn set_user_role(&self, client_id: Uuid, user_id: &str, role: Option<&str>) -> Result<(), sqlx::Error> {
        on_pool!(&self.db, |c| {
            sqlx::query(
                "UPDATE app_sessions SET user_role = $1 WHERE client_id = $2 AND user_id = $3
                        AND user_role IS DISTINCT FROM $1",
            )
            .bind(role)
            .bind(ClientKey(client_id))
            .bind(user_id)
            .execute(c)
            .await?;
        })
    }

    /// The same user signed in again with a new Commerce7 token: the row `key` is bound to that
    /// token (its SHA-256), takes the theme of the open, the role Commerce7 answered this time
    /// (`user_role`: a demotion takes effect here) and a new handoff code, in one `UPDATE`;
    /// `false` when the row is gone (it stays gone).
    pub async fn rebind(
        &self,
        key: &str,
        account_token_hash: &str,
        theme: Theme,
        user_role: Option<&str>,
        handoff: &Handoff,
    ) -> Result<bool, sqlx::Error> {
        let now = now();
        let updated = on_pool!(&self.db, |c| sqlx::query(
            "UPDATE app_sessions SET account_token_hash = $1, theme = $2, handoff_hash = $3,
                        handoff_expires_at = $4, updated_at = $5, user_role = $7
                  WHERE id = $6",
        )
        .bind(account_token_hash)
        .bind(theme.as_str())
        .bind(&handoff.hash)
        .bind(handoff.expires_at)
        .bind(now)
        .bind(key)
        .bind(user_role)
        .execute(c)
        .await?
        .rows_affected())?;
        Ok(updated == 1)
    }

    /// Sets the admin theme of the row `key`; `false` when the row is gone (it stays gone).
    pub async fn set_theme(&self, key: &str, theme: Theme) -> Result<bool, sqlx::Error> {
        let now = now();
        let updated =
            on_pool!(&self.db, |c| sqlx::query("UPDATE app_sessions SET theme = $1, updated_at = $2 WHERE id = $3")
                .bind(theme.as_str())
                .bind(now)
                .bind(key)
                .execute(c)
                .await?
                .rows_affected())?;
        Ok(updated == 1)
    }

    /// Moves the row's tab-token generation on from `from`: every tab token minted before is
    /// refused from now on, and an unused handoff code (one a copy of a token could have asked
    /// for) is cleared with it. The new generation, or `None` when the row is gone or no longer at
    /// `from` (another move came first, and the asking token's generation has ended with it).
    pub async fn next_tab_generation(&self, key: &str, from: i64) -> Result<Option<i64>, sqlx::Error> {
        on_pool!(&self.db, |c| {
            sqlx::query_scalar(
                "UPDATE app_sessions SET tab_generation = tab_generation + 1, handoff_hash = NULL,
                            handoff_expires_at = NULL
                      WHERE id = $1 AND tab_generation = $2 RETURNING tab_generation",
            )
            .bind(key)
            .bind(from)
            .fetch_optional(c)
            .await?
        })
    }

    /// Deletes the row `key` if its tab-token generation is still `generation` (a sign-out with
    /// a tab token): `false` when nothing was deleted — the row is gone, or the token's
    /// generation has ended.
    pub async fn delete_at_generation(&self, key: &str, generation: i64) -> Result<bool, sqlx::Error> {
        let deleted =
            on_pool!(&self.db, |c| sqlx::query("DELETE FROM app_sessions WHERE id = $1 AND tab_generation = $2")
                .bind(key)
                .bind(generation)
                .execute(c)
                .await?
                .rows_affected())?;
        Ok(deleted == 1)
    }

    /// Deletes the row `key` (nothing when it is already gone).
    pub async fn delete_key(&self, key: &str) -> Result<(), sqlx::Error> {
        let sql = "DELETE FROM app_sessions WHERE id = $1";
        on_pool!(&self.db, |c| sqlx::query(sql).bind(key).execute(c).await.map(|_| ())?)
    }

    /// The identity of a record ([`AUTH_KEY`]); refused when the record carries anything else:
    /// an app session is its identity, whose parts are columns, and keeps no other data.
    fn identity(record: &Record) -> Result<AuthSession, session_store::Error> {
        let auth = record.data.get(AUTH_KEY).ok_or_else(|| backend("an app session needs a signed-in identity"))?;
        if record.data.len() > 1 {
            return Err(backend("an app session keeps no data beyond its identity"));
        }
        serde_json::from_value(auth.clone()).map_err(backend)
    }

    /// Creates the row of a new sign-in, with its handoff code's hash, under a fresh cookie token
    /// (a new one on the astronomically unlikely id collision): the token, and its row id.
    pub async fn create_signed_in(&self, auth: &AuthSession, handoff: &Handoff) -> Result<(Id, String), sqlx::Error> {
        loop {
            let id = Id::default();
            let key = hash_token(&id.to_string());
            if self.insert(&key, auth, Some(handoff)).await? {
                metrics::session_created();
                return Ok((id, key));
            }
        }
    }

    /// Stores a new handoff code's hash on the row `key` (replacing an unused one); `false` when
    /// the row is gone.
    ///
    /// On PostgreSQL the write commits asynchronously (`synchronous_commit = off` for this
    /// statement's transaction alone): it is the sign-in fast path's write — every reopening of
    /// the app from the admin; its only one unless the theme changed — `resume_tab`'s and a plain
    /// form's, and
    /// waiting for the WAL flush was more than half of the fast path's time. The change is
    /// visible to every connection at once, as any commit; what a crash of the database within
    /// its WAL writer's delay can lose is this one-minute, single-use code, and then the page
    /// falls back to the cookie or asks to reopen the app (it fails closed). Every write that ends or revokes a session, and the redemption of a
    /// code, stays synchronous. `set_config(…, true)` is local to the transaction, so the
    /// pooled connection keeps the server's setting for its next statement.
    ///
    /// `generation`: for a code asked for with a session credential (`resume_tab`, a plain form),
    /// the generation it was let in at (or the one *Sign out all other sessions* moved it to),
    /// which the row must still be at — a code is never stored for a credential that sign-out
    /// ended in the meantime. `None` (a sign-in, verified by Commerce7): any generation.
    pub async fn set_handoff(
        &self,
        key: &str,
        handoff: &Handoff,
        generation: Option<i64>,
    ) -> Result<bool, sqlx::Error> {
        let sql = match self.db.backend() {
            Backend::Sqlite => {
                "UPDATE app_sessions SET handoff_hash = $1, handoff_expires_at = $2
                  WHERE id = $3 AND ($4 IS NULL OR tab_generation = $4)"
            }
            Backend::Postgres => {
                "UPDATE app_sessions SET handoff_hash = $1, handoff_expires_at = $2
                   FROM (SELECT set_config('synchronous_commit', 'off', true)) AS async_commit
                  WHERE id = $3 AND ($4::bigint IS NULL OR tab_generation = $4)"
            }
        };
        let updated = on_pool!(&self.db, |c| sqlx::query(sql)
            .bind(&handoff.hash)
            .bind(handoff.expires_at)
            .bind(key)
            .bind(generation)
            .execute(c)
            .await?
            .rows_affected())?;
        Ok(updated == 1)
    }

    /// Redeems a handoff code: clears it from its row in the same statement that finds it (so
    /// two requests with one code cannot both win) and returns the row id, its tenant and the
    /// tab-token generation the code was issued at (moving it on clears the code), if the code was
    /// stored and has not expired. The session itself is validated by the caller, at that generation.
    ///
    /// An unknown or expired code costs a read, not a write: the `UPDATE` — a write transaction,
    /// SQLite's one write lock — runs only for a code the index finds. A link with a junk code
    /// cannot queue behind, or hold up, the writes of signed-in merchants.
    pub async fn redeem_handoff(&self, code: &str) -> Result<Option<(String, String, i64)>, sqlx::Error> {
        let hash = hash_token(code);
        let now = now();
        on_pool!(&self.db, |c| {
            let known: Option<String> =
                sqlx::query_scalar("SELECT id FROM app_sessions WHERE handoff_hash = $1 AND handoff_expires_at > $2")
                    .bind(&hash)
                    .bind(now)
                    .fetch_optional(&mut *c)
                    .await?;
            if known.is_none() {
                return Ok(None);
            }
            sqlx::query_as(
                "UPDATE app_sessions SET handoff_hash = NULL, handoff_expires_at = NULL
                      WHERE handoff_hash = $1 AND handoff_expires_at > $2 RETURNING id, tenant_id, tab_generation",
            )
            .bind(&hash)
            .bind(now)
            .fetch_optional(&mut *c)
            .await?
        })
    }

    /// Inserts a new row. Its timestamps are the identity's, all taken from one reading of the
    /// app's clock at sign-in: `created_at` = `last_activity_at` = `updated_at`, and `expires_at`
    /// = `created_at` + `SESSION_TTL`. The database refuses it ([`is_not_installed`]) unless the
    /// client is installed at `auth.install_generation` under `auth.tenant_id`.
    async fn insert(&self, key: &str, auth: &AuthSession, handoff: Option<&Handoff>) -> Result<bool, sqlx::Error> {
        let (handoff_hash, handoff_expires_at) = handoff.map(|h| (&h.hash, h.expires_at)).unzip();
        let inserted = on_pool!(&self.db, |c| sqlx::query(
            "INSERT INTO app_sessions (id, client_id, user_id, user_name, user_email, theme, ip_address,
                     user_agent, last_activity_at, expires_at, created_at, updated_at, install_generation,
                     account_token_hash, handoff_hash, handoff_expires_at, tenant_id, user_role)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14, $15, $16, $17)
                 ON CONFLICT (id) DO NOTHING",
        )
        .bind(key)
        .bind(ClientKey(auth.client_id))
        .bind(&auth.user_id)
        .bind(&auth.user_name)
        .bind(&auth.user_email)
        .bind(auth.theme.as_str())
        .bind(&auth.ip_address)
        .bind(&auth.user_agent)
        .bind(auth.last_activity_at)
        .bind(auth.expires_at)
        .bind(auth.created_at)
        .bind(auth.install_generation)
        .bind(&auth.account_token_hash)
        .bind(handoff_hash)
        .bind(handoff_expires_at)
        .bind(&auth.tenant_id)
        .bind(&auth.user_role)
        .execute(c)
        .await?
        .rows_affected())?;
        Ok(inserted == 1)
    }
}

#[async_trait]
impl SessionStore for AppSessionStore {
    /// Refused: only the sign-in creates signed-in rows ([`AppSessionStore::create_signed_in`]).
    /// tower-sessions calls `create` when a handler changes a session whose row it could not
    /// load — for example one a logout deleted while the request was in flight; inserting it
    /// would revive the deleted session under a new cookie.
    async fn create(&self, _record: &mut Record) -> session_store::Result<()> {
        Err(backend("app sessions are created only by a sign-in"))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let auth = Self::identity(record)?;
        // UPDATE only: zero rows means the session was deleted meanwhile, and it stays deleted.
        self.set_theme(&hash_token(&record.id.to_string()), auth.theme).await.map_err(db_error)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self.validate(id).await.map_err(db_error)? {
            Ok((_, record)) => Ok(Some(record)),
            Err(reason) => {
                tracing::debug!(reason = reason.as_str(), "session not valid");
                Ok(None)
            }
        }
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.delete_key(&hash_token(&id.to_string())).await.map_err(db_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::{self, Installation};

    const HOUR: Duration = Duration::from_secs(3600);

    /// A migrated SQLite file with an installed tenant, and a store over it.
    async fn sqlite_store(dir: &tempfile::TempDir) -> (AppSessionStore, Uuid) {
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("store.db").display())).await.unwrap();
        db.migrate().await.unwrap();
        let install = Installation {
            tenant_id: "cellar-door".into(),
            org_name: None,
            org_contact: None,
            user_id: None,
            user_email: None,
            install_data: serde_json::json!({}),
        };
        let client = clients::install(&db, &install, &Default::default()).await.unwrap();
        (AppSessionStore::new(db, Some(HOUR)), client.id)
    }

    fn signed_in(client_id: Uuid, user_name: Option<&str>) -> AuthSession {
        let now = now();
        AuthSession {
            client_id,
            tenant_id: "cellar-door".into(),
            user_id: "u-1".into(),
            user_name: user_name.map(str::to_owned),
            user_email: user_name.map(|_| "ana@example.com".to_owned()),
            theme: Theme::Dark,
            ip_address: user_name.map(|_| "203.0.113.7".to_owned()),
            user_agent: None,
            created_at: now,
            last_activity_at: now,
            expires_at: now + chrono::TimeDelta::hours(8),
            install_generation: 1,
            account_token_hash: user_name.map(|_| hash_token("account-token")),
            tab_generation: 0,
            user_role: user_name.map(|_| "Admin Owner".to_owned()),
        }
    }

    /// A new session of `client_id` (with or without the optional columns): its row id.
    async fn sign_in(store: &AppSessionStore, client_id: Uuid, user_name: Option<&str>) -> String {
        let (_, key) =
            store.create_signed_in(&signed_in(client_id, user_name), &Handoff::issue(now()).1).await.unwrap();
        key
    }

    #[tokio::test]
    async fn list_own_lists_the_users_active_sessions_neither_idle_nor_expired() {
        let dir = tempfile::tempdir().unwrap();
        let (store, client_id) = sqlite_store(&dir).await;
        let key = sign_in(&store, client_id, Some("Ana")).await;
        let other = sign_in(&store, client_id, None).await;
        let idle = sign_in(&store, client_id, None).await;
        let expired = sign_in(&store, client_id, None).await;
        let Db::Sqlite(pool) = &store.db else { unreachable!() };
        let past = [
            ("last_activity_at", chrono::TimeDelta::hours(2), &idle),
            ("expires_at", chrono::TimeDelta::minutes(1), &expired),
        ];
        for (column, ago, id) in past {
            let sql = format!("UPDATE app_sessions SET {column} = ?1 WHERE id = ?2");
            sqlx::query(&sql).bind(now() - ago).bind(id).execute(pool).await.unwrap();
        }

        let auth = store.validate_key(&key).await.unwrap().expect("valid");
        let own = crate::manage::list_own(&store, client_id, &auth.user_id, Some(HOUR)).await.unwrap();
        let mut ids: Vec<&str> = own.iter().map(|s| s.id.as_str()).collect();
        ids.sort_unstable();
        let mut active = vec![key.as_str(), other.as_str()];
        active.sort_unstable();
        assert_eq!(ids, active, "the two active sessions, neither the idle nor the expired one");
    }

    #[tokio::test]
    async fn the_guards_read_sees_a_logout_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let (store, client_id) = sqlite_store(&dir).await;
        let key = sign_in(&store, client_id, Some("Ana")).await;

        let auth = store.validate_key(&key).await.unwrap().expect("valid");
        assert_eq!(auth.user_name.as_deref(), Some("Ana"));
        store.delete_key(&key).await.unwrap();
        assert_eq!(store.validate_key(&key).await.unwrap().err(), Some(Invalid::Missing));
    }

    #[tokio::test]
    async fn a_database_fault_is_reported_as_an_error_not_as_no_session() {
        let dir = tempfile::tempdir().unwrap();
        let (store, client_id) = sqlite_store(&dir).await;
        let key = sign_in(&store, client_id, Some("Ana")).await;
        assert!(store.validate_key(&key).await.unwrap().is_ok(), "control: a valid session");

        // The table is gone (a broken restore, say): the caller gets sqlx's error — which the
        // guard answers with 503 — not "no session".
        let Db::Sqlite(pool) = &store.db else { unreachable!() };
        sqlx::query("DROP TABLE app_sessions").execute(pool).await.unwrap();
        let err = store.validate_key(&key).await.expect_err("a database error, not a verdict");
        assert!(err.to_string().contains("no such table"), "{err}");
    }

    #[tokio::test]
    async fn the_store_never_creates_a_signed_in_row_itself() {
        let dir = tempfile::tempdir().unwrap();
        let (store, client_id) = sqlite_store(&dir).await;
        let Db::Sqlite(pool) = &store.db else { unreachable!() };
        let count =
            || async { sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM app_sessions").fetch_one(pool).await };
        // What tower-sessions hands `create` when a handler changes a session whose row is gone.
        let auth = signed_in(client_id, Some("Ana"));
        let data = HashMap::from([(AUTH_KEY.to_owned(), serde_json::to_value(&auth).unwrap())]);
        let mut record = Record { id: Id::default(), data, expiry_date: to_offset(auth.expires_at) };
        assert!(SessionStore::create(&store, &mut record).await.is_err(), "refused");
        assert_eq!(count().await.unwrap(), 0, "nothing written");
        // Control: the sign-in's own path creates the row.
        sign_in(&store, client_id, Some("Ana")).await;
        assert_eq!(count().await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_save_writes_the_identity_and_refuses_any_other_data() {
        let dir = tempfile::tempdir().unwrap();
        let (store, client_id) = sqlite_store(&dir).await;
        let (id, key) =
            store.create_signed_in(&signed_in(client_id, Some("Ana")), &Handoff::issue(now()).1).await.unwrap();
        let (_, mut record) = store.validate(&id).await.unwrap().expect("valid");
        assert_eq!(record.data.keys().collect::<Vec<_>>(), [AUTH_KEY], "the record is the identity alone");

        record.data.insert("cart".to_owned(), serde_json::json!(["a bottle"]));
        assert!(SessionStore::save(&store, &record).await.is_err(), "other data is refused");
        // Control: the identity alone is saved (its theme is a column).
        record.data.remove("cart");
        let mut auth: AuthSession = serde_json::from_value(record.data[AUTH_KEY].clone()).unwrap();
        auth.theme = Theme::Dark;
        record.data.insert(AUTH_KEY.to_owned(), serde_json::to_value(&auth).unwrap());
        SessionStore::save(&store, &record).await.unwrap();
        assert_eq!(store.validate_key(&key).await.unwrap().expect("valid").theme, Theme::Dark);
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).unwrap() + chrono::TimeDelta::minutes(minutes)
    }

    /// A session signed in at minute 0, living 8 h.
    fn fresh() -> Facts {
        Facts { expires_at: at(480), last_activity_at: at(0) }
    }

    #[test]
    fn expiry_and_idleness_are_judged_at_now() {
        assert_eq!(verdict(&fresh(), at(480), None), Some(Invalid::Expired));
        assert_eq!(verdict(&fresh(), at(60), Some(HOUR)), Some(Invalid::Idle), "idle at exactly the timeout");
        assert_eq!(verdict(&fresh(), at(59), Some(HOUR)), None);
        assert_eq!(verdict(&fresh(), at(300), None), None, "no idle rule when it is off");
    }
}
