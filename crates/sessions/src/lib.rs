//! Libero's session core: the database (`db`), the wineries (`clients`), the session store over
//! `app_sessions`, the tokens (the cookie's signature, tab tokens and handoff codes, session
//! handles, signed form errors), the lists, the cleanup and the statistics.
//!
//! It knows no web: no axum, no Leptos, no HTML. The app (the `libero` crate) puts it behind the
//! signed `__libero_session` cookie and the session guard; the merchant is verified against
//! Commerce7 once, and after that the cookie or the tab token and one indexed row in
//! `app_sessions` authenticate every request.

pub mod cleanup;
pub mod clients;
pub mod cookie;
pub mod db;
pub mod form_error;
pub mod manage;
pub mod metrics;
pub mod report;
pub mod stats;
pub mod store;
pub mod tab;
pub mod user_agent;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

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
    /// The client's `install_generation` at sign-in: the session is valid only while the client
    /// is still on it (a reinstall after an uninstall moves it on).
    #[serde(default)]
    pub install_generation: i64,
    /// SHA-256 (hex) of the Commerce7 account token this session was verified with; `None` for
    /// sessions from before it was recorded. Only that token takes the sign-in fast path.
    pub account_token_hash: Option<String>,
    /// `app_sessions.tab_generation`: only tab tokens minted at this generation are accepted.
    #[serde(default)]
    pub tab_generation: i64,
    /// `app_sessions.user_role`: the Commerce7 `role` at sign-in, refreshed when the same user
    /// reopens Libero; `None` when Commerce7 sent none (or the session is older than the column).
    /// Only `Admin Owner` and `Admin` see the sessions report ([`report::may_see_report`]).
    pub user_role: Option<String>,
}

impl AuthSession {
    /// Whether `account` is the token this session was verified with (compared in constant
    /// time over the hashes). A session without a recorded token matches none.
    pub fn was_verified_with(&self, account: &str) -> bool {
        self.account_token_hash
            .as_deref()
            .is_some_and(|stored| secrets_match(stored.as_bytes(), hash_token(account).as_bytes()))
    }
}

/// The latest `last_activity_at` of a session that is idle at `now`: idle means unused for
/// `idle_timeout` or longer, i.e. `last_activity_at <= now - idle_timeout`. `None` when the idle
/// rule is off. The store, the cleanup and the statistics all draw the line here.
pub fn idle_cutoff(now: DateTime<Utc>, idle_timeout: Option<std::time::Duration>) -> Option<DateTime<Utc>> {
    let idle = chrono::TimeDelta::from_std(idle_timeout?).ok()?;
    now.checked_sub_signed(idle)
}

/// The earliest `last_activity_at` of a session that is not idle at `now` ([`idle_cutoff`]), or
/// the epoch when the idle rule is off: the lower bound the lists, the cleanup and the statistics
/// query with.
pub fn active_since(now: DateTime<Utc>, idle_timeout: Option<std::time::Duration>) -> DateTime<Utc> {
    idle_cutoff(now, idle_timeout).unwrap_or(DateTime::UNIX_EPOCH)
}

/// A chrono instant as tower-sessions' `time` instant (microsecond precision, like the
/// database); out of range becomes the epoch, i.e. already expired.
pub fn to_offset(dt: DateTime<Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(dt.timestamp_micros()) * 1_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// SHA-256 (hex) of a token: of a cookie token, the `app_sessions.id` of that token; of a
/// Commerce7 account token, the `app_sessions.account_token_hash` it is recognised by.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether `given` is `expected`, in time that depends on neither: both are hashed (SHA-256)
/// first, so not even their lengths show. The one comparison of secrets: handles, account tokens,
/// the callbacks' Basic credentials, the metrics token.
pub fn secrets_match(given: &[u8], expected: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    Sha256::digest(given).ct_eq(&Sha256::digest(expected)).into()
}

/// A key of its own for `purpose`, drawn from `SESSION_SECRET` (HKDF-SHA256, `purpose` as the
/// info): every key the core signs with is one of these — tab tokens, session handles, form
/// errors — and none is the secret itself or the cookie's key.
pub fn derive_key(secret: &str, purpose: &[u8]) -> [u8; 32] {
    let mut key = [0u8; 32];
    hkdf::Hkdf::<Sha256>::new(None, secret.as_bytes())
        .expand(purpose, &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    key
}

/// HMAC-SHA256 under `key` (the `hmac` crate), ready for the message.
pub fn keyed_mac(key: &[u8; 32]) -> hmac::Hmac<Sha256> {
    use hmac::Mac;
    hmac::Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length")
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

    fn verified_with(account: Option<&str>) -> AuthSession {
        let at = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        AuthSession {
            client_id: Uuid::nil(),
            tenant_id: "demo-winery".into(),
            user_id: "u".into(),
            user_name: None,
            user_email: None,
            theme: Theme::Light,
            ip_address: None,
            user_agent: None,
            created_at: at,
            last_activity_at: at,
            expires_at: at,
            install_generation: 1,
            account_token_hash: account.map(hash_token),
            tab_generation: 0,
            user_role: None,
        }
    }

    #[test]
    fn only_the_verified_account_token_matches() {
        let session = verified_with(Some("dana-token"));
        assert!(session.was_verified_with("dana-token"));
        assert!(!session.was_verified_with("sam-token"));
        assert!(!session.was_verified_with(""));
        assert!(!verified_with(None).was_verified_with("dana-token"), "no recorded token, no fast path");
    }

    #[test]
    fn each_purpose_draws_a_key_of_its_own_from_the_secret() {
        let secret = "0123456789abcdef0123456789abcdef";
        // Control: the same secret and purpose give the same key (another instance, a restart).
        assert_eq!(derive_key(secret, b"libero/a/v1"), derive_key(secret, b"libero/a/v1"));
        assert_ne!(derive_key(secret, b"libero/a/v1"), derive_key(secret, b"libero/b/v1"));
        assert_ne!(derive_key(secret, b"libero/a/v1"), derive_key("another-secret-another-secret-00", b"libero/a/v1"));
        assert_ne!(&derive_key(secret, b"libero/a/v1")[..], &secret.as_bytes()[..32], "never the secret itself");
    }

    #[test]
    fn the_idle_cutoff_is_now_minus_the_timeout_or_none() {
        let now = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        assert_eq!(
            idle_cutoff(now, Some(std::time::Duration::from_secs(3600))),
            Some(now - chrono::TimeDelta::hours(1))
        );
        assert_eq!(idle_cutoff(now, None), None);
        assert_eq!(active_since(now, None), DateTime::UNIX_EPOCH, "no idle rule: every session is active");
    }

    #[test]
    fn expiry_instants_keep_the_microseconds() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let offset = to_offset(at);
        assert_eq!(offset.unix_timestamp(), 1_700_000_000);
        assert_eq!(offset.microsecond(), 123_456);
    }
}
