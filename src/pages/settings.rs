//! `/settings`: the merchant's settings form.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_meta::Title;

use super::app_frame::{AppFrame, ErrorNotice, Section, leave_if_unauthorized};
use crate::api::{
    AppError,
    settings::{MerchantSettings, SaveSettings, SettingsForm, get_settings},
};

/// The settings page.
#[component]
pub fn Settings() -> impl IntoView {
    let loaded = Resource::new(|| (), |_| get_settings());

    view! {
        <Title text="Settings"/>
        <AppFrame section=Section::Settings>
            <section class="card" aria-labelledby="settings-title">
                <h1 id="settings-title">"Settings"</h1>
                <Suspense fallback=|| view! { <p aria-busy="true">"Loading your settings…"</p> }>
                    {move || {
                        loaded.get().map(|result| match result {
                            Ok(form) => view! { <SettingsEditor form/> }.into_any(),
                            Err(error) => view! { <ErrorNotice error/> }.into_any(),
                        })
                    }}
                </Suspense>
            </section>
        </AppFrame>
    }
}

#[component]
fn SettingsEditor(form: SettingsForm) -> impl IntoView {
    let SettingsForm { settings, version } = form;
    let org_name = RwSignal::new(settings.org_name);
    let contact_name = RwSignal::new(settings.contact_name);
    let contact_email = RwSignal::new(settings.contact_email);
    let weekly_summary = RwSignal::new(settings.weekly_summary);
    let version = RwSignal::new(version);
    let save = ServerAction::<SaveSettings>::new();

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
    let error_for = move |field: &'static str| move || field_errors.get().get(field).cloned();

    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if save.pending().get_untracked() {
            return;
        }
        save.dispatch(SaveSettings {
            settings: MerchantSettings {
                org_name: org_name.get_untracked(),
                contact_name: contact_name.get_untracked(),
                contact_email: contact_email.get_untracked(),
                weekly_summary: weekly_summary.get_untracked(),
            },
            version: version.get_untracked(),
        });
    };

    view! {
        <div aria-live="polite">
            {move || match save.value().get() {
                Some(Ok(_)) => Some(view! { <p class="notice ok" role="status">"Settings saved."</p> }.into_any()),
                Some(Err(error)) => Some(view! { <p class="notice error" role="alert">{error.to_string()}</p> }.into_any()),
                None => None,
            }}
        </div>
        <form class="form" on:submit=on_submit novalidate>
            <TextField id="org_name" label="Organisation name" kind="text" value=org_name error=Signal::derive(error_for("org_name")) autocomplete="organization"/>
            <TextField id="contact_name" label="Contact name" kind="text" value=contact_name error=Signal::derive(error_for("contact_name")) autocomplete="name"/>
            <TextField id="contact_email" label="Contact email" kind="email" value=contact_email error=Signal::derive(error_for("contact_email")) autocomplete="email"/>
            <div class="field checkbox">
                <input
                    type="checkbox"
                    id="weekly_summary"
                    name="weekly_summary"
                    prop:checked=move || weekly_summary.get()
                    on:change=move |ev| weekly_summary.set(event_target_checked(&ev))
                />
                <label for="weekly_summary">
                    "Send me a weekly summary"
                    <span class="hint">" — club sign-ups and orders, every Monday"</span>
                </label>
            </div>
            <div>
                <button type="submit" class="button" id="save-settings" disabled=move || save.pending().get() aria-busy=move || save.pending().get().to_string()>
                    {move || if save.pending().get() { "Saving…" } else { "Save settings" }}
                </button>
            </div>
        </form>
    }
}

#[component]
fn TextField(
    id: &'static str,
    label: &'static str,
    kind: &'static str,
    value: RwSignal<String>,
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
                name=id
                autocomplete=autocomplete
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
                aria-invalid=move || error.get().is_some().to_string()
                aria-describedby=move || error.get().is_some().then(|| described_by.clone())
            />
            {move || error.get().map(|message| view! { <p class="field-error" id=error_id.clone()>{message}</p> })}
        </div>
    }
}
