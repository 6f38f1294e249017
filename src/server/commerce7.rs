//! The one Commerce7 call Libero makes per sign-in: `GET {COMMERCE7_API_URL}/account/user`.

use std::time::{Duration, Instant};

use reqwest::{StatusCode, header::HeaderValue};
use serde::Deserialize;

/// The admin user Commerce7 vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Commerce7User {
    /// Commerce7 user id.
    pub id: String,
    /// First name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Email.
    #[serde(default)]
    pub email: Option<String>,
    /// e.g. "Admin Owner"; missing in older answers.
    #[serde(default)]
    pub role: Option<String>,
}

impl Commerce7User {
    /// "First Last", or whatever part exists.
    pub fn display_name(&self) -> Option<String> {
        let name = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        (!name.is_empty()).then_some(name)
    }
}

/// Why Commerce7 did not vouch for the user.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Commerce7 answered 401/403: the token is not valid for this tenant.
    #[error("Commerce7 refused the account token")]
    Unauthorized,
    /// Timeout, refused connection, 5xx or an unreadable answer: fail safe.
    #[error("Commerce7 is unavailable: {0}")]
    Unavailable(String),
}

/// A Commerce7 API client with a bounded timeout.
#[derive(Debug, Clone)]
pub struct Commerce7 {
    http: reqwest::Client,
    api_url: String,
}

impl Commerce7 {
    /// A client for `api_url` (no trailing slash) where every call gives up after `timeout`.
    pub fn new(api_url: &str, timeout: Duration) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("libero/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, api_url: api_url.trim_end_matches('/').to_owned() })
    }

    /// Asks Commerce7 who holds `account` for `tenant_id`.
    pub async fn verify_user(&self, tenant_id: &str, account: &str) -> Result<Commerce7User, VerifyError> {
        let mut authorization = HeaderValue::from_str(account).map_err(|_| VerifyError::Unauthorized)?;
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
                let what = if err.is_timeout() {
                    "timed out"
                } else if err.is_connect() {
                    "connection failed"
                } else {
                    "request failed"
                };
                let outcome = if err.is_timeout() { "timeout" } else { "error" };
                crate::server::metrics::commerce7_call(elapsed.as_secs_f64(), outcome);
                tracing::warn!(elapsed_ms, tenant_id, "Commerce7 {what}: {}", err.without_url());
                return Err(VerifyError::Unavailable(what.to_owned()));
            }
        };
        let status = response.status();
        let outcome = match status.as_u16() {
            200 => "ok",
            401 | 403 => "unauthorized",
            _ => "error",
        };
        crate::server::metrics::commerce7_call(elapsed.as_secs_f64(), outcome);
        tracing::info!(elapsed_ms, tenant_id, status = status.as_u16(), "Commerce7 account/user answered");
        match status {
            StatusCode::OK => response.json::<Commerce7User>().await.map_err(|err| {
                tracing::warn!(tenant_id, "Commerce7 answered 200 with an unexpected body: {}", err.without_url());
                VerifyError::Unavailable("unexpected answer".to_owned())
            }),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(VerifyError::Unauthorized),
            other => Err(VerifyError::Unavailable(format!("HTTP {}", other.as_u16()))),
        }
    }
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
    fn answers_without_role_are_accepted() {
        let user: Commerce7User =
            serde_json::from_str(r#"{"id":"1","firstName":"A","lastName":"B","email":"a@b.c"}"#).unwrap();
        assert_eq!(user.role, None);
    }
}
