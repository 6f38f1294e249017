//! The value of the signed `__libero_session` cookie: `<mac><token>`, the HMAC-SHA256 of the
//! session token (base64, 44 characters) followed by the token itself (tower-sessions' [`Id`],
//! 22 characters). The row is found by the token's SHA-256, so the value alone opens nothing
//! without the signature.
//!
//! The format and the key are the `cookie` crate's signed cookies (its `Key::derive_from` of
//! `SESSION_SECRET`), which signed Libero's cookies before this module: a deploy does not sign
//! anyone out. The app (`libero`) reads the header and sets the attributes; this is only the
//! value.

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::Mac;
use tower_sessions_core::session::Id;

/// The HKDF info the `cookie` crate expands `SESSION_SECRET` with; its first 32 bytes are the
/// signing key.
const COOKIE_KEY_INFO: &[u8] = b"COOKIE;SIGNED:HMAC-SHA256;PRIVATE:AEAD-AES-256-GCM";
/// The length of the base64 MAC in front of the token.
const MAC_LEN: usize = 44;

/// Why a cookie value was refused (a log field and a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The MAC is missing or does not match: tampered, unsigned, or signed with another secret.
    BadSignature,
    /// Correctly signed, but not a session token.
    Malformed,
}

impl Refused {
    /// The label for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadSignature => "bad_signature",
            Self::Malformed => "malformed",
        }
    }
}

/// Signs and verifies cookie values under the key drawn from `SESSION_SECRET`.
#[derive(Clone)]
pub struct CookieSigner {
    key: [u8; 32],
}

impl std::fmt::Debug for CookieSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CookieSigner").finish_non_exhaustive()
    }
}

impl CookieSigner {
    /// The signer for `secret`: HKDF-SHA256 expansion of the secret (as the pseudo-random key)
    /// with the `cookie` crate's info, which is what `cookie::Key::derive_from` signs with.
    ///
    /// # Panics
    ///
    /// When `secret` is shorter than 32 bytes (as `cookie::Key::derive_from` does); the settings
    /// refuse such a `SESSION_SECRET` before the server starts.
    pub fn new(secret: &str) -> Self {
        let mut key = [0u8; 32];
        hkdf::Hkdf::<sha2::Sha256>::from_prk(secret.as_bytes())
            .expect("SESSION_SECRET is at least 32 bytes (checked by the settings)")
            .expand(COOKIE_KEY_INFO, &mut key)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        Self { key }
    }

    /// The cookie value for session token `id`.
    pub fn sign(&self, id: Id) -> String {
        let token = id.to_string();
        let mut mac = crate::keyed_mac(&self.key);
        mac.update(token.as_bytes());
        let mut value = STANDARD.encode(mac.finalize().into_bytes());
        value.push_str(&token);
        value
    }

    /// The session token a cookie value carries, if it is signed with this key (the MAC is
    /// checked in constant time).
    pub fn verify(&self, value: &str) -> Result<Id, Refused> {
        if !value.is_char_boundary(MAC_LEN) {
            return Err(Refused::BadSignature);
        }
        let (mac_text, token) = value.split_at(MAC_LEN);
        let given = STANDARD.decode(mac_text).map_err(|_| Refused::BadSignature)?;
        let mut mac = crate::keyed_mac(&self.key);
        mac.update(token.as_bytes());
        mac.verify_slice(&given).map_err(|_| Refused::BadSignature)?;
        token.parse::<Id>().map_err(|_| Refused::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_signed_value_verifies_to_its_token() {
        let signer = CookieSigner::new(SECRET);
        let id = Id::default();
        let value = signer.sign(id);
        assert_eq!(value.len(), MAC_LEN + 22);
        assert_eq!(signer.verify(&value), Ok(id));
    }

    #[test]
    fn a_tampered_unsigned_or_foreign_value_is_refused() {
        let signer = CookieSigner::new(SECRET);
        let id = Id::default();
        let value = signer.sign(id);
        let mut tampered = value.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(signer.verify(&tampered), Err(Refused::BadSignature));
        assert_eq!(signer.verify(&id.to_string()), Err(Refused::BadSignature), "a bare token is unsigned");
        assert_eq!(signer.verify(""), Err(Refused::BadSignature));
        let theirs = CookieSigner::new("another-secret-another-secret-000000").sign(id);
        assert_eq!(signer.verify(&theirs), Err(Refused::BadSignature));
    }

    #[test]
    fn a_signed_value_that_is_not_a_token_is_malformed() {
        let signer = CookieSigner::new(SECRET);
        let mut mac = crate::keyed_mac(&signer.key);
        mac.update(b"not-a-token");
        let value = format!("{}not-a-token", STANDARD.encode(mac.finalize().into_bytes()));
        assert_eq!(signer.verify(&value), Err(Refused::Malformed));
    }

    #[test]
    fn values_are_those_the_cookie_crate_signed_so_a_deploy_signs_no_one_out() {
        let signer = CookieSigner::new(SECRET);
        let id = Id::default();
        let mut jar = cookie::CookieJar::new();
        let key = cookie::Key::derive_from(SECRET.as_bytes());
        jar.signed_mut(&key).add(("c", id.to_string()));
        let theirs = jar.get("c").unwrap().value().to_owned();
        assert_eq!(signer.sign(id), theirs);
        assert_eq!(signer.verify(&theirs), Ok(id));
    }
}
