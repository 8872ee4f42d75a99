//! Redaction of secrets (tokens, authorization codes, keys, cookies) before anything is logged,
//! returned in an error, or shown in the panel.
//!
//! Every place that could print such a value goes through one of these helpers; the planted-secret
//! test in the binary crate greps a full run's logs to prove it.

mod summary;

use std::fmt;

use serde_json::Value;

pub use summary::{SUMMARY_MAX_BYTES, failure_summary, mask_emails};

/// A secret that displays as its length only, so log lines stay useful for debugging
/// ("was a token there at all, and how long was it?") without revealing any of it.
pub struct Redacted<'a>(pub &'a str);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("[empty]")
        } else {
            write!(f, "[redacted {} chars]", self.0.chars().count())
        }
    }
}

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Wraps a secret for `tracing` fields: `tracing::debug!(token = %redact::secret(&t))`.
pub fn secret(value: &str) -> Redacted<'_> {
    Redacted(value)
}

/// True for JSON keys, header names and query parameters whose values are credentials.
pub fn is_sensitive_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase().replace('-', "_");
    const EXACT: &[&str] = &[
        "code",
        "state",
        "key",
        "authorization",
        "proxy_authorization",
        "auth_token",
        "password",
        "passwd",
        "credentials",
        "assertion",
        "device_code",
        "user_code",
    ];
    const CONTAINS: &[&str] = &[
        "token",
        "secret",
        "cookie",
        "api_key",
        "apikey",
        "private_key",
        "password",
        "verifier",
        "session_id",
        "management_key",
    ];
    EXACT.contains(&lower.as_str()) || CONTAINS.iter().any(|needle| lower.contains(needle))
}

/// A deep copy of `value` in which every value under a sensitive key is replaced by its
/// redacted form (objects and arrays under such keys are redacted whole).
pub fn json(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, inner)| {
                    let shown = if is_sensitive_name(key) { redact_value(inner) } else { json(inner) };
                    (key.clone(), shown)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        other => other.clone(),
    }
}

fn redact_value(value: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(secret(s).to_string()),
        Value::Null | Value::Bool(_) => value.clone(),
        _ => Value::String("[redacted]".to_owned()),
    }
}

/// A query string (without the leading `?`) with the values of sensitive parameters redacted.
/// Names and order are kept; the value is not decoded, so its length is the encoded length.
pub fn query(query: &str) -> String {
    query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) if is_sensitive_name(name) => format!("{name}={}", secret(value)),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value fit for logs: sensitive headers keep only their scheme (e.g. `Bearer`).
pub fn header(name: &str, value: &str) -> String {
    if !is_sensitive_name(name) && !name.eq_ignore_ascii_case("x-goog-api-key") {
        return value.to_owned();
    }
    match value.split_once(' ') {
        Some((scheme, rest)) if !scheme.is_empty() => format!("{scheme} {}", secret(rest.trim())),
        _ => secret(value).to_string(),
    }
}

/// Free text (an upstream error body, an I/O error message) with anything that looks like a
/// credential masked: `Bearer <x>`, JSON `"…token…": "<x>"` pairs, `key=<x>` pairs, JWTs and
/// well-known key prefixes. Conservative by design: it may mask harmless text, never the reverse.
pub fn text(input: &str) -> String {
    // JSON pairs first, in one pass over the whole text: only a scan from the start knows which
    // quotes open strings.
    let input = json_pairs(input);
    let mut out = String::with_capacity(input.len());
    let mut rest = input.as_str();
    while let Some((start, len)) = next_secret(rest) {
        out.push_str(&rest[..start]);
        out.push_str(&secret(&rest[start..start + len]).to_string());
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

/// Values shorter than this are not masked by [`values`]: a one- or two-character "secret"
/// would blank ordinary words. No code, state, verifier or token is this short.
pub const MIN_MASKED_VALUE_CHARS: usize = 3;

/// `text` with every occurrence of each of `secrets` masked, whatever its length or shape: the
/// values a caller knows it sent or received (an authorization code, a state, a token), which a
/// server may echo back. The form-encoded spelling of a value (`a%2Fb`, `a+b`) is masked too,
/// since servers echo what they were sent. Longer values go first, so a secret that contains
/// another is masked whole.
pub fn values<S: AsRef<str>>(text: &str, secrets: &[S]) -> String {
    let mut spellings: Vec<String> = Vec::new();
    for secret in secrets {
        let secret = secret.as_ref();
        if secret.chars().count() < MIN_MASKED_VALUE_CHARS {
            continue;
        }
        let encoded: String = url_form_encode(secret);
        spellings.push(secret.to_owned());
        if encoded != secret {
            spellings.push(encoded);
        }
    }
    spellings.sort_by_key(|s| std::cmp::Reverse(s.len()));
    spellings.dedup();
    let mut out = text.to_owned();
    for spelling in &spellings {
        if out.contains(spelling.as_str()) {
            out = out.replace(spelling.as_str(), &secret(spelling).to_string());
        }
    }
    out
}

/// `application/x-www-form-urlencoded` spelling of `value` (space as `+`).
fn url_form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => out.push(byte as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Finds the next credential-looking span in `s`: (byte offset, byte length).
fn next_secret(s: &str) -> Option<(usize, usize)> {
    let mut best: Option<(usize, usize)> = None;
    let mut consider = |candidate: Option<(usize, usize)>| {
        if let Some(c) = candidate
            && c.1 > 0
            && best.is_none_or(|b| c.0 < b.0)
        {
            best = Some(c);
        }
    };
    consider(after_marker(s, "Bearer "));
    consider(after_marker(s, "bearer "));
    consider(query_secret_value(s));
    for prefix in ["sk-", "eyJ", "ya29.", "1//", "gho_", "ghu_", "ghp_", "AIza"] {
        consider(token_with_prefix(s, prefix));
    }
    best
}

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '+' | '/' | '=')
}

fn token_len(s: &str) -> usize {
    s.find(|c: char| !is_token_char(c)).unwrap_or(s.len())
}

fn after_marker(s: &str, marker: &str) -> Option<(usize, usize)> {
    let at = s.find(marker)? + marker.len();
    Some((at, token_len(&s[at..])))
}

fn token_with_prefix(s: &str, prefix: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(found) = s[from..].find(prefix) {
        let at = from + found;
        let starts_word = s[..at].chars().next_back().is_none_or(|c| !is_token_char(c));
        let len = token_len(&s[at..]);
        // Short matches ("sk-1", the word "eyJ") are not credentials.
        if starts_word && len >= prefix.len() + 8 {
            return Some((at, len));
        }
        from = at + prefix.len();
    }
    None
}

/// JSON-ish text with the string value of every `"<sensitive name>": "<value>"` pair masked.
/// Strings are read with their escapes, so a quote inside one never flips the parity.
fn json_pairs(s: &str) -> String {
    /// The end (exclusive, after the closing quote) of the string opening at `start`.
    fn string_end(s: &str, start: usize) -> usize {
        let bytes = s.as_bytes();
        let mut i = start + 1;
        while i < bytes.len() {
            match bytes[i] {
                b'\\' => i += 2,
                b'"' => return i + 1,
                _ => i += 1,
            }
        }
        s.len()
    }
    let mut out = String::with_capacity(s.len());
    let mut at = 0;
    while let Some(open) = s[at..].find('"').map(|i| at + i) {
        let close = string_end(s, open);
        out.push_str(&s[at..close]);
        at = close;
        let name = s[open + 1..close].strip_suffix('"').unwrap_or(&s[open + 1..close]);
        let after = &s[close..];
        let Some(value) = after.trim_start().strip_prefix(':').map(str::trim_start) else { continue };
        if !is_sensitive_name(name) || !value.starts_with('"') {
            continue;
        }
        let value_open = s.len() - value.len();
        let value_close = string_end(s, value_open);
        let inner = &s[value_open + 1..value_close];
        let inner = inner.strip_suffix('"').unwrap_or(inner);
        out.push_str(&s[close..=value_open]);
        out.push_str(&secret(inner).to_string());
        out.push_str(&s[value_open + 1 + inner.len()..value_close]);
        at = value_close;
    }
    out.push_str(&s[at..]);
    out
}

/// `name=value` pairs (query strings, form bodies) with a sensitive name.
fn query_secret_value(s: &str) -> Option<(usize, usize)> {
    let mut from = 0;
    while let Some(eq) = s[from..].find('=') {
        let eq_at = from + eq;
        let name_start =
            s[..eq_at].rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-')).map_or(0, |i| i + 1);
        let name = &s[name_start..eq_at];
        if !name.is_empty() && is_sensitive_name(name) {
            let value_start = eq_at + 1;
            let len = s[value_start..]
                .find(|c: char| c == '&' || c.is_whitespace() || c == '"' || c == '\'')
                .unwrap_or(s.len() - value_start);
            if len > 0 {
                return Some((value_start, len));
            }
        }
        from = eq_at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_masks_known_secrets_by_value_whatever_their_length() {
        let text = "invalid code ab12 (state x/y z, again ab12); code x%2Fy+z; note ok";
        let masked = values(text, &["ab12", "x/y z", "ok", ""]);
        assert!(!masked.contains("ab12") && !masked.contains("x/y z") && !masked.contains("x%2Fy+z"), "{masked}");
        // Below the minimum length a value is left alone (it would blank ordinary words).
        assert!(masked.contains("note ok"), "{masked}");
        assert_eq!(values("abcdef abc", &["abc", "abcdef"]), "[redacted 6 chars] [redacted 3 chars]");
    }

    #[test]
    fn secret_shows_only_length() {
        assert_eq!(secret("abcdef").to_string(), "[redacted 6 chars]");
        assert_eq!(secret("").to_string(), "[empty]");
        assert_eq!(format!("{:?}", secret("abc")), "[redacted 3 chars]");
    }

    #[test]
    fn sensitive_names() {
        for name in [
            "access_token",
            "refresh_token",
            "id_token",
            "api_key",
            "api-key",
            "X-Api-Key",
            "Authorization",
            "Cookie",
            "set-cookie",
            "client_secret",
            "code",
            "code_verifier",
            "secret-key",
            "X-Management-Key",
            "key",
            "state",
            "password",
            "private_key",
        ] {
            assert!(is_sensitive_name(name), "{name}");
        }
        for name in ["email", "type", "expired", "prefix", "model", "name", "priority", "project_id"] {
            assert!(!is_sensitive_name(name), "{name}");
        }
    }

    #[test]
    fn json_redacts_nested_sensitive_values_only() {
        let input = json!({
            "type": "gemini",
            "email": "a@b.c",
            "token": {"access_token": "ya29.secret", "expiry": "2026-01-01T00:00:00Z"},
            "service_account": {"private_key": "-----BEGIN-----", "client_email": "sa@x"},
            "list": [{"refresh_token": "r1"}],
            "disabled": false
        });
        let out = json(&input);
        let text = out.to_string();
        for secret_value in ["ya29.secret", "-----BEGIN-----", "r1\""] {
            assert!(!text.contains(secret_value), "{secret_value} leaked in {text}");
        }
        assert_eq!(out["email"], "a@b.c");
        assert_eq!(out["type"], "gemini");
        assert_eq!(out["disabled"], false);
        assert_eq!(out["service_account"]["client_email"], "sa@x");
    }

    #[test]
    fn query_redacts_values_of_sensitive_params() {
        assert_eq!(
            query("provider=claude&code=abc123&state=s1&is_webui=1"),
            "provider=claude&code=[redacted 6 chars]&state=[redacted 2 chars]&is_webui=1"
        );
        assert_eq!(query("key=AIzaXYZ"), "key=[redacted 7 chars]");
        assert_eq!(query(""), "");
    }

    #[test]
    fn header_keeps_scheme_only() {
        assert_eq!(header("Authorization", "Bearer tok123"), "Bearer [redacted 6 chars]");
        assert_eq!(header("x-api-key", "sk-1"), "[redacted 4 chars]");
        assert_eq!(header("x-goog-api-key", "AIza1"), "[redacted 5 chars]");
        assert_eq!(header("content-type", "application/json"), "application/json");
    }

    #[test]
    fn text_masks_credentials_in_free_text() {
        let cases = [
            ("upstream said: Authorization failed for Bearer abc.def-ghi", "abc.def-ghi"),
            (r#"{"error":"bad","refresh_token": "rt-SECRET-1"}"#, "rt-SECRET-1"),
            ("POST /token body grant_type=refresh_token&refresh_token=1//0gSECRET&client_id=x", "1//0gSECRET"),
            ("key sk-ant-oat01-ABCDEFGHIJKLMNOP rejected", "sk-ant-oat01-ABCDEFGHIJKLMNOP"),
            ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig in header", "eyJhbGciOiJIUzI1NiJ9"),
            // A pair after another secret, and after a string holding an escaped quote.
            (r#"{"message":"Bearer tok-1234567890 x","api_key":"k-SECRET-2"}"#, "k-SECRET-2"),
            (r#"{"message":"say \"hi\": ok","token":"t-SECRET-3"}"#, "t-SECRET-3"),
        ];
        for (input, planted) in cases {
            let out = text(input);
            assert!(!out.contains(planted), "{planted} leaked: {out}");
            assert!(out.contains("[redacted"), "{out}");
        }
        // Text without credentials is unchanged, including lookalikes that are too short.
        for benign in ["model claude-sonnet-4-5 is unknown", "sk-1 is short", "a=b&c=d", ""] {
            assert_eq!(text(benign), benign);
        }
        assert!(text("grant_type=refresh_token").contains("grant_type=refresh_token"));
    }
}
