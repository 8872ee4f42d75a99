//! Mock of Qwen's OAuth server (`chat.qwen.ai`) on a loopback port: the device flow with PKCE
//! and the refresh grant, with the real server's rules and quirks:
//!
//! - the device-code request must carry an S256 `code_challenge`; every poll must carry the
//!   `code_verifier` behind it (`invalid_grant` otherwise);
//! - while the user has not confirmed, polls get **HTTP 400** with an `error` member
//!   (`authorization_pending`, `slow_down`, `expired_token`, `access_denied`);
//! - the token answer carries `resource_url` (the API host, e.g. `portal.qwen.ai`);
//! - refresh tokens rotate: a spent one gets `invalid_grant`.
//!
//! The chat API is the generic [`crate::upstream::MockUpstream`] (OpenAI Chat at any prefix,
//! Bearer check with `require_auth`). Knobs: poll answers, interval and lifetime of device
//! codes, `resource_url`, rotation, revoked refresh tokens, a failing token endpoint.

use std::collections::{HashMap, VecDeque};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

pub use crate::github::PollAnswer;
pub use crate::oauth::IssuedTokens;
use crate::oauth::{self, Params, Rotation, Tokens, oauth_error};
use crate::{MockServer, serve};

/// Qwen Code's public OAuth client, the only one this mock knows.
pub const CLIENT_ID: &str = "f0304373b74a44d2b584a3fb70ca9e56";
pub const SCOPE: &str = "openid profile email model.completion";
pub const DEVICE_CODE_PATH: &str = "/api/v1/oauth2/device/code";
pub const TOKEN_PATH: &str = "/api/v1/oauth2/token";
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const VERIFICATION_URI: &str = "https://chat.qwen.ai/authorize";
/// The polling interval the mock announces (tests want fast polls).
pub const DEFAULT_INTERVAL: u64 = 1;
pub const DEFAULT_EXPIRES_IN: u64 = 900;
/// Lifetime of issued access tokens (an assumption: 6 h).
pub const TOKEN_LIFETIME: u64 = 6 * 60 * 60;
pub const DEFAULT_RESOURCE_URL: &str = "portal.qwen.ai";
/// Every token and code this mock issues starts like this (for leak checks).
pub const TOKEN_MARK: &str = "mock-qwen-";

/// A failure to inject; stays in effect until replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// Every token request gets `500` with an HTML page.
    TokenServerError,
    /// Refresh grants get `400 invalid_grant` (the user signed out everywhere).
    RevokeRefreshTokens,
}

struct Device {
    challenge: String,
    issued: Instant,
    expires_in: u64,
    spent: bool,
}

struct QwenState {
    serial: u64,
    interval: u64,
    expires_in: u64,
    script: VecDeque<PollAnswer>,
    fallback: PollAnswer,
    devices: HashMap<String, Device>,
    polls: Vec<(Instant, PollAnswer)>,
    tokens: Tokens,
    resource_url: Option<String>,
    rotate: bool,
    fault: Fault,
    refresh_calls: usize,
    last_access_token: Option<String>,
}

/// The running mock (its [`MockServer`] too). Dropping it stops the server.
pub struct MockQwen {
    server: MockServer,
    state: Arc<Mutex<QwenState>>,
}

impl Deref for MockQwen {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

type Shared = State<Arc<Mutex<QwenState>>>;

impl MockQwen {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(QwenState {
            serial: 0,
            interval: DEFAULT_INTERVAL,
            expires_in: DEFAULT_EXPIRES_IN,
            script: VecDeque::new(),
            fallback: PollAnswer::Pending,
            devices: HashMap::new(),
            polls: Vec::new(),
            tokens: Tokens::default(),
            resource_url: Some(DEFAULT_RESOURCE_URL.into()),
            rotate: true,
            fault: Fault::None,
            refresh_calls: 0,
            last_access_token: None,
        }));
        let router = Router::new()
            .route(DEVICE_CODE_PATH, post(device_code))
            .route(TOKEN_PATH, post(token))
            .with_state(state.clone());
        MockQwen { server: serve(router).await, state }
    }

    /// `upstream-urls` pointing Qwen's OAuth endpoints here (add `api` to aim the chat API).
    pub fn upstream_urls_yaml(&self) -> String {
        format!(
            "upstream-urls:\n  qwen:\n    device: {}\n    token: {}\n",
            self.url(DEVICE_CODE_PATH),
            self.url(TOKEN_PATH)
        )
    }

    fn lock(&self) -> MutexGuard<'_, QwenState> {
        self.state.lock().expect("mock state lock")
    }

    pub fn set_interval(&self, seconds: u64) {
        self.lock().interval = seconds;
    }

    /// `expires_in` of new device codes (seconds); polls after it get `expired_token`.
    pub fn set_expires_in(&self, seconds: u64) {
        self.lock().expires_in = seconds;
    }

    /// The answers to the next polls, in order; after them, the fallback answer.
    pub fn script_polls(&self, answers: &[PollAnswer]) {
        self.lock().script.extend(answers.iter().copied());
    }

    pub fn set_fallback(&self, answer: PollAnswer) {
        self.lock().fallback = answer;
    }

    /// The user confirms in the browser: the next poll gets the tokens.
    pub fn approve(&self) {
        self.set_fallback(PollAnswer::Approve);
    }

    /// When each poll arrived and how it was answered, oldest first.
    pub fn polls(&self) -> Vec<(Instant, PollAnswer)> {
        self.lock().polls.clone()
    }

    /// `resource_url` of token answers (`None` leaves it out).
    pub fn set_resource_url(&self, resource_url: Option<&str>) {
        self.lock().resource_url = resource_url.map(str::to_owned);
    }

    /// Whether refresh grants rotate the refresh token (default true); without rotation the
    /// answer has no `refresh_token` and the old one keeps working.
    pub fn set_rotation(&self, rotate: bool) {
        self.lock().rotate = rotate;
    }

    pub fn set_fault(&self, fault: Fault) {
        self.lock().fault = fault;
    }

    pub fn refresh_calls(&self) -> usize {
        self.lock().refresh_calls
    }

    /// The access token of the latest token answer.
    pub fn last_access_token(&self) -> Option<String> {
        self.lock().last_access_token.clone()
    }

    /// Issues a valid token pair without a login, for tests that start from a saved credential.
    pub fn issue_tokens(&self) -> IssuedTokens {
        self.lock().issue()
    }
}

impl QwenState {
    fn next_id(&mut self, kind: &str) -> String {
        self.serial += 1;
        format!("{TOKEN_MARK}{kind}-{:04}", self.serial)
    }

    fn issue(&mut self) -> IssuedTokens {
        let tokens = IssuedTokens { access_token: self.next_id("at"), refresh_token: self.next_id("rt") };
        self.tokens.add_pair(&tokens, CLIENT_ID);
        self.last_access_token = Some(tokens.access_token.clone());
        tokens
    }

    /// A token answer; `with_refresh` false leaves `refresh_token` out (no rotation).
    fn token_answer(&mut self, with_refresh: bool) -> Response {
        let tokens = self.issue();
        let mut body = json!({
            "access_token": tokens.access_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME,
            "scope": SCOPE,
        });
        if with_refresh {
            body["refresh_token"] = tokens.refresh_token.into();
        }
        if let Some(resource_url) = &self.resource_url {
            body["resource_url"] = resource_url.as_str().into();
        }
        Json(body).into_response()
    }
}

/// A refusal while polling: Qwen answers these with HTTP 400.
fn pending_error(error: &str, description: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, error, description)
}

async fn device_code(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !oauth::content_type_is(&headers, "application/x-www-form-urlencoded") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Unsupported content type");
    }
    let form = Params::form(&body);
    if form.get("client_id") != CLIENT_ID {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "Unknown client_id");
    }
    if form.get("code_challenge").is_empty() {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "code_challenge is required");
    }
    if form.get("code_challenge_method") != "S256" {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "code_challenge_method must be S256");
    }
    if !form.get("scope").split(' ').any(|s| s == "model.completion") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", "scope must include model.completion");
    }
    let mut state = state.lock().expect("mock state lock");
    let device_code = state.next_id("device");
    let user_code = format!("Q{:07}", state.serial);
    let (interval, expires_in) = (state.interval, state.expires_in);
    state.devices.insert(
        device_code.clone(),
        Device { challenge: form.get("code_challenge").into(), issued: Instant::now(), expires_in, spent: false },
    );
    Json(json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": VERIFICATION_URI,
        "verification_uri_complete": format!("{VERIFICATION_URI}?user_code={user_code}&client=qwen-code"),
        "expires_in": expires_in,
        "interval": interval,
    }))
    .into_response()
}

async fn token(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !oauth::content_type_is(&headers, "application/x-www-form-urlencoded") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Unsupported content type");
    }
    let form = Params::form(&body);
    let mut state = state.lock().expect("mock state lock");
    if form.get("grant_type") == "refresh_token" {
        state.refresh_calls += 1;
    }
    if state.fault == Fault::TokenServerError {
        return oauth::html_server_error();
    }
    if form.get("client_id") != CLIENT_ID {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unknown client_id");
    }
    match form.get("grant_type") {
        DEVICE_GRANT => device_grant(&mut state, &form),
        "refresh_token" => refresh_grant(&mut state, form.get("refresh_token")),
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Unsupported grant_type"),
    }
}

fn device_grant(state: &mut QwenState, form: &Params) -> Response {
    let Some(device) = state.devices.get_mut(form.get("device_code")) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid device code");
    };
    if device.spent {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Device code already used");
    }
    if !oauth::s256_matches(form.get("code_verifier"), &device.challenge) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "code_verifier does not match the challenge");
    }
    let answer = if device.issued.elapsed() >= Duration::from_secs(device.expires_in) {
        PollAnswer::Expire
    } else {
        state.script.pop_front().unwrap_or(state.fallback)
    };
    if answer == PollAnswer::Approve {
        device.spent = true;
    }
    state.polls.push((Instant::now(), answer));
    match answer {
        PollAnswer::Pending => pending_error("authorization_pending", "The authorization request is still pending"),
        PollAnswer::SlowDown => pending_error("slow_down", "Polling too frequently"),
        PollAnswer::Deny => pending_error("access_denied", "The user denied the authorization request"),
        PollAnswer::Expire => pending_error("expired_token", "The device code has expired"),
        PollAnswer::Approve => state.token_answer(true),
    }
}

fn refresh_grant(state: &mut QwenState, refresh_token: &str) -> Response {
    if state.fault == Fault::RevokeRefreshTokens {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Refresh token expired or revoked");
    }
    if !state.rotate {
        return match state.tokens.refresh_owner(refresh_token) {
            Some(_) => state.token_answer(false),
            None => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid refresh token"),
        };
    }
    match state.tokens.rotate(refresh_token) {
        Rotation::Rotated => state.token_answer(true),
        Rotation::Spent => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Refresh token already used"),
        Rotation::Unknown => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid refresh token"),
    }
}
