//! Shared set-up for the executor tests: a mock upstream, a context pointing at it, requests,
//! credentials, and reading a response body to its end.

#![allow(dead_code)] // each test crate uses its own subset

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use switchyard_auth::Credential;
use switchyard_dialects::sse::{SseEvent, SseParser};
use switchyard_providers::executor::{ExecContext, ExecError, Operation, UpstreamRequest, UpstreamResponse};
use switchyard_testkit::RecordedRequest;
use switchyard_testkit::upstream::MockUpstream;

/// An access token / key that must never show up in errors.
pub const SECRET: &str = "sk-planted-SECRET-0123456789abcdef";

pub struct Env {
    pub mock: MockUpstream,
    pub ctx: ExecContext,
}

impl Env {
    /// A mock and a context whose `upstream-urls` point every executor at it.
    pub async fn start() -> Env {
        Env::with_yaml("").await
    }

    /// Same, with more config appended.
    pub async fn with_yaml(extra: &str) -> Env {
        let mock = MockUpstream::start().await;
        let ctx = context(&format!("{}{extra}", mock.upstream_urls_yaml()));
        Env { mock, ctx }
    }
}

pub fn context(yaml: &str) -> ExecContext {
    context_with_client(yaml, reqwest::Client::new())
}

pub fn context_with_client(yaml: &str, http: reqwest::Client) -> ExecContext {
    let config = switchyard_config::parse(yaml).expect("test config parses").config;
    ExecContext { http, config: Arc::new(config) }
}

pub fn request(operation: Operation, model: &str, stream: bool, body: &Value) -> UpstreamRequest {
    UpstreamRequest {
        operation,
        dialect: None,
        model: model.into(),
        stream,
        body: Bytes::from(body.to_string()),
        client_headers: HeaderMap::new(),
    }
}

pub fn with_client_headers(mut request: UpstreamRequest, headers: &[(&'static str, &str)]) -> UpstreamRequest {
    for (name, value) in headers {
        request.client_headers.append(*name, HeaderValue::from_str(value).unwrap());
    }
    request
}

/// An OAuth credential of `file_type` with extra string fields.
pub fn credential(file_type: &str, fields: &[(&str, &str)]) -> Credential {
    let mut credential = Credential::new(file_type);
    for (key, value) in fields {
        credential.fields_mut().insert((*key).into(), Value::String((*value).into()));
    }
    credential
}

/// A body read to its end: the bytes, and the error it ended with, if any. Panics if anything
/// follows an error (a broken stream must end with it).
pub async fn drain(response: UpstreamResponse) -> (Vec<u8>, Option<ExecError>) {
    let items: Vec<Result<Bytes, ExecError>> = response.body.collect().await;
    let mut bytes = Vec::new();
    let mut error = None;
    for item in items {
        assert!(error.is_none(), "an item followed the error {error:?}");
        match item {
            Ok(chunk) => bytes.extend_from_slice(&chunk),
            Err(e) => error = Some(e),
        }
    }
    (bytes, error)
}

pub async fn body_ok(response: UpstreamResponse) -> Vec<u8> {
    let (bytes, error) = drain(response).await;
    assert!(error.is_none(), "body ended with {error:?}");
    bytes
}

pub fn events(bytes: &[u8]) -> Vec<SseEvent> {
    let mut parser = SseParser::new();
    let mut events = parser.feed(bytes);
    events.extend(parser.finish());
    events
}

pub fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(bytes)))
}

pub fn header<'a>(request: &'a RecordedRequest, name: &str) -> &'a str {
    request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header"))
}

/// A loopback port nothing listens on.
pub async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Asserts an error says nothing secret.
pub fn assert_no_secret(error: &ExecError) {
    for text in [error.to_string(), format!("{error:?}")] {
        assert!(!text.contains(SECRET), "secret leaked: {text}");
        assert!(!text.contains("SECRET-0123"), "part of the secret leaked: {text}");
    }
}

pub const SHORT: Duration = Duration::from_millis(300);
