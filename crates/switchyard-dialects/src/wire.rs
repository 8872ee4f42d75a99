//! Wire helpers shared by the dialects: serde adapters, body parsing and the common upstream error body.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ir::TranslateError;

// ---------------------------------------------------------------------------------------------------------------
// Bodies and fields

/// A field that is either a plain string or a list of typed items (`content`, `system`, `stop`).
/// Hand-written rather than `#[serde(untagged)]` so that errors inside the items keep their position
/// (and so their field path, see [`TranslateError::from_json`]). Used by `anthropic` and `openai_chat`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StringOr<T> {
    Text(String),
    Items(Vec<T>),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for StringOr<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> de::Visitor<'de> for Visitor<T> {
            type Value = StringOr<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an array")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Self::Value, E> {
                Ok(StringOr::Text(value.to_owned()))
            }
            fn visit_string<E: de::Error>(self, value: String) -> Result<Self::Value, E> {
                Ok(StringOr::Text(value))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(StringOr::Items(items))
            }
        }
        deserializer.deserialize_any(Visitor(PhantomData))
    }
}

/// Parses a client body, turning serde errors into `InvalidField` with the field's path.
pub(crate) fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, TranslateError> {
    serde_json::from_slice(body).map_err(|error| TranslateError::from_json(body, &error))
}

/// Our own output structs always serialize; `Null` only guards the impossible case.
pub(crate) fn to_json<T: Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Upstream error text for the neutral message: trimmed and bounded.
pub(crate) fn body_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.trim().chars().take(2000).collect()
}

pub(crate) fn required<T>(value: Option<T>, path: &str) -> Result<T, TranslateError> {
    value.ok_or_else(|| TranslateError::field(path, "required"))
}

// ---------------------------------------------------------------------------------------------------------------
// Field-by-field parsing (errors name the field)

/// `null` reads as the default: Gemini, OpenAI and proxies send explicit nulls.
pub(crate) fn null_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(d: D) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

pub(crate) fn typed<T: DeserializeOwned>(value: Value, path: &str) -> Result<T, TranslateError> {
    serde_json::from_value(value).map_err(|e| TranslateError::field(path, e.to_string()))
}

pub(crate) fn opt<T: DeserializeOwned>(value: Option<Value>, path: &str) -> Result<Option<T>, TranslateError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => typed(v, path).map(Some),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Upstream error bodies (Anthropic, OpenAI and compatible vendors)

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireErrorBody {
    error: Option<WireErrorField>,
    message: Option<String>,
}

/// `error` is an object in Anthropic/OpenAI/Gemini bodies and a bare string in some proxies.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum WireErrorField {
    Object(WireErrorObject),
    Text(String),
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(crate) struct WireErrorObject {
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) message: Option<String>,
    /// A string for OpenAI (`rate_limit_exceeded`), a number for Gemini.
    pub(crate) code: Option<Value>,
}

impl WireErrorObject {
    /// The error of an upstream error body: `{"error": {...}}`, `{"error": "text"}` or `{"message": "text"}`;
    /// anything else (not JSON, another shape) gives an empty error.
    pub(crate) fn from_body(body: &[u8]) -> Self {
        match serde_json::from_slice::<WireErrorBody>(body) {
            Ok(WireErrorBody { error: Some(error), .. }) => error.into(),
            Ok(WireErrorBody { error: None, message }) => Self { message, ..Default::default() },
            Err(_) => Self::default(),
        }
    }
}

impl From<WireErrorField> for WireErrorObject {
    fn from(field: WireErrorField) -> Self {
        match field {
            WireErrorField::Object(object) => object,
            WireErrorField::Text(message) => Self { message: Some(message), ..Default::default() },
        }
    }
}
