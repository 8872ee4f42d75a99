//! The Kiro auth service: social login (`/login` → the `kiro://` redirect), the code exchange
//! and the refresh. Its answers are camelCase JSON; its errors a `message` (with an `error` code
//! on the exchange), refused refresh tokens a 401.

use std::collections::HashMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Issuer, PROFILE_ARN, REDIRECT_URI, Shared, SocialGrant, lock};
use crate::oauth::{self, Rotation, consent_denied, found, s256_matches};

fn error(status: StatusCode, code: Option<&str>, message: &str) -> Response {
    let body = match code {
        Some(code) => json!({"error": code, "message": message}),
        None => json!({"message": message}),
    };
    (status, Json(body)).into_response()
}

fn json_object(headers: &HeaderMap, body: &Bytes) -> Result<Value, Response> {
    if !oauth::content_type_is(headers, "application/json") {
        return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, None, "Unsupported content type"));
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, None, "Malformed JSON body"))
}

fn text<'a>(body: &'a Value, key: &str) -> &'a str {
    body.get(key).and_then(Value::as_str).unwrap_or_default()
}

pub(super) async fn login(State(state): State<Shared>, Query(query): Query<HashMap<String, String>>) -> Response {
    let param = |key: &str| query.get(key).map(String::as_str).unwrap_or_default();
    let problem = if !["Google", "Github"].contains(&param("idp")) {
        Some("Unsupported identity provider")
    } else if param("redirect_uri") != REDIRECT_URI {
        Some("redirect_uri is not registered")
    } else if param("code_challenge").is_empty() || param("code_challenge_method") != "S256" {
        Some("PKCE with S256 is required")
    } else if param("state").is_empty() {
        Some("state is required")
    } else {
        None
    };
    if let Some(problem) = problem {
        return error(StatusCode::BAD_REQUEST, None, problem);
    }
    let mut location = url::Url::parse(REDIRECT_URI).expect("the redirect URI parses");
    let mut state = lock(&state);
    if state.deny_social {
        return consent_denied(location, Some("The user cancelled the sign-in"), param("state"));
    }
    let code = state.next_id("code");
    let grant = SocialGrant { challenge: param("code_challenge").into() };
    state.social_codes.insert(code.clone(), grant);
    location.query_pairs_mut().append_pair("code", &code).append_pair("state", param("state"));
    found(location.as_str())
}

fn token_answer(state: &mut super::State) -> Response {
    let tokens = state.issue("social", Issuer::Social);
    Json(json!({
        "accessToken": tokens.access_token,
        "refreshToken": tokens.refresh_token,
        "profileArn": PROFILE_ARN,
        "expiresIn": state.expires_in,
    }))
    .into_response()
}

pub(super) async fn token(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match json_object(&headers, &body) {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let mut state = lock(&state);
    // Single use: the first exchange spends the code, whatever its outcome.
    let Some(grant) = state.social_codes.redeem(text(&body, "code")) else {
        return error(StatusCode::BAD_REQUEST, Some("invalid_grant"), "Invalid or already used authorization code");
    };
    if text(&body, "redirect_uri") != REDIRECT_URI {
        return error(StatusCode::BAD_REQUEST, Some("invalid_grant"), "redirect_uri does not match");
    }
    if !s256_matches(text(&body, "code_verifier"), &grant.challenge) {
        return error(StatusCode::BAD_REQUEST, Some("invalid_grant"), "Invalid code verifier");
    }
    token_answer(&mut state)
}

pub(super) async fn refresh(State(state): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let body = match json_object(&headers, &body) {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let mut state = lock(&state);
    state.social_refreshes += 1;
    let refresh_token = text(&body, "refreshToken");
    if state.revoke_refresh || state.tokens.refresh_owner(refresh_token).is_some_and(|o| o != "social") {
        return error(StatusCode::UNAUTHORIZED, None, "Invalid refresh token");
    }
    match state.tokens.rotate(refresh_token) {
        Rotation::Rotated => token_answer(&mut state),
        Rotation::Spent | Rotation::Unknown => error(StatusCode::UNAUTHORIZED, None, "Invalid refresh token"),
    }
}
