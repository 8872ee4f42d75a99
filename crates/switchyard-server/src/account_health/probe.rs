//! One cheap real request through the public pipeline, pinned to one account (no failover):
//! what `POST /test-request` sends and what a request-probe inspection sends. It is routed,
//! translated, executed, reported to the router and the health book, counted and logged like
//! any client request.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::http::HeaderMap;
use serde_json::{Value, json};
use switchyard_dialects::Dialect;
use switchyard_health::FailureSignal;
use switchyard_providers::executor::Operation;

use crate::AppState;
use crate::proxy::{ClientCall, Pin, RequestTag};

/// Small enough to cost nothing, large enough for every upstream to accept.
const MAX_TOKENS: u32 = 8;
const PROMPT: &str = "Reply with the single word: ok";
/// The probe's answer is tiny; an error body a few KiB.
const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// How the probe went.
#[derive(Clone, Debug)]
pub(crate) struct ProbeOutcome {
    /// The status the pipeline answered with (the upstream's for upstream errors).
    pub status: u16,
    pub latency_ms: u64,
    pub model: String,
    /// The answer's text (trimmed), on success.
    pub answer: Option<String>,
    /// The error's message (redacted), on failure.
    pub error: Option<String>,
    /// The failed attempt's error as the upstream gave it, for classification.
    pub failure: Option<FailureSignal>,
}

/// Sends the probe to `account_id` for `model`. `endpoint` names the caller in request logs.
pub(crate) async fn send(
    state: &AppState,
    account_id: &str,
    model: &str,
    include_disabled: bool,
    endpoint: &str,
) -> ProbeOutcome {
    let body = json!({
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": MAX_TOKENS,
        "stream": false,
    });
    let failure = Arc::new(Mutex::new(None));
    let pin = Pin { account_id: account_id.to_owned(), include_disabled, failure: failure.clone() };
    let tag = RequestTag::management("POST", endpoint);
    let call = ClientCall::new(Dialect::OpenAiChat, Operation::Generate, HeaderMap::new()).tagged(tag).pinned(pin);
    let started = Instant::now();
    let response = crate::proxy::serve(state, call, Body::from(body.to_string())).await;
    let status = response.status().as_u16();
    // Reading the body to its end also ends the request's log line and usage record.
    let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES).await.unwrap_or_default();
    let latency_ms = started.elapsed().as_millis() as u64;
    let parsed: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let (answer, error) = if (200..300).contains(&status) {
        let text = parsed["choices"][0]["message"]["content"].as_str().map(|t| t.trim().to_owned());
        (Some(text.unwrap_or_default()), None)
    } else {
        let message = parsed["error"]["message"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes[..bytes.len().min(512)]).into_owned());
        (None, Some(switchyard_redact::text(&message)))
    };
    let failure = failure.lock().unwrap_or_else(|e| e.into_inner()).take();
    ProbeOutcome { status, latency_ms, model: model.to_owned(), answer, error, failure }
}
