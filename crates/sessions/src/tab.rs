//! The per-tab credential beside the cookie: tab tokens and handoff codes.
//!
//! A **tab token** is `v2.<tenant>.<row>.<generation>.<expiry>.<mac>`: the tenant slug, the
//! session row id (32 bytes, base64url), the row's tab-token generation, the expiry in Unix
//! seconds, and HMAC-SHA256 over everything before the last dot under a key of its own
//! (HKDF-SHA256 of `SESSION_SECRET` with the info [`TAB_TOKEN_KEY_INFO`], distinct from the
//! cookie's). It is only a pointer: whoever presents it still gets the row loaded and validated
//! like the cookie's, so logout, uninstall, idle and absolute expiry end it at once on every
//! instance, and a token of an older generation than the row's
//! (`app_sessions.tab_generation`, moved on by *Sign out all other sessions*) is refused. The
//! hydrated app sends it as `Authorization: Bearer`; it never goes into a URL, a log line or a
//! cookie. (`v1` tokens, without the generation, are read as generation 0.)
//!
//! A **handoff code** carries a sign-in (or a resume) across the `303` into the page without the
//! cookie: 32 random bytes, base64url; only its SHA-256 is stored, on the row, for
//! [`HANDOFF_LIFETIME`], and the first use clears it.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use hmac::Mac;

/// How long a tab token is accepted after it was minted. The hydrated app renews it well before.
pub const TAB_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// How long a handoff code can be redeemed.
pub const HANDOFF_LIFETIME: Duration = Duration::from_secs(60);

/// The HKDF info that makes the tab-token key differ from every other key drawn from the secret.
pub const TAB_TOKEN_KEY_INFO: &[u8] = b"libero/tab-token/v1";

const VERSION: &str = "v2";
/// The format before the generation: read as generation 0 (such tokens live 15 minutes).
const VERSION_1: &str = "v1";
const ROW_ID_BYTES: usize = 32;
/// Longest possible token: version, a 100-character tenant, row, a 20-digit generation, a
/// 20-digit expiry, the MAC.
pub const MAX_TOKEN_LEN: usize = 2 + 1 + 100 + 1 + 43 + 1 + 20 + 1 + 20 + 1 + 43;

/// What a valid tab token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TabClaims {
    /// The tenant the tab was opened for.
    pub tenant_id: String,
    /// `app_sessions.id` (lowercase hex).
    pub row_id: String,
    /// The row's `tab_generation` when the token was minted.
    pub generation: i64,
    /// When the token stops being accepted.
    pub expires_at: DateTime<Utc>,
}

/// Why a tab token was refused (a metrics label and a log field; the client only sees 401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TabTokenError {
    /// Not of the token's shape (or too long to be one).
    Malformed,
    /// The MAC does not match: tampered, or signed with another secret.
    BadSignature,
    /// Past its expiry.
    Expired,
}

impl TabTokenError {
    /// The metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "bearer_malformed",
            Self::BadSignature => "bearer_bad_signature",
            Self::Expired => "bearer_expired",
        }
    }
}

/// Mints and verifies tab tokens.
#[derive(Clone)]
pub struct TabTokens {
    key: [u8; 32],
}

impl std::fmt::Debug for TabTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TabTokens([redacted])")
    }
}

impl TabTokens {
    /// Derives the tab-token key from `SESSION_SECRET`.
    pub fn new(secret: &str) -> Self {
        Self { key: crate::derive_key(secret, TAB_TOKEN_KEY_INFO) }
    }

    /// A token for the session row `row_id` (hex) of `tenant_id` at tab-token generation
    /// `generation`, valid until `expires_at`.
    pub fn mint(&self, tenant_id: &str, row_id: &str, generation: i64, expires_at: DateTime<Utc>) -> String {
        debug_assert!(is_tenant_slug(tenant_id), "tenant ids are slugs (no dots)");
        let row = hex::decode(row_id).unwrap_or_default();
        let payload =
            format!("{VERSION}.{tenant_id}.{}.{generation}.{}", URL_SAFE_NO_PAD.encode(row), expires_at.timestamp());
        let mut mac = crate::keyed_mac(&self.key);
        mac.update(payload.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// Checks the shape, the MAC (in constant time) and the expiry of a token.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<TabClaims, TabTokenError> {
        let claims = self.verify_signed(token)?;
        if claims.expires_at <= now {
            return Err(TabTokenError::Expired);
        }
        Ok(claims)
    }

    /// Checks the shape and the MAC of a token, whatever its expiry: what names a session to
    /// sign out. Expiry limits what a token may *use*; ending its own session is not a use (the
    /// row's own validity — expiry, idle, revocation, generation — still decides everything
    /// else).
    pub fn verify_signed(&self, token: &str) -> Result<TabClaims, TabTokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TabTokenError::Malformed);
        }
        let (payload, tag) = token.rsplit_once('.').ok_or(TabTokenError::Malformed)?;
        let parts: Vec<&str> = payload.split('.').collect();
        let (tenant, row, generation, expiry) = match parts[..] {
            [VERSION, tenant, row, generation, expiry] => (tenant, row, generation, expiry),
            [VERSION_1, tenant, row, expiry] => (tenant, row, "0", expiry),
            _ => return Err(TabTokenError::Malformed),
        };
        if tag.len() != 43 {
            return Err(TabTokenError::Malformed);
        }
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| TabTokenError::Malformed)?;
        let mut mac = crate::keyed_mac(&self.key);
        mac.update(payload.as_bytes());
        mac.verify_slice(&tag).map_err(|_| TabTokenError::BadSignature)?;
        // Signed by us: the fields are ours, but parse them as carefully as anything else.
        let row = URL_SAFE_NO_PAD.decode(row).map_err(|_| TabTokenError::Malformed)?;
        if row.len() != ROW_ID_BYTES || !is_tenant_slug(tenant) {
            return Err(TabTokenError::Malformed);
        }
        let generation = generation.parse::<i64>().map_err(|_| TabTokenError::Malformed)?;
        let expires_at = expiry
            .parse::<i64>()
            .ok()
            .and_then(|secs| DateTime::from_timestamp(secs, 0))
            .ok_or(TabTokenError::Malformed)?;
        Ok(TabClaims { tenant_id: tenant.to_owned(), row_id: hex::encode(row), generation, expires_at })
    }
}

/// A new handoff code: 32 random bytes, base64url (43 characters).
pub fn new_handoff_code() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `value` has the shape of a handoff code (checked before any hashing or lookup).
pub fn is_handoff_code(value: &str) -> bool {
    value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Commerce7 tenant ids are slugs.
pub fn is_tenant_slug(value: &str) -> bool {
    !value.is_empty() && value.len() <= 100 && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const ROW: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn a_minted_token_verifies_to_its_tenant_row_and_expiry() {
        let tokens = TabTokens::new(SECRET);
        let token = tokens.mint("demo-winery", ROW, 0, at(900));
        assert!(token.starts_with("v2.demo-winery."), "{token}");
        let claims = tokens.verify(&token, at(0)).unwrap();
        assert_eq!(
            claims,
            TabClaims { tenant_id: "demo-winery".into(), row_id: ROW.into(), generation: 0, expires_at: at(900) }
        );
        let next = tokens.mint("demo-winery", ROW, 3, at(900));
        assert_eq!(tokens.verify(&next, at(0)).unwrap().generation, 3);
    }

    #[test]
    fn a_token_is_refused_from_its_expiry_on() {
        let tokens = TabTokens::new(SECRET);
        let token = tokens.mint("demo-winery", ROW, 0, at(900));
        assert!(tokens.verify(&token, at(899)).is_ok(), "control: one second before");
        assert_eq!(tokens.verify(&token, at(900)), Err(TabTokenError::Expired));
    }

    #[test]
    fn an_expired_token_still_names_its_session_but_a_forged_one_does_not() {
        let tokens = TabTokens::new(SECRET);
        let token = tokens.mint("demo-winery", ROW, 2, at(900));
        assert_eq!(tokens.verify(&token, at(5000)), Err(TabTokenError::Expired), "control: expired for use");
        let claims = tokens.verify_signed(&token).expect("correctly signed");
        assert_eq!((claims.row_id.as_str(), claims.generation), (ROW, 2));
        let forged = TabTokens::new("another-secret-another-secret-000000").mint("demo-winery", ROW, 2, at(900));
        assert_eq!(tokens.verify_signed(&forged), Err(TabTokenError::BadSignature));
        assert_eq!(tokens.verify_signed("v2.demo-winery.AAAA.0.1.AAAA"), Err(TabTokenError::Malformed));
    }

    #[test]
    fn a_version_1_token_reads_as_generation_0() {
        let tokens = TabTokens::new(SECRET);
        let payload =
            format!("v1.demo-winery.{}.{}", URL_SAFE_NO_PAD.encode(hex::decode(ROW).unwrap()), at(900).timestamp());
        let mut mac = crate::keyed_mac(&tokens.key);
        mac.update(payload.as_bytes());
        let token = format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
        let claims = tokens.verify(&token, at(0)).unwrap();
        assert_eq!((claims.row_id.as_str(), claims.generation), (ROW, 0));
    }

    #[test]
    fn changing_any_field_breaks_the_signature() {
        let tokens = TabTokens::new(SECRET);
        let token = tokens.mint("demo-winery", ROW, 0, at(900));
        assert!(tokens.verify(&token, at(0)).is_ok(), "control: the untouched token");
        let other_tenant = token.replacen("demo-winery", "second-cell", 1);
        assert_eq!(tokens.verify(&other_tenant, at(0)), Err(TabTokenError::BadSignature));
        let later = token.replacen(&at(900).timestamp().to_string(), &at(9000).timestamp().to_string(), 1);
        assert_eq!(tokens.verify(&later, at(0)), Err(TabTokenError::BadSignature));
        let generation = token.replacen(".0.", ".1.", 1);
        assert_eq!(tokens.verify(&generation, at(0)), Err(TabTokenError::BadSignature));
        let mut flipped = token.clone();
        let last = flipped.pop().unwrap();
        flipped.push(if last == 'A' { 'B' } else { 'A' });
        assert!(tokens.verify(&flipped, at(0)).is_err());
    }

    #[test]
    fn a_token_signed_with_another_secret_or_the_cookie_key_is_refused() {
        let ours = TabTokens::new(SECRET);
        let theirs = TabTokens::new("another-secret-another-secret-000000");
        let token = theirs.mint("demo-winery", ROW, 0, at(900));
        assert_eq!(ours.verify(&token, at(0)), Err(TabTokenError::BadSignature));
        let cookie_key = cookie::Key::derive_from(SECRET.as_bytes());
        assert_ne!(&ours.key[..], cookie_key.signing(), "the tab key is not the cookie's signing key");
    }

    #[test]
    fn malformed_tokens_are_refused_before_any_work() {
        let tokens = TabTokens::new(SECRET);
        for junk in ["", "v1", "v1.a.b.c", "v3.demo.AAAA.0.1.AAAA", "v1.demo..1.", &"A".repeat(MAX_TOKEN_LEN + 1)] {
            assert_eq!(tokens.verify(junk, at(0)), Err(TabTokenError::Malformed), "{junk:?}");
        }
    }

    #[test]
    fn handoff_codes_are_43_url_safe_characters_and_never_repeat() {
        let (a, b) = (new_handoff_code(), new_handoff_code());
        assert!(is_handoff_code(&a) && is_handoff_code(&b));
        assert_ne!(a, b);
        assert!(!is_handoff_code("short"));
        assert!(!is_handoff_code(&format!("{}.", &a[..42])));
    }

    #[test]
    fn tenant_slugs_are_short_and_plain() {
        assert!(is_tenant_slug("demo-winery"));
        assert!(is_tenant_slug("winery_2"));
        assert!(!is_tenant_slug(""));
        assert!(!is_tenant_slug("a/b"));
        assert!(!is_tenant_slug(&"a".repeat(101)));
    }
}
