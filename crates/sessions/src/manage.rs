//! Seeing and ending sessions: a user's own ("Your sessions" on the dashboard) and a tenant's
//! (`libero sessions revoke|list`, for operators).
//!
//! Every query that serves a user carries `client_id = … AND user_id = …` in its `WHERE`: the
//! scope is enforced by the database, not by filtering afterwards. Row ids (the SHA-256 of the
//! cookie token) never leave the server; users name their sessions by [`SessionHandles`].

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::db::{ClientKey, Db, now, on_pool};
use crate::store::{AppSessionStore, Facts, verdict};
use crate::{active_since, user_agent::Device};

/// Opaque names for sessions, shown to their own user instead of the row id.
///
/// A handle is HMAC-SHA256(row id) under a key derived from `SESSION_SECRET`, cut to 128 bits:
/// stable across restarts and instances (the list and the sign-out may be served by different
/// ones), useless without the secret, and revealing nothing of the row id. It is not a
/// credential: a sign-out looks it up again among the signed-in user's own sessions only.
#[derive(Clone)]
pub struct SessionHandles {
    key: [u8; 32],
}

impl std::fmt::Debug for SessionHandles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionHandles([redacted])")
    }
}

impl SessionHandles {
    /// Derives the handle key from `SESSION_SECRET` (a key of its own, not the cookie key).
    pub fn new(secret: &str) -> Self {
        Self { key: crate::derive_key(secret, b"libero/session-handles/v1") }
    }

    /// The handle of a row id: 32 lowercase hex characters.
    pub fn of(&self, row_id: &str) -> String {
        use hmac::Mac;
        let mut mac = crate::keyed_mac(&self.key);
        mac.update(row_id.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..16])
    }

    /// Whether `handle` names `row_id` (compared in constant time).
    pub fn names(&self, handle: &str, row_id: &str) -> bool {
        crate::secrets_match(handle.as_bytes(), self.of(row_id).as_bytes())
    }
}

/// One of the signed-in user's active sessions, as stored (server-side only: it has the row id).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OwnSession {
    /// `app_sessions.id`.
    pub id: String,
    /// Client IP at sign-in.
    pub ip_address: Option<String>,
    /// User agent at sign-in.
    pub user_agent: Option<String>,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// Last request (to within the touch interval).
    pub last_activity_at: DateTime<Utc>,
}

/// The active sessions of one user of one tenant, most recently used first (the dashboard's
/// panel).
pub async fn list_own(
    store: &AppSessionStore,
    client_id: Uuid,
    user_id: &str,
    idle: Option<Duration>,
) -> Result<Vec<OwnSession>, sqlx::Error> {
    let now = now();
    let since = active_since(now, idle);
    on_pool!(store.db(), |c| sqlx::query_as(
        "SELECT id, ip_address, user_agent, created_at, last_activity_at FROM app_sessions
          WHERE client_id = $1 AND user_id = $2 AND expires_at > $3 AND last_activity_at > $4
          ORDER BY last_activity_at DESC, created_at DESC LIMIT 100",
    )
    .bind(ClientKey(client_id))
    .bind(user_id)
    .bind(now)
    .bind(since)
    .fetch_all(c)
    .await?)
}

/// Ends the session that `handle` names among this user's own sessions; `false` when none does
/// (another user's handle, a made-up one, or a session that has ended meanwhile).
pub async fn end_own(
    db: &Db,
    client_id: Uuid,
    user_id: &str,
    handles: &SessionHandles,
    handle: &str,
) -> Result<bool, sqlx::Error> {
    let ids: Vec<String> = on_pool!(db, |c| {
        sqlx::query_scalar("SELECT id FROM app_sessions WHERE client_id = $1 AND user_id = $2")
            .bind(ClientKey(client_id))
            .bind(user_id)
            .fetch_all(c)
            .await?
    })?;
    let Some(id) = ids.into_iter().find(|id| handles.names(handle, id)) else {
        return Ok(false);
    };
    // The scope again in the DELETE itself: the id alone never decides.
    let deleted =
        on_pool!(db, |c| sqlx::query("DELETE FROM app_sessions WHERE id = $1 AND client_id = $2 AND user_id = $3")
            .bind(&id)
            .bind(ClientKey(client_id))
            .bind(user_id)
            .execute(c)
            .await?
            .rows_affected())?;
    Ok(deleted == 1)
}

/// Ends every session of this user of this tenant except `keep` (the current one's row id);
/// returns how many of them were live — the ones the panel listed — as an expired or idle row the
/// cleanup has not removed yet goes too, uncounted.
pub async fn end_own_others(
    db: &Db,
    client_id: Uuid,
    user_id: &str,
    keep: &str,
    idle: Option<Duration>,
) -> Result<u64, sqlx::Error> {
    let ended: Vec<(DateTime<Utc>, DateTime<Utc>)> = on_pool!(db, |c| sqlx::query_as(
        "DELETE FROM app_sessions WHERE client_id = $1 AND user_id = $2 AND id <> $3
          RETURNING expires_at, last_activity_at"
    )
    .bind(ClientKey(client_id))
    .bind(user_id)
    .bind(keep)
    .fetch_all(c)
    .await?)?;
    Ok(live(&ended, idle))
}

/// How many of the `(expires_at, last_activity_at)` of ended rows were live sessions.
pub(crate) fn live(ended: &[(DateTime<Utc>, DateTime<Utc>)], idle: Option<Duration>) -> u64 {
    let now = now();
    let facts = |&(expires_at, last_activity_at)| Facts { expires_at, last_activity_at };
    ended.iter().filter(|row| verdict(&facts(row), now, idle).is_none()).count() as u64
}

/// `clients.id` of a tenant, installed or not.
pub async fn client_of_tenant(db: &Db, tenant_id: &str) -> Result<Option<Uuid>, sqlx::Error> {
    let id: Option<String> =
        on_pool!(db, |c| sqlx::query_scalar("SELECT CAST(id AS TEXT) FROM clients WHERE tenant_id = $1")
            .bind(tenant_id)
            .fetch_optional(c)
            .await?)?;
    id.map(|id| Uuid::parse_str(&id).map_err(|e| sqlx::Error::Decode(Box::new(e)))).transpose()
}

/// Deletes every session of a tenant, or of one user of it; returns how many.
pub async fn revoke(db: &Db, client_id: Uuid, user_id: Option<&str>) -> Result<u64, sqlx::Error> {
    on_pool!(db, |c| sqlx::query("DELETE FROM app_sessions WHERE client_id = $1 AND ($2 IS NULL OR user_id = $2)")
        .bind(ClientKey(client_id))
        .bind(user_id)
        .execute(c)
        .await?
        .rows_affected())
}

/// One active session as `libero sessions list` shows it: no row id, no token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedSession {
    /// Commerce7 user id.
    pub user_id: String,
    /// Display name.
    pub user_name: Option<String>,
    /// Email.
    pub user_email: Option<String>,
    /// Client IP at sign-in.
    pub ip_address: Option<String>,
    /// "Chrome on Windows".
    pub browser: String,
    /// Sign-in time.
    pub created_at: DateTime<Utc>,
    /// Last request.
    pub last_activity_at: DateTime<Utc>,
    /// Absolute expiry.
    pub expires_at: DateTime<Utc>,
}

/// The row as read; turned into a [`ListedSession`] (which has no place for an id).
#[derive(sqlx::FromRow)]
struct TenantRow {
    user_id: String,
    user_name: Option<String>,
    user_email: Option<String>,
    ip_address: Option<String>,
    user_agent: Option<String>,
    created_at: DateTime<Utc>,
    last_activity_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
}

/// What `libero sessions list --tenant T` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TenantSessions {
    /// The tenant.
    pub tenant_id: String,
    /// Its active sessions, by user, most recently used first.
    pub sessions: Vec<ListedSession>,
}

/// The active sessions of a tenant (not expired, not idle longer than `idle`).
pub async fn list_tenant(
    db: &Db,
    client_id: Uuid,
    tenant_id: &str,
    idle: Option<Duration>,
) -> Result<TenantSessions, sqlx::Error> {
    let now = now();
    let since = active_since(now, idle);
    let rows: Vec<TenantRow> = on_pool!(db, |c| sqlx::query_as(
        "SELECT user_id, user_name, user_email, ip_address, user_agent, created_at, last_activity_at, expires_at
                 FROM app_sessions WHERE client_id = $1 AND expires_at > $2 AND last_activity_at > $3
                 ORDER BY user_id, last_activity_at DESC",
    )
    .bind(ClientKey(client_id))
    .bind(now)
    .bind(since)
    .fetch_all(c)
    .await?)?;
    let sessions = rows
        .into_iter()
        .map(|row| ListedSession {
            browser: Device::parse(row.user_agent.as_deref()).label(),
            user_id: row.user_id,
            user_name: row.user_name,
            user_email: row.user_email,
            ip_address: row.ip_address,
            created_at: row.created_at,
            last_activity_at: row.last_activity_at,
            expires_at: row.expires_at,
        })
        .collect();
    Ok(TenantSessions { tenant_id: tenant_id.to_owned(), sessions })
}

impl TenantSessions {
    /// The table `libero sessions list` prints: a header line, then one line per session.
    pub fn to_text(&self) -> String {
        const HEADER: [&str; 8] = ["USER ID", "NAME", "EMAIL", "IP", "BROWSER", "SIGNED IN", "LAST ACTIVE", "EXPIRES"];
        let minute = |at: &DateTime<Utc>| at.format("%Y-%m-%d %H:%M UTC").to_string();
        let dash = |value: &Option<String>| value.clone().unwrap_or_else(|| "-".to_owned());
        let rows: Vec<[String; 8]> = self
            .sessions
            .iter()
            .map(|s| {
                [
                    s.user_id.clone(),
                    dash(&s.user_name),
                    dash(&s.user_email),
                    dash(&s.ip_address),
                    s.browser.clone(),
                    minute(&s.created_at),
                    minute(&s.last_activity_at),
                    minute(&s.expires_at),
                ]
            })
            .collect();
        let mut widths = HEADER.map(|h| h.chars().count());
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let line = |cells: &[String; 8]| {
            let padded: Vec<String> = cells.iter().zip(widths).map(|(cell, width)| format!("{cell:<width$}")).collect();
            format!("{}\n", padded.join("  ").trim_end())
        };
        let mut out = format!("Active sessions for tenant {}: {}\n", self.tenant_id, self.sessions.len());
        if rows.is_empty() {
            return out;
        }
        out.push_str(&line(&HEADER.map(str::to_owned)));
        for row in &rows {
            out.push_str(&line(row));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_short_stable_and_depend_on_the_secret() {
        let id = crate::hash_token("some-token");
        let handles = SessionHandles::new("0123456789abcdef0123456789abcdef");
        let handle = handles.of(&id);
        assert_eq!(handle.len(), 32);
        assert!(!id.contains(&handle), "the handle is not a piece of the row id");
        assert_eq!(handle, SessionHandles::new("0123456789abcdef0123456789abcdef").of(&id), "stable");
        assert_ne!(handle, SessionHandles::new("another-secret-another-secret-0000").of(&id));
        assert!(handles.names(&handle, &id));
        assert!(!handles.names(&handle, &crate::hash_token("other-token")));
        assert!(!handles.names("", &id));
    }

    #[test]
    fn the_tenant_table_has_a_header_and_one_line_per_session() {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let list = TenantSessions {
            tenant_id: "demo-winery".into(),
            sessions: vec![ListedSession {
                user_id: "c7-user-dana".into(),
                user_name: Some("Dana Owner".into()),
                user_email: None,
                ip_address: Some("127.0.0.1".into()),
                browser: "Chrome on Windows".into(),
                created_at: at,
                last_activity_at: at,
                expires_at: at,
            }],
        };
        let text = list.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "Active sessions for tenant demo-winery: 1");
        assert!(lines[1].starts_with("USER ID"), "{text}");
        assert!(
            lines[2].contains("c7-user-dana  Dana Owner  -") && lines[2].contains("2023-11-14 22:13 UTC"),
            "{text}"
        );
        assert_eq!(lines.len(), 3);
    }
}
