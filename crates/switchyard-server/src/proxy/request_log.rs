//! The request id every public API answer carries (`X-Request-Id`), and the one structured
//! `info` line per proxied request (target `switchyard::request`) that says who served it:
//! client key alias, dialects, models, provider, `auth_index`, attempts, status, timings, bytes.
//! A streamed request's line is written when its body ends (or the client goes away).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use switchyard_dialects::Dialect;

use crate::usage::{RequestSink, TokenTally, sink::Finished};

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Set on each public API request by [`tag_request`]; the client-key check adds the alias.
#[derive(Clone, Debug)]
pub struct RequestTag {
    pub id: String,
    /// `key-<n>` (1-based position in `api-keys`), `none` when no keys are configured: never
    /// the key itself.
    pub client_key: String,
    /// A hash of the key (16 hex chars of its SHA-256), empty without client keys.
    pub client_key_hash: String,
    pub method: String,
    /// The request path (`/v1/chat/completions`), for usage records and request log names.
    pub endpoint: String,
    pub client_ip: String,
}

impl RequestTag {
    /// A request the management API makes itself (test requests, probes): a fresh id, and
    /// `management` for the client key.
    pub fn management(method: &str, endpoint: &str) -> Self {
        Self {
            id: new_request_id(),
            client_key: "management".into(),
            client_key_hash: String::new(),
            method: method.to_owned(),
            endpoint: endpoint.to_owned(),
            client_ip: String::new(),
        }
    }

    /// For calls that did not pass [`tag_request`].
    pub fn untagged() -> Self {
        Self {
            id: String::new(),
            client_key: "none".into(),
            client_key_hash: String::new(),
            method: String::new(),
            endpoint: String::new(),
            client_ip: String::new(),
        }
    }
}

/// A fresh random id (128 bits, hex).
fn new_request_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Tags the request with an id and returns it as `X-Request-Id` on every answer, errors too.
pub async fn tag_request(mut request: Request, next: Next) -> Response {
    let id = new_request_id();
    let client_ip = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let tag = RequestTag {
        id: id.clone(),
        client_key: "none".into(),
        client_key_hash: String::new(),
        method: request.method().to_string(),
        endpoint: request.uri().path().to_owned(),
        client_ip: client_ip.unwrap_or_default(),
    };
    request.extensions_mut().insert(tag);
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
    /// The serving (last tried) account's id: auth file name or config key id.
    pub account: String,
    /// `oauth` or `api_key`.
    pub auth_type: &'static str,
    /// A generation (not a token count).
    pub generate: bool,
    /// Accounts tried.
    pub attempts: u32,
    pub status: u16,
    pub stream: bool,
    pub started: Instant,
    pub first_byte: Option<Duration>,
    pub bytes_out: u64,
    /// Why the request failed (or its stream broke off); already scrubbed.
    pub error: Option<String>,
    /// The upstream's error body (or error event) behind `error`, credentials scrubbed; it
    /// becomes the usage record's failure summary.
    pub upstream_error: Option<String>,
    /// Token counts, reported or to be estimated.
    pub tokens: TokenTally,
    /// Metrics, usage records, the usage queue and request log files.
    pub(crate) sink: Option<RequestSink>,
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
            account: String::new(),
            auth_type: "",
            generate: true,
            attempts: 0,
            status: 0,
            stream: false,
            started: Instant::now(),
            first_byte: None,
            bytes_out: 0,
            error: None,
            upstream_error: None,
            tokens: TokenTally::default(),
            sink: None,
        }
    }

    /// The client went away before the answer ended: status 0 (what it got is not an answer).
    pub fn client_gone(&mut self) {
        let after = if self.bytes_out > 0 { format!(" after {} bytes", self.bytes_out) } else { String::new() };
        self.error = Some(format!("client went away before the answer ended{after}"));
        self.upstream_error = None;
        self.status = 0;
    }

    /// Counts bytes sent to the client; the first ones set the time to first byte.
    pub fn sent(&mut self, bytes: usize) {
        if bytes > 0 && self.first_byte.is_none() {
            self.first_byte = Some(self.started.elapsed());
        }
        self.bytes_out += bytes as u64;
    }

    /// Counts bytes sent to the client and keeps them for the request log.
    pub fn relayed(&mut self, bytes: &[u8]) {
        self.sent(bytes.len());
        if let Some(sink) = &mut self.sink {
            sink.response_bytes(bytes);
        }
    }
}

impl Drop for RequestLog {
    fn drop(&mut self) {
        let latency = self.started.elapsed();
        if self.status == 0 && self.error.is_none() {
            // Dropped before any answer was made: the client went away while we worked.
            self.client_gone();
        }
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
        if let Some(sink) = self.sink.take() {
            sink.finish(Finished {
                request_id: &self.tag.id,
                client_key: &self.tag.client_key,
                client_key_hash: &self.tag.client_key_hash,
                client_ip: &self.tag.client_ip,
                requested_model: &self.requested_model,
                upstream_model: &self.upstream_model,
                provider: &self.provider,
                auth_index: &self.auth_index,
                account: &self.account,
                auth_type: self.auth_type,
                attempts: self.attempts,
                status: self.status,
                generate: self.generate,
                dialect_in: dialect_name(self.dialect_in),
                dialect_out: self.dialect_out.map_or("", dialect_name),
                stream: self.stream,
                latency,
                latency_ms: latency.as_millis() as u64,
                ttfb: self.first_byte,
                ttfb_ms: self.first_byte.map(|t| t.as_millis() as u64),
                tokens: self.tokens.tokens(),
                error: self.error.as_deref(),
                upstream_error: self.upstream_error.as_deref(),
            });
        }
    }
}
