//! The Codex executor against the mock ChatGPT backend (SSE only) and OpenAI Responses API.

mod exec_support;

use exec_support::*;
use serde_json::{Value, json};
use switchyard_providers::by_id;
use switchyard_providers::exec::api_key_executor;
use switchyard_providers::executor::{ExecError, Executor, Operation, UpstreamAuth};
use switchyard_testkit::fixtures;
use switchyard_testkit::upstream::{Api, CODEX_PREFIX, Fault, MockUpstream, RequiredAuth, sse_events};

const ACCOUNT: &str = "acct-0001";

fn executor() -> std::sync::Arc<dyn Executor> {
    by_id("codex").and_then(|p| p.executor()).expect("Codex has an executor")
}

fn body(stream: bool) -> Value {
    json!({"model": "gpt-5.1-codex", "input": "hi", "stream": stream, "store": false})
}

/// The `response` object of the fixture's `response.completed` event.
fn completed_response(file: &str) -> Value {
    fixtures::chunks(file)
        .iter()
        .map(|c| json(c.as_bytes()))
        .find(|c| c["type"] == "response.completed")
        .map(|c| c["response"].clone())
        .expect("fixture has response.completed")
}

#[tokio::test]
async fn oauth_stream_has_codex_headers_and_passes_through_byte_for_byte() {
    let env = Env::start().await;
    env.mock.require_auth(Some(RequiredAuth::Bearer(SECRET.into())));
    let file = "openai-responses/issue-19493-gpt-5.1-tool-call.chunks.txt";
    env.mock.replay(Api::OpenAiResponses, file);
    let cred = credential("codex", &[("account_id", ACCOUNT)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let request = with_client_headers(
        request(Operation::Generate, "gpt-5.1-codex", true, &body(true)),
        &[("session_id", "sess-42"), ("conversation_id", "conv-7"), ("authorization", "Bearer client-key")],
    );
    let sent = request.body.clone();
    let response = executor().execute(&env.ctx, &auth, request).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(body_ok(response).await, sse_events(Api::OpenAiResponses, file).concat());

    let seen = env.mock.last_request();
    assert_eq!(seen.path, format!("{CODEX_PREFIX}/responses"));
    assert_eq!(seen.body, sent);
    for (name, value) in [
        ("authorization", format!("Bearer {SECRET}").as_str()),
        ("chatgpt-account-id", ACCOUNT),
        ("originator", "codex-tui"),
        ("user-agent", "codex-tui/0.146.0 (Mac OS 26.5.0; arm64) iTerm.app/3.6.10 (codex-tui; 0.146.0)"),
        ("accept", "text/event-stream"),
        ("content-type", "application/json"),
        ("session_id", "sess-42"),
        ("conversation_id", "conv-7"),
    ] {
        assert_eq!(header(&seen, name), value, "{name}");
    }
}

#[tokio::test]
async fn non_stream_request_is_streamed_upstream_and_folded_into_the_response() {
    let env = Env::start().await;
    let cred = credential("codex", &[("account_id", ACCOUNT)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        executor().execute(&env.ctx, &auth, request(Operation::Generate, "m", false, &body(false))).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.headers.get("content-type").unwrap(), "application/json");
    let folded = json(&body_ok(response).await);
    assert_eq!(folded, completed_response(Api::OpenAiResponses.default_fixtures().1));
    assert_eq!(folded["status"], "completed");

    let seen = env.mock.last_request();
    assert_eq!(seen.json()["stream"], true, "the backend only streams");
    assert_eq!(seen.json()["input"], "hi");
    assert_eq!(header(&seen, "accept"), "text/event-stream");
}

#[tokio::test]
async fn folded_failure_answers_with_the_error_and_its_status() {
    let env = Env::start().await;
    env.mock.replay(Api::OpenAiResponses, "openai-responses/openai-error.1.chunks.txt");
    let cred = credential("codex", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        executor().execute(&env.ctx, &auth, request(Operation::Generate, "m", false, &body(false))).await.unwrap();
    assert_eq!(response.status, 429);
    let error = json(&body_ok(response).await);
    assert_eq!(error["error"]["code"], "insufficient_quota", "{error}");
}

#[tokio::test]
async fn folded_stream_cut_short_is_interrupted() {
    let env = Env::start().await;
    env.mock.drop_streams_after(Some(2));
    let cred = credential("codex", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let error = executor().execute(&env.ctx, &auth, request(Operation::Generate, "m", false, &body(false))).await.err();
    assert!(matches!(error, Some(ExecError::Interrupted(_))), "{error:?}");
}

#[tokio::test]
async fn stream_cut_short_ends_with_interrupted() {
    let env = Env::start().await;
    env.mock.drop_streams_after(Some(4));
    let cred = credential("codex", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        executor().execute(&env.ctx, &auth, request(Operation::Generate, "m", true, &body(true))).await.unwrap();
    let (bytes, error) = drain(response).await;
    let sent = sse_events(Api::OpenAiResponses, Api::OpenAiResponses.default_fixtures().1);
    assert_eq!(bytes, sent[..4].concat());
    assert!(matches!(error, Some(ExecError::Interrupted(_))), "{error:?}");
}

#[tokio::test]
async fn usage_limit_passes_through_with_retry_after() {
    let env = Env::start().await;
    let cred = credential("codex", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    for stream in [true, false] {
        env.mock.push_fault(Fault::status(429).retry_after(120));
        let response = executor()
            .execute(&env.ctx, &auth, request(Operation::Generate, "m", stream, &body(stream)))
            .await
            .unwrap();
        assert_eq!(response.status, 429, "stream={stream}");
        assert_eq!(response.headers.get("retry-after").unwrap(), "120");
        assert_eq!(json(&body_ok(response).await)["error"]["type"], "usage_limit_reached");
    }
}

#[tokio::test]
async fn backend_cannot_count_tokens() {
    let env = Env::start().await;
    let cred = credential("codex", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let error =
        executor().execute(&env.ctx, &auth, request(Operation::CountTokens, "m", false, &body(false))).await.err();
    assert!(matches!(error, Some(ExecError::Unsupported(_))), "{error:?}");
    assert!(env.mock.requests().is_empty());
}

#[tokio::test]
async fn api_key_talks_to_the_responses_api_as_asked() {
    let env = Env::start().await;
    env.mock.require_auth(Some(RequiredAuth::Bearer(SECRET.into())));
    let executor = api_key_executor("codex-api-key").unwrap();
    let extra = vec![("OpenAI-Organization".to_owned(), "org-1".to_owned())];
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: None, headers: &extra };
    let response =
        executor.execute(&env.ctx, &auth, request(Operation::Generate, "m", false, &body(false))).await.unwrap();
    assert_eq!(response.status, 200);
    let (json_file, _) = Api::OpenAiResponses.default_fixtures();
    assert_eq!(body_ok(response).await, fixtures::read(json_file), "non-stream JSON passes through");
    let seen = env.mock.last_request();
    assert_eq!(seen.path, "/v1/responses");
    assert_eq!(seen.json()["stream"], false, "the public API does non-stream itself");
    assert_eq!(header(&seen, "openai-organization"), "org-1");
    assert!(seen.headers.get("chatgpt-account-id").is_none() && seen.headers.get("originator").is_none());

    // Its own base-url wins over the default.
    let base = format!("{}/v1", env.mock.base());
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: Some(&base), headers: &[] };
    let response =
        executor.execute(&env.ctx, &auth, request(Operation::CountTokens, "m", false, &body(false))).await.unwrap();
    assert_eq!(response.status, 200);
    assert!(json(&body_ok(response).await)["input_tokens"].as_u64().unwrap() > 0);
    let seen = env.mock.last_request();
    assert_eq!(seen.path, "/v1/responses/input_tokens");
    assert_eq!(header(&seen, "accept"), "application/json");
}

#[tokio::test]
async fn connection_refused_is_connect_and_names_no_token() {
    let port = closed_port().await;
    let ctx = context(&format!("upstream-urls:\n  codex:\n    api: http://127.0.0.1:{port}/backend-api/codex\n"));
    let cred = credential("codex", &[("account_id", ACCOUNT)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let error =
        executor().execute(&ctx, &auth, request(Operation::Generate, "m", false, &body(false))).await.err().unwrap();
    assert!(matches!(error, ExecError::Connect(_)), "{error:?}");
    assert_no_secret(&error);
}

#[tokio::test]
async fn mock_backend_rejects_non_stream_requests_like_the_real_one() {
    let mock = MockUpstream::start().await;
    let response = reqwest::Client::new()
        .post(mock.url(&format!("{CODEX_PREFIX}/responses")))
        .body(body(false).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"detail": "Stream must be set to true"}));
}
