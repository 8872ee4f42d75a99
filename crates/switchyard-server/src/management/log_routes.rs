//! `GET/DELETE /logs` (the process log files written with `logging-to-file: true`),
//! `GET /request-error-logs[/{name}]` and `GET /request-log-by-id/{id}`, with CPA's shapes and
//! status codes. Every file access runs off the reactor.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchyard_usage::log_reader;
use switchyard_usage::request_files::{self, NameError};

use super::auth_files::query_value;
use crate::{ApiError, AppState};

async fn blocking<T: Send + 'static>(job: impl FnOnce() -> std::io::Result<T> + Send + 'static) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(job).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(ApiError::internal(format!("failed to read log files: {error}"))),
        Err(_) => Err(ApiError::internal("failed to read log files")),
    }
}

fn logging_to_file(state: &AppState) -> Result<PathBuf, ApiError> {
    if !state.config.get().logging_to_file {
        return Err(ApiError::bad_request("logging to file disabled"));
    }
    Ok(state.usage.log_dir.clone())
}

/// `GET /logs?limit=&after=&cursor=` → `{lines, line-count, latest-timestamp, next-cursor[, cursor-reset]}`.
pub async fn get_logs(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Result<Json<Value>, ApiError> {
    let dir = logging_to_file(&state)?;
    let limit = match query_value(&query, "limit").filter(|v| !v.trim().is_empty()) {
        None => 0,
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => return Err(ApiError::bad_request("invalid limit: must be a positive integer")),
        },
    };
    // CPA ignores an `after` that is not a positive integer.
    let after = query_value(&query, "after").and_then(|v| v.trim().parse::<i64>().ok()).filter(|t| *t > 0).unwrap_or(0);
    let cursor = query_value(&query, "cursor");
    let page = blocking(move || log_reader::read_page(&dir, limit, after, cursor.as_deref())).await?;
    Ok(Json(serde_json::to_value(page).unwrap_or_default()))
}

/// `DELETE /logs`: truncates `main.log`, deletes the rotated files.
pub async fn delete_logs(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let dir = logging_to_file(&state)?;
    let removed = blocking(move || log_reader::clear(&dir)).await?;
    Ok(Json(json!({"success": true, "message": "Logs cleared successfully", "removed": removed})))
}

/// `GET /request-error-logs` → `{files: [{name, size, modified}]}`, newest first. With
/// `request-log: true` every request has its own log, and CPA lists no error logs.
pub async fn list_error_logs(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    if state.config.get().request_log {
        return Ok(Json(json!({"files": []})));
    }
    let dir = state.usage.log_dir.clone();
    let files = blocking(move || request_files::error_logs(&dir)).await?;
    let files: Vec<Value> =
        files.into_iter().map(|f| json!({"name": f.name, "size": f.size, "modified": f.modified})).collect();
    Ok(Json(json!({"files": files})))
}

async fn attachment(path: PathBuf, name: String) -> Result<Response, ApiError> {
    match tokio::fs::read(&path).await {
        Ok(bytes) => Ok((
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            ],
            bytes,
        )
            .into_response()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Err(ApiError::not_found("log file not found")),
        Err(error) => Err(ApiError::internal(format!("failed to read log file: {error}"))),
    }
}

/// `GET /request-error-logs/{name}`: the file's bytes; only bare `error-*.log` names.
pub async fn get_error_log(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let path = request_files::error_log_path(&state.usage.log_dir, name.trim()).map_err(|error| match error {
        NameError::Invalid => ApiError::bad_request("invalid log file name"),
        NameError::NotAnErrorLog => ApiError::not_found("log file not found"),
    })?;
    attachment(path, name.trim().to_owned()).await
}

/// `GET /request-log-by-id/{id}`: the request log (or error log) of the request whose
/// `X-Request-Id` is `id`.
pub async fn get_request_log(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = id.trim().to_owned();
    if id.is_empty() {
        return Err(ApiError::bad_request("missing request ID"));
    }
    let dir = state.usage.log_dir.clone();
    let found = tokio::task::spawn_blocking(move || request_files::find_by_id(&dir, &id))
        .await
        .map_err(|_| ApiError::internal("failed to list log directory"))?;
    match found {
        Err(_) => Err(ApiError::bad_request("invalid request ID")),
        Ok(None) => Err(ApiError::not_found("log file not found for the given request ID")),
        Ok(Some(path)) => {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            attachment(path, name).await
        }
    }
}
