//! The OpenAI-compatible executor against the mock Chat Completions API.

mod exec_support;

use exec_support::*;
use serde_json::{Value, json};
use switchyard_providers::exec::api_key_executor;
use switchyard_providers::executor::{ExecError, Executor, Operation, UpstreamAuth};
use switchyard_testkit::fixtures;
use switchyard_testkit::upstream::{Api, Fault, RequiredAuth, sse_events};

fn executor() -> std::sync::Arc<dyn Executor> {
    api_key_executor("openai-compatibility").expect("openai-compatibility has an executor")
}

fn body(stream: bool) -> Value {
    json!({"model": "deepseek-chat", "messages": [{"role": "user", "content": "hi"}], "stream": stream})
}

#[tokio::test]
async fn chat_completions_with_bearer_key_and_entry_headers() {
    let env = Env::start().await;
    env.mock.require_auth(Some(RequiredAuth::Bearer(SECRET.into())));
    let base = format!("{}/v1/", env.mock.base());
    let extra = vec![("X-Title".to_owned(), "switchyard".to_owned())];
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: Some(&base), headers: &extra };
    let request = request(Operation::Generate, "deepseek-chat", false, &body(false));
    let sent = request.body.clone();
    let response = executor().execute(&env.ctx, &auth, request).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(body_ok(response).await, fixtures::read("openai-chat/openai-text.json"));
    let seen = env.mock.last_request();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.body, sent);
    assert_eq!(header(&seen, "authorization"), format!("Bearer {SECRET}"));
    assert_eq!(header(&seen, "x-title"), "switchyard");
}

#[tokio::test]
async fn stream_passes_through_with_done_marker() {
    let env = Env::start().await;
    let file = "openai-chat/deepseek-tool-call.chunks.txt";
    env.mock.replay(Api::OpenAiChat, file);
    let base = format!("{}/v1", env.mock.base());
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: Some(&base), headers: &[] };
    let response =
        executor().execute(&env.ctx, &auth, request(Operation::Generate, "m", true, &body(true))).await.unwrap();
    let bytes = body_ok(response).await;
    assert_eq!(bytes, sse_events(Api::OpenAiChat, file).concat());
    let data: Vec<String> = events(&bytes).into_iter().map(|e| e.data).collect();
    let mut expected = fixtures::chunks(file);
    expected.push("[DONE]".into());
    assert_eq!(data, expected);
    assert_eq!(header(&env.mock.last_request(), "accept"), "text/event-stream");
}

#[tokio::test]
async fn stream_cut_ends_with_interrupted_and_faults_pass_through() {
    let env = Env::start().await;
    let base = format!("{}/v1", env.mock.base());
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: Some(&base), headers: &[] };

    env.mock.drop_streams_after(Some(2));
    let response =
        executor().execute(&env.ctx, &auth, request(Operation::Generate, "m", true, &body(true))).await.unwrap();
    let (bytes, error) = drain(response).await;
    assert_eq!(bytes, sse_events(Api::OpenAiChat, Api::OpenAiChat.default_fixtures().1)[..2].concat());
    assert!(matches!(&error, Some(ExecError::Interrupted(_))), "{error:?}");
    assert_no_secret(&error.unwrap());

    env.mock.push_fault(Fault::status(503).body("upstream overloaded").retry_after(5));
    let response =
        executor().execute(&env.ctx, &auth, request(Operation::Generate, "m", true, &body(true))).await.unwrap();
    assert_eq!(response.status, 503);
    assert_eq!(response.headers.get("retry-after").unwrap(), "5");
    assert_eq!(body_ok(response).await, b"upstream overloaded");
}

#[tokio::test]
async fn missing_base_url_and_token_counting_are_refused_before_any_call() {
    let env = Env::start().await;
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: None, headers: &[] };
    let error = executor().execute(&env.ctx, &auth, request(Operation::Generate, "m", false, &body(false))).await.err();
    assert!(matches!(error, Some(ExecError::Credential(_))), "{error:?}");
    let base = env.mock.base().to_owned();
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: Some(&base), headers: &[] };
    let error =
        executor().execute(&env.ctx, &auth, request(Operation::CountTokens, "m", false, &body(false))).await.err();
    assert!(matches!(error, Some(ExecError::Unsupported(_))), "{error:?}");
    assert!(env.mock.requests().is_empty());
}

#[tokio::test]
async fn connection_refused_is_connect_and_names_no_key() {
    let base = format!("http://127.0.0.1:{}/v1", closed_port().await);
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: Some(&base), headers: &[] };
    let error = executor()
        .execute(&context(""), &auth, request(Operation::Generate, "m", true, &body(true)))
        .await
        .err()
        .unwrap();
    assert!(matches!(error, ExecError::Connect(_)), "{error:?}");
    assert!(error.to_string().contains("127.0.0.1"), "the error says where: {error}");
    assert_no_secret(&error);
}
