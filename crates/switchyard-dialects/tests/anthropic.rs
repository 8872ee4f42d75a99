//! Anthropic Messages dialect against the recorded upstream fixtures
//! (`../shared/fixtures/upstream/anthropic-messages`), request translation to OpenAI Chat, and
//! stream round trips through both encoders.
//!
//! The stream helpers (summary, framing checks) are in `tests/common`.

use serde_json::{Value, json};
use switchyard_dialects::ir::{
    ChatRequest, ErrorInfo, ImageSource, Message, Part, Reasoning, Role, StopReason, StreamEvent, ToolChoice, Usage,
};
use switchyard_dialects::{TranslateError, anthropic, openai_chat};

mod common;

use common::anthropic_chat::{Summary, check_anthropic_frames, check_openai_frames, summarize};
use common::{decode, encode, fixture_bytes, fixture_lines, sse_events, typed_frames};

// ---------------------------------------------------------------------------------------------
// Helpers

const DIR: &str = "anthropic-messages";

fn fixture(name: &str) -> Vec<u8> {
    fixture_bytes(DIR, name)
}

fn fixture_names() -> Vec<String> {
    common::fixture_names(DIR, 15)
}

fn chunk_lines(name: &str) -> Vec<String> {
    fixture_lines(DIR, name)
}

/// Re-encodes a decoded stream with both encoders, checks the framing, decodes again and
/// compares what survives each dialect.
fn assert_round_trips(events: &[StreamEvent], name: &str) {
    let original = summarize(events);

    let wire = encode(&mut anthropic::Encoder::new(), events);
    check_anthropic_frames(&wire);
    let again = summarize(&decode(&mut anthropic::Decoder::new(), &wire));
    assert_eq!(again, original, "{name}: through the Anthropic encoder");

    let wire = encode(&mut openai_chat::Encoder::new(), events);
    check_openai_frames(&wire);
    let again = summarize(&decode(&mut openai_chat::Decoder::new(), &wire));
    // OpenAI has no place for signatures or cache writes (they stay inside prompt_tokens).
    let expected = Summary {
        signature: String::new(),
        usage: Usage { cache_creation_tokens: 0, ..original.usage },
        ..original.clone()
    };
    assert_eq!(again, expected, "{name}: through the OpenAI encoder");
}

fn usage(input: i64, output: i64) -> Usage {
    Usage { input_tokens: input, output_tokens: output, ..Usage::default() }
}

fn decode_fixture(name: &str) -> Vec<StreamEvent> {
    decode(&mut anthropic::Decoder::new(), &typed_frames(&chunk_lines(name)))
}

/// Concatenated delta field of one kind, read straight from the fixture (an oracle independent
/// of the decoder).
fn raw_concat(name: &str, delta_type: &str, field: &str) -> String {
    chunk_lines(name)
        .iter()
        .map(|line| serde_json::from_str::<Value>(line).expect("json"))
        .filter(|v| v["type"] == "content_block_delta" && v["delta"]["type"] == delta_type)
        .map(|v| v["delta"][field].as_str().expect("delta text").to_owned())
        .collect()
}

fn tool_call_parts(parts: &[Part]) -> Vec<(String, String, Value)> {
    parts
        .iter()
        .filter_map(|part| match part {
            Part::ToolCall { id, name, arguments } => {
                Some((id.clone(), name.clone(), serde_json::from_str(arguments).expect("arguments are JSON")))
            }
            _ => None,
        })
        .collect()
}

fn text_of(parts: &[Part]) -> String {
    parts.iter().filter_map(|p| if let Part::Text(t) = p { Some(t.as_str()) } else { None }).collect()
}

// ---------------------------------------------------------------------------------------------
// Fixture replay

/// Every stream fixture, field by field; any fixture without expectations fails the test.
#[test]
fn every_stream_fixture_decodes() {
    let mut checked = 0;
    for name in fixture_names().into_iter().filter(|n| n.ends_with(".chunks.txt")) {
        let events = decode_fixture(&name);
        let s = summarize(&events);
        assert!(s.done && s.error.is_none(), "{name}: complete stream");
        let args = |i: usize| -> Value { serde_json::from_str(&s.tools[i].2).expect("arguments are JSON") };
        match name.as_str() {
            "anthropic-text.chunks.txt" => {
                assert_eq!(s.id, "msg_01QC4g3HwBThD4BaNtBckFDJ");
                assert_eq!(s.model, "claude-sonnet-4-5-20250929");
                assert_eq!(
                    s.text,
                    "Hello! I'm doing well, thank you for asking. How are you doing today? Is there anything I can help you with?"
                );
                assert_eq!(s.stop, Some(StopReason::EndTurn));
                assert_eq!(s.usage, usage(12, 30));
            }
            "anthropic-tool-no-args.chunks.txt" => {
                assert_eq!(s.text, "I'll update the issue list for you.");
                assert_eq!(s.tools.len(), 1);
                assert_eq!(
                    (s.tools[0].0.as_str(), s.tools[0].1.as_str()),
                    ("toolu_01QE1WLsSVp5hy5Q3GmGTmjP", "updateIssueList")
                );
                assert_eq!(args(0), json!({}), "no arguments still make a JSON object");
                assert_eq!(s.stop, Some(StopReason::ToolUse));
                assert_eq!(s.usage, usage(565, 48));
            }
            "anthropic-issue-11719-quoted-tool-input.chunks.txt" => {
                assert_eq!(s.tools[0].0, "toolu_01Cr31vcGoeeRgi3Eo5Ds8qN");
                assert_eq!(s.tools[0].1, "website_update");
                let body: Value =
                    serde_json::from_slice(&fixture("anthropic-issue-11719-quoted-tool-input.json")).expect("json");
                assert_eq!(args(0), body["content"][0]["input"], "streamed input equals the non-stream input");
                assert!(s.tools[0].2.contains(r#"question: \"What should I do next after this run?\"."#));
                assert_eq!(s.text, "");
                assert_eq!(s.stop, Some(StopReason::ToolUse));
                assert_eq!(s.usage, usage(912, 118));
            }
            "anthropic-json-tool.1.chunks.txt" => {
                assert_eq!(s.tools.len(), 1);
                assert_eq!(s.tools[0].0, "toolu_01KFbKqPYSuAKujiL6mTfzYA");
                assert_eq!(s.tools[0].1, "json");
                assert_eq!(
                    args(0),
                    json!({"elements": [{"location": "San Francisco", "temperature": 58, "condition": "sunny"}]})
                );
                assert_eq!(s.stop, Some(StopReason::ToolUse));
                assert_eq!(s.usage, usage(849, 47));
            }
            "anthropic-clear-thinking.1.chunks.txt" => {
                assert_eq!(s.thinking, "The previous result was 925. Now I need to divide that by 5.\n\n925 ÷ 5 = 185");
                assert!(s.signature.starts_with("EvQBCkYICxgCKkAxhD4N") && s.signature.ends_with("Ca17BgB"));
                assert_eq!(s.text, "925 ÷ 5 = 185");
                assert_eq!(s.stop, Some(StopReason::EndTurn));
                assert_eq!(s.usage, usage(69, 53));
            }
            "anthropic-claude-sonnet-5-reasoning-summarized.chunks.txt" => {
                assert_eq!(s.model, "claude-sonnet-5");
                assert_eq!(s.thinking, raw_concat(&name, "thinking_delta", "thinking"));
                assert!(s.thinking.starts_with("I'm working through the Euclidean algorithm"));
                assert_eq!(s.signature, raw_concat(&name, "signature_delta", "signature"));
                assert_eq!(s.text, raw_concat(&name, "text_delta", "text"));
                assert!(s.text.contains("1071 − 924 = 147") && s.text.ends_with("462 = 21 × 22 ✓"));
                assert_eq!(s.stop, Some(StopReason::EndTurn));
                assert_eq!(s.usage, Usage { reasoning_tokens: 62, ..usage(47, 373) });
            }
            "anthropic-message-delta-input-tokens.chunks.txt" => {
                assert_eq!(s.text, "pong");
                // message_start said 43; the final count comes from message_delta.
                assert_eq!(s.usage, usage(61, 2));
                assert_eq!(s.stop, Some(StopReason::EndTurn));
            }
            "anthropic-refusal.chunks.txt" => {
                assert_eq!(s.text, "");
                assert!(s.tools.is_empty());
                assert_eq!(s.stop, Some(StopReason::ContentFilter));
                assert_eq!(s.usage, usage(18, 5));
            }
            other => panic!("no expectations for stream fixture {other}"),
        }
        // Blocks are numbered from 0 in output order.
        let starts: Vec<usize> = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::TextStart { index }
                | StreamEvent::ThinkingStart { index }
                | StreamEvent::ToolCallStart { index, .. } => Some(*index),
                _ => None,
            })
            .collect();
        assert_eq!(starts, (0..starts.len()).collect::<Vec<_>>(), "{name}");
        checked += 1;
    }
    assert_eq!(checked, 8);
}

#[test]
fn every_body_fixture_converts() {
    let mut checked = 0;
    for name in fixture_names().into_iter().filter(|n| n.ends_with(".json")) {
        let body = fixture(&name);
        checked += 1;
        if name.contains("error") {
            assert_eq!(name, "anthropic-issue-17366-error.json");
            let error = anthropic::error_to_ir(400, &body);
            assert_eq!((error.status, error.kind.as_str()), (400, "invalid_request"));
            assert!(error.message.starts_with("messages.2.content.0: unexpected `tool_use_id`"));
            // Without a status (an error event mid-stream) the body's type decides.
            let error = anthropic::error_to_ir(0, &body);
            assert_eq!((error.status, error.kind.as_str()), (400, "invalid_request"));
            assert!(matches!(anthropic::response_to_ir(&body), Err(TranslateError::Upstream(_))));
            continue;
        }
        let response = anthropic::response_to_ir(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let calls = tool_call_parts(&response.content);
        match name.as_str() {
            "anthropic-text.json" => {
                assert_eq!(response.id, "msg_01VdEjxAP5ahtHKrrRdNBteQ");
                assert_eq!(
                    response.content,
                    vec![Part::Text(
                        "Hello! I'm doing well, thanks for asking. How are you doing today? Is there anything I can help you with?"
                            .into()
                    )]
                );
                assert_eq!(response.stop_reason, Some(StopReason::EndTurn));
                assert_eq!(response.usage, usage(12, 29));
            }
            "anthropic-tool-no-args.json" => {
                assert!(text_of(&response.content).starts_with("<thinking>\nThe updateIssueList tool"));
                assert_eq!(calls, vec![("toolu_01LRmxn9vGM1d2DZSDBowdZ1".into(), "updateIssueList".into(), json!({}))]);
                assert_eq!(response.stop_reason, Some(StopReason::ToolUse));
                assert_eq!(response.usage, usage(602, 93));
            }
            "anthropic-issue-11719-quoted-tool-input.json" => {
                let input = &calls[0].2;
                assert_eq!(calls[0].1, "website_update");
                assert_eq!(input["website_path"], "/home/user/pace-landing");
                assert!(
                    input["tasks"][0]["description"].as_str().is_some_and(|d| d.contains("\"What should I do next"))
                );
                assert_eq!(input["tasks"][0]["passes"], false);
                assert_eq!(response.usage, usage(912, 118));
            }
            "anthropic-json-tool.1.json" => {
                assert_eq!(calls[0].0, "toolu_01Q9ExVZnzZj7E2QQYHYtNUa");
                let elements = calls[0].2["elements"].as_array().expect("elements");
                assert_eq!(elements.len(), 4);
                assert_eq!(elements[3], json!({"location": "Berlin", "temperature": -9, "condition": "snowy"}));
                assert_eq!(response.usage, usage(1151, 87));
            }
            "anthropic-refusal.json" => {
                assert!(response.content.is_empty());
                assert_eq!(response.stop_reason, Some(StopReason::ContentFilter));
                assert_eq!(response.usage, usage(18, 5));
            }
            "issue-13430-thinking-tool-call.json" => {
                let Part::Thinking { text, signature } = &response.content[0] else { panic!("thinking first") };
                assert_eq!(text, "The user wants me to call checkSandboxErrors immediately.");
                assert!(signature.as_deref().is_some_and(|s| s.starts_with("Eq4CCpIB") && s.ends_with("2mOgYAQ==")));
                assert_eq!(
                    calls,
                    vec![("toolu_017R7ACrx7NF7sLDDtvdQ1u9".into(), "checkSandboxErrors".into(), json!({}))]
                );
                assert_eq!(response.usage, Usage { reasoning_tokens: 18, ..usage(599, 59) });
                assert_eq!(response.stop_reason, Some(StopReason::ToolUse));
            }
            other => panic!("no expectations for body fixture {other}"),
        }
    }
    assert_eq!(checked, 7);
}

#[test]
fn cache_tokens_count_into_the_neutral_input() {
    let body = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [],
        "stop_reason": "max_tokens",
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 300, "cache_creation_input_tokens": 50, "output_tokens": 7}
    });
    let response = anthropic::response_to_ir(body.to_string().as_bytes()).expect("response");
    assert_eq!(
        response.usage,
        Usage {
            input_tokens: 360,
            output_tokens: 7,
            cached_input_tokens: 300,
            cache_creation_tokens: 50,
            reasoning_tokens: 0
        }
    );
    assert_eq!(response.stop_reason, Some(StopReason::MaxTokens));
    let back = anthropic::response_from_ir(&response);
    assert_eq!(
        back["usage"],
        json!({"input_tokens": 10, "cache_creation_input_tokens": 50, "cache_read_input_tokens": 300, "output_tokens": 7})
    );
    let openai = openai_chat::response_from_ir(&response);
    assert_eq!(openai["usage"]["prompt_tokens"], 360);
    assert_eq!(openai["usage"]["prompt_tokens_details"]["cached_tokens"], 300);
    assert_eq!(openai["choices"][0]["finish_reason"], "length");
}

/// A non-stream Anthropic answer given to an OpenAI client, and read back.
#[test]
fn thinking_tool_call_body_to_openai() {
    let response = anthropic::response_to_ir(&fixture("issue-13430-thinking-tool-call.json")).expect("response");
    let openai = openai_chat::response_from_ir(&response);
    assert_eq!(openai["object"], "chat.completion");
    assert_eq!(openai["id"], "msg_011CfWBu94HWxZXjXK6ZhEXM");
    let message = &openai["choices"][0]["message"];
    assert_eq!(message["content"], Value::Null);
    assert_eq!(message["reasoning_content"], "The user wants me to call checkSandboxErrors immediately.");
    assert_eq!(
        message["tool_calls"],
        json!([{"id": "toolu_017R7ACrx7NF7sLDDtvdQ1u9", "type": "function",
                "function": {"name": "checkSandboxErrors", "arguments": "{}"}}])
    );
    assert_eq!(openai["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(openai["usage"]["completion_tokens_details"]["reasoning_tokens"], 18);

    let again = openai_chat::response_to_ir(openai.to_string().as_bytes()).expect("openai body");
    assert_eq!(tool_call_parts(&again.content), tool_call_parts(&response.content));
    assert_eq!(again.stop_reason, Some(StopReason::ToolUse));
    assert_eq!(again.usage, response.usage);

    // And back to an Anthropic client unchanged.
    let body = anthropic::response_from_ir(&response);
    assert_eq!(anthropic::response_to_ir(body.to_string().as_bytes()).expect("again"), response);
    assert_eq!(
        body["content"][1],
        json!({"type": "tool_use", "id": "toolu_017R7ACrx7NF7sLDDtvdQ1u9", "name": "checkSandboxErrors", "input": {}})
    );
}

// ---------------------------------------------------------------------------------------------
// Streams: round trips, truncation, errors

#[test]
fn every_stream_fixture_survives_both_encoders() {
    for name in fixture_names().into_iter().filter(|n| n.ends_with(".chunks.txt")) {
        assert_round_trips(&decode_fixture(&name), &name);
    }
}

#[test]
fn truncated_streams_end_in_an_error() {
    for name in fixture_names().into_iter().filter(|n| n.ends_with(".chunks.txt")) {
        let lines = chunk_lines(&name);
        assert!(lines.last().is_some_and(|l| l.contains("message_stop")), "{name} ends in message_stop");
        for cut in 0..lines.len() {
            let events = decode(&mut anthropic::Decoder::new(), &typed_frames(&lines[..cut]));
            let Some(StreamEvent::Error(error)) = events.last() else {
                panic!("{name} cut after {cut} chunks: {:?}", events.last());
            };
            assert_eq!((error.status, error.kind.as_str()), (502, "server_error"));
            assert!(!events.contains(&StreamEvent::Done));
        }
    }
}

#[test]
fn error_events_reach_the_client_in_both_dialects() {
    // An upstream `error` event in the middle of a stream.
    let mut lines = chunk_lines("anthropic-text.chunks.txt");
    lines.truncate(4);
    lines.push(r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#.to_owned());
    let events = decode(&mut anthropic::Decoder::new(), &typed_frames(&lines));
    let expected = ErrorInfo { status: 503, kind: "overloaded".into(), message: "Overloaded".into() };
    assert_eq!(events.last(), Some(&StreamEvent::Error(expected.clone())));
    let summary = summarize(&events);
    assert_eq!(summary.text, "Hello");

    let wire = encode(&mut anthropic::Encoder::new(), &events);
    check_anthropic_frames(&wire);
    assert!(wire.ends_with(
        "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n"
    ));
    assert_eq!(summarize(&decode(&mut anthropic::Decoder::new(), &wire)), summary);

    let wire = encode(&mut openai_chat::Encoder::new(), &events);
    check_openai_frames(&wire);
    assert!(!wire.contains("[DONE]"), "no [DONE] after an error");
    assert_eq!(summarize(&decode(&mut openai_chat::Decoder::new(), &wire)).error, Some(expected));
}

#[test]
fn stream_error_frame_and_error_bodies() {
    for kind in [
        "invalid_request",
        "authentication",
        "permission",
        "not_found",
        "rate_limit",
        "overloaded",
        "server_error",
        "timeout",
    ] {
        let error =
            ErrorInfo { status: ErrorInfo::status_for_kind(kind), kind: kind.into(), message: format!("{kind}!") };
        let body = anthropic::error_from_ir(&error);
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["message"], format!("{kind}!"));
        assert_eq!(anthropic::error_to_ir(0, body.to_string().as_bytes()), error, "{kind} survives");
        assert_eq!(anthropic::error_to_ir(error.status, body.to_string().as_bytes()), error);

        let frame = anthropic::stream_error_frame(&error);
        let events = sse_events(&frame);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0.as_deref(), Some("error"));
        assert_eq!(serde_json::from_str::<Value>(&events[0].1).expect("json"), body);
    }
    assert_eq!(
        anthropic::error_from_ir(&ErrorInfo { status: 529, kind: "overloaded".into(), message: "x".into() })["error"]["type"],
        "overloaded_error"
    );

    // Any shape: HTML, empty, OpenAI- and Gemini-style bodies.
    let html = anthropic::error_to_ir(502, b"<html><body>Bad gateway</body></html>");
    assert_eq!(
        (html.status, html.kind.as_str(), html.message.as_str()),
        (502, "server_error", "<html><body>Bad gateway</body></html>")
    );
    let empty = anthropic::error_to_ir(529, b"");
    assert_eq!((empty.kind.as_str(), empty.message.as_str()), ("overloaded", "upstream returned HTTP 529"));
    let openai = anthropic::error_to_ir(
        429,
        br#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#,
    );
    assert_eq!((openai.kind.as_str(), openai.message.as_str()), ("rate_limit", "slow down"));
    let bare = anthropic::error_to_ir(401, br#"{"error":"Invalid API key"}"#);
    assert_eq!((bare.kind.as_str(), bare.message.as_str()), ("authentication", "Invalid API key"));
    let gemini = anthropic::error_to_ir(
        404,
        br#"{"error":{"code":404,"message":"models/x is not found","status":"NOT_FOUND"}}"#,
    );
    assert_eq!((gemini.kind.as_str(), gemini.message.as_str()), ("not_found", "models/x is not found"));
}

#[test]
fn encoder_message_start_carries_the_input_usage() {
    let events = decode_fixture("anthropic-text.chunks.txt");
    let wire = encode(&mut anthropic::Encoder::new(), &events);
    let frames = sse_events(&wire);
    let start: Value = serde_json::from_str(&frames[0].1).expect("json");
    assert_eq!(start["message"]["id"], "msg_01QC4g3HwBThD4BaNtBckFDJ");
    assert_eq!(start["message"]["usage"]["input_tokens"], 12);
    let delta: Value = serde_json::from_str(&frames[frames.len() - 2].1).expect("json");
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 30);
}

// ---------------------------------------------------------------------------------------------
// Requests

fn anthropic_request() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 8000,
        "system": [
            {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "Answer in English."}
        ],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Let me look.", "signature": "sig-1"},
                {"type": "text", "text": "Checking the weather."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true,
                 "content": [{"type": "text", "text": "clock broken"},
                             {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}}]},
                {"type": "text", "text": "And tomorrow?"}
            ]},
            {"role": "assistant", "content": "Rain."},
            {"role": "user", "content": "Thanks"}
        ],
        "tools": [
            {"name": "get_weather", "description": "Weather by city",
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
            {"name": "get_time", "input_schema": {"type": "object"}},
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}
        ],
        "tool_choice": {"type": "auto"},
        "thinking": {"type": "enabled", "budget_tokens": 4000},
        "temperature": 0.5,
        "stop_sequences": ["END"],
        "stream": true,
        "metadata": {"user_id": "u-1"}
    })
}

#[test]
fn anthropic_request_to_ir() {
    let request = anthropic::request_to_ir(anthropic_request().to_string().as_bytes()).expect("valid");
    assert_eq!(request.model, "claude-sonnet-4-5");
    assert_eq!(request.system, ["You are terse.", "Answer in English."]);
    assert_eq!(request.max_output_tokens, Some(8000));
    assert_eq!(request.temperature, Some(0.5));
    assert_eq!(request.stop, ["END"]);
    assert!(request.stream);
    assert_eq!(request.user.as_deref(), Some("u-1"));
    assert_eq!(request.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(request.reasoning, Some(Reasoning { effort: None, budget_tokens: Some(4000), include_thoughts: true }));
    assert_eq!(request.tools.len(), 2, "the server tool is dropped");
    assert_eq!(request.tools[0].parameters["required"], json!(["city"]));
    assert_eq!(
        request.messages,
        vec![
            Message {
                role: Role::User,
                content: vec![
                    Part::Text("What is in this image?".into()),
                    Part::Image(ImageSource::Base64 { media_type: "image/png".into(), data: "iVBORw0KGgo=".into() }),
                    Part::Image(ImageSource::Url("https://example.com/cat.jpg".into())),
                ],
            },
            Message {
                role: Role::Assistant,
                content: vec![
                    Part::Thinking { text: "Let me look.".into(), signature: Some("sig-1".into()) },
                    Part::Text("Checking the weather.".into()),
                    Part::ToolCall {
                        id: "toolu_1".into(),
                        name: "get_weather".into(),
                        arguments: r#"{"city":"Paris"}"#.into()
                    },
                    Part::ToolCall { id: "toolu_2".into(), name: "get_time".into(), arguments: "{}".into() },
                ],
            },
            Message {
                role: Role::Tool,
                content: vec![
                    Part::ToolResult {
                        call_id: "toolu_1".into(),
                        content: vec![Part::Text("18°C".into())],
                        is_error: false
                    },
                    Part::ToolResult {
                        call_id: "toolu_2".into(),
                        content: vec![
                            Part::Text("clock broken".into()),
                            Part::Image(ImageSource::Base64 { media_type: "image/jpeg".into(), data: "/9j/".into() }),
                        ],
                        is_error: true,
                    },
                ],
            },
            Message { role: Role::User, content: vec![Part::Text("And tomorrow?".into())] },
            Message { role: Role::Assistant, content: vec![Part::Text("Rain.".into())] },
            Message { role: Role::User, content: vec![Part::Text("Thanks".into())] },
        ]
    );
}

#[test]
fn anthropic_request_to_openai() {
    let request = anthropic::request_to_ir(anthropic_request().to_string().as_bytes()).expect("valid");
    let body = openai_chat::request_from_ir(&request).expect("translates");
    assert_eq!(
        body,
        json!({
            "model": "claude-sonnet-4-5",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "system", "content": "Answer in English."},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this image?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}
                ]},
                // Signed (Anthropic) thinking is not sent to another upstream.
                {"role": "assistant", "content": "Checking the weather.", "tool_calls": [
                    {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "toolu_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
                ]},
                {"role": "tool", "content": "18°C", "tool_call_id": "toolu_1"},
                {"role": "tool", "content": "clock broken", "tool_call_id": "toolu_2"},
                // Tool messages carry text only: the result's image follows as user content.
                {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}}]},
                {"role": "user", "content": "And tomorrow?"},
                {"role": "assistant", "content": "Rain."},
                {"role": "user", "content": "Thanks"}
            ],
            "max_tokens": 8000,
            "temperature": 0.5,
            "stop": ["END"],
            "stream": true,
            "stream_options": {"include_usage": true},
            "tools": [
                {"type": "function", "function": {"name": "get_weather", "description": "Weather by city",
                 "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}},
                {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
            ],
            "tool_choice": "auto",
            "reasoning_effort": "medium",
            "user": "u-1"
        })
    );
}

#[test]
fn anthropic_request_back_to_anthropic() {
    let request = anthropic::request_to_ir(anthropic_request().to_string().as_bytes()).expect("valid");
    let body = anthropic::request_from_ir(&request).expect("translates");
    assert_eq!(body["max_tokens"], 8000);
    assert_eq!(body["thinking"], json!({"type": "enabled", "budget_tokens": 4000}));
    assert!(body.get("temperature").is_none(), "thinking rejects temperature");
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Answer in English."}])
    );
    assert_eq!(
        body["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": "Let me look.", "signature": "sig-1"})
    );
    assert_eq!(
        body["messages"][1]["content"][2],
        json!({"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}})
    );
    // Tool results and the user's text form one user turn again, results first.
    assert_eq!(
        body["messages"][2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "18°C"}]},
            {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": true, "content": [
                {"type": "text", "text": "clock broken"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}}
            ]},
            {"type": "text", "text": "And tomorrow?"}
        ]})
    );
    assert_eq!(body["messages"].as_array().map(Vec::len), Some(5));
    assert_eq!(body["tool_choice"], json!({"type": "auto"}));
    assert_eq!(body["tools"].as_array().map(Vec::len), Some(2));
    assert_eq!(body["metadata"], json!({"user_id": "u-1"}));
    assert_eq!(body["stream"], true);
    // Everything but the dropped temperature reads back the same.
    let again = anthropic::request_to_ir(body.to_string().as_bytes()).expect("again");
    assert_eq!(again, ChatRequest { temperature: None, ..request });
}

#[test]
fn thinking_and_tool_choice_variants() {
    let base = |extra: Value| {
        let mut request = json!({"model": "claude", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}],
                                 "tools": [{"name": "f", "input_schema": {"type": "object"}}]});
        for (key, value) in extra.as_object().expect("object") {
            request[key] = value.clone();
        }
        let ir = anthropic::request_to_ir(request.to_string().as_bytes()).expect("valid");
        (ir.clone(), openai_chat::request_from_ir(&ir).expect("openai"))
    };
    let (ir, body) = base(json!({"tool_choice": {"type": "any"}, "thinking": {"type": "disabled"}}));
    assert_eq!(ir.tool_choice, Some(ToolChoice::Required));
    assert_eq!(body["tool_choice"], "required");
    assert!(body.get("reasoning_effort").is_none(), "disabled thinking sends no effort");
    let (ir, body) = base(json!({"tool_choice": {"type": "tool", "name": "f"}}));
    assert_eq!(ir.tool_choice, Some(ToolChoice::Tool("f".into())));
    assert_eq!(body["tool_choice"], json!({"type": "function", "function": {"name": "f"}}));
    let (_, body) =
        base(json!({"tool_choice": {"type": "none"}, "thinking": {"type": "enabled", "budget_tokens": 32000}}));
    assert_eq!(body["tool_choice"], "none");
    assert_eq!(body["reasoning_effort"], "high");
    let (ir, body) = base(json!({"thinking": {"type": "adaptive"}, "output_config": {"effort": "max"}}));
    assert_eq!(
        ir.reasoning,
        Some(Reasoning { effort: Some("max".into()), budget_tokens: None, include_thoughts: true })
    );
    assert_eq!(body["reasoning_effort"], "xhigh");
    let (_, body) = base(json!({"thinking": {"type": "enabled", "budget_tokens": 1024}}));
    assert_eq!(body["reasoning_effort"], "low");
}

#[test]
fn anthropic_request_defaults_and_limits() {
    let mut request =
        anthropic::request_to_ir(br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#).expect("valid");
    assert_eq!(request.max_output_tokens, None);
    let body = anthropic::request_from_ir(&request).expect("body");
    assert_eq!(body["max_tokens"], anthropic::DEFAULT_MAX_TOKENS);
    assert_eq!(body["messages"], json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}]));
    assert_eq!(body["stream"], false);
    assert!(body.get("thinking").is_none() && body.get("system").is_none() && body.get("tools").is_none());

    request.reasoning = Some(Reasoning { effort: Some("high".into()), budget_tokens: None, include_thoughts: true });
    request.temperature = Some(1.7);
    let body = anthropic::request_from_ir(&request).expect("body");
    assert_eq!(body["thinking"]["budget_tokens"], anthropic::budget_for_effort("high"));
    assert_eq!(body["max_tokens"], 24576 + anthropic::DEFAULT_MAX_TOKENS);
    assert!(body.get("temperature").is_none());

    // The client's cap includes reasoning: the budget shrinks to fit, or thinking goes.
    request.max_output_tokens = Some(4000);
    let body = anthropic::request_from_ir(&request).expect("body");
    assert_eq!((body["max_tokens"].clone(), body["thinking"]["budget_tokens"].clone()), (json!(4000), json!(3999)));
    request.max_output_tokens = Some(500);
    let body = anthropic::request_from_ir(&request).expect("body");
    assert!(body.get("thinking").is_none());
    assert_eq!(body["temperature"], 1.0, "clamped to Anthropic's range");

    request.temperature = None;
    request.top_p = Some(0.9);
    assert_eq!(anthropic::request_from_ir(&request).expect("body")["top_p"], 0.9);
    request.temperature = Some(0.2);
    let body = anthropic::request_from_ir(&request).expect("body");
    assert!(body.get("top_p").is_none(), "temperature wins over top_p");

    // tool_choice only with tools; a forced tool turns thinking off.
    request.tool_choice = Some(ToolChoice::Required);
    assert!(anthropic::request_from_ir(&request).expect("body").get("tool_choice").is_none());
}

fn invalid_field(body: &[u8]) -> (String, String) {
    match anthropic::request_to_ir(body) {
        Err(TranslateError::InvalidField { field, message }) => (field, message),
        other => panic!("expected InvalidField, got {other:?}"),
    }
}

#[test]
fn invalid_anthropic_requests_name_the_field() {
    let (field, message) = invalid_field(b"{\"model\": \"m\", \"messages\": [");
    assert_eq!(field, "body");
    assert!(message.contains("line 1 column"), "{message}");
    assert_eq!(invalid_field(b"not json").0, "body");
    assert_eq!(invalid_field(b"[1, 2]").0, "body");
    assert_eq!(invalid_field(br#"{"messages":[{"role":"user","content":"hi"}]}"#).0, "model");
    assert_eq!(invalid_field(br#"{"model":"m","messages":"hi"}"#).0, "messages");
    assert_eq!(invalid_field(br#"{"model":"m","messages":[]}"#).0, "messages");
    assert_eq!(invalid_field(br#"{"model":42,"messages":[]}"#).0, "model");
    let (field, message) =
        invalid_field(br#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"robot","content":"b"}]}"#);
    assert_eq!(field, "messages[1].role");
    assert!(message.contains("robot"), "{message}");
    assert_eq!(invalid_field(br#"{"model":"m","messages":[{"role":"user"}]}"#).0, "messages[0].content");
    assert_eq!(
        invalid_field(
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_result","content":"x"}]}]}"#
        )
        .0,
        "messages[0].content[0].tool_use_id"
    );
    assert_eq!(
        invalid_field(
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image","source":{"type":"base64","media_type":"image/png"}}]}]}"#
        )
        .0,
        "messages[0].content[1].source.data"
    );
    assert_eq!(
        invalid_field(br#"{"model":"m","messages":[{"role":"user","content":[{"type":"image"}]}]}"#).0,
        "messages[0].content[0].source"
    );
    // Type errors deep inside, in a pretty-printed body (line/column → path).
    let pretty = serde_json::to_vec_pretty(&json!({
        "model": "m",
        "messages": [{"role": "user", "content": "a"},
                     {"role": "assistant", "content": [{"type": "text", "text": "b"}, {"type": "text", "text": 5}]}]
    }))
    .expect("json");
    let (field, message) = invalid_field(&pretty);
    assert_eq!(field, "messages[1].content[1].text");
    assert!(message.contains("expected a string"), "{message}");
    assert_eq!(
        invalid_field(
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"tool_use","id":"t","input":{}}]}]}"#
        )
        .0,
        "messages[0].content[0].name"
    );
    assert_eq!(
        invalid_field(br#"{"model":"m","messages":[{"role":"user","content":"a"}],"tools":[{"name":"f"}]}"#).0,
        "tools[0].input_schema"
    );
    assert_eq!(
        invalid_field(br#"{"model":"m","messages":[{"role":"user","content":"a"}],"tool_choice":{"type":"tool"}}"#).0,
        "tool_choice.name"
    );
    assert_eq!(
        invalid_field(
            br#"{"model":"m","messages":[{"role":"user","content":"a"}],"tool_choice":{"type":"sometimes"}}"#
        )
        .0,
        "tool_choice.type"
    );
    assert_eq!(
        invalid_field(br#"{"model":"m","messages":[{"role":"user","content":"a"}],"thinking":{"type":"enabled"}}"#).0,
        "thinking.budget_tokens"
    );
    assert_eq!(
        invalid_field(br#"{"model":"m","system":[{"type":"image"}],"messages":[{"role":"user","content":"a"}]}"#).0,
        "system[0].type"
    );

    // Valid Anthropic that the neutral form cannot carry.
    let document = br#"{"model":"m","messages":[{"role":"user","content":[{"type":"document","source":{"type":"base64","media_type":"application/pdf","data":"JVBER"}}]}]}"#;
    assert!(
        matches!(anthropic::request_to_ir(document), Err(TranslateError::Unsupported(m)) if m.contains("messages[0].content[0]"))
    );
}
