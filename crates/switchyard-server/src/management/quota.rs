//! `POST /reset-quota` `{"auth_index"}`: forgets the router's cooldowns and 429 backoff of that
//! credential, so the next request may use it at once (after a quota window was reset upstream,
//! for instance).

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use serde_json::{Value, json};

use super::auth_files::read_json_object;
use super::credential_index::{auth_index_field, find};
use crate::error::ok_with;
use crate::{ApiError, AppState};

pub async fn reset(State(state): State<Arc<AppState>>, body: Body) -> Result<Json<Value>, ApiError> {
    let body = read_json_object(body).await?;
    let index = auth_index_field(&body)?.ok_or_else(|| ApiError::bad_request("auth_index is required"))?;
    let config = state.config.get();
    let found = find(&state, &config, &index).ok_or_else(|| ApiError::not_found("auth not found"))?;
    // An auth file the router does not route (unknown type) has no cooldowns to forget.
    let known = state.router.reset_health(found.account_id());
    crate::account_health::feed::limits_reset(&state, found.account_id());
    tracing::info!(auth_index = %index, account = found.account_id(), known, "cooldowns reset via management API");
    Ok(ok_with(json!({"auth_index": index})))
}
