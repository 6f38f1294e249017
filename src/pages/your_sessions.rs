//! The dashboard's "Your sessions" panel: where this user is signed in to Libero for this winery,
//! with a way to sign out the others. The buttons are [`ServerForm`]s: they post to the server
//! functions before hydration too, and after it the list refreshes in place.

use leptos::{either::Either, prelude::*};

use super::{
    app_frame::ErrorNotice,
    layout::readable,
    server_form::{ServerForm, form_action},
};
use crate::api::{
    AppError,
    sessions::{MySession, SignOutOtherSessions, SignOutSession, list_my_sessions},
};

/// The panel.
#[component]
pub fn YourSessions() -> impl IntoView {
    let sign_out = form_action::<SignOutSession>();
    let sign_out_others = form_action::<SignOutOtherSessions>();
    // Every answer of either button reloads the list — after the answer is taken in: signing out
    // the others renews this tab's credential, and a list asked for with the old one is refused.
    let answers = RwSignal::new(0_u32);
    let sessions = Resource::new(move || answers.get(), |_| list_my_sessions());

    // The outcome of the latest button, in words. The list then renders again without the button
    // the keyboard was on: its place is the panel's heading, not the top of the page.
    let outcome = RwSignal::new(None::<Result<String, AppError>>);
    let heading = NodeRef::<leptos::html::H2>::new();
    let answered = move |result| {
        outcome.set(Some(result));
        answers.update(|n| *n += 1);
        heading.get_untracked().map(|heading| heading.focus());
    };
    Effect::new(move |_| {
        if let Some(result) = sign_out.value().get() {
            answered(result.map(|()| "That session is signed out.".to_owned()));
        }
    });
    Effect::new(move |_| {
        if let Some(result) = sign_out_others.value().get() {
            answered(result.map(|done| {
                if let Some(tab) = done.tab {
                    super::credential::adopt(tab);
                }
                let ended = match done.ended {
                    0 => "You were not signed in anywhere else.".to_owned(),
                    1 => "Signed out 1 other session.".to_owned(),
                    n => format!("Signed out {n} other sessions."),
                };
                format!(
                    "{ended} This tab's sign-in was renewed too: a copy of it anywhere else no longer works, \
                     and other Libero tabs of this browser reload at their next step."
                )
            }));
        }
    });
    let notice = move || {
        outcome.get().map(|result| match result {
            Ok(message) => Either::Left(view! { <p class="notice ok" role="status">{message}</p> }),
            Err(error) => Either::Right(view! { <ErrorNotice error/> }),
        })
    };

    view! {
        <section class="card" aria-labelledby="your-sessions" data-testid="your-sessions">
            <h2 id="your-sessions" tabindex="-1" node_ref=heading>"Your sessions"</h2>
            <p class="hint">
                "Where you are signed in to Libero for this winery. If you don't recognise one, sign it out."
            </p>
            <div aria-live="polite">{notice}</div>
            <Transition fallback=|| view! { <p aria-busy="true">"Loading your sessions…"</p> }>
                {move || {
                    sessions.get().map(|result| match result {
                        Ok(list) => Either::Left(view! { <SessionList list sign_out sign_out_others/> }),
                        Err(error) => Either::Right(view! { <ErrorNotice error/> }),
                    })
                }}
            </Transition>
        </section>
    }
}

#[component]
fn SessionList(
    list: Vec<MySession>,
    sign_out: ServerAction<SignOutSession>,
    sign_out_others: ServerAction<SignOutOtherSessions>,
) -> impl IntoView {
    let others = list.iter().filter(|s| !s.current).count();
    let busy = move || sign_out.pending().get() || sign_out_others.pending().get();
    view! {
        <ul class="sessions">
            {list.into_iter().map(|session| view! { <SessionRow session sign_out busy/> }).collect_view()}
        </ul>
        {(others == 0).then(|| view! { <p class="hint">"You are not signed in anywhere else."</p> })}
        // Shown with no other session too: a copy of this tab's sign-in shares this session, and
        // this is what ends it.
        <p class="hint">
            "Signing out everywhere else also renews this tab's sign-in, so a copy of it stops working."
        </p>
        <ServerForm action=sign_out_others input=|_| SignOutOtherSessions {}>
            <button type="submit" class="button secondary" id="sign-out-others" aria-disabled=move || busy().to_string()>
                "Sign out all other sessions"
            </button>
        </ServerForm>
    }
}

#[component]
fn SessionRow(
    session: MySession,
    sign_out: ServerAction<SignOutSession>,
    busy: impl Fn() -> bool + Send + Sync + Copy + 'static,
) -> impl IntoView {
    let MySession { handle, device, ip_address, signed_in_at, last_active_at, current } = session;
    // Several "Sign out" buttons on one page: screen readers hear which session each one ends.
    let sign_out_label = format!("Sign out {device}, signed in {}", readable(&signed_in_at));
    view! {
        <li class="session" data-testid="session" data-current=current.to_string()>
            <div class="session-main">
                <p class="session-device">
                    <strong>{device}</strong>
                    {current.then(|| view! { <span class="badge">"This browser"</span> })}
                </p>
                <p class="session-meta">
                    <span>{format!("IP {}", ip_address.unwrap_or_else(|| "unknown".to_owned()))}</span>
                    <span>"Signed in " <time datetime=signed_in_at.clone()>{readable(&signed_in_at)}</time></span>
                    <span>"Last active " <time datetime=last_active_at.clone()>{readable(&last_active_at)}</time></span>
                </p>
            </div>
            {(!current).then(|| {
                // The form carries the handle for the post without the wasm; once hydrated the
                // row knows it already.
                let input = { let handle = handle.clone(); move |_: &_| SignOutSession { handle: handle.clone() } };
                view! {
                    <ServerForm action=sign_out input>
                        <input type="hidden" name="handle" value=handle/>
                        <button type="submit" class="button secondary" aria-disabled=move || busy().to_string() aria-label=sign_out_label>"Sign out"</button>
                    </ServerForm>
                }
            })}
        </li>
    }
}
