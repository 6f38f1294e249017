//! Operational endpoints and the layers every response goes through.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::{Duration, Instant},
};

use axum::{
    Json, Router,
    body::Body,
    extract::{MatchedPath, State},
    http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use pin_project_lite::pin_project;
use serde_json::json;
use tower::{Layer, Service};

use super::AppState;

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

/// The layer every answer goes through (`Router::layer`, so on each route and the fallback, where
/// the matched route template is known), written as one service with one response future: each
/// layer of a route's stack costs a clone and a boxed future per request, and tower-http's
/// `TraceLayer` alone reads the clock six times per response (per body frame twice). Per request
/// it reads the clock twice, for the access log and the metrics alike.
///
/// 1. **Request id** (read, not made: the request-id layers outside this one set it): the
///    request's span carries it.
/// 2. **Trace**: the request's span (`request`, with its id, method and path — only the path:
///    query strings carry Commerce7 account tokens, and no header, cookies included, is ever
///    recorded), entered while the handler runs and while its body is sent; the `finished
///    processing request` line (target `tower_http::trace::on_response`, as tower-http's own);
///    a 5xx answer or a body that fails while it is sent is logged as `response failed` (error,
///    target `tower_http::trace::on_failure`). Health and readiness probes get a debug-level span
///    and no line of their own unless debug logging is on: a load balancer calls them every few
///    seconds, and a line each would bury the merchants' requests (a failing probe still logs
///    its warning, and a 5xx its error).
/// 3. **Default headers**, where the answer has none of that name: `Referrer-Policy:
///    same-origin`, `X-Content-Type-Options:
///    nosniff` and `Cache-Control: no-cache` (revalidate; signed-in answers and static files set
///    their own).
/// 4. **Metrics**: the latency histogram by method, route template and status
///    ([`metrics::record_http`]).
///
/// The `Content-Security-Policy` is a layer of its own (`server::csp`), as are the request-id
/// layers ([`sanitize_request_id`]).
pub fn stack() -> HttpStackLayer {
    HttpStackLayer::new()
}

impl HttpStackLayer {
    fn new() -> Self {
        Self {
            headers: Arc::new([
                (header::REFERRER_POLICY, HeaderValue::from_static("same-origin")),
                (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
                (header::CACHE_CONTROL, HeaderValue::from_static(super::delivery::REVALIDATE)),
            ]),
        }
    }
}

/// See [`stack`].
#[derive(Clone)]
pub struct HttpStackLayer {
    headers: Arc<[(HeaderName, HeaderValue)]>,
}

impl<S> Layer<S> for HttpStackLayer {
    type Service = HttpStack<S>;

    fn layer(&self, inner: S) -> Self::Service {
        HttpStack { inner, headers: self.headers.clone() }
    }
}

/// The service of [`HttpStackLayer`].
#[derive(Clone)]
pub struct HttpStack<S> {
    inner: S,
    headers: Arc<[(HeaderName, HeaderValue)]>,
}

impl<S, ResBody> Service<Request<Body>> for HttpStack<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>>,
{
    type Response = Response<TracedBody<ResBody>>;
    type Error = S::Error;
    type Future = HttpStackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        // Set (or replaced) by the request-id layers outside this one ([`sanitize_request_id`]).
        let id = req.headers().get(X_REQUEST_ID).cloned().unwrap_or(HeaderValue::from_static("-"));
        let span = request_span(&req, &id);
        let method = super::metrics::method_label(req.method());
        let route = req.extensions().get::<MatchedPath>().cloned();
        let started = Instant::now();
        let inner = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        HttpStackFuture { inner, span, headers: self.headers.clone(), started, method, route }
    }
}

pin_project! {
    /// The response future of [`HttpStack`].
    pub struct HttpStackFuture<F> {
        #[pin]
        inner: F,
        span: tracing::Span,
        headers: Arc<[(HeaderName, HeaderValue)]>,
        started: Instant,
        method: &'static str,
        route: Option<MatchedPath>,
    }
}

impl<F, ResBody, E> Future for HttpStackFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<TracedBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let mut response = ready!(this.inner.poll(cx))?;
        let latency = this.started.elapsed();
        let status = response.status();

        let headers = response.headers_mut();
        headers.reserve(this.headers.len());
        for (name, value) in this.headers.iter() {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }

        super::metrics::record_http(this.method, this.route.as_ref(), status, latency);
        if !this.span.is_disabled() {
            tracing::info!(
                target: "tower_http::trace::on_response",
                latency = %format_args!("{} ms", latency.as_millis()),
                status = status.as_u16(),
                "finished processing request"
            );
        }
        if status.is_server_error() {
            tracing::error!(
                target: "tower_http::trace::on_failure",
                classification = %format_args!("Status code: {status}"),
                latency = %format_args!("{} ms", latency.as_millis()),
                "response failed"
            );
        }
        let (span, started) = (this.span.clone(), *this.started);
        Poll::Ready(Ok(response.map(|inner| TracedBody { inner, span, started })))
    }
}

pin_project! {
    /// An answer's body, sent inside its request's span; an error while it is sent is logged.
    pub struct TracedBody<B> {
        #[pin]
        inner: B,
        span: tracing::Span,
        started: Instant,
    }
}

impl<B> http_body::Body for TracedBody<B>
where
    B: http_body::Body,
    B::Error: std::fmt::Display,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let _entered = this.span.enter();
        let frame = ready!(this.inner.poll_frame(cx));
        if let Some(Err(err)) = &frame {
            tracing::error!(
                target: "tower_http::trace::on_failure",
                classification = %format_args!("Error: {err}"),
                latency = %format_args!("{} ms", this.started.elapsed().as_millis()),
                "response failed"
            );
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
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
/// `PropagateRequestIdLayer` (see `server::router`).
pub fn sanitize_request_id<B>(mut req: Request<B>) -> Request<B> {
    if req.headers().get(X_REQUEST_ID).is_some_and(|id| !is_bounded_token(id)) {
        req.headers_mut().remove(X_REQUEST_ID);
    }
    req
}

/// The request's span: debug-level for the probes, info for everything else.
fn request_span<B>(request: &Request<B>, id: &HeaderValue) -> tracing::Span {
    let request_id = id.to_str().unwrap_or("-");
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

    /// Log lines written as JSON into memory, as `LOG_FORMAT=json` writes them.
    #[derive(Clone, Default)]
    struct Lines(Arc<std::sync::Mutex<Vec<u8>>>);

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

    /// The stack over a handler that answers with `answer`.
    async fn through_stack(
        request: Request<Body>,
        answer: impl FnOnce(Request<Body>) -> Response<Body>,
    ) -> Response<TracedBody<Body>> {
        use tower::ServiceExt;
        let mut answer = Some(answer);
        let handler = tower::service_fn(move |req: Request<Body>| {
            let response = answer.take().expect("one request")(req);
            async move { Ok::<_, std::convert::Infallible>(response) }
        });
        tower::ServiceBuilder::new()
            .map_request(sanitize_request_id)
            .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(tower_http::request_id::MakeRequestUuid))
            .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
            .layer(HttpStackLayer::new())
            .service(handler)
            .oneshot(request)
            .await
            .unwrap()
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
