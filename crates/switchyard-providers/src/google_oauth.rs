//! Google OAuth pieces Gemini CLI and Antigravity share: the authorize URL, the code exchange and
//! the refresh grant (through [`oauth_http`], with the client secret in the form and Google's
//! wording), userinfo, and readers for Cloud Code Assist answers.
//!
//! Error texts are built from Google's error fields only (never from request bodies) and are
//! scrubbed of the code or token in play, so they are safe to show in `/get-auth-status`.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::RequestBuilder;
use serde_json::Value;
use switchyard_auth::login::{AuthorizeRequest, LoginError, LoginOptions, RefreshError};

use crate::oauth_http::{self, Reply, TokenResponse, Wording};

/// Lifetime assumed when a token answer has no `expires_in` (Google normally sends 3599).
const DEFAULT_EXPIRES_IN: i64 = 3600;
/// Login option overriding the onboarding poll interval, in milliseconds (tests use 0).
const POLL_OPTION: &str = "onboard_poll_ms";
/// Longest upstream message repeated in an error.
const MAX_MESSAGE_CHARS: usize = 300;

/// A Google installed-app OAuth client (the public id and secret the real tools ship).
pub(crate) struct OAuthClient {
    pub id: &'static str,
    pub secret: &'static str,
    pub scopes: &'static [&'static str],
}

/// A successful answer of the token endpoint.
pub(crate) struct Tokens {
    pub access_token: String,
    /// Google sends one on the code exchange only; refresh answers never rotate it.
    pub refresh_token: Option<String>,
    pub token_type: String,
    pub expires_in: i64,
}

impl Tokens {
    pub fn expiry(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now + chrono::Duration::seconds(self.expires_in)
    }

    /// Google's reading of a token answer: `Bearer` and [`DEFAULT_EXPIRES_IN`] when left out.
    fn from_answer(tokens: &TokenResponse) -> Tokens {
        let expires_in = tokens.json().get("expires_in").and_then(Value::as_i64).filter(|s| *s > 0);
        Tokens {
            access_token: tokens.access_token().to_owned(),
            refresh_token: tokens.str("refresh_token").map(str::to_owned),
            token_type: tokens.str("token_type").unwrap_or("Bearer").to_owned(),
            expires_in: expires_in.unwrap_or(DEFAULT_EXPIRES_IN),
        }
    }
}

/// `HTTP <status>` plus Google's own message when the body carries one.
pub(crate) fn error_text(reply: &Reply) -> String {
    let status = reply.status.as_u16();
    match reply.json().as_ref().and_then(describe_error) {
        Some(detail) => format!("HTTP {status}: {}", oauth_http::truncate(&reply.scrub(&detail), MAX_MESSAGE_CHARS)),
        None => format!("HTTP {status}"),
    }
}

/// Google's texts for token-endpoint failures (the code or refresh token of the call is masked
/// by [`Reply::scrub`], like every server text).
struct GoogleWording;

impl Wording for GoogleWording {
    fn error_answer(&self, reply: &Reply) -> String {
        error_text(reply)
    }

    fn failed(&self, reply: &Reply) -> String {
        error_text(reply)
    }

    fn malformed(&self, _why: String) -> String {
        "the token endpoint sent a malformed answer".into()
    }
}

/// Google's authorize URL: offline access and forced consent, so a refresh token is issued.
pub(crate) fn authorize_url(
    base: &str,
    client: &OAuthClient,
    request: &AuthorizeRequest<'_>,
) -> Result<String, LoginError> {
    let mut url = url::Url::parse(base).map_err(|e| LoginError::Provider(format!("invalid authorize URL: {e}")))?;
    url.query_pairs_mut()
        .append_pair("client_id", client.id)
        .append_pair("redirect_uri", request.redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", &client.scopes.join(" "))
        .append_pair("state", request.state)
        .append_pair("access_type", "offline")
        .append_pair("prompt", "consent");
    Ok(url.into())
}

/// Trades an authorization code for tokens (form body with the client secret; no PKCE).
pub(crate) async fn exchange_code(
    http: &reqwest::Client,
    token_url: &str,
    client: &OAuthClient,
    code: &str,
    redirect_uri: &str,
) -> Result<Tokens, LoginError> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", client.id),
        ("client_secret", client.secret),
        ("redirect_uri", redirect_uri),
    ];
    let tokens = oauth_http::exchange(http.post(token_url).form(&form), &GoogleWording).await?;
    Ok(Tokens::from_answer(&tokens))
}

/// Renews an access token with the refresh-token grant (Google does not rotate the refresh token).
pub(crate) async fn refresh(
    http: &reqwest::Client,
    token_url: &str,
    client: &OAuthClient,
    refresh_token: &str,
) -> Result<Tokens, RefreshError> {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
        ("client_id", client.id),
        ("client_secret", client.secret),
    ];
    let tokens = oauth_http::refresh(http.post(token_url).form(&form), &GoogleWording).await?;
    Ok(Tokens::from_answer(&tokens))
}

/// The account's email from a userinfo endpoint (v1 or v2; same shape).
pub(crate) async fn fetch_email(
    http: &reqwest::Client,
    userinfo_url: &str,
    access_token: &str,
) -> Result<String, LoginError> {
    let failed = LoginError::Identity;
    let answer = oauth_http::send(http.get(userinfo_url).bearer_auth(access_token)).await.map_err(failed)?;
    if !answer.status.is_success() {
        return Err(failed(error_text(&answer)));
    }
    let info = answer.json().ok_or_else(|| failed("the userinfo endpoint sent a malformed answer".into()))?;
    info.get("email")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|email| !email.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| failed("the account has no email address".into()))
}

/// Sends a Google API request and returns its JSON answer; anything else is an error text.
pub(crate) async fn send_json(request: RequestBuilder) -> Result<Value, String> {
    let answer = oauth_http::send(request).await?;
    if !answer.status.is_success() {
        return Err(error_text(&answer));
    }
    answer.json().ok_or_else(|| format!("HTTP {}: malformed JSON answer", answer.status.as_u16()))
}

/// Calls `onboardUser` (a long-running operation Google answers with `done:false` until ready)
/// at most `max_polls` times, `interval` apart; returns the finished operation's `response`.
pub(crate) async fn onboard_user(
    request: impl Fn() -> RequestBuilder,
    max_polls: u32,
    interval: Duration,
) -> Result<Value, String> {
    for poll in 1..=max_polls {
        let operation = send_json(request()).await?;
        if operation.get("done").and_then(Value::as_bool) == Some(true) {
            return Ok(operation.get("response").cloned().unwrap_or(Value::Null));
        }
        if poll < max_polls {
            tokio::time::sleep(interval).await;
        }
    }
    Err(format!("onboarding did not finish after {max_polls} polls"))
}

/// A Code Assist project reference, which Google sends either as a plain id or as `{"id": ...}`.
pub(crate) fn project_of(value: Option<&Value>) -> Option<String> {
    let id = match value? {
        Value::String(id) => id,
        Value::Object(project) => project.get("id")?.as_str()?,
        _ => return None,
    };
    non_blank(id)
}

/// The `id` of the `allowedTiers` entry marked `isDefault` in a `loadCodeAssist` answer.
pub(crate) fn default_tier(load: &Value) -> Option<String> {
    load.get("allowedTiers")?
        .as_array()?
        .iter()
        .filter(|tier| tier.get("isDefault").and_then(Value::as_bool) == Some(true))
        .find_map(|tier| non_blank(tier.get("id")?.as_str()?))
}

/// The onboarding poll interval: the `onboard_poll_ms` login option, else `default`.
pub(crate) fn poll_interval(options: &LoginOptions, default: Duration) -> Duration {
    options.get(POLL_OPTION).and_then(|ms| ms.trim().parse().ok()).map_or(default, Duration::from_millis)
}

/// Google's two error shapes: OAuth endpoints send `{"error": "<code>", "error_description"}`,
/// APIs send `{"error": {"code", "message", "status"}}`.
fn describe_error(body: &Value) -> Option<String> {
    match body.get("error")? {
        Value::String(code) => Some(match body.get("error_description").and_then(Value::as_str) {
            Some(description) => format!("{code}: {description}"),
            None => code.clone(),
        }),
        Value::Object(error) => error.get("message").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn non_blank(text: &str) -> Option<String> {
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use serde_json::json;

    fn answer(status: u16, body: &str) -> Reply {
        Reply::new(StatusCode::from_u16(status).unwrap(), body.as_bytes().to_vec())
    }

    fn parse_tokens(answer: &Reply) -> Option<Tokens> {
        answer.tokens().ok().map(|tokens| Tokens::from_answer(&tokens))
    }

    #[test]
    fn errors_use_google_fields_only() {
        let oauth = answer(400, r#"{"error":"invalid_grant","error_description":"Bad Request"}"#);
        assert_eq!(error_text(&oauth), "HTTP 400: invalid_grant: Bad Request");
        assert_eq!(oauth.oauth_error().code.as_deref(), Some("invalid_grant"));
        let api = answer(403, r#"{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}"#);
        assert_eq!(error_text(&api), "HTTP 403: denied");
        assert_eq!(error_text(&answer(500, "<html>oops</html>")), "HTTP 500");
        let long = answer(400, &json!({"error": {"message": "x".repeat(1000)}}).to_string());
        assert!(error_text(&long).chars().count() < 320);
    }

    #[test]
    fn token_endpoint_failures_keep_google_texts() {
        let wording = GoogleWording;
        let revoked = answer(400, r#"{"error":"invalid_grant","error_description":"Bad code"}"#);
        assert_eq!(wording.error_answer(&revoked), "HTTP 400: invalid_grant: Bad code");
        assert_eq!(wording.failed(&revoked), wording.error_answer(&revoked), "no `token endpoint answered` prefix");
        let malformed = wording.malformed("token endpoint answer has no access_token".into());
        assert_eq!(malformed, "the token endpoint sent a malformed answer");
    }

    #[test]
    fn projects_are_strings_or_objects() {
        assert_eq!(project_of(Some(&json!(" p-1 "))), Some("p-1".into()));
        assert_eq!(project_of(Some(&json!({"id": "p-2", "name": "P"}))), Some("p-2".into()));
        assert_eq!(project_of(Some(&json!(""))), None);
        assert_eq!(project_of(Some(&json!(7))), None);
        assert_eq!(project_of(None), None);
    }

    #[test]
    fn default_tier_needs_is_default() {
        let load = json!({"allowedTiers": [{"id": "a"}, {"id": "b", "isDefault": true}]});
        assert_eq!(default_tier(&load), Some("b".into()));
        assert_eq!(default_tier(&json!({"allowedTiers": [{"id": "a", "isDefault": false}]})), None);
        assert_eq!(default_tier(&json!({})), None);
    }

    #[test]
    fn token_answers_parse_with_defaults() {
        let tokens = parse_tokens(&answer(200, r#"{"access_token":"a","expires_in":3599}"#)).unwrap();
        assert_eq!((tokens.token_type.as_str(), tokens.expires_in), ("Bearer", 3599));
        assert!(tokens.refresh_token.is_none());
        assert!(parse_tokens(&answer(200, r#"{"access_token":""}"#)).is_none());
        assert!(parse_tokens(&answer(200, r#"{"access_token":"#)).is_none());
    }

    #[test]
    fn scrub_and_poll_option() {
        let options = LoginOptions::from([(POLL_OPTION.to_owned(), "25".to_owned())]);
        assert_eq!(poll_interval(&options, Duration::from_secs(5)), Duration::from_millis(25));
        assert_eq!(poll_interval(&LoginOptions::new(), Duration::from_secs(5)), Duration::from_secs(5));
    }
}
