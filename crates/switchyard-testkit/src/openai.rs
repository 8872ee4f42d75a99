//! Mock of OpenAI's ChatGPT-account OAuth server (`auth.openai.com`) on a loopback port, with
//! the real server's rules (form-only token endpoint, PKCE, single-use codes, rotating refresh
//! tokens, `refresh_token_reused` for a spent one) and an unsigned id_token carrying the
//! ChatGPT account claims, plus fault knobs.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::{MockServer, RecordedRequest, serve};

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

/// A token pair issued by the mock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
}

/// The running mock. Dropping it stops the server.
pub struct MockOpenAiAuth {
    server: MockServer,
    state: Arc<Mutex<AuthState>>,
}

#[derive(Default)]
struct AuthState {
    fault: Fault,
    account: Account,
    pending: HashMap<String, PendingCode>,
    refresh_tokens: HashSet<String>,
    /// Refresh tokens already exchanged; reusing one is reported as such.
    spent_refresh_tokens: HashSet<String>,
    serial: u64,
    refresh_calls: usize,
}

/// What the authorize step bound a code to.
struct PendingCode {
    client_id: String,
    redirect_uri: String,
    code_challenge: String,
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
        self.refresh_tokens.insert(tokens.refresh_token.clone());
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
    } else if !param("scope").split(' ').any(|s| s == "openid") {
        Some("scope must include openid")
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
    state.pending.insert(
        code.clone(),
        PendingCode {
            client_id: param("client_id").into(),
            redirect_uri: redirect_uri.into(),
            code_challenge: param("code_challenge").into(),
        },
    );
    location.query_pairs_mut().append_pair("code", &code).append_pair("state", param("state"));
    found(location.as_str())
}

async fn token(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Unsupported content type");
    }
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();

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
            return (StatusCode::OK, r#"{"access_token": "mock-openai-at-trunc"#).into_response();
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
            } else if s256(field("code_verifier")) != pending.code_challenge {
                Some("Invalid code verifier")
            } else {
                None
            };
            match problem {
                Some(problem) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", problem),
                None => state.token_response(),
            }
        }
        "refresh_token" => {
            if state.fault == Fault::RevokeRefreshTokens {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Refresh token revoked");
            }
            let presented = field("refresh_token");
            if state.spent_refresh_tokens.contains(presented) {
                // OpenAI's shape for this one: an error object, and 401.
                let body = json!({"error": {
                    "message": "Your refresh token has already been used to generate a new access token. \
                                Please try signing in again.",
                    "type": "invalid_request_error",
                    "param": null,
                    "code": "refresh_token_reused",
                }});
                return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
            }
            if !state.refresh_tokens.remove(presented) {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid refresh token");
            }
            state.spent_refresh_tokens.insert(presented.to_owned());
            state.token_response()
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Unsupported grant_type"),
    }
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
