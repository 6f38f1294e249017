//! Operational endpoints and the layers every response goes through.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use pin_project_lite::pin_project;
use serde_json::json;
use tower::{Layer, Service};
use tower_http::{
    classify::{ServerErrorsAsFailures, SharedClassifier},
    request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer},
    trace::{OnResponse, TraceLayer},
};

use super::{AppState, config::Config};

/// How long `/readyz` waits for the database before answering 503.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// `/healthz` (the process is up) and `/readyz` (and can reach its database).
pub fn operational_routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

/// `{"status":"ok"}`: a constant body, as load balancers call this many times a second.
async fn healthz() -> impl IntoResponse {
    let json = (header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    ([json, (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], r#"{"status":"ok"}"#)
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

/// The headers every response gets unless it set its own: `Content-Security-Policy:
/// frame-ancestors 'self' …`, `Referrer-Policy: same-origin`, `X-Content-Type-Options: nosniff`
/// and `Cache-Control: no-cache` (revalidate; signed-in answers and static files set their own).
pub fn default_headers(config: &Config) -> DefaultHeadersLayer {
    DefaultHeadersLayer(Arc::new([
        (header::CONTENT_SECURITY_POLICY, frame_ancestors_policy(&config.frame_ancestors)),
        (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::CACHE_CONTROL, HeaderValue::from_static(super::delivery::REVALIDATE)),
    ]))
}

/// Sets a fixed list of response headers where the response has none of that name: one layer
/// (one future, no allocation) instead of one `SetResponseHeaderLayer` per header.
#[derive(Clone)]
pub struct DefaultHeadersLayer(Arc<[(HeaderName, HeaderValue)]>);

impl<S> Layer<S> for DefaultHeadersLayer {
    type Service = DefaultHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DefaultHeaders { inner, headers: self.0.clone() }
    }
}

/// The service of [`DefaultHeadersLayer`].
#[derive(Clone)]
pub struct DefaultHeaders<S> {
    inner: S,
    headers: Arc<[(HeaderName, HeaderValue)]>,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for DefaultHeaders<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = DefaultHeadersFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        DefaultHeadersFuture { inner: self.inner.call(req), headers: self.headers.clone() }
    }
}

pin_project! {
    /// The response future of [`DefaultHeaders`].
    pub struct DefaultHeadersFuture<F> {
        #[pin]
        inner: F,
        headers: Arc<[(HeaderName, HeaderValue)]>,
    }
}

impl<F, ResBody, E> Future for DefaultHeadersFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        let headers = response.headers_mut();
        for (name, value) in this.headers.iter() {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        Poll::Ready(Ok(response))
    }
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

/// The tracing layers, outermost first: [`request_id`], [`trace`], [`propagate_request_id`].
/// Together they give each request an `x-request-id` (kept when a proxy sent one), log one line
/// per request with it, and return it to the client. Only the path is logged: query strings
/// carry Commerce7 account tokens, and no header (cookies) is ever recorded.
pub fn request_id() -> SetRequestIdLayer<RandomRequestId> {
    SetRequestIdLayer::new(X_REQUEST_ID, RandomRequestId)
}

/// The request's span (with its id, method and path) and the `finished processing request` line.
/// Health and readiness probes get a debug-level span and no line of their own unless debug
/// logging is on: a load balancer calls them every few seconds, and a line each would bury the
/// merchants' requests (a failing probe still logs its warning, and a 5xx its error).
pub fn trace() -> RequestTrace {
    TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&Request<Body>) -> tracing::Span)
        .on_request(())
        .on_response(AccessLog)
}

/// The type of [`trace`].
pub type RequestTrace =
    TraceLayer<SharedClassifier<ServerErrorsAsFailures>, fn(&Request<Body>) -> tracing::Span, (), AccessLog>;

/// The `finished processing request` line (target `tower_http::trace::on_response`, as
/// tower-http's own), written only inside an enabled request span.
#[derive(Clone, Copy)]
pub struct AccessLog;

impl<B> OnResponse<B> for AccessLog {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &tracing::Span) {
        if span.is_disabled() {
            return;
        }
        tracing::info!(
            target: "tower_http::trace::on_response",
            latency = %format_args!("{} ms", latency.as_millis()),
            status = response.status().as_u16(),
            "finished processing request"
        );
    }
}

/// The paths of the health and readiness probes.
const PROBES: [&str; 2] = ["/healthz", "/readyz"];

/// Copies the request's `x-request-id` to the response.
pub fn propagate_request_id() -> PropagateRequestIdLayer {
    PropagateRequestIdLayer::new(X_REQUEST_ID)
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A random (version 4) UUID per request, from the thread's CSPRNG rather than a `getrandom`
/// system call each time.
#[derive(Clone, Copy)]
pub struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut text = [0_u8; uuid::fmt::Hyphenated::LENGTH];
        let value = HeaderValue::from_bytes(id.hyphenated().encode_lower(&mut text).as_bytes()).ok()?;
        Some(RequestId::new(value))
    }
}

fn request_span(request: &Request<Body>) -> tracing::Span {
    let request_id =
        request.extensions().get::<RequestId>().and_then(|id| id.header_value().to_str().ok()).unwrap_or("-");
    let (method, path) = (request.method(), request.uri().path());
    if PROBES.contains(&path) {
        tracing::debug_span!("request", request_id = %request_id, method = %method, path = %path)
    } else {
        tracing::info_span!("request", request_id = %request_id, method = %method, path = %path)
    }
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
