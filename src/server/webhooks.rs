//! `POST /install` and `POST /uninstall`: Commerce7's callbacks, authenticated with HTTP Basic
//! auth (`COMMERCE7_USER` / `COMMERCE7_PASSWORD`) compared in constant time. Both are
//! idempotent: Commerce7 does not document whether it retries.
//!
//! The install body, as Commerce7 sends it: `tenantId`, `user` `{id, email, firstName,
//! lastName}`, `organization-name`, `organization-address`, `organization-website` and
//! `organization-phone` (each may be missing), and the answers to the app's own client settings
//! at the top level under their codes. Libero declares no client settings today; every top-level
//! key but `tenantId` and `user` is kept in `clients.install_data`, where a future one is read
//! ([`read_install`]).

use axum::{
    Json,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::{
    clients::{self, Installation, Organization},
    commerce7::one_line,
    config::Config,
    http::authorization_credentials,
    metrics, ratelimit,
    sessions::{secrets_match, tab::is_tenant_slug},
    state::AppState,
};

/// Middleware for `/install` and `/uninstall`.
pub async fn limit_callbacks(
    State(state): State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let (Some(limiter), Some(ip)) =
        (&state.limits.callbacks, ratelimit::request_ip(&req, state.config.trusted_proxy_hops))
        && let Err(wait) = limiter.check(ip)
    {
        metrics::rate_limited("callbacks");
        tracing::warn!(%ip, "callback rate limit exceeded");
        let mut response = reply(StatusCode::TOO_MANY_REQUESTS, "too many requests");
        response.headers_mut().insert(header::RETRY_AFTER, ratelimit::retry_after(wait));
        return response;
    }
    next.run(req).await
}

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
    // Both compared, whichever fails: `&`, not `&&`.
    secrets_match(given_user, user.as_bytes()) & secrets_match(given_password, password.expose().as_bytes())
}

/// A callback body that passed validation.
struct Callback {
    tenant_id: String,
    body: Map<String, Value>,
}

/// The `which` (`install` or `uninstall`) callback, when its Basic credentials match and its body
/// is valid; else the answer that refuses it.
fn accept(which: &str, config: &Config, headers: &HeaderMap, body: &Bytes) -> Result<Callback, Response> {
    if !basic_auth_matches(config, headers) {
        tracing::warn!("{which} callback with wrong or missing credentials");
        return Err(unauthorized());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|err| reply(StatusCode::BAD_REQUEST, &format!("malformed JSON: {err}")))?;
    let Value::Object(body) = value else {
        return Err(reply(StatusCode::BAD_REQUEST, "the body must be a JSON object"));
    };
    let tenant_id = match body.get("tenantId") {
        Some(Value::String(t)) if is_tenant_slug(t) => t.clone(),
        Some(Value::String(_)) => {
            return Err(reply(StatusCode::UNPROCESSABLE_ENTITY, "tenantId must be a Commerce7 tenant slug"));
        }
        _ => return Err(reply(StatusCode::UNPROCESSABLE_ENTITY, "tenantId is required")),
    };
    Ok(Callback { tenant_id, body })
}

/// The answer to a callback whose database work failed.
fn database_error(which: &str, err: &sqlx::Error) -> Response {
    tracing::error!(error = %err, "{which} callback: database error");
    reply(StatusCode::SERVICE_UNAVAILABLE, "database unavailable, try again")
}

/// Longest value kept of a text field of the install body, in characters (the columns' CHECKs
/// allow 500).
const MAX_FIELD_CHARS: usize = 500;

/// A string field of `map`, trimmed, its control characters (line breaks included) turned into
/// spaces, at most [`MAX_FIELD_CHARS`] characters; `None` when it is missing, not a string or
/// blank.
fn text(map: &Map<String, Value>, key: &str) -> Option<String> {
    capped(&one_line(map.get(key)?.as_str()?))
}

/// Like [`text`], but keeping line breaks (a postal address may come on several lines): each
/// line trimmed, blank lines dropped, `\r\n` and `\r` read as `\n`.
fn lines(map: &Map<String, Value>, key: &str) -> Option<String> {
    let value = map.get(key)?.as_str()?.replace("\r\n", "\n").replace('\r', "\n");
    let kept: Vec<String> = value.split('\n').map(one_line).filter(|line| !line.is_empty()).collect();
    capped(&kept.join("\n"))
}

/// `value` with each NUL in its strings and keys turned into a space: PostgreSQL's `jsonb` cannot
/// hold one (the install would fail there as "database unavailable" and succeed on SQLite).
fn without_nul(value: Value) -> Value {
    match value {
        Value::String(text) => Value::String(text.replace('\0', " ")),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nul).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k.replace('\0', " "), without_nul(v))).collect())
        }
        other => other,
    }
}

/// At most [`MAX_FIELD_CHARS`] characters of `value` (trimmed again after the cut); `None` when
/// nothing is left.
fn capped(value: &str) -> Option<String> {
    let cut: String = value.chars().take(MAX_FIELD_CHARS).collect();
    let cut = cut.trim_end();
    (!cut.is_empty()).then(|| cut.to_owned())
}

/// Reads an install body (without its `tenantId`, already checked): the install details and the
/// organisation details to record.
///
/// - The organisation name and the installer prefill the settings until the merchant's first
///   save: `organization-name` as the organisation, the installer's `firstName lastName` as the
///   contact and the installer's `email` as the contact email.
/// - `organization-address` (its line breaks kept), `organization-website` (as sent: it is shown
///   as a link only when it is an `http(s)` URL) and `organization-phone` are kept with the
///   client, read-only.
/// - Every key but `user` is kept in `install_data` (a NUL as a space): the organisation fields as sent, and the
///   answers to client settings under their codes. Libero declares none today; one declared later
///   is read from there (`install_data->>'<code>'` on PostgreSQL, `json_extract(install_data,
///   '$."<code>"')` on SQLite) or taken out here.
///
/// A field that is not a string (Commerce7 documents strings) is treated as missing and stays in
/// `install_data` as sent. `organization-contact`, which Commerce7 does not send, means nothing.
fn read_install(tenant_id: String, mut body: Map<String, Value>) -> (Installation, Organization) {
    body.remove("tenantId");
    let user = match body.remove("user") {
        Some(Value::Object(user)) => user,
        _ => Map::new(),
    };
    let installer_name =
        [text(&user, "firstName"), text(&user, "lastName")].into_iter().flatten().collect::<Vec<_>>().join(" ");
    let organization = Organization {
        address: lines(&body, "organization-address"),
        website: text(&body, "organization-website"),
        phone: text(&body, "organization-phone"),
    };
    let installation = Installation {
        org_name: text(&body, "organization-name"),
        org_contact: (!installer_name.is_empty()).then_some(installer_name),
        user_id: text(&user, "id"),
        user_email: text(&user, "email"),
        install_data: without_nul(Value::Object(body)),
        tenant_id,
    };
    (installation, organization)
}

/// `POST /install`: creates the client, or reactivates it on reinstall. 200 `{"ok":true}`.
pub async fn install(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Callback { tenant_id, body } = match accept("install", &state.config, &headers, &body) {
        Ok(callback) => callback,
        Err(refused) => return refused,
    };
    let (installation, organization) = read_install(tenant_id, body);
    match clients::install(&state.db, &installation, &organization).await {
        Ok(client) => {
            tracing::info!(tenant_id = %client.tenant_id, "install callback: client installed");
            Json(json!({ "ok": true })).into_response()
        }
        Err(err) => database_error("install", &err),
    }
}

/// `POST /uninstall`: marks the client uninstalled and deletes its sessions at once. Unknown
/// tenants are answered 200 (nothing to do).
pub async fn uninstall(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Callback { tenant_id, .. } = match accept("uninstall", &state.config, &headers, &body) {
        Ok(callback) => callback,
        Err(refused) => return refused,
    };
    match clients::uninstall(&state.db, &tenant_id).await {
        Ok(Some(sessions)) => {
            tracing::info!(%tenant_id, sessions, "uninstall callback: client deactivated, sessions deleted")
        }
        Ok(None) => tracing::info!(%tenant_id, "uninstall callback for an unknown tenant"),
        Err(err) => return database_error("uninstall", &err),
    }
    Json(json!({ "ok": true })).into_response()
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

    fn with_authorization(value: &str) -> HeaderMap {
        HeaderMap::from_iter([(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap())])
    }

    fn with_basic(user_pass: &str) -> HeaderMap {
        with_authorization(&format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass)))
    }

    #[test]
    fn the_configured_credentials_match() {
        assert!(basic_auth_matches(&config(), &with_basic("c7:pa:ss")));
    }

    #[test]
    fn the_basic_scheme_is_case_insensitive() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("c7:pa:ss");
        for scheme in ["basic", "BASIC", "bAsIc"] {
            assert!(basic_auth_matches(&config(), &with_authorization(&format!("{scheme} {encoded}"))), "{scheme}");
        }
    }

    #[test]
    fn wrong_user_password_or_scheme_do_not_match() {
        assert!(!basic_auth_matches(&config(), &with_basic("c7:wrong")));
        assert!(!basic_auth_matches(&config(), &with_basic("other:pa:ss")));
        assert!(!basic_auth_matches(&config(), &HeaderMap::new()));
        assert!(!basic_auth_matches(&config(), &with_authorization("Bearer c7:pa:ss")));
    }

    fn read(body: Value) -> (Installation, Organization) {
        let Value::Object(body) = body else { panic!("an object") };
        read_install("demo-winery".to_owned(), body)
    }

    /// An install body with every field Commerce7 sends, and one client-settings answer.
    fn full_body() -> Value {
        json!({
            "tenantId": "demo-winery",
            "user": { "id": "c7-user-dana", "email": "dana@demo-winery.example", "firstName": "Dana", "lastName": "Owner" },
            "organization-name": "Demo Winery",
            "organization-address": "1 Vineyard Lane\nNapa, CA 94558",
            "organization-website": "https://demo-winery.example",
            "organization-phone": "+1 707 555 0100",
            "futureSetting": "yes"
        })
    }

    #[test]
    fn the_real_install_body_is_read_field_by_field() {
        let (installation, organization) = read(full_body());
        assert_eq!(installation.tenant_id, "demo-winery");
        assert_eq!(installation.org_name.as_deref(), Some("Demo Winery"));
        assert_eq!(installation.org_contact.as_deref(), Some("Dana Owner"), "the installer is the contact");
        assert_eq!(installation.user_id.as_deref(), Some("c7-user-dana"));
        assert_eq!(installation.user_email.as_deref(), Some("dana@demo-winery.example"));
        assert_eq!(
            organization,
            Organization {
                address: Some("1 Vineyard Lane\nNapa, CA 94558".into()),
                website: Some("https://demo-winery.example".into()),
                phone: Some("+1 707 555 0100".into()),
            }
        );
        // Every top-level key but tenantId and user, as sent: the organisation fields and the
        // client-settings answers under their codes.
        let mut sent = full_body();
        sent.as_object_mut().unwrap().retain(|key, _| key != "tenantId" && key != "user");
        assert_eq!(installation.install_data, sent);
    }

    #[test]
    fn each_organisation_field_may_be_missing() {
        for missing in ["organization-name", "organization-address", "organization-website", "organization-phone"] {
            let mut body = full_body();
            body.as_object_mut().unwrap().remove(missing);
            let (installation, organization) = read(body);
            let got = match missing {
                "organization-name" => installation.org_name.clone(),
                "organization-address" => organization.address.clone(),
                "organization-website" => organization.website.clone(),
                _ => organization.phone.clone(),
            };
            assert_eq!(got, None, "{missing}");
            // The others are still read (control).
            let present = [installation.org_name, organization.address, organization.website, organization.phone];
            assert_eq!(present.iter().filter(|v| v.is_some()).count(), 3, "{missing}");
            assert_eq!(installation.org_contact.as_deref(), Some("Dana Owner"));
        }
        let (installation, organization) = read(json!({ "tenantId": "demo-winery" }));
        assert_eq!(organization, Organization::default());
        assert_eq!((installation.org_name, installation.org_contact, installation.user_email), (None, None, None));
        assert_eq!(installation.install_data, json!({}));
    }

    #[test]
    fn organization_contact_is_not_read_the_installer_is_the_contact() {
        let mut body = full_body();
        body["organization-contact"] = json!("Someone Else");
        let (installation, _) = read(body);
        assert_eq!(installation.org_contact.as_deref(), Some("Dana Owner"));
        // Without a name the installer has no contact to offer: nothing made up.
        let (installation, _) = read(json!({ "user": { "id": "u", "email": "a@b.example" } }));
        assert_eq!(installation.org_contact, None);
        let (installation, _) = read(json!({ "user": { "firstName": "  Dana ", "lastName": "" } }));
        assert_eq!(installation.org_contact.as_deref(), Some("Dana"));
    }

    #[test]
    fn values_are_trimmed_cleaned_and_capped() {
        let (installation, organization) = read(json!({
            "organization-name": "  Demo\tWinery \n",
            "organization-address": " \r\n 1 Vineyard Lane \r\n\r\n  Napa\u{7}, CA \r",
            "organization-website": "   ",
            "organization-phone": "x".repeat(600),
        }));
        assert_eq!(installation.org_name.as_deref(), Some("Demo Winery"));
        assert_eq!(organization.address.as_deref(), Some("1 Vineyard Lane\nNapa , CA"));
        assert_eq!(organization.website, None, "blank is missing");
        assert_eq!(organization.phone.map(|p| p.chars().count()), Some(MAX_FIELD_CHARS));
    }

    #[test]
    fn a_field_that_is_not_a_string_is_missing_but_kept_in_install_data() {
        let address = json!({ "street": "1 Vineyard Lane", "city": "Napa" });
        let (_, organization) = read(json!({
            "organization-address": address,
            "organization-phone": 7075550100_u64,
            "organization-website": null,
        }));
        assert_eq!(organization, Organization::default());
        let (installation, _) = read(json!({ "organization-address": address }));
        assert_eq!(installation.install_data, json!({ "organization-address": address }));
    }

    #[test]
    fn without_configured_credentials_nothing_matches() {
        let config =
            Config::from_lookup(|k| (k == "SESSION_SECRET").then(|| "0123456789abcdef0123456789abcdef".into()))
                .unwrap();
        assert!(!basic_auth_matches(&config, &with_basic(":")));
    }
}
