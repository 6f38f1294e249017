//! Operational endpoints and the layers every response goes through.

use std::time::Duration;

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use serde_json::json;
use tower_http::{
    LatencyUnit,
    classify::{ClassifiedResponse, ClassifyEos, ClassifyResponse, ServerErrorsFailureClass, SharedClassifier},
    trace::{DefaultOnBodyChunk, DefaultOnEos, DefaultOnFailure, TraceLayer},
};

use super::{
    delivery::no_store,
    metrics,
    sessions::{secrets_match, stats},
    state::AppState,
};

/// How long `/readyz` waits for the database before answering 503.
const READINESS_TIMEOUT: Duration = Duration::from_secs(2);

/// `/healthz` (the process is up) and `/readyz` (and can reach its database).
pub fn operational_routes() -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

/// `{"status":"ok"}`: a constant body, as load balancers call this many times a second.
async fn healthz() -> impl IntoResponse {
    (no_store(), [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], r#"{"status":"ok"}"#)
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = match tokio::time::timeout(READINESS_TIMEOUT, state.db.ping()).await {
        Ok(Ok(())) => return (StatusCode::OK, no_store(), Json(json!({ "status": "ready", "database": "ok" }))),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "readiness check: database unreachable");
            "unreachable"
        }
        Err(_) => {
            tracing::warn!("readiness check: database did not answer in time");
            "timeout"
        }
    };
    (StatusCode::SERVICE_UNAVAILABLE, no_store(), Json(json!({ "status": "unavailable", "database": database })))
}

/// The credentials of `Authorization: <scheme> <credentials>` when the scheme is `scheme`.
/// Schemes are case-insensitive (RFC 9110 §11.1: `basic`, `BASIC` and `Basic` are one scheme);
/// the credentials are returned as sent, without surrounding spaces — empty when the header names
/// the scheme with nothing after it (a credential that verifies nothing, not an absent header).
pub fn authorization_credentials<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (given, credentials) = value.split_once(' ').unwrap_or((value, ""));
    given.eq_ignore_ascii_case(scheme).then(|| credentials.trim())
}

/// `GET /metrics`: 404 unless `METRICS_TOKEN` is set; 401 without the right bearer token.
pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> axum::response::Response {
    let Some(token) = state.config.metrics_token.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let given = authorization_credentials(&headers, "Bearer");
    if !given.is_some_and(|given| secrets_match(given.as_bytes(), token.expose().as_bytes())) {
        return (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"))])
            .into_response();
    }
    match stats::counts_with_idle(&state.db, state.config.session_idle_timeout).await {
        Ok((rows, active)) => metrics::session_counts(rows, active),
        Err(err) => tracing::warn!(error = %err, "metrics: could not count sessions"),
    }
    state.metrics.run_upkeep();
    let text = [(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"))];
    (no_store(), text, state.metrics.render()).into_response()
}

/// tower-http's `TraceLayer` as every answer goes through it (`Router::layer`, on each route and
/// the fallback): the request's span (`request`, with its id — set by the request-id layers
/// outside, [`sanitize_request_id`] — method and path: only the path, as query strings carry
/// Commerce7 account tokens, and no header, cookies included, is ever recorded), entered while the
/// handler runs and while its body is sent; one `finished processing request` line per answer
/// ([`finished`]); a 5xx answer or a body that fails while it is sent is logged as `response
/// failed` (error, tower-http's `on_failure`). Health and readiness probes get a debug-level span
/// and no line of their own unless debug logging is on for this module: a load balancer calls
/// them every few seconds, and a line each would bury the merchants' requests (a failing probe
/// still logs its warning, and a 5xx its error).
pub fn trace() -> Trace {
    TraceLayer::new(SharedClassifier::new(ServerErrorsAndBrokenBodies))
        .make_span_with(request_span as fn(&Request<Body>) -> tracing::Span)
        .on_request(())
        .on_response(finished as fn(&Response<Body>, Duration, &tracing::Span))
        .on_failure(DefaultOnFailure::new().latency_unit(LatencyUnit::Millis))
}

/// The layer [`trace`] makes.
pub type Trace = TraceLayer<
    SharedClassifier<ServerErrorsAndBrokenBodies>,
    fn(&Request<Body>) -> tracing::Span,
    (),
    fn(&Response<Body>, Duration, &tracing::Span),
    DefaultOnBodyChunk,
    DefaultOnEos,
    DefaultOnFailure,
>;

/// tower-http's `ServerErrorsAsFailures`, and a body that fails while it is sent is a failure too
/// (tower-http's own classifier takes a 2xx as final once its head is out, so a render or a file
/// that breaks mid-body would go unlogged).
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerErrorsAndBrokenBodies;

impl ClassifyResponse for ServerErrorsAndBrokenBodies {
    type FailureClass = ServerErrorsFailureClass;
    type ClassifyEos = ServerErrorsAndBrokenBodies;

    fn classify_response<B>(self, res: &Response<B>) -> ClassifiedResponse<Self::FailureClass, Self> {
        if res.status().is_server_error() {
            ClassifiedResponse::Ready(Err(ServerErrorsFailureClass::StatusCode(res.status())))
        } else {
            ClassifiedResponse::RequiresEos(self)
        }
    }

    fn classify_error<E: std::fmt::Display + 'static>(self, error: &E) -> Self::FailureClass {
        ServerErrorsFailureClass::Error(error.to_string())
    }
}

impl ClassifyEos for ServerErrorsAndBrokenBodies {
    type FailureClass = ServerErrorsFailureClass;

    fn classify_eos(self, _trailers: Option<&HeaderMap>) -> Result<(), Self::FailureClass> {
        Ok(())
    }

    fn classify_error<E: std::fmt::Display + 'static>(self, error: &E) -> Self::FailureClass {
        ServerErrorsFailureClass::Error(error.to_string())
    }
}

/// The default headers of every answer that has none of that name: `Referrer-Policy:
/// same-origin`, `X-Content-Type-Options: nosniff` and `Cache-Control: no-cache` (revalidate;
/// signed-in answers and static files set their own), for tower-http's `SetResponseHeaderLayer`.
pub fn default_headers() -> [(HeaderName, HeaderValue); 3] {
    [
        (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (header::CACHE_CONTROL, HeaderValue::from_static(super::delivery::REVALIDATE)),
    ]
}

/// The `finished processing request` line, in the request's span (none for a probe's, which is
/// disabled at info).
fn finished(response: &Response<Body>, latency: Duration, span: &tracing::Span) {
    if !span.is_disabled() {
        tracing::info!(
            latency = %format_args!("{} ms", latency.as_millis()),
            status = response.status().as_u16(),
            "finished processing request"
        );
    }
}

/// The paths of the health and readiness probes.
const PROBES: [&str; 2] = ["/healthz", "/readyz"];

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest `x-request-id` a client may send and have kept.
const MAX_REQUEST_ID_LEN: usize = 64;

/// Whether a sent `x-request-id` is a bounded token (`[A-Za-z0-9-]{1,64}`), which is kept (a
/// proxy's id ties Libero's log lines to its own); anything else is replaced.
fn is_bounded_token(id: &HeaderValue) -> bool {
    let id = id.as_bytes();
    (1..=MAX_REQUEST_ID_LEN).contains(&id.len()) && id.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
}

/// Drops a sent `x-request-id` that is not a bounded token — it goes into every log line of the
/// request and back to the client — so that tower-http's `SetRequestId` makes a fresh one
/// (`MakeRequestUuid`). The request-id layers, outermost first: this, `SetRequestIdLayer`,
/// `PropagateRequestIdLayer` (see `startup::router`).
pub fn sanitize_request_id<B>(mut req: Request<B>) -> Request<B> {
    if req.headers().get(X_REQUEST_ID).is_some_and(|id| !is_bounded_token(id)) {
        req.headers_mut().remove(X_REQUEST_ID);
    }
    req
}

/// The request's span: debug-level for the probes, info for everything else.
fn request_span(request: &Request<Body>) -> tracing::Span {
    let request_id = request.headers().get(X_REQUEST_ID).and_then(|id| id.to_str().ok()).unwrap_or("-");
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
    use tower_http::request_id::RequestId;

    fn authorization(value: &'static str) -> HeaderMap {
        HeaderMap::from_iter([(header::AUTHORIZATION, HeaderValue::from_static(value))])
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
        assert_eq!(authorization_credentials(&HeaderMap::new(), "Basic"), None);
    }

    #[test]
    fn a_scheme_with_nothing_after_it_gives_empty_credentials_that_still_decide() {
        // A bare `Bearer` is a tab credential that verifies nothing (401), never "no header",
        // which would let the cookie decide.
        assert_eq!(authorization_credentials(&authorization("Bearer"), "Bearer"), Some(""));
        assert_eq!(authorization_credentials(&authorization(" basic  "), "Basic"), Some(""));
    }

    /// Log lines written as JSON into memory, as `LOG_FORMAT=json` writes them.
    #[derive(Clone, Default)]
    struct Lines(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        /// Captures this thread's logs (info and above) until the guard is dropped.
        fn capture(&self) -> tracing::subscriber::DefaultGuard {
            let writer = self.clone();
            let subscriber = tracing_subscriber::fmt()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .with_max_level(tracing::Level::INFO)
                .with_writer(move || writer.clone())
                .finish();
            tracing::subscriber::set_default(subscriber)
        }

        fn parsed(&self) -> Vec<serde_json::Value> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines().map(|line| serde_json::from_str(line).unwrap()).collect()
        }

        fn with_message(&self, message: &str) -> Vec<serde_json::Value> {
            self.parsed().into_iter().filter(|line| line["message"] == message).collect()
        }
    }

    /// The layers of `startup::router` over a handler that answers with `answer`.
    async fn through_stack(
        request: Request<Body>,
        answer: impl FnOnce(Request<Body>) -> Response<Body>,
    ) -> Response<Body> {
        use tower::ServiceExt;
        use tower_http::set_header::SetResponseHeaderLayer;
        let [referrer, nosniff, cache] = default_headers();
        let mut answer = Some(answer);
        let handler = tower::service_fn(move |req: Request<Body>| {
            let response = answer.take().expect("one request")(req);
            async move { Ok::<_, std::convert::Infallible>(response) }
        });
        tower::ServiceBuilder::new()
            .map_request(sanitize_request_id)
            .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(tower_http::request_id::MakeRequestUuid))
            .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
            .layer(trace())
            .layer(SetResponseHeaderLayer::if_not_present(referrer.0, referrer.1))
            .layer(SetResponseHeaderLayer::if_not_present(nosniff.0, nosniff.1))
            .layer(SetResponseHeaderLayer::if_not_present(cache.0, cache.1))
            .service(handler)
            .oneshot(request)
            .await
            .unwrap()
            .map(Body::new)
    }

    fn get(path: &str) -> Request<Body> {
        Request::get(path).body(Body::empty()).unwrap()
    }

    #[tokio::test]
    async fn a_sent_request_id_is_kept_and_only_missing_default_headers_are_added() {
        let request = Request::get("/app").header("x-request-id", "from-the-proxy").body(Body::empty()).unwrap();
        let response = through_stack(request, |req| {
            let id = req.extensions().get::<RequestId>().expect("the handler sees the request id");
            assert_eq!(id.header_value(), "from-the-proxy");
            ([(header::CACHE_CONTROL, "no-store")], "page").into_response()
        })
        .await;
        let headers = response.headers();
        assert_eq!(headers["x-request-id"], "from-the-proxy");
        assert_eq!(headers[header::CACHE_CONTROL], "no-store", "the answer's own header wins");
        assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    }

    #[tokio::test]
    async fn a_request_without_an_id_gets_a_fresh_uuid_and_answers_revalidate_by_default() {
        let first = through_stack(get("/"), |_| "landing".into_response()).await;
        let second = through_stack(get("/"), |_| "landing".into_response()).await;
        let id = first.headers()["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(id).is_ok_and(|id| id.get_version_num() == 4), "{id}");
        assert_ne!(first.headers()["x-request-id"], second.headers()["x-request-id"], "one id per request");
        assert_eq!(first.headers()[header::CACHE_CONTROL], super::super::delivery::REVALIDATE);
    }

    #[tokio::test]
    async fn every_answer_is_logged_once_in_its_request_span_and_a_2xx_is_no_failure() {
        let lines = Lines::default();
        let _capture = lines.capture();
        let response = through_stack(get("/settings"), |_| "settings".into_response()).await;
        let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        axum::body::to_bytes(Body::new(response.into_body()), usize::MAX).await.unwrap();
        let finished = lines.with_message("finished processing request");
        assert_eq!(finished.len(), 1, "{:?}", lines.parsed());
        assert_eq!(finished[0]["status"], 200);
        assert_eq!(finished[0]["span"]["request_id"], id.as_str());
        assert_eq!(finished[0]["span"]["path"], "/settings");
        assert!(lines.with_message("response failed").is_empty(), "a 200 is no failure");
    }

    #[tokio::test]
    async fn a_5xx_answer_is_logged_as_a_failed_response() {
        let lines = Lines::default();
        let _capture = lines.capture();
        let response = through_stack(get("/app"), |_| StatusCode::SERVICE_UNAVAILABLE.into_response()).await;
        let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        let failed = lines.with_message("response failed");
        assert_eq!(failed.len(), 1, "{:?}", lines.parsed());
        assert_eq!(failed[0]["level"], "ERROR");
        assert_eq!(failed[0]["classification"], "Status code: 503 Service Unavailable");
        assert_eq!(failed[0]["span"]["request_id"], id.as_str());
    }

    #[tokio::test]
    async fn a_body_that_fails_while_it_is_sent_is_logged_in_its_request_span() {
        let lines = Lines::default();
        let _capture = lines.capture();
        let response = through_stack(get("/app"), |_| {
            let chunks = [Ok(axum::body::Bytes::from("<html>")), Err(std::io::Error::other("the render broke"))];
            Response::new(Body::from_stream(futures::stream::iter(chunks)))
        })
        .await;
        assert_eq!(response.status(), StatusCode::OK, "the head went out before the body failed");
        let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
        assert!(lines.with_message("response failed").is_empty(), "nothing has failed yet");
        assert!(axum::body::to_bytes(Body::new(response.into_body()), usize::MAX).await.is_err());
        let failed = lines.with_message("response failed");
        assert_eq!(failed.len(), 1, "{:?}", lines.parsed());
        assert!(failed[0]["classification"].as_str().unwrap().contains("the render broke"), "{}", failed[0]);
        assert_eq!(failed[0]["span"]["request_id"], id.as_str());
    }

    #[tokio::test]
    async fn probes_are_not_logged_at_info() {
        let lines = Lines::default();
        let _capture = lines.capture();
        let response = through_stack(get("/healthz"), |_| "ok".into_response()).await;
        axum::body::to_bytes(Body::new(response.into_body()), usize::MAX).await.unwrap();
        assert!(lines.parsed().is_empty(), "{:?}", lines.parsed());
        // Control: the same answer on another path is logged.
        let response = through_stack(get("/"), |_| "ok".into_response()).await;
        axum::body::to_bytes(Body::new(response.into_body()), usize::MAX).await.unwrap();
        assert_eq!(lines.with_message("finished processing request").len(), 1);
    }

    #[tokio::test]
    async fn a_sent_request_id_that_is_not_a_bounded_token_is_replaced() {
        let long = "a".repeat(65);
        for junk in ["has space", "new\u{2028}line", "<script>", "a_b", "", long.as_str()] {
            let Ok(value) = HeaderValue::from_str(junk) else { continue };
            let request = Request::get("/app").header("x-request-id", value).body(Body::empty()).unwrap();
            let response = through_stack(request, |req| {
                let id = req.extensions().get::<RequestId>().expect("an id").header_value().clone();
                assert!(uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok(), "{junk:?}: a fresh UUID");
                "page".into_response()
            })
            .await;
            assert_ne!(response.headers()["x-request-id"], junk, "{junk:?}");
        }
        // Control: a bounded token, 64 characters long, is kept.
        let bounded = format!("{}-1", "A9".repeat(31));
        assert_eq!(bounded.len(), 64);
        let request = Request::get("/app").header("x-request-id", &bounded).body(Body::empty()).unwrap();
        let response = through_stack(request, |_| "page".into_response()).await;
        assert_eq!(response.headers()["x-request-id"], bounded.as_str());
    }
}
