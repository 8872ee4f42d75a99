//! `GET /management.html`: where CPA serves its single-file panel. Until Switchyard's own panel
//! lands this is a placeholder page (no scripts, no outside resources) pointing at the API.
//! `remote-management.disable-control-panel: true` turns it off (404), read per request so a
//! hot reload applies at once.

use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::{ApiError, AppState};

static PAGE: LazyLock<String> =
    LazyLock::new(|| include_str!("assets/management.html").replace("{{VERSION}}", env!("CARGO_PKG_VERSION")));

/// Nothing outside the page itself may load; its one inline style block is allowed.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/management.html", get(page))
}

async fn page(State(state): State<Arc<AppState>>) -> Response {
    if state.config.get().remote_management.disable_control_panel {
        return ApiError::not_found("not found").into_response();
    }
    let mut response = PAGE.as_str().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
