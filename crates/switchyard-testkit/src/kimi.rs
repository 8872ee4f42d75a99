//! Mock of Kimi Code: its device-code authorization server (`auth.kimi.com`) and its coding API
//! (`api.kimi.com/coding`), each on a loopback port, with the real server's rules and quirks:
//!
//! - Device authorization (`POST /api/oauth/device_authorization`, form `client_id`) answers
//!   `device_code`, `user_code`, `verification_uri(_complete)`, `expires_in`, `interval`.
//! - The token endpoint answers **HTTP 200 with an `error` member** for every device-flow state
//!   (`authorization_pending`, `slow_down`, `expired_token`, `access_denied`); what the user
//!   does is scripted per poll ([`MockKimi::set_answers`]). Polls closer than the interval get
//!   `slow_down`, and every `slow_down` adds 5 s to the interval the mock demands (RFC 8628
//!   §3.5). A device code expires after its `expires_in` and is single use.
//! - Every auth request must carry the five `X-Msh-*` headers (else 400 naming the missing one).
//! - Refresh grants rotate the refresh token (a spent one is `invalid_grant`); the revoke knob
//!   answers 401 or 403 with a body that names no OAuth code.
//! - The coding API replays the recorded OpenAI Chat and Anthropic fixtures under `/coding`
//!   (a [`MockUpstream`]), demanding a Bearer access token this mock issued and still honours.
//!
//! Every request is recorded; device polls also with their arrival time, so tests can check the
//! intervals a client keeps.

use std::collections::{HashMap, VecDeque};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use tokio::sync::watch;

pub use crate::oauth::IssuedTokens;
use crate::oauth::{self, Params, Rotation, Tokens, oauth_error};
use crate::upstream::MockUpstream;
use crate::{MockServer, serve};

/// Kimi Code's public OAuth client, the only one this mock knows.
pub const CLIENT_ID: &str = "17e5f671-d194-4dfb-9706-5516cb48c098";
pub const DEVICE_PATH: &str = "/api/oauth/device_authorization";
pub const TOKEN_PATH: &str = "/api/oauth/token";
/// The coding API's path prefix (`https://api.kimi.com/coding`).
pub const API_PREFIX: &str = "/coding";
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Where the user confirms a code.
pub const VERIFICATION_URI: &str = "https://www.kimi.com/code/authorize-device";
/// The headers every auth request must carry.
pub const IDENTITY_HEADERS: [&str; 5] =
    ["x-msh-platform", "x-msh-version", "x-msh-device-name", "x-msh-device-model", "x-msh-device-id"];
/// Lifetime of issued access tokens.
pub const TOKEN_EXPIRES_IN: u64 = 15 * 60;
pub const SCOPE: &str = "kimi-code";
/// RFC 8628 §3.5.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// What the user does by the time of one poll.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceAnswer {
    /// Has not confirmed yet: `authorization_pending`.
    Pending,
    /// The server wants fewer polls: `slow_down` (the demanded interval grows by 5 s).
    SlowDown,
    /// Confirmed: the poll gets the tokens and the code is spent.
    Approve,
    /// Refused on the confirmation page: `access_denied`, and the code is spent.
    Deny,
    /// The code ran out early: `expired_token`.
    Expire,
}

/// A failure to inject; stays in effect until replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// The device-authorization endpoint answers `503` with an HTML page.
    DeviceEndpointDown,
    /// Every token request gets `500` with an HTML page.
    TokenServerError,
    /// Every token request gets `200` with a truncated JSON body.
    MalformedTokenJson,
    /// Refresh grants get this status (401 or 403) with a body naming no OAuth error code.
    RevokeRefreshTokens { status: u16 },
    /// Every token request gets `429` with this `Retry-After` (seconds).
    RateLimit { retry_after: u64 },
}

/// One device code the mock issued.
struct DeviceGrant {
    issued: Instant,
    lifetime: Duration,
    /// The interval the mock currently demands between polls.
    interval: Duration,
    last_poll: Option<Instant>,
    spent: bool,
}

struct AuthState {
    fault: Fault,
    /// Announced in new device authorizations.
    expires_in: u64,
    interval: u64,
    /// Answers for the next polls; the last one repeats once the others are used.
    answers: VecDeque<DeviceAnswer>,
    devices: HashMap<String, DeviceGrant>,
    tokens: Tokens,
    serial: u64,
    /// Arrival time of every device-code poll (whatever its answer).
    polls: Vec<Instant>,
    refresh_calls: usize,
}

impl Default for AuthState {
    fn default() -> Self {
        AuthState {
            fault: Fault::None,
            expires_in: 15 * 60,
            interval: 5,
            answers: VecDeque::from([DeviceAnswer::Approve]),
            devices: HashMap::new(),
            tokens: Tokens::default(),
            serial: 0,
            polls: Vec::new(),
            refresh_calls: 0,
        }
    }
}

impl AuthState {
    fn next_id(&mut self, kind: &str) -> String {
        self.serial += 1;
        format!("mock-kimi-{kind}-{:04}", self.serial)
    }

    fn issue(&mut self) -> IssuedTokens {
        let tokens = IssuedTokens { access_token: self.next_id("at"), refresh_token: self.next_id("rt") };
        self.tokens.add_pair(&tokens, CLIENT_ID);
        tokens
    }

    fn token_response(&mut self) -> Response {
        let tokens = self.issue();
        Json(json!({
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "token_type": "Bearer",
            "expires_in": TOKEN_EXPIRES_IN,
            "scope": SCOPE,
        }))
        .into_response()
    }

    fn next_answer(&mut self) -> DeviceAnswer {
        if self.answers.len() > 1 { self.answers.pop_front() } else { self.answers.front().copied() }
            .unwrap_or(DeviceAnswer::Pending)
    }
}

/// The running mock: the authorization server (deref: its [`MockServer`]) and the coding API
/// ([`MockKimi::api`]). Dropping it stops both.
pub struct MockKimi {
    server: MockServer,
    api: MockUpstream,
    state: Arc<Mutex<AuthState>>,
    /// While true, device-code polls are held unanswered (after they were recorded).
    hold: watch::Sender<bool>,
}

#[derive(Clone)]
struct Shared {
    state: Arc<Mutex<AuthState>>,
    hold: watch::Sender<bool>,
}

impl Deref for MockKimi {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

impl MockKimi {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(AuthState::default()));
        let hold = watch::Sender::new(false);
        let shared = Shared { state: state.clone(), hold: hold.clone() };
        let router = Router::new()
            .route(DEVICE_PATH, post(device_authorization))
            .route(TOKEN_PATH, post(token))
            .with_state(shared);
        let api = MockUpstream::start().await;
        let tokens = state.clone();
        api.require_auth_check(Some(Arc::new(move |headers: &HeaderMap| {
            tokens.lock().expect("mock state lock").tokens.bearer_ok(headers)
        })));
        Self { server: serve(router).await, api, state, hold }
    }

    /// `upstream-urls` config pointing the Kimi provider (login, refresh and executor) here.
    pub fn upstream_urls_yaml(&self) -> String {
        format!(
            "upstream-urls:\n  kimi:\n    device: {}\n    token: {}\n    api: {}\n",
            self.url(DEVICE_PATH),
            self.url(TOKEN_PATH),
            self.api_base()
        )
    }

    /// The coding API (recorded requests, fixture choice, faults).
    pub fn api(&self) -> &MockUpstream {
        &self.api
    }

    /// `http://127.0.0.1:<port>/coding`.
    pub fn api_base(&self) -> String {
        self.api.url(API_PREFIX)
    }

    pub fn set_fault(&self, fault: Fault) {
        self.lock().fault = fault;
    }

    /// What the next polls answer, in order; the last one keeps answering after the others
    /// (`[Pending]`: the user never confirms). Default `[Approve]`.
    pub fn set_answers(&self, answers: &[DeviceAnswer]) {
        assert!(!answers.is_empty(), "at least one answer");
        self.lock().answers = answers.iter().copied().collect();
    }

    /// `expires_in` and `interval` (seconds) of the next device authorizations; the code really
    /// expires after `expires_in`. Default 900 and 5.
    pub fn set_device_timing(&self, expires_in: u64, interval: u64) {
        let mut state = self.lock();
        state.expires_in = expires_in;
        state.interval = interval;
    }

    /// Holds every device-code poll unanswered (after recording it) until released.
    pub fn hold_polls(&self, hold: bool) {
        self.hold.send_replace(hold);
    }

    /// When each device-code poll arrived, oldest first.
    pub fn poll_times(&self) -> Vec<Instant> {
        self.lock().polls.clone()
    }

    pub fn polls(&self) -> usize {
        self.lock().polls.len()
    }

    /// Refresh-grant requests received, successful or not.
    pub fn refresh_calls(&self) -> usize {
        self.lock().refresh_calls
    }

    /// Issues a valid token pair without a login, for tests that start from a saved credential.
    pub fn issue_tokens(&self) -> IssuedTokens {
        self.lock().issue()
    }

    /// Every token stops working (the user removed the app's access).
    pub fn revoke_all(&self) {
        self.lock().tokens.revoke_all();
    }

    fn lock(&self) -> MutexGuard<'_, AuthState> {
        self.state.lock().expect("mock state lock")
    }
}

/// The first identity header the request lacks (or sends blank).
fn missing_identity(headers: &HeaderMap) -> Option<&'static str> {
    IDENTITY_HEADERS
        .into_iter()
        .find(|name| headers.get(*name).and_then(|v| v.to_str().ok()).is_none_or(|v| v.trim().is_empty()))
}

fn check_request(headers: &HeaderMap) -> Option<Response> {
    if let Some(name) = missing_identity(headers) {
        return Some(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &format!("missing header {name}")));
    }
    if !oauth::content_type_is(headers, "application/x-www-form-urlencoded") {
        return Some(oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Unsupported content type"));
    }
    None
}

/// Kimi's way of saying "not yet" (and every other device-flow state): 200 with an `error`.
fn device_error(error: &str, description: &str) -> Response {
    (StatusCode::OK, Json(json!({"error": error, "error_description": description}))).into_response()
}

async fn device_authorization(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refusal) = check_request(&headers) {
        return refusal;
    }
    let form = Params::form(&body);
    let mut state = shared.state.lock().expect("mock state lock");
    if state.fault == Fault::DeviceEndpointDown {
        return (StatusCode::SERVICE_UNAVAILABLE, "<html><body>503 Service Temporarily Unavailable</body></html>")
            .into_response();
    }
    if form.get("client_id") != CLIENT_ID {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "Unknown client_id");
    }
    let device_code = state.next_id("dc");
    let serial = state.serial;
    let user_code = format!("KM{:02}-{:04}", serial % 100, serial * 7 % 10_000);
    let (expires_in, interval) = (state.expires_in, state.interval);
    state.devices.insert(
        device_code.clone(),
        DeviceGrant {
            issued: Instant::now(),
            lifetime: Duration::from_secs(expires_in),
            interval: Duration::from_secs(interval),
            last_poll: None,
            spent: false,
        },
    );
    Json(json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": VERIFICATION_URI,
        "verification_uri_complete": format!("{VERIFICATION_URI}?user_code={user_code}"),
        "expires_in": expires_in,
        "interval": interval,
    }))
    .into_response()
}

async fn token(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(refusal) = check_request(&headers) {
        return refusal;
    }
    let form = Params::form(&body);
    let device_poll = form.get("grant_type") == DEVICE_GRANT;
    {
        let mut state = shared.state.lock().expect("mock state lock");
        if device_poll {
            state.polls.push(Instant::now());
        }
        if form.get("grant_type") == "refresh_token" {
            state.refresh_calls += 1;
        }
    }
    if device_poll {
        // Outside the lock: a held poll must not block the rest of the mock.
        let _ = shared.hold.subscribe().wait_for(|hold| !*hold).await;
    }

    let mut state = shared.state.lock().expect("mock state lock");
    match state.fault {
        Fault::TokenServerError => return oauth::html_server_error(),
        Fault::MalformedTokenJson => return oauth::truncated_token_answer("mock-kimi-at-trunc"),
        Fault::RateLimit { retry_after } => return oauth::rate_limited("Too many requests", retry_after),
        _ => {}
    }
    if form.get("client_id") != CLIENT_ID {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unknown client_id");
    }
    match form.get("grant_type") {
        DEVICE_GRANT => poll(&mut state, form.get("device_code")),
        "refresh_token" => {
            if let Fault::RevokeRefreshTokens { status } = state.fault {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED);
                let body =
                    json!({"error": "unauthorized", "error_description": "the refresh token is no longer valid"});
                return (status, Json(body)).into_response();
            }
            match state.tokens.rotate(form.get("refresh_token")) {
                Rotation::Rotated => state.token_response(),
                Rotation::Spent => {
                    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "The refresh token has already been used")
                }
                Rotation::Unknown => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid refresh token"),
            }
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Unsupported grant_type"),
    }
}

/// One device-code poll, answered the way Kimi does (200 with an `error` until confirmed).
fn poll(state: &mut AuthState, device_code: &str) -> Response {
    let now = Instant::now();
    let Some(grant) = state.devices.get_mut(device_code) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid device code");
    };
    if grant.spent {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "The device code has already been used");
    }
    if now.duration_since(grant.issued) >= grant.lifetime {
        return device_error("expired_token", "The device code has expired");
    }
    let too_soon = grant.last_poll.is_some_and(|last| now.duration_since(last) < grant.interval);
    grant.last_poll = Some(now);
    if too_soon {
        grant.interval += SLOW_DOWN_STEP;
        return device_error("slow_down", "Polling too frequently");
    }
    match state.next_answer() {
        DeviceAnswer::Pending => device_error("authorization_pending", "The user has not yet authorized"),
        DeviceAnswer::SlowDown => {
            if let Some(grant) = state.devices.get_mut(device_code) {
                grant.interval += SLOW_DOWN_STEP;
            }
            device_error("slow_down", "Polling too frequently")
        }
        DeviceAnswer::Approve => {
            if let Some(grant) = state.devices.get_mut(device_code) {
                grant.spent = true;
            }
            state.token_response()
        }
        DeviceAnswer::Deny => {
            if let Some(grant) = state.devices.get_mut(device_code) {
                grant.spent = true;
            }
            device_error("access_denied", "The user denied the authorization")
        }
        DeviceAnswer::Expire => {
            if let Some(grant) = state.devices.get_mut(device_code) {
                grant.lifetime = Duration::ZERO;
            }
            device_error("expired_token", "The device code has expired")
        }
    }
}
