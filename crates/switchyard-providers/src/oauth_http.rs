//! What the OAuth token exchanges of all providers share: calling a token endpoint, reading its
//! JSON answer, deciding what a failure is (revoked, rate limited, transient, malformed) and
//! turning it into [`LoginError`] / [`RefreshError`] texts that never echo a token or code. How a
//! failure is worded is the provider's [`Wording`]; [`Standard`] gives only status, error code and
//! a scrubbed description.

use std::time::Duration;

use chrono::{DateTime, Local, SecondsFormat, TimeZone};
use reqwest::{RequestBuilder, StatusCode, header};
use serde_json::Value;
use switchyard_auth::login::{LoginError, RefreshError};

/// CPA's timeout for each call to an OAuth endpoint.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(30);

/// Error codes meaning the refresh token is dead: RFC 6749's `invalid_grant` and
/// `unauthorized_client` (Google's answer for a token issued to another client), and OpenAI's
/// refresh-token codes.
const DEAD_TOKEN_CODES: &[&str] = &[
    "invalid_grant",
    "unauthorized_client",
    "refresh_token_reused",
    "refresh_token_expired",
    "refresh_token_invalidated",
];

/// Longest server-supplied description kept in a message.
const MAX_DESCRIPTION_CHARS: usize = 200;

/// A successful token-endpoint answer: a JSON object with a non-blank `access_token` (AWS
/// SSO-OIDC and the Kiro auth service answer in camelCase: `accessToken`).
pub(crate) struct TokenResponse(Value);

impl TokenResponse {
    pub(crate) fn json(&self) -> &Value {
        &self.0
    }

    pub(crate) fn access_token(&self) -> &str {
        access_token_of(&self.0).expect("checked when the response was read")
    }

    pub(crate) fn str(&self, key: &str) -> Option<&str> {
        str_at(&self.0, &[key])
    }

    /// `now + expires_in` as RFC 3339; `None` when the answer has no usable `expires_in`.
    pub(crate) fn expiry(&self) -> Option<String> {
        let seconds = match self.0.get("expires_in")? {
            Value::Number(n) => n.as_i64()?,
            Value::String(s) => s.trim().parse().ok()?,
            _ => return None,
        };
        // Checked: an absurd `expires_in` must not panic.
        let lifetime = chrono::Duration::try_seconds(seconds.max(0))?;
        Local::now().checked_add_signed(lifetime).map(rfc3339)
    }
}

/// How a provider words token-endpoint failures. Which failure an answer is, is decided by
/// [`exchange`] and [`refresh`] alike for every provider; only the texts are the provider's.
pub(crate) trait Wording {
    /// An error answer, e.g. `HTTP 400: invalid_grant (Refresh token revoked)`; the whole text
    /// of a dead refresh token.
    fn error_answer(&self, reply: &Reply) -> String;

    /// An error answer that fails an exchange, or a refresh that may be retried.
    fn failed(&self, reply: &Reply) -> String {
        format!("token endpoint answered {}", self.error_answer(reply))
    }

    /// A 2xx answer that is no token answer; `why` says what is wrong with it.
    fn malformed(&self, why: String) -> String {
        why
    }
}

/// Status, error code and scrubbed description of RFC 6749 and OpenAI error answers.
pub(crate) struct Standard;

impl Wording for Standard {
    fn error_answer(&self, reply: &Reply) -> String {
        reply.oauth_error().describe(reply.status)
    }
}

/// Authorization-code exchange: the token answer, or why it failed.
pub(crate) async fn exchange(request: RequestBuilder, wording: &impl Wording) -> Result<TokenResponse, LoginError> {
    let failed = |text: String| LoginError::TokenExchange(text);
    let reply = send(request).await.map_err(failed)?;
    if !reply.status.is_success() {
        return Err(failed(wording.failed(&reply)));
    }
    reply.tokens().map_err(|why| failed(wording.malformed(why)))
}

/// Refresh-token grant: the token answer, or a [`RefreshError`] saying whether to retry.
pub(crate) async fn refresh(request: RequestBuilder, wording: &impl Wording) -> Result<TokenResponse, RefreshError> {
    refresh_where_dead(request, wording, &[]).await
}

/// [`refresh`] for a server that also refuses a dead refresh token with one of `dead_statuses`
/// (Kimi: 403), whatever the body says.
pub(crate) async fn refresh_where_dead(
    request: RequestBuilder,
    wording: &impl Wording,
    dead_statuses: &[StatusCode],
) -> Result<TokenResponse, RefreshError> {
    let transient = |text: String| RefreshError::Transient(text);
    let reply = send(request).await.map_err(transient)?;
    if reply.status == StatusCode::TOO_MANY_REQUESTS {
        return Err(RefreshError::RateLimited { retry_after: reply.retry_after });
    }
    if reply.is_dead_token() || dead_statuses.contains(&reply.status) {
        return Err(RefreshError::Revoked(wording.error_answer(&reply)));
    }
    if !reply.status.is_success() {
        return Err(transient(wording.failed(&reply)));
    }
    reply.tokens().map_err(|why| transient(wording.malformed(why)))
}

/// `base` with `params` as its query: a browser login's authorize URL. `what` names it in the
/// error, e.g. `Claude authorize URL`.
pub(crate) fn url_with_params(what: &str, base: &str, params: &[(&str, &str)]) -> Result<String, LoginError> {
    url::Url::parse_with_params(base, params)
        .map(String::from)
        .map_err(|e| LoginError::Provider(format!("invalid {what} {base:?}: {e}")))
}

/// The current local time as CPA writes it (RFC 3339, seconds, local offset).
pub(crate) fn now() -> String {
    rfc3339(Local::now())
}

/// `time` as CPA writes auth-file times: RFC 3339 with whole seconds and the local offset.
pub(crate) fn rfc3339<Tz: TimeZone>(time: DateTime<Tz>) -> String {
    time.with_timezone(&Local).to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// `text` cut to `max_chars` characters, with `…` where it was cut.
pub(crate) fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// A token answer's access token: RFC 6749's `access_token`, else AWS's camelCase `accessToken`.
pub(crate) fn access_token_of(value: &Value) -> Option<&str> {
    str_at(value, &["access_token"]).or_else(|| str_at(value, &["accessToken"]))
}

/// The trimmed, non-blank string at `path` inside nested JSON objects.
pub(crate) fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, key| v.get(key))?.as_str().map(str::trim).filter(|s| !s.is_empty())
}

/// A reqwest failure with its causes ("error sending request ...: tcp connect error: ..."); the
/// request body (which holds the code or refresh token) is never part of it.
pub(crate) fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// One HTTP answer, read whole (OAuth and account answers are small).
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Vec<u8>,
    /// The credential values the request carried (codes, verifiers, tokens, client secrets):
    /// masked by value in every text made from this answer, since servers echo what they got.
    sent_secrets: Vec<String>,
}

/// Sends a request (with [`TIMEOUT`]) and reads the whole answer. Transport failures come back
/// as text ([`describe`]).
pub(crate) async fn send(request: RequestBuilder) -> Result<Reply, String> {
    let (client, request) = request.timeout(TIMEOUT).build_split();
    let request = request.map_err(|e| describe(&e))?;
    let sent_secrets = secrets_of(&request);
    // A transport error names the URL, whose query may hold a token.
    let failed = |e: reqwest::Error| switchyard_redact::values(&describe(&e), &sent_secrets);
    let response = client.execute(request).await.map_err(failed)?;
    let status = response.status();
    let retry_after = response.headers().get(header::RETRY_AFTER).and_then(parse_retry_after);
    let body = response.bytes().await.map_err(failed)?.to_vec();
    Ok(Reply { status, retry_after, body, sent_secrets })
}

/// The values of credential-named fields of a request (form or JSON body, query), and the
/// secret of its `Authorization` header (a Basic password, a Bearer token).
fn secrets_of(request: &reqwest::Request) -> Vec<String> {
    let mut found = Vec::new();
    let mut named = |name: &str, value: &str| {
        if switchyard_redact::is_sensitive_name(name) && !value.is_empty() {
            found.push(value.to_owned());
        }
    };
    for (name, value) in request.url().query_pairs() {
        named(&name, &value);
    }
    if let Some(body) = request.body().and_then(|b| b.as_bytes()) {
        match serde_json::from_slice::<Value>(body) {
            Ok(value) => json_secrets(&value, &mut named),
            Err(_) => url::form_urlencoded::parse(body).for_each(|(name, value)| named(&name, &value)),
        }
    }
    if let Some(value) = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
                use base64::Engine as _;
                let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).unwrap_or_default();
                if let Some((_, password)) = String::from_utf8_lossy(&decoded).split_once(':') {
                    found.push(password.to_owned());
                }
            }
            Some((_, rest)) => found.push(rest.trim().to_owned()),
            None => found.push(value.to_owned()),
        }
    }
    found
}

fn json_secrets(value: &Value, named: &mut impl FnMut(&str, &str)) {
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                match inner {
                    Value::String(text) => named(key, text),
                    other => json_secrets(other, named),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| json_secrets(item, named)),
        _ => {}
    }
}

impl Reply {
    /// An answer that did not come from [`send`] (nothing to mask by value).
    pub(crate) fn new(status: StatusCode, body: Vec<u8>) -> Reply {
        Reply { status, retry_after: None, body, sent_secrets: Vec::new() }
    }

    /// The body as JSON, if it is.
    pub(crate) fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The error the server reported, its description masked ([`Reply::scrub`]).
    pub(crate) fn oauth_error(&self) -> OAuthError {
        let mut error = OAuthError::parse(&self.body);
        error.description = error.description.map(|d| self.scrub(&d));
        error
    }

    /// Server text fit for a message: the values this request sent masked wherever they appear,
    /// then every token-shaped word ([`scrub`]).
    pub(crate) fn scrub(&self, text: &str) -> String {
        scrub(&switchyard_redact::values(text, &self.sent_secrets))
    }

    /// A dead refresh token: a client error that is a 401 or names a dead-token code or a
    /// revocation. A server error never is, whatever its body says.
    fn is_dead_token(&self) -> bool {
        self.status.is_client_error() && (self.status == StatusCode::UNAUTHORIZED || self.oauth_error().is_dead_token())
    }

    /// The body of a 2xx answer. Parse errors are reported without the body: a half-written
    /// answer may still hold a token.
    pub(crate) fn tokens(&self) -> Result<TokenResponse, String> {
        let value: Value = serde_json::from_slice(&self.body)
            .map_err(|_| format!("token endpoint answered HTTP {} with malformed JSON", self.status.as_u16()))?;
        if !value.is_object() {
            return Err("token endpoint answered with a non-object JSON body".into());
        }
        if access_token_of(&value).is_none() {
            return Err("token endpoint answer has no access_token".into());
        }
        Ok(TokenResponse(value))
    }
}

/// The error an OAuth server reported: RFC 6749 `{"error": "...", "error_description": "..."}`,
/// or OpenAI's `{"error": {"code": "...", "message": "..."}}`.
#[derive(Default)]
pub(crate) struct OAuthError {
    pub(crate) code: Option<String>,
    description: Option<String>,
}

impl OAuthError {
    fn parse(body: &[u8]) -> OAuthError {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return OAuthError::default();
        };
        let (code, description) = match value.get("error") {
            Some(Value::Object(_)) => (
                str_at(&value, &["error", "code"]).or_else(|| str_at(&value, &["error", "type"])),
                str_at(&value, &["error", "message"]),
            ),
            _ => (str_at(&value, &["error"]), str_at(&value, &["error_description"])),
        };
        OAuthError {
            // Codes are identifiers; anything else is not trusted into a message.
            code: code.filter(|c| c.len() <= 64 && c.chars().all(is_code_char)).map(str::to_owned),
            description: description.map(str::to_owned),
        }
    }

    fn is_dead_token(&self) -> bool {
        let code = self.code.as_deref().unwrap_or_default();
        let revoked = |text: &str| text.to_ascii_lowercase().contains("revoked");
        DEAD_TOKEN_CODES.contains(&code) || revoked(code) || self.description.as_deref().is_some_and(revoked)
    }

    /// `HTTP 400: invalid_grant (Refresh token revoked)`.
    fn describe(&self, status: StatusCode) -> String {
        let mut text = format!("HTTP {}", status.as_u16());
        if let Some(code) = &self.code {
            text.push_str(&format!(": {code}"));
        }
        if let Some(description) = &self.description {
            text.push_str(&format!(" ({description})"));
        }
        text
    }
}

fn is_code_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
}

/// Server text with every token-shaped word (20+ token characters in a row) masked and the
/// length capped: some servers echo the rejected token in their error description.
pub(crate) fn scrub(text: &str) -> String {
    let is_token_char = |c: char| c.is_ascii_alphanumeric() || "-_.~+/=".contains(c);
    let looks_like_token = |word: &str| word.split(|c| !is_token_char(c)).any(|run| run.len() >= 20);
    let words: Vec<&str> =
        text.split_whitespace().map(|word| if looks_like_token(word) { "[redacted]" } else { word }).collect();
    truncate(&words.join(" "), MAX_DESCRIPTION_CHARS)
}

/// `Retry-After` as delay-seconds or an HTTP date.
fn parse_retry_after(value: &header::HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(text).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_errors_of_both_shapes_are_read() {
        let rfc = OAuthError::parse(br#"{"error":"invalid_grant","error_description":"Refresh token revoked"}"#);
        assert_eq!(rfc.describe(StatusCode::BAD_REQUEST), "HTTP 400: invalid_grant (Refresh token revoked)");
        assert!(rfc.is_dead_token());

        let openai = OAuthError::parse(br#"{"error":{"code":"refresh_token_reused","message":"Already used."}}"#);
        assert_eq!(openai.describe(StatusCode::UNAUTHORIZED), "HTTP 401: refresh_token_reused (Already used.)");
        assert!(openai.is_dead_token());

        let revoked = OAuthError::parse(br#"{"error":"invalid_request","error_description":"Token was revoked"}"#);
        assert!(revoked.is_dead_token());

        let html = OAuthError::parse(b"<html>Bad Gateway</html>");
        assert_eq!(html.describe(StatusCode::BAD_GATEWAY), "HTTP 502");
        assert!(!html.is_dead_token());

        let other_client = OAuthError::parse(br#"{"error":"unauthorized_client","error_description":"Unauthorized"}"#);
        assert!(other_client.is_dead_token());
    }

    #[test]
    fn the_secrets_a_request_carries_are_found_in_forms_json_queries_and_auth_headers() {
        let client = reqwest::Client::new();
        let secrets = |request: RequestBuilder| {
            let mut found = secrets_of(&request.build().unwrap());
            found.sort();
            found
        };
        let form = client
            .post("http://127.0.0.1:1/token?accessToken=q-tok")
            .basic_auth("client", Some("c-secret"))
            .form(&[("grant_type", "authorization_code"), ("code", "ab1"), ("code_verifier", "v-1"), ("x", "kept")]);
        assert_eq!(secrets(form), ["ab1", "c-secret", "q-tok", "v-1"]);
        let json = client
            .post("http://127.0.0.1:1/token")
            .bearer_auth("b-tok")
            .json(&serde_json::json!({"refreshToken": "rt-1", "nested": {"clientSecret": "cs-1"}, "grant_type": "x"}));
        assert_eq!(secrets(json), ["b-tok", "cs-1", "rt-1"]);
    }

    #[test]
    fn an_echoed_secret_is_masked_by_value_in_server_texts() {
        let body = br#"{"error":"invalid_grant","error_description":"Invalid code ab1 (verifier v-1)"}"#;
        let mut reply = Reply::new(StatusCode::BAD_REQUEST, body.to_vec());
        reply.sent_secrets = vec!["ab1".into(), "v-1".into()];
        let text = Standard.error_answer(&reply);
        assert!(text.starts_with("HTTP 400: invalid_grant (Invalid code ["), "{text}");
        assert!(!text.contains("ab1") && !text.contains("v-1"), "{text}");
    }

    #[test]
    fn only_client_errors_are_dead_tokens() {
        let reply =
            |status: u16, body: &str| Reply::new(StatusCode::from_u16(status).unwrap(), body.as_bytes().to_vec());
        let invalid_grant = r#"{"error":"invalid_grant"}"#;
        assert!(reply(400, invalid_grant).is_dead_token());
        assert!(reply(401, "").is_dead_token());
        assert!(reply(400, r#"{"error":"unauthorized_client"}"#).is_dead_token());
        assert!(!reply(500, invalid_grant).is_dead_token(), "a server error is never a dead token");
        assert!(!reply(400, r#"{"error":"invalid_request"}"#).is_dead_token());
    }

    #[test]
    fn descriptions_lose_token_shaped_words_and_codes_must_be_identifiers() {
        let body = br#"{"error":"bad code: abcdefghijklmnopqrstuvwxyz","error_description":"token sk-ant-ort01-abcdefghijklmnopqrstuv is unknown"}"#;
        let error = Reply::new(StatusCode::BAD_REQUEST, body.to_vec()).oauth_error();
        assert_eq!(error.code, None);
        assert_eq!(error.description.as_deref(), Some("token [redacted] is unknown"));
        assert_eq!(scrub(&"word ".repeat(100)).chars().count(), MAX_DESCRIPTION_CHARS + 1);
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let seconds = header::HeaderValue::from_static("30");
        assert_eq!(parse_retry_after(&seconds), Some(Duration::from_secs(30)));
        let past = header::HeaderValue::from_static("Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(parse_retry_after(&past), None);
        let later = chrono::Utc::now() + chrono::Duration::seconds(120);
        let date = header::HeaderValue::from_str(&later.to_rfc2822()).unwrap();
        let parsed = parse_retry_after(&date).unwrap();
        assert!(parsed > Duration::from_secs(100) && parsed <= Duration::from_secs(120));
    }

    #[test]
    fn expiry_reads_numbers_and_numeric_strings_and_survives_absurd_values() {
        let expiry = |expires_in: Value| TokenResponse(serde_json::json!({"expires_in": expires_in})).expiry();
        for value in [serde_json::json!(3600), serde_json::json!(" 3600 ")] {
            let at = chrono::DateTime::parse_from_rfc3339(&expiry(value).unwrap()).unwrap();
            let lifetime = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
            assert!(lifetime > chrono::Duration::seconds(3590) && lifetime <= chrono::Duration::seconds(3600));
        }
        assert_eq!(expiry(serde_json::json!(i64::MAX)), None);
        assert_eq!(expiry(serde_json::json!("soon")), None);
    }

    #[test]
    fn token_answers_may_name_the_access_token_in_camel_case() {
        let reply = |body: &str| Reply::new(StatusCode::OK, body.as_bytes().to_vec());
        assert_eq!(reply(r#"{"accessToken":"aoa-1","expiresIn":3600}"#).tokens().unwrap().access_token(), "aoa-1");
        assert_eq!(reply(r#"{"access_token":"at","accessToken":"other"}"#).tokens().unwrap().access_token(), "at");
        let error = reply(r#"{"accessToken":"  "}"#).tokens().err().unwrap();
        assert_eq!(error, "token endpoint answer has no access_token");
    }

    #[test]
    fn nested_strings_are_trimmed_and_blank_is_none() {
        let value = serde_json::json!({"a": {"b": " x ", "c": "  ", "d": 1}});
        assert_eq!(str_at(&value, &["a", "b"]), Some("x"));
        assert_eq!(str_at(&value, &["a", "c"]), None);
        assert_eq!(str_at(&value, &["a", "d"]), None);
        assert_eq!(str_at(&value, &["z"]), None);
    }
}
