//! The frame every page shares: a header with the brand and a main column.

use leptos::prelude::*;

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

/// Brand header, main landmark and footer around a page's content.
#[component]
pub fn Page<C: IntoView + 'static>(children: TypedChildren<C>) -> impl IntoView {
    let children = children.into_inner();
    // Effects run only in the browser: the attribute tells people (and tests) the page is live.
    Effect::new(move |_| {
        if let Some(body) = document().body() {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });

    view! {
        <a class="skip-link" href="#content">"Skip to content"</a>
        <BrandHeader/>
        <main id="content" class="content" tabindex="-1">
            {children()}
        </main>
        <footer class="footer">
            <p>"Libero for Commerce7 wineries"</p>
        </footer>
    }
}
