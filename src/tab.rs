//! The tab's own session credential, on the browser side.
//!
//! A cookie is one per browser (and some browsers keep none inside the Commerce7 iframe), so
//! each tab also holds a *tab token* (see `server::sessions::tab`): the signed-in page hands it
//! over in `<meta name="libero-tab">`, the bootstrap script (`src/tab.js`) keeps it in
//! the tab's `sessionStorage`, and [`TabClient`] sends it as `Authorization: Bearer` on every
//! server-function call. What a signed-in page does with it (renew, adopt, sign out) is in
//! `pages::credential`.

use futures::{Sink, Stream};
use leptos::server_fn::{
    Bytes,
    client::{Client, browser::BrowserClient},
    error::FromServerFnError,
    request::browser::BrowserRequest,
    response::browser::BrowserResponse,
};

/// The `sessionStorage` key the bootstrap script and the app share.
pub const STORAGE_KEY: &str = "libero.tab";

/// The server-function client of every signed-in call: the browser's `fetch`, with this tab's
/// token in `Authorization: Bearer` when the tab has one. (On the server it is never used to
/// send; it only names the client type.)
pub struct TabClient;

impl<E, IS, OS> Client<E, IS, OS> for TabClient
where
    E: FromServerFnError,
    IS: FromServerFnError,
    OS: FromServerFnError,
{
    type Request = BrowserRequest;
    type Response = BrowserResponse;

    fn send(req: Self::Request) -> impl Future<Output = Result<Self::Response, E>> + Send {
        // Once the tab has a credential it always sends it — even one the server refused before
        // (then the answer is 401 again): never a call decided by a cookie that may be another
        // winery's.
        #[cfg(feature = "hydrate")]
        if let Some(tab) = browser::credential() {
            req.headers().set("Authorization", &format!("Bearer {}", tab.token));
        }
        <BrowserClient as Client<E, IS, OS>>::send(req)
    }

    fn open_websocket(
        path: &str,
    ) -> impl Future<
        Output = Result<
            (impl Stream<Item = Result<Bytes, Bytes>> + Send + 'static, impl Sink<Bytes> + Send + 'static),
            E,
        >,
    > + Send {
        <BrowserClient as Client<E, IS, OS>>::open_websocket(path)
    }

    fn spawn(future: impl Future<Output = ()> + Send + 'static) {
        <BrowserClient as Client<E, IS, OS>>::spawn(future)
    }
}

/// This tab's credential as the bootstrap script stores it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredTab {
    /// The tab token.
    pub token: String,
    /// The tenant it is for.
    pub tenant: String,
    /// `light` or `dark`.
    pub theme: Option<String>,
    /// When it expires, in milliseconds of the browser's clock.
    pub expires_at: f64,
    /// Set when the server refused it: the tab's session has ended.
    #[serde(default)]
    pub dead: bool,
}

/// What the app does with the tab's credential in the browser (hydrated builds only).
#[cfg(feature = "hydrate")]
pub mod browser {
    use std::cell::RefCell;

    use leptos::prelude::*;
    use wasm_bindgen::JsCast;

    use super::{STORAGE_KEY, StoredTab};

    thread_local! {
        /// The credential in memory: the only copy when the browser blocks storage.
        static CURRENT: RefCell<Option<StoredTab>> = const { RefCell::new(None) };
    }

    fn storage() -> Option<web_sys::Storage> {
        window().session_storage().ok().flatten()
    }

    fn from_storage() -> Option<StoredTab> {
        let raw = storage()?.get_item(STORAGE_KEY).ok()??;
        serde_json::from_str(&raw).ok()
    }

    fn from_page() -> Option<StoredTab> {
        let meta = document().query_selector("meta[name=\"libero-tab\"]").ok()??;
        let meta: web_sys::HtmlMetaElement = meta.dyn_into().ok()?;
        // Whole seconds, as the server writes them (no float parser in the wasm for this one number).
        let expires_in: u32 = meta.get_attribute("data-expires-in")?.parse().ok()?;
        Some(StoredTab {
            token: meta.content(),
            tenant: meta.get_attribute("data-tenant")?,
            theme: meta.get_attribute("data-theme"),
            expires_at: now_ms() + f64::from(expires_in) * 1000.0,
            dead: false,
        })
    }

    /// The tab's credential, live or refused: memory, else storage (where the bootstrap script
    /// put the page's token), else the page itself (storage blocked).
    pub fn credential() -> Option<StoredTab> {
        let known = CURRENT.with_borrow(Clone::clone);
        let tab = known.or_else(from_storage).or_else(from_page)?;
        CURRENT.with_borrow_mut(|slot| *slot = Some(tab.clone()));
        Some(tab)
    }

    /// The tab's credential while the server has not refused it.
    pub fn current() -> Option<StoredTab> {
        credential().filter(|tab| !tab.dead)
    }

    /// Replaces the credential (after a renewal).
    pub fn store(tab: StoredTab) {
        if let (Some(storage), Ok(json)) = (storage(), serde_json::to_string(&tab)) {
            let _ = storage.set_item(STORAGE_KEY, &json);
        }
        CURRENT.with_borrow_mut(|slot| *slot = Some(tab));
    }

    /// The server refused the credential: remember that this tab's session has ended (the
    /// reloaded page then says so instead of trying it again).
    pub fn mark_dead() {
        let tab = CURRENT.with_borrow(Clone::clone).or_else(from_storage);
        if let Some(mut tab) = tab {
            tab.dead = true;
            store(tab);
        }
    }

    /// Signed out in this tab: forget the credential.
    pub fn forget() {
        if let Some(storage) = storage() {
            let _ = storage.remove_item(STORAGE_KEY);
        }
        CURRENT.with_borrow_mut(|slot| *slot = None);
    }

    /// Milliseconds until the credential should be renewed: a third of its lifetime before it
    /// expires (five minutes of a fifteen-minute token), at least ten seconds from now.
    pub fn renew_in_ms(tab: &StoredTab) -> f64 {
        const MARGIN_MS: f64 = 5.0 * 60.0 * 1000.0;
        (tab.expires_at - MARGIN_MS - now_ms()).max(10_000.0)
    }

    /// Milliseconds since the epoch by the browser's clock (the bootstrap script's `Date.now()`).
    pub fn now_ms() -> f64 {
        js_sys::Date::now()
    }
}

/// The tab token a signed-in page hands over, in the page's context for its forms (the shell
/// provides it on the server).
#[derive(Clone)]
pub struct FormToken(pub String);

/// The tab token for the plain forms (field `tab`), so that even before hydration *Sign out* and
/// every server-function form act on this tab's session and not on the cookie's, which may be
/// another winery's tab's. On the server: the token this page hands over; in the browser: the
/// tab's credential.
pub fn form_token() -> String {
    #[cfg(feature = "ssr")]
    {
        use leptos::prelude::use_context;
        return use_context::<FormToken>().map(|FormToken(token)| token).unwrap_or_default();
    }
    #[cfg(all(feature = "hydrate", not(feature = "ssr")))]
    {
        return browser::credential().map(|tab| tab.token).unwrap_or_default();
    }
    #[allow(unreachable_code)]
    String::new()
}
