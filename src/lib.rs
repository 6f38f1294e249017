//! Libero: a Commerce7 merchant app (Leptos SSR with hydration) with database-backed sessions.

pub mod api;
pub mod app;
pub mod codec;
pub mod error;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;
pub mod tab;

/// The browser entry point: hydrates the server-rendered page — once the code of its route is
/// there, when that route is lazily loaded (`#[lazy_route]`: the settings and landing pages).
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    std::panic::set_hook(Box::new(on_panic));
    leptos::mount::hydrate_lazy(app::App);
}

/// Logs a panic to the console; when it is a lazily loaded route whose code could not be fetched
/// (the network dropped, or a new release replaced the files), also reloads the page. wasm-split
/// panics on such a failure, which would leave the app stopped halfway into the navigation; the
/// reloaded page is the server's, with fresh code, and the merchant can open the route again. A
/// page that was itself loaded by a reload stays as it is (the server-rendered pages work
/// without the wasm), so a failure that persists never loops.
#[cfg(feature = "hydrate")]
fn on_panic(info: &std::panic::PanicHookInfo) {
    use wasm_bindgen::JsCast;

    console_error_panic_hook::hook(info);
    if !info.payload_as_str().is_some_and(|message| message.contains("load callback should succeed")) {
        return;
    }
    let Some(window) = web_sys::window() else { return };
    let reloaded = window
        .performance()
        .and_then(|performance| performance.get_entries_by_type("navigation").get(0).dyn_into().ok())
        .is_some_and(|entry: web_sys::PerformanceNavigationTiming| entry.type_() == web_sys::NavigationType::Reload);
    if !reloaded {
        let _ = window.location().reload();
    }
}
