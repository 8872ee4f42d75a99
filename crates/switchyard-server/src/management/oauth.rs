//! The management OAuth API (CPA §2): start a login, poll its status, cancel it, and deliver a
//! callback URL pasted from a browser on another machine. Providers come from the registry, so a
//! new provider needs no change here.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use serde_json::{Value, json};
use switchyard_auth::login::{
    CallbackParams, Login, LoginError, LoginOptions, SessionStatus, StartOptions, WEB_CALLBACK_TIMEOUT,
    parse_callback_fields, validate_state,
};
use switchyard_providers::Registry;

use super::auth_files::{query_pairs, query_value, read_limited};
use crate::error::ok_with;
use crate::{ApiError, AppState};

const MAX_CALLBACK_BODY_BYTES: usize = 64 * 1024;

fn truthy(value: &str) -> bool {
    matches!(value.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// How a failed start is answered: bad input 400, a taken port 409, the provider's servers
/// failing (its device endpoint down, an answer without a device code, ...) 502 with what they
/// said; anything else is ours, 500.
fn login_error(error: LoginError) -> ApiError {
    match error {
        LoginError::PortInUse { .. } => ApiError::conflict(error.to_string()),
        LoginError::InvalidInput(message) => ApiError::bad_request(message),
        LoginError::Duplicate { .. } => ApiError::conflict(error.to_string()),
        LoginError::Provider(_)
        | LoginError::TokenExchange(_)
        | LoginError::Identity(_)
        | LoginError::Denied(_)
        | LoginError::DeviceCodeExpired => ApiError::new(StatusCode::BAD_GATEWAY, error.to_string()),
        other => ApiError::internal(format!("failed to generate authorization URL: {other}")),
    }
}

/// `GET /v0/management/<login>-auth-url[?method=...][&is_webui=true][&<option>=...]`.
///
/// Browser logins answer CPA's `{"status":"ok","url","state"}`. Device logins request the
/// device code first and add `flow: "device"`, `user_code`, `verification_uri`,
/// `verification_uri_complete`, `expires_in` and `interval`, with `url` the URI to open.
pub async fn start(
    State(state): State<Arc<AppState>>,
    Path(segment): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let Some(name) = segment.strip_suffix("-auth-url").filter(|n| !n.is_empty()) else {
        return Err(ApiError::not_found("not found"));
    };
    let mut is_webui = false;
    let mut method = None;
    let mut options = LoginOptions::new();
    for (key, value) in query_pairs(&query) {
        match key.as_str() {
            "is_webui" => is_webui = truthy(&value),
            "method" => method = Some(value),
            _ => {
                options.insert(key, value);
            }
        }
    }
    let registry = Registry::new(&state.config.get());
    let http = state.global_http().await.map_err(|error| ApiError::new(StatusCode::BAD_GATEWAY, error.to_string()))?;
    let login = registry
        .login(name, method.as_deref(), &http)
        .await
        .map_err(login_error)?
        .ok_or_else(|| ApiError::not_found(format!("unknown provider `{name}`")))?;
    match login {
        Login::Browser(login) => {
            // With `is_webui` the browser runs on this machine: listen on the provider's
            // registered callback port. Otherwise the user pastes the final URL into
            // POST /oauth-callback.
            let options =
                StartOptions { listen: is_webui, callback_port: None, timeout: WEB_CALLBACK_TIMEOUT, options };
            let started = state.engine.start(login, options).await.map_err(login_error)?;
            tracing::info!(provider = name, webui = is_webui, "management login started");
            Ok(ok_with(json!({"url": started.url, "state": started.state})))
        }
        Login::Device(login) => {
            let started = state.engine.start_device(login, options).await.map_err(login_error)?;
            tracing::info!(provider = name, "management device login started");
            Ok(ok_with(json!({
                "url": started.display_uri(),
                "state": started.state,
                "flow": "device",
                "user_code": started.user_code,
                "verification_uri": started.verification_uri,
                "verification_uri_complete": started.verification_uri_complete,
                "expires_in": started.expires_in.as_secs(),
                "interval": started.interval.as_secs(),
            })))
        }
        Login::Import(login) => Err(ApiError::bad_request(format!(
            "{} is added by importing a file, not by a login URL",
            login.spec().name
        ))),
    }
}

/// `GET /v0/management/get-auth-status?state=` → `wait` / `ok` / `error` + message.
pub async fn status(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Result<Json<Value>, ApiError> {
    let Some(login_state) = query_value(&query, "state").filter(|s| !s.is_empty()) else {
        return Ok(ok_with(json!({})));
    };
    validate_state(&login_state).map_err(|_| ApiError::bad_request("invalid state").with("status", "error"))?;
    let Some(info) = state.engine.sessions().info(&login_state) else {
        return Ok(Json(json!({"status": "error", "error": "unknown or expired state"})));
    };
    Ok(Json(match info.status {
        // A device login shows its code again, so a panel that reloads can still show it.
        SessionStatus::Pending => match info.device {
            Some(device) => {
                let left = (device.expires_at - chrono::Utc::now()).num_seconds().max(0);
                json!({
                    "status": "wait",
                    "flow": "device",
                    "user_code": device.user_code,
                    "verification_uri": device.verification_uri,
                    "verification_uri_complete": device.verification_uri_complete,
                    "expires_in": left,
                })
            }
            None => json!({"status": "wait"}),
        },
        SessionStatus::Completed { file_name } => json!({"status": "ok", "file": file_name}),
        SessionStatus::Failed(error) => json!({"status": "error", "error": error.to_string()}),
        SessionStatus::Unknown => json!({"status": "error", "error": "unknown or expired state"}),
    }))
}

/// `DELETE /v0/management/oauth-session?state=` cancels a pending login (nothing is saved).
pub async fn cancel(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Result<Json<Value>, ApiError> {
    let login_state =
        query_value(&query, "state").filter(|s| !s.is_empty()).ok_or_else(|| ApiError::bad_request("missing state"))?;
    validate_state(&login_state).map_err(|_| ApiError::bad_request("invalid state"))?;
    let cancelled = state.engine.sessions().cancel(&login_state);
    Ok(ok_with(json!({"cancelled": cancelled})))
}

fn callback_error(message: impl Into<String>, status: StatusCode) -> ApiError {
    ApiError::new(status, message).with("status", "error")
}

/// The fields of a pasted callback, explicit values first, then those found in `redirect_url`.
struct PastedCallback {
    provider: Option<String>,
    params: CallbackParams,
}

fn pasted_from(fields: &Value) -> Result<PastedCallback, ApiError> {
    let text = |key: &str| fields.get(key).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty());
    let mut params = CallbackParams {
        code: text("code").map(str::to_owned),
        state: text("state").map(str::to_owned),
        error: text("error").or_else(|| text("error_description")).map(str::to_owned),
    };
    if let Some(redirect) = text("redirect_url") {
        let parsed = parse_callback_fields(redirect)
            .map_err(|e| callback_error(format!("invalid redirect_url: {e}"), StatusCode::BAD_REQUEST))?;
        params.code = params.code.or(parsed.code);
        params.state = params.state.or(parsed.state);
        params.error = params.error.or(parsed.error);
    }
    Ok(PastedCallback { provider: text("provider").map(str::to_owned), params })
}

async fn deliver(state: &AppState, pasted: PastedCallback) -> Result<Json<Value>, ApiError> {
    let PastedCallback { provider, params } = pasted;
    let login_state =
        params.state.clone().ok_or_else(|| callback_error("state is required", StatusCode::BAD_REQUEST))?;
    validate_state(&login_state).map_err(|_| callback_error("invalid state", StatusCode::BAD_REQUEST))?;
    if params.code.is_none() && params.error.is_none() {
        return Err(callback_error("code or error is required", StatusCode::BAD_REQUEST));
    }
    let provider = match provider {
        Some(name) => {
            let registry = Registry::new(&state.config.get());
            if !registry.has_login(&name) {
                return Err(callback_error("unsupported provider", StatusCode::BAD_REQUEST));
            }
            let canonical = match state.global_http().await {
                Ok(http) => canonical_login_name(&registry, &name, &http).await,
                Err(_) => None,
            };
            Some(canonical.unwrap_or(name))
        }
        None => None,
    };
    match state.engine.sessions().deliver(&login_state, provider.as_deref(), params) {
        Ok(()) => Ok(ok_with(json!({}))),
        Err(error) => {
            let status = StatusCode::from_u16(error.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            Err(callback_error(error.message(), status))
        }
    }
}

/// `anthropic` for `claude`, and so on: sessions are keyed by the login's own name.
async fn canonical_login_name(registry: &Registry, name: &str, http: &reqwest::Client) -> Option<String> {
    registry.login(name, None, http).await.ok().flatten().map(|login| login.name().to_owned())
}

/// `POST /v0/management/oauth-callback` `{"provider"?, "redirect_url"?, "code"?, "state"?, "error"?}`.
/// Needs no management key: knowing the login's `state` is the proof.
pub async fn paste_callback(State(state): State<Arc<AppState>>, body: Body) -> Result<Json<Value>, ApiError> {
    let bytes = read_limited(body, MAX_CALLBACK_BODY_BYTES).await?;
    let fields: Value =
        serde_json::from_slice(&bytes).map_err(|_| callback_error("invalid body", StatusCode::BAD_REQUEST))?;
    if !fields.is_object() {
        return Err(callback_error("invalid body", StatusCode::BAD_REQUEST));
    }
    deliver(&state, pasted_from(&fields)?).await
}

/// `GET /v0/management/oauth-callback?provider=&code=&state=&error=` (a redirect target).
pub async fn get_callback(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let fields: serde_json::Map<String, Value> =
        query_pairs(&query).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    deliver(&state, pasted_from(&Value::Object(fields))?).await
}
