//! Operational endpoints and the layers every response goes through.

use std::time::Duration;

use axum::{
    Json, Router,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use serde_json::json;
use tower::ServiceBuilder;
use tower_http::{
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::Level;

use super::{AppState, config::Config};

/// How long `/readyz` waits for the database before answering 503.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// `/healthz` (the process is up) and `/readyz` (and can reach its database).
pub fn operational_routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

async fn healthz() -> impl IntoResponse {
    (no_store(), Json(json!({ "status": "ok" })))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match tokio::time::timeout(READINESS_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, no_store(), Json(json!({ "status": "ready", "database": "ok" }))),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness check: database unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                no_store(),
                Json(json!({ "status": "unavailable", "database": "unreachable" })),
            )
        }
        Err(_) => {
            tracing::warn!("readiness check: database did not answer in time");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                no_store(),
                Json(json!({ "status": "unavailable", "database": "timeout" })),
            )
        }
    }
}

/// The credentials of `Authorization: <scheme> <credentials>` when the scheme is `scheme`.
/// Schemes are case-insensitive (RFC 9110 §11.1: `basic`, `BASIC` and `Basic` are one scheme);
/// the credentials are returned as sent, without surrounding spaces.
pub fn authorization_credentials<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (given, credentials) = value.trim_start().split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| credentials.trim())
}

fn no_store() -> [(HeaderName, HeaderValue); 1] {
    [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))]
}

/// `Content-Security-Policy: frame-ancestors 'self' …`, `Referrer-Policy: same-origin` and
/// `X-Content-Type-Options: nosniff` on every response.
pub fn with_security_headers(router: Router, config: &Config) -> Router {
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            frame_ancestors_policy(&config.frame_ancestors),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(header::REFERRER_POLICY, HeaderValue::from_static("same-origin")))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// The CSP value that lets Commerce7's admin (and the app itself) frame the app, nobody else.
pub fn frame_ancestors_policy(ancestors: &[String]) -> HeaderValue {
    let mut policy = String::from("frame-ancestors 'self'");
    for origin in ancestors {
        // Header values cannot carry control characters; settings with them are skipped.
        if origin.chars().all(|c| c.is_ascii_graphic()) && !origin.contains(';') {
            policy.push(' ');
            policy.push_str(origin);
        }
    }
    HeaderValue::from_str(&policy).expect("only visible ASCII was added")
}

/// Gives each request an `x-request-id` (kept when a proxy sent one), logs one line per request
/// with it, and returns it to the client. Only the path is logged: query strings carry
/// Commerce7 account tokens, and no header (cookies) is ever recorded.
pub fn with_request_tracing(router: Router) -> Router {
    let x_request_id = HeaderName::from_static("x-request-id");
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::new(x_request_id.clone(), MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(request_span)
                    .on_request(())
                    .on_response(DefaultOnResponse::new().level(Level::INFO)),
            )
            .layer(PropagateRequestIdLayer::new(x_request_id)),
    )
}

fn request_span(request: &Request<axum::body::Body>) -> tracing::Span {
    let request_id =
        request.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok()).unwrap_or("-");
    tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %request.method(),
        path = %request.uri().path(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorization(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn authorization_schemes_match_whatever_their_case() {
        for value in ["Basic abc=", "basic abc=", "BASIC abc=", "bAsIc   abc= "] {
            assert_eq!(authorization_credentials(&authorization(value), "Basic"), Some("abc="), "{value}");
        }
        assert_eq!(authorization_credentials(&authorization("bearer t0ken"), "Bearer"), Some("t0ken"));
    }

    #[test]
    fn another_scheme_or_no_header_gives_no_credentials() {
        assert_eq!(authorization_credentials(&authorization("Bearer abc="), "Basic"), None);
        assert_eq!(authorization_credentials(&authorization("Basicabc="), "Basic"), None, "no space: not the scheme");
        assert_eq!(authorization_credentials(&authorization("Basic"), "Basic"), None);
        assert_eq!(authorization_credentials(&HeaderMap::new(), "Basic"), None);
    }

    #[test]
    fn frame_ancestors_lists_self_then_the_configured_origins() {
        let value = frame_ancestors_policy(&["https://*.commerce7.com".into(), "http://localhost:4000".into()]);
        assert_eq!(value, "frame-ancestors 'self' https://*.commerce7.com http://localhost:4000");
    }

    #[test]
    fn frame_ancestors_skips_values_that_could_inject_directives() {
        let value = frame_ancestors_policy(&["https://ok.example".into(), "x; script-src *".into()]);
        assert_eq!(value, "frame-ancestors 'self' https://ok.example");
    }
}
