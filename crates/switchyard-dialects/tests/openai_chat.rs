//! OpenAI Chat Completions dialect against the recorded upstream fixtures
//! (`../shared/fixtures/upstream/openai-chat`: OpenAI, Azure, DeepSeek, Groq), request
//! translation to Anthropic, and stream round trips through both encoders.
//!
//! The stream helpers (summary, framing checks) are in `tests/common`.

use serde_json::{Value, json};
use switchyard_dialects::ir::{
    ChatResponse, ErrorInfo, ImageSource, Message, Part, Reasoning, Role, StopReason, StreamDecoder, StreamEvent,
    ToolChoice, Usage,
};
use switchyard_dialects::{TranslateError, anthropic, openai_chat};

mod common;

use common::anthropic_chat::{check_anthropic_frames, check_openai_frames, summarize};
use common::{data_frames, decode, encode, fixture_bytes, fixture_lines, sse_events, usage};

// ---------------------------------------------------------------------------------------------
// Helpers

const DIR: &str = "openai-chat";

fn fixture(name: &str) -> Vec<u8> {
    fixture_bytes(DIR, name)
}

fn fixture_names() -> Vec<String> {
    common::fixture_names(DIR, 7)
}

fn chunk_lines(name: &str) -> Vec<String> {
    fixture_lines(DIR, name)
}

/// Re-encodes with both encoders, checks framing, decodes again: nothing an OpenAI stream
/// carries is lost in either dialect.
fn assert_round_trips(events: &[StreamEvent], name: &str) {
    let original = summarize(events);
    let wire = encode(&mut openai_chat::Encoder::new(), events);
    check_openai_frames(&wire);
    assert_eq!(summarize(&decode(&mut openai_chat::Decoder::new(), &wire)), original, "{name}: OpenAI encoder");
    let wire = encode(&mut anthropic::Encoder::new(), events);
    check_anthropic_frames(&wire);
    assert_eq!(summarize(&decode(&mut anthropic::Decoder::new(), &wire)), original, "{name}: Anthropic encoder");
}

fn decode_fixture(name: &str) -> Vec<StreamEvent> {
    decode(&mut openai_chat::Decoder::new(), &data_frames(&chunk_lines(name)))
}

fn decode_lines(lines: &[&str]) -> Vec<StreamEvent> {
    let lines: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    decode(&mut openai_chat::Decoder::new(), &data_frames(&lines))
}

// ---------------------------------------------------------------------------------------------
// Fixture replay

#[test]
fn every_stream_fixture_decodes() {
    let mut checked = 0;
    for name in fixture_names().into_iter().filter(|n| n.ends_with(".chunks.txt")) {
        let s = summarize(&decode_fixture(&name));
        assert!(s.done && s.error.is_none(), "{name}: complete stream (finish_reason seen, [DONE] not recorded)");
        let args = |i: usize| -> Value { serde_json::from_str(&s.tools[i].2).expect("arguments are JSON") };
        match name.as_str() {
            "azure-model-router.1.chunks.txt" => {
                // The first chunk (prompt filter results) has no id and no choices.
                assert_eq!(s.id, "chatcmpl-CYPS1lijGoK8gd9lYzY3r9Sx50nbt");
                assert_eq!(s.model, "gpt-5-nano-2025-08-07");
                assert_eq!(s.text, "Capital of Denmark.");
                assert_eq!(s.stop, Some(StopReason::EndTurn));
                // From the separate usage-only chunk after the finish chunk.
                assert_eq!(s.usage, usage(15, 78, 0, 64));
            }
            "deepseek-tool-call.chunks.txt" => {
                assert_eq!(s.model, "deepseek-v4-flash");
                assert_eq!(
                    s.thinking,
                    "The user asks about the weather in San Francisco. I should use the weather tool."
                );
                assert_eq!(s.text, "");
                assert_eq!(s.tools.len(), 1);
                assert_eq!(
                    (s.tools[0].0.as_str(), s.tools[0].1.as_str()),
                    ("call_00_IhCAliIHtM9gKpgfqbBV9873", "weather")
                );
                let body: Value = serde_json::from_slice(&fixture("deepseek-tool-call.json")).expect("json");
                let non_stream =
                    body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"].as_str().expect("args");
                assert_eq!(args(0), serde_json::from_str::<Value>(non_stream).expect("json"), "same input as the body");
                assert_eq!(args(0), json!({"location": "San Francisco"}));
                assert_eq!(s.stop, Some(StopReason::ToolUse));
                // Usage rides on the finish chunk here.
                assert_eq!(s.usage, usage(374, 61, 256, 17));
            }
            "groq-tool-call.chunks.txt" => {
                assert_eq!(s.tools, vec![("tk85n1k4m".to_owned(), "weather".to_owned(), "{}".to_owned())]);
                assert_eq!(s.stop, Some(StopReason::ToolUse));
                assert_eq!(s.usage, usage(210, 15, 0, 0));
            }
            "issue-19789-live-usage.chunks.txt" => {
                assert_eq!(s.id, "sanitized");
                assert_eq!(s.text, "sanitized");
                assert_eq!(s.stop, Some(StopReason::MaxTokens));
                assert_eq!(s.usage, usage(88, 4, 0, 4));
            }
            other => panic!("no expectations for stream fixture {other}"),
        }
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn every_body_fixture_converts() {
    let mut checked = 0;
    for name in fixture_names().into_iter().filter(|n| n.ends_with(".json")) {
        let body = fixture(&name);
        checked += 1;
        match name.as_str() {
            "openai-text.json" => {
                let response = openai_chat::response_to_ir(&body).expect("response");
                assert_eq!(response.id, "chatcmpl-D8Z5f52zQqikDBEKQMQoYcWMcWPeU");
                assert_eq!(response.model, "gpt-4.1-nano-2025-04-14");
                let [Part::Text(text)] = response.content.as_slice() else {
                    panic!("one text part: {:?}", response.content)
                };
                assert!(text.starts_with("**Holiday Name:** Galaxy Day"));
                assert!(text.contains("vast darkness\u{2014}mirroring"), "the \\u2014 escape decodes");
                assert_eq!(response.stop_reason, Some(StopReason::EndTurn));
                assert_eq!(response.usage, usage(16, 363, 0, 0));
            }
            "deepseek-tool-call.json" => {
                let response = openai_chat::response_to_ir(&body).expect("response");
                assert_eq!(
                    response.content,
                    vec![
                        Part::Thinking {
                            text: "The user asks about weather in San Francisco. I'll call the weather tool.".into(),
                            signature: None
                        },
                        Part::ToolCall {
                            id: "call_00_lCIkdHRa7AKmCG3TlxXz1061".into(),
                            name: "weather".into(),
                            arguments: "{\"location\": \"San Francisco\"}".into()
                        },
                    ],
                    "empty content is no text part"
                );
                assert_eq!(response.stop_reason, Some(StopReason::ToolUse));
                assert_eq!(response.usage, usage(374, 60, 0, 16));
            }
            "reasoning-model-legacy-parameter-error.json" => {
                let error = openai_chat::error_to_ir(400, &body);
                assert_eq!((error.status, error.kind.as_str()), (400, "invalid_request"));
                assert_eq!(
                    error.message,
                    "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead."
                );
                // Without a status the code/type decide.
                let error = openai_chat::error_to_ir(0, &body);
                assert_eq!((error.status, error.kind.as_str()), (400, "invalid_request"));
            }
            other => panic!("no expectations for body fixture {other}"),
        }
    }
    assert_eq!(checked, 3);
}

/// A DeepSeek answer given to an Anthropic client: reasoning → thinking, cached tokens → cache reads.
#[test]
fn deepseek_body_to_anthropic() {
    let mut response = openai_chat::response_to_ir(&fixture("deepseek-tool-call.json")).expect("response");
    response.usage.cached_input_tokens = 256;
    let body = anthropic::response_from_ir(&response);
    assert_eq!(
        body,
        json!({
            "id": "21d2ddcb-4947-4e28-a783-857aedbe6ace",
            "type": "message",
            "role": "assistant",
            "model": "deepseek-v4-flash",
            "content": [
                {"type": "thinking", "thinking": "The user asks about weather in San Francisco. I'll call the weather tool.", "signature": ""},
                {"type": "tool_use", "id": "call_00_lCIkdHRa7AKmCG3TlxXz1061", "name": "weather", "input": {"location": "San Francisco"}}
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {"input_tokens": 118, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 256,
                      "output_tokens": 60, "output_tokens_details": {"thinking_tokens": 16}}
        })
    );
    let again = anthropic::response_to_ir(body.to_string().as_bytes()).expect("again");
    assert_eq!(again.usage, response.usage);
    assert_eq!(again.stop_reason, Some(StopReason::ToolUse));
}

#[test]
fn openai_response_round_trips_and_refusals() {
    let response = openai_chat::response_to_ir(&fixture("openai-text.json")).expect("response");
    let body = openai_chat::response_from_ir(&response);
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["total_tokens"], 379);
    let again = openai_chat::response_to_ir(body.to_string().as_bytes()).expect("again");
    assert_eq!(again, response);

    let refusal = json!({"id": "c", "model": "m", "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": null, "refusal": "I can't help with that."}}]});
    let response = openai_chat::response_to_ir(refusal.to_string().as_bytes()).expect("refusal");
    assert_eq!(response.content, vec![Part::Text("I can't help with that.".into())]);
    assert_eq!(response.stop_reason, Some(StopReason::ContentFilter));
    assert_eq!(anthropic::response_from_ir(&response)["stop_reason"], "refusal");

    let empty =
        ChatResponse { id: "x".into(), model: "m".into(), content: vec![], stop_reason: None, usage: Usage::default() };
    assert_eq!(openai_chat::response_from_ir(&empty)["choices"][0]["message"]["content"], "");
}

// ---------------------------------------------------------------------------------------------
// Streams

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
        let finish_at = lines.iter().position(|l| l.contains(r#""finish_reason":""#)).expect("a finish chunk");
        for cut in 0..=lines.len() {
            let events = decode(&mut openai_chat::Decoder::new(), &data_frames(&lines[..cut]));
            if cut <= finish_at {
                let Some(StreamEvent::Error(error)) = events.last() else {
                    panic!("{name} cut after {cut} chunks: {:?}", events.last());
                };
                assert_eq!((error.status, error.kind.as_str()), (502, "server_error"));
            } else {
                assert_eq!(events.last(), Some(&StreamEvent::Done), "{name} cut after {cut}: finished already");
            }
        }
    }
}

#[test]
fn done_marker_and_trailing_usage() {
    let mut lines = chunk_lines("azure-model-router.1.chunks.txt");
    lines.push("[DONE]".into());
    let events = decode(&mut openai_chat::Decoder::new(), &data_frames(&lines));
    assert_eq!(events.iter().filter(|e| **e == StreamEvent::Done).count(), 1);
    // Finish comes before the usage that follows it.
    let finish = events.iter().position(|e| matches!(e, StreamEvent::Finish { .. })).expect("finish");
    let usage_at = events.iter().rposition(|e| matches!(e, StreamEvent::Usage(_))).expect("usage");
    assert!(finish < usage_at);

    // `[DONE]` without a finish_reason still ends cleanly.
    let events = decode_lines(&[
        r#"{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"hi"}}]}"#,
        "[DONE]",
    ]);
    let s = summarize(&events);
    assert_eq!((s.text.as_str(), s.stop, s.done), ("hi", Some(StopReason::EndTurn), true));
}

#[test]
fn mid_stream_error_chunks_become_errors() {
    let events = decode_lines(&[
        r#"{"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":"par"}}]}"#,
        r#"{"error":{"message":"The server had an error","type":"server_error","param":null,"code":null}}"#,
    ]);
    let s = summarize(&events);
    assert_eq!(s.text, "par");
    assert_eq!(
        s.error,
        Some(ErrorInfo { status: 500, kind: "server_error".into(), message: "The server had an error".into() })
    );

    // Through the Anthropic encoder the client gets `event: error`, no message_stop.
    let wire = encode(&mut anthropic::Encoder::new(), &events);
    check_anthropic_frames(&wire);
    assert!(wire.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"The server had an error\"}}\n\n"));
    assert!(!wire.contains("message_stop"));
}

#[test]
fn stream_error_frame_is_what_the_sdks_raise() {
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
        let body = openai_chat::error_from_ir(&error);
        assert_eq!(body["error"]["message"], format!("{kind}!"));
        assert!(body["error"]["type"].is_string());
        assert!(body["error"].as_object().is_some_and(|e| e.contains_key("param") && e.contains_key("code")));
        assert_eq!(openai_chat::error_to_ir(0, body.to_string().as_bytes()), error, "{kind} survives");
        assert_eq!(openai_chat::error_to_ir(error.status, body.to_string().as_bytes()), error);
        // A data-only chunk whose top-level `error` the OpenAI SDKs turn into an APIError.
        let frame = openai_chat::stream_error_frame(&error);
        let events = sse_events(&frame);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].0, None);
        assert_eq!(serde_json::from_str::<Value>(&events[0].1).expect("json"), body);
        let decoded = decode(&mut openai_chat::Decoder::new(), &frame);
        assert_eq!(decoded, vec![StreamEvent::Error(error)]);
    }

    let text = openai_chat::error_to_ir(503, b"upstream connect error or disconnect/reset before headers");
    assert_eq!(
        (text.kind.as_str(), text.message.as_str()),
        ("overloaded", "upstream connect error or disconnect/reset before headers")
    );
    let anthropic_shape =
        openai_chat::error_to_ir(0, br#"{"type":"error","error":{"type":"rate_limit_error","message":"wait"}}"#);
    assert_eq!((anthropic_shape.status, anthropic_shape.kind.as_str()), (429, "rate_limit"));
    let gemini =
        openai_chat::error_to_ir(0, br#"{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED"}}"#);
    assert_eq!((gemini.status, gemini.kind.as_str(), gemini.message.as_str()), (429, "rate_limit", "quota"));
    let quota = openai_chat::error_to_ir(
        0,
        br#"{"error":{"message":"out of credit","type":"insufficient_quota","code":"insufficient_quota"}}"#,
    );
    assert_eq!(quota.kind, "rate_limit");
}

#[test]
fn tool_call_fragments_without_index_and_interleaving() {
    // Some vendors omit `index`: a new id starts the next call.
    let events = decode_lines(&[
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"id":"a","function":{"name":"f","arguments":"{\"x\""}}]}}]}"#,
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"function":{"arguments":":1}"}}]}}]}"#,
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"id":"b","function":{"name":"g"}}]}}]}"#,
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
    ]);
    let s = summarize(&events);
    assert_eq!(
        s.tools,
        vec![
            ("a".to_owned(), "f".to_owned(), r#"{"x":1}"#.to_owned()),
            ("b".to_owned(), "g".to_owned(), "{}".to_owned())
        ]
    );
    assert_eq!(s.stop, Some(StopReason::ToolUse), "`stop` after tool calls still means: run the tools");
    assert_round_trips(&events, "no-index tool calls");

    // A fragment for a call whose block was closed is reported, not glued to the wrong call.
    let mut decoder = openai_chat::Decoder::new();
    let chunk =
        |body: &str| format!(r#"{{"id":"c","model":"m","choices":[{{"index":0,"delta":{{"tool_calls":[{body}]}}}}]}}"#);
    decoder.decode(None, &chunk(r#"{"index":0,"id":"a","function":{"name":"f","arguments":"{"}}"#)).expect("first");
    decoder.decode(None, &chunk(r#"{"index":1,"id":"b","function":{"name":"g","arguments":"{}"}}"#)).expect("second");
    let late = decoder.decode(None, &chunk(r#"{"index":0,"function":{"arguments":"}"}}"#));
    assert!(matches!(late, Err(TranslateError::Upstream(_))));
}

#[test]
fn reasoning_alias_and_refusal_deltas() {
    let events = decode_lines(&[
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"role":"assistant","reasoning":"think"}}]}"#,
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{"refusal":"No."}}]}"#,
        r#"{"id":"c","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#,
    ]);
    let s = summarize(&events);
    assert_eq!((s.thinking.as_str(), s.text.as_str()), ("think", "No."));
    assert_eq!(s.stop, Some(StopReason::ContentFilter));
}

#[test]
fn encoder_usage_chunk_is_optional() {
    let events = decode_fixture("issue-19789-live-usage.chunks.txt");
    let with = encode(&mut openai_chat::Encoder::new(), &events);
    let without = encode(&mut openai_chat::Encoder::new().include_usage(false), &events);
    assert!(with.contains(r#""choices":[],"usage":{"prompt_tokens":88"#), "{with}");
    assert!(!without.contains("\"usage\""));
    assert!(with.ends_with("data: [DONE]\n\n") && without.ends_with("data: [DONE]\n\n"));
    // The first chunk announces the role, as OpenAI does.
    let first: Value = serde_json::from_str(&sse_events(&with)[0].1).expect("json");
    assert_eq!(first["choices"][0]["delta"], json!({"role": "assistant", "content": ""}));
}

// ---------------------------------------------------------------------------------------------
// Requests

fn openai_request() -> Value {
    json!({
        "model": "gpt-4.1",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "system", "content": [{"type": "text", "text": "Use metric units."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "Describe"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "high"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
            ]},
            {"role": "assistant", "content": null, "reasoning_content": "Need weather.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "-3°C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "09:30"}]},
            {"role": "user", "content": "And tomorrow?"},
            {"role": "assistant", "content": "Probably snow."},
            {"role": "user", "content": "Thanks"}
        ],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Weather",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}},
            {"type": "function", "function": {"name": "get_time"}}
        ],
        "tool_choice": "required",
        "reasoning_effort": "high",
        "max_completion_tokens": 4096,
        "temperature": 1.5,
        "top_p": 0.9,
        "stop": "STOP",
        "stream": false,
        "user": "u-2"
    })
}

#[test]
fn openai_request_to_ir() {
    let request = openai_chat::request_to_ir(openai_request().to_string().as_bytes()).expect("valid");
    assert_eq!(request.model, "gpt-4.1");
    assert_eq!(request.system, ["Be brief.", "Use metric units."]);
    assert_eq!(request.max_output_tokens, Some(4096));
    assert_eq!(request.stop, ["STOP"]);
    assert_eq!(request.tool_choice, Some(ToolChoice::Required));
    assert_eq!(
        request.reasoning,
        Some(Reasoning { effort: Some("high".into()), budget_tokens: None, include_thoughts: true })
    );
    assert_eq!(request.tools[1].parameters, json!({"type": "object", "properties": {}}));
    assert_eq!(
        request.messages,
        vec![
            Message {
                role: Role::User,
                content: vec![
                    Part::Text("Describe".into()),
                    Part::Image(ImageSource::Base64 { media_type: "image/jpeg".into(), data: "/9j/4AAQ".into() }),
                    Part::Image(ImageSource::Url("https://example.com/a.png".into())),
                ],
            },
            Message {
                role: Role::Assistant,
                content: vec![
                    Part::Thinking { text: "Need weather.".into(), signature: None },
                    Part::ToolCall {
                        id: "call_1".into(),
                        name: "get_weather".into(),
                        arguments: r#"{"city":"Oslo"}"#.into()
                    },
                    Part::ToolCall { id: "call_2".into(), name: "get_time".into(), arguments: "{}".into() },
                ],
            },
            // Consecutive tool messages are one neutral turn.
            Message {
                role: Role::Tool,
                content: vec![
                    Part::ToolResult {
                        call_id: "call_1".into(),
                        content: vec![Part::Text("-3°C".into())],
                        is_error: false
                    },
                    Part::ToolResult {
                        call_id: "call_2".into(),
                        content: vec![Part::Text("09:30".into())],
                        is_error: false
                    },
                ],
            },
            Message { role: Role::User, content: vec![Part::Text("And tomorrow?".into())] },
            Message { role: Role::Assistant, content: vec![Part::Text("Probably snow.".into())] },
            Message { role: Role::User, content: vec![Part::Text("Thanks".into())] },
        ]
    );
}

#[test]
fn openai_request_to_anthropic() {
    let request = openai_chat::request_to_ir(openai_request().to_string().as_bytes()).expect("valid");
    let body = anthropic::request_from_ir(&request).expect("translates");
    assert_eq!(
        body,
        json!({
            "model": "gpt-4.1",
            "max_tokens": 4096,
            "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Use metric units."}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Describe"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
                ]},
                // Unsigned reasoning cannot go to Anthropic.
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Oslo"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}}
                ]},
                // Both tool messages and the next user message are one user turn.
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": [{"type": "text", "text": "-3°C"}]},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "09:30"}]},
                    {"type": "text", "text": "And tomorrow?"}
                ]},
                {"role": "assistant", "content": [{"type": "text", "text": "Probably snow."}]},
                {"role": "user", "content": [{"type": "text", "text": "Thanks"}]}
            ],
            // Clamped to Anthropic's range; top_p not sent next to temperature; a forced tool
            // choice turns thinking off (Anthropic rejects both together).
            "temperature": 1.0,
            "stop_sequences": ["STOP"],
            "stream": false,
            "tools": [
                {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}},
                {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
            ],
            "tool_choice": {"type": "any"},
            "metadata": {"user_id": "u-2"}
        })
    );
}

#[test]
fn foreign_tool_ids_are_made_valid_for_anthropic() {
    let request = openai_chat::request_to_ir(
        br#"{"model":"kimi","messages":[{"role":"user","content":"time?"},
            {"role":"assistant","content":"","tool_calls":[{"id":"functions.get_time:0","type":"function","function":{"name":"get_time","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"functions.get_time:0","content":"09:30"}]}"#,
    )
    .expect("valid");
    let body = anthropic::request_from_ir(&request).expect("translates");
    assert_eq!(body["messages"][1]["content"][0]["id"], "functions_get_time_0");
    assert_eq!(body["messages"][2]["content"][0]["tool_use_id"], "functions_get_time_0", "still paired");
}

#[test]
fn openai_request_reasoning_to_anthropic_thinking() {
    let mut request = openai_chat::request_to_ir(openai_request().to_string().as_bytes()).expect("valid");
    request.tool_choice = Some(ToolChoice::Auto);
    request.max_output_tokens = None;
    request.stream = true;
    let body = anthropic::request_from_ir(&request).expect("translates");
    assert_eq!(body["thinking"], json!({"type": "enabled", "budget_tokens": 24576}));

    // In a tool loop whose assistant turn has no signed thinking, Anthropic would reject thinking.
    request.messages.truncate(3);
    assert_eq!(request.messages[2].role, Role::Tool);
    assert!(anthropic::request_from_ir(&request).expect("body").get("thinking").is_none());
    request.messages[1].content.insert(0, Part::Thinking { text: "t".into(), signature: Some("sig".into()) });
    let body = anthropic::request_from_ir(&request).expect("translates");
    assert_eq!(body["thinking"], json!({"type": "enabled", "budget_tokens": 24576}));
    assert_eq!(body["max_tokens"], 24576 + anthropic::DEFAULT_MAX_TOKENS);
    assert!(body.get("temperature").is_none() && body.get("top_p").is_none(), "thinking rejects sampling changes");
    assert_eq!(body["tool_choice"], json!({"type": "auto"}));
    assert_eq!(body["stream"], true);

    for (effort, budget) in [("minimal", 1024), ("low", 1024), ("medium", 8192), ("xhigh", 32768)] {
        request.reasoning =
            Some(Reasoning { effort: Some(effort.into()), budget_tokens: None, include_thoughts: true });
        assert_eq!(
            anthropic::request_from_ir(&request).expect("body")["thinking"]["budget_tokens"],
            budget,
            "{effort}"
        );
    }
    request.reasoning = Some(Reasoning { effort: Some("none".into()), budget_tokens: None, include_thoughts: false });
    assert!(anthropic::request_from_ir(&request).expect("body").get("thinking").is_none());
    request.max_output_tokens = Some(700);
    request.reasoning = Some(Reasoning { effort: Some("low".into()), budget_tokens: None, include_thoughts: true });
    assert!(anthropic::request_from_ir(&request).expect("body").get("thinking").is_none(), "no room for a budget");
}

#[test]
fn openai_request_back_to_openai() {
    let request = openai_chat::request_to_ir(openai_request().to_string().as_bytes()).expect("valid");
    let body = openai_chat::request_from_ir(&request).expect("translates");
    assert_eq!(body["messages"][0], json!({"role": "system", "content": "Be brief."}));
    assert_eq!(
        body["messages"][3],
        json!({"role": "assistant", "content": null, "reasoning_content": "Need weather.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}},
            {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
        ]})
    );
    assert_eq!(body["messages"][4], json!({"role": "tool", "content": "-3°C", "tool_call_id": "call_1"}));
    assert_eq!(body["messages"][5], json!({"role": "tool", "content": "09:30", "tool_call_id": "call_2"}));
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["reasoning_effort"], "high");
    assert_eq!(body["tool_choice"], "required");
    assert_eq!(body["stop"], json!(["STOP"]));
    assert!(body.get("stream_options").is_none(), "not streaming");
    assert_eq!(openai_chat::request_to_ir(body.to_string().as_bytes()).expect("again"), request);

    // Thinking budgets become efforts.
    for (budget, effort) in [(1024, Some("low")), (8192, Some("medium")), (31999, Some("high")), (0, None)] {
        let mut request = request.clone();
        request.reasoning = Some(Reasoning { effort: None, budget_tokens: Some(budget), include_thoughts: true });
        assert_eq!(
            openai_chat::request_from_ir(&request).expect("body").get("reasoning_effort").and_then(Value::as_str),
            effort
        );
    }
}

fn invalid_field(body: &[u8]) -> (String, String) {
    match openai_chat::request_to_ir(body) {
        Err(TranslateError::InvalidField { field, message }) => (field, message),
        other => panic!("expected InvalidField, got {other:?}"),
    }
}

#[test]
fn invalid_openai_requests_name_the_field() {
    let (field, message) = invalid_field(b"{\"model\": ");
    assert_eq!(field, "body");
    assert!(message.contains("line 1 column"), "{message}");
    assert_eq!(invalid_field(br#"{"messages":[{"role":"user","content":"hi"}]}"#).0, "model");
    assert_eq!(invalid_field(br#"{"model":"m","messages":{"role":"user"}}"#).0, "messages");
    assert_eq!(invalid_field(br#"{"model":"m"}"#).0, "messages");
    let (field, message) = invalid_field(br#"{"model":"m","messages":[{"role":"wizard","content":"hi"}]}"#);
    assert_eq!(field, "messages[0].role");
    assert!(message.contains("wizard"));
    assert_eq!(invalid_field(br#"{"model":"m","messages":[{"content":"hi"}]}"#).0, "messages[0].role");
    assert_eq!(
        invalid_field(br#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"tool","content":"42"}]}"#).0,
        "messages[1].tool_call_id"
    );
    assert_eq!(
        invalid_field(br#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{}}]}]}"#)
            .0,
        "messages[0].content[0].image_url.url"
    );
    let (field, message) = invalid_field(
        br#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png,abc"}}]}]}"#,
    );
    assert_eq!(field, "messages[0].content[0].image_url.url");
    assert!(message.contains("base64"));
    assert_eq!(
        invalid_field(br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text"}]}]}"#).0,
        "messages[0].content[0].text"
    );
    assert_eq!(
        invalid_field(br#"{"model":"m","messages":[{"role":"user","content":[{"type":"video"}]}]}"#).0,
        "messages[0].content[0].type"
    );
    assert_eq!(
        invalid_field(br#"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"type":"function","function":{"name":"f"}}]}]}"#).0,
        "messages[0].tool_calls[0].id"
    );
    assert_eq!(
        invalid_field(br#"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","function":{"arguments":"{}"}}]}]}"#).0,
        "messages[0].tool_calls[0].function.name"
    );
    assert_eq!(
        invalid_field(br#"{"model":"m","messages":[{"role":"user","content":"a"}],"tool_choice":"maybe"}"#).0,
        "tool_choice"
    );
    assert_eq!(
        invalid_field(br#"{"model":"m","messages":[{"role":"user","content":"a"}],"tools":[{"type":"function"}]}"#).0,
        "tools[0].function"
    );
    assert_eq!(
        invalid_field(br#"{"model":"m","messages":[{"role":"user","content":"a"}],"temperature":"hot"}"#).0,
        "temperature"
    );
    assert_eq!(invalid_field(br#"{"model":"m","messages":[{"role":"user","content":"a"}],"stop":[1]}"#).0, "stop[0]");
    assert_eq!(invalid_field(br#"{"model":"m","messages":[{"role":"user","content":5}]}"#).0, "messages[0].content");

    let audio = br#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"x","format":"wav"}}]}]}"#;
    assert!(matches!(openai_chat::request_to_ir(audio), Err(TranslateError::Unsupported(_))));
    let function_role = br#"{"model":"m","messages":[{"role":"function","name":"f","content":"x"}]}"#;
    assert!(matches!(openai_chat::request_to_ir(function_role), Err(TranslateError::Unsupported(_))));
}
