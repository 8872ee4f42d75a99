//! The xAI executor against the mock Responses API: the Grok CLI proxy for OAuth accounts, the
//! public API for `using_api` accounts and `xai-api-key` entries.

mod exec_support;

use std::sync::Arc;

use exec_support::{
    SECRET, assert_no_secret, body_ok, closed_port, context, credential, drain, header, json, request,
    with_client_headers,
};
use serde_json::{Value, json};
use switchyard_providers::by_id;
use switchyard_providers::exec::api_key_executor;
use switchyard_providers::executor::{ExecContext, ExecError, Executor, Operation, UpstreamAuth};
use switchyard_testkit::RecordedRequest;
use switchyard_testkit::xai::{GROK_CLI_HEADERS, MockXai, PUBLIC_RESPONSES_PATH, RESPONSES_PATH, ResponsesFault};

const MODEL: &str = "grok-code-fast-1";
const KEY: &str = "xai-key-0123456789abcdefghij";

fn executor() -> Arc<dyn Executor> {
    by_id("xai").and_then(|p| p.executor()).expect("xAI has an executor")
}

fn body(stream: bool) -> Value {
    json!({"model": MODEL, "input": "hi", "stream": stream})
}

/// A mock with a context whose `upstream-urls.xai.api` points at its CLI proxy.
async fn env() -> (MockXai, ExecContext) {
    let mock = MockXai::start().await;
    let ctx = context(&mock.upstream_urls_yaml());
    (mock, ctx)
}

/// A context whose `upstream-urls.xai.api` points at the mock's public API.
fn public(mock: &MockXai) -> ExecContext {
    context(&format!("upstream-urls:\n  xai:\n    api: {}\n", mock.public_api_base()))
}

fn last_public(mock: &MockXai) -> RecordedRequest {
    mock.requests_to(PUBLIC_RESPONSES_PATH).pop().expect("the public API got a request")
}

/// The `response` object of the fixture's `response.completed` event.
fn completed_response(mock: &MockXai) -> Value {
    mock.stream_events()
        .iter()
        .filter_map(|event| {
            let text = String::from_utf8_lossy(event);
            let data = text.lines().find_map(|l| l.strip_prefix("data: "))?.to_owned();
            serde_json::from_str::<Value>(&data).ok()
        })
        .find(|event| event["type"] == "response.completed")
        .map(|event| event["response"].clone())
        .expect("fixture has response.completed")
}

fn is_uuid_v4(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && text.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
        && parts[2].starts_with('4')
}

fn assert_no_grok_headers(seen: &RecordedRequest) {
    for (name, _) in GROK_CLI_HEADERS {
        assert!(seen.headers.get(*name).is_none(), "{name} must not reach the public API");
    }
}

#[tokio::test]
async fn oauth_stream_goes_to_the_cli_proxy_with_the_grok_cli_headers_byte_for_byte() {
    let (mock, ctx) = env().await;
    let tokens = mock.issue_tokens();
    let cred = credential("xai", &[]);
    let auth = UpstreamAuth::OAuth { access_token: &tokens.access_token, credential: &cred };
    let response =
        executor().execute(&ctx, &auth, request(Operation::Generate, MODEL, true, &body(true))).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(body_ok(response).await, mock.stream_events().concat());

    let seen = mock.requests_to(RESPONSES_PATH).pop().unwrap();
    for (name, value) in [
        ("authorization", format!("Bearer {}", tokens.access_token).as_str()),
        ("x-xai-token-auth", "xai-grok-cli"),
        ("x-grok-client-version", "0.2.120"),
        ("user-agent", "xai-grok-workspace/0.2.120"),
        ("x-grok-client-identifier", "grok-shell"),
        ("x-authenticateresponse", "authenticate-response"),
        ("accept", "text/event-stream"),
        ("content-type", "application/json"),
    ] {
        assert_eq!(header(&seen, name), value, "{name}");
    }
    let conversation = header(&seen, "x-grok-conv-id").to_owned();
    assert!(is_uuid_v4(&conversation), "{conversation}");
    assert_eq!(seen.json(), json!({"model": MODEL, "input": "hi", "stream": true, "store": false}));

    // A new conversation id per request, unless the client names its own.
    executor().execute(&ctx, &auth, request(Operation::Generate, MODEL, true, &body(true))).await.unwrap();
    let next = mock.requests_to(RESPONSES_PATH).pop().unwrap();
    assert_ne!(header(&next, "x-grok-conv-id"), conversation);
    let own =
        with_client_headers(request(Operation::Generate, MODEL, true, &body(true)), &[("x-grok-conv-id", "conv-7")]);
    executor().execute(&ctx, &auth, own).await.unwrap();
    assert_eq!(header(&mock.requests_to(RESPONSES_PATH).pop().unwrap(), "x-grok-conv-id"), "conv-7");
}

#[tokio::test]
async fn oauth_non_stream_is_streamed_upstream_and_folded() {
    let (mock, ctx) = env().await;
    let tokens = mock.issue_tokens();
    let cred = credential("xai", &[]);
    let auth = UpstreamAuth::OAuth { access_token: &tokens.access_token, credential: &cred };
    let response =
        executor().execute(&ctx, &auth, request(Operation::Generate, MODEL, false, &body(false))).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.headers.get("content-type").unwrap(), "application/json");
    assert_eq!(json(&body_ok(response).await), completed_response(&mock));
    let seen = mock.requests_to(RESPONSES_PATH).pop().unwrap();
    assert_eq!(seen.json()["stream"], true);
    assert_eq!(header(&seen, "accept"), "text/event-stream");
}

#[tokio::test]
async fn using_api_accounts_use_the_public_api_configured_url_first() {
    let (mock, _) = env().await;
    let ctx = public(&mock);
    let tokens = mock.issue_tokens();
    // The file's base_url points nowhere: the configured `api` wins over it.
    let dead = format!("http://127.0.0.1:{}/v1", closed_port().await);
    for flag in [json!(true), json!("true")] {
        let mut cred = credential("xai", &[("base_url", &dead)]);
        cred.fields_mut().insert("using_api".into(), flag);
        let auth = UpstreamAuth::OAuth { access_token: &tokens.access_token, credential: &cred };
        let response =
            executor().execute(&ctx, &auth, request(Operation::Generate, MODEL, false, &body(false))).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(body_ok(response).await, mock.json_body(), "non-stream passes through");
        let seen = last_public(&mock);
        assert_eq!(seen.json()["stream"], false);
        assert_eq!(header(&seen, "accept"), "application/json");
        assert_no_grok_headers(&seen);
    }

    // Without a configured `api`, the file's base_url.
    let mut cred = credential("xai", &[("base_url", &mock.public_api_base())]);
    cred.fields_mut().insert("using_api".into(), json!(true));
    let auth = UpstreamAuth::OAuth { access_token: &tokens.access_token, credential: &cred };
    let response =
        executor().execute(&context(""), &auth, request(Operation::Generate, MODEL, true, &body(true))).await.unwrap();
    assert_eq!(body_ok(response).await, mock.stream_events().concat());
}

#[tokio::test]
async fn api_keys_use_a_plain_bearer_and_their_own_base_url_first() {
    let (mock, _) = env().await;
    mock.add_api_key(KEY);
    let executor = api_key_executor("xai-api-key").expect("xai-api-key is served");
    let extra = [("x-team".to_owned(), "blue".to_owned())];
    // The configured `api` points nowhere: the entry's base-url wins.
    let dead = format!("upstream-urls:\n  xai:\n    api: http://127.0.0.1:{}/v1\n", closed_port().await);
    let api_base = mock.public_api_base();
    let auth = UpstreamAuth::ApiKey { key: KEY, base_url: Some(&api_base), headers: &extra };
    let response = executor
        .execute(&context(&dead), &auth, request(Operation::Generate, MODEL, false, &body(false)))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(body_ok(response).await, mock.json_body());
    let seen = last_public(&mock);
    assert_eq!(header(&seen, "authorization"), format!("Bearer {KEY}"));
    assert_eq!(header(&seen, "x-team"), "blue");
    assert_no_grok_headers(&seen);

    // No base-url: the configured `api`.
    let auth = UpstreamAuth::ApiKey { key: KEY, base_url: Some("  "), headers: &[] };
    let ctx = public(&mock);
    let response = executor.execute(&ctx, &auth, request(Operation::Generate, MODEL, true, &body(true))).await.unwrap();
    assert_eq!(body_ok(response).await, mock.stream_events().concat());
}

#[tokio::test]
async fn a_rejected_bearer_is_401_other_client_errors_stay_400() {
    let (mock, _) = env().await;
    let ctx = public(&mock);
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: None, headers: &[] };
    for stream in [false, true] {
        let response =
            executor().execute(&ctx, &auth, request(Operation::Generate, MODEL, stream, &body(stream))).await.unwrap();
        assert_eq!(response.status, 401, "stream={stream}");
        let error = json(&body_ok(response).await);
        assert_eq!(error["code"], "Client specified an invalid argument");
        let message = error["error"].as_str().unwrap();
        assert!(message.starts_with("Incorrect API key provided: sk***ef."), "{message}");
    }

    // An expired Grok CLI token at the CLI proxy: the same answer, so the router refreshes it.
    let cred = credential("xai", &[]);
    let expired = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response = executor()
        .execute(&context(&mock.upstream_urls_yaml()), &expired, request(Operation::Generate, MODEL, true, &body(true)))
        .await
        .unwrap();
    assert_eq!(response.status, 401);

    mock.add_api_key(KEY);
    let auth = UpstreamAuth::ApiKey { key: KEY, base_url: None, headers: &[] };
    mock.push_responses_fault(ResponsesFault::status(400, "This model's maximum prompt length is 131072"));
    let response =
        executor().execute(&ctx, &auth, request(Operation::Generate, MODEL, true, &body(true))).await.unwrap();
    assert_eq!(response.status, 400);
    assert_eq!(json(&body_ok(response).await)["error"], "This model's maximum prompt length is 131072");

    mock.push_responses_fault(ResponsesFault::status(429, "rate limited").retry_after(7));
    let response =
        executor().execute(&ctx, &auth, request(Operation::Generate, MODEL, true, &body(true))).await.unwrap();
    assert_eq!(response.status, 429);
    assert_eq!(response.headers.get("retry-after").unwrap(), "7");
}

#[tokio::test]
async fn reasoning_effort_is_fitted_so_grok_accepts_translated_requests() {
    let (mock, _) = env().await;
    let ctx = public(&mock);
    mock.add_api_key(KEY);
    let auth = UpstreamAuth::ApiKey { key: KEY, base_url: None, headers: &[] };
    // What the dialect translators write when a client asks for thinking.
    let translated = |model: &str, effort: &str| {
        json!({"model": model, "input": "hi", "stream": true, "store": false,
               "reasoning": {"effort": effort, "summary": "auto"}, "include": ["reasoning.encrypted_content"]})
    };
    for (model, effort, sent) in [
        ("grok-4", "high", json!({"summary": "auto"})),
        ("grok-code-fast-1", "medium", json!({"summary": "auto"})),
        ("grok-3-mini", "medium", json!({"effort": "high", "summary": "auto"})),
        ("grok-3", "low", Value::Null),
    ] {
        let response = executor()
            .execute(&ctx, &auth, request(Operation::Generate, model, true, &translated(model, effort)))
            .await
            .unwrap();
        assert_eq!(response.status, 200, "{model}");
        let seen = last_public(&mock).json();
        assert_eq!(seen["reasoning"], sent, "{model}");
        assert_eq!(seen["include"], json!(["reasoning.encrypted_content"]));
    }
    // A model the catalogue does not know goes out as written.
    executor()
        .execute(&ctx, &auth, request(Operation::Generate, "grok-4.3", true, &translated("grok-4.3", "medium")))
        .await
        .unwrap();
    let seen = last_public(&mock).json();
    assert_eq!(seen["reasoning"], json!({"effort": "medium", "summary": "auto"}));
}

#[tokio::test]
async fn a_client_chosen_store_and_continued_conversations_are_left_alone() {
    let (mock, _) = env().await;
    let ctx = public(&mock);
    mock.add_api_key(KEY);
    let auth = UpstreamAuth::ApiKey { key: KEY, base_url: None, headers: &[] };
    for sent in [
        json!({"model": MODEL, "input": "hi", "store": true}),
        json!({"model": MODEL, "input": "more", "previous_response_id": "resp_1"}),
    ] {
        executor().execute(&ctx, &auth, request(Operation::Generate, MODEL, false, &sent)).await.unwrap();
        assert_eq!(last_public(&mock).json(), sent);
    }
}

#[tokio::test]
async fn a_cut_stream_ends_with_interrupted() {
    let (mock, ctx) = env().await;
    mock.drop_streams_after(Some(3));
    let tokens = mock.issue_tokens();
    let cred = credential("xai", &[]);
    let auth = UpstreamAuth::OAuth { access_token: &tokens.access_token, credential: &cred };
    let response =
        executor().execute(&ctx, &auth, request(Operation::Generate, MODEL, true, &body(true))).await.unwrap();
    let (bytes, error) = drain(response).await;
    assert_eq!(bytes, mock.stream_events()[..3].concat());
    assert!(matches!(error, Some(ExecError::Interrupted(_))), "{error:?}");

    // Folded: the stream never completed.
    let error = executor().execute(&ctx, &auth, request(Operation::Generate, MODEL, false, &body(false))).await.err();
    assert!(matches!(error, Some(ExecError::Interrupted(_))), "{error:?}");
}

#[tokio::test]
async fn token_counting_and_stored_credentials_are_refused_without_a_request() {
    let (mock, ctx) = env().await;
    let cred = credential("xai", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let error =
        executor().execute(&ctx, &auth, request(Operation::CountTokens, MODEL, false, &body(false))).await.err();
    assert!(matches!(error, Some(ExecError::Unsupported(_))), "{error:?}");
    let stored = UpstreamAuth::Stored { credential: &cred };
    let error = executor().execute(&ctx, &stored, request(Operation::Generate, MODEL, true, &body(true))).await.err();
    assert!(matches!(error, Some(ExecError::Credential(_))), "{error:?}");
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn connection_failures_say_so_without_the_key() {
    let ctx = context(&format!("upstream-urls:\n  xai:\n    api: http://127.0.0.1:{}/v1\n", closed_port().await));
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: None, headers: &[] };
    let error =
        executor().execute(&ctx, &auth, request(Operation::Generate, MODEL, true, &body(true))).await.err().unwrap();
    assert!(matches!(error, ExecError::Connect(_)), "{error:?}");
    assert_no_secret(&error);
}
