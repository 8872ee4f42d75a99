//! DNS-rebinding protection: a request addressed to a `Host` the server does not answer to (see
//! [`crate::browser_policy::host_allowed`]) is refused with 403 and a JSON error before routing.
//! A page on an attacker's domain that re-resolves to 127.0.0.1 still sends its own domain as
//! `Host`, so it never reaches the API. `/healthz` is exempt (it tells nothing, and container
//! probes address it by pod IP); a request without any `Host` (no browser sends one) passes.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::browser_policy::{BoundAddr, host_allowed, request_host};
use crate::{ApiError, AppState};

pub async fn require_allowed_host(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    let Some(host) = request_host(request.headers(), request.uri()) else {
        return next.run(request).await;
    };
    let bound = request.extensions().get::<BoundAddr>().map(|b| b.0);
    if host_allowed(&state.config.get(), host, bound) {
        return next.run(request).await;
    }
    // The Host value is not logged or echoed: it is whatever the caller chose.
    tracing::debug!("refused a request addressed to a host not in allowed-hosts");
    ApiError::new(StatusCode::FORBIDDEN, "host not allowed: add the name this server is reached by to allowed-hosts")
        .into_response()
}
