//! Mock of OpenAI's ChatGPT-account OAuth server (`auth.openai.com`) on a loopback port, with
//! the real server's rules (form-only token endpoint, PKCE, single-use codes, rotating refresh
//! tokens, `refresh_token_reused` for a spent one) and an unsigned id_token carrying the
//! ChatGPT account claims, plus fault knobs.

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
use crate::oauth::{
    self, Codes, LOOPBACK_HOSTS, Params, PkceGrant, Rotation, Tokens, consent_denied, found, oauth_error,
};
use crate::{MockServer, serve};

/// The Codex CLI's public OAuth client, the only one this mock knows.
pub const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
pub const TOKEN_PATH: &str = "/oauth/token";
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

#[derive(Default)]
struct AuthState {
    fault: Fault,
    account: Account,
    codes: Codes<PkceGrant>,
    /// Issued tokens; reusing a rotated-out refresh token is reported as such.
    tokens: Tokens,
    serial: u64,
    refresh_calls: usize,
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
            .with_state(state.clone());
        Self { server: serve(router).await, state }
    }

    /// `upstream-urls` config pointing the Codex provider here.
    pub fn upstream_urls_yaml(&self) -> String {
        format!(
            "upstream-urls:\n  codex:\n    authorize: {}\n    token: {}\n",
            self.url(AUTHORIZE_PATH),
            self.url(TOKEN_PATH)
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

/// The redirect URI as a URL when it is the registered loopback callback.
fn registered_redirect(redirect_uri: &str) -> Option<url::Url> {
    oauth::loopback_redirect(redirect_uri, LOOPBACK_HOSTS).filter(|url| url.path() == CALLBACK_PATH)
}
