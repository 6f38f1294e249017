//! The one Commerce7 call Libero makes per sign-in: `GET {COMMERCE7_API_URL}/account/user`.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use reqwest::{StatusCode, header::HeaderValue};
use serde::Deserialize;

/// The admin user Commerce7 vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Commerce7User {
    /// Commerce7 user id.
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    /// e.g. "Admin Owner"; missing in older answers.
    pub role: Option<String>,
}

impl Commerce7User {
    /// "First Last", or whatever part exists; a control character (a NUL, a line break) is a space.
    pub fn display_name(&self) -> Option<String> {
        let parts = [self.first_name.as_deref(), self.last_name.as_deref()].into_iter().flatten().map(one_line);
        let name = parts.filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ");
        (!name.is_empty()).then_some(name)
    }
}

/// `value` on one line: each control character (a NUL, a line break) a space, then trimmed.
pub fn one_line(value: &str) -> String {
    value.replace(char::is_control, " ").trim().to_owned()
}

/// Why Commerce7 did not vouch for the user. Each kind is a different answer to the merchant
/// and a different `sign_in` outcome: only [`VerifyError::Unavailable`] is an outage.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Commerce7 refused the account token: 401/403, or 404/422 for the token (a stale or
    /// malformed link). `status` is `None` when the token could not even be sent (not a valid
    /// header value).
    #[error("Commerce7 refused the account token")]
    Refused {
        /// Commerce7's status.
        status: Option<u16>,
    },
    /// Commerce7 answered 429 (its limit of 100 requests per minute per tenant).
    #[error("Commerce7 is busy: retry after {retry_after} s")]
    Busy {
        /// Seconds to wait: Commerce7's `Retry-After` when sane, else [`DEFAULT_RETRY_AFTER`].
        retry_after: u32,
    },
    /// Commerce7 answered another 4xx: it did not accept the request as made from this link.
    #[error("Commerce7 did not accept the request (HTTP {status})")]
    Rejected {
        /// Commerce7's status.
        status: u16,
    },
    /// Timeout, refused connection, 5xx or an unreadable answer: fail safe.
    #[error("Commerce7 is unavailable: {0}")]
    Unavailable(String),
}

/// What an answer of `account/user` means for the sign-in, by status alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerClass {
    /// 200: the user, in the body.
    Ok,
    /// 401, 403, and 404/422 (Commerce7's `notFound`/`validationError` for the token): a refusal.
    Refused,
    /// 429: Commerce7's rate limit.
    Busy,
    /// Any other 4xx.
    Rejected,
    /// 5xx, and anything else Libero does not expect (1xx, 3xx, a 2xx other than 200).
    Unavailable,
}

impl AnswerClass {
    /// The class of `status`.
    pub fn of(status: StatusCode) -> Self {
        match status.as_u16() {
            200 => Self::Ok,
            401 | 403 | 404 | 422 => Self::Refused,
            429 => Self::Busy,
            400..=499 => Self::Rejected,
            _ => Self::Unavailable,
        }
    }

    /// The `outcome` label of `libero_commerce7_request_duration_seconds` for an HTTP answer of
    /// this class (`timeout` and `error` also cover the calls that got no answer).
    pub fn metric_outcome(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Refused => "refused",
            Self::Busy => "busy",
            Self::Rejected => "rejected",
            Self::Unavailable => "error",
        }
    }
}

/// Seconds to wait after Commerce7's 429 when it gives no usable `Retry-After`.
pub const DEFAULT_RETRY_AFTER: u32 = 60;
/// The longest `Retry-After` Libero passes on; beyond it the value is not believed (Commerce7's
/// limit is per minute) and [`DEFAULT_RETRY_AFTER`] is used.
pub const MAX_RETRY_AFTER: u32 = 600;

/// The seconds to wait after a 429, from Commerce7's `Retry-After`: a whole number of seconds
/// from 0 to [`MAX_RETRY_AFTER`] (0 is read as 1, so the page never says "0 seconds");
/// anything else — missing, an HTTP date, negative, fractional, huge, junk — gives
/// [`DEFAULT_RETRY_AFTER`].
pub fn retry_after_seconds(value: Option<&HeaderValue>) -> u32 {
    value
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 6 && v.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|seconds| *seconds <= MAX_RETRY_AFTER)
        .map_or(DEFAULT_RETRY_AFTER, |seconds| seconds.max(1))
}

/// A Commerce7 API client with a bounded timeout.
#[derive(Debug, Clone)]
pub struct Commerce7 {
    http: reqwest::Client,
    api_url: String,
    /// The tenants Commerce7 answered 429 for, until the end of its `Retry-After`: it is not asked
    /// for them again before then (its limit is per tenant, and every call counts against it).
    /// One entry per throttled tenant, and only installed tenants are asked: bounded.
    busy_until: Arc<Mutex<HashMap<String, Instant>>>,
}

impl Commerce7 {
    /// A client for `api_url` (no trailing slash) where every call gives up after `timeout`.
    pub fn new(api_url: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A 3xx is an answer Libero does not expect (unavailable), never followed without the token.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("libero/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, api_url: api_url.trim_end_matches('/').to_owned(), busy_until: Arc::default() })
    }

    /// Asks Commerce7 who holds `account` for `tenant_id` — unless it asked to wait for that tenant
    /// (a 429) and the wait is not over: then the answer is still [`VerifyError::Busy`], with the
    /// seconds left, and Commerce7 is not called.
    pub async fn verify_user(&self, tenant_id: &str, account: &str) -> Result<Commerce7User, VerifyError> {
        if let Some(retry_after) = self.still_busy(tenant_id) {
            tracing::info!(tenant_id, retry_after, "Commerce7 asked to wait (429): not asked again yet");
            return Err(VerifyError::Busy { retry_after });
        }
        let mut authorization = HeaderValue::from_str(account).map_err(|_| VerifyError::Refused { status: None })?;
        authorization.set_sensitive(true);
        let started = Instant::now();
        let response = self
            .http
            .get(format!("{}/account/user", self.api_url))
            .header(reqwest::header::AUTHORIZATION, authorization)
            .header("tenant", tenant_id)
            .send()
            .await;
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_millis() as u64;
        let response = match response {
            Ok(response) => response,
            Err(err) => {
                let (what, outcome) = if err.is_timeout() {
                    ("timed out", "timeout")
                } else if err.is_connect() {
                    ("connection failed", "error")
                } else {
                    ("request failed", "error")
                };
                crate::server::metrics::commerce7_call(elapsed.as_secs_f64(), outcome);
                tracing::warn!(elapsed_ms, tenant_id, "Commerce7 {what}: {}", err.without_url());
                return Err(VerifyError::Unavailable(what.to_owned()));
            }
        };
        let status = response.status();
        let class = AnswerClass::of(status);
        tracing::info!(elapsed_ms, tenant_id, status = status.as_u16(), "Commerce7 account/user answered");
        let mut outcome = class.metric_outcome();
        let answer = match class {
            // A user with no id, or one with a control character (no row could hold a NUL), is
            // no answer to sign in with: the error it is, not `ok`.
            AnswerClass::Ok => match response.json::<Commerce7User>().await {
                Ok(user) if !user.id.is_empty() && !user.id.contains(char::is_control) => Ok(user),
                // Its head came in time, its body did not.
                Err(err) if err.is_timeout() => {
                    outcome = "timeout";
                    let elapsed_ms = started.elapsed().as_millis() as u64;
                    tracing::warn!(elapsed_ms, tenant_id, "Commerce7 timed out: {}", err.without_url());
                    Err(VerifyError::Unavailable("timed out".to_owned()))
                }
                answer => {
                    outcome = "error";
                    let why = answer.map_or_else(|err| err.without_url().to_string(), |_| "its user id".to_owned());
                    tracing::warn!(tenant_id, "Commerce7 answered 200 with an unexpected body: {why}");
                    Err(VerifyError::Unavailable("unexpected answer".to_owned()))
                }
            },
            AnswerClass::Refused => Err(VerifyError::Refused { status: Some(status.as_u16()) }),
            AnswerClass::Busy => {
                let retry_after = retry_after_seconds(response.headers().get(reqwest::header::RETRY_AFTER));
                tracing::warn!(tenant_id, retry_after, "Commerce7 answered 429 (its rate limit): busy");
                let mut busy = self.busy_until.lock().unwrap_or_else(PoisonError::into_inner);
                busy.retain(|_, until| *until > Instant::now());
                busy.insert(tenant_id.to_owned(), Instant::now() + Duration::from_secs(retry_after.into()));
                Err(VerifyError::Busy { retry_after })
            }
            AnswerClass::Rejected => {
                let c7_type = error_type(response).await;
                tracing::warn!(
                    tenant_id,
                    status = status.as_u16(),
                    c7_type = c7_type.as_deref().unwrap_or("-"),
                    "Commerce7 did not accept the sign-in request"
                );
                Err(VerifyError::Rejected { status: status.as_u16() })
            }
            AnswerClass::Unavailable => Err(VerifyError::Unavailable(format!("HTTP {}", status.as_u16()))),
        };
        crate::server::metrics::commerce7_call(elapsed.as_secs_f64(), outcome);
        answer
    }

    /// The whole seconds left of Commerce7's last `Retry-After` for `tenant_id`, if any.
    fn still_busy(&self, tenant_id: &str) -> Option<u32> {
        let busy = self.busy_until.lock().unwrap_or_else(PoisonError::into_inner);
        let left = busy.get(tenant_id)?.checked_duration_since(Instant::now()).filter(|left| !left.is_zero())?;
        Some(u32::try_from(super::ratelimit::whole_seconds(left)).unwrap_or(u32::MAX))
    }
}

/// The `type` of Commerce7's error body (`{statusCode, type, message, errors}`), for the log:
/// read from at most 4 KiB of the body, and only when it is a short word (never the message,
/// which is free text).
async fn error_type(mut response: reqwest::Response) -> Option<String> {
    const LIMIT: usize = 4096;
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > LIMIT {
            return None;
        }
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        #[serde(rename = "type")]
        kind: String,
    }
    let kind = serde_json::from_slice::<ErrorBody>(&body).ok()?.kind;
    (!kind.is_empty() && kind.len() <= 40 && kind.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
        .then_some(kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_name_joins_the_parts_that_exist() {
        let mut user = Commerce7User {
            id: "u".into(),
            first_name: Some("Dana".into()),
            last_name: Some("Owner".into()),
            email: None,
            role: None,
        };
        assert_eq!(user.display_name().as_deref(), Some("Dana Owner"));
        user.last_name = None;
        assert_eq!(user.display_name().as_deref(), Some("Dana"));
        user.first_name = Some("  ".into());
        assert_eq!(user.display_name(), None);
    }

    #[test]
    fn every_status_has_its_class_and_metric_outcome() {
        let class = |code: u16| AnswerClass::of(StatusCode::from_u16(code).unwrap());
        assert_eq!(class(200), AnswerClass::Ok);
        for code in [401, 403, 404, 422] {
            assert_eq!(class(code), AnswerClass::Refused, "{code}: a refusal of the token");
        }
        assert_eq!(class(429), AnswerClass::Busy);
        for code in [400, 402, 405, 406, 408, 409, 410, 411, 413, 415, 418, 421, 423, 428, 431, 451, 499] {
            assert_eq!(class(code), AnswerClass::Rejected, "{code}: another 4xx");
        }
        for code in [500, 501, 502, 503, 504, 599, 100, 201, 204, 301, 302, 304, 399, 600, 999] {
            assert_eq!(class(code), AnswerClass::Unavailable, "{code}: an outage or an answer Libero cannot use");
        }
        let outcomes = [200, 401, 429, 400, 503].map(|code| class(code).metric_outcome());
        assert_eq!(outcomes, ["ok", "refused", "busy", "rejected", "error"]);
    }

    #[test]
    fn retry_after_is_honoured_when_it_is_sane_seconds() {
        let parse = |value: &str| retry_after_seconds(Some(&HeaderValue::from_str(value).unwrap()));
        assert_eq!(retry_after_seconds(None), DEFAULT_RETRY_AFTER, "absent");
        assert_eq!(DEFAULT_RETRY_AFTER, 60);
        assert_eq!(parse("17"), 17);
        assert_eq!(parse(" 30 "), 30, "surrounding spaces");
        assert_eq!(parse("1"), 1);
        assert_eq!(parse("0"), 1, "never 'try again in 0 seconds'");
        assert_eq!(parse("600"), 600, "the longest believed");
        assert_eq!(parse("007"), 7);
        for junk in [
            "601",
            "86400",
            "4294967296",
            "99999999999999999999",
            "-5",
            "+5",
            "1.5",
            "5s",
            "",
            "soon",
            "Wed, 21 Oct 2015 07:28:00 GMT",
        ] {
            assert_eq!(parse(junk), DEFAULT_RETRY_AFTER, "{junk:?}");
        }
        let opaque = HeaderValue::from_bytes(b"\xff\xfe").unwrap();
        assert_eq!(retry_after_seconds(Some(&opaque)), DEFAULT_RETRY_AFTER, "not visible ASCII");
    }

    /// The answers of a fake Commerce7 over real HTTP, as `verify_user` reads them.
    #[tokio::test]
    async fn verify_user_tells_commerce7s_answers_apart() {
        let fake = fake_commerce7::FakeCommerce7::start(
            "127.0.0.1:0".parse().unwrap(),
            fake_commerce7::FakeConfig::demo("http://127.0.0.1:9", "u", "p"),
        )
        .await
        .unwrap();
        let c7 = Commerce7::new(&fake.api_url(), Duration::from_secs(5)).unwrap();
        let verify = || c7.verify_user("demo-winery", "demo-owner-token");
        assert_eq!(verify().await.unwrap().id, "c7-user-dana", "control: 200");
        let refused = c7.verify_user("demo-winery", "stale-token").await;
        assert!(matches!(refused, Err(VerifyError::Refused { status: Some(401) })), "{refused:?}");
        for code in [403, 404, 422] {
            fake.set_failure(Some(code));
            let answer = verify().await;
            assert!(matches!(answer, Err(VerifyError::Refused { status: Some(s) }) if s == code), "{code}: {answer:?}");
        }
        for code in [400, 409, 410] {
            fake.set_failure(Some(code));
            let answer = verify().await;
            assert!(matches!(answer, Err(VerifyError::Rejected { status: s }) if s == code), "{code}: {answer:?}");
        }
        for code in [500, 502, 503, 504] {
            fake.set_failure(Some(code));
            assert!(matches!(verify().await, Err(VerifyError::Unavailable(_))), "{code}");
        }
        let bad_header = c7.verify_user("demo-winery", "line\nbreak").await;
        assert!(matches!(bad_header, Err(VerifyError::Refused { status: None })), "{bad_header:?}");
        // A 429, each to a client not yet asked to wait (one that was answers busy itself).
        fake.set_failure(Some(429));
        for (given, expected) in [(None, 60), (Some("17"), 17), (Some("100000"), 60)] {
            fake.set_retry_after(given);
            let fresh = Commerce7::new(&fake.api_url(), Duration::from_secs(5)).unwrap();
            let answer = fresh.verify_user("demo-winery", "t").await;
            assert!(matches!(answer, Err(VerifyError::Busy { retry_after }) if retry_after == expected), "{given:?}");
        }
        fake.shutdown().await;
        let gone = Commerce7::new(&format!("http://{}/v1", fake_addr_closed().await), Duration::from_secs(2)).unwrap();
        assert!(matches!(gone.verify_user("demo-winery", "t").await, Err(VerifyError::Unavailable(_))));
    }

    /// An address nothing listens on any more.
    async fn fake_addr_closed() -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    #[test]
    fn answers_without_role_are_accepted() {
        let user: Commerce7User =
            serde_json::from_str(r#"{"id":"1","firstName":"A","lastName":"B","email":"a@b.c"}"#).unwrap();
        assert_eq!(user.role, None);
    }
}
