//! The public API: OpenAI, Anthropic and Gemini endpoints on the main port. Each request is
//! routed to an account, translated to the account's upstream dialect when it differs from the
//! client's (and passed through untouched when it does not), and answered in the client's dialect.

mod attempt;
mod client_keys;
mod models;
mod pipeline;
mod relay;
mod request_log;
mod scrub;
mod stream_watch;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Path, Request, State};
use axum::http::HeaderMap;
use axum::middleware;
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use switchyard_dialects::Dialect;
use switchyard_providers::executor::Operation;

use crate::AppState;

pub(crate) use pipeline::serve;
pub use pipeline::{ClientCall, Pin};
pub(crate) use request_log::RequestTag;

pub fn routes(state: Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/models", get(models::openai_or_anthropic))
        .route("/v1/chat/completions", dialect_route(Dialect::OpenAiChat, Operation::Generate))
        .route("/v1/responses", dialect_route(Dialect::OpenAiResponses, Operation::Generate))
        .route("/backend-api/codex/responses", dialect_route(Dialect::OpenAiResponses, Operation::Generate))
        .route("/v1/messages", dialect_route(Dialect::AnthropicMessages, Operation::Generate))
        .route("/v1/messages/count_tokens", dialect_route(Dialect::AnthropicMessages, Operation::CountTokens))
        .route("/v1beta/models", get(models::gemini))
        .route("/v1beta/models/{model_action}", post(gemini_action).get(models::gemini_one))
        // google-genai >= 2 defaults to `v1` for the Gemini API: the same actions under /v1.
        .route("/v1/models/{model_action}", post(gemini_action).get(models::one))
        .route_layer(middleware::from_fn_with_state(state, client_keys::require_client_key))
        // Outside the key check, so its refusals carry a request id too.
        .layer(middleware::from_fn(request_log::tag_request))
}

/// `POST` of a dialect whose model and stream flag are in the body.
fn dialect_route(dialect: Dialect, operation: Operation) -> MethodRouter<Arc<AppState>> {
    post(
        move |State(state): State<Arc<AppState>>,
              Extension(tag): Extension<RequestTag>,
              headers: HeaderMap,
              body: Body| async move {
            pipeline::serve(&state, ClientCall::new(dialect, operation, headers).tagged(tag), body).await
        },
    )
}

/// `POST /v1beta/models/<model>:<generateContent|streamGenerateContent|countTokens>` (also under `/v1`).
async fn gemini_action(
    State(state): State<Arc<AppState>>,
    Path(model_action): Path<String>,
    Extension(tag): Extension<RequestTag>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let mut call = ClientCall::new(Dialect::Gemini, Operation::Generate, parts.headers).tagged(tag);
    let Some((model, action)) = model_action.rsplit_once(':') else {
        return call.error(404, "not_found", &format!("unknown method `{model_action}`"));
    };
    call.model = Some(model.trim_start_matches("models/").to_owned());
    match action {
        "generateContent" => {}
        "streamGenerateContent" => call.stream = Some(true),
        "countTokens" => call.operation = Operation::CountTokens,
        other => return call.error(404, "not_found", &format!("unknown method `{other}`")),
    }
    pipeline::serve(&state, call, body).await
}
