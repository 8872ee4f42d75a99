//! The Kiro executor against the mock CodeWhisperer / Amazon Q APIs: AWS JSON out (headers,
//! target, origin, profile ARN rules), event-stream frames back as Anthropic SSE or one Anthropic
//! message, endpoint fallback and the status rules, broken streams.

mod exec_support;

use std::sync::Arc;

use exec_support::{body_ok, context, drain, events, header, json, request, with_client_headers};
use serde_json::{Value, json};
use switchyard_auth::Credential;
use switchyard_providers::executor::{ExecContext, ExecError, Executor, Operation, UpstreamAuth, UpstreamResponse};
use switchyard_providers::{Provider, kiro::Kiro};
use switchyard_testkit::kiro::{Api, ApiFault, CODEWHISPERER_PATH, Frame, MockKiro, PROFILE_ARN, Q_PATH};

const MODEL: &str = "kiro-claude-sonnet-4-5";

fn executor() -> Arc<dyn Executor> {
    Kiro.executor().expect("Kiro has an executor")
}

struct Env {
    mock: MockKiro,
    ctx: ExecContext,
    token: String,
    credential: Credential,
}

impl Env {
    /// A mock and a Builder ID credential with a live token.
    async fn builder_id() -> Env {
        Env::with_yaml("").await
    }

    async fn with_yaml(extra: &str) -> Env {
        let mock = MockKiro::start().await;
        let ctx = context(&format!("{}{extra}", mock.upstream_urls_yaml()));
        let tokens = mock.issue_oidc_tokens("us-east-1", "cid", "csecret");
        let credential = Credential::from_json(
            json!({"type": "kiro", "access_token": tokens.access_token, "auth_method": "builder-id",
                   "client_id": "cid", "client_secret": "csecret", "region": "us-east-1"})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        Env { mock, ctx, token: tokens.access_token, credential }
    }

    async fn social() -> Env {
        let mut env = Env::builder_id().await;
        let tokens = env.mock.issue_social_tokens();
        env.credential = Credential::from_json(
            json!({"type": "kiro", "access_token": tokens.access_token, "auth_method": "social",
                   "provider": "Google", "profile_arn": PROFILE_ARN})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        env.token = tokens.access_token;
        env
    }

    fn set(&mut self, key: &str, value: Value) {
        self.credential.fields_mut().insert(key.into(), value);
    }

    async fn call(&self, stream: bool, body: &Value) -> Result<UpstreamResponse, ExecError> {
        let auth = UpstreamAuth::OAuth { access_token: &self.token, credential: &self.credential };
        executor().execute(&self.ctx, &auth, request(Operation::Generate, MODEL, stream, body)).await
    }

    async fn ok(&self, stream: bool, body: &Value) -> UpstreamResponse {
        self.call(stream, body).await.expect("an answer")
    }
}

fn body(stream: bool) -> Value {
    json!({"model": MODEL, "max_tokens": 256, "stream": stream, "messages": [{"role": "user", "content": "Hi there"}]})
}

fn sse_json(bytes: &[u8]) -> Vec<Value> {
    events(bytes).iter().map(|e| json(e.data.as_bytes())).collect()
}

fn text_of(events: &[Value]) -> String {
    events.iter().filter_map(|e| e["delta"]["text"].as_str()).collect()
}

#[tokio::test]
async fn stream_goes_to_codewhisperer_with_aws_headers_and_comes_back_as_anthropic_sse() {
    let env = Env::builder_id().await;
    let response = env.ok(true, &body(true)).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.headers["content-type"], "text/event-stream");
    let bytes = body_ok(response).await;
    let events = sse_json(&bytes);
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(text_of(&events), "Hello from Kiro!");
    assert_eq!(events[0]["message"]["model"], MODEL);
    assert!(events[0]["message"]["id"].as_str().unwrap().starts_with("msg_"));
    let delta = &events[5];
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    // No usage from Kiro: estimated from the text (4 characters a token).
    assert!(delta["usage"]["input_tokens"].as_i64().unwrap() >= 2, "{delta}");
    assert_eq!(delta["usage"]["output_tokens"], 4, "16 characters");

    let seen = env.mock.requests_to(CODEWHISPERER_PATH);
    assert_eq!(seen.len(), 1);
    let seen = &seen[0];
    for (name, value) in [
        ("authorization", format!("Bearer {}", env.token).as_str()),
        ("content-type", "application/x-amz-json-1.0"),
        ("accept", "*/*"),
        ("x-amz-target", "AmazonCodeWhispererStreamingService.GenerateAssistantResponse"),
        ("user-agent", "aws-sdk-rust/1.3.9 os/macos lang/rust/1.87.0"),
        (
            "x-amz-user-agent",
            "aws-sdk-rust/1.3.9 ua/2.1 api/ssooidc/1.88.0 os/macos lang/rust/1.87.0 m/E app/AmazonQ-For-CLI",
        ),
        ("amz-sdk-request", "attempt=1; max=3"),
    ] {
        assert_eq!(header(seen, name), value, "{name}");
    }
    let invocation = header(seen, "amz-sdk-invocation-id");
    assert_eq!(invocation.len(), 36, "{invocation}");
    let sent = seen.json();
    let message = &sent["conversationState"]["currentMessage"]["userInputMessage"];
    assert_eq!(message["origin"], "AI_EDITOR");
    assert_eq!(message["modelId"], "claude-sonnet-4.5");
    assert_eq!(message["content"], "Hi there");
    assert!(sent.get("profileArn").is_none(), "Builder ID tokens carry no profile");
    assert_eq!(sent["inferenceConfig"], json!({"maxTokens": 256}));
    assert_eq!(env.mock.count(Q_PATH), 0);
}

#[tokio::test]
async fn non_stream_is_folded_into_one_anthropic_message_with_reported_usage() {
    let env = Env::builder_id().await;
    env.mock.set_frames(vec![
        Frame::text("Hello"),
        Frame::text(" world"),
        Frame::usage(11, 2),
        Frame::stop("end_turn"),
    ]);
    let response = env.ok(false, &body(false)).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.headers["content-type"], "application/json");
    let message = json(&body_ok(response).await);
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["model"], MODEL);
    assert_eq!(message["content"], json!([{"type": "text", "text": "Hello world"}]));
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["usage"]["input_tokens"], 11);
    assert_eq!(message["usage"]["output_tokens"], 2);
}

#[tokio::test]
async fn tool_calls_from_fragments_and_inline_text_come_back_as_tool_use() {
    let env = Env::builder_id().await;
    env.mock.set_frames(vec![
        Frame::text("Checking. "),
        Frame::tool_use("tooluse_1", "get_weather", "{\"city\":", false),
        Frame::tool_use("tooluse_1", "get_weather", "\"Paris\"}", false),
        Frame::tool_use("tooluse_1", "get_weather", "", true),
        Frame::text("[Called read_file with args: {\"path\": \"a.txt\"}]"),
    ]);
    let message = json(&body_ok(env.ok(false, &body(false)).await).await);
    let content = message["content"].as_array().unwrap();
    assert_eq!(content[0], json!({"type": "text", "text": "Checking. "}));
    assert_eq!(
        content[1],
        json!({"type": "tool_use", "id": "tooluse_1", "name": "get_weather", "input": {"city": "Paris"}})
    );
    assert_eq!(content[2]["type"], "tool_use");
    assert_eq!(content[2]["name"], "read_file");
    assert_eq!(content[2]["input"], json!({"path": "a.txt"}));
    assert_eq!(message["stop_reason"], "tool_use");

    let events = sse_json(&body_ok(env.ok(true, &body(true)).await).await);
    let partial: String = events.iter().filter_map(|e| e["delta"]["partial_json"].as_str()).collect();
    assert_eq!(partial, "{\"city\":\"Paris\"}{\"path\":\"a.txt\"}");
}

#[tokio::test]
async fn thinking_tags_become_thinking_blocks_when_thinking_was_asked_for() {
    let env = Env::builder_id().await;
    env.mock.set_frames(vec![Frame::text("<think"), Frame::text("ing>weigh it</thinking>\n\nAnswer.")]);
    let mut thinking = body(false);
    thinking["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    thinking["max_tokens"] = json!(4096);
    let message = json(&body_ok(env.ok(false, &thinking).await).await);
    assert_eq!(
        message["content"],
        json!([{"type": "thinking", "thinking": "weigh it", "signature": ""}, {"type": "text", "text": "Answer."}])
    );
    let sent = env.mock.requests_to(CODEWHISPERER_PATH)[0].json();
    let content =
        sent["conversationState"]["currentMessage"]["userInputMessage"]["content"].as_str().unwrap().to_owned();
    assert!(content.contains("<max_thinking_length>2048</max_thinking_length>"), "{content}");

    let plain = json(&body_ok(env.ok(false, &body(false)).await).await);
    assert_eq!(plain["content"][0]["text"], "<thinking>weigh it</thinking>\n\nAnswer.", "no thinking asked: text");
}

#[tokio::test]
async fn throttling_moves_to_amazon_q_with_its_origin_and_target() {
    let env = Env::builder_id().await;
    env.mock.push_fault(Api::CodeWhisperer, ApiFault::Throttle);
    let message = json(&body_ok(env.ok(false, &body(false)).await).await);
    assert_eq!(message["content"][0]["text"], "Hello from Kiro!");
    assert_eq!(env.mock.count(CODEWHISPERER_PATH), 1);
    let q = env.mock.requests_to(Q_PATH);
    assert_eq!(q.len(), 1);
    assert_eq!(header(&q[0], "x-amz-target"), "AmazonQDeveloperStreamingService.SendMessage");
    assert_eq!(q[0].json()["conversationState"]["currentMessage"]["userInputMessage"]["origin"], "CLI");

    // A throttling exception as the first frame counts the same.
    env.mock.push_fault(
        Api::CodeWhisperer,
        ApiFault::Exception { kind: "ThrottlingException".into(), message: "busy".into() },
    );
    let response = env.ok(true, &body(true)).await;
    assert_eq!(response.status, 200);
    assert_eq!(text_of(&sse_json(&body_ok(response).await)), "Hello from Kiro!");
    assert_eq!(env.mock.count(Q_PATH), 2);
}

#[tokio::test]
async fn both_endpoints_throttled_is_a_429_in_anthropic_shape() {
    let env = Env::builder_id().await;
    env.mock.push_fault(Api::CodeWhisperer, ApiFault::Throttle);
    env.mock.push_fault(Api::AmazonQ, ApiFault::Throttle);
    let response = env.ok(false, &body(false)).await;
    assert_eq!(response.status, 429);
    assert_eq!(response.headers["retry-after"], "7");
    let error = json(&body_ok(response).await);
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "rate_limit_error");
    assert_eq!(
        error["error"]["message"],
        "Kiro answered HTTP 429: Too many requests, please wait before trying again."
    );
}

#[tokio::test]
async fn the_preferred_endpoint_goes_first() {
    let mut env = Env::builder_id().await;
    env.set("preferred_endpoint", json!("amazonq"));
    body_ok(env.ok(false, &body(false)).await).await;
    assert_eq!((env.mock.count(Q_PATH), env.mock.count(CODEWHISPERER_PATH)), (1, 0));

    let env = Env::with_yaml("kiro-preferred-endpoint: q\n").await;
    body_ok(env.ok(false, &body(false)).await).await;
    assert_eq!((env.mock.count(Q_PATH), env.mock.count(CODEWHISPERER_PATH)), (1, 0), "config's choice");
}

#[tokio::test]
async fn forbidden_answers_follow_the_status_rules() {
    let env = Env::builder_id().await;
    env.mock.push_fault(Api::CodeWhisperer, ApiFault::Suspended);
    let response = env.ok(false, &body(false)).await;
    assert_eq!(response.status, 403);
    let error = json(&body_ok(response).await);
    assert_eq!(error["error"]["type"], "permission_error");
    assert_eq!(error["error"]["message"], "Kiro account suspended: Your account has been temporarily suspended.");
    assert_eq!(env.mock.count(Q_PATH), 0, "a 403 does not switch endpoints");

    env.mock.push_fault(Api::CodeWhisperer, ApiFault::InvalidToken);
    let response = env.ok(false, &body(false)).await;
    assert_eq!(response.status, 401, "a token 403 is a 401, so the pipeline refreshes");
    let error = json(&body_ok(response).await);
    assert_eq!(error["error"]["type"], "authentication_error");

    env.mock.push_fault(Api::CodeWhisperer, ApiFault::MonthlyLimit);
    let response = env.ok(false, &body(false)).await;
    assert_eq!(response.status, 402);
    let error = json(&body_ok(response).await);
    assert_eq!(
        error["error"]["message"],
        "Kiro usage limit reached: You have reached the monthly request limit of your plan."
    );
}

#[tokio::test]
async fn a_wrong_token_is_answered_as_401() {
    let mut env = Env::builder_id().await;
    env.token = "mock-kiro-at-not-issued".into();
    let response = env.ok(false, &body(false)).await;
    assert_eq!(response.status, 401);
    let text = String::from_utf8(body_ok(response).await).unwrap();
    assert!(!text.contains("mock-kiro-at-not-issued"), "{text}");
}

#[tokio::test]
async fn a_server_error_is_retried_on_the_same_endpoint() {
    let env = Env::builder_id().await;
    env.mock.push_fault(Api::CodeWhisperer, ApiFault::ServerError);
    let message = json(&body_ok(env.ok(false, &body(false)).await).await);
    assert_eq!(message["content"][0]["text"], "Hello from Kiro!");
    assert_eq!((env.mock.count(CODEWHISPERER_PATH), env.mock.count(Q_PATH)), (2, 0));
}

#[tokio::test]
async fn social_accounts_send_their_profile_arn() {
    let env = Env::social().await;
    body_ok(env.ok(false, &body(false)).await).await;
    let sent = env.mock.requests_to(CODEWHISPERER_PATH)[0].json();
    assert_eq!(sent["profileArn"], PROFILE_ARN);
}

#[tokio::test]
async fn a_corrupt_crc_ends_the_stream_with_a_clear_error() {
    let env = Env::builder_id().await;
    env.mock.set_frames(vec![Frame::text("one"), Frame::text("two"), Frame::text("three"), Frame::stop("end_turn")]);
    env.mock.push_fault(Api::CodeWhisperer, ApiFault::CorruptCrc { frame: 2 });
    let (bytes, error) = drain(env.ok(true, &body(true)).await).await;
    assert_eq!(text_of(&sse_json(&bytes)), "onetwo", "what came before the bad frame");
    let Some(ExecError::Interrupted(message)) = error else { panic!("{error:?}") };
    assert!(message.starts_with("Kiro event stream frame is corrupt: message checksum"), "{message}");

    env.mock.push_fault(Api::CodeWhisperer, ApiFault::CorruptCrc { frame: 1 });
    let error = env.call(false, &body(false)).await.err();
    assert!(matches!(&error, Some(ExecError::Interrupted(m)) if m.contains("checksum")), "{error:?}");
}

#[tokio::test]
async fn a_stream_cut_mid_frame_is_interrupted_not_finished() {
    let env = Env::builder_id().await;
    env.mock.push_fault(Api::CodeWhisperer, ApiFault::CutMidFrame { frame: 1 });
    let (bytes, error) = drain(env.ok(true, &body(true)).await).await;
    let events = sse_json(&bytes);
    assert!(events.iter().all(|e| e["type"] != "message_stop"), "no clean end");
    assert!(matches!(&error, Some(ExecError::Interrupted(m)) if m.contains("middle of a frame")), "{error:?}");
}

#[tokio::test]
async fn exceptions_before_content_are_error_answers_and_later_ones_error_events() {
    let env = Env::builder_id().await;
    env.mock.push_fault(
        Api::CodeWhisperer,
        ApiFault::Exception { kind: "ValidationException".into(), message: "Input is too long.".into() },
    );
    let response = env.ok(true, &body(true)).await;
    assert_eq!(response.status, 400);
    let error = json(&body_ok(response).await);
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(error["error"]["message"], "Kiro answered ValidationException: Input is too long.");

    env.mock.set_frames(vec![Frame::text("partial"), Frame::exception("InternalServerException", "oops")]);
    let bytes = body_ok(env.ok(true, &body(true)).await).await;
    let events = events(&bytes);
    let last = events.last().unwrap();
    assert_eq!(last.event.as_deref(), Some("error"));
    assert!(last.data.contains("Kiro answered InternalServerException: oops"), "{}", last.data);
}

#[tokio::test]
async fn bad_bodies_token_counts_and_stored_auth_are_refused_locally() {
    let env = Env::builder_id().await;
    let response = env.ok(false, &json!({"model": MODEL, "messages": []})).await;
    assert_eq!(response.status, 400);
    let error = json(&body_ok(response).await);
    assert_eq!(error["error"]["message"], "invalid request: messages: must contain at least one message");
    let image = json!({"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}]}]});
    assert_eq!(env.ok(false, &image).await.status, 400);
    assert!(env.mock.requests().is_empty(), "nothing was sent");

    let auth = UpstreamAuth::OAuth { access_token: &env.token, credential: &env.credential };
    let count = executor().execute(&env.ctx, &auth, request(Operation::CountTokens, MODEL, false, &body(false))).await;
    assert!(matches!(count, Err(ExecError::Unsupported(_))));
    let stored = UpstreamAuth::Stored { credential: &env.credential };
    assert!(matches!(
        executor().execute(&env.ctx, &stored, request(Operation::Generate, MODEL, false, &body(false))).await,
        Err(ExecError::Credential(_))
    ));
}

#[tokio::test]
async fn file_headers_are_sent_and_client_headers_copied_on_request() {
    let mut env = Env::builder_id().await;
    env.set("headers", json!({"x-team": "blue", "x-trace": "$x-request-id", "authorization": "Bearer nope"}));
    let auth = UpstreamAuth::OAuth { access_token: &env.token, credential: &env.credential };
    let request =
        with_client_headers(request(Operation::Generate, MODEL, false, &body(false)), &[("x-request-id", "req-9")]);
    body_ok(executor().execute(&env.ctx, &auth, request).await.unwrap()).await;
    let seen = &env.mock.requests_to(CODEWHISPERER_PATH)[0];
    assert_eq!(header(seen, "x-team"), "blue");
    assert_eq!(header(seen, "x-trace"), "req-9");
    assert_eq!(header(seen, "authorization"), format!("Bearer {}", env.token), "a file cannot replace the bearer");
}
