//! Mock of Anthropic's OAuth servers on one loopback port: the `claude.ai` authorize page, the
//! `platform.claude.com` token endpoint and the `api.anthropic.com` profile endpoint, with the
//! real servers' rules (JSON-only token endpoint, PKCE, single-use codes, rotating refresh
//! tokens) and quirks (`<code>#<state>` codes), plus fault knobs.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{MockServer, RecordedRequest, serve};

/// Claude Code's public OAuth client, the only one this mock knows.
pub const CLIENT_ID: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";
pub const AUTHORIZE_PATH: &str = "/oauth/authorize";
pub const TOKEN_PATH: &str = "/v1/oauth/token";
pub const PROFILE_PATH: &str = "/api/oauth/profile";
/// Redirect path registered for the client; any loopback host and port is accepted (RFC 8252).
const CALLBACK_PATH: &str = "/callback";
/// Lifetime of issued access tokens, as the real server (8 h).
pub const EXPIRES_IN: u64 = 8 * 60 * 60;

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
    /// Refresh grants get `400 invalid_grant` ("Refresh token revoked").
    RevokeRefreshTokens,
    /// Every token request gets `429` with this `Retry-After` (seconds).
    RateLimit { retry_after: u64 },
    /// The profile endpoint answers `500`.
    ProfileServerError,
}

/// The account behind every login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub email: String,
    pub uuid: String,
    pub organization_uuid: String,
    pub organization_name: String,
}

impl Default for Account {
    fn default() -> Self {
        Self {
            email: "claude-user@example.com".into(),
            uuid: "mock-account-0001".into(),
            organization_uuid: "mock-org-0001".into(),
            organization_name: "Mock Org".into(),
        }
    }
}

/// A token pair issued by the mock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
}

/// The running mock. Dropping it stops the server.
pub struct MockClaudeAuth {
    server: MockServer,
    state: Arc<Mutex<AuthState>>,
}

#[derive(Default)]
struct AuthState {
    fault: Fault,
    code_carries_state: bool,
    account: Account,
    profile_email: Option<String>,
    pending: HashMap<String, PendingCode>,
    access_tokens: HashSet<String>,
    refresh_tokens: HashSet<String>,
    serial: u64,
    refresh_calls: usize,
}

/// What the authorize step bound a code to.
struct PendingCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
    state: String,
    scope: String,
}

impl MockClaudeAuth {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(AuthState::default()));
        let router = Router::new()
            .route(AUTHORIZE_PATH, get(authorize))
            .route(TOKEN_PATH, post(token))
            .route(PROFILE_PATH, get(profile))
            .with_state(state.clone());
        Self { server: serve(router).await, state }
    }

    pub fn base(&self) -> &str {
        &self.server.base
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Requests received on `path`, oldest first.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.server.requests_to(path)
    }

    /// `upstream-urls` config pointing the Claude provider here.
    pub fn upstream_urls_yaml(&self) -> String {
        format!(
            "upstream-urls:\n  claude:\n    authorize: {}\n    token: {}\n    profile: {}\n",
            self.url(AUTHORIZE_PATH),
            self.url(TOKEN_PATH),
            self.url(PROFILE_PATH)
        )
    }

    pub fn set_fault(&self, fault: Fault) {
        self.lock().fault = fault;
    }

    /// Hands out codes as `<code>#<state>`, as Claude's copy-paste page does.
    pub fn set_code_carries_state(&self, on: bool) {
        self.lock().code_carries_state = on;
    }

    pub fn set_account(&self, account: Account) {
        self.lock().account = account;
    }

    /// Makes the profile report a different email than the token response (an account whose
    /// email changed); `None` reports the account's email.
    pub fn set_profile_email(&self, email: Option<&str>) {
        self.lock().profile_email = email.map(str::to_owned);
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
        format!("mock-claude-{kind}-{:04}", self.serial)
    }

    fn issue(&mut self) -> IssuedTokens {
        let tokens = IssuedTokens { access_token: self.next_id("at"), refresh_token: self.next_id("rt") };
        self.access_tokens.insert(tokens.access_token.clone());
        self.refresh_tokens.insert(tokens.refresh_token.clone());
        tokens
    }

    fn token_response(&mut self, scope: &str) -> Response {
        let tokens = self.issue();
        let account = &self.account;
        Json(json!({
            "token_type": "Bearer",
            "access_token": tokens.access_token,
            "expires_in": EXPIRES_IN,
            "refresh_token": tokens.refresh_token,
            "scope": scope,
            "organization": {"uuid": account.organization_uuid, "name": account.organization_name},
            "account": {"uuid": account.uuid, "email_address": account.email},
        }))
        .into_response()
    }
}

type Shared = State<Arc<Mutex<AuthState>>>;

async fn authorize(State(state): Shared, Query(query): Query<HashMap<String, String>>) -> Response {
    let param = |name: &str| query.get(name).map(String::as_str).unwrap_or_default();
    if param("client_id") != CLIENT_ID {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "Unknown client_id");
    }
    let redirect_uri = param("redirect_uri");
    let Some(mut location) = registered_redirect(redirect_uri) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "redirect_uri is not registered");
    };
    let problem = if param("response_type") != "code" {
        Some("response_type must be code")
    } else if param("code_challenge").is_empty() {
        Some("code_challenge is required")
    } else if param("code_challenge_method") != "S256" {
        Some("code_challenge_method must be S256")
    } else if param("state").is_empty() {
        Some("state is required")
    } else if param("scope").is_empty() {
        Some("scope is required")
    } else {
        None
    };
    if let Some(problem) = problem {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", problem);
    }

    let mut state = state.lock().expect("mock state lock");
    if state.fault == Fault::DenyConsent {
        location
            .query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "The user denied access")
            .append_pair("state", param("state"));
        return found(location.as_str());
    }
    let code = state.next_id("code");
    let handed_out = if state.code_carries_state { format!("{code}#{}", param("state")) } else { code.clone() };
    state.pending.insert(
        code,
        PendingCode {
            client_id: param("client_id").into(),
            redirect_uri: redirect_uri.into(),
            code_challenge: param("code_challenge").into(),
            state: param("state").into(),
            scope: param("scope").into(),
        },
    );
    location.query_pairs_mut().append_pair("code", &handed_out).append_pair("state", param("state"));
    found(location.as_str())
}

async fn token(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/json"));
    let request = if is_json { serde_json::from_slice::<Value>(&body).ok() } else { None };
    let Some(request) = request.filter(Value::is_object) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Request body must be JSON");
    };
    let field = |name: &str| request.get(name).and_then(Value::as_str).unwrap_or_default();

    let mut state = state.lock().expect("mock state lock");
    if field("grant_type") == "refresh_token" {
        state.refresh_calls += 1;
    }
    match state.fault {
        Fault::TokenServerError => {
            return (StatusCode::INTERNAL_SERVER_ERROR, "<html><body>Internal Server Error</body></html>")
                .into_response();
        }
        Fault::MalformedTokenJson => {
            return (StatusCode::OK, r#"{"access_token": "mock-claude-at-trunc"#).into_response();
        }
        Fault::RateLimit { retry_after } => {
            let mut response = oauth_error(StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded", "Too many requests");
            response.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
            return response;
        }
        _ => {}
    }
    if field("client_id") != CLIENT_ID {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unknown client_id");
    }

    match field("grant_type") {
        "authorization_code" => {
            // A code is spent by its first use, even a failed one.
            let Some(pending) = state.pending.remove(field("code")) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid or already used code");
            };
            let problem = if pending.client_id != field("client_id") {
                Some("Code was issued to another client")
            } else if pending.redirect_uri != field("redirect_uri") {
                Some("redirect_uri does not match the authorization request")
            } else if pending.state != field("state") {
                Some("state does not match the authorization request")
            } else if s256(field("code_verifier")) != pending.code_challenge {
                Some("Invalid code verifier")
            } else {
                None
            };
            match problem {
                Some(problem) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", problem),
                None => state.token_response(&pending.scope),
            }
        }
        "refresh_token" => {
            if state.fault == Fault::RevokeRefreshTokens {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Refresh token revoked");
            }
            // Rotation: a refresh token works once.
            if !state.refresh_tokens.remove(field("refresh_token")) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Refresh token not found or invalid");
            }
            let scope = field("scope").to_owned();
            state.token_response(&scope)
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Unsupported grant_type"),
    }
}

async fn profile(State(state): Shared, headers: HeaderMap) -> Response {
    let state = state.lock().expect("mock state lock");
    if state.fault == Fault::ProfileServerError {
        return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
    }
    let bearer =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
    if !bearer.is_some_and(|token| state.access_tokens.contains(token)) {
        let body =
            json!({"type": "error", "error": {"type": "authentication_error", "message": "Invalid bearer token"}});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let account = &state.account;
    Json(json!({
        "account": {
            "uuid": account.uuid,
            "email": state.profile_email.as_deref().unwrap_or(&account.email),
            "full_name": "Mock User",
            "display_name": "Mock",
            "has_claude_max": true,
            "has_claude_pro": false,
        },
        "organization": {
            "uuid": account.organization_uuid,
            "name": account.organization_name,
            "organization_type": "claude_max",
            "billing_type": "stripe_subscription",
            "rate_limit_tier": "default_claude_max_20x",
        },
    }))
    .into_response()
}

/// The redirect URI as a URL when it is the registered loopback callback.
fn registered_redirect(redirect_uri: &str) -> Option<url::Url> {
    let url = url::Url::parse(redirect_uri).ok()?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1"));
    (url.scheme() == "http" && loopback && url.path() == CALLBACK_PATH).then_some(url)
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()).as_slice())
}

fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({"error": error, "error_description": description}))).into_response()
}
