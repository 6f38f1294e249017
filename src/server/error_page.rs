//! Full HTML error pages answered by middleware (before any Leptos route runs): the sign-in
//! failures, a refused cross-site request, "database unavailable", and the "no session" page a
//! framed signed-in page shows instead when it has no session.
//!
//! Every error page links to the app's support docs when `SUPPORT_URL` is set. The pages are
//! made deep inside middleware that has no settings at hand, so the app's [`settings_layer`]
//! makes its [`PageSettings`] the request's own (a tokio task-local) for as long as the request
//! is handled; a page made outside a request (a unit test, the CLI) has none and shows no link.

use std::{
    borrow::Cow,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};

use leptos::prelude::*;

use super::delivery::{no_store, stylesheet_href};
use crate::document::{BOOTSTRAP_SCRIPT, BrandHeader, FrameScript, HeadBasics};

/// What the error pages of one app need from its settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageSettings {
    /// `SUPPORT_URL`: the app's support docs, linked from every error page.
    pub support_url: Option<Arc<str>>,
    /// `COMMERCE7_FRAME_SCRIPT`: loaded by every page, so that the admin sizes its frame.
    pub frame_script: Option<Arc<str>>,
}

impl PageSettings {
    /// The settings of the request being handled (none outside [`settings_layer`]).
    fn current() -> Self {
        PAGE_SETTINGS.try_with(Self::clone).unwrap_or_default()
    }
}

tokio::task_local! {
    static PAGE_SETTINGS: PageSettings;
}

/// The layer that gives every request the error pages' settings of its app (see the module's
/// notes): one clone of an `Option<Arc<str>>` per request, no boxed future.
pub fn settings_layer(config: &super::config::Config) -> PageSettingsLayer {
    let settings = PageSettings {
        support_url: config.support_url.as_deref().map(Arc::from),
        frame_script: config.commerce7_frame_script.as_deref().map(Arc::from),
    };
    PageSettingsLayer { settings }
}

/// See [`settings_layer`].
#[derive(Debug, Clone)]
pub struct PageSettingsLayer {
    settings: PageSettings,
}

impl<S> tower::Layer<S> for PageSettingsLayer {
    type Service = PageSettingsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        PageSettingsService { inner, settings: self.settings.clone() }
    }
}

/// The service of [`PageSettingsLayer`].
#[derive(Debug, Clone)]
pub struct PageSettingsService<S> {
    inner: S,
    settings: PageSettings,
}

impl<S, Request> tower::Service<Request> for PageSettingsService<S>
where
    S: tower::Service<Request>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = tokio::task::futures::TaskLocalFuture<PageSettings, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        PAGE_SETTINGS.scope(self.settings.clone(), self.inner.call(request))
    }
}

/// The situations a merchant can meet outside the normal pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The iframe URL lacks `tenantId`/`account`, or they are malformed.
    BadSignInLink,
    /// Commerce7 refused the account token: 401/403, or 404/422 for the token (401).
    Commerce7Refused,
    /// Commerce7 answered 429, its rate limit (429, with `Retry-After: retry_after`).
    Commerce7Busy {
        /// Seconds to wait, as in the answer's `Retry-After`.
        retry_after: u32,
    },
    /// Commerce7 answered another 4xx: it did not accept the request this link made (400).
    Commerce7Rejected,
    /// Commerce7 is down or too slow: 5xx, timeout, connection failure (503).
    Commerce7Unavailable,
    /// The tenant has not installed Libero, or uninstalled it (403).
    NotInstalled,
    /// A state change from another site (403).
    CrossSite,
    /// The database cannot be reached (503).
    DatabaseUnavailable,
    /// Too many sign-in attempts from this address (429).
    TooManyAttempts,
    /// A form the browser posted itself that the server could not read (400).
    FormNotRead,
}

impl ErrorKind {
    fn status(self) -> StatusCode {
        match self {
            Self::BadSignInLink | Self::FormNotRead | Self::Commerce7Rejected => StatusCode::BAD_REQUEST,
            Self::Commerce7Refused => StatusCode::UNAUTHORIZED,
            Self::Commerce7Unavailable | Self::DatabaseUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotInstalled | Self::CrossSite => StatusCode::FORBIDDEN,
            // Not 503: nothing is down, and a 5xx is what load balancers and uptime checks page
            // on. The merchant's open is throttled (Commerce7 counts Libero's calls per winery),
            // and 429 with Retry-After says exactly that (RFC 6585 §4).
            Self::TooManyAttempts | Self::Commerce7Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::BadSignInLink => "This link is incomplete",
            Self::Commerce7Refused => "Commerce7 didn't recognise you",
            Self::Commerce7Busy { .. } => "Commerce7 is busy",
            Self::Commerce7Rejected => "Commerce7 did not accept this link",
            Self::Commerce7Unavailable => "Libero couldn't reach Commerce7",
            Self::NotInstalled => "Libero isn't installed for this winery",
            Self::CrossSite => "Request refused",
            Self::DatabaseUnavailable => "Libero is temporarily unavailable",
            Self::TooManyAttempts => "Too many sign-in attempts",
            Self::FormNotRead => "This form could not be read",
        }
    }

    fn message(self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            Self::BadSignInLink => "Open Libero from the Apps menu of your Commerce7 admin so that it can sign you in.",
            Self::Commerce7Refused => {
                "Your Commerce7 sign-in could not be confirmed for this winery. Reload the Commerce7 admin and open Libero again; if it keeps happening, ask your account owner to check your access."
            }
            Self::Commerce7Busy { retry_after } => {
                let unit = if retry_after == 1 { "second" } else { "seconds" };
                return Cow::Owned(format!(
                    "Commerce7 is busy, try again in {retry_after} {unit}. It is handling too many requests for your winery right now; nothing is wrong with your account. Then open Libero again from your Commerce7 admin."
                ));
            }
            Self::Commerce7Rejected => {
                "Commerce7 did not accept this link — reopen Libero from Commerce7: open it again from the Apps menu of your Commerce7 admin."
            }
            Self::Commerce7Unavailable => "Libero couldn't reach Commerce7. Try again in a minute.",
            Self::NotInstalled => {
                "Ask an account owner to install Libero from the Commerce7 App Store, then open it again from the admin."
            }
            Self::CrossSite => "This action can only be taken from Libero itself. Go back to Libero and try again.",
            Self::DatabaseUnavailable => "Something on our side isn't answering. Try again in a minute.",
            Self::TooManyAttempts => {
                "Libero received too many sign-in attempts from your network. Wait a minute, then open it again."
            }
            Self::FormNotRead => "Nothing was changed. Go back to Libero, reload the page and try again.",
        })
    }
}

/// A whole server-rendered page (brand header, main column) around `content`, answered with
/// `status`, `Cache-Control: no-store` and `Referrer-Policy: no-referrer` (these pages are
/// served at addresses that may carry an account token or a handoff code). `script` adds the tab
/// bootstrap to `<head>`.
fn server_page<V: IntoView + 'static>(
    status: StatusCode,
    title: &str,
    script: bool,
    content: impl FnOnce() -> V,
) -> Response {
    let title = format!("{title} · Libero");
    let frame_script = PageSettings::current().frame_script;
    let html = Owner::new().with(|| {
        view! {
            <!DOCTYPE html>
            <html lang="en">
                <head>
                    <HeadBasics stylesheet=stylesheet_href()/>
                    <title>{title}</title>
                    {script.then(|| view! { <script inner_html=BOOTSTRAP_SCRIPT></script> })}
                    <FrameScript src=frame_script.map(|src| src.to_string())/>
                </head>
                // No theme class: the system's, until the tab's script knows the admin's.
                <body>
                    <BrandHeader/>
                    <main id="content" class="content">{content()}</main>
                </body>
            </html>
        }
        .to_html()
    });
    let no_referrer = [(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"))];
    (status, no_store(), no_referrer, Html(html)).into_response()
}

/// The page for `kind`, with its status and `Cache-Control: no-store` (and `Retry-After` when
/// Commerce7 is busy). A failed sign-in is answered at `/app?…&account=…`: its subresources must
/// not carry that URL in a Referer. With `SUPPORT_URL` set the page links to the support docs (in
/// a new window: they need not allow framing, and the link sends no Referer).
pub fn error_page(kind: ErrorKind) -> Response {
    let support_url = PageSettings::current().support_url;
    let mut response = server_page(kind.status(), kind.title(), false, || {
        view! {
            <section class="card narrow" role="alert">
                <h1>{kind.title()}</h1>
                <p>{kind.message()}</p>
                {support_url.map(|url| view! {
                    <p class="support">
                        "Need help? "
                        <a id="support" href=url.to_string() target="_blank" rel="noopener noreferrer">
                            "Read Libero's support docs"
                        </a>
                    </p>
                })}
                <p><a class="button secondary" href="/">"Go to the start page"</a></p>
            </section>
        }
    });
    if let ErrorKind::Commerce7Busy { retry_after } = kind {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    }
    response
}

/// Why a signed-in page found no session, as far as the server can tell. The page's script
/// refines it in the browser (storage blocked, resuming the tab's session, ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoSession {
    /// A session credential was presented and is no longer valid.
    Ended,
    /// None was presented (a frame reload in a browser that keeps no cookie, or a bookmark).
    Missing,
}

impl NoSession {
    fn as_str(self) -> &'static str {
        match self {
            Self::Ended => "ended",
            Self::Missing => "missing",
        }
    }
}

/// The page a signed-in address shows when there is no session: never the public landing page
/// inside the admin. It explains what happened in the merchant's words and offers the way back
/// to the Commerce7 admin; its script (`src/tab.js`) first resumes the tab's own session when
/// the tab still holds one. `no-store`, and no `Referer` leaves it. The way back (`#reopen`)
/// carries `FRAME_ANCESTORS` in `data-frame-ancestors`: the script shows it only in a frame whose
/// top-level origin that list (`FRAME_ANCESTORS`, `ancestors`) allows.
pub fn no_session_page(reason: NoSession, status: StatusCode, ancestors: &[String]) -> Response {
    let ancestors = ancestors.join(" ");
    let hide_unless = move |when: &'static str| !when.split(' ').any(|w| w == reason.as_str());
    server_page(status, "Your Libero session", true, move || {
        view! {
            <section class="card narrow" id="no-session" data-reason=reason.as_str() role="alert">
                <h1 data-when="ended" hidden=hide_unless("ended")>"Your Libero session has ended"</h1>
                <p data-when="ended" hidden=hide_unless("ended")>
                    "You were signed out — here, in another tab, or by your winery's admin — or the "
                    "session expired."
                </p>
                <h1 data-when="missing" hidden=hide_unless("missing")>"Libero needs you to sign in again"</h1>
                <p data-when="missing" hidden=hide_unless("missing")>
                    "This window has no Libero session any more."
                </p>
                <h1 data-when="blocked" hidden=true>"Your browser is blocking Libero's storage"</h1>
                <p data-when="blocked" hidden=true>
                    "Libero keeps your sign-in for this tab in the browser's storage, and this browser "
                    "blocks it inside the Commerce7 admin. Allow cookies and site data for Libero in "
                    "your browser's settings (or turn off the blocking for this site), then open "
                    "Libero again. Until then it works until you reload the page."
                </p>
                <h1 data-when="other" hidden=true>"This tab belongs to another winery"</h1>
                <p data-when="other" hidden=true>
                    "This tab was opened for " <strong data-tab-tenant="">"your winery"</strong>
                    ", but Libero's session in this browser now belongs to another winery (opened in "
                    "another tab). To keep your wineries apart, Libero shows nothing here."
                </p>
                <h1 data-when="resuming" hidden=true>"Reconnecting…"</h1>
                <p data-when="resuming" hidden=true aria-busy="true">"Restoring your Libero session for this tab."</p>
                <h1 data-when="unavailable" hidden=true>"Libero couldn't reconnect"</h1>
                <p data-when="unavailable" hidden=true>
                    "Libero isn't answering right now. Wait a moment, then reload to try again."
                </p>
                <p data-when="ended missing blocked unavailable other" hidden=hide_unless("ended missing blocked unavailable other")>
                    "Open Libero again from the Apps menu of your Commerce7 admin."
                </p>
                <p data-when="ended missing blocked unavailable other" hidden=hide_unless("ended missing blocked unavailable other")>
                    <a class="button" id="reopen" href="/" target="_top" data-frame-ancestors=ancestors hidden=true>
                        "Reopen Libero from Commerce7"
                    </a>
                </p>
            </section>
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    const ALL_KINDS: [ErrorKind; 11] = [
        ErrorKind::BadSignInLink,
        ErrorKind::Commerce7Refused,
        ErrorKind::Commerce7Busy { retry_after: 17 },
        ErrorKind::Commerce7Rejected,
        ErrorKind::Commerce7Unavailable,
        ErrorKind::NotInstalled,
        ErrorKind::CrossSite,
        ErrorKind::DatabaseUnavailable,
        ErrorKind::TooManyAttempts,
        ErrorKind::FormNotRead,
        ErrorKind::Commerce7Busy { retry_after: 1 },
    ];

    fn with_support(url: Option<&str>) -> PageSettings {
        PageSettings { support_url: url.map(Arc::from), frame_script: None }
    }

    #[tokio::test]
    async fn every_error_page_links_the_support_docs_when_set_and_only_then() {
        let url = "https://help.example.com/libero?topic=sign-in&lang=en";
        for kind in ALL_KINDS {
            let page = PAGE_SETTINGS.scope(with_support(Some(url)), async { body(error_page(kind)).await }).await;
            let link =
                page.split("<a ").find(|a| a.contains(r#"id="support""#)).unwrap_or_else(|| panic!("{kind:?}: {page}"));
            assert!(link.contains(r#"href="https://help.example.com/libero?topic=sign-in&amp;lang=en""#), "{link}");
            assert!(link.contains(r#"target="_blank""#) && link.contains(r#"rel="noopener noreferrer""#), "{link}");

            let unset = PAGE_SETTINGS.scope(with_support(None), async { body(error_page(kind)).await }).await;
            let outside = body(error_page(kind)).await;
            for page in [unset, outside] {
                assert!(!page.contains(r#"id="support""#) && !page.contains("support docs"), "{kind:?}: {page}");
                assert!(page.contains(kind.title().split('\'').next().unwrap()), "{kind:?}: {page}");
            }
        }
    }

    #[tokio::test]
    async fn commerce7s_answers_get_their_own_status_words_and_retry_after() {
        let busy = error_page(ErrorKind::Commerce7Busy { retry_after: 17 });
        assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(busy.headers()[header::RETRY_AFTER], "17");
        assert_eq!(busy.headers()[header::CACHE_CONTROL], "no-store");
        let page = body(busy).await;
        assert!(page.contains("<title>Commerce7 is busy · Libero</title>"), "{page}");
        assert!(page.contains("Commerce7 is busy, try again in 17 seconds."), "{page}");
        let one = body(error_page(ErrorKind::Commerce7Busy { retry_after: 1 })).await;
        assert!(one.contains("try again in 1 second."), "{one}");

        let rejected = error_page(ErrorKind::Commerce7Rejected);
        assert_eq!(rejected.status(), StatusCode::BAD_REQUEST);
        assert!(rejected.headers().get(header::RETRY_AFTER).is_none());
        let page = body(rejected).await;
        assert!(page.contains("<title>Commerce7 did not accept this link · Libero</title>"), "{page}");
        assert!(page.contains("reopen Libero from Commerce7"), "{page}");

        assert_eq!(error_page(ErrorKind::Commerce7Refused).status(), StatusCode::UNAUTHORIZED);
        assert_eq!(error_page(ErrorKind::Commerce7Unavailable).status(), StatusCode::SERVICE_UNAVAILABLE);
        for kind in ALL_KINDS.into_iter().filter(|k| !matches!(k, ErrorKind::Commerce7Busy { .. })) {
            assert!(
                error_page(kind).headers().get(header::RETRY_AFTER).is_none(),
                "{kind:?}: set by its caller or none"
            );
        }
    }

    #[tokio::test]
    async fn the_layer_gives_each_apps_requests_its_own_settings() {
        use tower::{Layer, Service, ServiceExt};
        let page =
            tower::service_fn(|_: ()| async { Ok::<_, std::convert::Infallible>(error_page(ErrorKind::CrossSite)) });
        let mut with = PageSettingsLayer { settings: with_support(Some("https://example.com/help")) }.layer(page);
        let mut without = PageSettingsLayer { settings: PageSettings::default() }.layer(page);
        for _ in 0..2 {
            let a = with.ready().await.unwrap().call(()).await.unwrap();
            let b = without.ready().await.unwrap().call(()).await.unwrap();
            assert!(body(a).await.contains(r#"href="https://example.com/help""#));
            assert!(!body(b).await.contains(r#"id="support""#));
        }
        let outside = body(error_page(ErrorKind::CrossSite)).await;
        assert!(!outside.contains(r#"id="support""#), "nothing leaks out of a request's scope");
    }

    #[tokio::test]
    async fn the_no_session_page_names_the_allowed_origins_on_its_hidden_way_back() {
        let ancestors = ["https://*.commerce7.com".to_owned(), "http://localhost:4010".to_owned()];
        let page = body(no_session_page(NoSession::Missing, StatusCode::OK, &ancestors)).await;
        let link = page.split("<a ").find(|a| a.contains(r#"id="reopen""#)).expect("the way back");
        assert!(link.contains(r#"data-frame-ancestors="https://*.commerce7.com http://localhost:4010""#), "{link}");
        assert!(link.contains(r#"href="/""#) && link.contains("hidden"), "{link}");
    }

    #[tokio::test]
    async fn the_allowed_origins_are_escaped_in_the_page() {
        let page =
            body(no_session_page(NoSession::Ended, StatusCode::UNAUTHORIZED, &[r#"x" onclick="y"#.to_owned()])).await;
        assert!(!page.contains(r#"x" onclick"#), "{page}");
        assert!(page.contains(r#"data-frame-ancestors="x&quot; onclick=&quot;y""#), "{page}");
    }
}
