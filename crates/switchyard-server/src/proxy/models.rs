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

/// Which listing shape a `GET /v1/models[/<id>]` caller expects. Anthropic: `anthropic-version`
/// or Claude Code's user agent (as CPA decides). Gemini: google-genai, which calls `/v1` by default
/// and always sends its `x-goog-api-client` (and the key as `x-goog-api-key`). Else OpenAI.
fn listing_dialect(headers: &HeaderMap) -> Dialect {
    let user_agent = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if headers.contains_key("anthropic-version") || user_agent.starts_with("claude-cli") {
        Dialect::AnthropicMessages
    } else if headers.contains_key("x-goog-api-key") || headers.contains_key("x-goog-api-client") {
        Dialect::Gemini
    } else {
        Dialect::OpenAiChat
    }
}

fn anthropic_model(id: &str, display_name: &str) -> Value {
    json!({"type": "model", "id": id, "display_name": display_name, "created_at": "1970-01-01T00:00:00Z"})
}

fn openai_model(id: &str, owned_by: &str) -> Value {
    json!({"id": id, "object": "model", "created": 0, "owned_by": owned_by})
}

/// `GET /v1/models`: OpenAI's list, or Anthropic's / Gemini's for those clients.
pub async fn openai_or_anthropic(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Json<Value> {
    let models = state.router.models();
    match listing_dialect(&headers) {
        Dialect::AnthropicMessages => {
            let data: Vec<Value> = models.iter().map(|m| anthropic_model(&m.id, &m.display_name)).collect();
            let first = models.first().map(|m| m.id.clone());
            let last = models.last().map(|m| m.id.clone());
            Json(json!({"data": data, "has_more": false, "first_id": first, "last_id": last}))
        }
        Dialect::Gemini => {
            Json(json!({ "models": models.iter().map(|m| gemini_model(&m.id, &m.display_name)).collect::<Vec<_>>() }))
        }
        _ => {
            let data: Vec<Value> = models.iter().map(|m| openai_model(&m.id, &m.owned_by)).collect();
            Json(json!({"object": "list", "data": data}))
        }
    }
}

/// `GET /v1/models/<id>`: one model in the caller's shape (OpenAI, Anthropic and google-genai
/// all retrieve a model at this path), or 404 in its error shape.
pub async fn one(State(state): State<Arc<AppState>>, Path(model): Path<String>, headers: HeaderMap) -> Response {
    let dialect = listing_dialect(&headers);
    let wanted = model.trim_start_matches("models/");
    let models = state.router.models();
    let Some(found) = models.iter().find(|m| m.id.eq_ignore_ascii_case(wanted)) else {
        let message = format!("model {wanted} is not served here");
        return ClientCall::new(dialect, Operation::Generate, HeaderMap::new()).error(404, "not_found", &message);
    };
    Json(match dialect {
        Dialect::AnthropicMessages => anthropic_model(&found.id, &found.display_name),
        Dialect::Gemini => gemini_model(&found.id, &found.display_name),
        _ => openai_model(&found.id, &found.owned_by),
    })
    .into_response()
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
