//! CPA's config editing endpoints (scalar toggles, key lists, channel maps). Every write is a
//! comment-preserving edit of the user's config.yaml (`switchyard_config::edit`), validated,
//! written atomically and applied at once through `ConfigHandle::edit_yaml`; any error leaves
//! the file byte-identical.

mod lists;
mod maps;
mod scalars;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use serde_json::{Value, json};
use switchyard_config::EditYamlError;
use switchyard_config::edit::{Edit, EditError};

use super::config_routes::{invalid_config, no_config_file};
use crate::{ApiError, AppState};

/// A JSON edit request is small; a larger body is not one.
const MAX_BODY_BYTES: usize = 1024 * 1024;

pub(super) use lists::add_auth_indexes;

pub fn routes() -> Router<Arc<AppState>> {
    scalars::routes().merge(lists::routes()).merge(maps::routes())
}

impl From<EditYamlError> for ApiError {
    fn from(error: EditYamlError) -> Self {
        match error {
            EditYamlError::Edit(EditError::NotFound(path)) => {
                ApiError::not_found(format!("`{path}` not found")).with("field", path)
            }
            EditYamlError::Edit(EditError::NotEditable { path, message }) => {
                ApiError::bad_request(format!("`{path}` {message}")).with("field", path)
            }
            EditYamlError::Edit(EditError::Parse(error)) | EditYamlError::Invalid(error) => invalid_config(&error),
        }
    }
}

/// Runs the edits `plan` computes from the file's current text, off the reactor.
pub(super) async fn write<F>(state: &AppState, plan: F) -> Result<axum::Json<Value>, ApiError>
where
    F: FnOnce(&str) -> Result<Vec<Edit>, ApiError> + Send + 'static,
{
    if state.config.path().is_none() {
        return Err(no_config_file());
    }
    let handle = state.config.clone();
    tokio::task::spawn_blocking(move || handle.edit_yaml(plan))
        .await
        .map_err(|_| ApiError::internal("config update task failed"))??;
    // The account sync task follows config changes too; doing it here as well means routing
    // already uses the edit when the answer arrives.
    state.sync_accounts();
    Ok(axum::Json(json!({"status": "ok"})))
}

/// The request body as JSON.
async fn json_body(body: Body) -> Result<Value, ApiError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| ApiError::too_large(MAX_BODY_BYTES))?;
    serde_json::from_slice(&bytes).map_err(|_| ApiError::bad_request("the body must be JSON"))
}

/// A 400 naming the field.
fn invalid(field: impl Into<String>, message: impl std::fmt::Display) -> ApiError {
    let field = field.into();
    ApiError::bad_request(format!("invalid `{field}`: {message}")).with("field", field)
}

/// The applied configuration as JSON, CPA key names.
fn config_json(state: &AppState) -> Result<Value, ApiError> {
    serde_json::to_value(&*state.config.get()).map_err(|_| ApiError::internal("failed to encode config"))
}
