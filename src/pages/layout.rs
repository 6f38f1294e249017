//! The frame every page shares: a header with the brand and a main column; how pages write times.

use leptos::prelude::*;

use crate::document::BrandHeader;

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

/// `2024-05-01T10:02:33Z` → `2024-05-01 10:02:33 UTC`: how the pages write a time.
pub fn readable(rfc3339: &str) -> String {
    rfc3339.replacen('T', " ", 1).replace('Z', " UTC")
}
