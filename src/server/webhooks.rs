//! `POST /install` and `POST /uninstall`: Commerce7's callbacks, authenticated with HTTP Basic
//! auth (`COMMERCE7_USER` / `COMMERCE7_PASSWORD`) compared in constant time. Both are
//! idempotent: Commerce7 does not document whether it retries.

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::Engine;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{
    AppState,
    clients::{self, Installation},
    config::Config,
    http::authorization_credentials,
    sessions::guard::is_tenant_slug,
};

fn reply(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "ok": false, "error": error }))).into_response()
}

fn unauthorized() -> Response {
    let mut response = reply(StatusCode::UNAUTHORIZED, "invalid or missing Basic credentials");
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static(r#"Basic realm="libero-callbacks""#));
    response
}

/// Compares the request's Basic credentials with the configured pair in constant time (the
/// values are hashed first so that their lengths leak nothing either). The scheme is
/// case-insensitive.
pub fn basic_auth_matches(config: &Config, headers: &HeaderMap) -> bool {
    let (Some(user), Some(password)) = (config.commerce7_user.as_deref(), config.commerce7_password.as_ref()) else {
        return false;
    };
    let Some(encoded) = authorization_credentials(headers, "Basic") else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) else {
        return false;
    };
    let Some(split) = decoded.iter().position(|b| *b == b':') else {
        return false;
    };
    let (given_user, given_password) = (&decoded[..split], &decoded[split + 1..]);
    let user_ok = Sha256::digest(given_user).ct_eq(&Sha256::digest(user.as_bytes()));
    let password_ok = Sha256::digest(given_password).ct_eq(&Sha256::digest(password.expose().as_bytes()));
    (user_ok & password_ok).into()
}

/// A callback body that passed validation.
struct Callback {
    tenant_id: String,
    body: Map<String, Value>,
}

/// Why a callback body was refused: the status and the message to answer with.
type Refusal = (StatusCode, String);

fn parse_callback(body: &Bytes) -> Result<Callback, Refusal> {
    let value: Value =
        serde_json::from_slice(body).map_err(|err| (StatusCode::BAD_REQUEST, format!("malformed JSON: {err}")))?;
    let Value::Object(body) = value else {
        return Err((StatusCode::BAD_REQUEST, "the body must be a JSON object".to_owned()));
    };
    let tenant_id = match body.get("tenantId") {
        Some(Value::String(t)) if is_tenant_slug(t) => t.clone(),
        Some(Value::String(_)) => {
            return Err((StatusCode::UNPROCESSABLE_ENTITY, "tenantId must be a Commerce7 tenant slug".to_owned()));
        }
        _ => {
            return Err((StatusCode::UNPROCESSABLE_ENTITY, "tenantId is required".to_owned()));
        }
    };
    Ok(Callback { tenant_id, body })
}

fn text(map: &Map<String, Value>, key: &str) -> Option<String> {
    map.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(|s| s.chars().take(500).collect())
}

/// `POST /install`: creates the client, or reactivates it on reinstall. 200 `{"ok":true}`.
pub async fn install(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if !basic_auth_matches(&state.config, &headers) {
        tracing::warn!("install callback with wrong or missing credentials");
        return unauthorized();
    }
    let Callback { tenant_id, mut body } = match parse_callback(&body) {
        Ok(callback) => callback,
        Err((status, message)) => return reply(status, &message),
    };
    body.remove("tenantId");
    let user = match body.remove("user") {
        Some(Value::Object(user)) => user,
        _ => Map::new(),
    };
    let installer_name =
        [text(&user, "firstName"), text(&user, "lastName")].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let installation = Installation {
        org_name: text(&body, "organization-name"),
        org_contact: text(&body, "organization-contact").or((!installer_name.is_empty()).then_some(installer_name)),
        user_id: text(&user, "id"),
        user_email: text(&user, "email"),
        install_data: Value::Object(body),
        tenant_id,
    };
    match clients::install(&state.db, &installation).await {
        Ok(client) => {
            tracing::info!(tenant_id = %client.tenant_id, "install callback: client installed");
            Json(json!({ "ok": true })).into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "install callback: database error");
            reply(StatusCode::SERVICE_UNAVAILABLE, "database unavailable, try again")
        }
    }
}

/// `POST /uninstall`: marks the client uninstalled and deletes its sessions at once. Unknown
/// tenants are answered 200 (nothing to do).
pub async fn uninstall(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if !basic_auth_matches(&state.config, &headers) {
        tracing::warn!("uninstall callback with wrong or missing credentials");
        return unauthorized();
    }
    let Callback { tenant_id, .. } = match parse_callback(&body) {
        Ok(callback) => callback,
        Err((status, message)) => return reply(status, &message),
    };
    match clients::uninstall(&state.db, &tenant_id).await {
        Ok(Some(sessions)) => {
            tracing::info!(%tenant_id, sessions, "uninstall callback: client deactivated, sessions deleted");
            Json(json!({ "ok": true })).into_response()
        }
        Ok(None) => {
            tracing::info!(%tenant_id, "uninstall callback for an unknown tenant");
            Json(json!({ "ok": true })).into_response()
        }
        Err(err) => {
            tracing::error!(error = %err, "uninstall callback: database error");
            reply(StatusCode::SERVICE_UNAVAILABLE, "database unavailable, try again")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn config() -> Config {
        Config::from_lookup(|k| match k {
            "SESSION_SECRET" => Some("0123456789abcdef0123456789abcdef".into()),
            "COMMERCE7_USER" => Some("c7".into()),
            "COMMERCE7_PASSWORD" => Some("pa:ss".into()),
            _ => None,
        })
        .unwrap()
    }

    fn with_basic(user_pass: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode(user_pass);
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Basic {encoded}")).unwrap());
        headers
    }

    #[test]
    fn the_configured_credentials_match() {
        assert!(basic_auth_matches(&config(), &with_basic("c7:pa:ss")));
    }

    #[test]
    fn the_basic_scheme_is_case_insensitive() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("c7:pa:ss");
        for scheme in ["basic", "BASIC", "bAsIc"] {
            let mut headers = HeaderMap::new();
            headers.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("{scheme} {encoded}")).unwrap());
            assert!(basic_auth_matches(&config(), &headers), "{scheme}");
        }
    }

    #[test]
    fn wrong_user_password_or_scheme_do_not_match() {
        assert!(!basic_auth_matches(&config(), &with_basic("c7:wrong")));
        assert!(!basic_auth_matches(&config(), &with_basic("other:pa:ss")));
        assert!(!basic_auth_matches(&config(), &HeaderMap::new()));
        let mut bearer = HeaderMap::new();
        bearer.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer c7:pa:ss"));
        assert!(!basic_auth_matches(&config(), &bearer));
    }

    #[test]
    fn without_configured_credentials_nothing_matches() {
        let config =
            Config::from_lookup(|k| (k == "SESSION_SECRET").then(|| "0123456789abcdef0123456789abcdef".into()))
                .unwrap();
        assert!(!basic_auth_matches(&config, &with_basic(":")));
    }
}
