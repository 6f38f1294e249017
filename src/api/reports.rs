//! The Report extension "Who is signed in to Libero at this winery" (`/reports/sessions`): every
//! live session of the tenant, for users whose Commerce7 role is `Admin Owner` or `Admin`, and
//! *Sign out this person everywhere*. Scoped to the tenant in the SQL itself
//! (`server::sessions::report`); the browser sees opaque handles, never row ids or tokens.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;

/// One live session of a person, as the report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportSession {
    /// Browser and operating system, e.g. "Chrome on Windows".
    pub device: String,
    /// Last request, RFC 3339 (to within `SESSION_TOUCH_INTERVAL`).
    pub last_active_at: String,
    /// Absolute expiry, RFC 3339.
    pub expires_at: String,
    /// Whether this is the session of the browser asking.
    pub this_browser: bool,
}

/// A person signed in to Libero at this winery, with their live sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportPerson {
    /// Opaque name of one of their sessions, to sign the person out everywhere with; `None` for
    /// the user asking (that is what *Sign out* is for).
    pub handle: Option<String>,
    /// Display name ("Commerce7 user" when Commerce7 gave none).
    pub name: String,
    /// Email.
    pub email: Option<String>,
    /// Whether this is the user asking.
    pub you: bool,
    /// Their live sessions, most recently used first.
    pub sessions: Vec<ReportSession>,
}

/// The report: the asking user first, then everyone else by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantReport {
    /// The tenant.
    pub tenant_id: String,
    /// The people with a live session.
    pub people: Vec<ReportPerson>,
}

/// Every live session of this winery, by person. Only for `Admin Owner` and `Admin` (as
/// Commerce7 said at the user's latest open); anyone else gets 403 `not_allowed`, with no data.
#[server(prefix = "/api", endpoint = "sessions_report", output = crate::codec::Json, client = crate::tab::TabClient)]
pub async fn sessions_report() -> Result<TenantReport, AppError> {
    use crate::api::ssr::{handles, require_session, state, unavailable};
    use crate::server::sessions::report;

    let current = require_session()?;
    let me = &current.auth;
    ssr::allowed(me)?;
    let state = state();
    let rows = report::list_live(&state.db, me.client_id, state.config.session_idle_timeout)
        .await
        .map_err(|e| unavailable(e, "listing the tenant's sessions failed"))?;
    Ok(TenantReport {
        tenant_id: me.tenant_id.clone(),
        people: ssr::people(&rows, &me.user_id, &current.row_id, &handles()),
    })
}

/// What *Sign out this person everywhere* did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonSignedOut {
    /// How many sessions of the person ended.
    pub ended: u64,
}

/// [`sign_out_user_everywhere`]'s work.
#[cfg(feature = "ssr")]
async fn end_person(handle: String) -> Result<PersonSignedOut, AppError> {
    use crate::api::ssr::{fail, handles, require_session, state, unavailable};
    use crate::server::sessions::report;

    let me = require_session()?.auth;
    ssr::allowed(&me)?;
    let state = state();
    let idle = state.config.session_idle_timeout;
    let ended = report::end_user_everywhere(&state.db, me.client_id, &me.user_id, &handles(), &handle, idle)
        .await
        .map_err(|e| unavailable(e, "signing a person out everywhere failed"))?;
    match ended {
        report::Ended::Sessions { user_id, ended } => {
            tracing::info!(
                tenant_id = %me.tenant_id,
                user_id = %me.user_id,
                signed_out_user_id = %user_id,
                ended,
                "administrator signed a person out of Libero everywhere"
            );
            Ok(PersonSignedOut { ended })
        }
        report::Ended::OwnUser => Err(fail(AppError::BadRequest {
            message: "to sign yourself out, use Sign out at the top of the page".to_owned(),
        })),
        report::Ended::NotFound => Err(fail(AppError::SessionNotFound)),
    }
}

/// Ends every session, at this winery, of the person whose session `handle` names. Only for
/// `Admin Owner` and `Admin` (403 `not_allowed` otherwise); a handle that names no session of this
/// winery gets 404 `session_not_found`; one of the asking user's own sessions 400 (that is what
/// *Sign out* is for). A plain form post is answered with a redirect to the report.
#[server(prefix = "/api", endpoint = "sign_out_user_everywhere", output = crate::codec::Json, client = crate::tab::TabClient)]
pub async fn sign_out_user_everywhere(handle: String) -> Result<PersonSignedOut, AppError> {
    use leptos::server_fn::ServerFn as _;

    let done = end_person(handle).await;
    crate::api::ssr::answer_plain_form(
        crate::server::sessions::REPORT_PAGE,
        SignOutUserEverywhere::PATH,
        done.as_ref().err(),
        None,
    )
    .await;
    done
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::{ReportPerson, ReportSession};
    use crate::{
        api::{
            AppError,
            ssr::{fail, rfc3339},
        },
        server::sessions::{
            AuthSession,
            manage::SessionHandles,
            report::{TenantSession, may_see_report},
            user_agent::Device,
        },
    };

    /// 403 `not_allowed` unless the session's role may see the report (no role fails closed).
    pub fn allowed(me: &AuthSession) -> Result<(), AppError> {
        if may_see_report(me.user_role.as_deref()) { Ok(()) } else { Err(fail(AppError::NotAllowed)) }
    }

    /// The rows by person (in the order the query gave them within a person): `me` first, then
    /// by name. Each other person gets the handle of their first row; no row id leaves here.
    pub fn people(rows: &[TenantSession], me: &str, current_row: &str, handles: &SessionHandles) -> Vec<ReportPerson> {
        let mut people: Vec<(String, ReportPerson)> = Vec::new();
        for row in rows {
            let session = ReportSession {
                device: Device::parse(row.user_agent.as_deref()).label(),
                last_active_at: rfc3339(row.last_activity_at),
                expires_at: rfc3339(row.expires_at),
                this_browser: row.id == current_row,
            };
            match people.iter_mut().find(|(user_id, _)| *user_id == row.user_id) {
                Some((_, person)) => person.sessions.push(session),
                None => {
                    let you = row.user_id == me;
                    people.push((
                        row.user_id.clone(),
                        ReportPerson {
                            handle: (!you).then(|| handles.of(&row.id)),
                            name: row.user_name.clone().unwrap_or_else(|| "Commerce7 user".to_owned()),
                            email: row.user_email.clone(),
                            you,
                            sessions: vec![session],
                        },
                    ));
                }
            }
        }
        let mut people: Vec<ReportPerson> = people.into_iter().map(|(_, person)| person).collect();
        people.sort_by_cached_key(|person| (!person.you, person.name.to_lowercase()));
        people
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        fn row(id: &str, user_id: &str, name: Option<&str>, minutes_ago: i64) -> TenantSession {
            let now = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
            TenantSession {
                id: id.to_owned(),
                user_id: user_id.to_owned(),
                user_name: name.map(str::to_owned),
                user_email: None,
                user_agent: Some("Mozilla/5.0 (Windows NT 10.0) Chrome/126.0 Safari/537.36".to_owned()),
                last_activity_at: now - chrono::TimeDelta::minutes(minutes_ago),
                expires_at: now + chrono::TimeDelta::hours(8),
            }
        }

        #[test]
        fn sessions_are_grouped_by_person_with_me_first_and_no_handle_for_me() {
            let handles = SessionHandles::new("0123456789abcdef0123456789abcdef");
            let rows = [
                row("r-dana-1", "dana", Some("Dana Owner"), 1),
                row("r-zoe", "zoe", Some("Zoe"), 3),
                row("r-sam-1", "sam", Some("Sam Staff"), 2),
                row("r-sam-2", "sam", Some("Sam Staff"), 5),
                row("r-anon", "x", None, 9),
            ];
            let people = people(&rows, "dana", "r-dana-1", &handles);
            let names: Vec<&str> = people.iter().map(|p| p.name.as_str()).collect();
            assert_eq!(names, ["Dana Owner", "Commerce7 user", "Sam Staff", "Zoe"]);
            assert!(people[0].you && people[0].handle.is_none(), "no sign-out everywhere for oneself");
            assert!(people[0].sessions[0].this_browser);
            let sam = &people[2];
            assert_eq!(sam.sessions.len(), 2);
            assert!(!sam.sessions[0].this_browser);
            assert_eq!(sam.sessions[0].device, "Chrome on Windows");
            assert_eq!(sam.handle.as_deref(), Some(handles.of("r-sam-1").as_str()));
            let json = serde_json::to_string(&people).unwrap();
            for row in &rows {
                assert!(!json.contains(&row.id), "no row id: {json}");
            }
        }
    }
}
