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
use tower_http::request_id::RequestId;

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

/// The layer every answer goes through (`Router::layer`, so on each route and the fallback, where
/// the matched route template is known), written as one service with one response future: each
/// layer of a route's stack costs a clone and a boxed future per request, and tower-http's
/// `TraceLayer` alone reads the clock six times per response (per body frame twice). Per request
/// it reads the clock twice, for the access log and the metrics alike.
///
/// 1. **Request id**: the `x-request-id` a proxy sent, else a random UUID (v4); put in the
///    request's headers and extensions ([`RequestId`]) and copied to the response.
/// 2. **Trace**: the request's span (`request`, with its id, method and path — only the path:
///    query strings carry Commerce7 account tokens, and no header, cookies included, is ever
///    recorded), entered while the handler runs and while its body is sent; the `finished
///    processing request` line (target `tower_http::trace::on_response`, as tower-http's own);
///    a 5xx answer or a body that fails while it is sent is logged as `response failed` (error,
///    target `tower_http::trace::on_failure`). Health and readiness probes get a debug-level span
///    and no line of their own unless debug logging is on: a load balancer calls them every few
///    seconds, and a line each would bury the merchants' requests (a failing probe still logs
///    its warning, and a 5xx its error).
/// 3. **Default headers**, where the answer has none of that name: `Content-Security-Policy:
///    frame-ancestors 'self' …`, `Referrer-Policy: same-origin`, `X-Content-Type-Options:
///    nosniff` and `Cache-Control: no-cache` (revalidate; signed-in answers and static files set
///    their own).
/// 4. **Metrics**: the latency histogram by method, route template and status
///    ([`metrics::record_http`]).
pub fn stack(config: &Config) -> HttpStackLayer {
    HttpStackLayer::framed_by(&config.frame_ancestors)
}

impl HttpStackLayer {
    /// The stack for an app that `ancestors` may frame (`FRAME_ANCESTORS`).
    fn framed_by(ancestors: &[String]) -> Self {
        Self {
            headers: Arc::new([
                (header::CONTENT_SECURITY_POLICY, frame_ancestors_policy(ancestors)),
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

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let id = match req.headers().get(X_REQUEST_ID) {
            Some(sent) => sent.clone(),
            None => {
                let id = random_request_id();
                req.headers_mut().insert(X_REQUEST_ID, id.clone());
                id
            }
        };
        let span = request_span(&req, &id);
        req.extensions_mut().insert(RequestId::new(id.clone()));
        let method = super::metrics::method_label(req.method());
        let route = req.extensions().get::<MatchedPath>().cloned();
        let started = Instant::now();
        let inner = {
            let _entered = span.enter();
            self.inner.call(req)
        };
        HttpStackFuture { inner, span, id: Some(id), headers: self.headers.clone(), started, method, route }
    }
}

pin_project! {
    /// The response future of [`HttpStack`].
    pub struct HttpStackFuture<F> {
        #[pin]
        inner: F,
        span: tracing::Span,
        id: Option<HeaderValue>,
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
        headers.reserve(this.headers.len() + 1);
        if let Some(id) = this.id.take()
            && !headers.contains_key(X_REQUEST_ID)
        {
            headers.insert(X_REQUEST_ID, id);
        }
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

/// The paths of the health and readiness probes.
const PROBES: [&str; 2] = ["/healthz", "/readyz"];

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A random (version 4) UUID, from the thread's CSPRNG rather than a `getrandom` system call each
/// time.
fn random_request_id() -> HeaderValue {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut text = [0_u8; uuid::fmt::Hyphenated::LENGTH];
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut text)).expect("a UUID is a valid header value")
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
        HttpStackLayer::framed_by(&["https://*.commerce7.com".into()]).layer(handler).oneshot(request).await.unwrap()
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
        assert_eq!(headers[header::CONTENT_SECURITY_POLICY], "frame-ancestors 'self' https://*.commerce7.com");
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
