//! The Claude executor against the mock Anthropic API: wire (URL, headers, betas, body),
//! fixture replay byte for byte, faults.

mod exec_support;

use std::time::{Duration, Instant};

use exec_support::*;
use futures::StreamExt;
use serde_json::json;
use switchyard_dialects::Dialect;
use switchyard_providers::exec::api_key_executor;
use switchyard_providers::executor::{ExecError, Executor, Operation, UpstreamAuth};
use switchyard_providers::{Provider, by_id};
use switchyard_testkit::fixtures;
use switchyard_testkit::upstream::{Api, Fault, RequiredAuth, sse_events};

fn executor() -> std::sync::Arc<dyn Executor> {
    by_id("claude").and_then(|p| p.executor()).expect("Claude has an executor")
}

fn body() -> serde_json::Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]})
}

fn stream_body() -> serde_json::Value {
    let mut body = body();
    body["stream"] = json!(true);
    body
}

#[tokio::test]
async fn oauth_request_carries_claude_code_wire_and_body_comes_back_verbatim() {
    let env = Env::start().await;
    env.mock.require_auth(Some(RequiredAuth::Bearer(SECRET.into())));
    let cred = credential("claude", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let request = with_client_headers(
        request(Operation::Generate, "claude-sonnet-4-5", false, &body()),
        &[
            ("anthropic-beta", "context-1m-2025-08-07,oauth-2025-04-20"),
            ("authorization", "Bearer client-key-must-not-travel"),
            ("x-claude-code-session-id", "sess-1"),
        ],
    );
    let sent = request.body.clone();
    let executor = executor();
    assert_eq!(executor.dialect(), Dialect::AnthropicMessages);
    let response = executor.execute(&env.ctx, &auth, request).await.expect("executes");
    assert_eq!(response.status, 200);
    assert_eq!(body_ok(response).await, fixtures::read("anthropic-messages/anthropic-text.json"));

    let seen = env.mock.last_request();
    assert_eq!((seen.path.as_str(), seen.query.as_deref()), ("/v1/messages", Some("beta=true")));
    assert_eq!(seen.body, sent, "the body goes out untouched");
    assert_eq!(header(&seen, "authorization"), format!("Bearer {SECRET}"));
    assert!(seen.headers.get("x-api-key").is_none());
    let betas = header(&seen, "anthropic-beta");
    assert!(betas.starts_with("claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14,"), "{betas}");
    assert!(betas.contains("fallback-credit-2026-06-01"), "{betas}");
    assert!(betas.ends_with(",context-1m-2025-08-07"), "client betas follow, once: {betas}");
    assert_eq!(betas.matches("oauth-2025-04-20").count(), 1);
    for (name, value) in [
        ("anthropic-version", "2023-06-01"),
        ("anthropic-dangerous-direct-browser-access", "true"),
        ("x-app", "cli"),
        ("user-agent", "claude-cli/2.1.220 (external, cli)"),
        ("x-stainless-lang", "js"),
        ("x-stainless-runtime", "node"),
        ("x-stainless-runtime-version", "v26.3.0"),
        ("x-stainless-package-version", "0.94.0"),
        ("x-stainless-retry-count", "0"),
        ("x-stainless-timeout", "600"),
        ("x-stainless-os", "MacOS"),
        ("x-stainless-arch", "arm64"),
        ("content-type", "application/json"),
        ("x-claude-code-session-id", "sess-1"),
    ] {
        assert_eq!(header(&seen, name), value, "{name}");
    }
}

#[tokio::test]
async fn stream_passes_through_byte_for_byte() {
    let env = Env::start().await;
    let file = "anthropic-messages/anthropic-clear-thinking.1.chunks.txt";
    env.mock.replay(Api::Anthropic, file);
    let cred = credential("claude", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        executor().execute(&env.ctx, &auth, request(Operation::Generate, "m", true, &stream_body())).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.headers.get("content-type").unwrap(), "text/event-stream; charset=utf-8");
    for hop in ["transfer-encoding", "connection"] {
        assert!(response.headers.get(hop).is_none(), "{hop} describes our hop only");
    }
    let bytes = body_ok(response).await;
    assert_eq!(bytes, sse_events(Api::Anthropic, file).concat());
    // Independently of the mock's framing: every event is the fixture line, named by its type.
    let events = events(&bytes);
    let chunks = fixtures::chunks(file);
    assert_eq!(events.len(), chunks.len());
    for (event, chunk) in events.iter().zip(&chunks) {
        assert_eq!(&event.data, chunk);
        assert_eq!(event.event.as_deref(), json(chunk.as_bytes())["type"].as_str());
    }
}

#[tokio::test]
async fn stream_events_arrive_as_they_are_sent() {
    let env = Env::start().await;
    let file = "anthropic-messages/anthropic-refusal.chunks.txt";
    env.mock.replay(Api::Anthropic, file);
    env.mock.set_event_delay(Duration::from_millis(400));
    let cred = credential("claude", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        executor().execute(&env.ctx, &auth, request(Operation::Generate, "m", true, &stream_body())).await.unwrap();
    let started = Instant::now();
    let mut body = response.body;
    let first = body.next().await.expect("a first chunk").expect("not an error");
    assert_eq!(first, sse_events(Api::Anthropic, file)[0], "the first event alone, not the whole stream");
    assert!(started.elapsed() < Duration::from_millis(400), "first event was held back");
    let rest: Vec<_> = body.collect().await;
    assert_eq!(rest.len(), fixtures::chunks(file).len() - 1);
}

#[tokio::test]
async fn count_tokens_uses_its_own_path_and_beta_profile() {
    let env = Env::start().await;
    let cred = credential("claude", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        executor().execute(&env.ctx, &auth, request(Operation::CountTokens, "m", false, &body())).await.unwrap();
    assert_eq!(response.status, 200);
    assert!(json(&body_ok(response).await)["input_tokens"].as_u64().unwrap() > 0);
    let seen = env.mock.last_request();
    assert_eq!((seen.path.as_str(), seen.query.as_deref()), ("/v1/messages/count_tokens", Some("beta=true")));
    assert_eq!(
        header(&seen, "anthropic-beta"),
        "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14,context-management-2025-06-27,\
         token-counting-2024-11-01"
    );
    assert!(seen.headers.get("x-stainless-timeout").is_none(), "Claude Code sends none on count_tokens");
}

#[tokio::test]
async fn api_key_uses_x_api_key_on_anthropic_and_bearer_on_a_custom_base() {
    let env = Env::start().await;
    let executor = api_key_executor("claude-api-key").expect("claude-api-key has an executor");
    let extra = vec![("X-Team".to_owned(), "blue".to_owned())];

    env.mock.require_auth(Some(RequiredAuth::XApiKey(SECRET.into())));
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: None, headers: &extra };
    let response = executor.execute(&env.ctx, &auth, request(Operation::Generate, "m", false, &body())).await.unwrap();
    assert_eq!(response.status, 200);
    let seen = env.mock.last_request();
    assert_eq!(header(&seen, "x-api-key"), SECRET);
    assert!(seen.headers.get("authorization").is_none());
    assert_eq!(header(&seen, "x-team"), "blue");
    let betas = header(&seen, "anthropic-beta");
    assert!(betas.starts_with("claude-code-20250219,interleaved-thinking"), "{betas}");
    assert!(!betas.contains("oauth-2025-04-20") && !betas.contains("fallback-credit"), "{betas}");

    // Its own base-url (not api.anthropic.com): an Anthropic-compatible gateway wants Bearer.
    env.mock.require_auth(Some(RequiredAuth::Bearer(SECRET.into())));
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: Some(env.mock.base()), headers: &[] };
    let response = executor.execute(&env.ctx, &auth, request(Operation::Generate, "m", false, &body())).await.unwrap();
    assert_eq!(response.status, 200);
    let seen = env.mock.last_request();
    assert_eq!(header(&seen, "authorization"), format!("Bearer {SECRET}"));
    assert!(seen.headers.get("x-api-key").is_none());
}

#[tokio::test]
async fn wrong_credential_gets_the_upstream_401_not_an_error() {
    let env = Env::start().await;
    env.mock.require_auth(Some(RequiredAuth::Bearer("the-right-token".into())));
    let cred = credential("claude", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        executor().execute(&env.ctx, &auth, request(Operation::Generate, "m", false, &body())).await.unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(json(&body_ok(response).await)["error"]["type"], "authentication_error");
}

#[tokio::test]
async fn mid_stream_disconnect_ends_with_interrupted() {
    let env = Env::start().await;
    env.mock.drop_streams_after(Some(3));
    let cred = credential("claude", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        executor().execute(&env.ctx, &auth, request(Operation::Generate, "m", true, &stream_body())).await.unwrap();
    let (bytes, error) = drain(response).await;
    let sent = sse_events(Api::Anthropic, Api::Anthropic.default_fixtures().1);
    assert_eq!(bytes, sent[..3].concat(), "what arrived before the cut is passed on");
    let error = error.expect("a cut stream ends in an error");
    assert!(matches!(error, ExecError::Interrupted(_)), "{error:?}");
    assert_no_secret(&error);
}

#[tokio::test]
async fn rate_limit_passes_through_with_retry_after() {
    let env = Env::start().await;
    env.mock.push_fault(Fault::status(429).retry_after(17));
    let cred = credential("claude", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        executor().execute(&env.ctx, &auth, request(Operation::Generate, "m", true, &stream_body())).await.unwrap();
    assert_eq!(response.status, 429);
    assert_eq!(response.headers.get("retry-after").unwrap(), "17");
    assert_eq!(json(&body_ok(response).await)["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn connection_refused_is_connect_and_names_no_token() {
    let port = closed_port().await;
    let ctx = context(&format!("upstream-urls:\n  claude:\n    api: http://127.0.0.1:{port}\n"));
    let cred = credential("claude", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let error = executor().execute(&ctx, &auth, request(Operation::Generate, "m", false, &body())).await.err().unwrap();
    assert!(matches!(error, ExecError::Connect(_)), "{error:?}");
    assert_no_secret(&error);
}

#[tokio::test]
async fn slow_headers_time_out_as_timeout() {
    let mock = switchyard_testkit::upstream::MockUpstream::start().await;
    mock.set_header_delay(Duration::from_secs(3));
    let http = reqwest::Client::builder().timeout(SHORT).build().unwrap();
    let ctx = context_with_client(&mock.upstream_urls_yaml(), http);
    let cred = credential("claude", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let error = executor().execute(&ctx, &auth, request(Operation::Generate, "m", false, &body())).await.err().unwrap();
    assert_eq!(error, ExecError::Timeout);
}

#[tokio::test]
async fn header_defaults_come_from_config() {
    let env = Env::with_yaml(
        "claude-header-defaults:\n  user-agent: claude-cli/9.9.9 (external, cli)\n  package-version: 1.2.3\n  timeout: 900\n",
    )
    .await;
    let cred = credential("claude", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    executor().execute(&env.ctx, &auth, request(Operation::Generate, "m", false, &body())).await.unwrap();
    let seen = env.mock.last_request();
    assert_eq!(header(&seen, "user-agent"), "claude-cli/9.9.9 (external, cli)");
    assert_eq!(header(&seen, "x-stainless-package-version"), "1.2.3");
    assert_eq!(header(&seen, "x-stainless-timeout"), "900");
}

#[test]
fn oauth_providers_and_api_key_sections_have_executors() {
    for (id, dialect) in [
        ("claude", Dialect::AnthropicMessages),
        ("codex", Dialect::OpenAiResponses),
        ("gemini-cli", Dialect::Gemini),
        ("antigravity", Dialect::Gemini),
        ("xai", Dialect::OpenAiResponses),
    ] {
        let provider: &dyn Provider = by_id(id).unwrap();
        assert_eq!(provider.executor().map(|e| e.dialect()), Some(dialect), "{id}");
    }
    for (section, dialect) in [
        ("claude-api-key", Dialect::AnthropicMessages),
        ("codex-api-key", Dialect::OpenAiResponses),
        ("gemini-api-key", Dialect::Gemini),
        ("vertex-api-key", Dialect::Gemini),
        ("openai-compatibility", Dialect::OpenAiChat),
        ("xai-api-key", Dialect::OpenAiResponses),
    ] {
        assert_eq!(api_key_executor(section).map(|e| e.dialect()), Some(dialect), "{section}");
    }
}
