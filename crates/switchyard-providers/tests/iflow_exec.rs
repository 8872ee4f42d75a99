//! The iFlow executor against the mock chat API, which recomputes iFlow's request signature on
//! its own: the API key from the file (never the OAuth token), the signed headers, the
//! placeholder tool in streams, base-URL precedence and the failure paths.

mod exec_support;

use std::sync::Arc;

use exec_support::{body_ok, closed_port, context, credential, header, json, request};
use serde_json::{Value, json};
use switchyard_providers::exec::iflow::{PLACEHOLDER_TOOL, USER_AGENT, signature};
use switchyard_providers::executor::{ExecError, Executor, Operation, TokenSource, UpstreamAuth};
use switchyard_testkit::iflow::{API_PREFIX, CHAT_PATH, MockIflow, expected_signature};
use switchyard_testkit::upstream::{Api, sse_events};
use switchyard_testkit::{RecordedRequest, fixtures};

fn executor() -> Arc<dyn Executor> {
    switchyard_providers::by_id("iflow").and_then(|p| p.executor()).expect("iFlow has an executor")
}

fn chat(stream: bool) -> Value {
    json!({"model": "qwen3-max", "messages": [{"role": "user", "content": "Hi"}], "stream": stream})
}

struct Env {
    mock: MockIflow,
    ctx: switchyard_providers::executor::ExecContext,
    key: String,
}

impl Env {
    async fn start() -> Env {
        let mock = MockIflow::start().await;
        let ctx = context(&mock.upstream_urls_yaml());
        let key = mock.oauth_api_key();
        Env { mock, ctx, key }
    }

    fn file(&self) -> switchyard_auth::Credential {
        credential("iflow", &[("api_key", &self.key), ("access_token", "mock-oauth-token-not-for-chat")])
    }
}

/// The signed headers the request must carry, checked independently of the executor.
fn assert_signed(seen: &RecordedRequest, key: &str) {
    assert_eq!(header(seen, "authorization"), format!("Bearer {key}"));
    assert_eq!(header(seen, "user-agent"), "iFlow-Cli");
    let session = header(seen, "session-id");
    let uuid = session.strip_prefix("session-").expect("session-<uuid>");
    let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
    assert_eq!(groups, [8, 4, 4, 4, 12], "{uuid}");
    assert_eq!(&uuid[14..15], "4", "a version-4 UUID: {uuid}");
    let timestamp = header(seen, "x-iflow-timestamp");
    let millis: i64 = timestamp.parse().expect("milliseconds");
    assert!((chrono::Utc::now().timestamp_millis() - millis).abs() < 60_000, "{millis}");
    let expected = expected_signature(key, "iFlow-Cli", session, timestamp);
    assert_eq!(header(seen, "x-iflow-signature"), expected);
    assert_eq!(signature(key, USER_AGENT, session, timestamp), expected);
    assert_eq!(header(seen, "content-type"), "application/json");
}

#[tokio::test]
async fn executor_authenticates_from_the_file() {
    assert_eq!(executor().token_source(), TokenSource::Credential);
    assert_eq!(executor().dialect(), switchyard_dialects::Dialect::OpenAiChat);
}

#[tokio::test]
async fn a_chat_request_is_signed_with_the_api_key_and_sent_unchanged() {
    let env = Env::start().await;
    let file = env.file();
    let request = request(Operation::Generate, "qwen3-max", false, &chat(false));
    let sent = request.body.clone();
    let response = executor().execute(&env.ctx, &UpstreamAuth::Stored { credential: &file }, request).await.unwrap();
    assert_eq!(response.status, 200, "the mock accepted the key and the signature");
    let (fixture, _) = Api::OpenAiChat.default_fixtures();
    assert_eq!(body_ok(response).await, fixtures::read(fixture));

    let seen = env.mock.requests_to(CHAT_PATH);
    assert_eq!(seen.len(), 1);
    assert_signed(&seen[0], &env.key);
    assert_eq!(header(&seen[0], "accept"), "application/json");
    assert_eq!(seen[0].body, sent, "a non-stream body goes out byte for byte");
}

#[tokio::test]
async fn every_request_gets_its_own_session_id() {
    let env = Env::start().await;
    let file = env.file();
    for _ in 0..2 {
        let request = request(Operation::Generate, "qwen3-max", false, &chat(false));
        let response =
            executor().execute(&env.ctx, &UpstreamAuth::Stored { credential: &file }, request).await.unwrap();
        assert_eq!(response.status, 200);
    }
    let seen = env.mock.requests_to(CHAT_PATH);
    assert_ne!(header(&seen[0], "session-id"), header(&seen[1], "session-id"));
}

#[tokio::test]
async fn a_stream_gets_the_placeholder_tool_and_passes_the_events_through() {
    let env = Env::start().await;
    let file = env.file();
    let mut body = chat(true);
    body["tools"] = json!([]);
    let request = request(Operation::Generate, "qwen3-max", true, &body);
    let response = executor().execute(&env.ctx, &UpstreamAuth::Stored { credential: &file }, request).await.unwrap();
    assert_eq!(response.status, 200, "the mock refuses an empty tool list in streams");
    let (_, stream_fixture) = Api::OpenAiChat.default_fixtures();
    assert_eq!(body_ok(response).await, sse_events(Api::OpenAiChat, stream_fixture).concat());

    let seen = &env.mock.requests_to(CHAT_PATH)[0];
    assert_signed(seen, &env.key);
    assert_eq!(header(seen, "accept"), "text/event-stream");
    let sent = seen.json();
    assert_eq!(sent["tools"].as_array().unwrap().len(), 1);
    assert_eq!(sent["tools"][0]["type"], "function");
    assert_eq!(sent["tools"][0]["function"]["name"], PLACEHOLDER_TOOL);
    assert_eq!(sent["messages"], body["messages"]);
}

#[tokio::test]
async fn the_oauth_token_is_never_what_chat_sends() {
    let env = Env::start().await;
    let file = env.file();
    let auth = UpstreamAuth::OAuth { access_token: "mock-oauth-token-not-for-chat", credential: &file };
    let response =
        executor().execute(&env.ctx, &auth, request(Operation::Generate, "m", false, &chat(false))).await.unwrap();
    assert_eq!(response.status, 200);
    assert_signed(&env.mock.requests_to(CHAT_PATH)[0], &env.key);
}

#[tokio::test]
async fn the_files_base_url_wins_over_the_configured_one() {
    let mock = MockIflow::start().await;
    let key = mock.oauth_api_key();
    let dead = format!("http://127.0.0.1:{}/v1", closed_port().await);
    let ctx = context(&format!("upstream-urls:\n  iflow:\n    api: {dead}\n"));
    let base = mock.url(API_PREFIX);
    let file = credential("iflow", &[("api_key", &key), ("base_url", &base)]);
    let response = executor()
        .execute(
            &ctx,
            &UpstreamAuth::Stored { credential: &file },
            request(Operation::Generate, "m", false, &chat(false)),
        )
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(mock.requests_to(CHAT_PATH).len(), 1);

    // Without one, the configured URL is used (here: nothing listens there).
    let file = credential("iflow", &[("api_key", &key)]);
    let error = executor()
        .execute(
            &ctx,
            &UpstreamAuth::Stored { credential: &file },
            request(Operation::Generate, "m", false, &chat(false)),
        )
        .await
        .err();
    assert!(matches!(error, Some(ExecError::Connect(_))), "{error:?}");
}

#[tokio::test]
async fn a_file_without_a_key_fails_before_any_call() {
    let env = Env::start().await;
    let file = credential("iflow", &[("access_token", "mock-oauth-token-not-for-chat")]);
    let error = executor()
        .execute(
            &env.ctx,
            &UpstreamAuth::Stored { credential: &file },
            request(Operation::Generate, "m", false, &chat(false)),
        )
        .await
        .err();
    assert_eq!(error, Some(ExecError::Credential("this iFlow account has no api_key; log in again".into())));
    let error = executor()
        .execute(
            &env.ctx,
            &UpstreamAuth::Stored { credential: &env.file() },
            request(Operation::CountTokens, "m", false, &chat(false)),
        )
        .await
        .err();
    assert!(matches!(error, Some(ExecError::Unsupported(_))), "{error:?}");
    assert!(env.mock.requests().is_empty());
}

#[tokio::test]
async fn upstream_refusals_are_answers_with_their_status() {
    let env = Env::start().await;
    let stale = credential("iflow", &[("api_key", "sk-00000000000000000000000000000dead")]);
    let response = executor()
        .execute(
            &env.ctx,
            &UpstreamAuth::Stored { credential: &stale },
            request(Operation::Generate, "m", false, &chat(false)),
        )
        .await
        .unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(json(&body_ok(response).await)["error"]["code"], "invalid_api_key");

    env.mock.push_chat_fault(429);
    let file = env.file();
    let response = executor()
        .execute(
            &env.ctx,
            &UpstreamAuth::Stored { credential: &file },
            request(Operation::Generate, "m", false, &chat(false)),
        )
        .await
        .unwrap();
    assert_eq!(response.status, 429);
}

#[tokio::test]
async fn the_mock_checks_the_signature_and_the_tool_list_itself() {
    let env = Env::start().await;
    let http = reqwest::Client::new();
    let timestamp = chrono::Utc::now().timestamp_millis().to_string();
    let session = "session-0b9f3c6e-8a41-4d2b-9c3e-5f6a7b8c9d0e";
    let send = |signature: String, body: Value| {
        http.post(env.mock.url(CHAT_PATH))
            .bearer_auth(&env.key)
            .header("user-agent", "iFlow-Cli")
            .header("session-id", session)
            .header("x-iflow-timestamp", &timestamp)
            .header("x-iflow-signature", signature)
            .json(&body)
            .send()
    };
    let good = expected_signature(&env.key, "iFlow-Cli", session, &timestamp);
    assert_eq!(send(good.clone(), chat(false)).await.unwrap().status(), 200);
    let wrong = expected_signature("sk-another-key", "iFlow-Cli", session, &timestamp);
    assert_eq!(send(wrong, chat(false)).await.unwrap().status(), 403);
    let mut empty_tools = chat(true);
    empty_tools["tools"] = json!([]);
    assert_eq!(send(good, empty_tools).await.unwrap().status(), 400);
}
