//! The Kimi executor against the mock Kimi coding API (`/coding` on a loopback port): both
//! native dialects, the Bearer token the mock issued, the `X-Msh-*` identity, pass-through of
//! streams and errors.

mod exec_support;

use std::sync::Arc;

use exec_support::*;
use serde_json::{Value, json};
use switchyard_dialects::Dialect;
use switchyard_providers::by_id;
use switchyard_providers::executor::{ExecError, Executor, Operation, UpstreamAuth, UpstreamRequest};
use switchyard_testkit::fixtures;
use switchyard_testkit::kimi::{IDENTITY_HEADERS, MockKimi};
use switchyard_testkit::upstream::{Api, Fault, sse_events};

const DEVICE_ID: &str = "0b7a55e2-0f5d-4b7e-9a51-6c4f6b1b2c3d";

fn executor() -> Arc<dyn Executor> {
    by_id("kimi").and_then(|p| p.executor()).expect("Kimi has an executor")
}

struct KimiEnv {
    mock: MockKimi,
    ctx: switchyard_providers::executor::ExecContext,
    token: String,
    credential: switchyard_auth::Credential,
}

async fn env() -> KimiEnv {
    let mock = MockKimi::start().await;
    let ctx = context(&mock.upstream_urls_yaml());
    let token = mock.issue_tokens().access_token;
    let credential = credential("kimi", &[("device_id", DEVICE_ID)]);
    KimiEnv { mock, ctx, token, credential }
}

impl KimiEnv {
    fn auth(&self) -> UpstreamAuth<'_> {
        UpstreamAuth::OAuth { access_token: &self.token, credential: &self.credential }
    }
}

fn chat(stream: bool) -> Value {
    json!({"model": "kimi-k2", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
}

fn messages(stream: bool) -> Value {
    json!({"model": "kimi-k2", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}], "stream": stream})
}

fn anthropic(operation: Operation, stream: bool) -> UpstreamRequest {
    let mut request = request(operation, "kimi-k2", stream, &messages(stream));
    request.dialect = Some(Dialect::AnthropicMessages);
    request
}

#[test]
fn openai_chat_is_the_dialect_and_anthropic_messages_is_taken_natively() {
    let executor = executor();
    assert_eq!(executor.dialect(), Dialect::OpenAiChat);
    assert!(executor.accepts(Dialect::OpenAiChat));
    assert!(executor.accepts(Dialect::AnthropicMessages));
    assert!(!executor.accepts(Dialect::OpenAiResponses));
    assert!(!executor.accepts(Dialect::Gemini));
}

#[tokio::test]
async fn openai_stream_goes_to_coding_chat_completions_with_the_kimi_identity() {
    let e = env().await;
    let file = "openai-chat/deepseek-tool-call.chunks.txt";
    e.mock.api().replay(Api::OpenAiChat, file);
    let request = with_client_headers(
        request(Operation::Generate, "kimi-k2", true, &chat(true)),
        &[("authorization", "Bearer client-key"), ("x-api-key", "client-key")],
    );
    let sent = request.body.clone();
    let response = executor().execute(&e.ctx, &e.auth(), request).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(body_ok(response).await, sse_events(Api::OpenAiChat, file).concat(), "byte for byte");

    let seen = e.mock.api().last_request();
    assert_eq!(seen.path, "/coding/v1/chat/completions");
    assert_eq!(seen.body, sent);
    assert_eq!(header(&seen, "authorization"), format!("Bearer {}", e.token));
    assert_eq!(header(&seen, "accept"), "text/event-stream");
    assert_eq!(header(&seen, "content-type"), "application/json");
    assert_eq!(header(&seen, "user-agent"), format!("CLIProxyAPI/{}", env!("CARGO_PKG_VERSION")));
    assert_eq!(header(&seen, "x-msh-device-id"), DEVICE_ID);
    assert_eq!(header(&seen, "x-msh-platform"), "CLIProxyAPI");
    for name in IDENTITY_HEADERS {
        assert!(!header(&seen, name).is_empty(), "{name}");
    }
    assert!(seen.headers.get("x-api-key").is_none(), "client credentials are never forwarded");
}

#[tokio::test]
async fn openai_non_stream_passes_the_body_through() {
    let e = env().await;
    let response =
        executor().execute(&e.ctx, &e.auth(), request(Operation::Generate, "kimi-k2", false, &chat(false))).await;
    let response = response.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(body_ok(response).await, fixtures::read(Api::OpenAiChat.default_fixtures().0));
    assert_eq!(header(&e.mock.api().last_request(), "accept"), "application/json");
}

#[tokio::test]
async fn anthropic_requests_go_to_coding_messages_untranslated() {
    let e = env().await;
    let file = "anthropic-messages/anthropic-clear-thinking.1.chunks.txt";
    e.mock.api().replay(Api::Anthropic, file);
    let request = with_client_headers(
        anthropic(Operation::Generate, true),
        &[("anthropic-beta", "interleaved-thinking-2025-05-14"), ("anthropic-version", "2023-06-01")],
    );
    let sent = request.body.clone();
    let response = executor().execute(&e.ctx, &e.auth(), request).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(body_ok(response).await, sse_events(Api::Anthropic, file).concat());

    let seen = e.mock.api().last_request();
    assert_eq!(seen.path, "/coding/v1/messages");
    assert_eq!(seen.body, sent, "the Claude client's body is sent as it came");
    assert_eq!(header(&seen, "authorization"), format!("Bearer {}", e.token));
    assert_eq!(header(&seen, "anthropic-version"), "2023-06-01");
    assert_eq!(header(&seen, "anthropic-beta"), "interleaved-thinking-2025-05-14");
    assert_eq!(header(&seen, "x-msh-device-id"), DEVICE_ID);

    // Non-stream, and without client headers: the default API version is sent.
    let response = executor().execute(&e.ctx, &e.auth(), anthropic(Operation::Generate, false)).await.unwrap();
    assert_eq!(body_ok(response).await, fixtures::read(Api::Anthropic.default_fixtures().0));
    let seen = e.mock.api().last_request();
    assert_eq!(header(&seen, "anthropic-version"), "2023-06-01");
    assert!(seen.headers.get("anthropic-beta").is_none());
}

#[tokio::test]
async fn anthropic_token_counts_are_asked_upstream_and_openai_ones_are_unsupported() {
    let e = env().await;
    let response = executor().execute(&e.ctx, &e.auth(), anthropic(Operation::CountTokens, false)).await.unwrap();
    assert_eq!(response.status, 200);
    assert!(json(&body_ok(response).await)["input_tokens"].as_u64().unwrap() > 0);
    assert_eq!(e.mock.api().last_request().path, "/coding/v1/messages/count_tokens");

    let count = request(Operation::CountTokens, "kimi-k2", false, &chat(false));
    let error = executor().execute(&e.ctx, &e.auth(), count).await.err();
    assert!(matches!(error, Some(ExecError::Unsupported(_))), "{error:?}");
    assert_eq!(e.mock.api().requests().len(), 1);
}

#[tokio::test]
async fn a_token_the_auth_server_no_longer_honours_is_a_401_answer() {
    let e = env().await;
    e.mock.revoke_all();
    let response =
        executor().execute(&e.ctx, &e.auth(), request(Operation::Generate, "kimi-k2", false, &chat(false))).await;
    let response = response.unwrap();
    assert_eq!(response.status, 401, "the pipeline reads the status and refreshes");
    let body = json(&body_ok(response).await);
    assert_eq!(body["error"]["code"], "invalid_api_key", "{body}");

    let response = executor().execute(&e.ctx, &e.auth(), anthropic(Operation::Generate, false)).await.unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(json(&body_ok(response).await)["error"]["type"], "authentication_error");
}

#[tokio::test]
async fn upstream_errors_and_cut_streams_reach_the_caller_as_they_are() {
    let e = env().await;
    e.mock.api().push_fault(Fault::status(429).retry_after(30));
    let response =
        executor().execute(&e.ctx, &e.auth(), request(Operation::Generate, "kimi-k2", true, &chat(true))).await;
    let response = response.unwrap();
    assert_eq!(response.status, 429);
    assert_eq!(response.headers.get("retry-after").unwrap(), "30");

    e.mock.api().drop_streams_after(Some(3));
    let response =
        executor().execute(&e.ctx, &e.auth(), request(Operation::Generate, "kimi-k2", true, &chat(true))).await;
    let (bytes, error) = drain(response.unwrap()).await;
    let sent = sse_events(Api::OpenAiChat, Api::OpenAiChat.default_fixtures().1);
    assert_eq!(bytes, sent[..3].concat());
    assert!(matches!(error, Some(ExecError::Interrupted(_))), "{error:?}");
}

#[tokio::test]
async fn configured_api_url_wins_and_connection_failures_name_no_token() {
    let port = closed_port().await;
    let ctx = context(&format!("upstream-urls:\n  kimi:\n    api: http://127.0.0.1:{port}/coding\n"));
    let credential = credential("kimi", &[("device_id", DEVICE_ID)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &credential };
    let error =
        executor().execute(&ctx, &auth, request(Operation::Generate, "kimi-k2", false, &chat(false))).await.err();
    let error = error.unwrap();
    assert!(matches!(error, ExecError::Connect(_)), "{error:?}");
    assert!(error.to_string().contains(&port.to_string()), "{error}");
    assert_no_secret(&error);

    let stored = UpstreamAuth::Stored { credential: &credential };
    let error = executor().execute(&ctx, &stored, request(Operation::Generate, "m", false, &chat(false))).await.err();
    assert!(matches!(error, Some(ExecError::Credential(_))), "{error:?}");
}
