//! Mock of OpenAI's ChatGPT-account OAuth server (`auth.openai.com`) on a loopback port, with
//! the real server's rules (form-only token endpoint, PKCE, single-use codes, rotating refresh
//! tokens, `refresh_token_reused` for a spent one) and an unsigned id_token carrying the
//! ChatGPT account claims, plus fault knobs.
//!
//! It also runs Codex's device login ([`DEVICE_USERCODE_PATH`], [`DEVICE_TOKEN_PATH`]): JSON
//! bodies only; the token side answers 403 (or 404, [`MockOpenAiAuth::set_device_pending_status`])
//! until the user code is approved, then once an authorization code with the PKCE verifier the
//! server generated for it. That code is bound to [`DEVICE_REDIRECT_URI`] and the verifier, which
//! the token endpoint checks as for any PKCE code. Denied and expired device codes answer 400
//! with OpenAI's error object; the real codes for those two are not recorded, so the mock uses
//! RFC 8628's names (`access_denied`, `expired_token`).

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

pub use crate::oauth::IssuedTokens;
use sha2::Digest;

use crate::oauth::{
    self, Codes, LOOPBACK_HOSTS, Params, PkceGrant, Rotation, Tokens, consent_denied, found, oauth_error,
};
use crate::{MockServer, serve};

/// The Codex CLI's public OAuth client, the only one this mock knows.
pub const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const DEVICE_USERCODE_PATH: &str = "/api/accounts/deviceauth/usercode";
pub const DEVICE_TOKEN_PATH: &str = "/api/accounts/deviceauth/token";
/// The redirect URI device-login codes are issued for.
pub const DEVICE_REDIRECT_URI: &str = "https://auth.openai.com/deviceauth/callback";
/// Redirect path registered for the client; any loopback host and port is accepted (RFC 8252).
const CALLBACK_PATH: &str = "/auth/callback";
/// Lifetime of issued access tokens (10 days, like ChatGPT's).
pub const EXPIRES_IN: u64 = 10 * 24 * 60 * 60;
/// id_token claim object with the ChatGPT account details.
pub const AUTH_CLAIM: &str = "https://api.openai.com/auth";

/// A failure to inject; stays in effect until replaced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// The user declines: the authorize page redirects with `error=access_denied`.
    DenyConsent,
    /// Every token request gets `500` with an HTML page.
    TokenServerError,
    /// Every token request gets `200` with a truncated JSON body.
    MalformedTokenJson,
    /// Token answers carry an id_token that is not a JWT.
    MalformedIdToken,
    /// Refresh grants get `400 invalid_grant`.
    RevokeRefreshTokens,
    /// Every token request gets `429` with this `Retry-After` (seconds).
    RateLimit { retry_after: u64 },
}

/// The ChatGPT account behind every login; `None` leaves the claim out of the id_token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub email: Option<String>,
    pub chatgpt_account_id: Option<String>,
    pub chatgpt_plan_type: Option<String>,
}

impl Default for Account {
    fn default() -> Self {
        Self {
            email: Some("codex-user@example.com".into()),
            chatgpt_account_id: Some("mock-chatgpt-account-0001".into()),
            chatgpt_plan_type: Some("plus".into()),
        }
    }
}

/// The running mock (its [`MockServer`] too). Dropping it stops the server.
pub struct MockOpenAiAuth {
    server: MockServer,
    state: Arc<Mutex<AuthState>>,
}

/// Where one device authorization stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceStatus {
    /// Waiting for the user to enter the code.
    Pending,
    /// The user confirmed; the next poll gets the authorization code.
    Approved,
    /// The user refused.
    Denied,
    /// The code ran out.
    Expired,
    /// The authorization code was handed out; the device authorization is spent.
    Redeemed,
}

/// How the usercode endpoint words its answer (both shapes occur).
#[derive(Clone, Debug, PartialEq)]
pub struct DeviceAnswer {
    /// `user_code`, or the older `usercode`.
    pub user_code_key: &'static str,
    /// `interval` as sent: the real server sends a string (`"5"`).
    pub interval: Value,
    /// How long a device code lives (sent as `expires_at`); past it, polls answer `expired_token`.
    pub lifetime: std::time::Duration,
}

impl Default for DeviceAnswer {
    fn default() -> Self {
        Self {
            user_code_key: "user_code",
            interval: Value::String("5".into()),
            lifetime: std::time::Duration::from_secs(15 * 60),
        }
    }
}

struct DeviceAuth {
    user_code: String,
    status: DeviceStatus,
    expires_at: std::time::Instant,
}

struct AuthState {
    fault: Fault,
    account: Account,
    codes: Codes<PkceGrant>,
    /// Issued tokens; reusing a rotated-out refresh token is reported as such.
    tokens: Tokens,
    serial: u64,
    refresh_calls: usize,
    /// device_auth_id → its authorization.
    devices: HashMap<String, DeviceAuth>,
    device_answer: DeviceAnswer,
    /// What the token side answers while a code is pending: 403 or 404.
    device_pending_status: StatusCode,
}

impl Default for AuthState {
    fn default() -> Self {
        AuthState {
            fault: Fault::None,
            account: Account::default(),
            codes: Codes::default(),
            tokens: Tokens::default(),
            serial: 0,
            refresh_calls: 0,
            devices: HashMap::new(),
            device_answer: DeviceAnswer::default(),
            device_pending_status: StatusCode::FORBIDDEN,
        }
    }
}

impl Deref for MockOpenAiAuth {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

impl MockOpenAiAuth {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(AuthState::default()));
        let router = Router::new()
            .route(AUTHORIZE_PATH, get(authorize))
            .route(TOKEN_PATH, post(token))
            .route(DEVICE_USERCODE_PATH, post(device_usercode))
            .route(DEVICE_TOKEN_PATH, post(device_token))
            .with_state(state.clone());
        Self { server: serve(router).await, state }
    }

    /// `upstream-urls` config pointing the Codex provider here.
    pub fn upstream_urls_yaml(&self) -> String {
        format!(
            "upstream-urls:\n  codex:\n    authorize: {}\n    token: {}\n    device: {}\n    device-token: {}\n",
            self.url(AUTHORIZE_PATH),
            self.url(TOKEN_PATH),
            self.url(DEVICE_USERCODE_PATH),
            self.url(DEVICE_TOKEN_PATH),
        )
    }

    pub fn set_fault(&self, fault: Fault) {
        self.lock().fault = fault;
    }

    pub fn set_account(&self, account: Account) {
        self.lock().account = account;
    }

    /// Refresh-grant requests received, successful or not.
    pub fn refresh_calls(&self) -> usize {
        self.lock().refresh_calls
    }

    /// Issues a valid token pair without a login, for tests that start from a saved credential.
    pub fn issue_tokens(&self) -> IssuedTokens {
        self.lock().issue()
    }

    /// How the usercode endpoint words its answers from now on.
    pub fn set_device_answer(&self, answer: DeviceAnswer) {
        self.lock().device_answer = answer;
    }

    /// What the token side answers while a code is pending (403 by default, or 404).
    pub fn set_device_pending_status(&self, status: u16) {
        self.lock().device_pending_status = StatusCode::from_u16(status).expect("a valid status");
    }

    /// The user enters `user_code` and confirms. False when no such code was issued.
    pub fn approve_device(&self, user_code: &str) -> bool {
        self.set_device_status(user_code, DeviceStatus::Approved)
    }

    /// The user refuses `user_code`.
    pub fn deny_device(&self, user_code: &str) -> bool {
        self.set_device_status(user_code, DeviceStatus::Denied)
    }

    /// `user_code` runs out.
    pub fn expire_device(&self, user_code: &str) -> bool {
        self.set_device_status(user_code, DeviceStatus::Expired)
    }

    /// Where the device authorization of `user_code` stands.
    pub fn device_status(&self, user_code: &str) -> Option<DeviceStatus> {
        self.lock().devices.values().find(|d| d.user_code == user_code).map(|d| d.status)
    }

    fn set_device_status(&self, user_code: &str, status: DeviceStatus) -> bool {
        let mut state = self.lock();
        match state.devices.values_mut().find(|d| d.user_code == user_code) {
            Some(device) => {
                device.status = status;
                true
            }
            None => false,
        }
    }

    fn lock(&self) -> MutexGuard<'_, AuthState> {
        self.state.lock().expect("mock state lock")
    }
}

impl AuthState {
    fn next_id(&mut self, kind: &str) -> String {
        self.serial += 1;
        format!("mock-openai-{kind}-{:04}", self.serial)
    }

    fn issue(&mut self) -> IssuedTokens {
        let tokens = IssuedTokens { access_token: self.next_id("at"), refresh_token: self.next_id("rt") };
        self.tokens.add_pair(&tokens, CLIENT_ID);
        tokens
    }

    fn token_response(&mut self) -> Response {
        let tokens = self.issue();
        let id_token = match self.fault {
            Fault::MalformedIdToken => "mock-id-token-not-a-jwt".to_owned(),
            _ => id_token(&self.account),
        };
        Json(json!({
            "id_token": id_token,
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "token_type": "Bearer",
            "expires_in": EXPIRES_IN,
            "scope": "openid profile email offline_access",
        }))
        .into_response()
    }
}

/// An id_token shaped like OpenAI's (`header.payload.signature`) whose signature is a
/// placeholder: clients read the claims without verifying it.
fn id_token(account: &Account) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let mut auth = Map::new();
    if let Some(id) = &account.chatgpt_account_id {
        auth.insert("chatgpt_account_id".into(), id.as_str().into());
    }
    if let Some(plan) = &account.chatgpt_plan_type {
        auth.insert("chatgpt_plan_type".into(), plan.as_str().into());
    }
    auth.insert("chatgpt_user_id".into(), "mock-user-0001".into());
    auth.insert("user_id".into(), "mock-user-0001".into());
    let mut claims = json!({
        "iss": "https://auth.openai.com",
        "aud": [CLIENT_ID],
        "sub": "mock-subject-0001",
        "iat": now,
        "exp": now + 3600,
        "auth_time": now,
        (AUTH_CLAIM): auth,
    });
    if let Some(email) = &account.email {
        claims["email"] = email.as_str().into();
        claims["email_verified"] = true.into();
    }
    let header = json!({"alg": "RS256", "kid": "mock", "typ": "JWT"});
    let encode = |value: &Value| URL_SAFE_NO_PAD.encode(value.to_string());
    format!("{}.{}.{}", encode(&header), encode(&claims), URL_SAFE_NO_PAD.encode("mock-signature"))
}

type Shared = State<Arc<Mutex<AuthState>>>;

async fn authorize(State(state): Shared, Query(query): Query<HashMap<String, String>>) -> Response {
    let params = Params::new(query);
    if params.get("client_id") != CLIENT_ID {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "Unknown client_id");
    }
    let Some(mut location) = registered_redirect(params.get("redirect_uri")) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "redirect_uri is not registered");
    };
    let problem = oauth::pkce_authorize_problem(&params)
        .or_else(|| (!params.get("scope").split(' ').any(|s| s == "openid")).then_some("scope must include openid"));
    if let Some(problem) = problem {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", problem);
    }

    let mut state = state.lock().expect("mock state lock");
    if state.fault == Fault::DenyConsent {
        return consent_denied(location, Some("The user denied access"), params.get("state"));
    }
    let code = state.next_id("code");
    state.codes.insert(code.clone(), PkceGrant::new(&params, false));
    location.query_pairs_mut().append_pair("code", &code).append_pair("state", params.get("state"));
    found(location.as_str())
}

async fn token(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !oauth::content_type_is(&headers, "application/x-www-form-urlencoded") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Unsupported content type");
    }
    let form = Params::form(&body);
    let field = |name: &str| form.get(name);

    let mut state = state.lock().expect("mock state lock");
    if field("grant_type") == "refresh_token" {
        state.refresh_calls += 1;
    }
    match state.fault {
        Fault::TokenServerError => return oauth::html_server_error(),
        Fault::MalformedTokenJson => return oauth::truncated_token_answer("mock-openai-at-trunc"),
        Fault::RateLimit { retry_after } => return oauth::rate_limited("Too many requests", retry_after),
        _ => {}
    }
    if field("client_id") != CLIENT_ID {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unknown client_id");
    }

    match field("grant_type") {
        "authorization_code" => match state.codes.redeem_pkce(&form) {
            Ok(_) => state.token_response(),
            Err(problem) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", problem),
        },
        "refresh_token" => {
            if state.fault == Fault::RevokeRefreshTokens {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Refresh token revoked");
            }
            match state.tokens.rotate(field("refresh_token")) {
                Rotation::Rotated => state.token_response(),
                // OpenAI's shape for this one: an error object, and 401.
                Rotation::Spent => {
                    let body = json!({"error": {
                        "message": "Your refresh token has already been used to generate a new access token. \
                                    Please try signing in again.",
                        "type": "invalid_request_error",
                        "param": null,
                        "code": "refresh_token_reused",
                    }});
                    (StatusCode::UNAUTHORIZED, Json(body)).into_response()
                }
                Rotation::Unknown => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid refresh token"),
            }
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Unsupported grant_type"),
    }
}

/// An OpenAI error object answer.
fn openai_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": "invalid_request_error", "param": null, "code": code}});
    (status, Json(body)).into_response()
}

/// `POST deviceauth/usercode {"client_id"}` → a device authorization and the code to enter.
async fn device_usercode(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !oauth::content_type_is(&headers, "application/json") {
        return openai_error(StatusCode::BAD_REQUEST, "invalid_request", "Expected a JSON body");
    }
    let Some(params) = Params::json_object(&body) else {
        return openai_error(StatusCode::BAD_REQUEST, "invalid_request", "Expected a JSON object");
    };
    if params.get("client_id") != CLIENT_ID {
        return openai_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unknown client_id");
    }
    let mut state = state.lock().expect("mock state lock");
    let device_auth_id = format!("deviceauth_{}", state.next_id("device"));
    let user_code = format!("MOCK-{:04}", state.serial);
    let answer = state.device_answer.clone();
    let device = DeviceAuth {
        user_code: user_code.clone(),
        status: DeviceStatus::Pending,
        expires_at: std::time::Instant::now() + answer.lifetime,
    };
    state.devices.insert(device_auth_id.clone(), device);
    let lifetime = chrono::Duration::from_std(answer.lifetime).expect("a sane lifetime");
    let expires_at = (chrono::Utc::now() + lifetime).to_rfc3339();
    let mut body = Map::new();
    body.insert("device_auth_id".into(), device_auth_id.into());
    body.insert(answer.user_code_key.into(), user_code.into());
    body.insert("interval".into(), answer.interval);
    body.insert("expires_at".into(), expires_at.into());
    Json(Value::Object(body)).into_response()
}

/// `POST deviceauth/token {"device_auth_id", "user_code"}` → 403/404 while pending, then once
/// `{authorization_code, code_challenge, code_verifier}`.
async fn device_token(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if !oauth::content_type_is(&headers, "application/json") {
        return openai_error(StatusCode::BAD_REQUEST, "invalid_request", "Expected a JSON body");
    }
    let Some(params) = Params::json_object(&body) else {
        return openai_error(StatusCode::BAD_REQUEST, "invalid_request", "Expected a JSON object");
    };
    let mut state = state.lock().expect("mock state lock");
    let pending = state.device_pending_status;
    let Some(device) = state.devices.get_mut(params.get("device_auth_id")) else {
        return openai_error(StatusCode::NOT_FOUND, "deviceauth_not_found", "Unknown device authorization");
    };
    let unconfirmed = matches!(device.status, DeviceStatus::Pending | DeviceStatus::Approved);
    if unconfirmed && std::time::Instant::now() >= device.expires_at {
        device.status = DeviceStatus::Expired;
    }
    if device.user_code != params.get("user_code") {
        return openai_error(StatusCode::BAD_REQUEST, "invalid_request", "user_code does not match");
    }
    let status = device.status;
    match status {
        DeviceStatus::Pending => openai_error(pending, "deviceauth_authorization_pending", "Authorization pending"),
        DeviceStatus::Denied => openai_error(StatusCode::BAD_REQUEST, "access_denied", "The user denied the request"),
        DeviceStatus::Expired => openai_error(StatusCode::BAD_REQUEST, "expired_token", "The device code has expired"),
        DeviceStatus::Redeemed => {
            openai_error(StatusCode::NOT_FOUND, "deviceauth_not_found", "Unknown device authorization")
        }
        DeviceStatus::Approved => {
            let code = state.next_id("device-code");
            let verifier =
                format!("{}-{}", state.next_id("verifier"), "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJ");
            let challenge = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()).as_slice());
            let grant = PkceGrant {
                client_id: CLIENT_ID.into(),
                redirect_uri: DEVICE_REDIRECT_URI.into(),
                code_challenge: challenge.clone(),
                scope: "openid profile email offline_access".into(),
                state: None,
            };
            state.codes.insert(code.clone(), grant);
            if let Some(device) = state.devices.get_mut(params.get("device_auth_id")) {
                device.status = DeviceStatus::Redeemed;
            }
            Json(json!({"authorization_code": code, "code_challenge": challenge, "code_verifier": verifier}))
                .into_response()
        }
    }
}

/// The redirect URI as a URL when it is the registered loopback callback.
fn registered_redirect(redirect_uri: &str) -> Option<url::Url> {
    oauth::loopback_redirect(redirect_uri, LOOPBACK_HOSTS).filter(|url| url.path() == CALLBACK_PATH)
}
