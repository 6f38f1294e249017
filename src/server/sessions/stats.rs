//! The guide's monitoring query, on both databases, plus active sessions per client.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::server::db::{Db, now};

/// What `libero sessions stats` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionStats {
    /// All rows.
    pub total_sessions: i64,
    /// `expires_at` in the future.
    pub active_sessions: i64,
    /// `expires_at` in the past (waiting for cleanup).
    pub expired_sessions: i64,
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

type Totals = (i64, Option<i64>, Option<i64>, i64, Option<f64>);

/// Runs the monitoring query at `now`.
pub async fn collect(db: &Db) -> Result<SessionStats, sqlx::Error> {
    let now: DateTime<Utc> = now();
    let (totals, per_client): (Totals, Vec<(String, i64)>) = match db {
        Db::Sqlite(pool) => (
            sqlx::query_as(
                "SELECT COUNT(*),
                        SUM(CASE WHEN expires_at > ?1 THEN 1 ELSE 0 END),
                        SUM(CASE WHEN expires_at < ?1 THEN 1 ELSE 0 END),
                        COUNT(DISTINCT client_id),
                        AVG((julianday(?1) - julianday(last_activity_at)) * 1440.0)
                 FROM app_sessions",
            )
            .bind(now)
            .fetch_one(pool)
            .await?,
            sqlx::query_as(
                "SELECT c.tenant_id, COUNT(*) FROM app_sessions s JOIN clients c ON c.id = s.client_id
                 WHERE s.expires_at > ?1 GROUP BY c.tenant_id ORDER BY 2 DESC, 1 LIMIT 100",
            )
            .bind(now)
            .fetch_all(pool)
            .await?,
        ),
        Db::Postgres(pool) => (
            sqlx::query_as(
                "SELECT COUNT(*),
                        COUNT(*) FILTER (WHERE expires_at > $1),
                        COUNT(*) FILTER (WHERE expires_at < $1),
                        COUNT(DISTINCT client_id),
                        AVG(EXTRACT(EPOCH FROM ($1 - last_activity_at)) / 60)::float8
                 FROM app_sessions",
            )
            .bind(now)
            .fetch_one(pool)
            .await?,
            sqlx::query_as(
                "SELECT c.tenant_id, COUNT(*) FROM app_sessions s JOIN clients c ON c.id = s.client_id
                 WHERE s.expires_at > $1 GROUP BY c.tenant_id ORDER BY 2 DESC, 1 LIMIT 100",
            )
            .bind(now)
            .fetch_all(pool)
            .await?,
        ),
    };
    let (total, active, expired, unique_clients, avg_idle) = totals;
    Ok(SessionStats {
        total_sessions: total,
        active_sessions: active.unwrap_or(0),
        expired_sessions: expired.unwrap_or(0),
        unique_clients,
        avg_idle_minutes: avg_idle.map(|m| (m * 10.0).round() / 10.0),
        active_per_client: per_client
            .into_iter()
            .map(|(tenant_id, active_sessions)| ClientSessions { tenant_id, active_sessions })
            .collect(),
    })
}

/// `(rows, active)` for the metrics gauges: two index-friendly counts.
pub async fn counts(db: &Db) -> Result<(i64, i64), sqlx::Error> {
    let now = now();
    match db {
        Db::Sqlite(pool) => {
            sqlx::query_as(
                "SELECT COUNT(*), (SELECT COUNT(*) FROM app_sessions WHERE expires_at > ?1) FROM app_sessions",
            )
            .bind(now)
            .fetch_one(pool)
            .await
        }
        Db::Postgres(pool) => {
            sqlx::query_as(
                "SELECT COUNT(*), (SELECT COUNT(*) FROM app_sessions WHERE expires_at > $1) FROM app_sessions",
            )
            .bind(now)
            .fetch_one(pool)
            .await
        }
    }
}

impl SessionStats {
    /// The human-readable report of `libero sessions stats`.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "total_sessions:   {}\nactive_sessions:  {}\nexpired_sessions: {}\nunique_clients:   {}\navg_idle_minutes: {}\n",
            self.total_sessions,
            self.active_sessions,
            self.expired_sessions,
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
