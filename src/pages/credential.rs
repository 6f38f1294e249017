//! What a signed-in page does with the tab's credential ([`crate::tab`]): keeps it fresh, adopts
//! a fresh one, signs out with it, and notices when its session has ended.

#[cfg(feature = "hydrate")]
use crate::tab::{StoredTab, browser};

/// Keeps this tab's token fresh while the page lives: renews it through the server a few
/// minutes before it expires, again and again. Calling it again (every signed-in page does)
/// changes nothing. A refused renewal means the session has ended: the credential is marked dead,
/// the next call is answered 401 and the page says so.
pub fn keep_fresh() {
    #[cfg(feature = "hydrate")]
    {
        thread_local! {
            static STARTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }
        if !STARTED.replace(true) {
            schedule_renewal();
        }
    }
}

#[cfg(feature = "hydrate")]
fn schedule_renewal() {
    use leptos::prelude::*;
    let Some(tab) = browser::current() else { return };
    let wait = std::time::Duration::from_millis(browser::renew_in_ms(&tab) as u64);
    set_timeout(
        move || {
            leptos::task::spawn_local(async move {
                match crate::api::tab::renew_tab_token().await {
                    Ok(renewed) => {
                        adopt(renewed);
                        schedule_renewal();
                    }
                    // The session has ended: say so now, not at the merchant's next click.
                    Err(crate::error::AppError::Unauthorized) => session_ended(),
                    // Offline or a server hiccup: try again in a minute (the token is still valid).
                    Err(_) => set_timeout(schedule_renewal, std::time::Duration::from_secs(60)),
                }
            });
        },
        wait,
    );
}

/// Makes `renewed` this tab's credential (a renewal, or the fresh token *Sign out all other
/// sessions* hands the tab that asked).
pub fn adopt(renewed: crate::api::tab::RenewedTab) {
    #[cfg(feature = "hydrate")]
    browser::store(StoredTab {
        expires_at: browser::now_ms() + renewed.expires_in as f64 * 1000.0,
        token: renewed.token,
        tenant: renewed.tenant,
        theme: Some(renewed.theme),
        dead: false,
    });
    #[cfg(not(feature = "hydrate"))]
    let _ = renewed;
}

/// Signs this tab out with its own credential (once hydrated). `false` when the plain form post
/// should go ahead instead: the tab has no credential, or the server already refused it (the
/// form's `tab` field still names the session to end, and `POST /logout` falls back to the
/// cookie's). `true` when it took over the submit; then it either leaves for `/` signed out,
/// or — the server refused this credential (401) — posts the plain form after all, or — the
/// server or the network failed — keeps the credential and calls `failed` with what to tell the
/// merchant, so that a second press tries again. It never reports a sign-out that did not happen.
pub fn sign_out_tab(form: &leptos::web_sys::HtmlFormElement, failed: impl FnOnce(String) + 'static) -> bool {
    #[cfg(feature = "hydrate")]
    {
        use leptos::prelude::*;
        let Some(tab) = browser::credential() else {
            return false;
        };
        if tab.dead {
            browser::forget();
            return false;
        }
        let form = form.clone();
        leptos::task::spawn_local(async move {
            match crate::api::tab::logout().await {
                Ok(()) => {
                    browser::forget();
                    // The tab's tenant hint too (see src/tab.js): this tab has no winery any more.
                    let _ = window().set_name("");
                    let _ = window().location().replace("/");
                }
                Err(crate::error::AppError::Unauthorized) => {
                    // This credential names no session any more: the plain form ends the one its
                    // field names, else the cookie's.
                    browser::forget();
                    let _ = window().set_name("");
                    let _ = form.submit();
                }
                Err(error) => {
                    leptos::logging::warn!("sign-out failed: {error}");
                    failed(error.to_string());
                }
            }
        });
        true
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (form, failed);
        false
    }
}

/// A server function said 401: this tab's session has ended. Remember it, and reload the
/// address: the server then renders the page for a valid cookie of the same winery, or the
/// "no session" page, which says the session ended.
pub fn session_ended() {
    #[cfg(feature = "hydrate")]
    {
        use leptos::prelude::*;
        browser::mark_dead();
        let location = window().location();
        let path = location.pathname().unwrap_or_else(|_| "/app".to_owned());
        let _ = location.replace(&path);
    }
}
