//! Mock of every provider's quota endpoint on one loopback port, answering the recorded-shape
//! bodies of `fixtures/quota/` (see its README), with the real servers' rules:
//!
//! - each route demands the account's token the way its provider does (`Bearer <token>`;
//!   GitHub's `token <token>`), once [`MockQuota::require_token`] names one, and answers a
//!   missing or wrong one with that provider's own 401/403 body;
//! - Claude's usage and profile need `anthropic-beta: oauth-2025-04-20` (400 without);
//! - Kiro's endpoint is one AWS JSON path told apart by `x-amz-target` (400
//!   `UnknownOperationException` for another);
//! - xAI's billing answers the credits view for `?format=credits`, the monthly one without.
//!
//! [`MockQuota::fail`] makes one provider answer a status (with its own error body unless one is
//! given) until [`MockQuota::clear`]; [`MockQuota::set_answer`] replaces a fixture.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::{MockServer, serve};

pub const CODEX_PATH: &str = "/backend-api/wham/usage";
pub const CLAUDE_USAGE_PATH: &str = "/api/oauth/usage";
pub const CLAUDE_PROFILE_PATH: &str = "/api/oauth/profile";
pub const COPILOT_PATH: &str = "/copilot_internal/user";
pub const ANTIGRAVITY_PATH: &str = "/v1internal:fetchAvailableModels";
pub const KIRO_PATH: &str = "/kiro";
pub const KIMI_PATH: &str = "/coding/v1/usages";
pub const XAI_PATH: &str = "/v1/billing";
const KIRO_TARGET: &str = "AmazonCodeWhispererService.GetUsageLimits";

/// The provider ids the mock answers for, as `upstream-urls` keys them.
pub const PROVIDERS: [&str; 7] = ["codex", "claude", "github-copilot", "antigravity", "kiro", "kimi", "xai"];

#[derive(Default)]
struct Knobs {
    token: Option<String>,
    faults: HashMap<String, (u16, Option<Value>)>,
    answers: HashMap<String, Value>,
}

type Shared = Arc<Mutex<Knobs>>;

pub struct MockQuota {
    server: MockServer,
    knobs: Shared,
}

impl Deref for MockQuota {
    type Target = MockServer;
    fn deref(&self) -> &MockServer {
        &self.server
    }
}

impl MockQuota {
    pub async fn start() -> Self {
        let knobs = Shared::default();
        let router = Router::new()
            .route(CODEX_PATH, get(codex))
            .route(CLAUDE_USAGE_PATH, get(claude_usage))
            .route(CLAUDE_PROFILE_PATH, get(claude_profile))
            .route(COPILOT_PATH, get(copilot))
            .route(ANTIGRAVITY_PATH, post(antigravity))
            .route(KIRO_PATH, post(kiro))
            .route(KIMI_PATH, get(kimi))
            .route(XAI_PATH, get(xai))
            .with_state(knobs.clone());
        MockQuota { server: serve(router).await, knobs }
    }

    fn lock(&self) -> MutexGuard<'_, Knobs> {
        self.knobs.lock().expect("quota mock lock")
    }

    /// Every route then demands this token (`None`: any or none).
    pub fn require_token(&self, token: Option<&str>) {
        self.lock().token = token.map(str::to_owned);
    }

    /// `provider` answers `status` (with `body`, else its own error body) until [`Self::clear`].
    pub fn fail(&self, provider: &str, status: u16, body: Option<Value>) {
        self.lock().faults.insert(provider.to_owned(), (status, body));
    }

    /// Replaces one fixture (`codex.json`, `xai-credits.json`, ...) by `answer`.
    pub fn set_answer(&self, file: &str, answer: Value) {
        self.lock().answers.insert(file.to_owned(), answer);
    }

    /// No faults, no replaced answers, no token required.
    pub fn clear(&self) {
        *self.lock() = Knobs::default();
    }

    /// `(provider, endpoint, url)` of every `upstream-urls` entry that points a provider here.
    pub fn upstream_urls(&self) -> Vec<(&'static str, &'static str, String)> {
        vec![
            ("codex", "usage", self.url(CODEX_PATH)),
            ("claude", "usage", self.url(CLAUDE_USAGE_PATH)),
            ("claude", "profile", self.url(CLAUDE_PROFILE_PATH)),
            ("github-copilot", "quota", self.url(COPILOT_PATH)),
            ("antigravity", "quota", self.base.clone()),
            ("kiro", "quota", self.url(KIRO_PATH)),
            ("kimi", "usage", self.url(KIMI_PATH)),
            ("xai", "billing", self.url(XAI_PATH)),
        ]
    }

    /// The `upstream-urls:` block of [`Self::upstream_urls`], for a config of its own.
    pub fn upstream_urls_yaml(&self) -> String {
        self.merged_into("upstream-urls:\n")
    }

    /// `yaml` (an `upstream-urls:` block such as [`crate::upstream::MockUpstream::upstream_urls_yaml`],
    /// two-space provider keys, four-space endpoints) with this mock's entries added under
    /// their providers.
    pub fn merged_into(&self, yaml: &str) -> String {
        self.merged_into_except(yaml, &[])
    }

    /// [`Self::merged_into`] without the `(provider, endpoint)` entries of `skip` (one another
    /// mock answers).
    pub fn merged_into_except(&self, yaml: &str, skip: &[(&str, &str)]) -> String {
        let mut yaml = yaml.to_owned();
        for (provider, endpoint, url) in self.upstream_urls() {
            if skip.contains(&(provider, endpoint)) {
                continue;
            }
            let key = format!("  {provider}:\n");
            let line = format!("    {endpoint}: {url}\n");
            match yaml.find(&key) {
                Some(at) => yaml.insert_str(at + key.len(), &line),
                None => {
                    yaml.push_str(&key);
                    yaml.push_str(&line);
                }
            }
        }
        yaml
    }
}

/// The fixture `file` (or its replacement).
pub fn fixture(file: &str) -> Value {
    let path = format!("{}/fixtures/quota/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("quota fixture {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("quota fixture {path}: {e}"))
}

/// The provider's own answer to a refused token.
fn refusal(provider: &str) -> (u16, Value) {
    match provider {
        "codex" => (
            401,
            json!({"error": {"message": "Provided authentication token is expired. Please try signing in again.",
            "type": null, "code": "token_expired", "param": null}, "status": 401}),
        ),
        "claude" => (
            401,
            json!({"type": "error", "error": {"type": "authentication_error", "message": "OAuth token has expired."}}),
        ),
        "github-copilot" => (
            401,
            json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        ),
        "antigravity" => (
            401,
            json!({"error": {"code": 401, "message": "Request had invalid authentication credentials.", "status": "UNAUTHENTICATED"}}),
        ),
        "kiro" => (
            403,
            json!({"__type": "com.amazon.aws.codewhisperer#AccessDeniedException", "message": "The bearer token included in the request is invalid."}),
        ),
        "kimi" => {
            (401, json!({"error": {"message": "Invalid Authentication", "type": "invalid_authentication_error"}}))
        }
        _ => (401, json!({"code": "unauthenticated", "error": "Invalid or expired token"})),
    }
}

/// The provider's own body for another failure status.
fn failure_body(provider: &str, status: u16) -> Value {
    if status == 401 || status == 403 {
        return refusal(provider).1;
    }
    match provider {
        "claude" => {
            json!({"type": "error", "error": {"type": "api_error", "message": format!("mock status {status}")}})
        }
        "antigravity" => {
            json!({"error": {"code": status, "message": format!("mock status {status}"), "status": "UNAVAILABLE"}})
        }
        "kiro" => {
            json!({"__type": "com.amazon.aws.codewhisperer#ThrottlingException", "message": format!("mock status {status}")})
        }
        _ => json!({"error": {"message": format!("mock status {status}")}}),
    }
}

fn json_reply(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(body)).into_response()
}

/// The common rules: an injected fault, then the token; `Ok(answer)` when the route may answer.
fn admit(knobs: &Shared, provider: &str, headers: &HeaderMap, scheme: &str, file: &str) -> Result<Value, Response> {
    let knobs = knobs.lock().expect("quota mock lock");
    if let Some((status, body)) = knobs.faults.get(provider) {
        return Err(json_reply(*status, body.clone().unwrap_or_else(|| failure_body(provider, *status))));
    }
    if let Some(token) = &knobs.token {
        let sent = headers.get("authorization").and_then(|v| v.to_str().ok());
        if sent != Some(format!("{scheme} {token}").as_str()) {
            let (status, body) = refusal(provider);
            return Err(json_reply(status, body));
        }
    }
    Ok(knobs.answers.get(file).cloned().unwrap_or_else(|| fixture(file)))
}

fn answer(result: Result<Value, Response>) -> Response {
    result.map_or_else(|refused| refused, |body| json_reply(200, body))
}

async fn codex(State(knobs): State<Shared>, headers: HeaderMap) -> Response {
    answer(admit(&knobs, "codex", &headers, "Bearer", "codex.json"))
}

fn claude_beta(headers: &HeaderMap) -> Result<(), Response> {
    let beta = headers.get("anthropic-beta").and_then(|v| v.to_str().ok()).unwrap_or("");
    if beta.split(',').any(|b| b.trim() == "oauth-2025-04-20") {
        return Ok(());
    }
    Err(json_reply(
        400,
        json!({"type": "error", "error": {"type": "invalid_request_error",
        "message": "OAuth authentication is currently not supported."}}),
    ))
}

async fn claude_usage(State(knobs): State<Shared>, headers: HeaderMap) -> Response {
    answer(claude_beta(&headers).and_then(|()| admit(&knobs, "claude", &headers, "Bearer", "claude.json")))
}

async fn claude_profile(State(knobs): State<Shared>, headers: HeaderMap) -> Response {
    answer(claude_beta(&headers).and_then(|()| admit(&knobs, "claude", &headers, "Bearer", "claude-profile.json")))
}

async fn copilot(State(knobs): State<Shared>, headers: HeaderMap) -> Response {
    answer(admit(&knobs, "github-copilot", &headers, "token", "copilot.json"))
}

async fn antigravity(State(knobs): State<Shared>, headers: HeaderMap) -> Response {
    answer(admit(&knobs, "antigravity", &headers, "Bearer", "antigravity.json"))
}

async fn kiro(State(knobs): State<Shared>, headers: HeaderMap) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok());
    if target != Some(KIRO_TARGET) {
        return json_reply(400, json!({"__type": "com.amazon.coral.service#UnknownOperationException"}));
    }
    answer(admit(&knobs, "kiro", &headers, "Bearer", "kiro.json"))
}

async fn kimi(State(knobs): State<Shared>, headers: HeaderMap) -> Response {
    answer(admit(&knobs, "kimi", &headers, "Bearer", "kimi.json"))
}

async fn xai(
    State(knobs): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let file = if query.get("format").map(String::as_str) == Some("credits") {
        "xai-credits.json"
    } else {
        "xai-monthly.json"
    };
    answer(admit(&knobs, "xai", &headers, "Bearer", file))
}
