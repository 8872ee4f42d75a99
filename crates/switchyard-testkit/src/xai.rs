//! Mock of xAI on one loopback port: the OpenID Provider at `auth.x.ai` (discovery, RFC 8628
//! device authorization, a token endpoint for the device-code and refresh grants) and the
//! Responses API that `cli-chat-proxy.grok.com/v1` and `api.x.ai/v1` both serve at
//! `/v1/responses` (the public API under `/public/v1/responses` here, so one mock plays both).
//!
//! The real servers' rules it keeps: form-only endpoints; the Grok CLI's public client (no
//! secret) and nothing else; poll errors as `400 {"error": ...}` (RFC 8628 §3.5); device codes
//! that expire after `expires_in` and work once; refresh tokens only for `offline_access`,
//! rotated on every use (a spent one is `invalid_grant`); an id_token that is an unsigned JWT
//! (`alg: none`) with `email` and `sub`. The CLI proxy takes the issued access tokens with the Grok
//! CLI's headers; the public API takes them and registered API keys; both answer an unknown
//! Bearer as xAI does: HTTP **400** `{"code": "Client specified an invalid argument", "error":
//! "Incorrect API key provided: xa***ey. ..."}`; it refuses `reasoning.effort` for the models
//! that reject it (400 "does not support parameter reasoningEffort").
//!
//! Knobs: faults ([`Fault`]), the account behind logins, the device answer's `interval` /
//! `expires_in`, a script of poll answers ([`MockXai::script_polls`]), approving or denying a
//! code, discovery members, the Responses fixtures, one-shot Responses faults and cut streams.

use std::collections::{HashMap, VecDeque};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::StreamExt;
use serde_json::{Value, json};

pub use crate::oauth::IssuedTokens;
use crate::oauth::{self, Params, Rotation, Tokens, oauth_error};
use crate::upstream::{Api, sse_events};
use crate::{MockServer, fixtures, serve};

/// The Grok CLI's public OAuth client, the only one this mock knows.
pub const CLIENT_ID: &str = "b1a00492-073a-47ea-816f-4c329264a828";
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
pub const DEVICE_PATH: &str = "/oauth2/device/code";
pub const TOKEN_PATH: &str = "/oauth2/token";
/// The page a user opens to confirm a code (not served: tests approve through the mock).
pub const VERIFY_PATH: &str = "/device";
/// The Grok CLI chat proxy's Responses route (`cli-chat-proxy.grok.com/v1/responses`).
pub const RESPONSES_PATH: &str = "/v1/responses";
/// The public API's Responses route (`api.x.ai/v1/responses`), under its own prefix here.
pub const PUBLIC_RESPONSES_PATH: &str = "/public/v1/responses";
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Lifetime of issued access tokens.
pub const EXPIRES_IN: u64 = 3600;
/// What every token and code of this mock starts with, for "nothing leaked" checks.
pub const TOKEN_MARK: &str = "mock-xai-";
/// The headers the Grok CLI sends, with the values the CLI proxy insists on (`None`: any
/// non-blank value).
pub const GROK_CLI_HEADERS: &[(&str, Option<&str>)] = &[
    ("x-xai-token-auth", Some("xai-grok-cli")),
    ("x-grok-client-version", None),
    ("x-grok-client-identifier", None),
    ("x-authenticateresponse", Some("authenticate-response")),
    ("x-grok-conv-id", None),
];
/// Catalogued models that choose reasoning by name and refuse `reasoning.effort`.
const NO_EFFORT_MODELS: &[&str] =
    &["grok-4", "grok-4-0709", "grok-4-fast", "grok-4-fast-reasoning", "grok-code-fast-1"];
/// Models that do not reason and refuse any `reasoning`.
const NON_REASONING_MODELS: &[&str] = &["grok-3", "grok-4-fast-non-reasoning"];

/// A failure to inject into the authorization server; stays in effect until replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// The discovery document answers `503`.
    DiscoveryUnavailable,
    /// The device-authorization endpoint answers `500` with an HTML page.
    DeviceServerError,
    /// Every token request gets `500` with an HTML page.
    TokenServerError,
    /// Every token request gets `200` with a truncated JSON body.
    MalformedTokenJson,
    /// Token answers carry an id_token that is not a JWT.
    MalformedIdToken,
    /// Refresh grants get `400 invalid_grant` (the user signed the CLI out).
    RevokeRefreshTokens,
    /// Every token request gets `429` with this `Retry-After` (seconds).
    RateLimit { retry_after: u64 },
}

/// One scripted answer to a device-code poll, given before the code's real state is looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PollAnswer {
    Pending,
    SlowDown,
    Expired,
    Denied,
    /// Any other RFC 6749 error code.
    Error(String),
}

/// The xAI account behind every login; `None` leaves the claim out of the id_token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub email: Option<String>,
    pub sub: Option<String>,
}

impl Default for Account {
    fn default() -> Self {
        Self { email: Some("grok-user@example.com".into()), sub: Some("mock-xai-subject-0001".into()) }
    }
}

/// A one-shot answer of the Responses API for the next request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponsesFault {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<u64>,
}

impl ResponsesFault {
    /// xAI's error shape: `{"code": ..., "error": ...}`.
    pub fn status(status: u16, message: &str) -> Self {
        let code = match status {
            400 => "Client specified an invalid argument",
            403 => "The caller does not have permission to execute the specified operation",
            429 => "Some resource has been exhausted",
            _ => "Internal error",
        };
        ResponsesFault { status, body: json!({"code": code, "error": message}).to_string(), retry_after: None }
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// Where a device code stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Pending,
    Approved,
    Denied,
    /// Tokens were issued; the code is spent.
    Redeemed,
}

struct DeviceCode {
    user_code: String,
    scope: String,
    expires_at: Instant,
    decision: Decision,
}

/// The running mock (its [`MockServer`] too). Dropping it stops the server.
pub struct MockXai {
    server: MockServer,
    state: Arc<Mutex<XaiState>>,
}

struct XaiState {
    base: String,
    fault: Fault,
    account: Account,
    interval: u64,
    expires_in: Option<u64>,
    discovery_overrides: Vec<(String, Option<Value>)>,
    poll_script: VecDeque<PollAnswer>,
    /// device code → its state.
    devices: HashMap<String, DeviceCode>,
    tokens: Tokens,
    api_keys: Vec<String>,
    serial: u64,
    refresh_calls: usize,
    device_polls: usize,
    json_fixture: String,
    stream_fixture: String,
    responses_faults: VecDeque<ResponsesFault>,
    drop_streams_after: Option<usize>,
}

impl Deref for MockXai {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

impl MockXai {
    pub async fn start() -> Self {
        let (json_fixture, stream_fixture) = Api::OpenAiResponses.default_fixtures();
        let state = Arc::new(Mutex::new(XaiState {
            base: String::new(),
            fault: Fault::None,
            account: Account::default(),
            interval: 1,
            expires_in: Some(600),
            discovery_overrides: Vec::new(),
            poll_script: VecDeque::new(),
            devices: HashMap::new(),
            tokens: Tokens::default(),
            api_keys: Vec::new(),
            serial: 0,
            refresh_calls: 0,
            device_polls: 0,
            json_fixture: json_fixture.into(),
            stream_fixture: stream_fixture.into(),
            responses_faults: VecDeque::new(),
            drop_streams_after: None,
        }));
        let router = Router::new()
            .route(DISCOVERY_PATH, get(discovery))
            .route(DEVICE_PATH, post(device_authorization))
            .route(TOKEN_PATH, post(token))
            .route(RESPONSES_PATH, post(cli_proxy_responses))
            .route(PUBLIC_RESPONSES_PATH, post(public_responses))
            .with_state(state.clone());
        let server = serve(router).await;
        state.lock().expect("mock state lock").base = server.base.clone();
        Self { server, state }
    }

    /// `upstream-urls` config pointing the xAI provider here: the issuer (so everything else
    /// is discovered) and the Responses API base.
    pub fn upstream_urls_yaml(&self) -> String {
        format!("upstream-urls:\n  xai:\n    issuer: {}\n    api: {}\n", self.base, self.api_base())
    }

    /// The Grok CLI chat proxy's base (`…/v1`): OAuth access tokens with the Grok CLI headers.
    pub fn api_base(&self) -> String {
        self.url("/v1")
    }

    /// The public API's base (`…/public/v1`): API keys, and OAuth access tokens without the
    /// Grok CLI headers (`using_api` accounts).
    pub fn public_api_base(&self) -> String {
        self.url("/public/v1")
    }

    pub fn set_fault(&self, fault: Fault) {
        self.lock().fault = fault;
    }

    pub fn set_account(&self, account: Account) {
        self.lock().account = account;
    }

    /// The `interval` device answers announce (default 1 s).
    pub fn set_interval(&self, seconds: u64) {
        self.lock().interval = seconds;
    }

    /// The `expires_in` device answers carry and codes live for (default 600 s); `None` leaves
    /// the member out (codes then live 30 min).
    pub fn set_device_expires_in(&self, seconds: Option<u64>) {
        self.lock().expires_in = seconds;
    }

    /// Replaces a member of the discovery document (`None` removes it).
    pub fn set_discovery_member(&self, member: &str, value: Option<Value>) {
        self.lock().discovery_overrides.push((member.to_owned(), value));
    }

    /// Answers for the next device-code polls, oldest first; once used up, polls see the
    /// code's real state again.
    pub fn script_polls(&self, answers: impl IntoIterator<Item = PollAnswer>) {
        self.lock().poll_script.extend(answers);
    }

    /// The user confirms `user_code` on the verification page. False for an unknown code.
    pub fn approve(&self, user_code: &str) -> bool {
        self.decide(user_code, Decision::Approved)
    }

    /// The user refuses `user_code`.
    pub fn deny(&self, user_code: &str) -> bool {
        self.decide(user_code, Decision::Denied)
    }

    fn decide(&self, user_code: &str, decision: Decision) -> bool {
        let mut state = self.lock();
        let device = state.devices.values_mut().find(|d| d.user_code == user_code && d.decision == Decision::Pending);
        device.map(|device| device.decision = decision).is_some()
    }

    /// Refresh-grant requests received, successful or not.
    pub fn refresh_calls(&self) -> usize {
        self.lock().refresh_calls
    }

    /// Device-code token requests received.
    pub fn device_polls(&self) -> usize {
        self.lock().device_polls
    }

    /// Issues a valid token pair without a login, for tests that start from a saved credential.
    pub fn issue_tokens(&self) -> IssuedTokens {
        self.lock().issue(true)
    }

    /// An API key the Responses API accepts from now on.
    pub fn add_api_key(&self, key: &str) {
        self.lock().api_keys.push(key.to_owned());
    }

    /// Replays `file` (relative to the fixtures dir) from the Responses API: a `.json` file as
    /// the non-stream body, a `.chunks.txt` file as the stream.
    pub fn replay(&self, file: &str) {
        let mut state = self.lock();
        if file.ends_with(".chunks.txt") {
            state.stream_fixture = file.to_owned();
        } else {
            state.json_fixture = file.to_owned();
        }
    }

    /// The stream the Responses API sends now, event by event.
    pub fn stream_events(&self) -> Vec<Vec<u8>> {
        sse_events(Api::OpenAiResponses, &self.lock().stream_fixture)
    }

    /// The non-stream body the Responses API sends now.
    pub fn json_body(&self) -> Vec<u8> {
        fixtures::read(&self.lock().json_fixture)
    }

    /// Queues a Responses answer; each Responses request takes the oldest one, if any.
    pub fn push_responses_fault(&self, fault: ResponsesFault) {
        self.lock().responses_faults.push_back(fault);
    }

    /// Cuts every Responses stream after `events` events (`None`: streams run to their end).
    pub fn drop_streams_after(&self, events: Option<usize>) {
        self.lock().drop_streams_after = events;
    }

    fn lock(&self) -> MutexGuard<'_, XaiState> {
        self.state.lock().expect("mock state lock")
    }
}

impl XaiState {
    fn next_id(&mut self, kind: &str) -> String {
        self.serial += 1;
        format!("{TOKEN_MARK}{kind}-{:04}", self.serial)
    }

    fn issue(&mut self, with_refresh: bool) -> IssuedTokens {
        let tokens = IssuedTokens {
            access_token: self.next_id("at"),
            refresh_token: if with_refresh { self.next_id("rt") } else { String::new() },
        };
        self.tokens.add_access(&tokens.access_token);
        if with_refresh {
            self.tokens.add_refresh(&tokens.refresh_token, CLIENT_ID);
        }
        tokens
    }

    fn token_response(&mut self, scope: &str) -> Response {
        let offline = scope.split(' ').any(|s| s == "offline_access");
        let tokens = self.issue(offline);
        let id_token = match self.fault {
            Fault::MalformedIdToken => "mock-xai-id-token-not-a-jwt".to_owned(),
            _ => id_token(&self.base, &self.account),
        };
        let mut body = json!({
            "access_token": tokens.access_token,
            "token_type": "Bearer",
            "expires_in": EXPIRES_IN,
            "scope": scope,
            "id_token": id_token,
        });
        if offline {
            body["refresh_token"] = tokens.refresh_token.into();
        }
        Json(body).into_response()
    }
}

/// An id_token (`header.payload.`) with `alg: none` and an empty signature.
fn id_token(issuer: &str, account: &Account) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let mut claims = json!({"iss": issuer, "aud": CLIENT_ID, "iat": now, "exp": now + EXPIRES_IN});
    if let Some(sub) = &account.sub {
        claims["sub"] = sub.as_str().into();
    }
    if let Some(email) = &account.email {
        claims["email"] = email.as_str().into();
        claims["email_verified"] = true.into();
    }
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}.", encode(&json!({"alg": "none", "typ": "JWT"})), encode(&claims))
}

type Shared = State<Arc<Mutex<XaiState>>>;

fn lock(state: &Arc<Mutex<XaiState>>) -> MutexGuard<'_, XaiState> {
    state.lock().expect("mock state lock")
}

async fn discovery(State(state): Shared) -> Response {
    let state = lock(&state);
    if state.fault == Fault::DiscoveryUnavailable {
        return (StatusCode::SERVICE_UNAVAILABLE, "upstream connect error").into_response();
    }
    let base = &state.base;
    let mut document = json!({
        "issuer": base,
        "authorization_endpoint": format!("{base}/oauth2/auth"),
        "device_authorization_endpoint": format!("{base}{DEVICE_PATH}"),
        "token_endpoint": format!("{base}{TOKEN_PATH}"),
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "grant_types_supported": ["authorization_code", "refresh_token", DEVICE_GRANT],
        "scopes_supported": ["openid", "profile", "email", "offline_access", "grok-cli:access", "api:access"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
        "id_token_signing_alg_values_supported": ["none", "RS256"],
    });
    for (member, value) in &state.discovery_overrides {
        match value {
            Some(value) => document[member.as_str()] = value.clone(),
            None => {
                document.as_object_mut().expect("an object").remove(member);
            }
        }
    }
    Json(document).into_response()
}

async fn device_authorization(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !oauth::content_type_is(&headers, "application/x-www-form-urlencoded") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Unsupported content type");
    }
    let form = Params::form(&body);
    let mut state = lock(&state);
    if state.fault == Fault::DeviceServerError {
        return oauth::html_server_error();
    }
    if form.get("client_id") != CLIENT_ID {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unknown client_id");
    }
    let scope = form.get("scope").to_owned();
    if !scope.split(' ').any(|s| s == "openid") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", "scope must include openid");
    }
    let device_code = state.next_id("device-code");
    let user_code = format!("XAI-{:04}", state.serial);
    let lifetime = state.expires_in.unwrap_or(30 * 60);
    state.devices.insert(
        device_code.clone(),
        DeviceCode {
            user_code: user_code.clone(),
            scope,
            expires_at: Instant::now() + Duration::from_secs(lifetime),
            decision: Decision::Pending,
        },
    );
    let verification_uri = format!("{}{VERIFY_PATH}", state.base);
    let mut answer = json!({
        "device_code": device_code,
        "user_code": user_code,
        "verification_uri": verification_uri,
        "verification_uri_complete": format!("{verification_uri}?user_code={user_code}"),
        "interval": state.interval,
    });
    if let Some(expires_in) = state.expires_in {
        answer["expires_in"] = expires_in.into();
    }
    Json(answer).into_response()
}

async fn token(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !oauth::content_type_is(&headers, "application/x-www-form-urlencoded") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Unsupported content type");
    }
    let form = Params::form(&body);
    let mut state = lock(&state);
    match form.get("grant_type") {
        "refresh_token" => state.refresh_calls += 1,
        DEVICE_GRANT => state.device_polls += 1,
        _ => {}
    }
    match state.fault {
        Fault::TokenServerError => return oauth::html_server_error(),
        Fault::MalformedTokenJson => return oauth::truncated_token_answer("mock-xai-at-trunc"),
        Fault::RateLimit { retry_after } => return oauth::rate_limited("Too many requests", retry_after),
        _ => {}
    }
    // A public client: it authenticates with its id alone.
    if form.get("client_id") != CLIENT_ID {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unknown client_id");
    }
    match form.get("grant_type") {
        DEVICE_GRANT => device_grant(&mut state, form.get("device_code")),
        "refresh_token" => {
            if state.fault == Fault::RevokeRefreshTokens {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Refresh token has been revoked");
            }
            match state.tokens.rotate(form.get("refresh_token")) {
                Rotation::Rotated => state.token_response("openid profile email offline_access"),
                Rotation::Spent => {
                    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Refresh token has already been used")
                }
                Rotation::Unknown => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid refresh token"),
            }
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Unsupported grant_type"),
    }
}

/// RFC 8628 §3.5: every answer but the grant is `400 {"error": ...}`.
fn device_grant(state: &mut XaiState, device_code: &str) -> Response {
    let pending = |error: &str, description: &str| oauth_error(StatusCode::BAD_REQUEST, error, description);
    let Some(device) = state.devices.get(device_code) else {
        return pending("invalid_grant", "Unknown device code");
    };
    if device.decision == Decision::Redeemed {
        return pending("invalid_grant", "Device code has already been used");
    }
    if let Some(answer) = state.poll_script.pop_front() {
        return match answer {
            PollAnswer::Pending => pending("authorization_pending", "The user has not yet confirmed the code"),
            PollAnswer::SlowDown => pending("slow_down", "Polling too frequently"),
            PollAnswer::Expired => pending("expired_token", "The device code has expired"),
            PollAnswer::Denied => pending("access_denied", "The user denied the request"),
            PollAnswer::Error(code) => pending(&code, "Scripted error"),
        };
    }
    if Instant::now() >= device.expires_at {
        return pending("expired_token", "The device code has expired");
    }
    match device.decision {
        Decision::Pending => pending("authorization_pending", "The user has not yet confirmed the code"),
        Decision::Denied => pending("access_denied", "The user denied the request"),
        Decision::Redeemed => unreachable!("handled above"),
        Decision::Approved => {
            let scope = device.scope.clone();
            state.devices.get_mut(device_code).expect("looked up above").decision = Decision::Redeemed;
            state.token_response(&scope)
        }
    }
}

/// xAI's answer to a Bearer it does not know (HTTP 400, with the key masked).
fn incorrect_key(token: &str) -> Response {
    let chars: Vec<char> = token.chars().collect();
    let masked = if chars.len() > 4 {
        format!("{}***{}", chars[..2].iter().collect::<String>(), chars[chars.len() - 2..].iter().collect::<String>())
    } else {
        "***".to_owned()
    };
    let message = format!("Incorrect API key provided: {masked}. You can obtain an API key from https://console.x.ai.");
    xai_error(ResponsesFault::status(400, &message))
}

fn xai_error(fault: ResponsesFault) -> Response {
    let status = StatusCode::from_u16(fault.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], fault.body).into_response();
    if let Some(seconds) = fault.retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, seconds.into());
    }
    response
}

/// Which Responses API a request reached.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Host {
    CliProxy,
    Public,
}

async fn cli_proxy_responses(state: Shared, headers: HeaderMap, body: Bytes) -> Response {
    responses(state, Host::CliProxy, headers, body).await
}

async fn public_responses(state: Shared, headers: HeaderMap, body: Bytes) -> Response {
    responses(state, Host::Public, headers, body).await
}

async fn responses(State(state): Shared, host: Host, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = lock(&state);
    if let Some(fault) = state.responses_faults.pop_front() {
        return xai_error(fault);
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned();
    let oauth = state.tokens.bearer_ok(&headers);
    // The CLI proxy serves Grok CLI logins only; the public API takes keys and tokens alike.
    let key = host == Host::Public && state.api_keys.contains(&bearer);
    if !oauth && !key {
        return incorrect_key(&bearer);
    }
    if host == Host::CliProxy
        && let Some(problem) = grok_cli_header_problem(&headers)
    {
        return xai_error(ResponsesFault::status(403, &problem));
    }
    let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&body) else {
        return xai_error(ResponsesFault::status(400, "Failed to deserialize the JSON body into the target type"));
    };
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return xai_error(ResponsesFault::status(400, "model: missing field `model`"));
    };
    if let Some(problem) = reasoning_problem(model, request.get("reasoning")) {
        return xai_error(ResponsesFault::status(400, &problem));
    }
    if request.get("stream").and_then(Value::as_bool) != Some(true) {
        let body = fixtures::read(&state.json_fixture);
        return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    }
    let mut events: Vec<Result<Bytes, std::io::Error>> =
        sse_events(Api::OpenAiResponses, &state.stream_fixture).into_iter().map(|e| Ok(Bytes::from(e))).collect();
    if let Some(keep) = state.drop_streams_after {
        events.truncate(keep);
        // An error item makes the server abort the connection mid-body.
        events.push(Err(std::io::Error::other("stream cut by the mock")));
    }
    let headers = [(header::CONTENT_TYPE, "text/event-stream; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")];
    // One event per write: yielding before each lets the server flush what came before, so a
    // cut stream delivers its first events (and the headers) before the connection drops.
    let events = futures::stream::iter(events).then(|event| async {
        tokio::task::yield_now().await;
        event
    });
    (StatusCode::OK, headers, Body::from_stream(events)).into_response()
}

/// Why the CLI proxy refuses a request carrying an OAuth token, if it does.
fn grok_cli_header_problem(headers: &HeaderMap) -> Option<String> {
    GROK_CLI_HEADERS.iter().find_map(|(name, wanted)| {
        let value = headers.get(*name).and_then(|v| v.to_str().ok()).map(str::trim).unwrap_or_default();
        let ok = match wanted {
            Some(wanted) => value == *wanted,
            None => !value.is_empty(),
        };
        (!ok).then(|| format!("Grok CLI token used without a valid {name} header"))
    })
}

/// Why xAI refuses the request's `reasoning` for `model`, if it does.
fn reasoning_problem(model: &str, reasoning: Option<&Value>) -> Option<String> {
    let reasoning = reasoning.filter(|r| !r.is_null())?;
    if NON_REASONING_MODELS.contains(&model) {
        return Some(format!("Model {model} does not support parameter reasoning."));
    }
    let effort = reasoning.get("effort").and_then(Value::as_str)?;
    if NO_EFFORT_MODELS.contains(&model) {
        return Some(format!("Model {model} does not support parameter reasoningEffort."));
    }
    if model.starts_with("grok-3-mini") && !matches!(effort, "low" | "high") {
        return Some(format!("reasoning.effort {effort:?} is not supported by {model}; use low or high."));
    }
    None
}
