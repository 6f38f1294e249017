//! The signed-in layout: navigation, sign-out, and what to do when the session has ended.

use leptos::prelude::*;

use super::layout::Page;
use crate::api::AppError;

/// Which page of the signed-in area is showing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `/app`.
    Dashboard,
    /// `/settings`.
    Settings,
    /// `/reports/sessions` (a Report extension, opened from Commerce7's reports: no tab here).
    Report,
}

/// Navigation and sign-out around a signed-in page.
#[component]
pub fn AppFrame<C: IntoView + 'static>(section: Section, children: TypedChildren<C>) -> impl IntoView {
    let children = children.into_inner();
    let (signing_out, set_signing_out) = signal(false);
    // Why the last sign-out did not happen (the server or the network failed), if it did not.
    let (sign_out_failed, set_sign_out_failed) = signal(None::<String>);
    // In the browser: keep the tab token fresh while the merchant works.
    Effect::new(move |_| super::credential::keep_fresh());
    // Once this page is interactive: the code of the pages reached from here, fetched ahead.
    Effect::new(move |_| prefetch_next_pages());
    let current = move |s: Section| if s == section { Some("page") } else { None };

    view! {
        <Page>
            <nav class="nav card" aria-label="Libero">
                <a href="/app" aria-current=current(Section::Dashboard)>"Dashboard"</a>
                <a href="/settings" aria-current=current(Section::Settings)>"Settings"</a>
                <span class="spacer"></span>
                // A plain form POST: signing out works even before (or without) hydration.
                // Once hydrated, the tab signs out its own session with its tab token (the cookie
                // may belong to another winery's tab, or not exist at all).
                <form
                    class="inline-form"
                    method="post"
                    action="/logout"
                    on:submit=move |ev| {
                        if signing_out.get_untracked() {
                            ev.prevent_default();
                            return;
                        }
                        set_signing_out.set(true);
                        set_sign_out_failed.set(None);
                        let Some(form) = ev.target().and_then(super::server_form::as_form) else { return };
                        let failed = move |message: String| {
                            set_sign_out_failed.set(Some(message));
                            set_signing_out.set(false);
                        };
                        if super::credential::sign_out_tab(&form, failed) {
                            ev.prevent_default();
                        }
                    }
                >
                    <input type="hidden" name="tab" value=crate::tab::form_token()/>
                    <button type="submit" class="button secondary" id="logout-button" aria-disabled=move || signing_out.get().to_string()>
                        {move || if signing_out.get() { "Signing out…" } else { "Sign out" }}
                    </button>
                </form>
            </nav>
            {move || sign_out_failed.get().map(|message| view! {
                <p class="notice error" role="alert" id="sign-out-failed">
                    "You are still signed in: " {message}
                </p>
            })}
            {children()}
        </Page>
    }
}

/// Has the browser prefetch the URLs the server named in `<meta name="libero-prefetch">` (the
/// settings page's lazily loaded chunk, on the dashboard), once: the meta tag is removed. Run
/// after hydration, so the prefetch never shares the link with the page's own download; a
/// failed prefetch costs nothing (the route loads its chunk itself when it opens).
#[cfg(feature = "hydrate")]
fn prefetch_next_pages() {
    let document = document();
    let Some(meta) = document.query_selector("meta[name=\"libero-prefetch\"]").ok().flatten() else {
        return;
    };
    meta.remove();
    let (Some(urls), Some(head)) = (meta.get_attribute("content"), document.head()) else {
        return;
    };
    for url in urls.split_ascii_whitespace() {
        if let Ok(link) = document.create_element("link") {
            let _ = link.set_attribute("rel", "prefetch");
            let _ = link.set_attribute("href", url);
            let _ = head.append_child(&link);
        }
    }
}

/// Only the browser prefetches.
#[cfg(not(feature = "hydrate"))]
fn prefetch_next_pages() {}

/// When a server function says the session is gone: the page reloads, and the server shows it
/// for a valid cookie of the same winery or explains that the session ended.
pub fn leave_if_unauthorized(error: &AppError) {
    if matches!(error, AppError::Unauthorized) {
        super::credential::session_ended();
    }
}

/// An error from a server function, in words.
#[component]
pub fn ErrorNotice(error: AppError) -> impl IntoView {
    leave_if_unauthorized(&error);
    view! { <p class="notice error" role="alert">{error.to_string()}</p> }
}
