//! A tower-sessions [`SessionStore`] adapted to the `app_sessions` schema, on SQLite and
//! PostgreSQL (tower-sessions-sqlx-store is the model).
//!
//! - The row id is the SHA-256 of the cookie token, never the token.
//! - `create` inserts (retrying on the astronomically unlikely id collision); `save` is a plain
//!   `UPDATE … WHERE id`, never an upsert, so a request in flight cannot bring back a session
//!   that logout or uninstall deleted.
//! - `load` only returns a *valid* session: the row exists, is not expired, not idle, and its
//!   client is installed. Expired and idle rows are deleted on sight.

use std::{collections::HashMap, time::Duration};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use tower_sessions::{
    SessionStore,
    session::{Id, Record},
    session_store,
};
use tower_sessions_sqlx_store::SqlxStoreError;
use uuid::Uuid;

use super::{AUTH_KEY, AuthSession, Theme, hash_token, to_offset};
use crate::server::{
    db::{Db, now},
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
    /// The tenant uninstalled the app.
    Revoked,
}

impl Invalid {
    /// A short label for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Expired => "expired",
            Self::Idle => "idle",
            Self::Revoked => "revoked",
        }
    }
}

/// The `app_sessions` store.
#[derive(Debug, Clone)]
pub struct AppSessionStore {
    db: Db,
    idle_timeout: Option<Duration>,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    client_id: String,
    tenant_id: String,
    user_id: String,
    user_name: Option<String>,
    user_email: Option<String>,
    theme: String,
    ip_address: Option<String>,
    user_agent: Option<String>,
    data: Json<HashMap<String, Value>>,
    last_activity_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    uninstalled_at: Option<DateTime<Utc>>,
    installed_at: DateTime<Utc>,
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

    /// Loads and validates the session of a cookie token.
    pub async fn validate(&self, id: &Id) -> Result<Result<(AuthSession, Record), Invalid>, sqlx::Error> {
        let key = hash_token(&id.to_string());
        const COLUMNS: &str = "s.user_id, s.user_name, s.user_email, s.theme, s.ip_address, s.user_agent, s.data,
             s.last_activity_at, s.expires_at, s.created_at, c.tenant_id, c.uninstalled_at, c.installed_at
             FROM app_sessions s JOIN clients c ON c.id = s.client_id";
        let row: Option<SessionRow> = match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query_as(&format!("SELECT s.client_id, {COLUMNS} WHERE s.id = ?1"))
                    .bind(&key)
                    .fetch_optional(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_as(&format!("SELECT s.client_id::text AS client_id, {COLUMNS} WHERE s.id = $1"))
                    .bind(&key)
                    .fetch_optional(pool)
                    .await?
            }
        };
        let Some(row) = row else {
            metrics::validation(Invalid::Missing.as_str());
            return Ok(Err(Invalid::Missing));
        };

        let now = now();
        // A session is only as old as the installation it belongs to: one created while an
        // uninstall was committing, or before a reinstall, stays dead.
        let verdict = if row.uninstalled_at.is_some() || row.created_at < row.installed_at {
            Some(Invalid::Revoked)
        } else if row.expires_at <= now {
            Some(Invalid::Expired)
        } else if self.idle_timeout.is_some_and(|idle| {
            now - row.last_activity_at >= chrono::TimeDelta::from_std(idle).unwrap_or(chrono::TimeDelta::MAX)
        }) {
            Some(Invalid::Idle)
        } else {
            None
        };
        metrics::validation(verdict.map_or("ok", Invalid::as_str));
        if let Some(reason) = verdict {
            // Dead sessions are never revived: remove them now rather than at the next cleanup.
            self.delete_key(&key).await?;
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
        };
        let mut data = row.data.0;
        data.insert(AUTH_KEY.to_owned(), serde_json::to_value(&auth).map_err(|e| sqlx::Error::Decode(Box::new(e)))?);
        let record = Record { id: *id, data, expiry_date: to_offset(row.expires_at) };
        Ok(Ok((auth, record)))
    }

    /// Moves `last_activity_at` to now: one `UPDATE … WHERE id`.
    pub async fn touch(&self, id: &Id) -> Result<DateTime<Utc>, sqlx::Error> {
        let key = hash_token(&id.to_string());
        let now = now();
        match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query("UPDATE app_sessions SET last_activity_at = ?1 WHERE id = ?2")
                    .bind(now)
                    .bind(&key)
                    .execute(pool)
                    .await?;
            }
            Db::Postgres(pool) => {
                sqlx::query("UPDATE app_sessions SET last_activity_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind(&key)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(now)
    }

    async fn delete_key(&self, key: &str) -> Result<(), sqlx::Error> {
        match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query("DELETE FROM app_sessions WHERE id = ?1").bind(key).execute(pool).await.map(drop)?
            }
            Db::Postgres(pool) => {
                sqlx::query("DELETE FROM app_sessions WHERE id = $1").bind(key).execute(pool).await.map(drop)?
            }
        }
        Ok(())
    }

    /// Splits a record into the identity (columns) and the rest (the `data` JSON).
    fn split(record: &Record) -> Result<(AuthSession, HashMap<String, Value>), session_store::Error> {
        let mut data = record.data.clone();
        let auth = data.remove(AUTH_KEY).ok_or_else(|| backend("an app session needs a signed-in identity"))?;
        let auth: AuthSession = serde_json::from_value(auth).map_err(backend)?;
        Ok((auth, data))
    }

    async fn insert(&self, key: &str, auth: &AuthSession, data: &HashMap<String, Value>) -> Result<bool, sqlx::Error> {
        let now = now();
        let inserted = match &self.db {
            Db::Sqlite(pool) => sqlx::query(
                "INSERT INTO app_sessions (id, client_id, user_id, user_name, user_email, theme, ip_address,
                     user_agent, data, last_activity_at, expires_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?10)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(key)
            .bind(auth.client_id.to_string())
            .bind(&auth.user_id)
            .bind(&auth.user_name)
            .bind(&auth.user_email)
            .bind(auth.theme.as_str())
            .bind(&auth.ip_address)
            .bind(&auth.user_agent)
            .bind(Json(data))
            .bind(now)
            .bind(auth.expires_at)
            .bind(auth.created_at)
            .execute(pool)
            .await?
            .rows_affected(),
            Db::Postgres(pool) => sqlx::query(
                "INSERT INTO app_sessions (id, client_id, user_id, user_name, user_email, theme, ip_address,
                     user_agent, data, last_activity_at, expires_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $10)
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(key)
            .bind(auth.client_id)
            .bind(&auth.user_id)
            .bind(&auth.user_name)
            .bind(&auth.user_email)
            .bind(auth.theme.as_str())
            .bind(&auth.ip_address)
            .bind(&auth.user_agent)
            .bind(Json(data))
            .bind(now)
            .bind(auth.expires_at)
            .bind(auth.created_at)
            .execute(pool)
            .await?
            .rows_affected(),
        };
        Ok(inserted == 1)
    }
}

#[async_trait]
impl SessionStore for AppSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let (auth, data) = Self::split(record)?;
        // `ON CONFLICT DO NOTHING` + a fresh id: a collision can never overwrite another session.
        loop {
            let key = hash_token(&record.id.to_string());
            if self.insert(&key, &auth, &data).await.map_err(db_error)? {
                metrics::session_created();
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let (auth, data) = Self::split(record)?;
        let key = hash_token(&record.id.to_string());
        let now = now();
        // UPDATE only: zero rows means the session was deleted meanwhile, and it stays deleted.
        match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query("UPDATE app_sessions SET data = ?1, theme = ?2, updated_at = ?3 WHERE id = ?4")
                    .bind(Json(&data))
                    .bind(auth.theme.as_str())
                    .bind(now)
                    .bind(&key)
                    .execute(pool)
                    .await
                    .map(drop)
            }
            Db::Postgres(pool) => {
                sqlx::query("UPDATE app_sessions SET data = $1, theme = $2, updated_at = $3 WHERE id = $4")
                    .bind(Json(&data))
                    .bind(auth.theme.as_str())
                    .bind(now)
                    .bind(&key)
                    .execute(pool)
                    .await
                    .map(drop)
            }
        }
        .map_err(db_error)?;
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
