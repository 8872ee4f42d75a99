use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// One line per request. The query string is redacted (it can carry `key=`, `code=`, `state=`);
/// headers and bodies are never logged here. Public API answers carry a request id, which ties
/// this line to the `switchyard::request` line of the same request.
pub async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().map(switchyard_redact::query);
    let response = next.run(request).await;
    let request_id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    tracing::debug!(
        target: "switchyard::access",
        %method,
        path,
        request_id,
        query = query.as_deref().unwrap_or(""),
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "request"
    );
    response
}
