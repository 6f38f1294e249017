//! The server functions' answer encoding: JSON, as server_fn's own `Json`, decoded from text.
//!
//! Hydration decodes each resource's value from text (`serde_json::from_str`); server_fn's
//! `JsonEncoding` decodes answers from bytes (`serde_json::from_slice`). Each way monomorphizes a
//! whole deserializer per answer type, so the browser carried two of each. With this encoding
//! every answer (and [`AppError`](crate::error::AppError)) is read the way hydration reads it:
//! one deserializer per type, the same JSON on the wire.

use leptos::server_fn::{Bytes, ContentType, Decodes, Encodes, Format, FormatType, codec::Post};
use serde::{Serialize, de::DeserializeOwned};

/// JSON, decoded from UTF-8 text.
pub struct TextJson;

/// `POST`, answered with [`TextJson`]: the `output` of every server function.
pub type Json = Post<TextJson>;

impl ContentType for TextJson {
    const CONTENT_TYPE: &'static str = "application/json";
}

impl FormatType for TextJson {
    const FORMAT_TYPE: Format = Format::Text;
}

impl<T: Serialize> Encodes<T> for TextJson {
    type Error = serde_json::Error;

    fn encode(output: &T) -> Result<Bytes, Self::Error> {
        serde_json::to_vec(output).map(Bytes::from)
    }
}

impl<T: DeserializeOwned> Decodes<T> for TextJson {
    type Error = serde_json::Error;

    fn decode(bytes: Bytes) -> Result<T, Self::Error> {
        let text = std::str::from_utf8(&bytes).map_err(<serde_json::Error as serde::de::Error>::custom)?;
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn answers_round_trip_as_the_same_json_server_fn_sends() {
        let value = BTreeMap::from([("tenant_id".to_owned(), "demo-winery".to_owned())]);
        let bytes = <TextJson as Encodes<_>>::encode(&value).unwrap();
        assert_eq!(&bytes[..], br#"{"tenant_id":"demo-winery"}"#);
        let back: BTreeMap<String, String> = <TextJson as Decodes<_>>::decode(bytes).unwrap();
        assert_eq!(back, value);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_an_error_not_a_panic() {
        let result: Result<String, _> = <TextJson as Decodes<_>>::decode(Bytes::from_static(b"\"\xff\""));
        assert!(result.is_err());
    }
}
