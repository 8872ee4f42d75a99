//! What the device-code logins of all providers share (RFC 8628): reading a device
//! authorization answer and classifying each token-endpoint answer while the user has not
//! confirmed yet. Providers differ in how they send an error — GitHub and Kimi answer HTTP 200
//! with an `error` member, Qwen and AWS answer 400 — so the classification looks at the body's
//! `error` whatever the status. Texts never echo a device code or token.

use std::time::Duration;

use reqwest::RequestBuilder;
use serde_json::{Map, Value};
use switchyard_auth::login::{DeviceAuthorization, DevicePoll, LoginError};

use crate::oauth_http::{self, Reply, str_at};

/// RFC 8628 §3.5: the interval when the server announces none.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// Member names of a device-authorization answer: RFC 8628's snake_case, or AWS SSO-OIDC's
/// camelCase.
#[derive(Clone, Copy)]
pub(crate) struct DeviceFields {
    pub(crate) device_code: &'static str,
    pub(crate) user_code: &'static str,
    pub(crate) verification_uri: &'static str,
    pub(crate) verification_uri_complete: &'static str,
    pub(crate) expires_in: &'static str,
    pub(crate) interval: &'static str,
}

pub(crate) const RFC8628: DeviceFields = DeviceFields {
    device_code: "device_code",
    user_code: "user_code",
    verification_uri: "verification_uri",
    verification_uri_complete: "verification_uri_complete",
    expires_in: "expires_in",
    interval: "interval",
};

pub(crate) const AWS: DeviceFields = DeviceFields {
    device_code: "deviceCode",
    user_code: "userCode",
    verification_uri: "verificationUri",
    verification_uri_complete: "verificationUriComplete",
    expires_in: "expiresIn",
    interval: "interval",
};

/// Sends the device-authorization request and reads its answer. `default_lifetime` applies when
/// the answer has no usable `expires_in` (xAI: 30 min). A missing device code, user code or
/// verification URI is an error naming the member.
pub(crate) async fn request_device_code(
    request: RequestBuilder,
    fields: DeviceFields,
    default_lifetime: Duration,
) -> Result<DeviceAuthorization, LoginError> {
    let reply =
        oauth_http::send(request).await.map_err(|e| failed(format!("device authorization request failed: {e}")))?;
    if !reply.status.is_success() {
        return Err(failed(format!("device authorization endpoint answered {}", describe_error(&reply))));
    }
    let Some(Value::Object(body)) = reply.json() else {
        return Err(failed(format!(
            "device authorization endpoint answered HTTP {} without a JSON object",
            reply.status.as_u16()
        )));
    };
    device_authorization(&body, fields, default_lifetime)
}

/// A device authorization from an already read answer (for flows that need other members of it).
pub(crate) fn device_authorization(
    body: &Map<String, Value>,
    fields: DeviceFields,
    default_lifetime: Duration,
) -> Result<DeviceAuthorization, LoginError> {
    let value = Value::Object(body.clone());
    let text = |key: &str| str_at(&value, &[key]).map(str::to_owned);
    let required =
        |key: &'static str| text(key).ok_or_else(|| failed(format!("device authorization answer has no {key}")));
    let device_code = required(fields.device_code)?;
    let user_code = required(fields.user_code)?;
    // Some servers (Google, older GitHub docs) say `verification_url`.
    let verification_uri = text(fields.verification_uri)
        .or_else(|| text("verification_url"))
        .ok_or_else(|| failed(format!("device authorization answer has no {}", fields.verification_uri)))?;
    let seconds = |key: &str| seconds(body.get(key)).filter(|s| *s > 0);
    Ok(DeviceAuthorization {
        device_code,
        user_code,
        verification_uri,
        verification_uri_complete: text(fields.verification_uri_complete),
        expires_in: seconds(fields.expires_in).map(Duration::from_secs).unwrap_or(default_lifetime),
        interval: seconds(fields.interval).map(Duration::from_secs).unwrap_or(DEFAULT_INTERVAL),
        extra: Map::new(),
    })
}

/// Sends one poll of the token endpoint and classifies the answer (see [`classify_poll`]).
pub(crate) async fn poll_token(request: RequestBuilder) -> Result<DevicePoll, LoginError> {
    let reply = oauth_http::send(request).await.map_err(|e| failed(format!("token request failed: {e}")))?;
    classify_poll(&reply)
}

/// One token-endpoint answer during a device flow, by its `error` member whatever the status:
/// `authorization_pending` → pending, `slow_down` → slow down, `expired_token` → the code
/// expired, `access_denied` → denied, any other error → a failed exchange naming it. Without
/// an error, a 2xx JSON object with an `access_token` (AWS: `accessToken`) is the grant.
pub(crate) fn classify_poll(reply: &Reply) -> Result<DevicePoll, LoginError> {
    let body = reply.json();
    let error = body.as_ref().and_then(error_code);
    match error.as_deref() {
        Some("authorization_pending") => return Ok(DevicePoll::Pending),
        Some("slow_down") => return Ok(DevicePoll::SlowDown),
        Some("expired_token") => return Err(LoginError::DeviceCodeExpired),
        Some("access_denied") => return Err(LoginError::Denied("the user denied the device login".into())),
        Some(_) => return Err(failed(format!("token endpoint answered {}", describe_error(reply)))),
        None => {}
    }
    if !reply.status.is_success() {
        return Err(failed(format!("token endpoint answered {}", describe_error(reply))));
    }
    match body {
        Some(Value::Object(grant)) if oauth_http::access_token_of(&Value::Object(grant.clone())).is_some() => {
            Ok(DevicePoll::Granted(grant))
        }
        Some(Value::Object(_)) => Err(failed("token endpoint answer has no access_token".into())),
        _ => Err(failed(format!("token endpoint answered HTTP {} with malformed JSON", reply.status.as_u16()))),
    }
}

/// The answer's error code: RFC 6749's string `error`, OpenAI's `error.code`, or an AWS
/// exception name (`AuthorizationPendingException` → `authorization_pending`).
fn error_code(body: &Value) -> Option<String> {
    let code = match body.get("error") {
        Some(Value::String(code)) => code.trim().to_owned(),
        Some(Value::Object(_)) => str_at(body, &["error", "code"])?.to_owned(),
        _ => {
            let aws = str_at(body, &["__type"]).or_else(|| str_at(body, &["code"]))?;
            aws_exception_code(aws)?.to_owned()
        }
    };
    (!code.is_empty()).then_some(code)
}

fn aws_exception_code(name: &str) -> Option<&'static str> {
    let name = name.rsplit(['#', ':']).next().unwrap_or(name);
    Some(match name {
        "AuthorizationPendingException" => "authorization_pending",
        "SlowDownException" => "slow_down",
        "ExpiredTokenException" => "expired_token",
        "AccessDeniedException" => "access_denied",
        _ => return None,
    })
}

/// `HTTP 400: invalid_client (Client is not registered)`, scrubbed like every OAuth error.
fn describe_error(reply: &Reply) -> String {
    crate::oauth_http::Wording::error_answer(&crate::oauth_http::Standard, reply)
}

fn seconds(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn failed(text: String) -> LoginError {
    LoginError::TokenExchange(text)
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;
    use serde_json::json;

    use super::*;

    fn reply(status: u16, body: Value) -> Reply {
        Reply::new(StatusCode::from_u16(status).unwrap(), body.to_string().into_bytes())
    }

    fn kind(result: Result<DevicePoll, LoginError>) -> String {
        match result {
            Ok(DevicePoll::Pending) => "pending".into(),
            Ok(DevicePoll::SlowDown) => "slow_down".into(),
            Ok(DevicePoll::Granted(grant)) => format!("granted:{}", grant["access_token"]),
            Err(error) => format!("error:{error}"),
        }
    }

    #[test]
    fn errors_are_read_whatever_the_status() {
        for status in [200, 400] {
            assert_eq!(kind(classify_poll(&reply(status, json!({"error": "authorization_pending"})))), "pending");
            assert_eq!(kind(classify_poll(&reply(status, json!({"error": "slow_down"})))), "slow_down");
            assert_eq!(
                classify_poll(&reply(status, json!({"error": "expired_token"}))).err(),
                Some(LoginError::DeviceCodeExpired)
            );
            assert!(matches!(
                classify_poll(&reply(status, json!({"error": "access_denied"}))),
                Err(LoginError::Denied(_))
            ));
        }
        let other = kind(classify_poll(&reply(400, json!({"error": "invalid_client", "error_description": "nope"}))));
        assert_eq!(
            other,
            "error:Failed to exchange authorization code for tokens: token endpoint answered HTTP 400: invalid_client (nope)"
        );
        assert_eq!(kind(classify_poll(&reply(400, json!({"__type": "com.amazon#SlowDownException"})))), "slow_down");
    }

    #[test]
    fn a_grant_needs_an_access_token() {
        assert_eq!(
            kind(classify_poll(&reply(200, json!({"access_token": "at", "token_type": "bearer"})))),
            "granted:\"at\""
        );
        assert!(kind(classify_poll(&reply(200, json!({"token_type": "bearer"})))).contains("no access_token"));
        assert!(kind(classify_poll(&reply(502, json!("gateway")))).contains("HTTP 502"));
        // AWS SSO-OIDC's CreateToken answers in camelCase.
        let aws = classify_poll(&reply(200, json!({"accessToken": "aoa", "refreshToken": "aor", "expiresIn": 3600})));
        assert!(matches!(aws, Ok(DevicePoll::Granted(grant)) if grant["accessToken"] == "aoa"));
    }

    #[test]
    fn device_answers_of_both_shapes_are_read() {
        let rfc = json!({"device_code": "dc", "user_code": "ABCD-EFGH", "verification_uri": "https://x/device",
                         "verification_uri_complete": "https://x/device?user_code=ABCD-EFGH", "expires_in": 900, "interval": "7"});
        let device = device_authorization(rfc.as_object().unwrap(), RFC8628, Duration::from_secs(60)).unwrap();
        assert_eq!(device.user_code, "ABCD-EFGH");
        assert_eq!(device.display_uri(), "https://x/device?user_code=ABCD-EFGH");
        assert_eq!((device.expires_in.as_secs(), device.interval.as_secs()), (900, 7));

        let aws =
            json!({"deviceCode": "dc", "userCode": "WXYZ", "verificationUri": "https://aws/start", "expiresIn": 600});
        let device = device_authorization(aws.as_object().unwrap(), AWS, Duration::from_secs(60)).unwrap();
        assert_eq!((device.verification_uri.as_str(), device.interval), ("https://aws/start", DEFAULT_INTERVAL));

        let missing = json!({"device_code": "dc", "verification_uri": "https://x"});
        let error = device_authorization(missing.as_object().unwrap(), RFC8628, Duration::from_secs(60)).unwrap_err();
        assert!(error.to_string().contains("no user_code"), "{error}");
        let no_lifetime = json!({"device_code": "dc", "user_code": "u", "verification_url": "https://x"});
        let device =
            device_authorization(no_lifetime.as_object().unwrap(), RFC8628, Duration::from_secs(1800)).unwrap();
        assert_eq!(device.expires_in, Duration::from_secs(1800));
    }
}
