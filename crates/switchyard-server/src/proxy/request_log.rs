//! The request id every public API answer carries (`X-Request-Id`), and the one structured
//! `info` line per proxied request (target `switchyard::request`) that says who served it:
//! client key alias, dialects, models, provider, `auth_index`, attempts, status, timings, bytes.
//! A streamed request's line is written when its body ends (or the client goes away).

use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use switchyard_dialects::Dialect;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Set on each public API request by [`tag_request`]; the client-key check adds the alias.
#[derive(Clone, Debug)]
pub struct RequestTag {
    pub id: String,
    /// `key-<n>` (1-based position in `api-keys`), `none` when no keys are configured: never
    /// the key itself.
    pub client_key: String,
}

/// A fresh random id (128 bits, hex).
fn new_request_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Tags the request with an id and returns it as `X-Request-Id` on every answer, errors too.
pub async fn tag_request(mut request: Request, next: Next) -> Response {
    let id = new_request_id();
    request.extensions_mut().insert(RequestTag { id: id.clone(), client_key: "none".into() });
    let mut response = next.run(request).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

pub fn dialect_name(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::OpenAiChat => "openai-chat",
        Dialect::OpenAiResponses => "openai-responses",
        Dialect::AnthropicMessages => "anthropic-messages",
        Dialect::Gemini => "gemini",
    }
}

/// What one request did; logged once, when dropped.
pub struct RequestLog {
    pub tag: RequestTag,
    pub dialect_in: Dialect,
    pub dialect_out: Option<Dialect>,
    pub requested_model: String,
    pub upstream_model: String,
    pub provider: String,
    pub auth_index: String,
    /// Accounts tried.
    pub attempts: u32,
    pub status: u16,
    pub stream: bool,
    pub started: Instant,
    pub first_byte: Option<Duration>,
    pub bytes_out: u64,
    /// Why the request failed (or its stream broke off); already scrubbed.
    pub error: Option<String>,
}

impl RequestLog {
    pub fn new(tag: RequestTag, dialect_in: Dialect) -> Self {
        Self {
            tag,
            dialect_in,
            dialect_out: None,
            requested_model: String::new(),
            upstream_model: String::new(),
            provider: String::new(),
            auth_index: String::new(),
            attempts: 0,
            status: 0,
            stream: false,
            started: Instant::now(),
            first_byte: None,
            bytes_out: 0,
            error: None,
        }
    }

    /// Counts bytes sent to the client; the first ones set the time to first byte.
    pub fn sent(&mut self, bytes: usize) {
        if bytes > 0 && self.first_byte.is_none() {
            self.first_byte = Some(self.started.elapsed());
        }
        self.bytes_out += bytes as u64;
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        let latency = self.started.elapsed();
        tracing::info!(
            target: "switchyard::request",
            request_id = %self.tag.id,
            client_key = %self.tag.client_key,
            dialect_in = dialect_name(self.dialect_in),
            dialect_out = self.dialect_out.map_or("", dialect_name),
            model = %self.requested_model,
            upstream_model = %self.upstream_model,
            provider = %self.provider,
            auth_index = %self.auth_index,
            attempts = self.attempts,
            status = self.status,
            stream = self.stream,
            latency_ms = latency.as_millis() as u64,
            ttfb_ms = self.first_byte.unwrap_or(latency).as_millis() as u64,
            bytes_out = self.bytes_out,
            error = self.error.as_deref().unwrap_or(""),
            "request"
        );
    }
}
