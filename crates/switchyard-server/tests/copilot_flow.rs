//! GitHub Copilot end to end through a real server on loopback: the management device login
//! against the GitHub mock, the saved file, OpenAI and Anthropic clients (stream and not)
//! served through the Copilot chat API with the exchanged token, a revoked GitHub token marking
//! the account as needing a re-login, and cancelling a login mid-poll. Waits are bounded.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Options, TestServer, json, start_with};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_testkit::fixtures;
use switchyard_testkit::github::{
    CHAT_PATH, COPILOT_TOKEN_MARK, GITHUB_TOKEN_MARK, MockGithub, NO_COPILOT_MESSAGE, Subscription, TOKEN_PATH,
    VERIFICATION_URI,
};
use switchyard_testkit::upstream::{Api, sse_events};

const FILE: &str = "github-copilot-octocat.json";
const MODEL: &str = "gpt-4.1";
const DEADLINE: Duration = Duration::from_secs(30);

async fn server(github: &MockGithub) -> TestServer {
    start_with(Options { extra_yaml: &github.upstream_urls_yaml(), ..Default::default() }).await
}

/// `GET /v0/management/github-copilot-auth-url`: the device answer; returns its state.
async fn start_login(server: &TestServer) -> String {
    let (status, body) = json(server.mgmt(Method::GET, "/github-copilot-auth-url").send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["flow"], "device");
    assert_eq!(body["verification_uri"], VERIFICATION_URI);
    assert_eq!(body["url"], VERIFICATION_URI, "GitHub gives no complete URI: the plain one is shown");
    assert!(body["user_code"].as_str().is_some_and(|c| c.starts_with("MOCK-")), "{body}");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["interval"], 1);
    let text = body.to_string();
    assert!(!text.contains("mock-gh-device-"), "the device code stays secret: {text}");
    let state = body["state"].as_str().unwrap().to_owned();
    assert!(state.starts_with("gh-"), "{state}");
    state
}

async fn auth_status(server: &TestServer, state: &str) -> Value {
    let path = format!("/get-auth-status?state={state}");
    let (status, body) = json(server.mgmt(Method::GET, &path).send().await.unwrap()).await;
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

fn bearer(request: &switchyard_testkit::RecordedRequest) -> String {
    let value = request.headers["authorization"].to_str().unwrap();
    value.strip_prefix("Bearer ").unwrap().to_owned()
}

fn openai_text(file: &str) -> String {
    let body: Value = serde_json::from_slice(&fixtures::read(file)).unwrap();
    body["choices"][0]["message"]["content"].as_str().unwrap().to_owned()
}

/// The concatenated `delta.content` of an OpenAI Chat stream fixture.
fn stream_text(file: &str) -> String {
    fixtures::chunks(file)
        .iter()
        .map(|c| serde_json::from_str::<Value>(c).unwrap())
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect()
}

/// The text of an Anthropic SSE stream's `text_delta` events.
fn anthropic_stream_text(body: &str) -> String {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter(|e| e["type"] == "content_block_delta")
        .filter_map(|e| e["delta"]["text"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn device_login_then_openai_and_anthropic_clients_then_a_revoked_token_needs_relogin() {
    let github = MockGithub::start().await;
    let server = server(&github).await;

    let state = start_login(&server).await;
    assert_eq!(auth_status(&server, &state).await["status"], "wait");
    wait_until("the first poll", || !github.polls().is_empty()).await;
    github.approve();
    assert_eq!(outcome(&server, &state).await, json!({"status": "ok", "file": FILE}));

    let path = server.file(FILE);
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let saved: Value = serde_json::from_slice(&server.read(FILE)).unwrap();
    let keys: Vec<&str> = saved.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["type", "username", "email", "name", "access_token", "token_type", "scope", "timestamp"]);
    assert_eq!(saved["type"], "github-copilot");
    let github_token = saved["access_token"].as_str().unwrap().to_owned();
    assert!(github_token.starts_with(GITHUB_TOKEN_MARK));
    assert!(!String::from_utf8(server.read(FILE)).unwrap().contains(COPILOT_TOKEN_MARK));
    assert_eq!(github.exchanges(), 1, "the login verified the subscription once");
    server.state.sync_accounts();

    // OpenAI client, non-stream: passed through; the login's exchange is reused.
    let request = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    let response = post(&server, "/v1/chat/completions", &request).await;
    assert_eq!(response.status(), 200);
    let (json_fixture, stream_fixture) = github.fixtures();
    assert_eq!(response.bytes().await.unwrap().as_ref(), fixtures::read(&json_fixture).as_slice());
    assert_eq!(github.exchanges(), 1, "the Copilot token from the login is cached and reused");
    let copilot_token = github.copilot_tokens()[0].token.clone();
    let chat = github.requests_to(CHAT_PATH).pop().unwrap();
    assert_eq!(bearer(&chat), copilot_token);
    assert_eq!(chat.headers["editor-version"], "vscode/1.107.0");
    assert_eq!(chat.headers["copilot-integration-id"], "vscode-chat");
    assert_eq!(chat.json()["stream"], false);

    // OpenAI client, stream: the upstream's events arrive byte for byte.
    let request = json!({"model": MODEL, "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let response = post(&server, "/v1/chat/completions", &request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap().into_bytes(), sse_events(Api::OpenAiChat, &stream_fixture).concat());
    let sent = github.requests_to(CHAT_PATH).pop().unwrap().json();
    assert_eq!((sent["stream"].clone(), sent["stream_options"]["include_usage"].clone()), (json!(true), json!(true)));

    // Anthropic client, non-stream and stream: translated both ways.
    let request = json!({"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, body) = json(post(&server, "/v1/messages", &request).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "message");
    assert_eq!(body["content"][0]["text"], openai_text(&json_fixture));
    let sent = github.requests_to(CHAT_PATH).pop().unwrap();
    assert_eq!(sent.json()["messages"][0]["role"], "user", "the upstream got OpenAI Chat");
    assert_eq!(bearer(&sent), copilot_token);
    let request =
        json!({"model": MODEL, "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let response = post(&server, "/v1/messages", &request).await;
    assert_eq!(response.status(), 200);
    assert_eq!(anthropic_stream_text(&response.text().await.unwrap()), stream_text(&stream_fixture));
    assert_eq!(github.exchanges(), 1);

    // The user revokes the app on GitHub: a forced refresh marks the account for re-login and
    // leaves the file as it was.
    github.revoke_github_tokens();
    let before = server.read(FILE);
    let (status, body) =
        json(server.mgmt(Method::POST, "/auth-files/refresh").json(&json!({"name": FILE})).send().await.unwrap()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["needs_relogin"], true);
    assert!(!body.to_string().contains(GITHUB_TOKEN_MARK), "{body}");
    assert_eq!(server.read(FILE), before);
    let (_, listing) = json(server.mgmt(Method::GET, &format!("/auth-files?name={FILE}")).send().await.unwrap()).await;
    assert_eq!(listing["files"][0]["needs_relogin"], true, "{listing}");

    // Requests now fail (the Copilot token died with the GitHub token) without touching the file.
    let request = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    let response = post(&server, "/v1/chat/completions", &request).await;
    assert_eq!(response.status(), 401, "the chat API's refusal, after the pipeline's re-validation failed");
    let text = response.text().await.unwrap();
    assert!(!text.contains(GITHUB_TOKEN_MARK) && !text.contains(COPILOT_TOKEN_MARK), "{text}");
    assert_eq!(server.read(FILE), before);
}

#[tokio::test]
async fn cancelling_the_login_stops_polling_and_saves_nothing() {
    let github = MockGithub::start().await;
    let server = server(&github).await;
    let state = start_login(&server).await;
    wait_until("the first poll", || !github.polls().is_empty()).await;

    let path = format!("/oauth-session?state={state}");
    let (status, body) = json(server.mgmt(Method::DELETE, &path).send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!({"status": "ok", "cancelled": true})));
    let polls = github.requests_to(TOKEN_PATH).len();
    github.approve();
    // Watch for three poll intervals: the approval is never collected.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(github.requests_to(TOKEN_PATH).len(), polls, "no poll after the cancel");
    assert_eq!(auth_status(&server, &state).await["status"], "error", "the session is gone");
    assert!(server.snapshot().iter().all(|(name, _)| !name.ends_with(".json")), "{:?}", server.snapshot());
}

#[tokio::test]
async fn an_account_without_copilot_fails_the_login_with_the_reason() {
    let github = MockGithub::start().await;
    github.set_subscription(Subscription::Missing { status: 403 });
    github.approve();
    let server = server(&github).await;
    let state = start_login(&server).await;
    let body = outcome(&server, &state).await;
    assert_eq!(body["status"], "error", "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("no active Copilot subscription") && error.contains(NO_COPILOT_MESSAGE), "{error}");
    assert!(server.snapshot().iter().all(|(name, _)| !name.ends_with(".json")));
}
