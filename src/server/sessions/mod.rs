//! Database-backed app sessions: the store (`app_sessions`), the signed cookie, and the guard.
//!
//! The merchant is verified against Commerce7 once; after that the signed `__libero_session`
//! cookie and one indexed row in `app_sessions` authenticate every request.

pub mod cleanup;
pub mod cookie;
pub mod guard;
pub mod stats;
pub mod store;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use cookie::{SessionCookies, session_layer};
pub use guard::{CurrentSession, csrf_guard, session_guard};
pub use store::AppSessionStore;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "__libero_session";

/// The key under which the authenticated identity lives in the tower-sessions record. The store
/// maps it to the row's columns (`client_id`, `user_*`, `theme`, …), not to the `data` JSON.
pub const AUTH_KEY: &str = "auth";

/// The Commerce7 admin's colour theme.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Theme {
    /// Light (the default).
    #[default]
    Light,
    /// Dark.
    Dark,
}

impl Theme {
    /// Parses `adminUITheme`; anything unknown is light.
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some(v) if v.eq_ignore_ascii_case("dark") => Self::Dark,
            _ => Self::Light,
        }
    }

    /// The database value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Light => "light",
            Self::Dark => "dark",
        }
    }
}

/// Who the session belongs to. Written once at sign-in; the store keeps it in the row's columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthSession {
    /// `clients.id` of the tenant.
    pub client_id: Uuid,
    /// The tenant slug (from `clients`, not stored on the session row).
    pub tenant_id: String,
    /// Commerce7 user id.
    pub user_id: String,
    /// Display name.
    pub user_name: Option<String>,
    /// Email.
    pub user_email: Option<String>,
    /// Admin theme.
    pub theme: Theme,
    /// Client IP at sign-in.
    pub ip_address: Option<String>,
    /// User agent at sign-in (truncated).
    pub user_agent: Option<String>,
    /// When the session was created (read from the row).
    pub created_at: DateTime<Utc>,
    /// When the session was last used (read from the row).
    pub last_activity_at: DateTime<Utc>,
    /// Absolute expiry (read from the row).
    pub expires_at: DateTime<Utc>,
}

/// SHA-256 (hex) of a cookie token: the `app_sessions.id` of that token.
pub fn hash_token(token: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hash_is_lowercase_sha256_hex() {
        assert_eq!(hash_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn unknown_themes_fall_back_to_light() {
        assert_eq!(Theme::parse(Some("dark")), Theme::Dark);
        assert_eq!(Theme::parse(Some("DARK")), Theme::Dark);
        assert_eq!(Theme::parse(Some("purple")), Theme::Light);
        assert_eq!(Theme::parse(None), Theme::Light);
    }
}
