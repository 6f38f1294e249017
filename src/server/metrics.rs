//! Prometheus metrics (the `metrics` facade with `metrics-exporter-prometheus`), served on
//! `/metrics` behind `METRICS_TOKEN` ([`http::metrics`](super::http::metrics)). A leaf: it
//! imports nothing of Libero's.

use std::{collections::HashMap, sync::OnceLock, time::Duration};

use axum::{
    extract::MatchedPath,
    http::{Method, StatusCode},
    response::Response,
};
pub use libero_sessions::metrics::*;
use metrics::{counter, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Sign-in attempts by outcome. Commerce7's answers each have their own: `commerce7_refused`
/// (401/403, or 404/422 for the token), `commerce7_busy` (429), `commerce7_rejected` (another
/// 4xx) and `commerce7_unavailable` (5xx, timeout, connection failure: the only outage);
/// Libero's own sign-in limit is `rate_limited`.
pub const SIGN_INS: &str = "libero_sign_ins_total";
/// Latency of Commerce7's `account/user`, by outcome: `ok`, `refused`, `busy`, `rejected`,
/// `error` (5xx, an unexpected status, a failed connection) and `timeout`.
pub const COMMERCE7_DURATION: &str = "libero_commerce7_request_duration_seconds";
/// HTTP latency by method, route and status.
pub const HTTP_DURATION: &str = "libero_http_request_duration_seconds";
/// Requests refused by a rate limit, by limit.
pub const RATE_LIMITED: &str = "libero_rate_limited_total";

/// How often histogram samples are folded into their buckets when nobody scrapes.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

const LATENCY_BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Installs the process-wide recorder once and returns its handle.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("duration_seconds".to_owned()), &LATENCY_BUCKETS)
                .expect("static, non-empty buckets")
                .install_recorder()
                .expect("no other metrics recorder is installed")
        })
        .clone()
}

/// Folds recorded histogram samples into their buckets every `interval`, for as long as the
/// server runs (`Application::run_until` aborts it at shutdown).
///
/// The recorder keeps every histogram sample until upkeep runs, and upkeep otherwise runs only
/// on a scrape: without `METRICS_TOKEN` (or with a scraper that is down) memory grew by every
/// request. A timer rather than "record nothing when metrics are off" because it also bounds the
/// token-set-but-unscraped case, and the recorder stays one process-wide thing that does not
/// depend on any one server's settings.
pub async fn run_upkeep_periodically(handle: PrometheusHandle, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        handle.run_upkeep();
    }
}

/// Counts one sign-in attempt.
pub fn sign_in(outcome: &'static str) {
    counter!(SIGN_INS, "outcome" => outcome).increment(1);
}

/// Records one Commerce7 call.
pub fn commerce7_call(seconds: f64, outcome: &'static str) {
    histogram!(COMMERCE7_DURATION, "outcome" => outcome).record(seconds);
}

/// Counts one request refused by the `limit` rate limit.
pub fn rate_limited(limit: &'static str) {
    counter!(RATE_LIMITED, "limit" => limit).increment(1);
}

/// The `method` label: the standard methods by name, anything a client invents as `other`, so
/// that no client can create label values (and memory) at will.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// The latency histogram of one (method, route, status): registered once, then reused, so a
/// request costs one read-locked hash lookup by route and a scan of that route's few
/// (method, status) pairs, with no allocation. The set is bounded like the labels (fixed methods,
/// the router's route templates, HTTP status codes).
fn http_histogram(method: &'static str, route: Option<&MatchedPath>, status: StatusCode) -> metrics::Histogram {
    type Handles = std::sync::RwLock<HashMap<String, Vec<(&'static str, u16, metrics::Histogram)>>>;
    static HANDLES: OnceLock<Handles> = OnceLock::new();
    let handles = HANDLES.get_or_init(Default::default);
    // The `route` label: the router's template for matched routes, `fallback` for everything else
    // (static files, unknown paths), never the raw path.
    let route_key = route.map_or("fallback", MatchedPath::as_str);
    let status = status.as_u16();
    let cached = handles.read().ok().and_then(|map| {
        let pairs = map.get(route_key)?;
        pairs.iter().find(|(m, s, _)| *m == method && *s == status).map(|(_, _, h)| h.clone())
    });
    if let Some(histogram) = cached {
        return histogram;
    }
    let histogram =
        histogram!(HTTP_DURATION, "method" => method, "route" => route_key.to_owned(), "status" => status.to_string());
    if let Ok(mut map) = handles.write() {
        map.entry(route_key.to_owned()).or_default().push((method, status, histogram.clone()));
    }
    histogram
}

/// Middleware on every route and the fallback (`Router::layer`, where the matched route template
/// is known): every answer into the latency histogram, by method, route template and status (all
/// of bounded cardinality).
pub async fn track(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = method_label(req.method());
    let route = req.extensions().get::<MatchedPath>().cloned();
    let started = std::time::Instant::now();
    let response = next.run(req).await;
    http_histogram(method, route.as_ref(), response.status()).record(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_methods_keep_their_name_and_invented_ones_are_other() {
        for (method, label) in [
            (Method::GET, "GET"),
            (Method::HEAD, "HEAD"),
            (Method::POST, "POST"),
            (Method::PUT, "PUT"),
            (Method::PATCH, "PATCH"),
            (Method::DELETE, "DELETE"),
            (Method::OPTIONS, "OPTIONS"),
            (Method::TRACE, "other"),
            (Method::CONNECT, "other"),
        ] {
            assert_eq!(method_label(&method), label);
        }
        for invented in ["FOOBAR", "get", "PROPFIND", "X1", "X2"] {
            assert_eq!(method_label(&Method::from_bytes(invented.as_bytes()).unwrap()), "other", "{invented}");
        }
    }
}
