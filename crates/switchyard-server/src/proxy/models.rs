//! Model listings in each dialect's shape, from the router's view of the accounts.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchyard_dialects::Dialect;
use switchyard_providers::executor::Operation;

use super::ClientCall;
use crate::AppState;

/// `GET /v1/models`: OpenAI's list, or Anthropic's when the caller is an Anthropic client
/// (`anthropic-version` header, or Claude Code's user agent), as CPA decides.
pub async fn openai_or_anthropic(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Json<Value> {
    let models = state.router.models();
    let anthropic_client = headers.contains_key("anthropic-version")
        || headers.get("user-agent").and_then(|v| v.to_str().ok()).is_some_and(|ua| ua.starts_with("claude-cli"));
    if anthropic_client {
        let data: Vec<Value> = models
            .iter()
            .map(|m| json!({"type": "model", "id": m.id, "display_name": m.display_name, "created_at": "1970-01-01T00:00:00Z"}))
            .collect();
        let first = models.first().map(|m| m.id.clone());
        let last = models.last().map(|m| m.id.clone());
        return Json(json!({"data": data, "has_more": false, "first_id": first, "last_id": last}));
    }
    let data: Vec<Value> =
        models.iter().map(|m| json!({"id": m.id, "object": "model", "created": 0, "owned_by": m.owned_by})).collect();
    Json(json!({"object": "list", "data": data}))
}

fn gemini_model(id: &str, display_name: &str) -> Value {
    json!({
        "name": format!("models/{id}"),
        "displayName": display_name,
        "supportedGenerationMethods": ["generateContent", "streamGenerateContent", "countTokens"],
    })
}

/// `GET /v1beta/models`.
pub async fn gemini(State(state): State<Arc<AppState>>) -> Json<Value> {
    let models: Vec<Value> = state.router.models().iter().map(|m| gemini_model(&m.id, &m.display_name)).collect();
    Json(json!({ "models": models }))
}

/// `GET /v1beta/models/<model>`.
pub async fn gemini_one(State(state): State<Arc<AppState>>, Path(model): Path<String>) -> Response {
    let wanted = model.trim_start_matches("models/");
    match state.router.models().iter().find(|m| m.id.eq_ignore_ascii_case(wanted)) {
        Some(found) => Json(gemini_model(&found.id, &found.display_name)).into_response(),
        None => ClientCall::new(Dialect::Gemini, Operation::Generate, HeaderMap::new()).error(
            404,
            "not_found",
            &format!("model {wanted} is not served here"),
        ),
    }
}
