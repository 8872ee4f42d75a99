//! The Qwen Code executor against the mock upstream: Qwen Code CLI headers, the base URL from
//! the account's `resource_url` versus a configured `upstream-urls.qwen.api`, and the stream
//! quirks (usage requested, placeholder tool for tool-less requests) checked in the body the
//! mock received.

mod exec_support;

use exec_support::*;
use serde_json::{Value, json};
use switchyard_auth::Credential;
use switchyard_providers::by_id;
use switchyard_providers::exec::qwen::PLACEHOLDER_TOOL;
use switchyard_providers::executor::{ExecError, Executor, Operation, UpstreamAuth};
use switchyard_testkit::fixtures;
use switchyard_testkit::upstream::{Api, Fault, MockUpstream, RequiredAuth, sse_events};

const MODEL: &str = "qwen3-coder-plus";

fn executor() -> std::sync::Arc<dyn Executor> {
    by_id("qwen").and_then(|p| p.executor()).expect("Qwen has an executor")
}

fn body(stream: bool) -> Value {
    json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": stream})
}

/// A Qwen account whose `resource_url` points at `mock` (with a scheme, so plain HTTP works).
fn account(mock: &MockUpstream) -> Credential {
    credential("qwen", &[("access_token", SECRET), ("resource_url", mock.base())])
}

async fn send(
    ctx: &switchyard_providers::executor::ExecContext,
    credential: &Credential,
    body: &Value,
    stream: bool,
) -> switchyard_providers::executor::UpstreamResponse {
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential };
    executor().execute(ctx, &auth, request(Operation::Generate, MODEL, stream, body)).await.expect("answered")
}

#[tokio::test]
async fn requests_go_to_the_accounts_resource_url_with_the_qwen_code_headers() {
    let mock = MockUpstream::start().await;
    mock.require_auth(Some(RequiredAuth::Bearer(SECRET.into())));
    let ctx = context("");
    let response = send(&ctx, &account(&mock), &body(false), false).await;
    assert_eq!(response.status, 200);
    assert_eq!(body_ok(response).await, fixtures::read(Api::OpenAiChat.default_fixtures().0));

    let seen = mock.last_request();
    assert_eq!(seen.path, "/v1/chat/completions");
    for (name, value) in [
        ("authorization", format!("Bearer {SECRET}").as_str()),
        ("content-type", "application/json"),
        ("accept", "application/json"),
        ("user-agent", "QwenCode/0.14.2 (darwin; arm64)"),
        ("x-dashscope-authtype", "qwen-oauth"),
        ("x-dashscope-cachecontrol", "enable"),
        ("x-dashscope-useragent", "QwenCode/0.14.2 (darwin; arm64)"),
        ("x-stainless-lang", "js"),
        ("x-stainless-runtime", "node"),
        ("x-stainless-package-version", "5.11.0"),
    ] {
        assert_eq!(header(&seen, name), value, "{name}");
    }
    let sent = seen.json();
    assert_eq!(sent["stream"], false);
    assert!(sent.get("tools").is_none(), "non-stream requests get no placeholder tool");
}

#[tokio::test]
async fn a_configured_api_wins_over_the_resource_url() {
    let account_host = MockUpstream::start().await;
    let configured = MockUpstream::start().await;
    let ctx = context(&format!("upstream-urls:\n  qwen:\n    api: {}/compatible/v1\n", configured.base()));
    assert_eq!(send(&ctx, &account(&account_host), &body(false), false).await.status, 200);
    assert_eq!(configured.last_request().path, "/compatible/v1/chat/completions");
    assert!(account_host.requests().is_empty());
}

#[tokio::test]
async fn without_resource_url_the_default_portal_base_is_used() {
    // portal.qwen.ai resolves to a closed loopback port: the error names the URL tried.
    let port = closed_port().await;
    let http = reqwest::Client::builder()
        .resolve("portal.qwen.ai", std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap();
    let ctx = context_with_client("", http);
    let credential = credential("qwen", &[("access_token", SECRET)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &credential };
    let error = executor().execute(&ctx, &auth, request(Operation::Generate, MODEL, false, &body(false))).await;
    let error = error.err().expect("nothing listens");
    assert!(
        matches!(&error, ExecError::Connect(text) if text.contains("https://portal.qwen.ai/v1/chat/completions")),
        "{error:?}"
    );
    assert_no_secret(&error);
}

#[tokio::test]
async fn a_tool_less_stream_gets_usage_and_the_placeholder_tool_and_passes_through() {
    let mock = MockUpstream::start().await;
    let file = "openai-chat/issue-19789-live-usage.chunks.txt";
    mock.replay(Api::OpenAiChat, file);
    let ctx = context("");
    for tools in [None, Some(json!([]))] {
        let mut request_body = body(true);
        if let Some(tools) = tools {
            request_body["tools"] = tools;
        }
        let response = send(&ctx, &account(&mock), &request_body, true).await;
        assert_eq!(response.status, 200);
        assert_eq!(body_ok(response).await, sse_events(Api::OpenAiChat, file).concat());
        let seen = mock.last_request();
        assert_eq!(header(&seen, "accept"), "text/event-stream");
        let sent = seen.json();
        assert_eq!(sent["stream"], true);
        assert_eq!(sent["stream_options"], json!({"include_usage": true}));
        let tools = sent["tools"].as_array().expect("tools were added");
        assert_eq!(tools.len(), 1);
        assert_eq!(tools[0]["type"], "function");
        assert_eq!(tools[0]["function"]["name"], PLACEHOLDER_TOOL);
        assert_eq!(tools[0]["function"]["parameters"]["type"], "object");
    }
}

#[tokio::test]
async fn a_stream_with_tools_keeps_them_as_they_are() {
    let mock = MockUpstream::start().await;
    let ctx = context("");
    let tool = json!({"type": "function", "function": {"name": "read_file", "description": "Reads a file",
                      "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}});
    let mut request_body = body(true);
    request_body["tools"] = json!([tool.clone()]);
    assert_eq!(send(&ctx, &account(&mock), &request_body, true).await.status, 200);
    assert_eq!(mock.last_request().json()["tools"], json!([tool]));
}

#[tokio::test]
async fn upstream_refusals_pass_through_for_the_pipeline_to_handle() {
    let mock = MockUpstream::start().await;
    mock.push_fault(Fault::status(401));
    let ctx = context("");
    let response = send(&ctx, &account(&mock), &body(false), false).await;
    assert_eq!(response.status, 401);
    let error = json(&body_ok(response).await);
    assert_eq!(error["error"]["code"], "invalid_api_key");
}

#[tokio::test]
async fn token_counting_and_api_keys_are_refused() {
    let ctx = context("");
    let credential = credential("qwen", &[("access_token", SECRET)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &credential };
    let executor = executor();
    let count = executor.execute(&ctx, &auth, request(Operation::CountTokens, MODEL, false, &body(false))).await;
    assert!(matches!(count.err(), Some(ExecError::Unsupported(_))));
    let key = UpstreamAuth::ApiKey { key: SECRET, base_url: None, headers: &[] };
    let error = executor.execute(&ctx, &key, request(Operation::Generate, MODEL, false, &body(false))).await;
    let error = error.err().expect("refused");
    assert!(matches!(error, ExecError::Credential(_)));
    assert_no_secret(&error);
}
