use std::sync::Arc;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    // `/` (this banner for API clients, the panel for browsers) is `control_panel`'s.
    Router::new().route("/healthz", get(healthz))
}

/// GET and HEAD (axum answers HEAD from the GET route without a body).
async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub(crate) async fn banner() -> Json<Value> {
    Json(json!({
        "message": "Switchyard API server",
        "version": env!("CARGO_PKG_VERSION"),
        "endpoints": ["/healthz", "/v0/management"],
    }))
}
