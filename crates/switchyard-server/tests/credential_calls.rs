//! Credential and quota primitives (issue 8, deliverable 2) and the release check:
//! `/model-definitions/{channel}`, `POST /reset-quota`, `POST /api-call` (with `$TOKEN$`, the
//! provider-host allow-list and CPA's answer shape) and `GET /latest-version`, against the real
//! router on loopback and testkit mocks.

mod common;
mod proxy_support;

use axum::routing::get;
use common::{Options, TestServer, json, start_with};
use proxy_support::{MODEL, claude_file, gateway};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_testkit::claude::MockClaudeAuth;
use switchyard_testkit::upstream::{Fault, MockUpstream};

async fn api_call(server: &TestServer, body: Value) -> (u16, Value) {
    json(server.mgmt(Method::POST, "/api-call").json(&body).send().await.unwrap()).await
}

fn auth_index(server: &TestServer, file: &str) -> String {
    server.state.store.get(file).unwrap().auth_index.clone()
}

#[tokio::test]
async fn model_definitions_list_a_channels_catalogue_and_name_the_valid_channels() {
    let server = start_with(Options::default()).await;
    let (status, body) = json(server.mgmt(Method::GET, "/model-definitions/claude").send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["channel"], "claude");
    let ids: Vec<&str> = body["models"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    let catalogue: Vec<&str> = switchyard_providers::by_id("claude").unwrap().models().iter().map(|m| m.id).collect();
    assert_eq!(ids, catalogue);
    let first = &body["models"][0];
    for field in ["display_name", "owned_by", "type"] {
        assert!(first[field].is_string(), "{field} in {first}");
    }

    // A file type names its channel too.
    let (status, body) = json(server.mgmt(Method::GET, "/model-definitions/Gemini").send().await.unwrap()).await;
    assert_eq!((status, body["channel"].as_str()), (200, Some("gemini-cli")));

    let (status, body) = json(server.mgmt(Method::GET, "/model-definitions/nope").send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert!(body["error"].as_str().unwrap().contains("unknown channel `nope`"), "{body}");
    let channels = body["channels"].as_array().unwrap();
    for channel in ["claude", "codex", "antigravity", "gemini-cli", "kimi", "xai", "kiro"] {
        assert!(channels.contains(&json!(channel)), "{channel} missing from {channels:?}");
    }
}

fn chat() -> Value {
    json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]})
}

async fn chat_status(server: &TestServer) -> u16 {
    server.client.post(server.url("/v1/chat/completions")).json(&chat()).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn reset_quota_puts_an_account_cooling_after_a_429_back_into_service() {
    let upstream = MockUpstream::start().await;
    let (file, body) = claude_file("a", "tok-a", json!({}));
    let server = gateway(&upstream, &[(file.clone(), body)], "request-retry: 0\nmax-retry-interval: 0\n").await;
    upstream.push_fault(Fault::status(429).retry_after(3600));
    assert_eq!(chat_status(&server).await, 429);
    // Cooling for an hour: the next request does not even reach the upstream.
    assert_eq!(chat_status(&server).await, 429);
    assert_eq!(upstream.requests().len(), 1);

    let index = auth_index(&server, &file);
    let (status, body) = api_reset(&server, json!({"auth_index": index})).await;
    assert_eq!((status, body), (200, json!({"status": "ok", "auth_index": index})));
    assert_eq!(chat_status(&server).await, 200);
    assert_eq!(upstream.requests().len(), 2);

    let (status, body) = api_reset(&server, json!({"auth_index": "0123456789abcdef"})).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("auth not found")));
    let (status, body) = api_reset(&server, json!({})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("auth_index is required")));
    let (status, body) = api_reset(&server, json!({"auth_index": 5})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("auth_index must be a string")));
}

async fn api_reset(server: &TestServer, body: Value) -> (u16, Value) {
    json(server.mgmt(Method::POST, "/reset-quota").json(&body).send().await.unwrap()).await
}

/// A gateway whose Claude account's token has expired, with the Claude OAuth mock to refresh it
/// and `upstream` as the Claude API.
async fn expired_claude_gateway(auth: &MockClaudeAuth, upstream: &MockUpstream, extra: &str) -> (TestServer, String) {
    let issued = auth.issue_tokens();
    let (file, body) = claude_file(
        "a",
        "stale-token-0001",
        json!({"refresh_token": issued.refresh_token, "expired": "2020-01-01T00:00:00Z"}),
    );
    let yaml = format!("{}    api: {}\n{extra}", auth.upstream_urls_yaml(), upstream.base());
    let server = start_with(Options { extra_yaml: &yaml, ..Default::default() }).await;
    std::fs::write(server.file(&file), serde_json::to_vec(&body).unwrap()).unwrap();
    server.state.store.rescan().await.unwrap();
    server.state.sync_accounts();
    (server, file)
}

#[tokio::test]
async fn api_call_substitutes_the_fresh_token_and_answers_in_cpas_shape() {
    let auth = MockClaudeAuth::start().await;
    let upstream = MockUpstream::start().await;
    let (server, file) = expired_claude_gateway(&auth, &upstream, "").await;
    let data = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}).to_string();
    let (status, body) = api_call(
        &server,
        json!({
            "authIndex": auth_index(&server, &file),
            "method": "POST",
            "url": upstream.url("/v1/messages/count_tokens"),
            "header": {"Authorization": "Bearer $TOKEN$", "Content-Type": "application/json", "anthropic-beta": "oauth-2025-04-20"},
            "data": data,
        }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status_code"], 200);
    assert!(body["body"]["input_tokens"].is_u64(), "a JSON answer comes back as JSON: {body}");
    assert_eq!(body["header"]["Content-Type"][0], "application/json");

    // The stale token was refreshed first; the upstream saw the fresh one.
    assert_eq!(auth.refresh_calls(), 1);
    let saved: Value = serde_json::from_slice(&server.read(&file)).unwrap();
    let fresh = saved["access_token"].as_str().unwrap();
    assert_ne!(fresh, "stale-token-0001");
    let seen = upstream.last_request();
    assert_eq!(seen.headers["authorization"].to_str().unwrap(), format!("Bearer {fresh}"));
    assert_eq!(seen.headers["anthropic-beta"], "oauth-2025-04-20");
    assert_eq!(seen.body, data.as_bytes());
    assert!(!body.to_string().contains(fresh), "the token never comes back: {body}");

    // A non-JSON or error answer keeps its status; unknown route → the mock's 404, as a value.
    let (status, body) = api_call(
        &server,
        json!({"auth_index": auth_index(&server, &file), "method": "GET", "url": upstream.url("/api/oauth/usage")}),
    )
    .await;
    assert_eq!((status, body["status_code"].as_u64()), (200, Some(404)));
    assert!(body["body"]["error"].is_string(), "{body}");
}

#[tokio::test]
async fn api_call_refuses_hosts_outside_the_credentials_provider_and_the_config() {
    let auth = MockClaudeAuth::start().await;
    let upstream = MockUpstream::start().await;
    let elsewhere = MockUpstream::start().await;
    let (server, file) = expired_claude_gateway(&auth, &upstream, "").await;
    let index = auth_index(&server, &file);
    for url in [
        elsewhere.url("/v1/messages/count_tokens"),
        // Same host as the configured upstream, another port.
        format!("http://127.0.0.1:{}/x", elsewhere.base().rsplit(':').next().unwrap()),
        // Another provider's real host.
        "https://chatgpt.com/backend-api/wham/usage".to_owned(),
        "https://attacker.example/collect".to_owned(),
    ] {
        let (status, body) = api_call(
            &server,
            json!({"auth_index": index, "method": "GET", "url": url, "header": {"Authorization": "Bearer $TOKEN$"}}),
        )
        .await;
        assert_eq!(status, 403, "{url}: {body}");
        assert!(body["error"].as_str().unwrap().starts_with("api-call refused"), "{body}");
        assert!(body["allowed"].as_array().unwrap().contains(&json!(upstream.base())), "{body}");
    }
    assert!(elsewhere.requests().is_empty(), "nothing reached the other server");
    assert_eq!(auth.refresh_calls(), 0, "a refused call does not even refresh the token");

    // The Claude provider's own hosts (here: its `upstream-urls.claude.api` override) are fine.
    let (status, body) =
        api_call(&server, json!({"auth_index": index, "method": "GET", "url": upstream.url("/nope")})).await;
    assert_eq!((status, body["status_code"].as_u64()), (200, Some(404)), "{body}");

    // Without an auth_index only hosts the config names; and $TOKEN$ has nothing to stand for.
    let (status, _) = api_call(&server, json!({"method": "GET", "url": upstream.url("/nope")})).await;
    assert_eq!(status, 200);
    let (status, body) =
        api_call(&server, json!({"method": "GET", "url": "https://api.anthropic.com/api/oauth/usage"})).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = api_call(
        &server,
        json!({"method": "GET", "url": upstream.url("/nope"), "header": {"Authorization": "Bearer $TOKEN$"}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("no auth_index"), "{body}");

    // Bad input is named.
    let (status, body) = api_call(&server, json!({"auth_index": index, "url": upstream.url("/nope")})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("method is required")));
    let (status, body) =
        api_call(&server, json!({"auth_index": "ffffffffffffffff", "method": "GET", "url": upstream.url("/")})).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("auth not found")));
}

#[tokio::test]
async fn api_call_with_a_config_key_sends_the_key_through_its_base_url() {
    let upstream = MockUpstream::start().await;
    let key = "sk-config-key-0123456789";
    let yaml = format!("claude-api-key:\n  - api-key: {key}\n    base-url: {}\n", upstream.base());
    let server = start_with(Options { extra_yaml: &yaml, ..Default::default() }).await;
    let (_, listing) = json(server.mgmt(Method::GET, "/auth-files").send().await.unwrap()).await;
    let entry = listing["files"].as_array().unwrap().iter().find(|f| f["runtime_only"] == true).unwrap().clone();
    let (status, body) = api_call(
        &server,
        json!({"auth_index": entry["auth_index"], "method": "POST", "url": upstream.url("/v1/messages/count_tokens"),
               "header": {"x-api-key": "$TOKEN$"}, "data": {"model": MODEL, "messages": []}}),
    )
    .await;
    assert_eq!((status, body["status_code"].as_u64()), (200, Some(200)), "{body}");
    assert_eq!(upstream.last_request().headers["x-api-key"], key);
    assert_eq!(upstream.last_request().json()["model"], MODEL, "a JSON `data` object is sent as JSON");
}

async fn release_feed(answer: Value) -> switchyard_testkit::MockServer {
    let router = axum::Router::new()
        .route("/repos/acme/switchyard/releases/latest", get(move || async move { axum::Json(answer) }));
    switchyard_testkit::serve(router).await
}

async fn latest(server: &TestServer) -> (u16, Value) {
    json(server.mgmt(Method::GET, "/latest-version").send().await.unwrap()).await
}

#[tokio::test]
async fn latest_version_reads_the_feed_and_says_clearly_when_it_cannot() {
    let feed = release_feed(json!({"tag_name": "v9.8.7", "name": "Switchyard 9.8.7"})).await;
    let yaml = format!(
        "upstream-urls:\n  switchyard:\n    releases: {}\n",
        feed.url("/repos/acme/switchyard/releases/latest")
    );
    let server = start_with(Options { extra_yaml: &yaml, ..Default::default() }).await;
    assert_eq!(latest(&server).await, (200, json!({"latest-version": "v9.8.7"})));
    assert_eq!(feed.requests()[0].headers["accept"], "application/vnd.github+json");

    // Unreachable: a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let yaml = format!("upstream-urls:\n  switchyard:\n    releases: http://{closed}/releases/latest\n");
    let server = start_with(Options { extra_yaml: &yaml, ..Default::default() }).await;
    let (status, body) = latest(&server).await;
    assert_eq!(status, 502, "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("release feed unreachable"), "{body}");

    // An answer without a version is not made into one.
    let feed = release_feed(json!({"draft": false})).await;
    let yaml = format!(
        "upstream-urls:\n  switchyard:\n    releases: {}\n",
        feed.url("/repos/acme/switchyard/releases/latest")
    );
    let server = start_with(Options { extra_yaml: &yaml, ..Default::default() }).await;
    assert_eq!(latest(&server).await, (502, json!({"error": "release feed answer has no tag_name or name"})));

    // Not configured.
    let server = start_with(Options::default()).await;
    let (status, body) = latest(&server).await;
    assert_eq!(status, 502);
    assert!(body["error"].as_str().unwrap().contains("upstream-urls.switchyard.releases"), "{body}");
}
