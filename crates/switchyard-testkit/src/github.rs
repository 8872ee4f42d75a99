//! Mock of GitHub for Copilot on one loopback port: the OAuth device flow (`github.com`), the
//! user endpoint and the Copilot token exchange (`api.github.com`), and the Copilot chat API
//! (`api.githubcopilot.com`), with the real servers' quirks:
//!
//! - the device flow answers **HTTP 200 with an `error` member** for every refusal
//!   (`authorization_pending`, `slow_down` with the new `interval`, `expired_token`,
//!   `access_denied`, `incorrect_device_code`, ...), and form-encoded bodies unless the client
//!   asks for `Accept: application/json`; a device code is spent once its token is issued;
//! - `GET /user` needs a `User-Agent` (403 without one) and takes `Bearer` or `token`;
//! - the token exchange takes only the `token` scheme and answers a token with `expires_at`,
//!   `refresh_in` and `endpoints.api` (pointing back here), 401 for an unknown or revoked GitHub
//!   token, and 403/404 with `error_details` for an account without Copilot;
//! - the chat API takes only a live Copilot token as Bearer (401 once it expired or its GitHub
//!   token was revoked), refuses requests without `Editor-Version` (400, as the real API does),
//!   and replays the OpenAI Chat fixtures (`data:` lines, then `data: [DONE]`).
//!
//! Knobs: the poll answers, interval and lifetime of device codes, the user, the subscription,
//! the lifetime of each Copilot token (or none), a slow or failing exchange, revocation, chat
//! faults and fixtures. Every request is recorded; polls and exchanges are also counted with their times.

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::oauth::Params;
use crate::upstream::{Api, sse_events};
use crate::{MockServer, fixtures, serve};

/// GitHub Copilot's public OAuth app, the only client this mock knows.
pub const CLIENT_ID: &str = "Iv1.b507a08c87ecfe98";
pub const DEVICE_CODE_PATH: &str = "/login/device/code";
pub const TOKEN_PATH: &str = "/login/oauth/access_token";
pub const USER_PATH: &str = "/user";
pub const COPILOT_TOKEN_PATH: &str = "/copilot_internal/v2/token";
pub const CHAT_PATH: &str = "/chat/completions";
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
pub const VERIFICATION_URI: &str = "https://github.com/login/device";
/// The polling interval the mock announces (GitHub's is 5 s; tests want fast polls).
pub const DEFAULT_INTERVAL: u64 = 1;
/// Device codes live 15 minutes, as on GitHub.
pub const DEFAULT_EXPIRES_IN: u64 = 900;
/// Copilot API tokens live about 30 minutes.
pub const COPILOT_TOKEN_LIFETIME: i64 = 1800;
/// Every Copilot token this mock issues starts like this (for leak checks).
pub const COPILOT_TOKEN_MARK: &str = "tid=mock";
/// Every GitHub token this mock issues starts like this (GitHub's OAuth-app prefix).
pub const GITHUB_TOKEN_MARK: &str = "gho_";
const ERROR_URI: &str =
    "https://docs.github.com/developers/apps/authorizing-oauth-apps#error-codes-for-the-device-flow";

/// How the mock answers one poll of the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollAnswer {
    Pending,
    /// `slow_down`, with the interval raised by 5 s.
    SlowDown,
    /// The user entered the code and authorized the app: a token is issued.
    Approve,
    Deny,
    Expire,
}

/// The account behind every login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub login: String,
    /// `None`: GitHub answers `null` (no public name / private email).
    pub name: Option<String>,
    pub email: Option<String>,
}

impl Default for User {
    fn default() -> Self {
        User { login: "octocat".into(), name: Some("The Octocat".into()), email: Some("octocat@github.example".into()) }
    }
}

/// Whether the account may use Copilot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Subscription {
    #[default]
    Active,
    /// No Copilot: the exchange answers `status` (GitHub uses 403 or 404) with `error_details`.
    Missing { status: u16 },
}

/// Message GitHub puts in `error_details` for an account without Copilot.
pub const NO_COPILOT_MESSAGE: &str = "No access to GitHub Copilot found. You are currently logged in as octocat.";

/// A failure of the token exchange to inject; stays in effect until replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExchangeFault {
    /// `200` with a JSON answer that has no `token`.
    NoToken,
    /// `502` with an HTML page, as a failing front end answers.
    ServerError,
    /// `429` with this `Retry-After` (seconds).
    RateLimited { retry_after: u64 },
}

/// One Copilot token as issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCopilotToken {
    pub token: String,
    pub github_token: String,
    /// Unix seconds; what the exchange answered (or, without `expires_at`, when it really ends).
    pub expires_at: i64,
    /// Whether the answer carried `expires_at`.
    pub announced_expiry: bool,
}

struct Device {
    client_id: String,
    scope: String,
    issued: Instant,
    expires_in: u64,
    interval: u64,
    spent: bool,
}

struct GithubState {
    base: String,
    /// Makes this mock's tokens unique across mocks (executors cache by token process-wide).
    nonce: String,
    serial: u64,
    interval: u64,
    expires_in: u64,
    script: VecDeque<PollAnswer>,
    /// The answer once the script is used up.
    fallback: PollAnswer,
    devices: HashMap<String, Device>,
    device_refusal: Option<String>,
    polls: Vec<(Instant, PollAnswer)>,
    user: User,
    user_fault: Option<u16>,
    github_tokens: HashSet<String>,
    revoked: HashSet<String>,
    subscription: Subscription,
    require_token_scheme: bool,
    lifetimes: VecDeque<Option<i64>>,
    exchange_fault: Option<ExchangeFault>,
    exchange_delay: Duration,
    exchanges: Vec<Instant>,
    copilot_tokens: Vec<IssuedCopilotToken>,
    api_endpoint: Option<String>,
    chat_faults: VecDeque<u16>,
    json_fixture: String,
    stream_fixture: String,
}

impl GithubState {
    fn new() -> GithubState {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default();
        let seed = format!("{now}-{:p}", &now);
        let nonce = hex(&Sha256::digest(seed.as_bytes()))[..10].to_owned();
        let (json_fixture, stream_fixture) = Api::OpenAiChat.default_fixtures();
        GithubState {
            base: String::new(),
            nonce,
            serial: 0,
            interval: DEFAULT_INTERVAL,
            expires_in: DEFAULT_EXPIRES_IN,
            script: VecDeque::new(),
            fallback: PollAnswer::Pending,
            devices: HashMap::new(),
            device_refusal: None,
            polls: Vec::new(),
            user: User::default(),
            user_fault: None,
            github_tokens: HashSet::new(),
            revoked: HashSet::new(),
            subscription: Subscription::Active,
            require_token_scheme: true,
            lifetimes: VecDeque::new(),
            exchange_fault: None,
            exchange_delay: Duration::ZERO,
            exchanges: Vec::new(),
            copilot_tokens: Vec::new(),
            api_endpoint: None,
            chat_faults: VecDeque::new(),
            json_fixture: json_fixture.to_owned(),
            stream_fixture: stream_fixture.to_owned(),
        }
    }

    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    /// `gho_` + 36 alphanumerics, like GitHub's OAuth-app tokens.
    fn issue_github_token(&mut self) -> String {
        let serial = self.next_serial();
        let token = format!("{GITHUB_TOKEN_MARK}mock{}{serial:022}", self.nonce);
        self.github_tokens.insert(token.clone());
        token
    }

    fn live_github_token(&self, token: &str) -> bool {
        self.github_tokens.contains(token) && !self.revoked.contains(token)
    }

    fn live_copilot_token(&self, token: &str) -> bool {
        let now = unix_now();
        self.copilot_tokens
            .iter()
            .any(|t| t.token == token && t.expires_at > now && self.live_github_token(&t.github_token))
    }
}

/// The running mock (its [`MockServer`] too). Dropping it stops the server.
pub struct MockGithub {
    server: MockServer,
    state: Arc<Mutex<GithubState>>,
}

impl Deref for MockGithub {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

type Shared = State<Arc<Mutex<GithubState>>>;

impl MockGithub {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(GithubState::new()));
        let router = Router::new()
            .route(DEVICE_CODE_PATH, post(device_code))
            .route(TOKEN_PATH, post(poll))
            .route(USER_PATH, get(user))
            .route(COPILOT_TOKEN_PATH, get(copilot_token))
            .route(CHAT_PATH, post(chat))
            .with_state(state.clone());
        let server = serve(router).await;
        state.lock().expect("mock state lock").base = server.base.clone();
        MockGithub { server, state }
    }

    /// `upstream-urls` pointing the GitHub endpoints here. The chat API is left to the
    /// exchange's `endpoints.api` (which points here too); see [`MockGithub::api_yaml_line`].
    pub fn upstream_urls_yaml(&self) -> String {
        format!(
            "upstream-urls:\n  github-copilot:\n    device: {}\n    token: {}\n    user: {}\n    copilot-token: {}\n",
            self.url(DEVICE_CODE_PATH),
            self.url(TOKEN_PATH),
            self.url(USER_PATH),
            self.url(COPILOT_TOKEN_PATH),
        )
    }

    /// The `api` line to append to [`MockGithub::upstream_urls_yaml`] to configure `base`.
    pub fn api_yaml_line(base: &str) -> String {
        format!("    api: {base}\n")
    }

    fn lock(&self) -> MutexGuard<'_, GithubState> {
        self.state.lock().expect("mock state lock")
    }

    /// Interval announced for new device codes (seconds).
    pub fn set_interval(&self, seconds: u64) {
        self.lock().interval = seconds;
    }

    /// `expires_in` of new device codes (seconds); polls after it get `expired_token`.
    pub fn set_expires_in(&self, seconds: u64) {
        self.lock().expires_in = seconds;
    }

    /// Device-code requests get HTTP 200 with this `error` (e.g. `device_flow_disabled`, as when
    /// the app has the device flow switched off); `None` repairs it.
    pub fn refuse_device_codes(&self, error: Option<&str>) {
        self.lock().device_refusal = error.map(str::to_owned);
    }

    /// The answers to the next polls, in order; after them, the fallback answer.
    pub fn script_polls(&self, answers: &[PollAnswer]) {
        self.lock().script.extend(answers.iter().copied());
    }

    /// The answer once the script is used up (at first: `Pending`).
    pub fn set_fallback(&self, answer: PollAnswer) {
        self.lock().fallback = answer;
    }

    /// The user authorizes the app: the next poll gets the token.
    pub fn approve(&self) {
        self.set_fallback(PollAnswer::Approve);
    }

    /// When each poll arrived and how it was answered, oldest first.
    pub fn polls(&self) -> Vec<(Instant, PollAnswer)> {
        self.lock().polls.clone()
    }

    pub fn set_user(&self, user: User) {
        self.lock().user = user;
    }

    /// `GET /user` answers `status` (e.g. 500) instead of the user; `None` repairs it.
    pub fn fail_user_lookup(&self, status: Option<u16>) {
        self.lock().user_fault = status;
    }

    pub fn set_subscription(&self, subscription: Subscription) {
        self.lock().subscription = subscription;
    }

    /// Whether the exchange insists on the `token` scheme (default true, as the spec notes).
    pub fn require_token_scheme(&self, required: bool) {
        self.lock().require_token_scheme = required;
    }

    /// Lifetime of the next Copilot token (seconds from now; `None` = the answer has no
    /// `expires_at`); later tokens get [`COPILOT_TOKEN_LIFETIME`].
    pub fn push_token_lifetime(&self, lifetime: Option<i64>) {
        self.lock().lifetimes.push_back(lifetime);
    }

    /// Every exchange fails this way (`None` repairs it).
    pub fn set_exchange_fault(&self, fault: Option<ExchangeFault>) {
        self.lock().exchange_fault = fault;
    }

    /// How long each exchange takes before answering.
    pub fn set_exchange_delay(&self, delay: Duration) {
        self.lock().exchange_delay = delay;
    }

    /// `endpoints.api` of exchange answers (default: this mock).
    pub fn set_api_endpoint(&self, api: Option<&str>) {
        self.lock().api_endpoint = api.map(str::to_owned);
    }

    /// Issues a GitHub token without a login (for tests starting from a saved file).
    pub fn issue_github_token(&self) -> String {
        self.lock().issue_github_token()
    }

    /// The user removed the app's access: every GitHub token so far, and every Copilot token
    /// derived from one, stops working.
    pub fn revoke_github_tokens(&self) {
        let mut state = self.lock();
        let tokens: Vec<String> = state.github_tokens.iter().cloned().collect();
        state.revoked.extend(tokens);
    }

    /// Exchange requests received so far, answered or refused.
    pub fn exchanges(&self) -> usize {
        self.lock().exchanges.len()
    }

    /// Every Copilot token issued, oldest first.
    pub fn copilot_tokens(&self) -> Vec<IssuedCopilotToken> {
        self.lock().copilot_tokens.clone()
    }

    /// The next chat request gets `status` (OpenAI error shape) whatever it is.
    pub fn push_chat_fault(&self, status: u16) {
        self.lock().chat_faults.push_back(status);
    }

    /// Replays `file` (relative to the fixtures dir) from the chat API: a `.json` file as the
    /// non-stream body, a `.chunks.txt` file as the stream.
    pub fn replay(&self, file: &str) {
        let mut state = self.lock();
        if file.ends_with(".chunks.txt") {
            state.stream_fixture = file.to_owned();
        } else {
            state.json_fixture = file.to_owned();
        }
    }

    /// The fixture files the chat API replays now: (non-stream body, stream).
    pub fn fixtures(&self) -> (String, String) {
        let state = self.lock();
        (state.json_fixture.clone(), state.stream_fixture.clone())
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or_default()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.to_ascii_lowercase().contains("application/json"))
}

/// GitHub's OAuth endpoints answer form-encoded bodies unless asked for JSON.
fn github_answer(headers: &HeaderMap, body: Value) -> Response {
    if wants_json(headers) {
        return Json(body).into_response();
    }
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in body.as_object().into_iter().flatten() {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        form.append_pair(key, &text);
    }
    ([(header::CONTENT_TYPE, "application/x-www-form-urlencoded; charset=utf-8")], form.finish()).into_response()
}

/// A device-flow refusal: HTTP 200 with `error` (GitHub's quirk).
fn device_error(headers: &HeaderMap, error: &str, description: &str) -> Response {
    github_answer(headers, json!({"error": error, "error_description": description, "error_uri": ERROR_URI}))
}

async fn device_code(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::form(&body);
    if form.get("client_id") != CLIENT_ID {
        return device_error(&headers, "incorrect_client_credentials", "The client_id is not valid.");
    }
    let mut state = state.lock().expect("mock state lock");
    if let Some(error) = state.device_refusal.clone() {
        return device_error(&headers, &error, "Device Flow must be explicitly enabled for this App");
    }
    let serial = state.next_serial();
    let device_code = format!("mock-gh-device-{}-{serial:04}", state.nonce);
    let user_code = format!("MOCK-{serial:04}");
    let (interval, expires_in) = (state.interval, state.expires_in);
    state.devices.insert(
        device_code.clone(),
        Device {
            client_id: CLIENT_ID.into(),
            scope: form.get("scope").to_owned(),
            issued: Instant::now(),
            expires_in,
            interval,
            spent: false,
        },
    );
    github_answer(
        &headers,
        json!({
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": VERIFICATION_URI,
            "expires_in": expires_in,
            "interval": interval,
        }),
    )
}

async fn poll(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let form = Params::form(&body);
    if form.get("grant_type") != DEVICE_GRANT {
        return device_error(&headers, "unsupported_grant_type", "The grant type must be the device code grant.");
    }
    let mut state = state.lock().expect("mock state lock");
    let state = &mut *state;
    let Some(device) = state.devices.get_mut(form.get("device_code")) else {
        return device_error(&headers, "incorrect_device_code", "The device_code provided is not valid.");
    };
    if form.get("client_id") != device.client_id {
        return device_error(&headers, "incorrect_client_credentials", "The client_id is not valid.");
    }
    if device.spent {
        return device_error(&headers, "incorrect_device_code", "The device_code provided is not valid.");
    }
    let answer = if device.issued.elapsed() >= Duration::from_secs(device.expires_in) {
        PollAnswer::Expire
    } else {
        state.script.pop_front().unwrap_or(state.fallback)
    };
    state.polls.push((Instant::now(), answer));
    match answer {
        PollAnswer::Pending => {
            device_error(&headers, "authorization_pending", "The authorization request is still pending.")
        }
        PollAnswer::SlowDown => {
            device.interval += 5;
            let body = json!({
                "error": "slow_down",
                "error_description": "Too many requests have been made in the same timeframe.",
                "error_uri": ERROR_URI,
                "interval": device.interval,
            });
            github_answer(&headers, body)
        }
        PollAnswer::Deny => device_error(&headers, "access_denied", "The authorization request was denied."),
        PollAnswer::Expire => device_error(&headers, "expired_token", "The device_code has expired."),
        PollAnswer::Approve => {
            device.spent = true;
            // GitHub lists granted scopes comma-separated.
            let scope = device.scope.split_whitespace().collect::<Vec<_>>().join(",");
            let token = state.issue_github_token();
            github_answer(&headers, json!({"access_token": token, "token_type": "bearer", "scope": scope}))
        }
    }
}

/// A REST API error as api.github.com words it.
fn api_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"message": message, "documentation_url": "https://docs.github.com/rest", "status": status.as_u16().to_string()});
    (status, Json(body)).into_response()
}

/// The token of `Authorization: <scheme> <token>` for one of `schemes`.
fn credential<'a>(headers: &'a HeaderMap, schemes: &[&str]) -> Option<&'a str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    schemes.iter().any(|s| s.eq_ignore_ascii_case(scheme)).then_some(token.trim())
}

async fn user(State(state): Shared, headers: HeaderMap) -> Response {
    if !headers.contains_key(header::USER_AGENT) {
        return (
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.",
        )
            .into_response();
    }
    let state = state.lock().expect("mock state lock");
    if let Some(status) = state.user_fault {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return api_error(status, "Server Error");
    }
    let Some(token) = credential(&headers, &["Bearer", "token"]) else {
        return api_error(StatusCode::UNAUTHORIZED, "Requires authentication");
    };
    if !state.live_github_token(token) {
        return api_error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let user = &state.user;
    Json(json!({
        "login": user.login,
        "id": 583231,
        "type": "User",
        "name": user.name,
        "email": user.email,
        "html_url": format!("https://github.com/{}", user.login),
    }))
    .into_response()
}

async fn copilot_token(State(shared): Shared, headers: HeaderMap) -> Response {
    let delay = {
        let mut state = shared.lock().expect("mock state lock");
        state.exchanges.push(Instant::now());
        state.exchange_delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut state = shared.lock().expect("mock state lock");
    match state.exchange_fault {
        Some(ExchangeFault::NoToken) => {
            return Json(json!({"chat_enabled": true, "sku": "copilot_for_individuals_subscriber"})).into_response();
        }
        Some(ExchangeFault::ServerError) => {
            return (StatusCode::BAD_GATEWAY, "<html><body><h1>502 Bad Gateway</h1></body></html>").into_response();
        }
        Some(ExchangeFault::RateLimited { retry_after }) => {
            let mut response = api_error(StatusCode::TOO_MANY_REQUESTS, "API rate limit exceeded");
            response.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
            return response;
        }
        None => {}
    }
    let schemes: &[&str] = if state.require_token_scheme { &["token"] } else { &["token", "Bearer"] };
    let Some(github_token) = credential(&headers, schemes).map(str::to_owned) else {
        return api_error(StatusCode::UNAUTHORIZED, "Bad credentials");
    };
    if !state.live_github_token(&github_token) {
        return api_error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    if let Subscription::Missing { status } = state.subscription {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
        let body = json!({
            "error_details": {
                "url": "https://github.com/features/copilot",
                "message": NO_COPILOT_MESSAGE,
                "title": "Copilot is not enabled",
                "notification_id": "no_copilot_access",
            },
            "message": "Resource not accessible by integration",
        });
        return (status, Json(body)).into_response();
    }
    let lifetime = state.lifetimes.pop_front().unwrap_or(Some(COPILOT_TOKEN_LIFETIME));
    let expires_at = unix_now() + lifetime.unwrap_or(COPILOT_TOKEN_LIFETIME);
    let serial = state.next_serial();
    let signature = hex(&Sha256::digest(format!("{}-{serial}", state.nonce).as_bytes()));
    let token = format!(
        "{COPILOT_TOKEN_MARK}{}{serial:04};exp={expires_at};sku=copilot_for_individuals_subscriber;\
         proxy-ep=proxy.individual.githubcopilot.com;8kp=1:{signature}",
        state.nonce
    );
    state.copilot_tokens.push(IssuedCopilotToken {
        token: token.clone(),
        github_token,
        expires_at,
        announced_expiry: lifetime.is_some(),
    });
    let api = state.api_endpoint.clone().unwrap_or_else(|| state.base.clone());
    let mut body = json!({
        "token": token,
        "refresh_in": (lifetime.unwrap_or(COPILOT_TOKEN_LIFETIME) - 300).max(0),
        "endpoints": {
            "api": api,
            "origin-tracker": "https://origin-tracker.individual.githubcopilot.com",
            "proxy": "https://proxy.individual.githubcopilot.com",
            "telemetry": "https://telemetry.individual.githubcopilot.com",
        },
        "chat_enabled": true,
        "sku": "copilot_for_individuals_subscriber",
        "individual": true,
    });
    if lifetime.is_some() {
        body["expires_at"] = expires_at.into();
    }
    Json(body).into_response()
}

/// The Copilot chat API's errors, in the OpenAI shape.
fn chat_error(status: StatusCode, message: &str, code: &str) -> Response {
    (status, Json(json!({"error": {"message": message, "code": code}}))).into_response()
}

async fn chat(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = state.lock().expect("mock state lock");
    if let Some(status) = state.chat_faults.pop_front() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return chat_error(status, "injected fault", "injected");
    }
    let live = credential(&headers, &["Bearer"]).is_some_and(|token| state.live_copilot_token(token));
    if !live {
        return chat_error(StatusCode::UNAUTHORIZED, "unauthorized: token expired or invalid", "unauthorized");
    }
    if !headers.contains_key("editor-version") {
        return (StatusCode::BAD_REQUEST, "bad request: missing Editor-Version header for IDE auth\n").into_response();
    }
    let request = match serde_json::from_slice::<Value>(&body) {
        Ok(request @ Value::Object(_)) => request,
        _ => return chat_error(StatusCode::BAD_REQUEST, "request body is not a JSON object", "invalid_request_body"),
    };
    if request.get("model").and_then(Value::as_str).is_none_or(str::is_empty) {
        return chat_error(StatusCode::BAD_REQUEST, "model is required", "invalid_request_body");
    }
    if !request.get("messages").is_some_and(Value::is_array) {
        return chat_error(StatusCode::BAD_REQUEST, "messages is required", "invalid_request_body");
    }
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        let events = sse_events(Api::OpenAiChat, &state.stream_fixture).concat();
        return (
            [(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")],
            Body::from(events),
        )
            .into_response();
    }
    ([(header::CONTENT_TYPE, "application/json")], fixtures::read(&state.json_fixture)).into_response()
}
