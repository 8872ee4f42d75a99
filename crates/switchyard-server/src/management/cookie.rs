//! `POST /v0/management/<login>-auth-url` with `{"cookie": "..."}`: a cookie login, answered
//! synchronously (CPA's iFlow cookie import, providers-extra §4.6). The login is the provider's
//! cookie method from the registry, so any provider with one gets this route; the cookie is
//! never logged or echoed.
//!
//! 200 `{"status":"ok","saved_path","email","expired","type"}`; 400 for a missing or unusable
//! cookie and for the upstream's refusal (its text); 409 with `existing_file` when the account's
//! cookie is already stored; every error body is `{"status":"error","error":...}`.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use switchyard_auth::login::{Login, LoginError, LoginOptions};
use switchyard_providers::{LoginKind, Registry};

use super::auth_files::read_limited;
use crate::error::ok_with;
use crate::{ApiError, AppState};

/// A cookie header is a few KiB at most.
const MAX_COOKIE_BODY_BYTES: usize = 64 * 1024;

fn error(status: StatusCode, message: impl Into<String>) -> ApiError {
    ApiError::new(status, message).with("status", "error")
}

pub async fn start(
    State(state): State<Arc<AppState>>,
    Path(segment): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let Some(name) = segment.strip_suffix("-auth-url").filter(|n| !n.is_empty()) else {
        return Err(ApiError::not_found("not found"));
    };
    let registry = Registry::new(&state.config.get());
    let cookie_login = registry.methods(name).into_iter().find_map(|method| match (method.kind, method.login) {
        (LoginKind::Cookie, Login::Import(login)) => Some(login),
        _ => None,
    });
    let Some(login) = cookie_login else {
        return Err(if registry.has_login(name) {
            error(StatusCode::BAD_REQUEST, format!("{name} has no cookie login"))
        } else {
            error(StatusCode::NOT_FOUND, format!("unknown provider `{name}`"))
        });
    };

    let bytes = read_limited(body, MAX_COOKIE_BODY_BYTES).await.map_err(|e| e.with("status", "error"))?;
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(error(StatusCode::BAD_REQUEST, "invalid body: expected a JSON object"));
    };
    let cookie = fields.get("cookie").and_then(Value::as_str).map(str::trim).unwrap_or_default();
    if cookie.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "cookie is required"));
    }
    let options = LoginOptions::from([("cookie".to_owned(), cookie.to_owned())]);

    match state.engine.import(&*login, None, &options).await {
        Ok(imported) => {
            tracing::info!(provider = name, file = %imported.file_name, "cookie login saved");
            let credential = &imported.credential;
            Ok(ok_with(json!({
                "saved_path": state.store.dir().join(&imported.file_name).display().to_string(),
                "email": credential.email().unwrap_or_default(),
                "expired": credential.str_field("expired").unwrap_or_default(),
                "type": credential.file_type().unwrap_or(name),
            })))
        }
        Err(LoginError::Duplicate { existing_file }) => {
            tracing::info!(provider = name, existing = %existing_file, "cookie login refused: account already stored");
            Err(error(StatusCode::CONFLICT, "duplicate BXAuth found").with("existing_file", existing_file))
        }
        Err(failure) => {
            tracing::warn!(provider = name, error = %failure, "cookie login failed");
            let status = match failure {
                // The cookie itself is unusable, or the upstream said so.
                LoginError::InvalidInput(_) | LoginError::Denied(_) | LoginError::Provider(_) => {
                    StatusCode::BAD_REQUEST
                }
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            Err(error(status, failure.to_string()))
        }
    }
}
