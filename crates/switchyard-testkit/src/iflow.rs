//! Mock of iFlow's servers on one loopback port: the `iflow.cn` OAuth pages and endpoints
//! (authorize, token, getUserInfo), the `platform.iflow.cn` API-key endpoint behind the browser
//! cookie, and the `apis.iflow.cn` chat API that checks iFlow's request signature.
//!
//! The rules the real servers apply and the mock copies: the authorize page takes `redirect`
//! (not `redirect_uri`) and answers with a redirect carrying `code` and `state`; the token
//! endpoint wants a form plus HTTP Basic client credentials, codes work once and refresh tokens
//! rotate; getUserInfo takes the access token in the query and answers
//! `{"success", "code", "message", "data"}` with HTTP 200 even when it refuses; the platform
//! endpoint works only with a live `BXAuth` cookie, gzips its answers, and `POST {"name"}`
//! issues a new API key (the old one stops working); the chat API accepts only live API keys
//! with a valid `x-iflow-signature` and, in streams, rejects an empty `tools` list.
//!
//! Where the exact wording of a real refusal is not recorded, the mock's texts are illustrative;
//! the shapes (status codes, envelopes, field names and casing) are the real ones.

mod chat;
mod platform;

pub use chat::expected_signature;

use std::collections::{HashMap, HashSet, VecDeque};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

pub use crate::oauth::IssuedTokens;
use crate::oauth::{self, Codes, LOOPBACK_HOSTS, Params, Rotation, Tokens, consent_denied, found, oauth_error};
use crate::upstream::Api;
use crate::{MockServer, serve};

/// The iFlow CLI's public OAuth client.
pub const CLIENT_ID: &str = "10009311001";
pub const CLIENT_SECRET: &str = "4Z3YjXycVsQvyGF1etiNlIBB4RsqSDtW";
pub const AUTHORIZE_PATH: &str = "/oauth";
pub const SUCCESS_PAGE_PATH: &str = "/oauth/success";
pub const ERROR_PAGE_PATH: &str = "/oauth/error";
pub const TOKEN_PATH: &str = "/oauth/token";
pub const USER_INFO_PATH: &str = "/api/oauth/getUserInfo";
pub const API_KEY_PATH: &str = "/api/openapi/apikey";
/// The chat API's base (`https://apis.iflow.cn/v1`).
pub const API_PREFIX: &str = "/v1";
pub const CHAT_PATH: &str = "/v1/chat/completions";
/// The user agent the chat API's signature is computed over (the iFlow CLI's).
pub const USER_AGENT: &str = "iFlow-Cli";
/// Lifetime of issued access tokens. The real one is not recorded; a week keeps fresh tokens
/// clear of the 24 h refresh lead.
pub const EXPIRES_IN: u64 = 7 * 24 * 60 * 60;
/// Platform origin the API-key endpoint demands on `POST`, as a CSRF guard does.
pub const PLATFORM_ORIGIN: &str = "https://platform.iflow.cn";
/// How far a signed request's `x-iflow-timestamp` may be from the mock's clock.
pub const SIGNATURE_WINDOW_MS: i64 = 5 * 60 * 1000;

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
    /// Refresh grants get `400 invalid_grant`, echoing the rejected token in the description.
    RevokeRefreshTokens,
    /// Every token request gets `429` with this `Retry-After` (seconds).
    RateLimit { retry_after: u64 },
    /// getUserInfo answers success with an empty `apiKey` (an account without API access).
    EmptyApiKey,
    /// getUserInfo answers `500` with an HTML page.
    UserInfoServerError,
    /// The platform API-key endpoint answers `502` with an HTML page.
    PlatformServerError,
}

/// The account behind every OAuth login; `None` leaves the field `null` in getUserInfo.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl Default for Account {
    fn default() -> Self {
        Self { email: Some("iflow-user@example.com".into()), phone: Some("13800138000".into()) }
    }
}

/// One account of the platform site, reached with its `BXAuth` cookie.
#[derive(Clone, Debug)]
struct PlatformAccount {
    /// The account name the platform shows (a masked phone number or an e-mail address).
    name: String,
    api_key: String,
    /// `YYYY-MM-DD HH:MM`.
    expire_time: String,
    /// Logged out: the cookie no longer works.
    dead: bool,
}

/// The running mock (its [`MockServer`] too). Dropping it stops the server.
pub struct MockIflow {
    server: MockServer,
    state: Arc<Mutex<IflowState>>,
}

struct IflowState {
    fault: Fault,
    account: Account,
    /// code → the `redirect` it was issued for.
    codes: Codes<String>,
    /// Refresh tokens, rotated on use.
    refresh: Tokens,
    /// Access tokens getUserInfo accepts.
    access: HashSet<String>,
    /// The OAuth account's API key, issued on its first getUserInfo.
    oauth_api_key: Option<String>,
    /// `BXAuth` value → platform account.
    cookies: HashMap<String, PlatformAccount>,
    /// API keys the chat API accepts.
    live_keys: HashSet<String>,
    /// How long a key issued by the platform lives.
    key_lifetime: chrono::Duration,
    /// One-shot statuses for the next chat requests.
    chat_faults: VecDeque<u16>,
    chat_json_fixture: String,
    chat_stream_fixture: String,
    serial: u64,
    refresh_calls: usize,
}

impl Default for IflowState {
    fn default() -> Self {
        let (json_fixture, stream_fixture) = Api::OpenAiChat.default_fixtures();
        IflowState {
            fault: Fault::None,
            account: Account::default(),
            codes: Codes::default(),
            refresh: Tokens::default(),
            access: HashSet::new(),
            oauth_api_key: None,
            cookies: HashMap::new(),
            live_keys: HashSet::new(),
            key_lifetime: chrono::Duration::days(30),
            chat_faults: VecDeque::new(),
            chat_json_fixture: json_fixture.to_owned(),
            chat_stream_fixture: stream_fixture.to_owned(),
            serial: 0,
            refresh_calls: 0,
        }
    }
}

impl Deref for MockIflow {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

type Shared = State<Arc<Mutex<IflowState>>>;

impl MockIflow {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(IflowState::default()));
        let router = Router::new()
            .route(AUTHORIZE_PATH, get(authorize))
            .route(SUCCESS_PAGE_PATH, get(|| async { Html("<html><body>登录成功 / Login successful</body></html>") }))
            .route(ERROR_PAGE_PATH, get(|| async { Html("<html><body>登录失败 / Login failed</body></html>") }))
            .route(TOKEN_PATH, post(token))
            .route(USER_INFO_PATH, get(user_info))
            .route(API_KEY_PATH, get(platform::read_key).post(platform::renew_key))
            .route(CHAT_PATH, post(chat::completions))
            .with_state(state.clone());
        Self { server: serve(router).await, state }
    }

    /// `upstream-urls` config pointing every iFlow endpoint here.
    pub fn upstream_urls_yaml(&self) -> String {
        format!(
            "upstream-urls:\n  iflow:\n    authorize: {}\n    token: {}\n    user-info: {}\n    api: {}\n    \
             platform-api-key: {}\n",
            self.url(AUTHORIZE_PATH),
            self.url(TOKEN_PATH),
            self.url(USER_INFO_PATH),
            self.url(API_PREFIX),
            self.url(API_KEY_PATH),
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

    /// A valid token pair without a login, for tests that start from a saved credential.
    pub fn issue_tokens(&self) -> IssuedTokens {
        self.lock().issue()
    }

    /// The OAuth account's API key (what getUserInfo hands out).
    pub fn oauth_api_key(&self) -> String {
        self.lock().oauth_api_key()
    }

    /// A platform account named `name`; returns its `BXAuth` cookie value. Its key expires
    /// after the current key lifetime.
    pub fn add_cookie_account(&self, name: &str) -> String {
        let mut state = self.lock();
        let bxauth = format!("{}-{}", state.next_id("bxauth"), "Zm9yLXRlc3RzLW9ubHktMDEyMzQ1Njc4OQ");
        let api_key = state.new_api_key();
        let expire_time = state.expire_time();
        state.cookies.insert(bxauth.clone(), PlatformAccount { name: name.into(), api_key, expire_time, dead: false });
        bxauth
    }

    /// Logs the cookie's session out: the platform refuses it from now on.
    pub fn kill_cookie(&self, bxauth: &str) {
        if let Some(account) = self.lock().cookies.get_mut(bxauth) {
            account.dead = true;
        }
    }

    /// The API key the platform currently holds for the cookie's account.
    pub fn cookie_api_key(&self, bxauth: &str) -> Option<String> {
        self.lock().cookies.get(bxauth).map(|a| a.api_key.clone())
    }

    /// The `expireTime` the platform currently reports for the cookie's account.
    pub fn cookie_expire_time(&self, bxauth: &str) -> Option<String> {
        self.lock().cookies.get(bxauth).map(|a| a.expire_time.clone())
    }

    /// Lifetime of keys issued from now on (also by [`MockIflow::add_cookie_account`]).
    pub fn set_key_lifetime(&self, lifetime: chrono::Duration) {
        self.lock().key_lifetime = lifetime;
    }

    /// Whether the chat API accepts `key` now.
    pub fn key_is_live(&self, key: &str) -> bool {
        self.lock().live_keys.contains(key)
    }

    /// The next chat request gets this status (in the OpenAI error shape), whatever it is.
    pub fn push_chat_fault(&self, status: u16) {
        self.lock().chat_faults.push_back(status);
    }

    /// Replays `file` (relative to the fixtures dir) for chat: a `.json` file becomes the
    /// non-stream answer, a `.chunks.txt` file the stream.
    pub fn replay_chat(&self, file: &str) {
        let mut state = self.lock();
        if file.ends_with(".chunks.txt") {
            state.chat_stream_fixture = file.to_owned();
        } else {
            state.chat_json_fixture = file.to_owned();
        }
    }

    fn lock(&self) -> MutexGuard<'_, IflowState> {
        self.state.lock().expect("mock state lock")
    }
}

impl IflowState {
    fn next_id(&mut self, kind: &str) -> String {
        self.serial += 1;
        format!("mock-iflow-{kind}-{:04}", self.serial)
    }

    /// A key shaped like iFlow's (`sk-` and 32 hex digits), unique per call.
    fn new_api_key(&mut self) -> String {
        self.serial += 1;
        let key = format!("sk-{:032x}", 0x1f10_u128 << 96 | u128::from(self.serial));
        self.live_keys.insert(key.clone());
        key
    }

    fn expire_time(&self) -> String {
        (chrono::Utc::now() + self.key_lifetime).format("%Y-%m-%d %H:%M").to_string()
    }

    fn oauth_api_key(&mut self) -> String {
        if let Some(key) = &self.oauth_api_key {
            return key.clone();
        }
        let key = self.new_api_key();
        self.oauth_api_key = Some(key.clone());
        key
    }

    fn issue(&mut self) -> IssuedTokens {
        let tokens = IssuedTokens { access_token: self.next_id("at"), refresh_token: self.next_id("rt") };
        self.access.insert(tokens.access_token.clone());
        self.refresh.add_refresh(&tokens.refresh_token, CLIENT_ID);
        tokens
    }

    fn token_response(&mut self) -> Response {
        let tokens = self.issue();
        Json(json!({
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_in": EXPIRES_IN,
            "token_type": "bearer",
            "scope": "read",
        }))
        .into_response()
    }
}

fn html_error(status: StatusCode, message: &str) -> Response {
    (status, Html(format!("<html><body><h1>{status}</h1><p>{message}</p></body></html>"))).into_response()
}

/// The authorize page, played as a user who signs in with their phone and consents.
async fn authorize(State(state): Shared, Query(query): Query<HashMap<String, String>>) -> Response {
    let params = Params::new(query);
    if params.get("client_id") != CLIENT_ID {
        return html_error(StatusCode::BAD_REQUEST, "unknown client_id");
    }
    // The page reads `redirect` only; a client sending `redirect_uri` has nowhere to return to.
    let Some(mut location) = oauth::loopback_redirect(params.get("redirect"), LOOPBACK_HOSTS) else {
        return html_error(StatusCode::BAD_REQUEST, "redirect is missing or not registered");
    };
    if params.get("state").is_empty() {
        return html_error(StatusCode::BAD_REQUEST, "state is required");
    }
    let mut state = state.lock().expect("mock state lock");
    if state.fault == Fault::DenyConsent {
        return consent_denied(location, None, params.get("state"));
    }
    let code = state.next_id("code");
    state.codes.insert(code.clone(), params.get("redirect").to_owned());
    location.query_pairs_mut().append_pair("code", &code).append_pair("state", params.get("state"));
    found(location.as_str())
}

/// Whether the request carries the client's credentials as HTTP Basic.
fn basic_client_ok(headers: &HeaderMap) -> bool {
    let expected = format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) == Some(expected.as_str())
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
        Fault::MalformedTokenJson => return oauth::truncated_token_answer("mock-iflow-at-trunc"),
        Fault::RateLimit { retry_after } => return oauth::rate_limited("Too many requests", retry_after),
        _ => {}
    }
    let form_client_ok = field("client_id") == CLIENT_ID && field("client_secret") == CLIENT_SECRET;
    if !basic_client_ok(&headers) || !form_client_ok {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Bad client credentials");
    }
    match field("grant_type") {
        "authorization_code" => match state.codes.redeem(field("code")) {
            Some(redirect) if redirect == field("redirect_uri") => state.token_response(),
            Some(_) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Redirect URI mismatch."),
            None => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid authorization code"),
        },
        "refresh_token" => {
            // The server echoes the rejected token in its description.
            let rejected = format!("Invalid refresh token: {}", field("refresh_token"));
            if state.fault == Fault::RevokeRefreshTokens {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &rejected);
            }
            match state.refresh.rotate(field("refresh_token")) {
                Rotation::Rotated => state.token_response(),
                Rotation::Spent | Rotation::Unknown => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &rejected),
            }
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Unsupported grant type"),
    }
}

/// iFlow's envelope: HTTP 200 whether or not the call worked.
pub(crate) fn envelope(success: bool, code: &str, message: &str, data: Value) -> Response {
    Json(json!({"success": success, "code": code, "message": message, "data": data, "extra": null})).into_response()
}

async fn user_info(State(state): Shared, Query(query): Query<HashMap<String, String>>) -> Response {
    let mut state = state.lock().expect("mock state lock");
    if state.fault == Fault::UserInfoServerError {
        return oauth::html_server_error();
    }
    let token = query.get("accessToken").map(String::as_str).unwrap_or_default();
    if !state.access.contains(token) {
        return envelope(false, "401", "accessToken 无效 (invalid accessToken)", Value::Null);
    }
    let api_key = if state.fault == Fault::EmptyApiKey { String::new() } else { state.oauth_api_key() };
    let account = state.account.clone();
    let data = json!({
        "userId": "mock-user-0001",
        "userName": "iFlow 用户",
        "avatar": "",
        "email": account.email,
        "phone": account.phone,
        "apiKey": api_key,
    });
    envelope(true, "200", "success", data)
}
