//! `/reports/sessions`: the Report extension "Who is signed in to Libero at this winery". Every
//! live session of the winery, by person, for users whose Commerce7 role is `Admin Owner` or
//! `Admin`, with *Sign out this person everywhere* (a [`ServerForm`]: it works before hydration
//! too). Anyone else gets this page saying who can see it (HTTP 403), with no data.

use leptos::{
    either::{Either, EitherOf3},
    prelude::*,
};
use leptos_meta::Title;

use super::{
    app_frame::{AppFrame, ErrorNotice, Section},
    layout::readable,
    server_form::{ServerForm, form_action, text_field},
};
use crate::api::{
    AppError,
    reports::{ReportPerson, SignOutUserEverywhere, TenantReport, sessions_report},
};

/// The report page.
#[component]
pub fn SessionsReportPage() -> impl IntoView {
    let sign_out = form_action::<SignOutUserEverywhere>();
    // Every answer of a button reloads the report.
    let report = Resource::new(move || sign_out.version().get(), |_| sessions_report());
    // The list then renders again without the button the keyboard was on: its place is the
    // report's heading, not the top of the page.
    let heading = NodeRef::<leptos::html::H1>::new();
    Effect::new(move |_| {
        if sign_out.value().with(Option::is_some) {
            heading.get_untracked().map(|heading| heading.focus());
        }
    });
    // The latest button's outcome (a plain form's error comes back in the page's address and is
    // the action's value from the start, on the server too).
    let notice = move || {
        sign_out.value().get().map(|result| match result {
            Ok(done) => {
                let message = match done.ended {
                    0 => "Their sessions had already ended.".to_owned(),
                    1 => "Signed out of 1 session.".to_owned(),
                    n => format!("Signed out of {n} sessions."),
                };
                Either::Left(view! { <p class="notice ok" role="status">{message}</p> })
            }
            Err(error) => Either::Right(view! { <ErrorNotice error/> }),
        })
    };

    view! {
        <Title text="Who is signed in"/>
        <AppFrame section=Section::Report>
            <section class="card" aria-labelledby="who-is-signed-in" data-testid="sessions-report">
                <h1 id="who-is-signed-in" tabindex="-1" node_ref=heading>"Who is signed in to Libero at this winery"</h1>
                <p class="hint">
                    "For Commerce7 users whose role is Admin Owner or Admin. "
                    "Roles are read from Commerce7 when you open Libero: a change of role takes effect "
                    "the next time that person opens Libero."
                </p>
                <div aria-live="polite">{notice}</div>
                <Transition fallback=|| view! { <p aria-busy="true">"Loading who is signed in…"</p> }>
                    {move || {
                        report.get().map(|result| match result {
                            Ok(report) => EitherOf3::A(view! { <People report sign_out/> }),
                            Err(AppError::NotAllowed) => EitherOf3::B(view! { <NotAllowed/> }),
                            Err(error) => EitherOf3::C(view! { <ErrorNotice error/> }),
                        })
                    }}
                </Transition>
            </section>
        </AppFrame>
    }
}

/// What a user whose role may not see the report is shown instead.
#[component]
fn NotAllowed() -> impl IntoView {
    view! {
        <div class="notice error" role="alert" data-testid="not-allowed">
            <p>
                "Only Commerce7 users whose role is " <strong>"Admin Owner"</strong> " or "
                <strong>"Admin"</strong> " can see who is signed in to Libero at this winery."
            </p>
            <p>
                "Roles are read from Commerce7 when you open Libero. If your role was just changed, "
                "open Libero again from your Commerce7 admin."
            </p>
        </div>
    }
}

#[component]
fn People(report: TenantReport, sign_out: ServerAction<SignOutUserEverywhere>) -> impl IntoView {
    let TenantReport { tenant_id, people } = report;
    let count: usize = people.iter().map(|p| p.sessions.len()).sum();
    let summary = match (people.len(), count) {
        (1, 1) => format!("1 person signed in to {tenant_id}, in 1 session."),
        (1, n) => format!("1 person signed in to {tenant_id}, in {n} sessions."),
        (p, n) => format!("{p} people signed in to {tenant_id}, in {n} sessions."),
    };
    view! {
        <p data-testid="report-summary">{summary}</p>
        <ul class="sessions">
            {people.into_iter().map(|person| view! { <Person person sign_out/> }).collect_view()}
        </ul>
    }
}

#[component]
fn Person(person: ReportPerson, sign_out: ServerAction<SignOutUserEverywhere>) -> impl IntoView {
    let ReportPerson { handle, name, email, you, sessions } = person;
    // Starts with the visible text, so a voice command that says it finds the button.
    let label = format!("Sign out this person everywhere: {name}");
    view! {
        <li class="session" data-testid="person" data-you=you.to_string()>
            <div class="session-main">
                <p class="session-device">
                    <strong>{name}</strong>
                    {email.map(|email| format!(" <{email}>"))}
                    {you.then(|| view! { <span class="badge">"You"</span> })}
                </p>
                {sessions
                    .into_iter()
                    .map(|session| {
                        view! {
                            <p class="session-meta" data-testid="report-session">
                                <span>
                                    {session.device}
                                    {session.this_browser.then_some(" (this browser)")}
                                </span>
                                <span>
                                    "Last active "
                                    <time datetime=session.last_active_at.clone()>{readable(&session.last_active_at)}</time>
                                </span>
                                <span>
                                    "Expires "
                                    <time datetime=session.expires_at.clone()>{readable(&session.expires_at)}</time>
                                </span>
                            </p>
                        }
                    })
                    .collect_view()}
            </div>
            {handle.map(|handle| {
                view! {
                    <ServerForm action=sign_out input=|data| SignOutUserEverywhere { handle: text_field(data, "handle") }>
                        <input type="hidden" name="handle" value=handle/>
                        <button
                            type="submit"
                            class="button secondary"
                            aria-disabled=move || sign_out.pending().get().to_string()
                            aria-label=label
                        >
                            "Sign out this person everywhere"
                        </button>
                    </ServerForm>
                }
            })}
        </li>
    }
}
