//! `/settings`: the merchant's settings form.

use std::collections::BTreeMap;

use leptos::{either::Either, prelude::*};
use leptos_meta::Title;
use leptos_router::{LazyRoute, lazy_route};

use super::{
    app_frame::{AppFrame, ErrorNotice, Section, leave_if_unauthorized},
    server_form::{ServerForm, form_action, text_field},
};
use crate::api::{
    AppError,
    settings::{FromCommerce7, MerchantSettings, SaveSettings, SettingsForm, get_settings},
};

/// The `/settings` route. Its view is a wasm chunk of its own (`cargo leptos --split`): the
/// dashboard, where every visit starts, hydrates without it, then has the browser prefetch the
/// chunk (`app.rs`, `app_frame.rs`), so opening Settings finds it in the HTTP cache; the
/// settings themselves load alongside the chunk, not after it ([`LazyRoute::data`]).
pub struct SettingsRoute {
    loaded: Resource<Result<SettingsForm, AppError>>,
}

#[lazy_route]
impl LazyRoute for SettingsRoute {
    fn data() -> Self {
        Self { loaded: Resource::new(|| (), |_| get_settings()) }
    }

    fn view(this: Self) -> AnyView {
        view! { <Settings loaded=this.loaded/> }.into_any()
    }
}

/// The settings page, over the settings [`SettingsRoute::data`] is loading.
#[component]
fn Settings(loaded: Resource<Result<SettingsForm, AppError>>) -> impl IntoView {
    view! {
        <Title text="Settings"/>
        <AppFrame section=Section::Settings>
            <section class="card" aria-labelledby="settings-title">
                <h1 id="settings-title">"Settings"</h1>
                <Suspense fallback=|| view! { <p aria-busy="true">"Loading your settings…"</p> }>
                    {move || {
                        loaded.get().map(|result| match result {
                            Ok(form) => Either::Left(view! { <SettingsEditor form/> }),
                            Err(error) => Either::Right(view! { <ErrorNotice error/> }),
                        })
                    }}
                </Suspense>
            </section>
        </AppFrame>
    }
}

/// The form, posting to `save_settings`: once hydrated it sends the fields with `fetch` and stays
/// on the page; before (or without) the wasm, the browser posts the same form and is sent back
/// here, where the action's error (from the redirect's query) is shown the same way. The fields
/// are not controlled by signals: the form's own data is what is sent ([`read_form`]).
#[component]
fn SettingsEditor(form: SettingsForm) -> impl IntoView {
    let SettingsForm { settings, version, from_commerce7 } = form;
    let version = RwSignal::new(version);
    let save = form_action::<SaveSettings>();

    // After each answer: keep the new version on success; leave the signed-in area on 401.
    Effect::new(move |_| match save.value().get() {
        Some(Ok(saved)) => version.set(saved.version),
        Some(Err(error)) => leave_if_unauthorized(&error),
        None => {}
    });

    let field_errors = Memo::new(move |_| match save.value().get() {
        Some(Err(AppError::Validation { fields })) => fields,
        _ => BTreeMap::new(),
    });
    let error_for = move |field: &'static str| Signal::derive(move || field_errors.get().get(field).cloned());

    view! {
        <div aria-live="polite">
            {move || match save.value().get() {
                Some(Ok(_)) => Some(Either::Left(view! { <p class="notice ok" role="status">"Settings saved."</p> })),
                Some(Err(error)) => Some(Either::Right(view! { <p class="notice error" role="alert">{error.to_string()}</p> })),
                None => None,
            }}
        </div>
        <ServerForm action=save input=read_form class="form" novalidate=true>
            // The version read with the form: the save is refused (409) if someone saved since.
            <input type="hidden" name="version" value=move || version.get()/>
            <TextField id="org_name" label="Organisation name" kind="text" value=settings.org_name error=error_for("org_name") autocomplete="organization"/>
            <TextField id="contact_name" label="Contact name" kind="text" value=settings.contact_name error=error_for("contact_name") autocomplete="name"/>
            <TextField id="contact_email" label="Contact email" kind="email" value=settings.contact_email error=error_for("contact_email") autocomplete="email"/>
            <div class="field checkbox">
                // Ticked sends `true`; unticked sends nothing, which the server reads as false.
                <input type="checkbox" id="weekly_summary" name="settings[weekly_summary]" value="true" checked=settings.weekly_summary/>
                <label for="weekly_summary">
                    "Send me a weekly summary"
                    <span class="hint">" — club sign-ups and orders, every Monday"</span>
                </label>
            </div>
            <div>
                <button type="submit" class="button" id="save-settings" aria-disabled=move || save.pending().get().to_string() aria-busy=move || save.pending().get().to_string()>
                    {move || if save.pending().get() { "Saving…" } else { "Save settings" }}
                </button>
            </div>
        </ServerForm>
        {from_commerce7.map(|details| view! { <FromCommerce7Details details/> })}
    }
}

/// The organisation's address, website and phone as Commerce7 sent them: read-only, plain text
/// (escaped by Leptos like any text), the website a link only when it is an `http(s)` URL.
#[component]
fn FromCommerce7Details(details: FromCommerce7) -> impl IntoView {
    let FromCommerce7 { address, website, phone } = details;
    const NOT_SENT: &str = "Not provided";
    let address = match address {
        // One line of the address per line of the page.
        Some(address) => Either::Left(
            address
                .lines()
                .enumerate()
                .map(|(index, line)| view! { {(index > 0).then(|| view! { <br/> })}{line.to_owned()} })
                .collect_view(),
        ),
        None => Either::Right(NOT_SENT),
    };
    let website = match website {
        Some(website) => match web_link(&website) {
            Some(href) => Either::Left(view! { <a href=href target="_blank" rel="noopener noreferrer">{website}</a> }),
            None => Either::Right(website),
        },
        None => Either::Right(NOT_SENT.to_owned()),
    };
    view! {
        <section id="from-commerce7" class="from-commerce7" aria-labelledby="from-commerce7-title">
            <h2 id="from-commerce7-title">"Organisation details from Commerce7"</h2>
            <p class="hint">
                "Read-only: Commerce7 sent these when Libero was installed. Change them in Commerce7; \
                 Libero receives them again when it is reinstalled."
            </p>
            <dl>
                <dt>"Address (from Commerce7)"</dt>
                <dd id="c7-address">{address}</dd>
                <dt>"Website (from Commerce7)"</dt>
                <dd id="c7-website">{website}</dd>
                <dt>"Phone (from Commerce7)"</dt>
                <dd id="c7-phone">{phone.unwrap_or_else(|| NOT_SENT.to_owned())}</dd>
            </dl>
        </section>
    }
}

/// `website` as a link target when it is an absolute `http://` or `https://` URL with a host and
/// no spaces or control characters; anything else (`javascript:`, `www.example.com`, …) is shown
/// as text only.
fn web_link(website: &str) -> Option<String> {
    let lower = website.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let plain = !website.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\');
    (plain && !host.is_empty() && !host.starts_with('@')).then(|| website.to_owned())
}

#[cfg(test)]
mod tests {
    use super::web_link;

    #[test]
    fn only_http_and_https_websites_are_links() {
        for link in ["https://demo-winery.example", "http://demo-winery.example/visit?x=1", "HTTPS://Demo.example"] {
            assert_eq!(web_link(link).as_deref(), Some(link), "{link}");
        }
        for text in [
            "javascript:alert(1)",
            "www.demo-winery.example",
            "demo-winery.example",
            "https://",
            "https:///path",
            "https://demo winery.example",
            "ftp://demo-winery.example",
            "data:text/html,<script>alert(1)</script>",
            "https:\\\\evil.example",
            " https://demo-winery.example",
        ] {
            assert_eq!(web_link(text), None, "{text}");
        }
    }
}

/// The arguments of `save_settings` from the form's fields, named as the server reads the post
/// without the wasm: `settings[<field>]` and `version`; an unticked checkbox sends nothing.
fn read_form(data: &leptos::web_sys::FormData) -> SaveSettings {
    SaveSettings {
        settings: MerchantSettings {
            org_name: text_field(data, "settings[org_name]"),
            contact_name: text_field(data, "settings[contact_name]"),
            contact_email: text_field(data, "settings[contact_email]"),
            weekly_summary: data.has("settings[weekly_summary]"),
        },
        version: text_field(data, "version"),
    }
}

/// A labelled text input named `settings[<id>]` (the server function's argument), with its
/// field error.
#[component]
fn TextField(
    id: &'static str,
    label: &'static str,
    kind: &'static str,
    value: String,
    error: Signal<Option<String>>,
    autocomplete: &'static str,
) -> impl IntoView {
    let error_id = format!("{id}-error");
    let described_by = error_id.clone();
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                type=kind
                id=id
                name=format!("settings[{id}]")
                autocomplete=autocomplete
                value=value
                aria-invalid=move || error.get().is_some().to_string()
                aria-describedby=move || error.get().is_some().then(|| described_by.clone())
            />
            {move || error.get().map(|message| view! { <p class="field-error" id=error_id.clone()>{message}</p> })}
        </div>
    }
}
