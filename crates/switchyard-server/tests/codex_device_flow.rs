//! Codex's device login end to end through a real server on loopback, against the mock OpenAI
//! auth server: `GET /v0/management/codex-auth-url?method=device` → user code → approval →
//! `get-auth-status` ok → a file identical in shape to the browser login's; plus denial and
//! cancellation. Waits poll with bounded deadlines.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Options, TestServer, json, start_with};
use reqwest::{Client, Method};
use serde_json::{Value, json};
use switchyard_testkit::openai::{DEVICE_TOKEN_PATH, DeviceAnswer, DeviceStatus, MockOpenAiAuth, TOKEN_PATH};

const FILE: &str = "codex-e13f9773-codex-user@example.com-plus.json";
const DEADLINE: Duration = Duration::from_secs(20);

/// A server aimed at a mock whose device codes ask for 1 s between polls.
async fn server() -> (MockOpenAiAuth, TestServer) {
    let mock = MockOpenAiAuth::start().await;
    mock.set_device_answer(DeviceAnswer { interval: json!("1"), ..DeviceAnswer::default() });
    let yaml = format!("{}oauth-callback-ports:\n  codex: 0\n", mock.upstream_urls_yaml());
    let server = start_with(Options { extra_yaml: &yaml, ..Default::default() }).await;
    (mock, server)
}

async fn get_json(server: &TestServer, path: &str) -> (u16, Value) {
    json(server.mgmt(Method::GET, path).send().await.unwrap()).await
}

async fn status(server: &TestServer, state: &str) -> Value {
    let (code, body) = get_json(server, &format!("/get-auth-status?state={state}")).await;
    assert_eq!(code, 200, "{body}");
    body
}

async fn outcome(server: &TestServer, state: &str) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let body = status(server, state).await;
        if body["status"] != "wait" {
            return body;
        }
        assert!(Instant::now() < deadline, "login {state} still waiting");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not after {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn file_json(server: &TestServer, name: &str) -> Value {
    serde_json::from_slice(&server.read(name)).unwrap()
}

fn keys(value: &Value) -> Vec<String> {
    value.as_object().unwrap().keys().cloned().collect()
}

/// Starts the device login and checks the answer's shape; returns (state, user code).
async fn start_device(server: &TestServer) -> (String, String) {
    let (code, body) = get_json(server, "/codex-auth-url?method=device").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["flow"], "device");
    assert_eq!(body["url"], "https://auth.openai.com/codex/device");
    assert_eq!(body["verification_uri"], "https://auth.openai.com/codex/device");
    assert_eq!(body["verification_uri_complete"], Value::Null);
    assert_eq!(body["interval"], 1);
    let expires_in = body["expires_in"].as_u64().unwrap();
    assert!(expires_in > 14 * 60 && expires_in <= 15 * 60, "{expires_in}");
    let state = body["state"].as_str().unwrap().to_owned();
    assert!(state.starts_with("cdx-"), "{state}");
    let user_code = body["user_code"].as_str().unwrap().to_owned();
    assert!(!user_code.is_empty());
    assert_eq!(status(server, &state).await["status"], "wait");
    (state, user_code)
}

#[tokio::test]
async fn device_login_saves_the_same_file_as_the_browser_login() {
    let (mock, server) = server().await;

    // The browser login first, for the shape to compare with.
    let (code, started) = get_json(&server, "/codex-auth-url?is_webui=true").await;
    assert_eq!(code, 200, "{started}");
    Client::builder().no_proxy().build().unwrap().get(started["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(outcome(&server, started["state"].as_str().unwrap()).await, json!({"status": "ok", "file": FILE}));
    let by_browser = file_json(&server, FILE);
    std::fs::remove_file(server.file(FILE)).unwrap();
    server.state.store.rescan().await.unwrap();

    let (state, user_code) = start_device(&server).await;
    eventually("a first poll", || !mock.requests_to(DEVICE_TOKEN_PATH).is_empty()).await;
    assert_eq!(status(&server, &state).await["status"], "wait", "403 keeps the login pending");
    assert!(mock.approve_device(&user_code));
    assert_eq!(outcome(&server, &state).await, json!({"status": "ok", "file": FILE}));

    let by_device = file_json(&server, FILE);
    assert_eq!(keys(&by_device), keys(&by_browser));
    for same in ["type", "email", "account_id", "disabled"] {
        assert_eq!(by_device[same], by_browser[same], "{same}");
    }
    assert_ne!(by_device["access_token"], by_browser["access_token"]);
    let mode = std::fs::metadata(server.file(FILE)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let exchange = mock.requests_to(TOKEN_PATH).pop().unwrap();
    assert_eq!(exchange.form_value("redirect_uri").as_deref(), Some("https://auth.openai.com/deviceauth/callback"));
}

#[tokio::test]
async fn a_denied_device_code_is_reported_and_saves_nothing() {
    let (mock, server) = server().await;
    let (state, user_code) = start_device(&server).await;
    assert!(mock.deny_device(&user_code));
    let body = outcome(&server, &state).await;
    assert_eq!(body["status"], "error", "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("Authentication failed"), "{body}");
    assert!(server.snapshot().is_empty());
}

#[tokio::test]
async fn a_cancelled_device_login_writes_nothing_when_approved_afterwards() {
    let (mock, server) = server().await;
    let (state, user_code) = start_device(&server).await;
    let (code, body) =
        json(server.mgmt(Method::DELETE, &format!("/oauth-session?state={state}")).send().await.unwrap()).await;
    assert_eq!((code, &body["cancelled"]), (200, &json!(true)), "{body}");
    assert_eq!(status(&server, &state).await["status"], "error", "the session is gone");

    mock.approve_device(&user_code);
    let watch_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < watch_until {
        assert_eq!(mock.device_status(&user_code), Some(DeviceStatus::Approved), "nobody redeemed the code");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.snapshot().is_empty());
    assert!(mock.requests_to(TOKEN_PATH).is_empty());
}
