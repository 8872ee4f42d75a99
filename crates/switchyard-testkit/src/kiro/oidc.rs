//! AWS SSO-OIDC (RegisterClient, StartDeviceAuthorization, CreateToken) of one region.

use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Client, Device, Issuer, PollAnswer, Shared, lock};
use crate::oauth::{self, Rotation};

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// SSO-OIDC's error shape: `{"error", "error_description"}` plus the exception name header.
fn aws_error(status: StatusCode, error: &str, description: &str, exception: &str) -> Response {
    let mut response = (status, Json(json!({"error": error, "error_description": description}))).into_response();
    response.headers_mut().insert("x-amzn-errortype", exception.parse().expect("static header value"));
    response
}

fn bad_request(description: &str) -> Response {
    aws_error(StatusCode::BAD_REQUEST, "invalid_request", description, "InvalidRequestException")
}

fn invalid_client() -> Response {
    aws_error(StatusCode::BAD_REQUEST, "invalid_client", "Invalid client", "InvalidClientException")
}

fn invalid_grant(description: &str) -> Response {
    aws_error(StatusCode::BAD_REQUEST, "invalid_grant", description, "InvalidGrantException")
}

/// The JSON object body, or the answer AWS gives for anything else.
fn json_body(headers: &HeaderMap, body: &Bytes) -> Result<Value, Response> {
    if !oauth::content_type_is(headers, "application/json") {
        return Err(bad_request("Unsupported content type"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(bad_request("Malformed JSON body")),
    }
}

fn text<'a>(body: &'a Value, key: &str) -> &'a str {
    body.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The registered client of this request, if its id, secret and region match.
fn client(state: &super::State, region: &str, body: &Value) -> Option<Client> {
    let client = state.clients.get(text(body, "clientId"))?;
    (client.secret == text(body, "clientSecret") && client.region == region).then(|| client.clone())
}

pub(super) async fn register(
    State(state): State<Shared>,
    Path(region): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&headers, &body) {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let strings = |key: &str| -> Vec<String> {
        body.get(key)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    let scopes = strings("scopes");
    let problem = if text(&body, "clientName").is_empty() {
        Some("clientName is required")
    } else if text(&body, "clientType") != "public" {
        Some("clientType must be public")
    } else if scopes.is_empty() || !scopes.iter().all(|s| s.starts_with("codewhisperer:")) {
        Some("scopes must be codewhisperer scopes")
    } else if !strings("grantTypes").iter().any(|g| g == DEVICE_GRANT) {
        Some("grantTypes must include the device code grant")
    } else {
        None
    };
    if let Some(problem) = problem {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            problem,
            "InvalidClientMetadataException",
        );
    }
    let mut state = lock(&state);
    let client_id = state.next_id("client");
    let secret = state.next_id("client-secret");
    state.clients.insert(client_id.clone(), Client { secret: secret.clone(), region });
    Json(json!({
        "clientId": client_id,
        "clientSecret": secret,
        "clientIdIssuedAt": 1_700_000_000,
        "clientSecretExpiresAt": 1_707_776_000,
    }))
    .into_response()
}

pub(super) async fn device_authorization(
    State(state): State<Shared>,
    Path(region): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&headers, &body) {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let mut state = lock(&state);
    let Some(_) = client(&state, &region, &body) else { return invalid_client() };
    let start_url = url::Url::parse(text(&body, "startUrl")).ok();
    let known_portal = start_url.as_ref().is_some_and(|u| {
        u.scheme() == "https"
            && u.host_str().is_some_and(|h| h.ends_with(".awsapps.com"))
            && u.path().starts_with("/start")
    });
    if !known_portal {
        return bad_request("Invalid start URL");
    }
    let device_code = state.next_id("device-code");
    state.serial += 1;
    let user_code = format!("MOCK-{:04}", state.serial);
    let (lifetime, interval) = (state.device_lifetime, state.interval);
    state.devices.insert(
        device_code.clone(),
        Device {
            client_id: text(&body, "clientId").to_owned(),
            region: region.clone(),
            user_code: user_code.clone(),
            expires_at: Instant::now() + Duration::from_secs(lifetime),
            interval,
            approved: None,
            redeemed: false,
            last_poll: None,
        },
    );
    let verification_uri = format!("https://device.sso.{region}.amazonaws.com/");
    Json(json!({
        "deviceCode": device_code,
        "userCode": user_code,
        "verificationUri": verification_uri,
        "verificationUriComplete": format!("{verification_uri}?user_code={user_code}"),
        "expiresIn": lifetime,
        "interval": interval,
    }))
    .into_response()
}

fn token_answer(state: &mut super::State, owner: &str) -> Response {
    let tokens = state.issue(owner, Issuer::Oidc);
    Json(json!({
        "accessToken": tokens.access_token,
        "tokenType": "Bearer",
        "expiresIn": state.expires_in,
        "refreshToken": tokens.refresh_token,
    }))
    .into_response()
}

pub(super) async fn token(
    State(state): State<Shared>,
    Path(region): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = match json_body(&headers, &body) {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let mut state = lock(&state);
    let grant = text(&body, "grantType");
    if grant == "refresh_token" {
        state.oidc_refreshes += 1;
    }
    let Some(_) = client(&state, &region, &body) else { return invalid_client() };
    let owner = format!("oidc:{region}:{}", text(&body, "clientId"));
    match grant {
        DEVICE_GRANT => poll(&mut state, &region, &body, &owner),
        "refresh_token" => {
            if state.revoke_refresh {
                return invalid_grant("Invalid refresh token provided");
            }
            let refresh_token = text(&body, "refreshToken");
            if state.tokens.refresh_owner(refresh_token).is_some_and(|o| o != owner) {
                return invalid_grant("Refresh token was issued to another client");
            }
            match state.tokens.rotate(refresh_token) {
                Rotation::Rotated => token_answer(&mut state, &owner),
                Rotation::Spent | Rotation::Unknown => invalid_grant("Invalid refresh token provided"),
            }
        }
        _ => aws_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Unsupported grant type",
            "UnsupportedGrantTypeException",
        ),
    }
}

fn poll(state: &mut super::State, region: &str, body: &Value, owner: &str) -> Response {
    let now = Instant::now();
    let scripted = state.script.pop_front();
    let client_id = text(body, "clientId");
    let Some(device) = state
        .devices
        .get_mut(text(body, "deviceCode"))
        .filter(|d| d.client_id == client_id && d.region == region && !d.redeemed)
    else {
        return invalid_grant("Invalid device code provided");
    };
    let too_fast = device.last_poll.is_some_and(|at| now - at < Duration::from_millis(device.interval * 500));
    device.last_poll = Some(now);
    let answer = match scripted {
        Some(answer) => answer,
        None if now >= device.expires_at => PollAnswer::Expire,
        None if too_fast => PollAnswer::SlowDown,
        None => match device.approved {
            Some(true) => PollAnswer::Approve,
            Some(false) => PollAnswer::Deny,
            None => PollAnswer::Pending,
        },
    };
    let pending = |error: &str, description: &str, exception: &str| {
        aws_error(StatusCode::BAD_REQUEST, error, description, exception)
    };
    match answer {
        PollAnswer::Pending => {
            pending("authorization_pending", "Authorization is still pending", "AuthorizationPendingException")
        }
        PollAnswer::SlowDown => pending("slow_down", "Client is polling too fast", "SlowDownException"),
        PollAnswer::Deny => pending("access_denied", "The user denied the authorization", "AccessDeniedException"),
        PollAnswer::Expire => pending("expired_token", "Device code has expired", "ExpiredTokenException"),
        PollAnswer::Approve => {
            device.redeemed = true;
            token_answer(state, owner)
        }
    }
}
