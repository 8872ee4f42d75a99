//! The Google executors against the mock: Gemini CLI and Antigravity (Code Assist envelope,
//! Antigravity's base fallback), and the Gemini / Vertex API-key executors (plain Gemini).

mod exec_support;

use exec_support::*;
use serde_json::{Value, json};
use switchyard_providers::by_id;
use switchyard_providers::exec::api_key_executor;
use switchyard_providers::executor::{ExecError, Executor, Operation, UpstreamAuth};
use switchyard_testkit::fixtures;
use switchyard_testkit::upstream::{Api, Fault, MockUpstream, RequiredAuth, sse_events};

const PROJECT: &str = "proj-0001";
const MODEL: &str = "gemini-2.5-pro";

fn gemini_cli() -> std::sync::Arc<dyn Executor> {
    by_id("gemini-cli").and_then(|p| p.executor()).expect("Gemini CLI has an executor")
}

fn antigravity() -> std::sync::Arc<dyn Executor> {
    by_id("antigravity").and_then(|p| p.executor()).expect("Antigravity has an executor")
}

fn body() -> Value {
    json!({
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "generationConfig": {"temperature": 0.2},
    })
}

/// Each event's data, as JSON.
fn event_values(bytes: &[u8]) -> Vec<Value> {
    events(bytes).iter().map(|e| json(e.data.as_bytes())).collect()
}

fn fixture_values(file: &str) -> Vec<Value> {
    fixtures::chunks(file).iter().map(|c| json(c.as_bytes())).collect()
}

// ---------------------------------------------------------------------------------------------
// Gemini CLI

#[tokio::test]
async fn gemini_cli_wraps_the_request_and_unwraps_the_answer() {
    let env = Env::start().await;
    env.mock.require_auth(Some(RequiredAuth::Bearer(SECRET.into())));
    env.mock.require_project(Some(PROJECT));
    let cred = credential("gemini", &[("project_id", PROJECT)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        gemini_cli().execute(&env.ctx, &auth, request(Operation::Generate, MODEL, false, &body())).await.unwrap();
    assert_eq!(response.status, 200);
    assert!(response.headers.get("content-length").is_none(), "the length changed with the envelope");
    let answer = json(&body_ok(response).await);
    assert_eq!(answer, json(&fixtures::read("gemini/google-text.json")), "plain Gemini, envelope gone");

    let seen = env.mock.last_request();
    assert_eq!((seen.path.as_str(), seen.query.as_deref()), ("/v1internal:generateContent", None));
    assert_eq!(seen.json(), json!({"model": MODEL, "project": PROJECT, "request": body()}));
    for (name, value) in [
        ("authorization", format!("Bearer {SECRET}").as_str()),
        ("content-type", "application/json"),
        ("accept", "application/json"),
        ("user-agent", "google-api-nodejs-client/9.15.1"),
        ("x-goog-api-client", "gl-node/22.17.0"),
        ("client-metadata", "ideType=IDE_UNSPECIFIED,platform=PLATFORM_UNSPECIFIED,pluginType=GEMINI"),
    ] {
        assert_eq!(header(&seen, name), value, "{name}");
    }
}

#[tokio::test]
async fn gemini_cli_stream_events_are_unwrapped_one_by_one() {
    let env = Env::start().await;
    let file = "gemini/google-stream-no-args-tool-call.chunks.txt";
    env.mock.replay(Api::Gemini, file);
    let cred = credential("gemini", &[("project_id", PROJECT)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let request = with_client_headers(
        request(Operation::Generate, MODEL, true, &body()),
        &[("x-goog-api-client", "GeminiCLI/0.34.0 gl-node/v22.19.0")],
    );
    let response = gemini_cli().execute(&env.ctx, &auth, request).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(event_values(&body_ok(response).await), fixture_values(file));
    let seen = env.mock.last_request();
    assert_eq!((seen.path.as_str(), seen.query.as_deref()), ("/v1internal:streamGenerateContent", Some("alt=sse")));
    assert_eq!(header(&seen, "accept"), "text/event-stream");
    assert_eq!(header(&seen, "x-goog-api-client"), "GeminiCLI/0.34.0 gl-node/v22.19.0", "the client's value wins");
}

#[tokio::test]
async fn gemini_cli_stream_cut_keeps_what_came_and_ends_interrupted() {
    let env = Env::start().await;
    env.mock.drop_streams_after(Some(1));
    let cred = credential("gemini", &[("project_id", PROJECT)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        gemini_cli().execute(&env.ctx, &auth, request(Operation::Generate, MODEL, true, &body())).await.unwrap();
    let (bytes, error) = drain(response).await;
    assert_eq!(event_values(&bytes), fixture_values(Api::Gemini.default_fixtures().1)[..1]);
    assert!(matches!(error, Some(ExecError::Interrupted(_))), "{error:?}");
}

#[tokio::test]
async fn gemini_cli_count_tokens_sends_the_request_only() {
    let env = Env::start().await;
    let cred = credential("gemini", &[("project_id", PROJECT)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        gemini_cli().execute(&env.ctx, &auth, request(Operation::CountTokens, MODEL, false, &body())).await.unwrap();
    assert_eq!(response.status, 200);
    assert!(json(&body_ok(response).await)["totalTokens"].as_u64().unwrap() > 0);
    let seen = env.mock.last_request();
    assert_eq!(seen.path, "/v1internal:countTokens");
    let mut expected = body();
    expected["model"] = json!(format!("models/{MODEL}"));
    assert_eq!(seen.json(), json!({"request": expected}));
}

#[tokio::test]
async fn gemini_cli_connection_refused_is_connect_and_names_no_token() {
    let port = closed_port().await;
    let ctx = context(&format!("upstream-urls:\n  gemini-cli:\n    code-assist: http://127.0.0.1:{port}\n"));
    let cred = credential("gemini", &[("project_id", PROJECT)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let error =
        gemini_cli().execute(&ctx, &auth, request(Operation::Generate, MODEL, true, &body())).await.err().unwrap();
    assert!(matches!(error, ExecError::Connect(_)), "{error:?}");
    assert_no_secret(&error);
}

#[tokio::test]
async fn gemini_cli_without_project_is_a_credential_error_and_sends_nothing() {
    let env = Env::start().await;
    let cred = credential("gemini", &[]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let error = gemini_cli().execute(&env.ctx, &auth, request(Operation::Generate, MODEL, false, &body())).await.err();
    assert!(matches!(error, Some(ExecError::Credential(_))), "{error:?}");
    assert!(env.mock.requests().is_empty());
}

#[tokio::test]
async fn gemini_cli_errors_pass_through_untouched() {
    let env = Env::start().await;
    env.mock.require_project(Some("someone-elses"));
    let cred = credential("gemini", &[("project_id", PROJECT)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        gemini_cli().execute(&env.ctx, &auth, request(Operation::Generate, MODEL, true, &body())).await.unwrap();
    assert_eq!(response.status, 403);
    assert_eq!(json(&body_ok(response).await)["error"]["status"], "PERMISSION_DENIED");

    env.mock.push_fault(Fault::status(429).retry_after(30));
    let response =
        gemini_cli().execute(&env.ctx, &auth, request(Operation::Generate, MODEL, false, &body())).await.unwrap();
    assert_eq!(response.status, 429);
    assert_eq!(response.headers.get("retry-after").unwrap(), "30");
    assert_eq!(body_ok(response).await, fixtures::read("gemini/google-429-retry-info.json"));
}

// ---------------------------------------------------------------------------------------------
// Antigravity

#[tokio::test]
async fn antigravity_envelope_headers_and_unwrapped_stream() {
    let env = Env::start().await;
    env.mock.require_auth(Some(RequiredAuth::Bearer(SECRET.into())));
    env.mock.require_project(Some(PROJECT));
    let cred = credential("antigravity", &[("project_id", PROJECT)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let mut sent = body();
    sent["safetySettings"] = json!([{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "OFF"}]);
    let response =
        antigravity().execute(&env.ctx, &auth, request(Operation::Generate, MODEL, true, &sent)).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(event_values(&body_ok(response).await), fixture_values(Api::Gemini.default_fixtures().1));

    let seen = env.mock.last_request();
    assert_eq!((seen.path.as_str(), seen.query.as_deref()), ("/v1internal:streamGenerateContent", Some("alt=sse")));
    assert_eq!(header(&seen, "authorization"), format!("Bearer {SECRET}"));
    assert_eq!(header(&seen, "user-agent"), "antigravity/hub/2.9.1 darwin/arm64");
    let envelope = seen.json();
    assert_eq!(envelope["model"], MODEL);
    assert_eq!(envelope["userAgent"], "antigravity");
    assert_eq!(envelope["requestType"], "agent");
    assert_eq!(envelope["project"], PROJECT);
    let request_id = envelope["requestId"].as_str().unwrap();
    assert!(request_id.starts_with("agent-") && request_id.len() == 42, "{request_id}");
    let inner = &envelope["request"];
    assert!(inner.get("safetySettings").is_none());
    assert_eq!(inner["contents"], body()["contents"]);
    assert!(inner["sessionId"].as_str().unwrap().starts_with('-'));
}

#[tokio::test]
async fn antigravity_non_stream_answer_is_unwrapped() {
    let env = Env::start().await;
    env.mock.replay(Api::Gemini, "gemini/google-tool-call.json");
    let cred =
        credential("antigravity", &[("project_id", PROJECT), ("user_agent", "antigravity/1.11.5 windows/amd64")]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        antigravity().execute(&env.ctx, &auth, request(Operation::Generate, MODEL, false, &body())).await.unwrap();
    assert_eq!(json(&body_ok(response).await), json(&fixtures::read("gemini/google-tool-call.json")));
    let seen = env.mock.last_request();
    assert_eq!(seen.path, "/v1internal:generateContent");
    assert_eq!(header(&seen, "user-agent"), "antigravity/1.11.5 windows/amd64", "the credential's own agent");
}

#[tokio::test]
async fn antigravity_stream_cut_ends_with_interrupted_without_trying_another_base() {
    let (first, second) = (MockUpstream::start().await, MockUpstream::start().await);
    first.drop_streams_after(Some(1));
    let ctx = context(&two_bases(first.base(), second.base()));
    let cred = credential("antigravity", &[("project_id", PROJECT)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        antigravity().execute(&ctx, &auth, request(Operation::Generate, MODEL, true, &body())).await.unwrap();
    let (bytes, error) = drain(response).await;
    assert_eq!(event_values(&bytes), fixture_values(Api::Gemini.default_fixtures().1)[..1]);
    assert!(matches!(error, Some(ExecError::Interrupted(_))), "{error:?}");
    assert!(second.requests().is_empty(), "bytes were already passed on: no retry elsewhere");
}

/// Config putting `first` and `second` in place of Antigravity's daily and prod bases.
fn two_bases(first: &str, second: &str) -> String {
    format!("upstream-urls:\n  antigravity:\n    daily: {first}\n    prod: {second}\n")
}

#[tokio::test]
async fn antigravity_moves_to_the_next_base_on_429() {
    let (first, second) = (MockUpstream::start().await, MockUpstream::start().await);
    first.push_fault(Fault::status(429).retry_after(60));
    let ctx = context(&two_bases(first.base(), second.base()));
    let cred = credential("antigravity", &[("project_id", PROJECT)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        antigravity().execute(&ctx, &auth, request(Operation::Generate, MODEL, true, &body())).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(event_values(&body_ok(response).await), fixture_values(Api::Gemini.default_fixtures().1));
    assert_eq!((first.requests().len(), second.requests().len()), (1, 1));
    assert_eq!(first.last_request().body, second.last_request().body, "the same envelope goes to each base");
}

#[tokio::test]
async fn antigravity_moves_to_the_next_base_when_one_is_unreachable() {
    let second = MockUpstream::start().await;
    let port = closed_port().await;
    let ctx = context(&two_bases(&format!("http://127.0.0.1:{port}"), second.base()));
    let cred = credential("antigravity", &[("project_id", PROJECT)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        antigravity().execute(&ctx, &auth, request(Operation::Generate, MODEL, false, &body())).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(second.requests().len(), 1);

    // A connection dropped before any response byte counts too.
    let first = MockUpstream::start().await;
    first.push_fault(Fault::hangup());
    let ctx = context(&two_bases(first.base(), second.base()));
    let response =
        antigravity().execute(&ctx, &auth, request(Operation::Generate, MODEL, false, &body())).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!((first.requests().len(), second.requests().len()), (1, 2));
}

#[tokio::test]
async fn antigravity_last_base_answer_stands() {
    let (first, second) = (MockUpstream::start().await, MockUpstream::start().await);
    first.push_fault(Fault::status(429));
    second.push_fault(Fault::status(429).retry_after(45));
    let ctx = context(&two_bases(first.base(), second.base()));
    let cred = credential("antigravity", &[("project_id", PROJECT)]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        antigravity().execute(&ctx, &auth, request(Operation::Generate, MODEL, true, &body())).await.unwrap();
    assert_eq!(response.status, 429);
    assert_eq!(response.headers.get("retry-after").unwrap(), "45");

    // Other errors are answers too: no fallback on a 500.
    first.push_fault(Fault::status(500));
    let response =
        antigravity().execute(&ctx, &auth, request(Operation::Generate, MODEL, true, &body())).await.unwrap();
    assert_eq!(response.status, 500);
    assert_eq!(second.requests().len(), 1);

    // All unreachable: the last connection error, naming no token.
    let (a, b) = (closed_port().await, closed_port().await);
    let ctx = context(&two_bases(&format!("http://127.0.0.1:{a}"), &format!("http://127.0.0.1:{b}")));
    let error =
        antigravity().execute(&ctx, &auth, request(Operation::Generate, MODEL, true, &body())).await.err().unwrap();
    assert!(matches!(error, ExecError::Connect(_)), "{error:?}");
    assert_no_secret(&error);
}

#[tokio::test]
async fn antigravity_credential_base_url_replaces_the_list() {
    let (configured, own) = (MockUpstream::start().await, MockUpstream::start().await);
    let ctx = context(&configured.upstream_urls_yaml());
    let cred = credential("antigravity", &[("project_id", PROJECT), ("base_url", own.base())]);
    let auth = UpstreamAuth::OAuth { access_token: SECRET, credential: &cred };
    let response =
        antigravity().execute(&ctx, &auth, request(Operation::Generate, MODEL, false, &body())).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!((configured.requests().len(), own.requests().len()), (0, 1));
}

// ---------------------------------------------------------------------------------------------
// Gemini and Vertex API keys

#[tokio::test]
async fn gemini_api_key_sends_the_body_as_is_and_returns_the_fixture_bytes() {
    let env = Env::start().await;
    env.mock.require_auth(Some(RequiredAuth::GoogApiKey(SECRET.into())));
    let executor = api_key_executor("gemini-api-key").unwrap();
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: None, headers: &[] };
    let request = request(Operation::Generate, MODEL, false, &body());
    let sent = request.body.clone();
    let response = executor.execute(&env.ctx, &auth, request).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(body_ok(response).await, fixtures::read("gemini/google-text.json"));
    let seen = env.mock.last_request();
    assert_eq!(seen.path, format!("/v1beta/models/{MODEL}:generateContent"));
    assert_eq!(seen.body, sent);
    assert_eq!(header(&seen, "x-goog-api-key"), SECRET);
    assert!(seen.headers.get("authorization").is_none());
}

#[tokio::test]
async fn gemini_api_key_stream_is_the_recorded_wire_byte_for_byte() {
    let env = Env::start().await;
    // The one fixture that is a raw recording of the SSE body, CRLFs included.
    let file = "gemini/google-stream-gemini-3.7-flash-2026-09-16.chunks.txt";
    env.mock.replay(Api::Gemini, file);
    let executor = api_key_executor("gemini-api-key").unwrap();
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: None, headers: &[] };
    let response = executor
        .execute(&env.ctx, &auth, request(Operation::Generate, "models/gemini-3.7-flash", true, &body()))
        .await
        .unwrap();
    assert_eq!(body_ok(response).await, fixtures::read(file));
    let seen = env.mock.last_request();
    assert_eq!(
        (seen.path.as_str(), seen.query.as_deref()),
        ("/v1beta/models/gemini-3.7-flash:streamGenerateContent", Some("alt=sse"))
    );
}

#[tokio::test]
async fn gemini_api_key_stream_cut_and_wrong_key() {
    let env = Env::start().await;
    env.mock.drop_streams_after(Some(1));
    let executor = api_key_executor("gemini-api-key").unwrap();
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: None, headers: &[] };
    let response = executor.execute(&env.ctx, &auth, request(Operation::Generate, MODEL, true, &body())).await.unwrap();
    let (bytes, error) = drain(response).await;
    assert_eq!(bytes, sse_events(Api::Gemini, Api::Gemini.default_fixtures().1)[0]);
    assert!(matches!(error, Some(ExecError::Interrupted(_))), "{error:?}");

    env.mock.require_auth(Some(RequiredAuth::GoogApiKey("another-key".into())));
    let response =
        executor.execute(&env.ctx, &auth, request(Operation::CountTokens, MODEL, false, &body())).await.unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(json(&body_ok(response).await)["error"]["status"], "UNAUTHENTICATED");
    assert_eq!(env.mock.last_request().path, format!("/v1beta/models/{MODEL}:countTokens"));
}

#[tokio::test]
async fn gemini_api_key_rate_limit_passes_through_with_the_recorded_quota_error() {
    let env = Env::start().await;
    env.mock.push_fault(Fault::status(429).retry_after(9));
    let executor = api_key_executor("gemini-api-key").unwrap();
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: None, headers: &[] };
    let response = executor.execute(&env.ctx, &auth, request(Operation::Generate, MODEL, true, &body())).await.unwrap();
    assert_eq!(response.status, 429);
    assert_eq!(response.headers.get("retry-after").unwrap(), "9");
    assert_eq!(body_ok(response).await, fixtures::read("gemini/google-429-retry-info.json"));
}

#[tokio::test]
async fn mock_streams_a_json_array_without_alt_sse_like_google() {
    let mock = MockUpstream::start().await;
    let http = reqwest::Client::new();
    let url = mock.url(&format!("/v1beta/models/{MODEL}:streamGenerateContent"));
    let array: Value = http.post(url).body(body().to_string()).send().await.unwrap().json().await.unwrap();
    assert_eq!(array, Value::Array(fixture_values(Api::Gemini.default_fixtures().1)));
    let url = mock.url("/v1internal:streamGenerateContent");
    let envelope = json!({"model": MODEL, "project": PROJECT, "request": body()});
    let array: Value = http.post(url).body(envelope.to_string()).send().await.unwrap().json().await.unwrap();
    assert_eq!(array[0]["response"], fixture_values(Api::Gemini.default_fixtures().1)[0]);
    assert_eq!(array[0]["traceId"], switchyard_testkit::upstream::TRACE_ID);
}

#[tokio::test]
async fn vertex_api_key_uses_the_publisher_path() {
    let env = Env::start().await;
    env.mock.require_auth(Some(RequiredAuth::GoogApiKey(SECRET.into())));
    let executor = api_key_executor("vertex-api-key").unwrap();
    let extra = vec![("x-goog-user-project".to_owned(), "billing-1".to_owned())];
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: None, headers: &extra };
    let response = executor.execute(&env.ctx, &auth, request(Operation::Generate, MODEL, true, &body())).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(body_ok(response).await, sse_events(Api::Gemini, Api::Gemini.default_fixtures().1).concat());
    let seen = env.mock.last_request();
    assert_eq!(
        (seen.path.as_str(), seen.query.as_deref()),
        (format!("/v1/publishers/google/models/{MODEL}:streamGenerateContent").as_str(), Some("alt=sse"))
    );
    assert_eq!(header(&seen, "x-goog-user-project"), "billing-1");
}

#[tokio::test]
async fn api_key_in_a_base_url_never_reaches_the_error() {
    let port = closed_port().await;
    let base = format!("http://127.0.0.1:{port}/gm?key={SECRET}");
    let executor = api_key_executor("gemini-api-key").unwrap();
    let auth = UpstreamAuth::ApiKey { key: SECRET, base_url: Some(&base), headers: &[] };
    let error =
        executor.execute(&context(""), &auth, request(Operation::Generate, MODEL, false, &body())).await.err().unwrap();
    assert!(matches!(error, ExecError::Connect(_)), "{error:?}");
    assert_no_secret(&error);
}
