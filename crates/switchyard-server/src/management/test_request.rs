//! `POST /v0/management/test-request` `{"auth_index", "model"?}`: one tiny non-stream request
//! through the real routing and executor path, pinned to that account (no failover), with the
//! account's first model unless one is named → `{status, latency_ms, model, answer?, error?}`.
//! It is recorded like any request (request log, usage, counters, health evidence).
//! Unknown `auth_index` 404, disabled account 409, an account nothing can be sent with 422.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};

use super::auth_files::read_json_object;
use super::credential_index::{auth_index_field, find};
use crate::account_health::probe;
use crate::{ApiError, AppState};

const ENDPOINT: &str = "/v0/management/test-request";

fn requested_model(body: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    match body.get("model") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(model)) if model.trim().is_empty() => Ok(None),
        Some(Value::String(model)) => Ok(Some(model.trim().to_owned())),
        Some(_) => Err(ApiError::bad_request("model must be a string")),
    }
}

pub async fn send(State(state): State<Arc<AppState>>, body: Body) -> Result<Json<Value>, ApiError> {
    let body = read_json_object(body).await?;
    let index = auth_index_field(&body)?.ok_or_else(|| ApiError::bad_request("auth_index is required"))?;
    let model = requested_model(&body)?;
    let config = state.config.get();
    let found = find(&state, &config, &index).ok_or_else(|| ApiError::not_found("auth not found"))?;
    let unprocessable = |message: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, message);
    let account = state
        .router
        .account(found.account_id())
        .ok_or_else(|| unprocessable("no provider serves this auth file".into()))?;
    if account.disabled {
        return Err(ApiError::conflict("the account is disabled; enable it first"));
    }
    if let Some(reason) = &account.unservable {
        return Err(unprocessable(reason.clone()));
    }
    let model = match model {
        Some(model) => {
            if !account.models.iter().any(|m| m.id.eq_ignore_ascii_case(&model)) {
                return Err(ApiError::bad_request(format!("the account does not serve model {model}")));
            }
            model
        }
        None => account
            .models
            .first()
            .map(|m| m.id.clone())
            .ok_or_else(|| unprocessable("the account serves no model".into()))?,
    };
    let outcome = probe::send(&state, &account.id, &model, false, ENDPOINT).await;
    tracing::info!(auth_index = %index, account = %account.id, model = %model, status = outcome.status, "test request sent");
    let mut answer = json!({"status": outcome.status, "latency_ms": outcome.latency_ms, "model": outcome.model});
    if let Some(text) = outcome.answer {
        answer["answer"] = json!(text);
    }
    if let Some(error) = outcome.error {
        answer["error"] = json!(error);
    }
    Ok(Json(answer))
}
