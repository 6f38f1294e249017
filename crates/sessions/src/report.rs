//! The Report extension "Who is signed in to Libero at this winery" (`/reports/sessions`): every
//! live session of the tenant, for the users Commerce7 calls `Admin Owner` or `Admin`, and
//! *Sign out this person everywhere*.
//!
//! Same data rules as "Your sessions" ([`manage`](crate::manage)): every query carries
//! `client_id = …` in its `WHERE` (the tenant is the signed-in user's, never the browser's word),
//! and the browser names a session by its [`SessionHandles`] handle, never by its row id.

use std::time::Duration;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::db::{ClientKey, Db, now, on_pool};
use crate::{active_since, manage::SessionHandles};

/// The Commerce7 roles that may see the report, exactly as Commerce7 names them.
pub const REPORT_ROLES: [&str; 2] = ["Admin Owner", "Admin"];

/// The longest role kept on a session (the column's check); a longer one is cut, and then is no
/// known role.
const MAX_ROLE_CHARS: usize = 100;

/// The role to store for what Commerce7 answered: trimmed, at most 100 characters; `None` when
/// missing, empty or with a control character inside (no role of Commerce7's: it fails closed).
pub fn stored_role(role: Option<&str>) -> Option<String> {
    let role = role?.trim();
    (!role.is_empty() && !role.contains(char::is_control)).then(|| role.chars().take(MAX_ROLE_CHARS).collect())
}

/// Whether a session's role may see the report. Fails closed: no role, or any role but
/// [`REPORT_ROLES`] (compared exactly: Commerce7 spells them so), may not.
pub fn may_see_report(role: Option<&str>) -> bool {
    role.is_some_and(|role| REPORT_ROLES.contains(&role))
}

/// A live session of the tenant, as stored (server-side only: it has the row id).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TenantSession {
    /// `app_sessions.id`.
    pub id: String,
    /// Commerce7 user id.
    pub user_id: String,
    /// Display name.
    pub user_name: Option<String>,
    /// Email.
    pub user_email: Option<String>,
    /// User agent at sign-in.
    pub user_agent: Option<String>,
    /// Last request (to within the touch interval).
    pub last_activity_at: DateTime<Utc>,
    /// Absolute expiry.
    pub expires_at: DateTime<Utc>,
}

/// The live (not expired, not idle) sessions of one tenant, by user, most recently used first
/// (at most 500).
pub async fn list_live(db: &Db, client_id: Uuid, idle: Option<Duration>) -> Result<Vec<TenantSession>, sqlx::Error> {
    let now = now();
    let since = active_since(now, idle);
    on_pool!(db, |c| {
        sqlx::query_as(
            "SELECT id, user_id, user_name, user_email, user_agent, last_activity_at, expires_at FROM app_sessions
                  WHERE client_id = $1 AND expires_at > $2 AND last_activity_at > $3
                  ORDER BY user_id, last_activity_at DESC, created_at DESC LIMIT 500",
        )
        .bind(ClientKey(client_id))
        .bind(now)
        .bind(since)
        .fetch_all(c)
        .await?
    })
}

/// What *Sign out this person everywhere* did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// This many sessions of the person (Commerce7 user `user_id`) ended.
    Sessions {
        /// Whose sessions ended.
        user_id: String,
        /// How many.
        ended: u64,
    },
    /// The handle names one of the asking user's own sessions: refused (that is *Sign out*).
    OwnUser,
    /// No session of this tenant has that handle (another winery's, a made-up one, or one that
    /// has ended meanwhile).
    NotFound,
}

/// Ends every session, within this tenant, of the user whose session `handle` names. The handle
/// is looked up among this tenant's sessions only; the `DELETE` is scoped to the tenant again and
/// never touches `me`'s sessions.
pub async fn end_user_everywhere(
    db: &Db,
    client_id: Uuid,
    me: &str,
    handles: &SessionHandles,
    handle: &str,
    idle: Option<Duration>,
) -> Result<Ended, sqlx::Error> {
    let rows: Vec<(String, String)> = on_pool!(db, |c| {
        sqlx::query_as("SELECT id, user_id FROM app_sessions WHERE client_id = $1")
            .bind(ClientKey(client_id))
            .fetch_all(c)
            .await?
    })?;
    let Some((id, user_id)) = rows.into_iter().find(|(id, _)| handles.names(handle, id)) else {
        return Ok(Ended::NotFound);
    };
    if user_id == me {
        return Ok(Ended::OwnUser);
    }
    // The person is the one the named row belongs to *now*, within this tenant: the id alone
    // never decides, and a row that ended meanwhile ends nothing. Their expired or idle rows go
    // too, counted as the list showed them: not at all.
    let deleted: Vec<(DateTime<Utc>, DateTime<Utc>)> = on_pool!(db, |c| sqlx::query_as(
        "DELETE FROM app_sessions WHERE client_id = $1 AND user_id <> $3
                AND user_id = (SELECT user_id FROM app_sessions WHERE id = $2 AND client_id = $1)
          RETURNING expires_at, last_activity_at",
    )
    .bind(ClientKey(client_id))
    .bind(&id)
    .bind(me)
    .fetch_all(c)
    .await?)?;
    let ended = crate::manage::live(&deleted, idle);
    Ok(if deleted.is_empty() { Ended::NotFound } else { Ended::Sessions { user_id, ended } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_admin_owner_and_admin_may_see_the_report() {
        assert!(may_see_report(Some("Admin Owner")));
        assert!(may_see_report(Some("Admin")));
        for refused in [None, Some(""), Some("admin"), Some("ADMIN OWNER"), Some("Staff"), Some("Admin Owner ")] {
            assert!(!may_see_report(refused), "{refused:?}");
        }
    }

    #[test]
    fn roles_are_stored_trimmed_bounded_or_not_at_all() {
        assert_eq!(stored_role(Some(" Admin Owner ")).as_deref(), Some("Admin Owner"));
        assert_eq!(stored_role(Some("   ")), None);
        assert_eq!(stored_role(None), None);
        let long = "é".repeat(150);
        let kept = stored_role(Some(&long)).unwrap();
        assert_eq!(kept.chars().count(), 100);
        assert!(!may_see_report(Some(&kept)));
        assert!(may_see_report(stored_role(Some("Admin ")).as_deref()), "what is stored is what is judged");
    }
}
