//! The GitHub Copilot executor against the GitHub mock: the GitHub token exchanged for a Copilot
//! API token (cached in memory, renewed before expiry, shared by concurrent requests, dropped on
//! a 401), the chat API's headers and body rules, base URL precedence, and failures.

mod exec_support;

use std::sync::Arc;
use std::time::Duration;

use exec_support::*;
use serde_json::{Value, json};
use switchyard_auth::Credential;
use switchyard_providers::by_id;
use switchyard_providers::executor::{ExecError, Executor, Operation, TokenSource, UpstreamAuth};
use switchyard_testkit::RecordedRequest;
use switchyard_testkit::fixtures;
use switchyard_testkit::github::{
    CHAT_PATH, COPILOT_TOKEN_MARK, COPILOT_TOKEN_PATH, ExchangeFault, GITHUB_TOKEN_MARK, MockGithub,
    NO_COPILOT_MESSAGE, Subscription,
};
use switchyard_testkit::upstream::{Api, MockUpstream, sse_events};

const MODEL: &str = "gpt-4.1";

fn executor() -> Arc<dyn Executor> {
    by_id("github-copilot").and_then(|p| p.executor()).expect("Copilot has an executor")
}

fn chat_body(stream: bool) -> Value {
    json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": stream})
}

struct Setup {
    github: MockGithub,
    ctx: switchyard_providers::executor::ExecContext,
    credential: Credential,
}

impl Setup {
    async fn start() -> Setup {
        Setup::with_yaml("").await
    }

    /// `extra` is appended under `upstream-urls.github-copilot` (e.g. an `api` line).
    async fn with_yaml(extra: &str) -> Setup {
        let github = MockGithub::start().await;
        let ctx = context(&format!("{}{extra}", github.upstream_urls_yaml()));
        let token = github.issue_github_token();
        let credential = credential("github-copilot", &[("username", "octocat"), ("access_token", &token)]);
        Setup { github, ctx, credential }
    }

    fn github_token(&self) -> &str {
        self.credential.access_token().unwrap()
    }

    async fn send(&self, stream: bool) -> switchyard_providers::executor::UpstreamResponse {
        self.send_body(&chat_body(stream), stream).await
    }

    async fn send_body(&self, body: &Value, stream: bool) -> switchyard_providers::executor::UpstreamResponse {
        let auth = UpstreamAuth::Stored { credential: &self.credential };
        executor().execute(&self.ctx, &auth, request(Operation::Generate, MODEL, stream, body)).await.expect("answered")
    }

    /// The Bearer token of every chat request the mock received, oldest first.
    fn chat_bearers(&self) -> Vec<String> {
        self.github.requests_to(CHAT_PATH).iter().map(bearer).collect()
    }

    fn issued(&self) -> Vec<String> {
        self.github.copilot_tokens().into_iter().map(|t| t.token).collect()
    }
}

fn bearer(request: &RecordedRequest) -> String {
    header(request, "authorization").strip_prefix("Bearer ").expect("a Bearer token").to_owned()
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn non_stream_request_carries_the_copilot_token_and_editor_headers_and_forces_stream_false() {
    let setup = Setup::start().await;
    let body = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": true,
                      "stream_options": {"include_usage": true}, "temperature": 0.2});
    let response = setup.send_body(&body, false).await;
    assert_eq!(response.status, 200);
    let (json_fixture, _) = setup.github.fixtures();
    assert_eq!(body_ok(response).await, fixtures::read(&json_fixture), "the answer passes through");

    let exchange = &setup.github.requests_to(COPILOT_TOKEN_PATH)[0];
    assert_eq!(header(exchange, "authorization"), format!("token {}", setup.github_token()));
    assert_eq!(header(exchange, "accept"), "application/json");
    assert_eq!(header(exchange, "editor-version"), "vscode/1.107.0");

    let chat = &setup.github.requests_to(CHAT_PATH)[0];
    assert_eq!(bearer(chat), setup.issued()[0]);
    for (name, value) in [
        ("content-type", "application/json"),
        ("accept", "application/json"),
        ("user-agent", "GitHubCopilotChat/0.35.0"),
        ("editor-version", "vscode/1.107.0"),
        ("editor-plugin-version", "copilot-chat/0.35.0"),
        ("copilot-integration-id", "vscode-chat"),
        ("openai-intent", "conversation-edits"),
        ("x-github-api-version", "2025-04-01"),
        ("x-initiator", "user"),
    ] {
        assert_eq!(header(chat, name), value, "{name}");
    }
    let request_id = header(chat, "x-request-id");
    assert_eq!(request_id.len(), 36);
    assert_eq!(&request_id[14..15], "4", "a version-4 UUID: {request_id}");
    assert!(!chat.headers.contains_key("copilot-vision-request"));
    let sent = chat.json();
    assert_eq!(sent["stream"], false);
    assert!(sent.get("stream_options").is_none(), "only streams take stream_options: {sent}");
    assert_eq!((sent["model"].clone(), sent["temperature"].clone()), (json!(MODEL), json!(0.2)));
}

#[tokio::test]
async fn stream_asks_for_usage_and_passes_the_events_through_byte_for_byte() {
    let setup = Setup::start().await;
    let file = "openai-chat/deepseek-tool-call.chunks.txt";
    setup.github.replay(file);
    let response =
        setup.send_body(&json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}), true).await;
    assert_eq!(response.status, 200);
    assert_eq!(body_ok(response).await, sse_events(Api::OpenAiChat, file).concat());
    let chat = &setup.github.requests_to(CHAT_PATH)[0];
    assert_eq!(header(chat, "accept"), "text/event-stream");
    let sent = chat.json();
    assert_eq!((sent["stream"].clone(), sent["stream_options"].clone()), (json!(true), json!({"include_usage": true})));
}

#[tokio::test]
async fn the_token_is_exchanged_once_and_reused_while_it_has_time_left() {
    let setup = Setup::start().await;
    for _ in 0..3 {
        assert_eq!(setup.send(false).await.status, 200);
    }
    assert_eq!(setup.github.exchanges(), 1);
    let issued = setup.issued();
    assert_eq!(setup.chat_bearers(), vec![issued[0].clone(); 3]);
}

#[tokio::test]
async fn a_token_expiring_between_two_requests_is_renewed_transparently() {
    let setup = Setup::start().await;
    // The first token has 2 s of use before it enters the 5-minute renewal window.
    setup.github.push_token_lifetime(Some(302));
    assert_eq!(setup.send(false).await.status, 200);
    let first = setup.github.copilot_tokens()[0].clone();
    wait_until_unix(first.expires_at - 300).await;

    let response = setup.send(false).await;
    assert_eq!(response.status, 200, "the client never sees the renewal");
    assert_eq!(setup.github.exchanges(), 2, "exactly one extra exchange");
    let issued = setup.issued();
    assert_eq!(setup.chat_bearers(), [issued[0].clone(), issued[1].clone()], "the second request has the new token");
    // The new token (30 min) is then reused.
    assert_eq!(setup.send(true).await.status, 200);
    assert_eq!(setup.github.exchanges(), 2);
    assert_eq!(setup.chat_bearers()[2], issued[1]);
}

/// Waits (bounded) until the wall clock reaches `unix` seconds.
async fn wait_until_unix(unix: i64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while unix_now() < unix {
        assert!(std::time::Instant::now() < deadline, "clock never reached {unix}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_token_already_inside_the_renewal_window_is_replaced_on_the_next_request() {
    let setup = Setup::start().await;
    setup.github.push_token_lifetime(Some(200));
    assert_eq!(setup.send(false).await.status, 200);
    assert_eq!(setup.send(false).await.status, 200);
    assert_eq!(setup.github.exchanges(), 2);
    let issued = setup.issued();
    assert_eq!(setup.chat_bearers(), [issued[0].clone(), issued[1].clone()]);
}

#[tokio::test]
async fn without_expires_at_the_token_is_assumed_to_last_25_minutes() {
    let setup = Setup::start().await;
    setup.github.push_token_lifetime(None);
    assert_eq!(setup.send(false).await.status, 200);
    assert!(!setup.github.copilot_tokens()[0].announced_expiry);
    assert_eq!(setup.send(false).await.status, 200);
    assert_eq!(setup.github.exchanges(), 1, "25 min assumed: still 20 min of use");
}

#[tokio::test]
async fn concurrent_requests_share_one_exchange() {
    let setup = Arc::new(Setup::start().await);
    setup.github.set_exchange_delay(Duration::from_millis(300));
    let requests = (0..8).map(|_| {
        let setup = setup.clone();
        tokio::spawn(async move { setup.send(false).await.status })
    });
    for status in futures::future::join_all(requests).await {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(setup.github.exchanges(), 1);
    let bearers = setup.chat_bearers();
    assert_eq!(bearers.len(), 8);
    assert!(bearers.iter().all(|b| *b == setup.issued()[0]));
}

#[tokio::test]
async fn a_401_from_the_chat_api_drops_the_cached_token() {
    let setup = Setup::start().await;
    assert_eq!(setup.send(false).await.status, 200);
    setup.github.push_chat_fault(401);
    let refused = setup.send(false).await;
    assert_eq!(refused.status, 401, "the refusal reaches the pipeline, which re-validates and retries");
    assert_eq!(setup.send(false).await.status, 200);
    assert_eq!(setup.github.exchanges(), 2, "the dropped token was replaced");
    let issued = setup.issued();
    assert_eq!(setup.chat_bearers(), [issued[0].clone(), issued[0].clone(), issued[1].clone()]);
}

#[tokio::test]
async fn the_exchanges_endpoints_api_is_the_base_unless_api_is_configured() {
    let upstream = MockUpstream::start().await;
    // endpoints.api pointing elsewhere is followed.
    let setup = Setup::start().await;
    setup.github.set_api_endpoint(Some(upstream.base()));
    assert_eq!(setup.send(false).await.status, 200);
    let seen = upstream.last_request();
    assert_eq!(seen.path, "/chat/completions");
    assert_eq!(bearer(&seen), setup.issued()[0]);
    assert!(setup.github.requests_to(CHAT_PATH).is_empty());

    // A configured `api` wins over endpoints.api (which points at the GitHub mock here).
    let other = MockUpstream::start().await;
    let setup = Setup::with_yaml(&MockGithub::api_yaml_line(&format!("{}/copilot", other.base()))).await;
    assert_eq!(setup.send(false).await.status, 200);
    assert_eq!(other.last_request().path, "/copilot/chat/completions");
    assert!(setup.github.requests_to(CHAT_PATH).is_empty());
}

#[tokio::test]
async fn a_revoked_github_token_answers_401_without_calling_the_chat_api() {
    let setup = Setup::start().await;
    setup.github.revoke_github_tokens();
    let response = setup.send(false).await;
    assert_eq!(response.status, 401);
    let body = json(&body_ok(response).await);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("GitHub rejected the account's token"), "{message}");
    assert!(!message.contains(GITHUB_TOKEN_MARK));
    assert!(setup.github.requests_to(CHAT_PATH).is_empty());
}

#[tokio::test]
async fn a_missing_subscription_answers_403_with_githubs_explanation() {
    let setup = Setup::start().await;
    setup.github.set_subscription(Subscription::Missing { status: 404 });
    let response = setup.send(true).await;
    assert_eq!(response.status, 403);
    let body = json(&body_ok(response).await);
    assert_eq!(body["error"]["message"], format!("no active Copilot subscription: {NO_COPILOT_MESSAGE}"));
}

#[tokio::test]
async fn an_unreachable_exchange_is_a_connection_error_that_names_no_token() {
    let port = closed_port().await;
    let github = MockGithub::start().await;
    let yaml = format!(
        "upstream-urls:\n  github-copilot:\n    copilot-token: http://127.0.0.1:{port}/copilot_internal/v2/token\n"
    );
    let ctx = context(&yaml);
    let credential = credential("github-copilot", &[("access_token", &github.issue_github_token())]);
    let auth = UpstreamAuth::Stored { credential: &credential };
    let error = executor().execute(&ctx, &auth, request(Operation::Generate, MODEL, false, &chat_body(false))).await;
    let error = error.err().expect("no answer");
    assert!(matches!(error, ExecError::Connect(_)), "{error:?}");
    assert!(!error.to_string().contains(GITHUB_TOKEN_MARK), "{error}");
}

#[tokio::test]
async fn tool_turns_are_agent_initiated_and_images_ask_for_vision() {
    let setup = Setup::start().await;
    let body = json!({"model": MODEL, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "what is this?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]},
        {"role": "assistant", "content": null,
         "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "a cat"}]});
    assert_eq!(setup.send_body(&body, false).await.status, 200);
    let chat = &setup.github.requests_to(CHAT_PATH)[0];
    assert_eq!(header(chat, "x-initiator"), "agent");
    assert_eq!(header(chat, "copilot-vision-request"), "true");
}

#[tokio::test]
async fn token_counting_is_unsupported_and_a_file_without_token_is_refused() {
    let setup = Setup::start().await;
    let auth = UpstreamAuth::Stored { credential: &setup.credential };
    let executor = executor();
    let count = executor.execute(&setup.ctx, &auth, request(Operation::CountTokens, MODEL, false, &chat_body(false)));
    assert!(matches!(count.await.err(), Some(ExecError::Unsupported(_))));
    assert_eq!(setup.github.exchanges(), 0);

    let empty = credential("github-copilot", &[("username", "octocat")]);
    let auth = UpstreamAuth::Stored { credential: &empty };
    let error = executor.execute(&setup.ctx, &auth, request(Operation::Generate, MODEL, false, &chat_body(false)));
    assert!(matches!(error.await.err(), Some(ExecError::Credential(_))));
    assert_eq!(executor.token_source(), TokenSource::Credential, "the executor reads the file itself");
}

#[tokio::test]
async fn the_copilot_token_never_shows_in_errors_or_the_chat_answer() {
    let setup = Setup::start().await;
    setup.github.push_chat_fault(500);
    let response = setup.send(false).await;
    assert_eq!(response.status, 500);
    let text = String::from_utf8(body_ok(response).await).unwrap();
    assert!(!text.contains(COPILOT_TOKEN_MARK), "{text}");
}

#[tokio::test]
async fn malformed_or_failing_exchanges_answer_with_a_clear_status_and_message() {
    let setup = Setup::start().await;
    setup.github.set_exchange_fault(Some(ExchangeFault::NoToken));
    let response = setup.send(false).await;
    assert_eq!(response.status, 502);
    let body = json(&body_ok(response).await);
    assert_eq!(body["error"]["message"], "Copilot token exchange failed: HTTP 200 without a token in the answer");

    setup.github.set_exchange_fault(Some(ExchangeFault::RateLimited { retry_after: 7 }));
    let response = setup.send(false).await;
    assert_eq!(response.status, 429);
    assert_eq!(response.headers["retry-after"], "7");
    assert!(setup.github.requests_to(CHAT_PATH).is_empty());
}

#[tokio::test]
async fn a_failed_renewal_keeps_using_a_token_that_has_not_run_out_yet() {
    let setup = Setup::start().await;
    // Inside the renewal window, but still valid for minutes.
    setup.github.push_token_lifetime(Some(200));
    assert_eq!(setup.send(false).await.status, 200);
    setup.github.set_exchange_fault(Some(ExchangeFault::ServerError));
    assert_eq!(setup.send(false).await.status, 200, "GitHub's outage does not fail the request");
    assert_eq!(setup.github.exchanges(), 2, "the renewal was tried");
    let issued = setup.issued();
    assert_eq!(setup.chat_bearers(), [issued[0].clone(), issued[0].clone()]);

    setup.github.set_exchange_fault(None);
    assert_eq!(setup.send(false).await.status, 200);
    assert_eq!(setup.chat_bearers()[2], setup.issued()[1], "renewed once GitHub answers again");
}
