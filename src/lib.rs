//! Libero: a Commerce7 merchant app (Leptos SSR with hydration) with database-backed sessions.

// The signed-in pages' view types nest deep: their children are typed (`TypedChildren`, no
// `AnyView` per child: a smaller wasm), and the server's async render of those types needs more
// than the default 128 levels to lay out.
#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod codec;
pub mod document;
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

/// The message of wasm-split's panic when a lazily loaded chunk could not be fetched: the
/// `expect` in the loader that `wasm_split_macros` 0.2 generates (check it on an upgrade).
#[cfg(feature = "hydrate")]
const CHUNK_LOAD_FAILED: &str = "load callback should succeed";

/// Where the tab notes when it last reloaded for a chunk that failed (milliseconds since epoch).
#[cfg(feature = "hydrate")]
const CHUNK_RELOAD_KEY: &str = "libero.chunk-reload";

/// Logs a panic to the console; when it is a lazily loaded route whose code could not be fetched
/// (the network dropped, or a new release replaced the files), also reloads the page. wasm-split
/// panics on such a failure, which would leave the app stopped halfway into the navigation; the
/// reloaded page is the server's, with fresh code, and the merchant can open the route again.
///
/// At most one such reload per 30 s per tab, so a failure that persists never loops: the tab
/// notes the time in its `sessionStorage`. Where the frame may keep no storage, the page reloads
/// only when it was not itself loaded by a reload (a page that comes back without a session and
/// moves on by itself only happens where storage works). A page left as it is still works: the
/// server-rendered pages and their forms work without the wasm.
#[cfg(feature = "hydrate")]
fn on_panic(info: &std::panic::PanicHookInfo) {
    use wasm_bindgen::JsCast;

    console_error_panic_hook::hook(info);
    if !info.payload_as_str().is_some_and(|message| message.contains(CHUNK_LOAD_FAILED)) {
        return;
    }
    let Some(window) = web_sys::window() else { return };
    let may_reload = match window.session_storage() {
        Ok(Some(storage)) => {
            let now = js_sys::Date::now() as u64;
            let last = storage.get_item(CHUNK_RELOAD_KEY).ok().flatten().and_then(|at| at.parse::<u64>().ok());
            let recent = last.is_some_and(|at| now.saturating_sub(at) < 30_000);
            !recent && storage.set_item(CHUNK_RELOAD_KEY, &now.to_string()).is_ok()
        }
        _ => !window
            .performance()
            .and_then(|performance| performance.get_entries_by_type("navigation").get(0).dyn_into().ok())
            .is_some_and(|entry: web_sys::PerformanceNavigationTiming| {
                entry.type_() == web_sys::NavigationType::Reload
            }),
    };
    if may_reload {
        let _ = window.location().reload();
    }
}
