//! Libero: a Commerce7 merchant app (Leptos SSR with hydration) with database-backed sessions.

pub mod api;
pub mod app;
pub mod codec;
pub mod error;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod server;
pub mod tab;

/// The browser entry point: hydrates the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
}
