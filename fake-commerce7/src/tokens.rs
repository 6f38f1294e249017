//! Account tokens as Commerce7 issues them: a JWT minted each time the admin renders the app's
//! frame, `base64url(header).base64url(payload).base64url(signature)` with header
//! `{"alg":"HS256","typ":"JWT"}`, payload `{sub, firstName, lastName, email, iat}` (`iat` in
//! milliseconds) and an HMAC-SHA256 signature under a key only the fake knows — drawn at random
//! when it starts, never written anywhere. The app cannot check such a token itself; it asks
//! `GET /v1/account/user`, which verifies the signature here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The header of every minted token, as its base64url encodes it.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// How the admin simulator hands out account tokens when it opens the app.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenMode {
    /// A new signed JWT on every open, as Commerce7 does (the default).
    #[default]
    Fresh,
    /// Each user's fixed `token` on every open (for tests and benchmarks that need a known token).
    Fixed,
}

impl TokenMode {
    /// `fresh` or `fixed`, as `FAKE_C7_TOKENS` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fresh => "fresh",
            Self::Fixed => "fixed",
        }
    }
}

impl std::str::FromStr for TokenMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "fresh" => Ok(Self::Fresh),
            "fixed" => Ok(Self::Fixed),
            _ => Err(format!("the token mode is fresh or fixed, got {text:?}")),
        }
    }
}

/// The payload of a minted token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claims {
    /// The Commerce7 user id.
    pub sub: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email address.
    pub email: String,
    /// When the token was minted, in milliseconds since the Unix epoch.
    pub iat: u64,
}

/// Mints and verifies tokens under one secret key.
pub(crate) struct Minter {
    key: [u8; 32],
    /// The latest `iat` handed out: each token gets a later one, so that two opens within the
    /// same millisecond still get two different tokens.
    last_iat: AtomicU64,
}

impl Minter {
    /// A minter with a fresh random key.
    pub(crate) fn new() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self { key, last_iat: AtomicU64::new(0) }
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length")
    }

    /// A new token for the user: `iat` is now in milliseconds, or one more than the last token's.
    pub(crate) fn mint(&self, sub: &str, first_name: &str, last_name: &str, email: &str) -> String {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default();
        let previous = self.last_iat.fetch_max(now, Ordering::SeqCst);
        let iat = if now > previous {
            now
        } else {
            // Same millisecond (or a clock step back): one past the latest handed out.
            self.last_iat.fetch_add(1, Ordering::SeqCst) + 1
        };
        let claims = Claims {
            sub: sub.to_owned(),
            first_name: first_name.to_owned(),
            last_name: last_name.to_owned(),
            email: email.to_owned(),
            iat,
        };
        let payload = serde_json::to_vec(&claims).expect("claims serialize");
        let signed = format!("{}.{}", URL_SAFE_NO_PAD.encode(HEADER), URL_SAFE_NO_PAD.encode(payload));
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{signed}.{signature}")
    }

    /// The claims of a token this minter signed, or `None` for anything else: not three parts,
    /// bad base64url, a signature that does not match (compared in constant time), another
    /// header, or a payload that is not the claims.
    pub(crate) fn verify(&self, token: &str) -> Option<Claims> {
        let (signed, signature) = token.rsplit_once('.')?;
        let (header, payload) = signed.split_once('.')?;
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let mut mac = self.mac();
        mac.update(signed.as_bytes());
        mac.verify_slice(&signature).ok()?;
        // Signed by this key, so minted here: the header and payload are ours, checked anyway.
        (URL_SAFE_NO_PAD.decode(header).ok()? == HEADER.as_bytes()).then_some(())?;
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(token: &str, index: usize) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(token.split('.').nth(index).expect("a part")).expect("base64url")
    }

    #[test]
    fn a_token_is_a_jwt_with_the_documented_header_and_payload() {
        let minter = Minter::new();
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
        let token = minter.mint("c7-user-dana", "Dana", "Owner", "dana@demo-winery.example");
        assert_eq!(token.split('.').count(), 3);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "base64url: {token}");
        let header: serde_json::Value = serde_json::from_slice(&part(&token, 0)).unwrap();
        assert_eq!(header, serde_json::json!({"alg": "HS256", "typ": "JWT"}));
        let payload: serde_json::Value = serde_json::from_slice(&part(&token, 1)).unwrap();
        let keys: Vec<&str> = payload.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys.len(), 5);
        for key in ["sub", "firstName", "lastName", "email", "iat"] {
            assert!(keys.contains(&key), "{key} in {payload}");
        }
        assert_eq!(payload["sub"], "c7-user-dana");
        let iat = payload["iat"].as_u64().expect("iat is a number");
        assert!(iat >= before && iat < before + 60_000, "iat in milliseconds: {iat}");
        assert_eq!(part(&token, 2).len(), 32, "an HMAC-SHA256");
    }

    #[test]
    fn each_mint_is_a_new_token_that_verifies() {
        let minter = Minter::new();
        let tokens: Vec<String> = (0..50).map(|_| minter.mint("u", "F", "L", "e@x.example")).collect();
        let mut unique = tokens.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), tokens.len(), "no two alike, even within one millisecond");
        for token in &tokens {
            assert_eq!(minter.verify(token).expect("verifies").sub, "u");
        }
    }

    #[test]
    fn tampered_or_foreign_tokens_do_not_verify() {
        let minter = Minter::new();
        let token = minter.mint("c7-user-sam", "Sam", "Staff", "sam@demo-winery.example");
        // Control.
        assert!(minter.verify(&token).is_some());
        // Another user in the payload, the signature kept.
        let parts: Vec<&str> = token.split('.').collect();
        let forged_payload = String::from_utf8(part(&token, 1)).unwrap().replace("c7-user-sam", "c7-user-dana");
        let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(forged_payload), parts[2]);
        assert_eq!(minter.verify(&forged), None);
        // A flipped signature character; no signature; the alg swapped for "none".
        let mut flipped = token.clone().into_bytes();
        let last = flipped.len() - 2;
        flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(minter.verify(&String::from_utf8(flipped).unwrap()), None);
        assert_eq!(minter.verify(&format!("{}.{}.", parts[0], parts[1])), None);
        let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#), parts[1]);
        assert_eq!(minter.verify(&none), None);
        // Another fake's key.
        assert_eq!(Minter::new().verify(&token), None);
        for junk in ["", ".", "..", "a.b.c", "demo-owner-token", "not-a-token"] {
            assert_eq!(minter.verify(junk), None, "{junk}");
        }
    }

    #[test]
    fn modes_parse() {
        assert_eq!("fresh".parse(), Ok(TokenMode::Fresh));
        assert_eq!(" FIXED ".parse(), Ok(TokenMode::Fixed));
        assert!("sometimes".parse::<TokenMode>().is_err());
        assert_eq!(TokenMode::default(), TokenMode::Fresh);
        assert_eq!(TokenMode::Fixed.as_str(), "fixed");
    }
}
