//! Mock of Google's servers on one loopback port, as the Gemini CLI and Antigravity logins use
//! them: the `accounts.google.com` authorize page (v1 and v2 paths), the `oauth2.googleapis.com`
//! token endpoint, userinfo v1 and v2, Cloud Resource Manager's project list, Cloud Code Assist
//! (`loadCodeAssist`, `onboardUser`) and Service Usage (service state, `:enable`).
//!
//! Google's rules and quirks are kept: form-only token endpoint that wants the client secret,
//! single-use codes bound to client and redirect URI, a refresh token only for
//! `access_type=offline`, refresh answers without a new refresh token, Bearer checks on every API,
//! the callback redirect as `?state=..&code=..&scope=..`, an empty project list sent as `{}`, and
//! onboarding as a long-running operation that answers `done:false` before `done:true`.

use std::collections::{HashMap, HashSet};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::oauth::{self, Codes, Params, Tokens, consent_denied, found, oauth_error};
use crate::{MockServer, serve};

/// The Gemini CLI's public installed-app client.
pub const GEMINI_CLI_CLIENT_ID: &str = "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com";
pub const GEMINI_CLI_CLIENT_SECRET: &str = "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";
/// The Antigravity IDE's public installed-app client.
pub const ANTIGRAVITY_CLIENT_ID: &str = "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com";
pub const ANTIGRAVITY_CLIENT_SECRET: &str = "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";

pub const AUTHORIZE_V1_PATH: &str = "/o/oauth2/auth";
pub const AUTHORIZE_V2_PATH: &str = "/o/oauth2/v2/auth";
pub const TOKEN_PATH: &str = "/token";
pub const USERINFO_V1_PATH: &str = "/oauth2/v1/userinfo";
pub const USERINFO_V2_PATH: &str = "/oauth2/v2/userinfo";
pub const PROJECTS_PATH: &str = "/v1/projects";
pub const LOAD_CODE_ASSIST_PATH: &str = "/v1internal:loadCodeAssist";
pub const ONBOARD_USER_PATH: &str = "/v1internal:onboardUser";
/// The service the Gemini CLI login checks and enables.
pub const CLOUD_AI_SERVICE: &str = "cloudaicompanion.googleapis.com";
/// Access-token lifetime Google reports.
pub const EXPIRES_IN: u64 = 3599;

/// Path of the Cloud AI Companion service of `project` (append `:enable` for the enable call).
pub fn service_path(project: &str) -> String {
    format!("/v1/projects/{project}/services/{CLOUD_AI_SERVICE}")
}

/// A token-endpoint failure to inject; stays in effect until cleared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenFault {
    /// `500` with Google's HTML error page.
    ServerError,
    /// `200` with a truncated JSON body.
    Malformed,
    /// `429` with `Retry-After: <seconds>`.
    RateLimited { retry_after: u64 },
}

/// The running mock (its [`MockServer`] too). Dropping it stops the server.
pub struct MockGoogle {
    server: MockServer,
    state: Arc<Mutex<GoogleState>>,
}

struct GoogleState {
    clients: Vec<(String, String)>,
    email: Option<String>,
    projects: Vec<String>,
    code_assist_project: Option<String>,
    managed_project: String,
    default_tier: Option<String>,
    pending_polls: u32,
    /// onboardUser calls so far, per requested project ("" = none requested).
    onboard_calls: HashMap<String, u32>,
    api_enabled: bool,
    enabled_projects: HashSet<String>,
    refuse_enable: bool,
    code_assist_denied: bool,
    deny_consent: bool,
    token_fault: Option<TokenFault>,
    codes: Codes<Grant>,
    /// Live tokens; a refresh token is bound to the client it was issued to and never rotates.
    tokens: Tokens,
    serial: u64,
}

impl Default for GoogleState {
    fn default() -> Self {
        Self {
            clients: vec![
                (GEMINI_CLI_CLIENT_ID.into(), GEMINI_CLI_CLIENT_SECRET.into()),
                (ANTIGRAVITY_CLIENT_ID.into(), ANTIGRAVITY_CLIENT_SECRET.into()),
            ],
            email: Some("jane.doe@example.com".into()),
            projects: vec!["gen-lang-client-0123456789".into()],
            code_assist_project: None,
            managed_project: "mock-managed-project".into(),
            default_tier: Some("free-tier".into()),
            pending_polls: 0,
            onboard_calls: HashMap::new(),
            api_enabled: false,
            enabled_projects: HashSet::new(),
            refuse_enable: false,
            code_assist_denied: false,
            deny_consent: false,
            token_fault: None,
            codes: Codes::default(),
            tokens: Tokens::default(),
            serial: 0,
        }
    }
}

/// What an authorization code was issued for.
struct Grant {
    client_id: String,
    redirect_uri: String,
    scope: String,
    offline: bool,
}

impl MockGoogle {
    pub async fn start() -> MockGoogle {
        let state = Arc::new(Mutex::new(GoogleState::default()));
        let router = Router::new()
            .route(AUTHORIZE_V1_PATH, get(authorize))
            .route(AUTHORIZE_V2_PATH, get(authorize))
            .route(TOKEN_PATH, post(token))
            .route(USERINFO_V1_PATH, get(userinfo))
            .route(USERINFO_V2_PATH, get(userinfo))
            .route(PROJECTS_PATH, get(projects))
            .route(LOAD_CODE_ASSIST_PATH, post(load_code_assist))
            .route(ONBOARD_USER_PATH, post(onboard_user))
            .route("/v1/projects/{project}/services/{service}", get(service_state).post(enable_service))
            .with_state(state.clone());
        MockGoogle { server: serve(router).await, state }
    }

    /// `upstream-urls` config pointing both the Gemini CLI and the Antigravity provider here.
    pub fn upstream_urls_yaml(&self) -> String {
        let base = self.base();
        format!(
            "upstream-urls:\n  gemini-cli:\n    authorize: {base}{AUTHORIZE_V1_PATH}\n    token: {base}{TOKEN_PATH}\n    \
             userinfo: \"{base}{USERINFO_V1_PATH}?alt=json\"\n    projects: {base}{PROJECTS_PATH}\n    \
             code-assist: {base}\n    service-usage: {base}\n  antigravity:\n    \
             authorize: {base}{AUTHORIZE_V2_PATH}\n    token: {base}{TOKEN_PATH}\n    \
             userinfo: \"{base}{USERINFO_V2_PATH}?alt=json\"\n    code-assist: {base}\n    onboard: {base}\n"
        )
    }

    /// The OAuth clients (id, secret) Google knows; by default the two real public ones.
    pub fn set_clients(&self, clients: &[(&str, &str)]) {
        self.lock().clients = clients.iter().map(|(id, secret)| ((*id).into(), (*secret).into())).collect();
    }

    /// The account's email; `None` makes userinfo answer without one.
    pub fn set_email(&self, email: Option<&str>) {
        self.lock().email = email.map(str::to_owned);
    }

    /// Project ids Cloud Resource Manager lists, in order.
    pub fn set_projects(&self, projects: &[&str]) {
        self.lock().projects = projects.iter().map(|p| (*p).to_owned()).collect();
    }

    /// The project `loadCodeAssist` reports as already set up (`None`: the user is not onboarded).
    pub fn set_code_assist_project(&self, project: Option<&str>) {
        self.lock().code_assist_project = project.map(str::to_owned);
    }

    /// The project onboarding assigns when the request names none.
    pub fn set_managed_project(&self, project: &str) {
        self.lock().managed_project = project.to_owned();
    }

    /// The `allowedTiers` entry marked `isDefault` (`None`: no tier is default).
    pub fn set_default_tier(&self, tier: Option<&str>) {
        self.lock().default_tier = tier.map(str::to_owned);
    }

    /// How many onboardUser calls per project answer `done:false` first (`u32::MAX`: never done).
    pub fn set_onboard_pending_polls(&self, polls: u32) {
        self.lock().pending_polls = polls;
    }

    /// Whether the Cloud AI Companion API starts out ENABLED on every project.
    pub fn set_api_enabled(&self, enabled: bool) {
        self.lock().api_enabled = enabled;
    }

    /// Makes `:enable` answer `403 PERMISSION_DENIED`.
    pub fn refuse_api_enable(&self, refuse: bool) {
        self.lock().refuse_enable = refuse;
    }

    /// Makes Code Assist (`loadCodeAssist`, `onboardUser`) answer `403 PERMISSION_DENIED`.
    pub fn deny_code_assist(&self, deny: bool) {
        self.lock().code_assist_denied = deny;
    }

    /// The user declines on the consent page: authorize redirects with `error=access_denied`.
    pub fn deny_consent(&self, deny: bool) {
        self.lock().deny_consent = deny;
    }

    pub fn set_token_fault(&self, fault: Option<TokenFault>) {
        self.lock().token_fault = fault;
    }

    /// Revokes every refresh and access token issued so far (the user removed the app's access).
    pub fn revoke_refresh_tokens(&self) {
        self.lock().tokens.revoke_all();
    }

    fn lock(&self) -> MutexGuard<'_, GoogleState> {
        self.state.lock().expect("mock state lock")
    }
}

impl Deref for MockGoogle {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

impl GoogleState {
    fn next_id(&mut self, prefix: &str) -> String {
        self.serial += 1;
        format!("{prefix}mock-{:06}", self.serial)
    }

    fn secret_of(&self, client_id: &str) -> Option<&str> {
        self.clients.iter().find(|(id, _)| id == client_id).map(|(_, secret)| secret.as_str())
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        self.tokens.bearer_ok(headers)
    }

    /// A token answer; `refresh_for` issues a refresh token bound to that client.
    fn issue(&mut self, scope: &str, refresh_for: Option<&str>) -> Response {
        let access_token = self.next_id("ya29.");
        self.tokens.add_access(&access_token);
        let mut body = json!({
            "access_token": access_token,
            "expires_in": EXPIRES_IN,
            "scope": scope,
            "token_type": "Bearer",
        });
        if let Some(client_id) = refresh_for {
            let refresh_token = self.next_id("1//0g");
            self.tokens.add_refresh(&refresh_token, client_id);
            body["refresh_token"] = json!(refresh_token);
        }
        Json(body).into_response()
    }
}

type Shared = State<Arc<Mutex<GoogleState>>>;

fn lock(state: &Arc<Mutex<GoogleState>>) -> MutexGuard<'_, GoogleState> {
    state.lock().expect("mock state lock")
}

async fn authorize(State(state): Shared, Query(query): Query<HashMap<String, String>>) -> Response {
    let params = Params::new(query);
    let param = |name: &str| params.get(name);
    let mut state = lock(&state);
    // Google shows an error page (no redirect) for a bad client or redirect URI.
    if state.secret_of(param("client_id")).is_none() {
        return error_page(StatusCode::UNAUTHORIZED, "Error 401: invalid_client. The OAuth client was not found.");
    }
    let Some(mut location) = loopback_redirect(param("redirect_uri")) else {
        return error_page(StatusCode::BAD_REQUEST, "Error 400: redirect_uri_mismatch");
    };
    if param("response_type") != "code" {
        return error_page(StatusCode::BAD_REQUEST, "Error 400: invalid_request. Invalid response_type.");
    }
    if param("scope").is_empty() {
        return error_page(StatusCode::BAD_REQUEST, "Error 400: invalid_request. Missing required parameter: scope");
    }

    if state.deny_consent {
        return consent_denied(location, None, param("state"));
    }
    let code = state.next_id("4/0A");
    let grant = Grant {
        client_id: param("client_id").into(),
        redirect_uri: param("redirect_uri").into(),
        scope: param("scope").into(),
        offline: param("access_type") == "offline",
    };
    state.codes.insert(code.clone(), grant);
    // Google's order: state first, then code, then the granted scope and account index.
    location
        .query_pairs_mut()
        .append_pair("state", param("state"))
        .append_pair("code", &code)
        .append_pair("scope", param("scope"))
        .append_pair("authuser", "0")
        .append_pair("prompt", "consent");
    found(location.as_str())
}

async fn token(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    // Google reads form fields only: any other body looks like an empty request.
    let is_form = oauth::content_type_is(&headers, "application/x-www-form-urlencoded");
    let form = if is_form { Params::form(&body) } else { Params::new(HashMap::new()) };
    let field = |name: &str| form.get(name);

    let mut state = lock(&state);
    match state.token_fault {
        Some(TokenFault::ServerError) => {
            return error_page(StatusCode::INTERNAL_SERVER_ERROR, "Error 500 (Server Error)!!1");
        }
        Some(TokenFault::Malformed) => {
            let truncated = r#"{"access_token": "ya29.mock-trunc"#;
            return (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], truncated).into_response();
        }
        Some(TokenFault::RateLimited { retry_after }) => {
            return oauth::rate_limited("Rate limit exceeded.", retry_after);
        }
        None => {}
    }

    if field("grant_type").is_empty() {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Required parameter is missing: grant_type");
    }
    let client_id = field("client_id");
    let Some(secret) = state.secret_of(client_id) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "The OAuth client was not found.");
    };
    if field("client_secret").is_empty() {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "client_secret is missing.");
    }
    if field("client_secret") != secret {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", "Unauthorized");
    }

    match field("grant_type") {
        "authorization_code" => {
            if field("code").is_empty() {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Missing required parameter: code");
            }
            let Some(grant) = state.codes.redeem(field("code")) else {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request");
            };
            if grant.client_id != client_id {
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Bad Request");
            }
            if grant.redirect_uri != field("redirect_uri") {
                return oauth_error(StatusCode::BAD_REQUEST, "redirect_uri_mismatch", "Bad Request");
            }
            let refresh_for = grant.offline.then_some(client_id);
            state.issue(&grant.scope, refresh_for)
        }
        "refresh_token" => match state.tokens.refresh_owner(field("refresh_token")) {
            None => oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Token has been expired or revoked."),
            Some(owner) if owner != client_id => {
                oauth_error(StatusCode::UNAUTHORIZED, "unauthorized_client", "Unauthorized")
            }
            // Google keeps the refresh token: the answer carries a new access token only.
            Some(_) => state.issue("", None),
        },
        other => {
            oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", &format!("Invalid grant_type: {other}"))
        }
    }
}

async fn userinfo(State(state): Shared, headers: HeaderMap) -> Response {
    let state = lock(&state);
    if !state.authorized(&headers) {
        return unauthenticated();
    }
    let mut info = json!({
        "id": "104523456789012345678",
        "name": "Jane Doe",
        "given_name": "Jane",
        "family_name": "Doe",
        "picture": "https://lh3.googleusercontent.com/a/mock",
    });
    if let Some(email) = &state.email {
        info["email"] = json!(email);
        info["verified_email"] = json!(true);
    }
    Json(info).into_response()
}

async fn projects(State(state): Shared, headers: HeaderMap) -> Response {
    let state = lock(&state);
    if !state.authorized(&headers) {
        return unauthenticated();
    }
    if state.projects.is_empty() {
        // Google omits empty repeated fields.
        return Json(json!({})).into_response();
    }
    let projects: Vec<Value> = state
        .projects
        .iter()
        .enumerate()
        .map(|(i, id)| {
            json!({
                "projectNumber": (100_000_000_000u64 + i as u64).to_string(),
                "projectId": id,
                "lifecycleState": "ACTIVE",
                "name": id,
                "createTime": "2025-01-01T00:00:00.000Z",
            })
        })
        .collect();
    Json(json!({ "projects": projects })).into_response()
}

async fn load_code_assist(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let state = lock(&state);
    if let Err(response) = code_assist_request(&state, &headers, &body) {
        return *response;
    }
    let tier = |id: &str, name: &str, user_project: bool| {
        json!({
            "id": id,
            "name": name,
            "userDefinedCloudaicompanionProject": user_project,
            "isDefault": state.default_tier.as_deref() == Some(id),
        })
    };
    let mut answer = json!({
        "allowedTiers": [
            tier("free-tier", "Gemini Code Assist for individuals", false),
            tier("legacy-tier", "Gemini Code Assist", true),
            tier("standard-tier", "Gemini Code Assist Standard", true),
        ],
        "gcpManaged": false,
    });
    if let Some(project) = &state.code_assist_project {
        answer["cloudaicompanionProject"] = json!(project);
        answer["currentTier"] = tier(state.default_tier.as_deref().unwrap_or("legacy-tier"), "Current", true);
    }
    Json(answer).into_response()
}

async fn onboard_user(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let mut state = lock(&state);
    let request = match code_assist_request(&state, &headers, &body) {
        Ok(request) => request,
        Err(response) => return *response,
    };
    // Proto JSON: Google accepts lowerCamel and snake_case field names alike.
    let field = |camel: &str, snake: &str| {
        request.get(camel).or_else(|| request.get(snake)).and_then(Value::as_str).unwrap_or_default().to_owned()
    };
    if field("tierId", "tier_id").is_empty() {
        return api_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "tier_id is required");
    }
    let requested = field("cloudaicompanionProject", "cloudaicompanion_project");
    let pending_polls = state.pending_polls;
    let calls = state.onboard_calls.entry(requested.clone()).or_default();
    *calls = calls.saturating_add(1);
    let operation = format!("operations/onboard-{}", if requested.is_empty() { "managed" } else { &requested });
    if *calls <= pending_polls {
        return Json(json!({"name": operation, "done": false})).into_response();
    }
    let project = if requested.is_empty() { state.managed_project.clone() } else { requested };
    Json(json!({
        "name": operation,
        "done": true,
        "response": {
            "@type": "type.googleapis.com/google.internal.cloud.code.v1internal.OnboardUserResponse",
            "cloudaicompanionProject": {"id": project, "name": project},
        },
    }))
    .into_response()
}

async fn service_state(
    State(state): Shared,
    Path((project, service)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let state = lock(&state);
    if !state.authorized(&headers) {
        return unauthenticated();
    }
    if service.contains(':') {
        return api_error(StatusCode::NOT_FOUND, "NOT_FOUND", "Method not found.");
    }
    let enabled = state.api_enabled || state.enabled_projects.contains(&project);
    Json(service_json(&project, &service, enabled)).into_response()
}

async fn enable_service(
    State(state): Shared,
    Path((project, service)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let mut state = lock(&state);
    if !state.authorized(&headers) {
        return unauthenticated();
    }
    let Some(service) = service.strip_suffix(":enable") else {
        return api_error(StatusCode::NOT_FOUND, "NOT_FOUND", "Method not found.");
    };
    if state.refuse_enable {
        let message = format!("Permission denied to enable service [{service}]");
        return api_error(StatusCode::FORBIDDEN, "PERMISSION_DENIED", &message);
    }
    state.enabled_projects.insert(project.clone());
    Json(json!({
        "name": "operations/noop.DONE_OPERATION",
        "done": true,
        "response": {
            "@type": "type.googleapis.com/google.api.serviceusage.v1.EnableServiceResponse",
            "service": service_json(&project, service, true),
        },
    }))
    .into_response()
}

/// Common checks of a Code Assist call: a valid Bearer, access to Code Assist, a JSON body.
/// The refusal is boxed: a `Response` is large next to the parsed body.
fn code_assist_request(state: &GoogleState, headers: &HeaderMap, body: &[u8]) -> Result<Value, Box<Response>> {
    if !state.authorized(headers) {
        return Err(Box::new(unauthenticated()));
    }
    if state.code_assist_denied {
        let denied = api_error(StatusCode::FORBIDDEN, "PERMISSION_DENIED", "The caller does not have permission");
        return Err(Box::new(denied));
    }
    let invalid = || Box::new(api_error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "Invalid JSON payload received."));
    serde_json::from_slice::<Value>(body).ok().filter(Value::is_object).ok_or_else(invalid)
}

fn service_json(project: &str, service: &str, enabled: bool) -> Value {
    json!({
        "name": format!("projects/{project}/services/{service}"),
        "parent": format!("projects/{project}"),
        "config": {"name": service, "title": "Gemini for Google Cloud API"},
        "state": if enabled { "ENABLED" } else { "DISABLED" },
    })
}

/// The redirect URI as a URL when it is a loopback `http` address, IPv6 included (any port and
/// path, as Google allows for installed apps).
fn loopback_redirect(redirect_uri: &str) -> Option<url::Url> {
    oauth::loopback_redirect(redirect_uri, &["localhost", "127.0.0.1", "[::1]"])
}

fn error_page(status: StatusCode, message: &str) -> Response {
    let page = format!("<!DOCTYPE html><html><title>Error</title><body><p>{message}</p></body></html>");
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
}

fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"code": status.as_u16(), "message": message, "status": code}}))).into_response()
}

fn unauthenticated() -> Response {
    let mut response = api_error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other \
         valid authentication credential.",
    );
    let challenge = r#"Bearer realm="https://accounts.google.com/", error="invalid_token""#;
    response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static(challenge));
    response
}
