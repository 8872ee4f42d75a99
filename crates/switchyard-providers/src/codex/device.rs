//! Codex's device login (`switchyard login codex --device`, cpa-core §1.2): OpenAI's own
//! device flow. `POST deviceauth/usercode {client_id}` → `device_auth_id`, `user_code` (older
//! answers: `usercode`), `interval` (a string or a number); the user enters the code at
//! `auth.openai.com/codex/device`; `POST deviceauth/token {device_auth_id, user_code}` answers
//! 403 or 404 until they do, then `authorization_code` + `code_verifier`, which the normal token
//! endpoint exchanges with the device callback as `redirect_uri`.

use std::time::Duration;

use reqwest::{StatusCode, header};
use serde_json::{Map, Value, json};
use switchyard_auth::login::{
    DeviceAuthorization, DeviceLogin, DevicePoll, DeviceSpec, LoginContext, LoginError, LoginOptions, LoginOutcome,
};

use super::{CLIENT_ID, DEVICE_TOKEN_URL, DEVICE_URL, exchange_code};
use crate::device_http::{DEFAULT_INTERVAL, classify_poll};
use crate::oauth_http::{self, Reply, str_at};

/// Where the user enters the code (shown, never called).
pub const VERIFICATION_URI: &str = "https://auth.openai.com/codex/device";
/// The `redirect_uri` the device grant's authorization code is bound to.
pub const DEVICE_REDIRECT_URI: &str = "https://auth.openai.com/deviceauth/callback";
/// The Codex CLI gives up after 15 minutes.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

pub struct CodexDevice;

#[async_trait::async_trait]
impl DeviceLogin for CodexDevice {
    fn spec(&self) -> DeviceSpec<'_> {
        DeviceSpec { name: "codex", aliases: &["openai"], state_prefix: "cdx-", max_wait: MAX_WAIT }
    }

    async fn start(&self, ctx: &LoginContext, _options: &LoginOptions) -> Result<DeviceAuthorization, LoginError> {
        let request = ctx
            .http
            .post(ctx.endpoint("codex", "device", DEVICE_URL))
            .header(header::ACCEPT, "application/json")
            .json(&json!({"client_id": CLIENT_ID}));
        let failed = |why: String| LoginError::Provider(format!("Codex device code request failed: {why}"));
        let reply = oauth_http::send(request).await.map_err(failed)?;
        if !reply.status.is_success() {
            return Err(failed(format!("HTTP {}{}", reply.status.as_u16(), error_code_suffix(&reply))));
        }
        let Some(body @ Value::Object(_)) = reply.json() else {
            return Err(failed("the answer is not a JSON object".into()));
        };
        let text = |key: &str| str_at(&body, &[key]).map(str::to_owned);
        let device_auth_id = text("device_auth_id").ok_or_else(|| failed("the answer has no device_auth_id".into()))?;
        let user_code = text("user_code")
            .or_else(|| text("usercode"))
            .ok_or_else(|| failed("the answer has no user_code".into()))?;
        Ok(DeviceAuthorization {
            device_code: device_auth_id,
            user_code,
            verification_uri: VERIFICATION_URI.into(),
            verification_uri_complete: None,
            expires_in: lifetime(&body).unwrap_or(MAX_WAIT),
            interval: seconds(body.get("interval")).filter(|s| *s > 0).map_or(DEFAULT_INTERVAL, Duration::from_secs),
            extra: Map::new(),
        })
    }

    async fn poll(&self, ctx: &LoginContext, device: &DeviceAuthorization) -> Result<DevicePoll, LoginError> {
        let request = ctx
            .http
            .post(ctx.endpoint("codex", "device-token", DEVICE_TOKEN_URL))
            .header(header::ACCEPT, "application/json")
            .json(&json!({"device_auth_id": device.device_code, "user_code": device.user_code}));
        let reply = oauth_http::send(request)
            .await
            .map_err(|e| LoginError::TokenExchange(format!("device token request failed: {e}")))?;
        match reply.status {
            // Not confirmed yet (403), or not known to the token side yet (404).
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => Ok(DevicePoll::Pending),
            StatusCode::TOO_MANY_REQUESTS => Ok(DevicePoll::SlowDown),
            status if status.is_success() => grant(&reply).map(DevicePoll::Granted),
            // Refusals (denied, expired, ...) are read from the error body.
            _ => classify_poll(&reply),
        }
    }

    async fn finish(
        &self,
        ctx: &LoginContext,
        _device: &DeviceAuthorization,
        grant: Map<String, Value>,
        _options: &LoginOptions,
    ) -> Result<LoginOutcome, LoginError> {
        let grant = Value::Object(grant);
        let code = str_at(&grant, &["authorization_code"]).unwrap_or_default();
        let verifier = str_at(&grant, &["code_verifier"]).unwrap_or_default();
        exchange_code(ctx, code, DEVICE_REDIRECT_URI, verifier).await
    }
}

/// The confirmed grant: the authorization code and the verifier it was made with.
fn grant(reply: &Reply) -> Result<Map<String, Value>, LoginError> {
    let malformed = |why: &str| LoginError::TokenExchange(format!("device token answer {why}"));
    let Some(body @ Value::Object(_)) = reply.json() else {
        return Err(malformed("is not a JSON object"));
    };
    let mut grant = Map::new();
    for key in ["authorization_code", "code_verifier"] {
        let value = str_at(&body, &[key]).ok_or_else(|| malformed(&format!("has no {key}")))?;
        grant.insert(key.into(), value.into());
    }
    Ok(grant)
}

/// How long the code lives: `expires_in` seconds, else until `expires_at` (RFC 3339).
fn lifetime(body: &Value) -> Option<Duration> {
    if let Some(secs) = seconds(body.get("expires_in")).filter(|s| *s > 0) {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc3339(str_at(body, &["expires_at"])?).ok()?;
    (at.to_utc() - chrono::Utc::now()).to_std().ok()
}

/// Seconds as a JSON number or a numeric string.
fn seconds(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `: <code>` when the error answer names a code.
fn error_code_suffix(reply: &Reply) -> String {
    reply.oauth_error().code.map(|code| format!(": {code}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_and_lifetimes_read_strings_numbers_and_dates() {
        assert_eq!(seconds(Some(&json!("5"))), Some(5));
        assert_eq!(seconds(Some(&json!(7))), Some(7));
        assert_eq!(seconds(Some(&json!("soon"))), None);
        assert_eq!(lifetime(&json!({"expires_in": "600"})), Some(Duration::from_secs(600)));
        let at = (chrono::Utc::now() + chrono::Duration::seconds(300)).to_rfc3339();
        let left = lifetime(&json!({ "expires_at": at })).unwrap();
        assert!(left > Duration::from_secs(290) && left <= Duration::from_secs(300), "{left:?}");
        assert_eq!(lifetime(&json!({"expires_at": "2000-01-01T00:00:00Z"})), None);
        assert_eq!(lifetime(&json!({})), None);
    }
}
