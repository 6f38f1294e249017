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
/// on a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum AppError {
    /// No valid session (HTTP 401): the UI returns to `/`.
    #[error("Your session has ended. Open Libero again from your Commerce7 admin.")]
    Unauthorized,
    /// A cross-site request (HTTP 403).
    #[error("This request was refused because it did not come from Libero itself.")]
    Forbidden,
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

impl AppError {
    /// The HTTP status that carries this error.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
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
}
