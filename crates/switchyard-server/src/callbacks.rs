//! Main-port OAuth callback routes (`/anthropic/callback`, `/codex/callback`, `/google/callback`,
//! ...): where a browser lands when the provider's redirect is forwarded to this server. The
//! route segment is looked up in the provider registry, so new providers need nothing here.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use switchyard_providers::Registry;

use crate::{ApiError, AppState};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/{route}/callback", get(callback))
}

async fn callback(
    State(state): State<Arc<AppState>>,
    Path(route): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(login) = Registry::new(&state.config.get()).login_for_callback_route(&route) else {
        return ApiError::not_found("not found").into_response();
    };
    switchyard_auth::login::deliver_callback_page(state.engine.sessions(), &login, query.as_deref().unwrap_or(""))
}
