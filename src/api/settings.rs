//! The merchant's settings: shared validation, and the server functions that read and save them.

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::AppError;

/// Limits of the free-text fields.
pub const MAX_NAME_LEN: usize = 120;

/// The merchant's app settings (`clients.settings`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantSettings {
    /// Organisation (winery) name.
    pub org_name: String,
    /// Contact person.
    pub contact_name: String,
    /// Contact email.
    pub contact_email: String,
    /// Opt-in to a weekly summary email (an unticked checkbox sends nothing: false).
    #[serde(default)]
    pub weekly_summary: bool,
}

impl MerchantSettings {
    /// Trims the fields and checks them; on failure, a message per field. A control character
    /// in a name (a tab pasted from a spreadsheet, a NUL PostgreSQL cannot store) becomes a space.
    pub fn validate(self) -> Result<Self, BTreeMap<String, String>> {
        let line = |name: &str| name.replace(char::is_control, " ").trim().to_owned();
        let settings = Self {
            org_name: line(&self.org_name),
            contact_name: line(&self.contact_name),
            contact_email: self.contact_email.trim().to_owned(),
            weekly_summary: self.weekly_summary,
        };
        let mut errors = BTreeMap::new();
        if settings.org_name.is_empty() {
            errors.insert("org_name".to_owned(), "Enter your organisation's name.".to_owned());
        } else if settings.org_name.chars().count() > MAX_NAME_LEN {
            errors.insert("org_name".to_owned(), format!("Use at most {MAX_NAME_LEN} characters."));
        }
        if settings.contact_name.is_empty() {
            errors.insert("contact_name".to_owned(), "Enter the name of a contact person.".to_owned());
        } else if settings.contact_name.chars().count() > MAX_NAME_LEN {
            errors.insert("contact_name".to_owned(), format!("Use at most {MAX_NAME_LEN} characters."));
        }
        if settings.contact_email.is_empty() {
            errors.insert("contact_email".to_owned(), "Enter a contact email address.".to_owned());
        } else if !is_plausible_email(&settings.contact_email) {
            errors.insert("contact_email".to_owned(), "Enter an email address like name@winery.com.".to_owned());
        }
        if errors.is_empty() { Ok(settings) } else { Err(errors) }
    }
}

/// A deliberately simple check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn is_plausible_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.split('.').count() >= 2
        && domain.split('.').all(|label| !label.is_empty())
}

/// The settings form's content: the settings and the version they were read at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettingsForm {
    /// Current settings (install details as defaults before the first save).
    pub settings: MerchantSettings,
    /// Opaque version for optimistic concurrency.
    pub version: String,
    /// The organisation's details from Commerce7, shown read-only beside the form: filled by
    /// `get_settings`; `None` in `save_settings`'s answer (a save changes none of them).
    pub from_commerce7: Option<FromCommerce7>,
}

/// What Commerce7 sent about the organisation with the latest install callback, besides its name
/// (`clients.org_address`, `org_website`, `org_phone`; `None` for a field it did not send). Not
/// editable in Libero: a change in Commerce7 arrives with the next install callback.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FromCommerce7 {
    /// `organization-address` (may span lines).
    pub address: Option<String>,
    /// `organization-website`, as sent.
    pub website: Option<String>,
    /// `organization-phone`.
    pub phone: Option<String>,
}

/// Reads the merchant's settings.
#[server(prefix = "/api", endpoint = "get_settings", output = crate::codec::Json, client = crate::tab::TabClient)]
pub async fn get_settings() -> Result<SettingsForm, AppError> {
    use super::ssr::{fail, require_session, state, unavailable};
    use crate::server::clients;

    let session = require_session()?.auth;
    let stored = clients::settings(&state().db, session.client_id)
        .await
        .map_err(|e| unavailable(e, "reading settings failed"))?
        .ok_or_else(|| fail(AppError::Unauthorized))?;
    let saved: Option<MerchantSettings> = serde_json::from_value(stored.settings).ok();
    let settings = saved.unwrap_or_else(|| MerchantSettings {
        org_name: stored.org_name.unwrap_or_default(),
        contact_name: stored.org_contact.unwrap_or_default(),
        contact_email: stored.user_email.unwrap_or_default(),
        weekly_summary: false,
    });
    let clients::Organization { address, website, phone } = stored.organization;
    Ok(SettingsForm {
        settings,
        version: stored.version.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        from_commerce7: Some(FromCommerce7 { address, website, phone }),
    })
}

/// Saves the merchant's settings if nobody saved since `version` was read; returns the new form.
///
/// Its arguments travel as an HTML form (`settings[org_name]=…&…&version=…`, leptos's default
/// encoding) so that the settings page's form also works before the wasm has loaded:
/// the browser then posts the form itself and is sent back to `/settings`.
#[server(prefix = "/api", endpoint = "save_settings", output = crate::codec::Json, client = crate::tab::TabClient)]
pub async fn save_settings(settings: MerchantSettings, version: String) -> Result<SettingsForm, AppError> {
    use leptos::server_fn::ServerFn as _;

    let saved = ssr::save(settings, version).await;
    super::ssr::answer_plain_form(ssr::SETTINGS_PAGE, SaveSettings::PATH, saved.as_ref().err(), None).await;
    saved
}

#[cfg(feature = "ssr")]
mod ssr {
    use super::{AppError, MerchantSettings, SettingsForm};
    use crate::api::ssr::{fail, require_session, state, unavailable};
    use crate::server::clients;

    /// Where the settings form lives.
    pub const SETTINGS_PAGE: &str = "/settings";

    /// Validates and saves, refusing a save based on an outdated `version` (409).
    pub async fn save(settings: MerchantSettings, version: String) -> Result<SettingsForm, AppError> {
        let session = require_session()?.auth;
        let settings = settings.validate().map_err(|fields| fail(AppError::Validation { fields }))?;
        let expected = chrono::DateTime::parse_from_rfc3339(&version)
            .map_err(|_| fail(AppError::Conflict))?
            .with_timezone(&chrono::Utc);
        let saved = clients::save_settings(&state().db, session.client_id, &settings, expected)
            .await
            .map_err(|e| unavailable(e, "saving settings failed"))?;
        match saved {
            Some(version) => {
                tracing::info!(tenant_id = %session.tenant_id, "settings saved");
                let version = version.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                Ok(SettingsForm { settings, version, from_commerce7: None })
            }
            None => Err(fail(AppError::Conflict)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> MerchantSettings {
        MerchantSettings {
            org_name: " Demo Winery ".into(),
            contact_name: "Dana Owner".into(),
            contact_email: "dana@demo-winery.example".into(),
            weekly_summary: true,
        }
    }

    #[test]
    fn valid_settings_are_trimmed() {
        assert_eq!(valid().validate().unwrap().org_name, "Demo Winery");
    }

    #[test]
    fn empty_fields_are_reported_per_field() {
        let errors = MerchantSettings::default().validate().unwrap_err();
        assert_eq!(errors.keys().collect::<Vec<_>>(), ["contact_email", "contact_name", "org_name"]);
    }

    #[test]
    fn overlong_names_are_refused() {
        let errors = MerchantSettings { org_name: "x".repeat(121), ..valid() }.validate().unwrap_err();
        assert!(errors.contains_key("org_name"));
    }

    #[test]
    fn control_characters_in_names_become_spaces() {
        let pasted = MerchantSettings { org_name: "Demo\tWinery\0".into(), ..valid() }.validate().unwrap();
        assert_eq!(pasted.org_name, "Demo Winery");
    }

    #[test]
    fn implausible_emails_are_refused() {
        for bad in ["dana", "dana@", "@winery.com", "dana@winery", "da na@winery.com", "a@b@c.com", "dana@winery..com"]
        {
            assert!(!is_plausible_email(bad), "{bad}");
        }
        assert!(is_plausible_email("dana+club@demo-winery.example"));
    }
}
