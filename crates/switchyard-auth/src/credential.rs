//! One auth file's JSON object, kept whole so fields we do not understand survive every rewrite.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::timestamp;

/// Legacy hyphenated keys CPA still accepts, with the snake_case key they mean.
const LEGACY_KEYS: &[(&str, &str)] = &[
    ("api-key", "api_key"),
    ("base-url", "base_url"),
    ("disable-cooling", "disable_cooling"),
    ("excluded-models", "excluded_models"),
    ("fingerprint-profile", "fingerprint_profile"),
    ("model-aliases", "model_aliases"),
    ("proxy-url", "proxy_url"),
    ("request-retry", "request_retry"),
    ("request-scoped-errors", "request_scoped_errors"),
    ("tool-prefix-disabled", "tool_prefix_disabled"),
];

/// Keys a fresh login always owns; a re-login never inherits them from the old file.
const TOKEN_LIFECYCLE_KEYS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "session_id",
    "expired",
    "last_refresh",
    "expires_in",
    "timestamp",
    "token_type",
    "user_code",
    "verification_uri",
    "verification_uri_complete",
];

/// Expiry keys in CPA's lookup order (top level first, then inside `token` / `Token`).
const EXPIRY_KEYS: &[&str] = &["expired", "expire", "expires_at", "expiresAt", "expiry", "expires"];
const LAST_REFRESH_KEYS: &[&str] = &["last_refresh", "lastRefresh", "last_refreshed_at", "lastRefreshedAt"];
const NESTED_TOKEN_KEYS: &[&str] = &["token", "Token"];

/// Largest weight the weighted round-robin honours; larger values are read as this.
pub const MAX_WEIGHT: i64 = 1_000_000;

/// Why bytes are not a usable auth file. The messages are shown to users as-is and never
/// contain field values (which may be secrets).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("file is empty")]
    Empty,
    #[error("invalid JSON at line {line} column {column}: {message}")]
    InvalidJson { line: usize, column: usize, message: String },
    #[error("not a JSON object")]
    NotObject,
    #[error("field `{field}` must be {expected}")]
    InvalidField { field: &'static str, expected: &'static str },
}

/// One auth file's JSON object. Keeps every key, in order, including ones we do not understand.
#[derive(Clone, PartialEq)]
pub struct Credential {
    fields: Map<String, Value>,
}

/// Shows the type and the key names only: values include tokens, which must never reach logs.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("type", &self.file_type())
            .field("keys", &self.fields.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Credential {
    /// Parses an auth file: must be a JSON object; legacy hyphenated keys are renamed in place
    /// (the canonical key wins when both exist); `weight`, `priority` and `disabled` are checked.
    pub fn from_json(bytes: &[u8]) -> Result<Credential, CredentialError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(CredentialError::Empty);
        }
        let value: Value = serde_json::from_slice(bytes).map_err(json_error)?;
        match value {
            Value::Object(map) => Credential::from_map(map),
            _ => Err(CredentialError::NotObject),
        }
    }

    /// Same checks and normalisation as [`Credential::from_json`], for an already parsed object.
    pub fn from_map(map: Map<String, Value>) -> Result<Credential, CredentialError> {
        let credential = Credential { fields: normalise_legacy_keys(map) };
        credential.validate()?;
        Ok(credential)
    }

    /// A credential holding only `{"type": provider_type}`.
    pub fn new(provider_type: &str) -> Credential {
        let mut fields = Map::new();
        fields.insert("type".into(), Value::String(provider_type.into()));
        Credential { fields }
    }

    /// The file content: 2-space indented JSON with a trailing newline.
    pub fn to_json_pretty(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec_pretty(&self.fields).expect("a map with string keys always serialises");
        out.push(b'\n');
        out
    }

    pub fn fields(&self) -> &Map<String, Value> {
        &self.fields
    }

    /// Free edits; the store re-validates before anything reaches disk.
    pub fn fields_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.fields
    }

    /// The raw `type` value, when it is a non-blank string.
    pub fn file_type(&self) -> Option<&str> {
        self.fields.get("type").and_then(Value::as_str).filter(|s| !s.trim().is_empty())
    }

    /// Provider key: lower-case `type`, with `gemini` meaning `gemini-cli`; a file without a
    /// type but with Kiro's `auth_method` (`builder-id` / `social`), or the Kiro IDE's own
    /// `authMethod` (`social` / `IdC`), is `kiro`.
    pub fn provider(&self) -> Option<String> {
        if let Some(t) = self.file_type() {
            let t = t.trim().to_ascii_lowercase();
            return Some(if t == "gemini" { "gemini-cli".into() } else { t });
        }
        if let Some(method) = self.str_field("auth_method") {
            return ["builder-id", "social"].iter().any(|m| method.eq_ignore_ascii_case(m)).then(|| "kiro".into());
        }
        let ide_method = self.str_field("authMethod")?;
        ["social", "idc"].iter().any(|m| ide_method.eq_ignore_ascii_case(m)).then(|| "kiro".into())
    }

    /// A string field, trimmed; `None` when absent, not a string, or blank.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        non_blank(self.fields.get(key))
    }

    pub fn email(&self) -> Option<&str> {
        self.str_field("email")
    }

    pub fn disabled(&self) -> bool {
        self.fields.get("disabled").and_then(Value::as_bool).unwrap_or(false)
    }

    pub fn set_disabled(&mut self, disabled: bool) {
        self.fields.insert("disabled".into(), Value::Bool(disabled));
    }

    /// Top-level `access_token` (Kiro IDE files: `accessToken`), else Gemini's `token.access_token`.
    pub fn access_token(&self) -> Option<&str> {
        self.token_field("access_token", "accessToken")
    }

    /// Top-level `refresh_token` (Kiro IDE files: `refreshToken`), else `token.refresh_token`.
    pub fn refresh_token(&self) -> Option<&str> {
        self.token_field("refresh_token", "refreshToken")
    }

    /// Access-token expiry: the first parseable of CPA's expiry keys, top level before nested.
    pub fn expiry(&self) -> Option<DateTime<Utc>> {
        first_timestamp(&self.fields, EXPIRY_KEYS)
            .or_else(|| self.nested_tokens().find_map(|token| first_timestamp(token, EXPIRY_KEYS)))
    }

    pub fn last_refresh(&self) -> Option<DateTime<Utc>> {
        first_timestamp(&self.fields, LAST_REFRESH_KEYS)
    }

    /// Routing tier (higher first); 0 when unset.
    pub fn priority(&self) -> i64 {
        self.fields.get("priority").and_then(json_int).unwrap_or(0)
    }

    /// Weighted round-robin weight (≤ 0 excludes the credential), capped at [`MAX_WEIGHT`].
    pub fn weight(&self) -> Option<i64> {
        self.fields.get("weight").and_then(json_int).map(|w| w.min(MAX_WEIGHT))
    }

    pub fn prefix(&self) -> Option<&str> {
        self.str_field("prefix")
    }

    pub fn note(&self) -> Option<&str> {
        self.str_field("note")
    }

    /// The account's own upstream proxy (`proxy_url`; legacy `proxy-url` is canonicalised on
    /// load): a proxy URL, or `direct`/`none` to bypass the global `proxy-url`.
    pub fn proxy_url(&self) -> Option<&str> {
        self.str_field("proxy_url")
    }

    pub fn project_id(&self) -> Option<&str> {
        self.str_field("project_id")
    }

    /// Display label: `label`, else `email`, else `project_id` (CPA's order).
    pub fn label(&self) -> Option<String> {
        self.str_field("label").or_else(|| self.email()).or_else(|| self.project_id()).map(str::to_owned)
    }

    /// Re-login merge: keeps every key of `previous` that `self` does not set, except the
    /// token-lifecycle keys, so user settings (prefix, proxy_url, priority, weight, note,
    /// headers, disabled, ...) survive while the new tokens replace the old ones. `disabled` is
    /// the user's switch even when the login sets it (providers write `"disabled": false`):
    /// logging in again must not re-enable an account the user turned off.
    pub fn carry_over_user_fields(&mut self, previous: &Credential) {
        for (key, value) in &previous.fields {
            let inherit = !self.fields.contains_key(key) || key == "disabled";
            if inherit && !TOKEN_LIFECYCLE_KEYS.contains(&key.as_str()) {
                self.fields.insert(key.clone(), value.clone());
            }
        }
    }

    fn token_field(&self, key: &str, camel_key: &str) -> Option<&str> {
        self.str_field(key)
            .or_else(|| self.str_field(camel_key))
            .or_else(|| self.nested_tokens().find_map(|token| non_blank(token.get(key))))
    }

    fn nested_tokens(&self) -> impl Iterator<Item = &Map<String, Value>> {
        NESTED_TOKEN_KEYS.iter().filter_map(|k| self.fields.get(*k)?.as_object())
    }

    fn validate(&self) -> Result<(), CredentialError> {
        let invalid = |field, expected| Err(CredentialError::InvalidField { field, expected });
        for field in ["weight", "priority"] {
            match self.fields.get(field) {
                None | Some(Value::Null) => {}
                Some(v) if json_int(v).is_some() => {}
                Some(_) => return invalid(field, "an integer"),
            }
        }
        match self.fields.get("disabled") {
            None | Some(Value::Null | Value::Bool(_)) => Ok(()),
            Some(_) => invalid("disabled", "a boolean"),
        }
    }
}

fn legacy_canonical(key: &str) -> Option<&'static str> {
    LEGACY_KEYS.iter().find(|(legacy, _)| *legacy == key).map(|(_, c)| *c)
}

/// The key CPA means by `key`: legacy hyphenated names (`proxy-url`) map to their snake_case
/// form (`proxy_url`); every other key is itself.
pub fn canonical_key(key: &str) -> &str {
    legacy_canonical(key).unwrap_or(key)
}

/// Renames legacy keys where they stand, so key order survives normalisation.
fn normalise_legacy_keys(map: Map<String, Value>) -> Map<String, Value> {
    let canonical_for = |key: &str| legacy_canonical(key);
    if !map.keys().any(|k| canonical_for(k).is_some()) {
        return map;
    }
    let present: Vec<String> = map.keys().cloned().collect();
    let mut out = Map::with_capacity(map.len());
    for (key, value) in map {
        match canonical_for(&key) {
            Some(canonical) if present.iter().any(|k| k == canonical) => {}
            Some(canonical) => {
                out.insert(canonical.to_owned(), value);
            }
            None => {
                out.insert(key, value);
            }
        }
    }
    out
}

fn json_error(err: serde_json::Error) -> CredentialError {
    // serde_json appends " at line L column C" to its message; we report position separately.
    let full = err.to_string();
    let suffix = format!(" at line {} column {}", err.line(), err.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_owned();
    CredentialError::InvalidJson { line: err.line(), column: err.column(), message }
}

/// An integer, also when written as a float with no fractional part (Go writes all numbers
/// as float64, and some tools emit `5.0`).
fn json_int(value: &Value) -> Option<i64> {
    if let Some(i) = value.as_i64() {
        return Some(i);
    }
    let f = value.as_f64()?;
    (f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64).then_some(f as i64)
}

fn non_blank(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

fn first_timestamp(map: &Map<String, Value>, keys: &[&str]) -> Option<DateTime<Utc>> {
    keys.iter().find_map(|k| map.get(*k).and_then(timestamp::parse))
}
