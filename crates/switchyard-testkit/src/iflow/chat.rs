//! `apis.iflow.cn/v1/chat/completions`: OpenAI Chat Completions behind iFlow's request
//! signature. A request needs a live API key as Bearer, `session-id`, `x-iflow-timestamp` (ms,
//! near the server's clock) and `x-iflow-signature` = hex(HMAC-SHA256(key = API key,
//! "<User-Agent>:<session-id>:<timestamp>")), which this mock recomputes on its own. Answers
//! replay the recorded OpenAI Chat fixtures (`data:` lines, then `data: [DONE]`).

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{SIGNATURE_WINDOW_MS, Shared};
use crate::fixtures;
use crate::upstream::{Api, sse_events};

/// hex(HMAC-SHA256(key = `api_key`, "<user_agent>:<session_id>:<timestamp>")), computed the way
/// the iFlow API checks it.
pub fn expected_signature(api_key: &str, user_agent: &str, session_id: &str, timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(api_key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{user_agent}:{session_id}:{timestamp}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn openai_error(status: u16, kind: &str, code: Value, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    (status, axum::Json(body)).into_response()
}

pub(super) async fn completions(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let (json_fixture, stream_fixture) = {
        let mut state = state.lock().expect("mock state lock");
        if let Some(status) = state.chat_faults.pop_front() {
            let kind = if status >= 500 { "server_error" } else { "invalid_request_error" };
            return openai_error(status, kind, Value::Null, "injected fault");
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let Some(key) = header("authorization").strip_prefix("Bearer ").filter(|k| state.live_keys.contains(*k)) else {
            return openai_error(401, "invalid_request_error", json!("invalid_api_key"), "Invalid API key");
        };
        if let Some(problem) = signature_problem(key, &headers) {
            return openai_error(403, "invalid_request_error", json!("invalid_signature"), problem);
        }
        (state.chat_json_fixture.clone(), state.chat_stream_fixture.clone())
    };
    let request = match serde_json::from_slice::<Value>(&body) {
        Ok(request @ Value::Object(_)) => request,
        _ => return openai_error(400, "invalid_request_error", Value::Null, "request body is not a JSON object"),
    };
    if request.get("model").and_then(Value::as_str).is_none_or(str::is_empty) {
        return openai_error(400, "invalid_request_error", Value::Null, "you must provide a model parameter");
    }
    let stream = request.get("stream").and_then(Value::as_bool) == Some(true);
    // Why clients send a placeholder tool: a streamed request with an empty tool list fails.
    if stream && request.get("tools").and_then(Value::as_array).is_some_and(Vec::is_empty) {
        return openai_error(400, "invalid_request_error", Value::Null, "tools must not be empty");
    }
    if !stream {
        return ([(header::CONTENT_TYPE, "application/json")], fixtures::read(&json_fixture)).into_response();
    }
    let events = sse_events(Api::OpenAiChat, &stream_fixture).into_iter().map(Ok::<_, Infallible>);
    let body = Body::from_stream(futures::stream::iter(events));
    ([(header::CONTENT_TYPE, "text/event-stream"), (header::CACHE_CONTROL, "no-cache")], body).into_response()
}

/// What is wrong with the request's signature headers, if anything.
fn signature_problem(api_key: &str, headers: &HeaderMap) -> Option<&'static str> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let (user_agent, session_id, timestamp) = (header("user-agent"), header("session-id"), header("x-iflow-timestamp"));
    if !session_id.starts_with("session-") || session_id.len() <= "session-".len() {
        return Some("session-id is missing");
    }
    let Ok(millis) = timestamp.parse::<i64>() else {
        return Some("x-iflow-timestamp is missing or not milliseconds");
    };
    if (chrono::Utc::now().timestamp_millis() - millis).abs() > SIGNATURE_WINDOW_MS {
        return Some("x-iflow-timestamp is too far from the server's clock");
    }
    if header("x-iflow-signature") != expected_signature(api_key, user_agent, session_id, timestamp) {
        return Some("signature verification failed");
    }
    None
}
