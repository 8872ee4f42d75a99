//! `GET /model-definitions/{channel}` → `{"channel", "models": [...]}`: the static model
//! catalogue of a channel (the model picker of the panels' excluded-models and alias editors),
//! before any exclusion, alias or prefix. Channels are the providers' `channel()` keys (file
//! types such as `gemini` are accepted too) and the `oauth-providers` declared in config.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use switchyard_providers::dialect;

use crate::{ApiError, AppState};

pub async fn list(State(state): State<Arc<AppState>>, Path(channel): Path<String>) -> Result<Json<Value>, ApiError> {
    let wanted = channel.trim().to_ascii_lowercase();
    let builtin = switchyard_providers::all()
        .iter()
        .copied()
        .find(|p| p.channel() == wanted)
        .or_else(|| switchyard_providers::for_file_type(&wanted));
    if let Some(provider) = builtin {
        return Ok(Json(json!({"channel": provider.channel(), "models": provider.models()})));
    }
    let config = state.config.get();
    if let Some(custom) = config.oauth_providers.iter().find(|p| p.name.eq_ignore_ascii_case(&wanted)) {
        let kind = match custom.dialect.as_str() {
            "claude" => dialect::CLAUDE,
            "gemini" => dialect::GEMINI,
            _ => dialect::OPENAI,
        };
        let models: Vec<Value> = custom
            .models
            .iter()
            .map(|id| json!({"id": id, "display_name": id, "owned_by": custom.name, "type": kind}))
            .collect();
        return Ok(Json(json!({"channel": custom.name, "models": models})));
    }
    let mut channels: Vec<String> = switchyard_providers::all().iter().map(|p| p.channel().to_owned()).collect();
    channels.extend(config.oauth_providers.iter().map(|p| p.name.clone()));
    Err(ApiError::not_found(format!("unknown channel `{channel}`; known: {}", channels.join(", ")))
        .with("channels", channels))
}
