//! The 404 page.

use leptos::prelude::*;
use leptos_meta::Title;

use super::layout::Page;

/// Shown for any path that is not a page; answers HTTP 404 during SSR.
#[component]
pub fn NotFound() -> impl IntoView {
    #[cfg(feature = "ssr")]
    {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(http::StatusCode::NOT_FOUND);
        }
    }

    view! {
        <Title text="Page not found"/>
        <Page>
            <section class="card narrow">
                <h1>"Page not found"</h1>
                <p>"There is nothing at this address. If you followed a link inside Commerce7, open Libero again from the admin's Apps menu."</p>
                <p><a class="button" href="/">"Go to the start page"</a></p>
            </section>
        </Page>
    }
}
