//! The HTML shell and the route table shared by the server renderer and the browser.

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::{
    Lazy, SsrMode,
    components::{Route, Router, Routes},
    path,
};

use crate::pages::{
    dashboard::Dashboard, landing::LandingRoute, not_found::NotFound, reports::SessionsReportPage,
    settings::SettingsRoute,
};

/// The `<body>` class: the Commerce7 admin's theme for signed-in pages, light otherwise.
fn body_class() -> &'static str {
    #[cfg(feature = "ssr")]
    {
        use crate::server::sessions::{CurrentSession, Theme};
        let theme = use_context::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<CurrentSession>().map(|s| s.auth.theme));
        if theme == Some(Theme::Dark) {
            return "theme-dark";
        }
    }
    "theme-light"
}

/// On a page rendered with a session: the tab token for this tab, and the script that keeps it
/// (`src/pages/tab.js`). Both only in this `no-store` page.
#[cfg(feature = "ssr")]
fn tab_bootstrap() -> Option<AnyView> {
    use crate::server::sessions::TabBootstrap;
    let parts = use_context::<http::request::Parts>()?;
    let tab = parts.extensions.get::<TabBootstrap>().cloned()?;
    // The dashboard, where every visit starts, names the settings page's code (a lazily loaded
    // chunk) for the browser to prefetch once the page is interactive (`AppFrame`): opening
    // Settings then finds it in the HTTP cache. Not a `<link rel="prefetch">` here: Chromium
    // would start it while the main module downloads, and they would share the link.
    let prefetch = (parts.uri.path() == "/app").then(crate::server::delivery::settings_chunk_hrefs).unwrap_or_default();
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
            <script inner_html=crate::tab::BOOTSTRAP_SCRIPT></script>
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

/// Commerce7's frame script (`COMMERCE7_FRAME_SCRIPT`), `async` so that a page never waits on
/// it: inside the admin it lets the admin size the frame to the page.
#[cfg(feature = "ssr")]
fn frame_script() -> Option<impl IntoView> {
    let src = use_context::<crate::server::AppState>()?.config.commerce7_frame_script.clone()?;
    Some(view! { <script async src=src></script> })
}

/// The shell is rendered on the server only.
#[cfg(not(feature = "ssr"))]
fn frame_script() -> Option<()> {
    None
}

/// The stylesheet under the name the build gave it (`libero.<hash>.css`), as the server resolved
/// it at start-up: the same link as its own error pages, and no read of the hash file per page
/// (Leptos' `HashedStylesheet` reads it on every render).
#[cfg(feature = "ssr")]
fn stylesheet() -> impl IntoView {
    view! { <link id="leptos" rel="stylesheet" href=crate::server::delivery::stylesheet_href()/> }
}

/// The shell is rendered on the server only.
#[cfg(not(feature = "ssr"))]
fn stylesheet() -> impl IntoView {}

/// The document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                {stylesheet()}
                {tab_bootstrap()}
                {frame_script()}
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
