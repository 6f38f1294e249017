//! What every HTML page Libero serves shares, the Leptos shell's and the server's own pages
//! (errors, "no session") alike: the document head, the brand header and the tab's bootstrap
//! script.

use leptos::prelude::*;

/// The inline script of signed-in and "no session" pages (`src/tab.js`), run in `<head>`
/// before the body is shown and long before the wasm has loaded:
///
/// - on a signed-in page (it carries the `libero-tab` meta tag) it removes a handoff code from
///   the address bar and keeps the page's tab token in `sessionStorage` for this tab; when this
///   tab was opened for another winery than the page's (cookie) session belongs to, it hides the
///   page and resumes the tab's own session instead — or, if that session has ended, goes to
///   `/resume`, which says so;
/// - on the "no session" page it resumes the tab's stored session (a fresh handoff code from
///   `/api/resume_tab`, then a reload with it), or says in the merchant's words why there is
///   none, in the admin's theme, with the way back to the Commerce7 admin.
///
/// The token goes only into an `Authorization` header, never a URL; a handoff code is
/// single-use and expires after 60 seconds.
#[cfg(feature = "ssr")]
pub const BOOTSTRAP_SCRIPT: &str = include_str!("tab.js");

/// The head every page starts with: charset, viewport, colour schemes, the icon and the
/// stylesheet under the name the build gave it (`libero.<hash>.css`, as the server resolved it at
/// start-up).
#[component]
pub fn HeadBasics(stylesheet: &'static str) -> impl IntoView {
    view! {
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <meta name="color-scheme" content="light dark"/>
        <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
        <link id="leptos" rel="stylesheet" href=stylesheet/>
    }
}

/// Commerce7's frame script (`COMMERCE7_FRAME_SCRIPT`), `async` so that a page never waits on
/// it: inside the admin it lets the admin size the frame to the page.
#[component]
pub fn FrameScript(src: Option<String>) -> impl IntoView {
    src.map(|src| view! { <script async src=src></script> })
}

/// The top bar with the brand, shared by the pages and the server's error pages.
#[component]
pub fn BrandHeader() -> impl IntoView {
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                // The favicon (public/favicon.svg) is the mark; the name beside it is the text.
                <img class="brand-mark" src="/favicon.svg" alt="" width="28" height="28"/>
                <span class="brand-name">"Libero"</span>
            </a>
        </header>
    }
}
