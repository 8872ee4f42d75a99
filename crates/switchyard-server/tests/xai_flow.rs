//! xAI end to end through a real Switchyard server on loopback, against the mock auth.x.ai and
//! Responses API: management device login (start → the user confirms → status → file), the
//! three public APIs served by the new account, a forced refresh, and `xai-api-key` entries.
//! Waits poll with bounded deadlines; no sleep is an assertion.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Options, TestServer, json, start_with};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_testkit::RecordedRequest;
use switchyard_testkit::xai::{
    DISCOVERY_PATH, Fault, GROK_CLI_HEADERS, MockXai, PUBLIC_RESPONSES_PATH, RESPONSES_PATH, TOKEN_PATH,
};

const FILE: &str = "xai-grok-user@example.com.json";
const MODEL: &str = "grok-code-fast-1";
const DEADLINE: Duration = Duration::from_secs(30);

async fn server(extra: &str) -> TestServer {
    start_with(Options { extra_yaml: extra, ..Default::default() }).await
}

struct Started {
    state: String,
    user_code: String,
}

/// `GET /v0/management/xai-auth-url` (or an alias) → the device answer.
async fn start_login(server: &TestServer, login: &str, mock: &MockXai) -> Started {
    let (status, body) = json(server.mgmt(Method::GET, &format!("/{login}-auth-url")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let user_code = body["user_code"].as_str().unwrap().to_owned();
    let verification_uri = mock.url("/device");
    let complete = format!("{verification_uri}?user_code={user_code}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["flow"], "device");
    assert_eq!(body["url"], complete.as_str(), "the URI with the code filled in");
    assert_eq!(body["verification_uri"], verification_uri.as_str());
    assert_eq!(body["verification_uri_complete"], complete.as_str());
    assert_eq!((body["expires_in"].as_u64(), body["interval"].as_u64()), (Some(600), Some(1)));
    let state = body["state"].as_str().unwrap().to_owned();
    assert!(state.starts_with("xai-"), "{state}");
    Started { state, user_code }
}

async fn auth_status(server: &TestServer, state: &str) -> Value {
    let (status, body) =
        json(server.mgmt(Method::GET, &format!("/get-auth-status?state={state}")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls `get-auth-status` until the login is no longer `wait`.
async fn outcome(server: &TestServer, state: &str) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let body = auth_status(server, state).await;
        if body["status"] != "wait" {
            return body;
        }
        assert!(Instant::now() < deadline, "login {state} still waiting after {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn file_json(server: &TestServer, name: &str) -> Value {
    serde_json::from_slice(&server.read(name)).unwrap()
}

fn json_files(server: &TestServer) -> Vec<String> {
    server.snapshot().into_iter().map(|(name, _)| name).filter(|n| n.ends_with(".json")).collect()
}

fn header<'a>(request: &'a RecordedRequest, name: &str) -> &'a str {
    request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header"))
}

/// The last CLI-proxy request carried `token` and the Grok CLI's headers.
fn assert_reached_cli_proxy_with(mock: &MockXai, token: &str) -> RecordedRequest {
    let seen = mock.requests_to(RESPONSES_PATH).pop().expect("the CLI proxy got a request");
    assert_eq!(header(&seen, "authorization"), format!("Bearer {token}"));
    assert_eq!(header(&seen, "x-xai-token-auth"), "xai-grok-cli");
    assert_eq!(header(&seen, "user-agent"), "xai-grok-workspace/0.2.120");
    seen
}

/// The text of the Responses fixture the mock replays.
fn fixture_text(mock: &MockXai) -> String {
    let body: Value = serde_json::from_slice(&mock.json_body()).unwrap();
    body["output"][0]["content"][0]["text"].as_str().unwrap().to_owned()
}

/// The concatenated `response.output_text.delta` texts of the mock's stream.
fn streamed_text(mock: &MockXai) -> String {
    mock.stream_events()
        .iter()
        .filter_map(|event| {
            let text = String::from_utf8_lossy(event).into_owned();
            let data: Value = serde_json::from_str(text.lines().find_map(|l| l.strip_prefix("data: "))?).ok()?;
            (data["type"] == "response.output_text.delta").then(|| data["delta"].as_str().unwrap().to_owned())
        })
        .collect()
}

async fn post(server: &TestServer, path: &str, body: Value) -> reqwest::Response {
    server.client.post(server.url(path)).json(&body).send().await.unwrap()
}

#[tokio::test]
async fn device_login_through_management_then_every_api_then_refresh() {
    let mock = MockXai::start().await;
    let server = server(&mock.upstream_urls_yaml()).await;

    let started = start_login(&server, "xai", &mock).await;
    let pending = auth_status(&server, &started.state).await;
    assert_eq!(pending["status"], "wait", "{pending}");
    assert_eq!(pending["user_code"].as_str(), Some(started.user_code.as_str()), "{pending}");
    assert!(mock.approve(&started.user_code), "the mock issued this code");
    assert_eq!(outcome(&server, &started.state).await, json!({"status": "ok", "file": FILE}));

    let mode = std::fs::metadata(server.file(FILE)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let file = file_json(&server, FILE);
    assert_eq!(file["type"], "xai");
    assert_eq!(file["email"], "grok-user@example.com");
    assert_eq!(file["sub"], "mock-xai-subject-0001");
    assert_eq!(file["auth_kind"], "oauth");
    assert_eq!(file["base_url"], "https://api.x.ai/v1");
    assert_eq!(file["token_endpoint"], mock.url(TOKEN_PATH).as_str());
    assert_eq!(file["token_type"], "Bearer");
    assert_eq!(file["expires_in"], 3600);
    assert_eq!(file["disabled"], false);
    for key in ["access_token", "refresh_token", "id_token", "expired", "last_refresh"] {
        assert!(file[key].as_str().is_some_and(|v| !v.is_empty()), "{key}: {file}");
    }
    let token = file["access_token"].as_str().unwrap().to_owned();
    server.state.sync_accounts();

    // OpenAI Responses client: the stream passes through byte for byte.
    let request = json!({"model": MODEL, "input": "Hi", "stream": true});
    let response = post(&server, "/v1/responses", request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), mock.stream_events().concat().as_slice());
    let seen = assert_reached_cli_proxy_with(&mock, &token);
    assert_eq!(seen.json()["store"], false);

    // OpenAI Chat client: translated to Responses, answered from the folded stream.
    let request = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, body) = json(post(&server, "/v1/chat/completions", request).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], streamed_text(&mock).as_str());
    let seen = assert_reached_cli_proxy_with(&mock, &token);
    assert_eq!(seen.json()["stream"], true, "the CLI proxy is always asked to stream");
    assert_eq!(seen.json()["model"], MODEL);

    // Anthropic Messages client.
    let request = json!({"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, body) = json(post(&server, "/v1/messages", request).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "message");
    assert_eq!(body["content"][0]["text"], streamed_text(&mock).as_str());
    assert_reached_cli_proxy_with(&mock, &token);

    // A forced refresh rewrites the tokens and nothing else.
    let fields = json!({"name": FILE, "prefix": "team", "note": "keep me", "priority": 7, "x_custom": {"n": [1, 2]}});
    let (status, reply) =
        json(server.mgmt(Method::PATCH, "/auth-files/fields").json(&fields).send().await.unwrap()).await;
    assert_eq!(status, 200, "{reply}");
    let before = file_json(&server, FILE);
    let (status, reply) =
        json(server.mgmt(Method::POST, "/auth-files/refresh").json(&json!({"name": FILE})).send().await.unwrap()).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(mock.refresh_calls(), 1);
    assert_eq!(mock.count(DISCOVERY_PATH), 1, "the refresh used the stored token_endpoint");
    let after = file_json(&server, FILE);
    assert_ne!(after["access_token"], before["access_token"]);
    assert_ne!(after["refresh_token"], before["refresh_token"], "the mock rotates refresh tokens");
    let token_fields = ["access_token", "refresh_token", "id_token", "expires_in", "expired", "last_refresh"];
    for (key, value) in before.as_object().unwrap() {
        if !token_fields.contains(&key.as_str()) {
            assert_eq!(&after[key], value, "`{key}` must survive a refresh");
        }
    }
    assert_eq!(after.as_object().unwrap().len(), before.as_object().unwrap().len(), "no field added or lost");
    let mode = std::fs::metadata(server.file(FILE)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // The next request carries the new token.
    server.state.sync_accounts();
    let request = json!({"model": MODEL, "input": "Again"});
    let (status, body) = json(post(&server, "/v1/responses", request).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "completed");
    assert_reached_cli_proxy_with(&mock, after["access_token"].as_str().unwrap());
}

#[tokio::test]
async fn an_xai_api_key_entry_serves_requests_on_the_public_api() {
    let mock = MockXai::start().await;
    let key = "xai-config-key-0123456789";
    mock.add_api_key(key);
    let yaml = format!("xai-api-key:\n  - api-key: {key}\n    base-url: {}\n", mock.public_api_base());
    let server = server(&yaml).await;

    let request = json!({"model": "grok-4", "messages": [{"role": "user", "content": "Hi"}]});
    let (status, body) = json(post(&server, "/v1/chat/completions", request).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["choices"][0]["message"]["content"], fixture_text(&mock).as_str());
    let seen = mock.requests_to(PUBLIC_RESPONSES_PATH).pop().expect("the public API got the request");
    assert_eq!(header(&seen, "authorization"), format!("Bearer {key}"));
    for (name, _) in GROK_CLI_HEADERS {
        assert!(seen.headers.get(*name).is_none(), "{name} is for the CLI proxy only");
    }
    assert_eq!(seen.json()["model"], "grok-4");
    assert_eq!(seen.json()["stream"], false, "the public API answers non-stream requests itself");
    assert!(mock.requests_to(RESPONSES_PATH).is_empty());
}

#[tokio::test]
async fn a_denied_or_cancelled_device_login_saves_nothing() {
    let mock = MockXai::start().await;
    let server = server(&mock.upstream_urls_yaml()).await;

    let started = start_login(&server, "grok", &mock).await;
    assert!(mock.deny(&started.user_code));
    let body = outcome(&server, &started.state).await;
    assert_eq!(body, json!({"status": "error", "error": "Authentication failed: the user denied the device login"}));

    let started = start_login(&server, "x-ai", &mock).await;
    let (status, body) =
        json(server.mgmt(Method::DELETE, &format!("/oauth-session?state={}", started.state)).send().await.unwrap())
            .await;
    assert_eq!((status, &body["cancelled"]), (200, &json!(true)), "{body}");
    assert_eq!(auth_status(&server, &started.state).await["status"], "error");
    assert!(json_files(&server).is_empty(), "{:?}", json_files(&server));
}

#[tokio::test]
async fn a_failing_issuer_fails_the_start_with_a_clear_message() {
    let mock = MockXai::start().await;
    mock.set_fault(Fault::DiscoveryUnavailable);
    let server = server(&mock.upstream_urls_yaml()).await;
    let (status, body) = json(server.mgmt(Method::GET, "/xai-auth-url").send().await.unwrap()).await;
    assert_eq!(status, 502, "{body}");
    let expected = format!("xAI OpenID discovery at {} answered HTTP 503", mock.url(DISCOVERY_PATH));
    assert_eq!(body["error"], expected.as_str());
}

#[tokio::test]
async fn a_revoked_refresh_token_needs_relogin_and_the_file_stays_as_it_was() {
    let mock = MockXai::start().await;
    let server = server(&mock.upstream_urls_yaml()).await;
    let started = start_login(&server, "xai", &mock).await;
    assert!(mock.approve(&started.user_code));
    assert_eq!(outcome(&server, &started.state).await["status"], "ok");
    let bytes = server.read(FILE);

    mock.set_fault(Fault::RevokeRefreshTokens);
    let (status, body) =
        json(server.mgmt(Method::POST, "/auth-files/refresh").json(&json!({"name": FILE})).send().await.unwrap()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["needs_relogin"], true);
    assert!(body["error"].as_str().unwrap().contains("invalid_grant"), "{body}");
    assert_eq!(server.read(FILE), bytes, "a dead refresh token must not touch the file");
    assert_eq!(json_files(&server), [FILE]);
}
