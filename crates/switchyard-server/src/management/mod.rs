//! `/v0/management/...`: CLIProxyAPI-compatible paths and JSON shapes, so existing panels work.

mod api_call;
mod auth_files;
mod auth_listing;
mod call_targets;
mod config_edit;
mod config_routes;
mod cookie;
mod credential_index;
mod guard;
mod health_routes;
mod imports;
mod inspection_routes;
mod latest_version;
mod log_routes;
mod model_definitions;
mod monitoring_routes;
mod oauth;
mod providers;
mod quota;
mod test_request;
mod usage_routes;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};

pub(crate) use auth_listing::{account_auth_index, api_key_auth_index};
pub use guard::{Guard, secret_key_notice};
pub use providers::capabilities_json;

use crate::{ApiError, AppState};

pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/config", get(config_routes::get_config))
        .route("/config.yaml", get(config_routes::get_yaml).put(config_routes::put_yaml))
        .route("/auth-files", get(auth_listing::list).post(auth_files::upload).delete(auth_files::delete))
        .route("/auth-files/download", get(auth_files::download))
        .route("/auth-files/status", patch(auth_files::set_status))
        .route("/auth-files/fields", patch(auth_files::patch_fields))
        .route("/auth-files/models", get(auth_files::models))
        .route("/auth-files/refresh", post(auth_files::refresh))
        .route("/get-auth-status", get(oauth::status))
        .route("/oauth-session", delete(oauth::cancel))
        .route("/providers", get(providers::list))
        // calls (issue 8): model catalogues, cooldown reset, server-side API calls, release check.
        .route("/model-definitions/{channel}", get(model_definitions::list))
        .route("/reset-quota", post(quota::reset))
        // quota (issue 10): the providers' quota endpoints, read on demand or on a schedule.
        .route("/quota", get(quota::list))
        .route("/quota/refresh", post(quota::refresh))
        .route("/api-call", post(api_call::call))
        .route("/latest-version", get(latest_version::latest))
        // health (issue 10): account health from evidence, inspection, pinned test requests.
        .route("/health", get(health_routes::health))
        .route("/inspection", get(inspection_routes::last).post(inspection_routes::start))
        .route("/inspection/apply", post(inspection_routes::apply))
        .route("/test-request", post(test_request::send))
        // usage: counters, usage queue, log files, request and error logs (issue 8, deliverable 3).
        .route("/requests", get(monitoring_routes::list))
        .route("/requests/aggregate", get(monitoring_routes::aggregate))
        .route("/requests/failures", get(monitoring_routes::failures))
        .route("/requests/export", get(monitoring_routes::export))
        .route("/api-key-usage", get(usage_routes::api_key_usage))
        .route("/usage-queue", get(usage_routes::usage_queue))
        .route("/logs", get(log_routes::get_logs).delete(log_routes::delete_logs))
        .route("/request-error-logs", get(log_routes::list_error_logs))
        .route("/request-error-logs/{name}", get(log_routes::get_error_log))
        .route("/request-log-by-id/{id}", get(log_routes::get_request_log))
        // cfgedit (issue 8): config editing endpoints — scalar toggles, key lists, channel maps.
        .merge(config_edit::routes())
        // Imports of every provider with one, CPA's `/vertex/import` included.
        .route("/{name}/import", post(imports::import))
        // `<login>-auth-url` for every provider in the registry; static routes above win.
        .route("/{login_auth_url}", get(oauth::start).post(cookie::start))
        // Handlers enforce their own limits so an oversize body gets a JSON answer, not plain text.
        .layer(DefaultBodyLimit::disable())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_management_key))
        // The pasted-callback routes need no key (the login's `state` is the secret), but like
        // every management route they exist only while management is enabled.
        .merge(
            Router::new()
                .route("/oauth-callback", get(oauth::get_callback).post(oauth::paste_callback))
                .route_layer(middleware::from_fn_with_state(state, require_management_enabled)),
        )
        // An unknown path, or a known one with a method it lacks: JSON 404 (CORS and `OPTIONS`
        // are handled app-wide, see `crate::cors`).
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .layer(middleware::map_response(add_version_headers))
}

async fn not_found() -> ApiError {
    ApiError::not_found("not found")
}

async fn require_management_key(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let config = state.config.get();
    match state.management.authorize(&config, peer.ip(), request.headers()).await {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

async fn require_management_enabled(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if state.management.enabled(&state.config.get()) {
        next.run(request).await
    } else {
        ApiError::not_found("not found").into_response()
    }
}

/// Panels read these to show which server they talk to.
async fn add_version_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let commit = option_env!("SWITCHYARD_COMMIT").unwrap_or("unknown");
    let build_date = option_env!("SWITCHYARD_BUILD_DATE").unwrap_or("unknown");
    for (name, value) in [
        ("x-cpa-version", env!("CARGO_PKG_VERSION")),
        ("x-cpa-commit", commit),
        ("x-cpa-build-date", build_date),
        ("x-cpa-support-plugin", "false"),
    ] {
        headers.insert(HeaderName::from_static(name), HeaderValue::from_static(value));
    }
    response
}
