use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use switchyard_config::ConfigError;

use crate::error::ok_with;
use crate::{ApiError, AppState};

/// A config.yaml larger than this is not a config file.
const MAX_CONFIG_BYTES: usize = 1024 * 1024;

/// The applied configuration as JSON with CPA's key names. The management secret is shown only
/// as its bcrypt hash, as CPA shows it after hashing it on load.
pub async fn get_config(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let config = state.config.get();
    let mut body = serde_json::to_value(&*config).map_err(|_| ApiError::internal("failed to encode config"))?;
    let shown_secret = match config.management_secret() {
        Some(secret) => state.management.hash_for(secret).await.map(|h| h.to_string()).unwrap_or_default(),
        None => String::new(),
    };
    if let Some(remote) = body.get_mut("remote-management").and_then(Value::as_object_mut) {
        remote.insert("secret-key".into(), Value::String(shown_secret));
    }
    super::config_edit::add_auth_indexes(&mut body);
    Ok(Json(body))
}

pub async fn get_yaml(State(state): State<Arc<AppState>>) -> Response {
    let text = state.config.raw_yaml();
    ([(header::CONTENT_TYPE, "application/yaml; charset=utf-8")], text.to_string()).into_response()
}

/// Validates the whole document before anything touches the file; a bad one is refused with the
/// reason (line and field) and the file stays byte-identical.
pub async fn put_yaml(State(state): State<Arc<AppState>>, body: Body) -> Result<Json<Value>, ApiError> {
    if state.config.path().is_none() {
        return Err(no_config_file());
    }
    let bytes =
        axum::body::to_bytes(body, MAX_CONFIG_BYTES).await.map_err(|_| ApiError::too_large(MAX_CONFIG_BYTES))?;
    let text =
        String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::bad_request("config.yaml must be UTF-8 text"))?;
    let handle = state.config.clone();
    let outcome = tokio::task::spawn_blocking(move || handle.replace_yaml(&text))
        .await
        .map_err(|_| ApiError::internal("config update task failed"))?;
    match outcome {
        Ok(warnings) => {
            let warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
            tracing::info!(warnings = warnings.len(), "config.yaml replaced through the management API");
            Ok(ok_with(json!({ "warnings": warnings })))
        }
        Err(error) => Err(invalid_config(&error)),
    }
}

/// Writes are refused while switchyard runs on its embedded default.
pub(super) fn no_config_file() -> ApiError {
    ApiError::conflict(
        "no config file: switchyard runs on its embedded default; start it with --config PATH to edit the configuration",
    )
}

/// A rejected document: the reason with its line and field, as `PUT /config.yaml` answers.
pub(super) fn invalid_config(error: &ConfigError) -> ApiError {
    ApiError::bad_request("invalid config")
        .with("message", error.to_string())
        .with("line", error.line)
        .with("field", error.field.clone())
}
