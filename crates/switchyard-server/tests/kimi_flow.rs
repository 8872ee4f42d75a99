//! Kimi end to end on a real server: a device login through the management API, then the new
//! account serving OpenAI and Anthropic clients through Kimi's two native dialects (the Claude
//! client's request reaches Kimi untranslated), and an expired token refreshed on use.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{Options, TestServer, json, start_with};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_testkit::fixtures;
use switchyard_testkit::kimi::{DeviceAnswer, MockKimi, TOKEN_PATH};
use switchyard_testkit::upstream::{Api, sse_events};
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(30);

async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Logs in through `GET /kimi-auth-url` and `get-auth-status`; the saved file's name.
async fn device_login(server: &TestServer) -> String {
    let (code, started) = json(server.mgmt(Method::GET, "/kimi-auth-url").send().await.unwrap()).await;
    assert_eq!(code, 200, "{started}");
    let state = started["state"].as_str().unwrap().to_owned();
    let mut file = None;
    until("the device login completes", async || {
        let path = format!("/get-auth-status?state={state}");
        let (_, status) = json(server.mgmt(Method::GET, &path).send().await.unwrap()).await;
        assert_ne!(status["status"], "error", "{status}");
        file = status["file"].as_str().map(str::to_owned);
        file.is_some()
    })
    .await;
    file.unwrap()
}

async fn models(server: &TestServer) -> Vec<String> {
    let (_, body) = json(server.client.get(server.url("/v1/models")).send().await.unwrap()).await;
    body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_device_login_through_management_serves_openai_and_claude_clients() {
    let mock = MockKimi::start().await;
    mock.set_device_timing(900, 1);
    mock.set_answers(&[DeviceAnswer::Pending, DeviceAnswer::Approve]);
    let server = start_with(Options { extra_yaml: &mock.upstream_urls_yaml(), ..Default::default() }).await;
    let _sync = server.state.spawn_account_sync();

    let file = device_login(&server).await;
    let mode = std::fs::metadata(server.file(&file)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let saved: Value = serde_json::from_slice(&server.read(&file)).unwrap();
    let keys: Vec<&str> = saved.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "type",
            "access_token",
            "refresh_token",
            "token_type",
            "scope",
            "device_id",
            "expired",
            "timestamp",
            "disabled"
        ]
    );
    assert_eq!(file, format!("kimi-{}.json", saved["timestamp"]));
    let token = saved["access_token"].as_str().unwrap().to_owned();

    // The new account is served as soon as it is saved.
    until("kimi-k2 is listed", async || models(&server).await.iter().any(|m| m == "kimi-k2")).await;

    // An OpenAI client: its own dialect, passed through to /coding/v1/chat/completions.
    let chat = json!({"model": "kimi-k2", "messages": [{"role": "user", "content": "hi"}]});
    let response = server.client.post(server.url("/v1/chat/completions")).json(&chat).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap(), fixtures::read(Api::OpenAiChat.default_fixtures().0));
    let seen = mock.api().last_request();
    assert_eq!(seen.path, "/coding/v1/chat/completions");
    assert_eq!(seen.headers["authorization"], format!("Bearer {token}"));
    assert_eq!(seen.headers["x-msh-device-id"], saved["device_id"].as_str().unwrap());

    // A Claude client: sent as it came to /coding/v1/messages, streamed back byte for byte.
    let messages = json!({"model": "kimi-k2", "max_tokens": 64, "stream": true,
                          "messages": [{"role": "user", "content": "hi"}]});
    let sent = serde_json::to_vec(&messages).unwrap();
    let response = server
        .client
        .post(server.url("/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(sent.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let streamed = response.bytes().await.unwrap();
    assert_eq!(streamed, sse_events(Api::Anthropic, Api::Anthropic.default_fixtures().1).concat());
    let seen = mock.api().last_request();
    assert_eq!(seen.path, "/coding/v1/messages");
    assert_eq!(seen.body, sent, "no translation on the way to Kimi");
}

#[tokio::test]
async fn an_expired_access_token_is_refreshed_on_use_and_the_file_keeps_its_other_fields() {
    let mock = MockKimi::start().await;
    let server = start_with(Options { extra_yaml: &mock.upstream_urls_yaml(), ..Default::default() }).await;
    let tokens = mock.issue_tokens();
    let file = "kimi-1700000000000.json";
    let planted = json!({
        "type": "kimi", "access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
        "token_type": "Bearer", "scope": "kimi-code", "device_id": "dev-planted",
        "expired": "2020-01-01T00:00:00Z", "timestamp": 1_700_000_000_000_i64, "disabled": false,
        "prefix": "moon", "note": "keep me",
    });
    let credential = switchyard_auth::Credential::from_json(planted.to_string().as_bytes()).unwrap();
    server.state.store.save(file, &credential).await.unwrap();
    server.state.sync_accounts();

    let chat = json!({"model": "moon/kimi-k2", "messages": [{"role": "user", "content": "hi"}]});
    let response = server.client.post(server.url("/v1/chat/completions")).json(&chat).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(mock.refresh_calls(), 1);
    let refresh = mock.requests_to(TOKEN_PATH).pop().unwrap();
    assert_eq!(refresh.headers["x-msh-device-id"], "dev-planted");

    let saved: Value = serde_json::from_slice(&server.read(file)).unwrap();
    assert_ne!(saved["access_token"], planted["access_token"]);
    assert_ne!(saved["refresh_token"], planted["refresh_token"], "Kimi rotates refresh tokens");
    assert_ne!(saved["expired"], planted["expired"]);
    assert!(saved["last_refresh"].is_string());
    for key in ["type", "token_type", "scope", "device_id", "timestamp", "disabled", "prefix", "note"] {
        assert_eq!(saved[key], planted[key], "{key} survives the refresh");
    }
    let seen = mock.api().last_request();
    assert_eq!(seen.headers["authorization"], format!("Bearer {}", saved["access_token"].as_str().unwrap()));
    assert_eq!(seen.json()["model"], "kimi-k2", "the prefix is stripped upstream");
}
