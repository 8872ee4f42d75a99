//! Inspection over the management API:
//! - `POST /inspection[?auth_index=][&provider=][&wait=true]` starts a run now (202 with its id,
//!   or with `wait` the finished run); 409 while one runs.
//! - `GET /inspection` → the last run (state, counts, per-account results); before any run
//!   `{"state": "none", "results": []}` (200, so the panel can tell the feature exists from a
//!   server without it, and its probe leaves no failed request in the browser console).
//! - `POST /inspection/apply` `{"items": [{"auth_index", "action"?}]}` (or one item as the
//!   body) applies chosen recommendations of the last run: `action` defaults to the run's.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use switchyard_health::inspection::Recommendation;

use super::auth_files::{query_value, read_json_object};
use super::credential_index::auth_index_field;
use crate::account_health::inspection::{self, ApplyError, Choice, Filter, Trigger};
use crate::error::ok_with;
use crate::{ApiError, AppState};

fn flag(query: &Option<String>, key: &str) -> bool {
    query_value(query, key).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

pub async fn start(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Result<Response, ApiError> {
    let non_blank = |key| query_value(&query, key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let filter = Filter { auth_index: non_blank("auth_index"), provider: non_blank("provider") };
    let Some((id, handle)) = inspection::start(state.clone(), filter, Trigger::Manual) else {
        return Err(ApiError::conflict("an inspection is already running"));
    };
    if flag(&query, "wait") {
        let run = handle.await.map_err(|_| ApiError::internal("the inspection failed"))?;
        return Ok(Json(serde_json::to_value(run).unwrap_or_default()).into_response());
    }
    Ok((StatusCode::ACCEPTED, Json(json!({"status": "running", "id": id}))).into_response())
}

pub async fn last(State(state): State<Arc<AppState>>) -> Json<Value> {
    match state.health.runs.last() {
        Some(run) => Json(serde_json::to_value(run).unwrap_or_default()),
        None => Json(json!({"state": "none", "results": []})),
    }
}

fn choice(item: &Map<String, Value>, at: &str) -> Result<Choice, ApiError> {
    let auth_index =
        auth_index_field(item)?.ok_or_else(|| ApiError::bad_request(format!("{at}auth_index is required")))?;
    let action = match item.get("action") {
        None | Some(Value::Null) => None,
        Some(Value::String(name)) => Some(Recommendation::parse(name.trim()).ok_or_else(|| {
            ApiError::bad_request(format!("{at}action must be one of keep, delete, reauth, disable, enable"))
        })?),
        Some(_) => return Err(ApiError::bad_request(format!("{at}action must be a string"))),
    };
    Ok(Choice { auth_index, action })
}

pub async fn apply(State(state): State<Arc<AppState>>, body: Body) -> Result<Json<Value>, ApiError> {
    let body = read_json_object(body).await?;
    let choices = match body.get("items") {
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let item =
                    item.as_object().ok_or_else(|| ApiError::bad_request(format!("items[{i}] must be an object")))?;
                choice(item, &format!("items[{i}]."))
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(Value::Array(_)) => return Err(ApiError::bad_request("items must not be empty")),
        Some(_) => return Err(ApiError::bad_request("items must be an array")),
        None => vec![choice(&body, "")?],
    };
    match inspection::apply(&state, choices).await {
        Ok(results) => Ok(ok_with(json!({ "results": results }))),
        Err(ApplyError::NoRun) => Err(ApiError::conflict("no inspection has run yet")),
        Err(ApplyError::Running) => Err(ApiError::conflict("an inspection is running; apply after it finished")),
    }
}
