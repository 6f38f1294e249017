//! Full HTML error pages answered by middleware (before any Leptos route runs): the sign-in
//! failures, a refused cross-site request, "database unavailable", and the "no session" page a
//! framed signed-in page shows instead when it has no session.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Response},
};

use leptos::prelude::*;

use super::delivery::stylesheet_href;
use crate::pages::layout::BrandHeader;

/// The situations a merchant can meet outside the normal pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The iframe URL lacks `tenantId`/`account`, or they are malformed.
    BadSignInLink,
    /// Commerce7 refused the account token (401).
    Commerce7Refused,
    /// Commerce7 is down or too slow (503).
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
            Self::BadSignInLink | Self::FormNotRead => StatusCode::BAD_REQUEST,
            Self::Commerce7Refused => StatusCode::UNAUTHORIZED,
            Self::Commerce7Unavailable | Self::DatabaseUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotInstalled | Self::CrossSite => StatusCode::FORBIDDEN,
            Self::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::BadSignInLink => "This link is incomplete",
            Self::Commerce7Refused => "Commerce7 didn't recognise you",
            Self::Commerce7Unavailable => "Libero couldn't reach Commerce7",
            Self::NotInstalled => "Libero isn't installed for this winery",
            Self::CrossSite => "Request refused",
            Self::DatabaseUnavailable => "Libero is temporarily unavailable",
            Self::TooManyAttempts => "Too many sign-in attempts",
            Self::FormNotRead => "This form could not be read",
        }
    }

    fn message(self) -> &'static str {
        match self {
            Self::BadSignInLink => "Open Libero from the Apps menu of your Commerce7 admin so that it can sign you in.",
            Self::Commerce7Refused => {
                "Your Commerce7 sign-in could not be confirmed for this winery. Reload the Commerce7 admin and open Libero again; if it keeps happening, ask your account owner to check your access."
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
        }
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
    let html = Owner::new().with(|| {
        view! {
            <!DOCTYPE html>
            <html lang="en">
                <head>
                    <meta charset="utf-8"/>
                    <meta name="viewport" content="width=device-width, initial-scale=1"/>
                    <meta name="color-scheme" content="light dark"/>
                    <title>{title}</title>
                    <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                    <link rel="stylesheet" href=stylesheet_href()/>
                    {script.then(|| view! { <script inner_html=crate::tab::BOOTSTRAP_SCRIPT></script> })}
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
    let mut response = (status, Html(html)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The page for `kind`, with its status and `Cache-Control: no-store`. A failed sign-in is
/// answered at `/app?…&account=…`: its subresources must not carry that URL in a Referer.
pub fn error_page(kind: ErrorKind) -> Response {
    server_page(kind.status(), kind.title(), false, || {
        view! {
            <section class="card narrow" role="alert">
                <h1>{kind.title()}</h1>
                <p>{kind.message()}</p>
                <p><a class="button secondary" href="/">"Go to the start page"</a></p>
            </section>
        }
    })
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
/// to the Commerce7 admin; its script (`pages/tab.js`) first resumes the tab's own session when
/// the tab still holds one. `no-store`, and no `Referer` leaves it. The way back (`#reopen`)
/// carries `FRAME_ANCESTORS` in `data-frame-ancestors`: the script shows it only in a frame whose
/// top-level origin that list (`FRAME_ANCESTORS`, `ancestors`) allows.
pub fn no_session_page(reason: NoSession, status: StatusCode, ancestors: &[String]) -> Response {
    no_session_page_framed_by(reason, status, &ancestors.join(" "))
}

/// [`no_session_page`] for the origins `ancestors` (space separated).
fn no_session_page_framed_by(reason: NoSession, status: StatusCode, ancestors: &str) -> Response {
    let ancestors = ancestors.to_owned();
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
            body(no_session_page_framed_by(NoSession::Ended, StatusCode::UNAUTHORIZED, r#"x" onclick="y"#)).await;
        assert!(!page.contains(r#"x" onclick"#), "{page}");
        assert!(page.contains(r#"data-frame-ancestors="x&quot; onclick=&quot;y""#), "{page}");
    }
}
