//! Session information for the dashboard.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;

/// What the dashboard shows about the signed-in merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// Commerce7 tenant slug.
    pub tenant_id: String,
    /// Signed-in user's name.
    pub user_name: Option<String>,
    /// Signed-in user's email.
    pub user_email: Option<String>,
    /// `light` or `dark`.
    pub theme: String,
    /// Sign-in time, RFC 3339.
    pub signed_in_at: String,
    /// Absolute expiry, RFC 3339.
    pub expires_at: String,
    /// Whole minutes until the session expires.
    pub minutes_left: i64,
}

/// The signed-in merchant and their session.
#[server(prefix = "/api", endpoint = "session_info", output = crate::codec::Json, client = crate::tab::TabClient)]
pub async fn get_session_info() -> Result<SessionInfo, AppError> {
    let session = super::ssr::require_session()?.auth;
    let minutes_left = (session.expires_at - chrono::Utc::now()).num_minutes().max(0);
    Ok(SessionInfo {
        tenant_id: session.tenant_id.clone(),
        user_name: session.user_name.clone(),
        user_email: session.user_email.clone(),
        theme: session.theme.as_str().to_owned(),
        signed_in_at: super::ssr::rfc3339(session.created_at),
        expires_at: super::ssr::rfc3339(session.expires_at),
        minutes_left,
    })
}
