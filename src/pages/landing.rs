//! `/`: what Libero is, and how to open it.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::{LazyRoute, lazy_route};

use super::layout::Page;

/// The `/` route. Merchants arrive at `/app` from the Commerce7 admin, not here: the landing
/// page's code is a wasm chunk of its own (`cargo leptos --split`), loaded only by a visit to `/`,
/// so the dashboard's download does not carry it.
pub struct LandingRoute;

#[lazy_route]
impl LazyRoute for LandingRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <Landing/> }.into_any()
    }
}

/// The public landing page.
#[component]
fn Landing() -> impl IntoView {
    let (details_open, set_details_open) = signal(false);

    view! {
        <Title text="Welcome"/>
        <Page>
            <section class="hero">
                <h1>"Libero for Commerce7"</h1>
                <p class="lead">
                    "Club insights and merchant settings for your winery, right inside the Commerce7 admin."
                </p>
                <div class="callout" role="note">
                    <strong>"Open Libero from your Commerce7 admin."</strong>
                    " Install it from the Commerce7 App Store, then choose Libero in the admin's Apps menu. "
                    "You are signed in automatically; there is no separate password."
                </div>
            </section>

            <section class="card">
                <h2>"How signing in works"</h2>
                <button
                    type="button"
                    class="button secondary"
                    id="how-it-works-toggle"
                    aria-expanded=move || details_open.get().to_string()
                    aria-controls="how-it-works"
                    on:click=move |_| set_details_open.update(|open| *open = !*open)
                >
                    {move || if details_open.get() { "Hide the details" } else { "Show the details" }}
                </button>
                <div id="how-it-works" class="details" hidden=move || !details_open.get()>
                    <ol>
                        <li>"Commerce7 opens Libero with a short-lived account token."</li>
                        <li>"Libero checks that token with Commerce7 once."</li>
                        <li>
                            "You get a secure, signed session for a limited time (set by your operator); "
                            "every next page needs no further call to Commerce7, so it opens fast."
                        </li>
                        <li>"Signing out, or uninstalling the app, ends the session at once."</li>
                    </ol>
                </div>
            </section>
        </Page>
    }
}
