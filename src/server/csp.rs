//! The `Content-Security-Policy` of every answer, as a layer of its own.
//!
//! Scripts may come from the app itself (`/pkg`), from Commerce7's frame script
//! (`COMMERCE7_FRAME_SCRIPT`, by its exact URL), from inline scripts that carry this answer's
//! nonce (Leptos puts it on its hydration and streaming scripts: [`provide_request_nonce`]), or
//! be the tab bootstrap (`src/tab.js`, inlined on signed-in and error pages), allowed by
//! its SHA-256; WebAssembly may be compiled (`'wasm-unsafe-eval'`). No plugins, no `<base>`, and
//! only the app itself and `FRAME_ANCESTORS` may frame it.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{HeaderValue, header},
    middleware::Next,
    response::Response,
};
use base64::{Engine, engine::general_purpose::STANDARD};
use leptos::nonce::Nonce;
use sha2::{Digest, Sha256};

/// The policy around each answer's nonce.
#[derive(Debug, Clone)]
pub struct ContentSecurityPolicy {
    /// `script-src 'self' 'nonce-`
    head: &'static str,
    /// `' 'sha256-…' 'wasm-unsafe-eval'; object-src 'none'; base-uri 'none'; frame-ancestors …`
    tail: Arc<str>,
}

impl ContentSecurityPolicy {
    /// The policy of an app that `ancestors` (`FRAME_ANCESTORS`) may frame and whose pages load
    /// `frame_script` (`COMMERCE7_FRAME_SCRIPT`, allowed by its exact URL).
    pub fn new(ancestors: &[String], frame_script: Option<&str>) -> Self {
        let bootstrap = STANDARD.encode(Sha256::digest(crate::document::BOOTSTRAP_SCRIPT.as_bytes()));
        let frame_script = frame_script.map(|url| format!(" {url}")).unwrap_or_default();
        let tail = format!(
            "' 'sha256-{bootstrap}'{frame_script} 'wasm-unsafe-eval'; object-src 'none'; base-uri 'none'; {}",
            frame_ancestors(ancestors)
        );
        Self { head: "script-src 'self' 'nonce-", tail: tail.into() }
    }

    /// The header value for an answer whose inline scripts carry `nonce`.
    pub fn with_nonce(&self, nonce: &str) -> HeaderValue {
        HeaderValue::from_str(&format!("{}{nonce}{}", self.head, self.tail))
            .expect("a base64url nonce and visible ASCII make a valid header")
    }
}

/// `frame-ancestors 'self' …`: the app itself and the configured origins, nobody else. A value
/// that could end the directive or is not visible ASCII is skipped.
pub fn frame_ancestors(ancestors: &[String]) -> String {
    let allowed = ancestors.iter().filter(|o| o.chars().all(|c| c.is_ascii_graphic()) && !o.contains([';', ',', '\'']));
    std::iter::once("frame-ancestors 'self'").chain(allowed.map(String::as_str)).collect::<Vec<_>>().join(" ")
}

/// Middleware: a fresh nonce per request (128 random bits) in the request's extensions, and the
/// policy with it on the answer.
pub async fn layer(State(policy): State<ContentSecurityPolicy>, mut req: Request, next: Next) -> Response {
    let nonce = Nonce::new();
    req.extensions_mut().insert(nonce.clone());
    let mut response = next.run(req).await;
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, policy.with_nonce(&nonce.to_string()));
    response
}

/// Gives Leptos the nonce of this request's policy, for the inline scripts it renders (called in
/// the render's context, after leptos_axum has provided one of its own).
pub fn provide_request_nonce() {
    use leptos::prelude::{provide_context, with_context};
    // `with_context`, not `use_context`: the request's parts are read in place, not cloned.
    let nonce = with_context::<http::request::Parts, _>(|parts| parts.extensions.get::<Nonce>().cloned()).flatten();
    if let Some(nonce) = nonce {
        provide_context(nonce);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_the_apps_scripts_the_nonce_and_the_bootstrap_and_nothing_else() {
        let script = "https://dev-center.platform.commerce7.com/v2/commerce7.js";
        let policy = ContentSecurityPolicy::new(&["https://*.platform.commerce7.com".into()], Some(script));
        let value = policy.with_nonce("abc123");
        let value = value.to_str().unwrap();
        let bootstrap = STANDARD.encode(Sha256::digest(crate::document::BOOTSTRAP_SCRIPT.as_bytes()));
        assert_eq!(
            value,
            format!(
                "script-src 'self' 'nonce-abc123' 'sha256-{bootstrap}' {script} 'wasm-unsafe-eval'; object-src 'none'; \
                 base-uri 'none'; frame-ancestors 'self' https://*.platform.commerce7.com"
            )
        );
        assert!(!value.contains("unsafe-inline") && !value.contains("'unsafe-eval'"));
        let without = ContentSecurityPolicy::new(&[], None).with_nonce("n");
        assert!(!without.to_str().unwrap().contains("commerce7.js"), "no frame script, no allowance");
    }

    #[test]
    fn frame_ancestors_lists_self_then_the_configured_origins() {
        let value = frame_ancestors(&["https://*.commerce7.com".into(), "http://localhost:4000".into()]);
        assert_eq!(value, "frame-ancestors 'self' https://*.commerce7.com http://localhost:4000");
    }

    #[test]
    fn frame_ancestors_skips_values_that_could_inject_directives() {
        let value = frame_ancestors(&["https://ok.example".into(), "x; script-src *".into(), "'unsafe-inline'".into()]);
        assert_eq!(value, "frame-ancestors 'self' https://ok.example");
    }

    #[tokio::test]
    async fn every_answer_gets_its_own_nonce_which_the_request_carries() {
        use tower::ServiceExt;
        let policy = ContentSecurityPolicy::new(&[], None);
        let app = axum::Router::new()
            .route(
                "/",
                axum::routing::get(|req: Request| async move {
                    req.extensions().get::<Nonce>().expect("the handler sees the nonce").to_string()
                }),
            )
            .layer(axum::middleware::from_fn_with_state(policy, layer));
        let mut seen = Vec::new();
        for _ in 0..2 {
            let response = app.clone().oneshot(Request::get("/").body(axum::body::Body::empty()).unwrap()).await;
            let response = response.unwrap();
            let header = response.headers()[header::CONTENT_SECURITY_POLICY].to_str().unwrap().to_owned();
            let body = axum::body::to_bytes(response.into_body(), 1024).await.unwrap();
            let nonce = String::from_utf8(body.to_vec()).unwrap();
            assert!(nonce.len() >= 22, "128 bits: {nonce}");
            assert!(header.contains(&format!("'nonce-{nonce}'")), "{header}");
            seen.push(nonce);
        }
        assert_ne!(seen[0], seen[1], "one nonce per answer");
    }
}
