//! The error every server function returns, shared by the browser, the server functions and
//! the session guard (which answers `/api/…` with it). A leaf: it imports nothing of the app but
//! its answer encoding (`codec`).

use std::collections::BTreeMap;

use leptos::server_fn::{
    ServerFnError,
    error::{FromServerFnError, ServerFnErrorErr},
};
use serde::{Deserialize, Serialize};

/// What can go wrong in a server function, as the UI sees it: it matches on the variant, never
/// on a message. On the wire: `{"error": "<variant>", …its fields}` (read back by the
/// [`Deserialize`] impl below).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum AppError {
    /// No valid session (HTTP 401): the UI returns to `/`.
    #[error("Your session has ended. Open Libero again from your Commerce7 admin.")]
    Unauthorized,
    /// A cross-site request (HTTP 403).
    #[error("This request was refused because it did not come from Libero itself.")]
    Forbidden,
    /// The user's Commerce7 role may not see this (HTTP 403): the sessions report is for
    /// `Admin Owner` and `Admin` only, as Commerce7 said when the user last opened Libero.
    #[error(
        "Only users whose Commerce7 role is Admin Owner or Admin can see who is signed in. Roles are read from Commerce7 when you open Libero."
    )]
    NotAllowed,
    /// Field errors, keyed by field name (HTTP 422).
    #[error("Please correct the highlighted fields.")]
    Validation {
        /// Field name → message.
        fields: BTreeMap<String, String>,
    },
    /// The session to end does not exist or is not this user's (HTTP 404): the two are not told
    /// apart, so nobody can probe for someone else's sessions.
    #[error("That session has already ended. Reload the page to see the current list.")]
    SessionNotFound,
    /// Someone saved in between (HTTP 409).
    #[error(
        "These settings were changed in another window. Reload the page to see the latest version, then save again."
    )]
    Conflict,
    /// The database is unreachable (HTTP 503).
    #[error("Libero is temporarily unavailable. Try again in a minute.")]
    Unavailable,
    /// The request's arguments could not be read (HTTP 400).
    #[error("The request could not be read: {message}")]
    BadRequest {
        /// What could not be read.
        message: String,
    },
    /// Transport or encoding trouble between the browser and the server.
    #[error("Libero couldn't be reached. Check your connection and try again.")]
    Transport {
        /// Technical detail, for the console.
        message: String,
    },
}

/// Reads what the derived `Serialize` writes. Not derived: serde's internally tagged enums
/// buffer the whole object in a `Content` tree before choosing the variant, and that machinery
/// was the largest single piece of the browser's code for this one type. One flat struct reads
/// the same JSON (unknown fields ignored, as the derived form does).
impl<'de> Deserialize<'de> for AppError {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;

        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Kind {
            Unauthorized,
            Forbidden,
            NotAllowed,
            Validation,
            SessionNotFound,
            Conflict,
            Unavailable,
            BadRequest,
            Transport,
        }

        #[derive(Deserialize)]
        struct Wire {
            error: Kind,
            fields: Option<BTreeMap<String, String>>,
            message: Option<String>,
        }

        let Wire { error, fields, message } = Wire::deserialize(deserializer)?;
        let message = || message.ok_or_else(|| D::Error::missing_field("message"));
        Ok(match error {
            Kind::Unauthorized => Self::Unauthorized,
            Kind::Forbidden => Self::Forbidden,
            Kind::NotAllowed => Self::NotAllowed,
            Kind::Validation => Self::Validation { fields: fields.ok_or_else(|| D::Error::missing_field("fields"))? },
            Kind::SessionNotFound => Self::SessionNotFound,
            Kind::Conflict => Self::Conflict,
            Kind::Unavailable => Self::Unavailable,
            Kind::BadRequest => Self::BadRequest { message: message()? },
            Kind::Transport => Self::Transport { message: message()? },
        })
    }
}

impl AppError {
    /// The HTTP status that carries this error.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::NotAllowed => StatusCode::FORBIDDEN,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::SessionNotFound => StatusCode::NOT_FOUND,
            Self::Conflict => StatusCode::CONFLICT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Transport { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl FromServerFnError for AppError {
    // The answers' encoding (src/codec.rs): one JSON deserializer per type in the browser.
    type Encoder = crate::codec::TextJson;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        match value {
            // On the server these mean the browser sent arguments that do not decode.
            #[cfg(feature = "ssr")]
            ServerFnErrorErr::Args(message) | ServerFnErrorErr::Deserialization(message) => {
                fail(Self::BadRequest { message })
            }
            other => Self::Transport { message: other.to_string() },
        }
    }
}

impl From<ServerFnError> for AppError {
    fn from(value: ServerFnError) -> Self {
        Self::Transport { message: value.to_string() }
    }
}

/// Sets the HTTP status of `error` on the response being rendered and returns it.
#[cfg(feature = "ssr")]
pub fn fail(error: AppError) -> AppError {
    if let Some(response) = leptos::prelude::use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(error.status());
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_round_trips_through_its_json_encoding() {
        let errors = [
            AppError::Unauthorized,
            AppError::Forbidden,
            AppError::NotAllowed,
            AppError::Validation { fields: BTreeMap::from([("org_name".to_owned(), "Required".to_owned())]) },
            AppError::SessionNotFound,
            AppError::Conflict,
            AppError::Unavailable,
            AppError::BadRequest { message: "bad".to_owned() },
            AppError::Transport { message: "down".to_owned() },
        ];
        for error in errors {
            let bytes = error.ser();
            assert_eq!(AppError::de(bytes), error);
        }
    }

    #[test]
    fn the_wire_format_is_the_variant_under_error_beside_its_fields() {
        let json = |error: &AppError| serde_json::to_string(error).unwrap();
        assert_eq!(json(&AppError::Unauthorized), r#"{"error":"unauthorized"}"#);
        assert_eq!(json(&AppError::SessionNotFound), r#"{"error":"session_not_found"}"#);
        assert_eq!(json(&AppError::NotAllowed), r#"{"error":"not_allowed"}"#);
        assert_eq!(
            json(&AppError::Validation { fields: BTreeMap::from([("org_name".to_owned(), "Required".to_owned())]) }),
            r#"{"error":"validation","fields":{"org_name":"Required"}}"#
        );
        assert_eq!(
            json(&AppError::BadRequest { message: "bad".to_owned() }),
            r#"{"error":"bad_request","message":"bad"}"#
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_fields_may_come_first() {
        let read = |json: &str| serde_json::from_str::<AppError>(json).unwrap();
        assert_eq!(read(r#"{"error":"conflict","hint":"x"}"#), AppError::Conflict);
        assert_eq!(
            read(r#"{"message":"down","error":"transport"}"#),
            AppError::Transport { message: "down".to_owned() }
        );
    }

    #[test]
    fn an_unknown_variant_or_a_missing_field_is_an_error_naming_it() {
        let read = |json: &str| serde_json::from_str::<AppError>(json).unwrap_err().to_string();
        assert!(read(r#"{"error":"teapot"}"#).contains("unknown variant `teapot`"));
        assert!(read(r#"{"error":"validation"}"#).contains("missing field `fields`"));
        assert!(read(r#"{"error":"bad_request"}"#).contains("missing field `message`"));
        assert!(read(r#"{"fields":{}}"#).contains("missing field `error`"));
        // The positive control: the same objects with what was missing are read.
        assert_eq!(
            serde_json::from_str::<AppError>(r#"{"error":"validation","fields":{}}"#).unwrap(),
            AppError::Validation { fields: BTreeMap::new() }
        );
    }
}
