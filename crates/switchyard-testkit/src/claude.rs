//! Mock of Anthropic's OAuth servers on one loopback port: the `claude.ai` authorize page, the
//! `platform.claude.com` token endpoint and the `api.anthropic.com` profile endpoint, with the
//! real servers' rules (JSON-only token endpoint, PKCE, single-use codes, rotating refresh
//! tokens) and quirks (`<code>#<state>` codes), plus fault knobs.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

pub use crate::oauth::IssuedTokens;
use crate::oauth::{
    self, Codes, LOOPBACK_HOSTS, Params, PkceGrant, Rotation, Tokens, consent_denied, found, oauth_error,
};
use crate::{MockServer, serve};

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
    /// Every grant is refused with `400 invalid_grant` whose description echoes what it was
    /// sent (the code and verifier, or the refresh token), as some servers do.
    EchoRejectedGrant,
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

/// The running mock (its [`MockServer`] too). Dropping it stops the server.
pub struct MockClaudeAuth {
    server: MockServer,
    state: Arc<Mutex<AuthState>>,
}

#[derive(Default)]
struct AuthState {
    fault: Fault,
    code_carries_state: bool,
    consent_page: bool,
    account: Account,
    profile_email: Option<String>,
    codes: Codes<PkceGrant>,
    tokens: Tokens,
    serial: u64,
    refresh_calls: usize,
}

impl Deref for MockClaudeAuth {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
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

    /// Shows a consent page (Authorize / Decline buttons, plain HTML) before redirecting, as the
    /// real authorize page does for a browser; off by default (the redirect comes at once).
    pub fn set_consent_page(&self, on: bool) {
        self.lock().consent_page = on;
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
        self.tokens.add_pair(&tokens, CLIENT_ID);
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
    let params = Params::new(query);
    if params.get("client_id") != CLIENT_ID {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_client", "Unknown client_id");
    }
    let Some(mut location) = registered_redirect(params.get("redirect_uri")) else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "redirect_uri is not registered");
    };
    let problem = oauth::pkce_authorize_problem(&params)
        .or_else(|| params.get("scope").is_empty().then_some("scope is required"));
    if let Some(problem) = problem {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", problem);
    }

    let mut state = state.lock().expect("mock state lock");
    if state.fault == Fault::DenyConsent || params.get("decision") == "deny" {
        return consent_denied(location, Some("The user denied access"), params.get("state"));
    }
    if state.consent_page && params.get("decision") != "allow" {
        return consent_page(&params, &state.account.email);
    }
    let code = state.next_id("code");
    let handed_out = if state.code_carries_state { format!("{code}#{}", params.get("state")) } else { code.clone() };
    state.codes.insert(code, PkceGrant::new(&params, true));
    location.query_pairs_mut().append_pair("code", &handed_out).append_pair("state", params.get("state"));
    found(location.as_str())
}

async fn token(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let request = if oauth::content_type_is(&headers, "application/json") { Params::json_object(&body) } else { None };
    let Some(request) = request else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Request body must be JSON");
    };
    let field = |name: &str| request.get(name);

    let mut state = state.lock().expect("mock state lock");
    if field("grant_type") == "refresh_token" {
        state.refresh_calls += 1;
    }
    match state.fault {
        Fault::TokenServerError => return oauth::html_server_error(),
        Fault::MalformedTokenJson => return oauth::truncated_token_answer("mock-claude-at-trunc"),
        Fault::RateLimit { retry_after } => return oauth::rate_limited("Too many requests", retry_after),
        _ => {}
    }
    if state.fault == Fault::EchoRejectedGrant {
        let echoed = match field("grant_type") {
            "refresh_token" => format!("Unknown refresh token {}", field("refresh_token")),
            _ => format!("Invalid code {} for verifier {}", field("code"), field("code_verifier")),
        };
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", &echoed);
    }
    if field("client_id") != CLIENT_ID {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unknown client_id");
    }

    match field("grant_type") {
        "authorization_code" => match state.codes.redeem_pkce(&request) {
            Ok(grant) => state.token_response(&grant.scope),
            Err(problem) => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", problem),
        },
        "refresh_token" => {
            if state.fault == Fault::RevokeRefreshTokens {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Refresh token revoked");
            }
            if state.tokens.rotate(field("refresh_token")) != Rotation::Rotated {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Refresh token not found or invalid");
            }
            state.token_response(field("scope"))
        }
        _ => oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", "Unsupported grant_type"),
    }
}

async fn profile(State(state): Shared, headers: HeaderMap) -> Response {
    let state = state.lock().expect("mock state lock");
    if state.fault == Fault::ProfileServerError {
        return (StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error").into_response();
    }
    if !state.tokens.bearer_ok(&headers) {
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

/// The consent page: the request's parameters as hidden fields of a GET form back to the
/// authorize endpoint, with `decision=allow` or `decision=deny`.
fn consent_page(params: &Params, email: &str) -> Response {
    let fields: String = params
        .iter()
        .filter(|(name, _)| name.as_str() != "decision")
        .map(|(name, value)| format!(r#"<input type="hidden" name="{}" value="{}">"#, escape(name), escape(value)))
        .collect();
    let page = format!(
        "<!doctype html><html><head><title>Authorize Claude Code</title></head><body>\
         <h1>Authorize Claude Code</h1><p>Signed in as {}. Claude Code wants to use your account.</p>\
         <form method=\"get\" action=\"{AUTHORIZE_PATH}\">{fields}\
         <button type=\"submit\" name=\"decision\" value=\"allow\">Authorize</button> \
         <button type=\"submit\" name=\"decision\" value=\"deny\">Decline</button></form></body></html>",
        escape(email)
    );
    axum::response::Html(page).into_response()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The redirect URI as a URL when it is the registered loopback callback.
fn registered_redirect(redirect_uri: &str) -> Option<url::Url> {
    oauth::loopback_redirect(redirect_uri, LOOPBACK_HOSTS).filter(|url| url.path() == CALLBACK_PATH)
}
