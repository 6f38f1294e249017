//! The guide's monitoring query, on both databases, plus active sessions per client.
//!
//! "Active" is what the store would accept: not expired and not idle for `SESSION_IDLE_TIMEOUT`
//! or longer, so the counts need the same idle timeout as the server.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::active_since;
use crate::db::{Backend, Db, now, on_pool};

/// What `libero sessions stats` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionStats {
    /// All rows.
    pub total_sessions: i64,
    /// `expires_at` in the future and used within the idle timeout.
    pub active_sessions: i64,
    /// `expires_at` in the past (waiting for cleanup).
    pub expired_sessions: i64,
    /// Not expired, but unused for the idle timeout or longer (dead; waiting for cleanup).
    pub idle_sessions: i64,
    /// Distinct clients with a row.
    pub unique_clients: i64,
    /// Average minutes since `last_activity_at` (`null` without rows).
    pub avg_idle_minutes: Option<f64>,
    /// Active sessions per tenant, busiest first.
    pub active_per_client: Vec<ClientSessions>,
}

/// Active sessions of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientSessions {
    /// Commerce7 tenant.
    pub tenant_id: String,
    /// Its active sessions.
    pub active_sessions: i64,
}

type Totals = (i64, Option<i64>, Option<i64>, Option<i64>, i64, Option<f64>);

/// Runs the monitoring query at `now`; sessions idle for `idle_timeout` or longer are not
/// active (`None`: the idle rule is off).
pub async fn collect(db: &Db, idle_timeout: Option<Duration>) -> Result<SessionStats, sqlx::Error> {
    let now: DateTime<Utc> = now();
    let idle_before = active_since(now, idle_timeout);
    // Minutes since last use: the one expression the two databases spell differently.
    let idle_minutes = match db.backend() {
        Backend::Sqlite => "(julianday($1) - julianday(last_activity_at)) * 1440.0",
        Backend::Postgres => "(EXTRACT(EPOCH FROM ($1 - last_activity_at)) / 60)::float8",
    };
    let totals_sql = format!(
        "SELECT COUNT(*),
                SUM(CASE WHEN expires_at > $1 AND last_activity_at > $2 THEN 1 ELSE 0 END),
                SUM(CASE WHEN expires_at < $1 THEN 1 ELSE 0 END),
                SUM(CASE WHEN expires_at >= $1 AND last_activity_at <= $2 THEN 1 ELSE 0 END),
                COUNT(DISTINCT client_id),
                AVG({idle_minutes})
         FROM app_sessions"
    );
    let totals: Totals =
        on_pool!(db, |c| sqlx::query_as(&totals_sql).bind(now).bind(idle_before).fetch_one(c).await?)?;
    let per_client: Vec<(String, i64)> = on_pool!(db, |c| sqlx::query_as(
        "SELECT c.tenant_id, COUNT(*) FROM app_sessions s JOIN clients c ON c.id = s.client_id
         WHERE s.expires_at > $1 AND s.last_activity_at > $2
         GROUP BY c.tenant_id ORDER BY 2 DESC, 1 LIMIT 100",
    )
    .bind(now)
    .bind(idle_before)
    .fetch_all(c)
    .await?)?;
    let (total, active, expired, idle, unique_clients, avg_idle) = totals;
    Ok(SessionStats {
        total_sessions: total,
        active_sessions: active.unwrap_or(0),
        expired_sessions: expired.unwrap_or(0),
        idle_sessions: idle.unwrap_or(0),
        unique_clients,
        avg_idle_minutes: avg_idle.map(|m| (m * 10.0).round() / 10.0),
        active_per_client: per_client
            .into_iter()
            .map(|(tenant_id, active_sessions)| ClientSessions { tenant_id, active_sessions })
            .collect(),
    })
}

/// `(rows, active)` for the metrics gauges: two index-friendly counts, active as in [`collect`]
/// (idle rows left out).
pub async fn counts_with_idle(db: &Db, idle_timeout: Option<Duration>) -> Result<(i64, i64), sqlx::Error> {
    let now = now();
    let idle_before = active_since(now, idle_timeout);
    on_pool!(db, |c| {
        sqlx::query_as(
            "SELECT COUNT(*),
                        (SELECT COUNT(*) FROM app_sessions WHERE expires_at > $1 AND last_activity_at > $2)
                 FROM app_sessions",
        )
        .bind(now)
        .bind(idle_before)
        .fetch_one(c)
        .await?
    })
}

impl SessionStats {
    /// The human-readable report of `libero sessions stats`.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "total_sessions:   {}\nactive_sessions:  {}\nexpired_sessions: {}\nidle_sessions:    {}\nunique_clients:   {}\navg_idle_minutes: {}\n",
            self.total_sessions,
            self.active_sessions,
            self.expired_sessions,
            self.idle_sessions,
            self.unique_clients,
            self.avg_idle_minutes.map_or_else(|| "-".to_owned(), |m| format!("{m:.1}")),
        );
        out.push_str("active sessions per client:\n");
        if self.active_per_client.is_empty() {
            out.push_str("  (none)\n");
        }
        for client in &self.active_per_client {
            out.push_str(&format!("  {:<40} {}\n", client.tenant_id, client.active_sessions));
        }
        out
    }
}
