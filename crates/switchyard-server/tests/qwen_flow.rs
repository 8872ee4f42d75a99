//! Qwen Code end to end through a real server on loopback: the management device login (PKCE)
//! against the Qwen mock, the saved file, OpenAI and Anthropic clients (stream and not) served
//! by the mock chat API with the account's token and Qwen Code headers, a forced refresh that
//! rewrites only the tokens, a revoked refresh token, and cancelling a login mid-poll.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Options, TestServer, json, start_with};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_testkit::fixtures;
use switchyard_testkit::qwen::{DEFAULT_RESOURCE_URL, Fault, MockQwen, TOKEN_MARK, TOKEN_PATH, VERIFICATION_URI};
use switchyard_testkit::upstream::{Api, MockUpstream, RequiredAuth, sse_events};

const ALIAS: &str = "me@example.com";
const FILE: &str = "qwen-me@example.com.json";
const MODEL: &str = "qwen3-coder-plus";
const DEADLINE: Duration = Duration::from_secs(30);

/// A server whose Qwen OAuth endpoints point at `qwen` and whose Qwen API is `upstream`.
async fn server(qwen: &MockQwen, upstream: &MockUpstream) -> TestServer {
    let yaml = format!("{}    api: {}/v1\n", qwen.upstream_urls_yaml(), upstream.base());
    start_with(Options { extra_yaml: &yaml, ..Default::default() }).await
}

/// `GET /v0/management/qwen-auth-url?alias=...`: the device answer; returns its state.
async fn start_login(server: &TestServer) -> String {
    let path = format!("/qwen-auth-url?alias={ALIAS}");
    let (status, body) = json(server.mgmt(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["status"].clone(), body["flow"].clone()), (json!("ok"), json!("device")));
    let user_code = body["user_code"].as_str().unwrap();
    assert_eq!(body["verification_uri"], VERIFICATION_URI);
    assert_eq!(
        body["url"],
        format!("{VERIFICATION_URI}?user_code={user_code}&client=qwen-code"),
        "the code is in the URL"
    );
    assert_eq!(body["url"], body["verification_uri_complete"]);
    assert_eq!(body["expires_in"], 900);
    assert!(!body.to_string().contains(TOKEN_MARK), "no device code or verifier in the answer: {body}");
    body["state"].as_str().unwrap().to_owned()
}

async fn auth_status(server: &TestServer, state: &str) -> Value {
    let (status, body) =
        json(server.mgmt(Method::GET, &format!("/get-auth-status?state={state}")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn outcome(server: &TestServer, state: &str) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let body = auth_status(server, state).await;
        if body["status"] != "wait" {
            return body;
        }
        assert!(Instant::now() < deadline, "login still waiting after {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn post(server: &TestServer, path: &str, body: &Value) -> reqwest::Response {
    server.client.post(server.url(path)).json(body).send().await.unwrap()
}

fn saved(server: &TestServer) -> Value {
    serde_json::from_slice(&server.read(FILE)).unwrap()
}

/// Logs in through the management API and returns the saved file.
async fn logged_in(server: &TestServer, qwen: &MockQwen) -> Value {
    let state = start_login(server).await;
    wait_until("the first poll", || !qwen.polls().is_empty()).await;
    qwen.approve();
    assert_eq!(outcome(server, &state).await, json!({"status": "ok", "file": FILE}));
    server.state.sync_accounts();
    saved(server)
}

#[tokio::test]
async fn device_login_then_openai_and_anthropic_clients_then_forced_and_revoked_refreshes() {
    let qwen = MockQwen::start().await;
    let upstream = MockUpstream::start().await;
    let server = server(&qwen, &upstream).await;

    let file = logged_in(&server, &qwen).await;
    assert_eq!(std::fs::metadata(server.file(FILE)).unwrap().permissions().mode() & 0o777, 0o600);
    let keys: Vec<&str> = file.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["type", "access_token", "refresh_token", "last_refresh", "resource_url", "email", "expired"]);
    assert_eq!((file["type"].clone(), file["email"].clone()), (json!("qwen"), json!(ALIAS)));
    assert_eq!(file["resource_url"], DEFAULT_RESOURCE_URL);
    let token = file["access_token"].as_str().unwrap().to_owned();
    assert_eq!(qwen.last_access_token().as_deref(), Some(token.as_str()));
    upstream.require_auth(Some(RequiredAuth::Bearer(token.clone())));

    // OpenAI client, non-stream: the configured api wins over resource_url (portal.qwen.ai).
    let request = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    let response = post(&server, "/v1/chat/completions", &request).await;
    assert_eq!(response.status(), 200);
    let (json_fixture, stream_fixture) = Api::OpenAiChat.default_fixtures();
    assert_eq!(response.bytes().await.unwrap().as_ref(), fixtures::read(json_fixture).as_slice());
    let seen = upstream.last_request();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.headers["x-dashscope-authtype"], "qwen-oauth");
    assert_eq!(seen.headers["user-agent"], "QwenCode/0.14.2 (darwin; arm64)");
    assert!(seen.json().get("tools").is_none());

    // OpenAI client, stream: usage asked for, the placeholder tool added, events passed through.
    let request = json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let response = post(&server, "/v1/chat/completions", &request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap().into_bytes(), sse_events(Api::OpenAiChat, stream_fixture).concat());
    let sent = upstream.last_request().json();
    assert_eq!(sent["stream_options"]["include_usage"], true);
    assert_eq!(sent["tools"][0]["function"]["name"], "do_not_call_me");

    // Anthropic client, both ways.
    let request = json!({"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, body) = json(post(&server, "/v1/messages", &request).await).await;
    assert_eq!(status, 200, "{body}");
    let expected: Value = serde_json::from_slice(&fixtures::read(json_fixture)).unwrap();
    assert_eq!(body["content"][0]["text"], expected["choices"][0]["message"]["content"]);
    assert_eq!(upstream.last_request().json()["messages"][0]["role"], "user");
    let request =
        json!({"model": MODEL, "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let response = post(&server, "/v1/messages", &request).await;
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("event: message_start") && text.contains("content_block_delta"), "{text}");
    let sent = upstream.last_request().json();
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["tools"][0]["function"]["name"], "do_not_call_me");

    // A user setting, then a forced refresh: only the token fields change.
    let mut edited = saved(&server);
    edited["note"] = json!("work account");
    // As if the login were hours old (timestamps have whole seconds).
    edited["last_refresh"] = json!("2025-01-01T08:00:00+00:00");
    edited["expired"] = json!("2025-01-01T14:00:00+00:00");
    std::fs::write(server.file(FILE), serde_json::to_vec_pretty(&edited).unwrap()).unwrap();
    server.state.store.rescan().await.unwrap();
    let (status, body) =
        json(server.mgmt(Method::POST, "/auth-files/refresh").json(&json!({"name": FILE})).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let after = saved(&server);
    let changed: Vec<&str> =
        edited.as_object().unwrap().keys().map(String::as_str).filter(|k| after[*k] != edited[*k]).collect();
    assert_eq!(changed, ["access_token", "refresh_token", "last_refresh", "expired"]);
    assert_eq!(after.as_object().unwrap().len(), edited.as_object().unwrap().len());
    assert_eq!(after["note"], "work account");
    let new_token = after["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token);

    // The upstream now takes only the new token, and gets it.
    upstream.require_auth(Some(RequiredAuth::Bearer(new_token)));
    let request = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    assert_eq!(post(&server, "/v1/chat/completions", &request).await.status(), 200);

    // A revoked refresh token: needs re-login, the file is left byte for byte.
    qwen.set_fault(Fault::RevokeRefreshTokens);
    let before = server.read(FILE);
    let (status, body) =
        json(server.mgmt(Method::POST, "/auth-files/refresh").json(&json!({"name": FILE})).send().await.unwrap()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["needs_relogin"], true);
    assert!(!body.to_string().contains(TOKEN_MARK), "{body}");
    assert_eq!(server.read(FILE), before);
}

#[tokio::test]
async fn cancelling_the_login_stops_polling_and_saves_nothing() {
    let qwen = MockQwen::start().await;
    let upstream = MockUpstream::start().await;
    let server = server(&qwen, &upstream).await;
    let state = start_login(&server).await;
    wait_until("the first poll", || !qwen.polls().is_empty()).await;

    let (status, body) =
        json(server.mgmt(Method::DELETE, &format!("/oauth-session?state={state}")).send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!({"status": "ok", "cancelled": true})));
    let polls = qwen.requests_to(TOKEN_PATH).len();
    qwen.approve();
    // Watch for three poll intervals: the approval is never collected.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(qwen.requests_to(TOKEN_PATH).len(), polls, "no poll after the cancel");
    assert_eq!(auth_status(&server, &state).await["status"], "error");
    assert!(server.snapshot().iter().all(|(name, _)| !name.ends_with(".json")));
}

#[tokio::test]
async fn a_bad_alias_is_refused_by_the_start_call() {
    let qwen = MockQwen::start().await;
    let upstream = MockUpstream::start().await;
    let server = server(&qwen, &upstream).await;
    let (status, body) = json(server.mgmt(Method::GET, "/qwen-auth-url?alias=a/b").send().await.unwrap()).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("alias may contain only"), "{body}");
    assert!(qwen.requests().is_empty());
}
