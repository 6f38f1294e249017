//! Server-function errors in a page's URL, signed for the session they were produced for.
//!
//! A form the browser posts itself (before hydration) is answered with a redirect to its page;
//! an error travels in leptos's `__path`/`__err` query, which the page's `ServerAction` shows as
//! it would a fetched answer. A link can carry such a query too, so the server adds `__sig`:
//! HMAC-SHA256 of the session's row id, `__path` and `__err` under a key of its own (HKDF of
//! `SESSION_SECRET`). A page whose query holds an error without a valid signature for *its*
//! session is redirected to the same address without it, before anything renders.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::Mac;
use sha2::Sha256;

/// The HKDF info of the key, distinct from every other key drawn from the secret.
const KEY_INFO: &[u8] = b"libero/form-error/v1";

/// The query parameters leptos and this module use.
pub const PATH_PARAM: &str = "__path";
/// The encoded error.
pub const ERROR_PARAM: &str = "__err";
/// Its signature.
pub const SIGNATURE_PARAM: &str = "__sig";

/// Signs and checks the errors of a session.
pub struct FormErrors {
    key: [u8; 32],
}

impl FormErrors {
    /// Derives the key from `SESSION_SECRET`.
    pub fn new(secret: &str) -> Self {
        Self { key: crate::derive_key(secret, KEY_INFO) }
    }

    fn mac(&self, row_id: &str, path: &str, error: &str) -> hmac::Hmac<Sha256> {
        let mut mac = crate::keyed_mac(&self.key);
        // Length-prefixed, so that no two (path, error) pairs sign the same bytes.
        for part in [row_id, path, error] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }

    /// The `__sig` of `error` (as encoded in `__err`) from the server function at `path`, for the
    /// session `row_id`.
    pub fn sign(&self, row_id: &str, path: &str, error: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(row_id, path, error).finalize().into_bytes())
    }

    /// Whether `signature` is [`sign`](Self::sign)'s for these values (in constant time).
    pub fn verify(&self, row_id: &str, path: &str, error: &str, signature: &str) -> bool {
        URL_SAFE_NO_PAD.decode(signature).is_ok_and(|tag| self.mac(row_id, path, error).verify_slice(&tag).is_ok())
    }

    /// What to do with a page's query for the session `row_id`: `None` to render it as it is
    /// (no error in it, or one signed for this session); `Some(query)` to redirect to the same
    /// path with that query instead — every other parameter kept but a spent handoff code.
    pub fn unsigned_error_removed(&self, query: &str, row_id: &str) -> Option<String> {
        let (mut path, mut error, mut signature) = (None, None, None);
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            match &*name {
                PATH_PARAM => path = Some(value),
                ERROR_PARAM => error = Some(value),
                SIGNATURE_PARAM => signature = Some(value),
                _ => {}
            }
        }
        if path.is_none() && error.is_none() && signature.is_none() {
            return None;
        }
        if let (Some(path), Some(error), Some(signature)) = (&path, &error, &signature)
            && self.verify(row_id, path, error, signature)
        {
            return None;
        }
        let mut kept = form_urlencoded::Serializer::new(String::new());
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            if ![PATH_PARAM, ERROR_PARAM, SIGNATURE_PARAM, "handoff"].contains(&&*name) {
                kept.append_pair(&name, &value);
            }
        }
        Some(kept.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";
    const ROW: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const OTHER_ROW: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    fn query(path: &str, error: &str, signature: &str) -> String {
        form_urlencoded::Serializer::new(String::new())
            .append_pair("x", "1")
            .append_pair(PATH_PARAM, path)
            .append_pair(ERROR_PARAM, error)
            .append_pair(SIGNATURE_PARAM, signature)
            .finish()
    }

    #[test]
    fn an_error_signed_for_this_session_is_kept() {
        let errors = FormErrors::new(SECRET);
        let signature = errors.sign(ROW, "/api/save_settings", "eyJlcnJvciI6ImNvbmZsaWN0In0=");
        assert!(errors.verify(ROW, "/api/save_settings", "eyJlcnJvciI6ImNvbmZsaWN0In0=", &signature));
        let q = query("/api/save_settings", "eyJlcnJvciI6ImNvbmZsaWN0In0=", &signature);
        assert_eq!(errors.unsigned_error_removed(&q, ROW), None);
    }

    #[test]
    fn an_error_unsigned_forged_or_signed_for_another_session_is_removed() {
        let errors = FormErrors::new(SECRET);
        let signature = errors.sign(OTHER_ROW, "/api/save_settings", "e30=");
        let other_session = query("/api/save_settings", "e30=", &signature);
        assert_eq!(errors.unsigned_error_removed(&other_session, ROW).as_deref(), Some("x=1"));
        let unsigned = "x=1&__path=%2Fapi%2Flogout&__err=eyJlcnJvciI6InVuYXV0aG9yaXplZCJ9&handoff=abc";
        assert_eq!(errors.unsigned_error_removed(unsigned, ROW).as_deref(), Some("x=1"));
        let changed = query("/api/save_settings", "e30x", &errors.sign(ROW, "/api/save_settings", "e30="));
        assert_eq!(errors.unsigned_error_removed(&changed, ROW).as_deref(), Some("x=1"));
        let another_key = FormErrors::new("another-secret-another-secret-000000").sign(ROW, "/p", "e30=");
        assert!(!errors.verify(ROW, "/p", "e30=", &another_key));
    }

    #[test]
    fn a_query_without_an_error_is_left_alone() {
        let errors = FormErrors::new(SECRET);
        assert_eq!(errors.unsigned_error_removed("handoff=abc&orderId=7", ROW), None);
        assert_eq!(errors.unsigned_error_removed("", ROW), None);
    }
}
