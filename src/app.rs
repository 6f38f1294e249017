//! The HTML shell and the route table shared by the server renderer and the browser.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::{
    Lazy, SsrMode,
    components::{Route, Router, Routes},
    path,
};

use crate::document::{FrameScript, HeadBasics};
use crate::pages::{
    dashboard::Dashboard, landing::LandingRoute, not_found::NotFound, reports::SessionsReportPage,
    settings::SettingsRoute,
};

/// The `<body>` class: the Commerce7 admin's theme for signed-in pages, light otherwise.
fn body_class() -> &'static str {
    #[cfg(feature = "ssr")]
    {
        use crate::server::sessions::{CurrentSession, Theme};
        let theme = with_context::<http::request::Parts, _>(|parts| {
            parts.extensions.get::<CurrentSession>().map(|s| s.auth.theme)
        })
        .flatten();
        if theme == Some(Theme::Dark) {
            return "theme-dark";
        }
    }
    "theme-light"
}

/// On a page rendered with a session: the tab token for this tab, and the script that keeps it
/// (`src/tab.js`). Both only in this `no-store` page.
#[cfg(feature = "ssr")]
fn tab_bootstrap() -> Option<AnyView> {
    use crate::server::sessions::TabBootstrap;
    let (tab, path) = with_context::<http::request::Parts, _>(|parts| {
        Some((parts.extensions.get::<TabBootstrap>().cloned()?, parts.uri.path().to_owned()))
    })??;
    // The page's forms carry the token too (`tab::form_token`).
    provide_context(crate::tab::FormToken(tab.token.clone()));
    // The dashboard, where every visit starts, names the settings page's code (a lazily loaded
    // chunk) for the browser to prefetch once the page is interactive (`AppFrame`): opening
    // Settings then finds it in the HTTP cache. Not a `<link rel="prefetch">` here: Chromium
    // would start it while the main module downloads, and they would share the link.
    let prefetch = (path == "/app").then(crate::server::delivery::settings_chunk_hrefs).unwrap_or_default();
    Some(
        view! {
            <meta
                name="libero-tab"
                content=tab.token
                data-tenant=tab.tenant_id
                data-theme=tab.theme.as_str()
                data-expires-in=tab.expires_in.to_string()
                data-via=tab.via.as_str()
            />
            <script inner_html=crate::document::BOOTSTRAP_SCRIPT></script>
            {tab.without_script.map(|url| view! {
                <noscript><meta http-equiv="refresh" content=format!("0; url={url}")/></noscript>
            })}
            {(!prefetch.is_empty()).then(|| view! { <meta name="libero-prefetch" content=prefetch.join(" ")/> })}
        }
        .into_any(),
    )
}

/// The shell is rendered on the server only.
#[cfg(not(feature = "ssr"))]
fn tab_bootstrap() -> Option<AnyView> {
    None
}

/// Commerce7's frame script (`COMMERCE7_FRAME_SCRIPT`) and the stylesheet's hashed name, as the
/// server resolved them at start-up (the same as its own error pages: Leptos'
/// `HashedStylesheet` would read the hash file on every render).
#[cfg(feature = "ssr")]
fn head_settings() -> (&'static str, Option<String>) {
    let frame_script =
        use_context::<crate::server::state::AppState>().and_then(|s| s.config.commerce7_frame_script.clone());
    (crate::server::delivery::stylesheet_href(), frame_script)
}

/// The shell is rendered on the server only.
#[cfg(not(feature = "ssr"))]
fn head_settings() -> (&'static str, Option<String>) {
    ("", None)
}

/// The document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    let (stylesheet, frame_script) = head_settings();
    // Before the body: it provides the token the page's forms carry.
    let bootstrap = tab_bootstrap();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <HeadBasics stylesheet/>
                {bootstrap}
                <FrameScript src=frame_script/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body class=body_class()>
                <App/>
            </body>
        </html>
    }
}

/// The application: routes and the layout they share.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();

    view! {
        <Title formatter=|page: String| if page.is_empty() { "Libero".to_owned() } else { format!("{page} · Libero") }/>
        <Router>
            <Routes fallback=|| view! { <NotFound/> }>
                <Route path=path!("/") view={Lazy::<LandingRoute>::new()}/>
                // Fully rendered before sending: the pages work before (and without) hydration.
                <Route path=path!("/app") view=Dashboard ssr=SsrMode::Async/>
                <Route path=path!("/settings") view={Lazy::<SettingsRoute>::new()} ssr=SsrMode::Async/>
                <Route path=path!("/reports/sessions") view=SessionsReportPage ssr=SsrMode::Async/>
            </Routes>
        </Router>
    }
}
