//! The session core's metrics (the `metrics` facade: whichever recorder the process installs,
//! the app's Prometheus exporter).

use std::sync::OnceLock;

use metrics::{counter, gauge};

/// Sessions created at sign-in.
pub const SESSIONS_CREATED: &str = "libero_sessions_created_total";
/// Session validations by outcome: ok, missing, bad_signature, expired, idle.
pub const SESSION_VALIDATIONS: &str = "libero_session_validations_total";
/// Writes of `last_activity_at` (at most one per session per `SESSION_TOUCH_INTERVAL`).
pub const SESSION_TOUCHES: &str = "libero_session_touches_total";
/// Expired sessions deleted by cleanup.
pub const CLEANUP_DELETED: &str = "libero_session_cleanup_deleted_total";
/// Unix time of the last successful cleanup run.
pub const CLEANUP_LAST_SUCCESS: &str = "libero_session_cleanup_last_success_timestamp_seconds";
/// Sessions neither expired nor idle (refreshed at every scrape).
pub const ACTIVE_SESSIONS: &str = "libero_active_sessions";
/// Rows in `app_sessions`, expired included (refreshed at every scrape).
pub const SESSION_ROWS: &str = "libero_app_sessions_rows";

/// Sets the session gauges ([`SESSION_ROWS`], [`ACTIVE_SESSIONS`]) to a fresh count.
pub fn session_counts(rows: i64, active: i64) {
    gauge!(SESSION_ROWS).set(rows as f64);
    gauge!(ACTIVE_SESSIONS).set(active as f64);
}

/// Counts one session validation — on every signed-in request, so the counter of each outcome is
/// registered once and reused: a scan of a few cached handles instead of the recorder's lookup of
/// a labelled key (hashing and a map under its lock) per request.
pub fn validation(outcome: &'static str) {
    type Handles = std::sync::RwLock<Vec<(&'static str, metrics::Counter)>>;
    static HANDLES: OnceLock<Handles> = OnceLock::new();
    let handles = HANDLES.get_or_init(Default::default);
    let cached = handles
        .read()
        .ok()
        .and_then(|known| known.iter().find(|(name, _)| *name == outcome).map(|(_, counter)| counter.clone()));
    let counter = cached.unwrap_or_else(|| {
        let counter = counter!(SESSION_VALIDATIONS, "outcome" => outcome);
        if let Ok(mut known) = handles.write()
            && !known.iter().any(|(name, _)| *name == outcome)
        {
            known.push((outcome, counter.clone()));
        }
        counter
    });
    counter.increment(1);
}

/// Counts one write of a session's `last_activity_at`.
pub fn session_touched() {
    counter!(SESSION_TOUCHES).increment(1);
}

/// Counts one created session.
pub fn session_created() {
    counter!(SESSIONS_CREATED).increment(1);
}

/// Records a finished cleanup run.
pub fn cleanup_finished(deleted: u64) {
    counter!(CLEANUP_DELETED).increment(deleted);
    gauge!(CLEANUP_LAST_SUCCESS).set(chrono::Utc::now().timestamp() as f64);
}
