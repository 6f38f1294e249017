//! `/app`: the merchant's dashboard, the page Commerce7 opens in its iframe.

use leptos::{either::Either, prelude::*};
use leptos_meta::Title;

use super::{
    app_frame::{AppFrame, ErrorNotice, Section},
    layout::readable,
    your_sessions::YourSessions,
};
use crate::api::session::{SessionInfo, get_session_info};

/// The dashboard.
#[component]
pub fn Dashboard() -> impl IntoView {
    let info = Resource::new(|| (), |_| get_session_info());

    view! {
        <Title text="Dashboard"/>
        <AppFrame section=Section::Dashboard>
            <Suspense fallback=|| view! { <p class="card" aria-busy="true">"Loading your session…"</p> }>
                {move || {
                    info.get().map(|result| match result {
                        Ok(info) => Either::Left(view! { <SessionSummary info/> }),
                        Err(error) => Either::Right(view! { <ErrorNotice error/> }),
                    })
                }}
            </Suspense>
            <YourSessions/>
        </AppFrame>
    }
}

#[component]
fn SessionSummary(info: SessionInfo) -> impl IntoView {
    let hours = info.minutes_left / 60;
    let minutes = info.minutes_left % 60;
    let name = info.user_name.clone().unwrap_or_else(|| "Commerce7 user".to_owned());
    view! {
        <section class="card" aria-labelledby="welcome">
            <h1 id="welcome">{format!("Welcome, {name}")}</h1>
            <p class="lead">"You are signed in to Libero through your Commerce7 admin."</p>
            <dl class="facts">
                <dt>"Winery (tenant)"</dt>
                <dd data-testid="tenant">{info.tenant_id.clone()}</dd>
                <dt>"Signed in as"</dt>
                <dd data-testid="user">
                    {name.clone()}
                    {info.user_email.clone().map(|email| format!(" <{email}>"))}
                </dd>
                <dt>"Signed in at"</dt>
                <dd><time datetime=info.signed_in_at.clone()>{readable(&info.signed_in_at)}</time></dd>
                <dt>"Session expires"</dt>
                <dd data-testid="expires">
                    <time datetime=info.expires_at.clone()>{readable(&info.expires_at)}</time>
                    {format!(" (in {hours} h {minutes} min)")}
                </dd>
                <dt>"Theme"</dt>
                <dd data-testid="theme">{info.theme.clone()}</dd>
            </dl>
        </section>
        <section class="card">
            <h2>"Next steps"</h2>
            <p>"Review your winery's contact details and choose whether you want a weekly summary."</p>
            <p><a class="button" href="/settings">"Open settings"</a></p>
        </section>
    }
}
