//! The public API end to end: real router on a loopback port, OAuth accounts in the auth dir,
//! and mock upstreams replaying recorded traffic.

mod common;

use std::time::{Duration, Instant};

use common::{Options, TestServer, json, start_with};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_testkit::upstream::{Fault, MockUpstream, RequiredAuth};

/// A Claude OAuth account whose token is valid for a day.
fn claude_file(name: &str, token: &str) -> (String, Value) {
    let expired = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    (
        format!("claude-{name}@example.com.json"),
        json!({"type": "claude", "email": format!("{name}@example.com"), "access_token": token,
               "refresh_token": format!("rt-{name}"), "expired": expired}),
    )
}

async fn gateway(upstream: &MockUpstream, files: &[(String, Value)], extra: &str) -> TestServer {
    let server =
        start_with(Options { extra_yaml: &format!("{}{extra}", upstream.upstream_urls_yaml()), ..Default::default() })
            .await;
    for (name, body) in files {
        std::fs::write(server.file(name), serde_json::to_vec(body).unwrap()).unwrap();
    }
    server.state.store.rescan().await.unwrap();
    server.state.sync_accounts();
    server
}

fn fixture_text(file: &str) -> String {
    let body: Value = serde_json::from_slice(&switchyard_testkit::fixtures::read(file)).unwrap();
    body["content"].as_array().unwrap().iter().filter_map(|b| b["text"].as_str()).collect()
}

const MODEL: &str = "claude-sonnet-4-5";

#[tokio::test]
async fn openai_client_is_served_by_a_claude_account() {
    let upstream = MockUpstream::start().await;
    upstream.require_auth(Some(RequiredAuth::Bearer("tok-a".into())));
    let server = gateway(&upstream, &[claude_file("a", "tok-a")], "").await;

    let request = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, body) =
        json(server.client.post(server.url("/v1/chat/completions")).json(&request).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    let expected = fixture_text("anthropic-messages/anthropic-text.json");
    assert_eq!(body["choices"][0]["message"]["content"], expected);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["usage"]["prompt_tokens"].as_i64().unwrap() > 0);

    // The upstream saw an Anthropic request with the upstream model and the OAuth headers.
    let seen = upstream.last_request();
    assert!(seen.path.ends_with("/v1/messages"), "{}", seen.path);
    let sent = seen.json();
    assert_eq!(sent["model"], MODEL);
    assert_eq!(sent["messages"][0]["role"], "user");
    assert!(sent["max_tokens"].as_i64().is_some());
}

#[tokio::test]
async fn anthropic_client_is_passed_through_byte_for_byte() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("a", "tok-a")], "").await;
    let request =
        json!({"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}], "x_unknown": 1});
    let response = server.client.post(server.url("/v1/messages")).json(&request).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), switchyard_testkit::fixtures::read("anthropic-messages/anthropic-text.json").as_slice());
    // Unknown fields reach the upstream.
    assert_eq!(upstream.last_request().json()["x_unknown"], 1);
}

/// Reads an SSE response fully and returns its `data:` payloads.
async fn sse_payloads(response: reqwest::Response) -> Vec<String> {
    let text = response.text().await.unwrap();
    text.lines().filter_map(|l| l.strip_prefix("data: ")).map(str::to_owned).collect()
}

#[tokio::test]
async fn streams_are_translated_event_by_event() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("a", "tok-a")], "").await;
    let request = json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let response = server.client.post(server.url("/v1/chat/completions")).json(&request).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let payloads = sse_payloads(response).await;
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"));
    let text: String = payloads
        .iter()
        .filter(|p| p.as_str() != "[DONE]")
        .map(|p| serde_json::from_str::<Value>(p).unwrap())
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    let expected: String = switchyard_testkit::fixtures::chunks("anthropic-messages/anthropic-text.chunks.txt")
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter_map(|event| event["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, expected);
}

#[tokio::test]
async fn a_mid_stream_disconnect_reaches_the_client_as_a_stream_error() {
    let upstream = MockUpstream::start().await;
    upstream.drop_streams_after(Some(3));
    let server = gateway(&upstream, &[claude_file("a", "tok-a")], "").await;

    // Translated: OpenAI client over the Anthropic upstream.
    let request = json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let response = server.client.post(server.url("/v1/chat/completions")).json(&request).send().await.unwrap();
    let payloads = sse_payloads(response).await;
    let last: Value = serde_json::from_str(payloads.last().unwrap()).unwrap();
    assert!(last["error"]["message"].is_string(), "last event must be an error: {payloads:?}");
    assert!(!payloads.iter().any(|p| p == "[DONE]"), "a broken stream must not end normally");

    // Pass-through: Anthropic client, Anthropic upstream.
    let request =
        json!({"model": MODEL, "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let response = server.client.post(server.url("/v1/messages")).json(&request).send().await.unwrap();
    let text = response.text().await.unwrap();
    assert!(text.contains("event: error"), "{text}");
    assert!(!text.contains("message_stop"), "{text}");
}

#[tokio::test]
async fn a_429_moves_to_the_next_account_and_the_first_shows_its_cooldown() {
    let upstream = MockUpstream::start().await;
    let server = gateway(
        &upstream,
        &[claude_file("a", "tok-a"), claude_file("b", "tok-b")],
        "routing:\n  strategy: fill-first\n",
    )
    .await;
    upstream.push_fault(Fault::status(429).retry_after(120));

    let request = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, body) =
        json(server.client.post(server.url("/v1/chat/completions")).json(&request).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let bearers: Vec<String> = upstream
        .requests()
        .iter()
        .filter_map(|r| r.headers.get("authorization").map(|v| v.to_str().unwrap().to_owned()))
        .collect();
    assert_eq!(bearers, vec!["Bearer tok-a".to_owned(), "Bearer tok-b".to_owned()]);

    let (_, listing) = json(server.mgmt(Method::GET, "/auth-files").send().await.unwrap()).await;
    let first = listing["files"].as_array().unwrap().iter().find(|f| f["name"] == "claude-a@example.com.json").unwrap();
    assert_eq!(first["status"], "error", "{first}");
    assert!(first["next_retry_after"].is_string(), "{first}");
    assert_eq!(first["cooldowns"][0]["reason"], "quota", "{first}");
    assert!(first["cooldowns"][0]["retry_after_seconds"].as_u64().unwrap() > 100);
    let second =
        listing["files"].as_array().unwrap().iter().find(|f| f["name"] == "claude-b@example.com.json").unwrap();
    assert_eq!(second["status"], "active");

    // The next request goes straight to the second account.
    let before = upstream.requests().len();
    let (status, _) =
        json(server.client.post(server.url("/v1/chat/completions")).json(&request).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(upstream.requests().len(), before + 1);
}

#[tokio::test]
async fn all_accounts_cooling_is_a_429_model_cooldown_with_retry_after() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("a", "tok-a")], "").await;
    upstream.push_fault(Fault::status(429).retry_after(90));
    let request = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, _) =
        json(server.client.post(server.url("/v1/chat/completions")).json(&request).send().await.unwrap()).await;
    assert_eq!(status, 429, "the upstream's own 429 is relayed when no account is left");

    let response = server.client.post(server.url("/v1/chat/completions")).json(&request).send().await.unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=90).contains(&retry_after), "{retry_after}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_cooldown", "{body}");
}

#[tokio::test]
async fn bad_requests_get_a_400_in_the_callers_dialect_naming_the_field() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("a", "tok-a")], "").await;

    let (status, body) = json(
        server
            .client
            .post(server.url("/v1/chat/completions"))
            .json(&json!({"model": MODEL, "messages": "not a list"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("messages"), "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");

    let (status, body) =
        json(server.client.post(server.url("/v1/chat/completions")).body("{not json").send().await.unwrap()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].is_string());

    let (status, body) =
        json(server.client.post(server.url("/v1/messages")).json(&json!({"messages": []})).send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(body["type"], "error", "Anthropic error shape: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("model"), "{body}");

    let (status, body) = json(
        server
            .client
            .post(server.url("/v1/chat/completions"))
            .json(&json!({"model": "no-such-model", "messages": []}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("no-such-model"));
    assert!(upstream.requests().is_empty(), "bad requests never reach the upstream");
}

#[tokio::test]
async fn gemini_client_is_served_by_a_claude_account() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("a", "tok-a")], "").await;
    let request = json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]});
    let (status, body) = json(
        server
            .client
            .post(server.url(&format!("/v1beta/models/{MODEL}:generateContent")))
            .json(&request)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let text = body["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap();
    assert_eq!(text, fixture_text("anthropic-messages/anthropic-text.json"));
}

#[tokio::test]
async fn client_keys_are_required_when_configured() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("a", "tok-a")], "api-keys: [client-1]\n").await;
    let request = json!({"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, body) =
        json(server.client.post(server.url("/v1/messages")).json(&request).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert_eq!(body["type"], "error", "{body}");
    let (status, _) = json(
        server
            .client
            .post(server.url("/v1/messages"))
            .header("x-api-key", "wrong")
            .json(&request)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    for builder in [
        server.client.post(server.url("/v1/messages")).header("x-api-key", "client-1"),
        server.client.post(server.url("/v1/messages")).bearer_auth("client-1"),
        server.client.post(server.url("/v1/messages?key=client-1")),
    ] {
        let response = builder.json(&request).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    let (status, body) = json(server.client.get(server.url("/v1beta/models")).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert!(body["error"]["status"].is_string(), "Gemini error shape: {body}");
}

#[tokio::test]
async fn model_lists_in_each_dialect() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("a", "tok-a")], "").await;
    let (_, openai) = json(server.client.get(server.url("/v1/models")).send().await.unwrap()).await;
    assert_eq!(openai["object"], "list");
    assert!(openai["data"].as_array().unwrap().iter().any(|m| m["id"] == MODEL), "{openai}");
    let (_, anthropic) = json(
        server.client.get(server.url("/v1/models")).header("anthropic-version", "2023-06-01").send().await.unwrap(),
    )
    .await;
    assert!(anthropic["data"].as_array().unwrap().iter().any(|m| m["type"] == "model" && m["id"] == MODEL));
    let (_, gemini) = json(server.client.get(server.url("/v1beta/models")).send().await.unwrap()).await;
    assert!(gemini["models"].as_array().unwrap().iter().any(|m| m["name"] == format!("models/{MODEL}")));
}

#[tokio::test]
async fn an_expiring_token_is_refreshed_before_use() {
    use switchyard_testkit::claude::{MockClaudeAuth, PROFILE_PATH, TOKEN_PATH};
    let auth = MockClaudeAuth::start().await;
    let tokens = auth.issue_tokens();
    let (access, refresh) = (tokens.access_token.clone(), tokens.refresh_token.clone());
    let upstream = MockUpstream::start().await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(5)).to_rfc3339();
    let file = (
        "claude-r@example.com.json".to_owned(),
        json!({"type": "claude", "email": "r@example.com", "access_token": access, "refresh_token": refresh, "expired": soon}),
    );
    // Both mocks serve the `claude` provider: the API from one, OAuth from the other.
    let yaml = format!(
        "upstream-urls:\n  claude:\n    api: {}\n    token: {}\n    profile: {}\n",
        upstream.base(),
        auth.url(TOKEN_PATH),
        auth.url(PROFILE_PATH)
    );
    let server = start_with(Options { extra_yaml: &yaml, ..Default::default() }).await;
    std::fs::write(server.file(&file.0), serde_json::to_vec(&file.1).unwrap()).unwrap();
    server.state.store.rescan().await.unwrap();
    server.state.sync_accounts();
    let request = json!({"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]});
    let started = Instant::now();
    let response = server.client.post(server.url("/v1/messages")).json(&request).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(auth.refresh_calls(), 1, "the token expiring within the skew is refreshed once");
    let used = upstream.last_request().headers["authorization"].to_str().unwrap().to_owned();
    assert_ne!(used, format!("Bearer {access}"), "the fresh token is used");
}

#[tokio::test]
async fn an_upstream_that_hangs_up_is_a_502_naming_the_break() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("a", "tok-a")], "").await;
    upstream.push_fault(Fault::hangup());
    let request = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, body) =
        json(server.client.post(server.url("/v1/chat/completions")).json(&request).send().await.unwrap()).await;
    assert_eq!(status, 502, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("upstream"), "{body}");
}

#[tokio::test]
async fn config_api_keys_serve_requests_and_list_their_cooldowns() {
    let upstream = MockUpstream::start().await;
    upstream.require_auth(Some(RequiredAuth::XApiKey("sk-ant-config-key-1".into())));
    let server = gateway(&upstream, &[], "claude-api-key:\n  - api-key: sk-ant-config-key-1\n").await;
    let request = json!({"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]});
    let response = server.client.post(server.url("/v1/messages")).json(&request).send().await.unwrap();
    assert_eq!(response.status(), 200);

    upstream.push_fault(Fault::status(429).retry_after(60));
    let response = server.client.post(server.url("/v1/messages")).json(&request).send().await.unwrap();
    assert_eq!(response.status(), 429);

    let (_, listing) = json(server.mgmt(Method::GET, "/auth-files").send().await.unwrap()).await;
    let entry = listing["files"].as_array().unwrap().iter().find(|f| f["source"] == "memory").expect("API key listed");
    assert_eq!(entry["name"], "claude-api-key[0]");
    assert_eq!(entry["account_type"], "api_key");
    assert_eq!(entry["runtime_only"], true);
    assert_eq!(entry["status"], "error", "{entry}");
    assert_eq!(entry["cooldowns"][0]["reason"], "quota", "{entry}");
    assert_eq!(entry["auth_index"].as_str().unwrap().len(), 16);
    assert!(!listing.to_string().contains("sk-ant-config-key-1"), "the key must not be listed");
    let index = entry["auth_index"].as_str().unwrap();
    let (_, filtered) =
        json(server.mgmt(Method::GET, &format!("/auth-files?auth_index={index}")).send().await.unwrap()).await;
    assert_eq!(filtered["files"].as_array().unwrap().len(), 1);
}
