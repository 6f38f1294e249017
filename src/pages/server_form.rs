//! A form posting to a server function, progressively enhanced: what leptos' `ActionForm` does,
//! without reading the form back through `serde_qs` in the browser.
//!
//! Before (or without) the wasm, the browser posts the form to the server function's URL, which
//! reads it as `application/x-www-form-urlencoded` like any other call; its hidden `tab` field
//! (the page's tab token) tells the session guard which session the form acts on. Once hydrated, a submit
//! dispatches the server action with the arguments the page builds from the form's fields
//! itself. `ActionForm` instead parsed the form's data into the arguments with `serde_qs`'s
//! deserializer, which made up a twentieth of the browser's main module for three forms whose
//! fields the page knows by name.

use leptos::{
    prelude::*,
    server_fn::{ServerFn, client::Client, codec::PostUrl},
    web_sys::{FormData, HtmlFormElement},
};

/// The action of a server function's form. A plain form's error (`?__err=`, before hydration) is
/// kept by the router for the rest of the document's life and would be every later action's first
/// value: a page opened afterwards by a link in the app would show it again. It counts only on the
/// page whose address carries it.
pub fn form_action<S>() -> ServerAction<S>
where
    S: ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    if leptos_router::hooks::use_query_map().with_untracked(|query| query.get_str("__err").is_none()) {
        provide_context(ServerActionError::new("", ""));
    }
    ServerAction::new()
}

/// The form. `input` turns the submitted form's data into the server function's arguments.
#[component]
pub fn ServerForm<S, Out, I, C>(
    /// The action the submit dispatches.
    action: ServerAction<S>,
    /// The arguments, from the form's data when it is submitted (in the browser only).
    input: I,
    /// The form's `class`.
    #[prop(optional)]
    class: Option<&'static str>,
    /// No browser validation: the server's messages are the ones shown.
    #[prop(optional)]
    novalidate: bool,
    children: TypedChildren<C>,
) -> impl IntoView
where
    S: ServerFn<Protocol = leptos::server_fn::Http<PostUrl, Out>> + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
    S::Client: Client<S::Error>,
    I: Fn(&FormData) -> S + 'static,
    C: IntoView + 'static,
{
    let children = children.into_inner();
    let pending = action.pending();
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        let Some(form) = ev.target().and_then(as_form) else {
            return; // not a form (cannot happen for a submit event): the browser posts it
        };
        let Ok(data) = FormData::new_with_form(&form) else {
            return;
        };
        ev.prevent_default();
        // A press while the last one is in flight sends nothing: its answer decides. (The button
        // is not `disabled` meanwhile: a disabled button drops the keyboard's focus.)
        if !pending.get_untracked() {
            action.dispatch(input(&data));
        }
    };
    view! {
        <form method="post" action=S::url() class=class novalidate=novalidate on:submit=on_submit>
            // The tab token the page was rendered with: posted before hydration, it makes the
            // server act on this tab's session, not on the cookie's (another winery's tab may
            // own the cookie). Once hydrated the call carries the tab's credential instead.
            <input type="hidden" name="tab" value=crate::tab::form_token()/>
            {children()}
        </form>
    }
}

/// The submit event's target as the form element.
pub fn as_form(target: leptos::web_sys::EventTarget) -> Option<HtmlFormElement> {
    use leptos::wasm_bindgen::JsCast;
    target.dyn_into().ok()
}

/// A text field of the submitted form, empty when absent (as an unsent field reads on the server).
pub fn text_field(data: &FormData, name: &str) -> String {
    data.get(name).as_string().unwrap_or_default()
}
