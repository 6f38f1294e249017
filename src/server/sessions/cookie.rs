//! The signed `__libero_session` cookie around a tower-sessions [`Session`].
//!
//! tower-sessions' own `SessionManagerLayer` cannot mark its cookie `Partitioned`, and clears
//! cookies without their original attributes (a partitioned cookie is then not removed). This
//! layer does the same job with the `cookie` crate's parsing and attributes: it verifies the
//! incoming cookie's value ([`CookieSigner`], the session core's HMAC), hands a lazily loaded
//! [`Session`] to the handlers, and after the response saves a modified session and sets — or
//! clears, with the same attributes — the cookie.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use cookie::{Cookie, SameSite};
use libero_sessions::cookie::CookieSigner;
use tower_sessions::{
    Session,
    session::{Expiry, Id},
};

use super::{COOKIE_NAME, store::AppSessionStore};
use crate::server::error_page::{ErrorKind, error_page};

/// A signed cookie value is the 44-character HMAC plus the 22-character token; anything much
/// longer is not ours and is refused before any work is done on it.
const MAX_COOKIE_VALUE_LEN: usize = 128;

/// What the request's cookie said, before any database lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieToken {
    /// No session cookie.
    Absent,
    /// A cookie that is not ours: bad signature, malformed or oversized.
    Rejected(&'static str),
    /// A correctly signed token.
    Signed(Id),
}

impl CookieToken {
    /// Whether the browser sent a session cookie at all (then a dead one should be cleared).
    pub fn was_sent(&self) -> bool {
        !matches!(self, Self::Absent)
    }
}

/// Signs, verifies and builds the session cookie.
#[derive(Clone)]
pub struct SessionCookies {
    signer: CookieSigner,
    secure: bool,
    store: Arc<AppSessionStore>,
}

impl std::fmt::Debug for SessionCookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCookies").field("secure", &self.secure).finish_non_exhaustive()
    }
}

impl SessionCookies {
    /// The signing key is drawn from `SESSION_SECRET`, which is at least 32 characters long.
    pub fn new(secret: &str, secure: bool, store: Arc<AppSessionStore>) -> Self {
        Self { signer: CookieSigner::new(secret), secure, store }
    }

    /// The store sessions are loaded from.
    pub fn store(&self) -> &Arc<AppSessionStore> {
        &self.store
    }

    /// Reads and verifies the session cookie of a request. When the browser sends it more than
    /// once, the last one that is not oversized is the one verified. Another cookie with bytes
    /// beyond ASCII in the same header (another app's on the same site) does not hide it.
    pub fn read(&self, headers: &HeaderMap) -> CookieToken {
        let mut seen = false;
        let mut candidate = None;
        for value in headers.get_all(header::COOKIE) {
            let value = String::from_utf8_lossy(value.as_bytes());
            for cookie in Cookie::split_parse_encoded(value.as_ref()).flatten() {
                if cookie.name() != COOKIE_NAME {
                    continue;
                }
                seen = true;
                if cookie.value().len() <= MAX_COOKIE_VALUE_LEN {
                    candidate = Some(cookie.value().to_owned());
                }
            }
        }
        match (seen, candidate) {
            (false, _) => CookieToken::Absent,
            (true, None) => CookieToken::Rejected("oversized"),
            (true, Some(value)) => match self.signer.verify(&value) {
                Ok(id) => CookieToken::Signed(id),
                Err(refused) => CookieToken::Rejected(refused.as_str()),
            },
        }
    }

    fn base(&self, value: String) -> Cookie<'static> {
        let mut cookie = Cookie::build((COOKIE_NAME, value))
            .http_only(true)
            .secure(self.secure)
            .path("/")
            // SameSite=None is what lets the cookie work inside the Commerce7 iframe; browsers only
            // accept it (and Partitioned) on Secure cookies, so plain-http set-ups get Lax.
            .same_site(if self.secure { SameSite::None } else { SameSite::Lax })
            .build();
        if self.secure {
            cookie.set_partitioned(true);
        }
        cookie
    }

    /// The signed `Set-Cookie` value for a session token, living `max_age`.
    pub fn issue(&self, id: Id, max_age: time::Duration) -> HeaderValue {
        let mut cookie = self.base(self.signer.sign(id));
        cookie.set_max_age(max_age.max(time::Duration::ZERO));
        HeaderValue::from_str(&cookie.encoded().to_string()).expect("cookie serialisation is a valid header")
    }

    /// The `Set-Cookie` value that removes the session cookie: same attributes, empty, expired.
    pub fn clear(&self) -> HeaderValue {
        let mut cookie = self.base(String::new());
        cookie.set_max_age(time::Duration::ZERO);
        cookie.set_expires(time::OffsetDateTime::UNIX_EPOCH);
        HeaderValue::from_str(&cookie.encoded().to_string()).expect("cookie serialisation is a valid header")
    }
}

/// Middleware: puts a [`Session`] (and the [`CookieToken`]) in the request extensions; after the
/// handler, saves a modified session and sets or clears the cookie.
pub async fn session_layer(State(cookies): State<SessionCookies>, mut req: Request, next: Next) -> Response {
    let token = cookies.read(req.headers());
    if let CookieToken::Rejected(reason) = token {
        tracing::warn!(reason, "session cookie rejected");
    }
    let id = if let CookieToken::Signed(id) = token { Some(id) } else { None };
    let session = Session::new(id, cookies.store.clone(), None);
    req.extensions_mut().insert(session.clone());
    req.extensions_mut().insert(token);

    let mut response = next.run(req).await;

    if !session.is_modified() {
        return response;
    }
    if session.is_empty().await {
        if token.was_sent() {
            response.headers_mut().append(header::SET_COOKIE, cookies.clear());
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        return response;
    }
    if response.status().is_server_error() {
        return response;
    }
    if let Err(err) = session.save().await {
        tracing::error!(error = %err, "could not save the session");
        return error_page(ErrorKind::DatabaseUnavailable).into_response();
    }
    if let Some(id) = session.id() {
        let max_age = match session.expiry() {
            Some(Expiry::AtDateTime(at)) => at - time::OffsetDateTime::now_utc(),
            _ => time::Duration::ZERO,
        };
        response.headers_mut().append(header::SET_COOKIE, cookies.issue(id, max_age));
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::db::Db;

    async fn cookies(secure: bool) -> SessionCookies {
        let db = Db::connect("sqlite::memory:").await.unwrap();
        SessionCookies::new("0123456789abcdef0123456789abcdef", secure, Arc::new(AppSessionStore::new(db, None)))
    }

    fn request_with(value: &str) -> HeaderMap {
        HeaderMap::from_iter([(header::COOKIE, HeaderValue::from_str(value).unwrap())])
    }

    fn cookie_pair(set_cookie: &HeaderValue) -> String {
        set_cookie.to_str().unwrap().split(';').next().unwrap().to_owned()
    }

    #[tokio::test]
    async fn an_issued_cookie_carries_every_required_attribute() {
        let c = cookies(true).await;
        let value = c.issue(Id::default(), time::Duration::hours(8));
        let text = value.to_str().unwrap();
        for attribute in ["HttpOnly", "Secure", "SameSite=None", "Partitioned", "Path=/", "Max-Age=28800"] {
            assert!(text.contains(attribute), "{attribute} missing from {text}");
        }
    }

    #[tokio::test]
    async fn the_clearing_cookie_keeps_the_attributes_so_the_partitioned_cookie_is_removed() {
        let c = cookies(true).await;
        let text = c.clear().to_str().unwrap().to_owned();
        for attribute in
            ["__libero_session=;", "HttpOnly", "Secure", "SameSite=None", "Partitioned", "Path=/", "Max-Age=0"]
        {
            assert!(text.contains(attribute), "{attribute} missing from {text}");
        }
    }

    #[tokio::test]
    async fn a_signed_cookie_round_trips_to_its_token() {
        let c = cookies(true).await;
        let id = Id::default();
        let pair = cookie_pair(&c.issue(id, time::Duration::hours(1)));
        assert_eq!(c.read(&request_with(&pair)), CookieToken::Signed(id));
    }

    #[tokio::test]
    async fn an_oversized_cookie_is_rejected_without_verification() {
        let c = cookies(true).await;
        let huge = format!("{COOKIE_NAME}={}", "A".repeat(5000));
        assert_eq!(c.read(&request_with(&huge)), CookieToken::Rejected("oversized"));
    }

    #[tokio::test]
    async fn another_cookie_with_bytes_beyond_ascii_does_not_hide_ours() {
        let c = cookies(true).await;
        let id = Id::default();
        let pair = cookie_pair(&c.issue(id, time::Duration::hours(1)));
        let mut headers = HeaderMap::new();
        let value = [b"theirs=caf\xc3\xa9; ".as_slice(), pair.as_bytes()].concat();
        headers.insert(header::COOKIE, HeaderValue::from_bytes(&value).unwrap());
        assert!(headers[header::COOKIE].to_str().is_err(), "the header is not visible ASCII");
        assert_eq!(c.read(&headers), CookieToken::Signed(id));
    }

    #[tokio::test]
    async fn no_cookie_is_absent() {
        let c = cookies(true).await;
        assert_eq!(c.read(&request_with("other=1")), CookieToken::Absent);
    }

    #[tokio::test]
    async fn plain_http_cookies_are_lax_and_not_partitioned() {
        let c = cookies(false).await;
        let text = c.issue(Id::default(), time::Duration::hours(1)).to_str().unwrap().to_owned();
        assert!(text.contains("SameSite=Lax"), "{text}");
        assert!(!text.contains("Partitioned") && !text.contains("Secure"), "{text}");
    }
}
