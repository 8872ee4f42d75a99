//! Gemini dialect: recorded upstream fixtures replayed field by field, re-encoding through both stream
//! encoders, requests, errors and truncation.

use std::collections::HashSet;

use serde_json::{Value, json};
use switchyard_dialects::ir::{
    ChatRequest, ChatResponse, ErrorInfo, ImageSource, Message, Part, Reasoning, Role, StopReason, StreamDecoder,
    StreamEvent, ToolChoice, ToolDefinition, TranslateError,
};
use switchyard_dialects::{gemini, openai_responses};

mod common;

use common::gemini_responses::{Summary, assert_reencodes, summarize};
use common::{decode_payloads, encode_all, fixture_lines, fixture_text, mutations, parse_sse, prefixes, usage};

// ------------------------------------------------------------------------------------------------
// Fixture helpers

const DIR: &str = "gemini";

fn fixture(name: &str) -> String {
    fixture_text(DIR, name)
}

fn lines(name: &str) -> Vec<String> {
    fixture_lines(DIR, name)
}

fn json_lines(name: &str) -> Vec<Value> {
    lines(name).iter().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The stream fixtures in the one-payload-per-line format.
const STREAMS: &[&str] = &[
    "google-text.chunks.txt",
    "google-tool-call.chunks.txt",
    "google-reasoning.chunks.txt",
    "google-stream-no-args-tool-call.chunks.txt",
    "issue-19758-prompt-block.chunks.txt",
];
const RAW_SSE: &str = "google-stream-gemini-3.7-flash-2026-09-16.chunks.txt";

fn decode_lines(lines: &[String]) -> Vec<StreamEvent> {
    let payloads: Vec<_> = lines.iter().map(|l| (None, l.clone())).collect();
    decode_payloads(gemini::Decoder::new(), &payloads)
}

fn last_part(chunks: &[Value]) -> &Value {
    let parts = chunks.last().unwrap()["candidates"][0]["content"]["parts"].as_array().unwrap();
    parts.last().unwrap()
}

// ------------------------------------------------------------------------------------------------
// Stream fixtures

#[test]
fn text_stream() {
    let chunks = json_lines("google-text.chunks.txt");
    let events = decode_lines(&lines("google-text.chunks.txt"));
    let s = summarize(&events);
    assert_eq!(s.start, Some(("bH6LaZW8Fp_3nsEPqtaSwQ4".into(), "gemini-3-pro-preview".into())));
    assert_eq!(s.text, "There are **3** \"r\"s in strawberry.\n\nst**r**awbe**rr**y");
    assert_eq!(s.thinking, "");
    assert_eq!(s.signatures, vec![last_part(&chunks)["thoughtSignature"].as_str().unwrap().to_owned()]);
    assert!(s.calls.is_empty());
    assert_eq!(s.stop, Some(StopReason::EndTurn));
    assert_eq!(s.usage, Some(usage(9, 23 + 185, 0, 185)));
    assert!(s.done && s.error.is_none());
    assert_reencodes(&events);
}

#[test]
fn text_body_keeps_the_signature_on_its_part() {
    let body = fixture("google-text.json");
    let raw: Value = serde_json::from_str(&body).unwrap();
    let signature = raw["candidates"][0]["content"]["parts"][0]["thoughtSignature"].as_str().unwrap().to_owned();
    let response = gemini::response_to_ir(body.as_bytes()).unwrap();
    assert_eq!(response.id, "Un6LacrVMcjUxs0PmJfWoQc");
    assert_eq!(response.model, "gemini-3-pro-preview");
    assert_eq!(
        response.content,
        vec![
            Part::Thinking { text: String::new(), signature: Some(signature.clone()) },
            Part::Text("There are **3** r's in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y.".into()),
        ]
    );
    assert_eq!(response.stop_reason, Some(StopReason::EndTurn));
    assert_eq!(response.usage, usage(9, 28 + 244, 0, 244));

    // Written back, the signature rides on the text part again.
    let written = gemini::response_from_ir(&response);
    let part = &written["candidates"][0]["content"]["parts"][0];
    assert_eq!(part["text"], raw["candidates"][0]["content"]["parts"][0]["text"]);
    assert_eq!(part["thoughtSignature"], signature.as_str());
    assert_eq!(written["candidates"][0]["content"]["parts"].as_array().unwrap().len(), 1);
    assert_eq!(written["usageMetadata"]["promptTokenCount"], 9);
    assert_eq!(written["usageMetadata"]["candidatesTokenCount"], 28);
    assert_eq!(written["usageMetadata"]["thoughtsTokenCount"], 244);
    assert_eq!(gemini::response_to_ir(written.to_string().as_bytes()).unwrap(), response);
}

#[test]
fn tool_call_stream_and_body_agree() {
    let chunks = json_lines("google-tool-call.chunks.txt");
    let events = decode_lines(&lines("google-tool-call.chunks.txt"));
    let s = summarize(&events);
    let expected_sig = chunks[0]["candidates"][0]["content"]["parts"][0]["thoughtSignature"].as_str().unwrap();
    assert_eq!(s.signatures, vec![expected_sig.to_owned()]);
    assert_eq!(
        s.calls,
        vec![("call_b36LacjwM668nsEP2tbsgQQ_0".into(), "weather".into(), json!({"location": "San Francisco"}))]
    );
    assert_eq!(s.text, "");
    assert_eq!(s.stop, Some(StopReason::ToolUse));
    assert_eq!(s.usage, Some(usage(29, 15 + 45, 0, 45)));
    // The signature block comes right before the call.
    let sig_at = events.iter().position(|e| matches!(e, StreamEvent::ThinkingSignature { .. })).unwrap();
    let call_at = events.iter().position(|e| matches!(e, StreamEvent::ToolCallStart { .. })).unwrap();
    assert!(sig_at < call_at);
    assert_reencodes(&events);

    let body = fixture("google-tool-call.json");
    let raw: Value = serde_json::from_str(&body).unwrap();
    let response = gemini::response_to_ir(body.as_bytes()).unwrap();
    let Part::ToolCall { id, name, arguments } = &response.content[1] else { panic!("{:?}", response.content) };
    assert_eq!(id, "call_m36LaZGyCLz1xs0PtNSB-QU_0");
    assert_eq!((name.as_str(), serde_json::from_str::<Value>(arguments).unwrap()), ("weather", s.calls[0].2.clone()));
    assert_eq!(
        response.content[0],
        Part::Thinking {
            text: String::new(),
            signature: raw["candidates"][0]["content"]["parts"][0]["thoughtSignature"].as_str().map(str::to_owned)
        }
    );
    assert_eq!(response.stop_reason, Some(StopReason::ToolUse));
    assert_eq!(response.usage, usage(29, 15 + 893, 0, 893));

    // Written back: one functionCall part carrying its signature, with the call id.
    let written = gemini::response_from_ir(&response);
    let parts = written["candidates"][0]["content"]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0]["thoughtSignature"], raw["candidates"][0]["content"]["parts"][0]["thoughtSignature"]);
    assert_eq!(parts[0]["functionCall"]["name"], "weather");
    assert_eq!(parts[0]["functionCall"]["args"], json!({"location": "San Francisco"}));
    assert_eq!(parts[0]["functionCall"]["id"], "call_m36LaZGyCLz1xs0PtNSB-QU_0");
    assert_eq!(written["candidates"][0]["finishReason"], "STOP");
}

#[test]
fn reasoning_stream_without_thought_summaries() {
    let chunks = json_lines("google-reasoning.chunks.txt");
    let events = decode_lines(&lines("google-reasoning.chunks.txt"));
    let s = summarize(&events);
    assert_eq!(s.text, "There are **3** \"r\"s in strawberry.\n\nHere is the breakdown: st**r**awbe**rr**y.");
    assert_eq!(s.thinking, "");
    assert_eq!(s.signatures, vec![last_part(&chunks)["thoughtSignature"].as_str().unwrap().to_owned()]);
    assert_eq!(s.stop, Some(StopReason::EndTurn));
    assert_eq!(s.usage, Some(usage(9, 29 + 256, 0, 256)));
    assert_reencodes(&events);
}

#[test]
fn vertex_stream_with_thoughts_no_arg_call_and_streamed_arguments() {
    let chunks = json_lines("google-stream-no-args-tool-call.chunks.txt");
    let events = decode_lines(&lines("google-stream-no-args-tool-call.chunks.txt"));
    let s = summarize(&events);
    assert_eq!(s.start.as_ref().map(|(_, m)| m.as_str()), Some("gemini-3-flash-preview"));
    assert_eq!(s.thinking, chunks[0]["candidates"][0]["content"]["parts"][0]["text"].as_str().unwrap());
    let signature = chunks[1]["candidates"][0]["content"]["parts"][0]["thoughtSignature"].as_str().unwrap();
    assert_eq!(s.signatures, vec![signature.to_owned()]);
    let calls: Vec<(&str, Value)> = s.calls.iter().map(|(_, n, a)| (n.as_str(), a.clone())).collect();
    assert_eq!(
        calls,
        vec![
            ("read_theme", json!({})),
            ("read_screen", json!({"id": "A"})),
            ("read_screen", json!({"id": "B"})),
            ("read_screen", json!({"id": "C"})),
        ]
    );
    let ids: HashSet<&str> = s.calls.iter().map(|(id, _, _)| id.as_str()).collect();
    assert_eq!(ids.len(), 4, "synthesized ids are unique");
    assert_eq!(s.text, "");
    assert_eq!(s.stop, Some(StopReason::ToolUse));
    assert_eq!(s.usage, Some(usage(249, 58 + 183, 0, 183)));
    // Thinking, then the signature-only block, then the call that carried it.
    let kinds: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ThinkingStart { .. } => Some("thinking"),
            StreamEvent::ThinkingSignature { .. } => Some("signature"),
            StreamEvent::ToolCallStart { .. } => Some("call"),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, ["thinking", "thinking", "signature", "call", "call", "call", "call"]);
    assert_reencodes(&events);
}

#[test]
fn prompt_block_is_a_content_filter() {
    let events = decode_lines(&lines("issue-19758-prompt-block.chunks.txt"));
    let s = summarize(&events);
    assert_eq!(s.start, Some(("EXCPatOAKMrQjMcPteHVmQo".into(), "gemini-3.7-flash".into())));
    assert_eq!((s.text.as_str(), s.calls.len()), ("", 0));
    assert_eq!(s.stop, Some(StopReason::ContentFilter));
    assert_eq!(s.usage, Some(usage(9, 0, 0, 0)));
    assert!(s.done);
    assert_reencodes(&events);

    let response = gemini::response_to_ir(fixture("issue-19758-prompt-block.json").as_bytes()).unwrap();
    assert!(response.content.is_empty());
    assert_eq!(response.stop_reason, Some(StopReason::ContentFilter));
    assert_eq!(response.usage, usage(9, 0, 0, 0));
    assert_eq!(response.id, "EXCPaojyHaDUjMcP656rqAk");
}

#[test]
fn complete_usage_body() {
    let response = gemini::response_to_ir(fixture("issue-19822-complete-usage.json").as_bytes()).unwrap();
    assert_eq!(response.content, vec![Part::Text("42".into())]);
    assert_eq!(response.model, "gemini-2.5-flash");
    assert_eq!(response.usage, usage(19, 4 + 56, 3, 56));
    assert_eq!(response.stop_reason, Some(StopReason::EndTurn));
}

#[test]
fn raw_crlf_sse_fed_in_odd_chunks() {
    let wire = fixture(RAW_SSE);
    assert!(wire.contains("\r\n\r\n"));
    let mut reference: Option<Summary> = None;
    for size in [1, 2, 3, 5, 7, 13, 64, 333, wire.len()] {
        let payloads = parse_sse(wire.as_bytes(), size);
        assert_eq!(payloads.len(), 2, "chunk size {size}");
        let events = decode_payloads(gemini::Decoder::new(), &payloads);
        let s = summarize(&events);
        assert_eq!(s.text, "fixture ok");
        assert_eq!(s.signatures.len(), 1);
        assert!(s.signatures[0].starts_with("EqkECqYEARFNMg"));
        assert_eq!(s.stop, Some(StopReason::EndTurn));
        assert_eq!(s.usage, Some(usage(7, 2 + 94, 0, 94)));
        assert_eq!(s.start, Some(("WQuqavG5KbfUjMcPuP_n6QI".into(), "gemini-3.7-flash".into())));
        if let Some(reference) = &reference {
            assert_eq!(&s, reference, "chunk size {size}");
        }
        reference = Some(s);
        if size == 7 {
            assert_reencodes(&events);
        }
    }
}

#[test]
fn every_fixture_stream_fed_as_sse_in_odd_chunks_decodes_the_same() {
    for name in STREAMS {
        let direct = summarize(&decode_lines(&lines(name)));
        let wire: String = lines(name).iter().map(|l| format!("data: {l}\n\n")).collect();
        for size in [1, 7, 61] {
            let events = decode_payloads(gemini::Decoder::new(), &parse_sse(wire.as_bytes(), size));
            assert_eq!(summarize(&events), direct, "{name} in {size}-byte chunks");
        }
    }
}

#[test]
fn truncated_streams_end_in_an_error() {
    for name in STREAMS.iter().copied().chain([RAW_SSE]) {
        let payloads: Vec<(Option<String>, String)> = if name == RAW_SSE {
            parse_sse(fixture(name).as_bytes(), 4096)
        } else {
            lines(name).into_iter().map(|l| (None, l)).collect()
        };
        // Every cut before the finishing chunk is a truncation.
        for cut in 0..payloads.len() {
            let events = decode_payloads(gemini::Decoder::new(), &payloads[..cut]);
            let s = summarize(&events);
            let error = s.error.unwrap_or_else(|| panic!("{name} cut at {cut}: no error"));
            assert_eq!((error.status, error.kind.as_str()), (502, "server_error"));
            assert!(!s.done);
            assert!(matches!(events.last(), Some(StreamEvent::Error(_))));
        }
        let whole = summarize(&decode_payloads(gemini::Decoder::new(), &payloads));
        assert!(whole.done && whole.error.is_none(), "{name}");
    }
}

#[test]
fn streamed_partial_arguments_build_nested_values() {
    let chunks = [
        json!({"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"f","willContinue":true}}]}}]}),
        json!({"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"partialArgs":[
            {"jsonPath":"$.a.b","numberValue":1.5},
            {"jsonPath":"$.list[0]","stringValue":"he said \"","willContinue":true}
        ],"willContinue":true}}]}}]}),
        json!({"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"partialArgs":[
            {"jsonPath":"$.list[0]","stringValue":"hi\""},
            {"jsonPath":"$.list[1].ok","boolValue":true},
            {"jsonPath":"$.nothing","nullValue":null},
            {"jsonPath":"$.list[99999999]","stringValue":"ignored"}
        ],"willContinue":true}}]}}]}),
        json!({"candidates":[{"content":{"role":"model","parts":[{"functionCall":{}}]}}]}),
        json!({"candidates":[{"content":{"role":"model","parts":[{"text":"done"}]},"finishReason":"STOP"}]}),
    ];
    let lines: Vec<String> = chunks.iter().map(Value::to_string).collect();
    let s = summarize(&decode_lines(&lines));
    assert_eq!(s.calls.len(), 1);
    assert_eq!(s.calls[0].1, "f");
    assert_eq!(s.calls[0].2, json!({"a": {"b": 1.5}, "list": ["he said \"hi\"", {"ok": true}], "nothing": null}));
    assert_eq!(s.text, "done");
    assert_eq!(s.stop, Some(StopReason::ToolUse));
}

#[test]
fn failure_finish_reasons_and_error_chunks_are_errors() {
    let malformed = json!({"candidates":[{"content":{"parts":[{"text":""}]},"finishReason":"MALFORMED_FUNCTION_CALL","finishMessage":"bad call"}]});
    let s = summarize(&decode_lines(&[malformed.to_string()]));
    let error = s.error.unwrap();
    assert!(error.message.contains("MALFORMED_FUNCTION_CALL") && error.message.contains("bad call"), "{error:?}");
    let body = gemini::response_to_ir(malformed.to_string().as_bytes()).unwrap();
    assert_eq!(body.stop_reason, Some(StopReason::Error));

    let text = json!({"candidates":[{"content":{"parts":[{"text":"partial"}]}}],"responseId":"r1"}).to_string();
    let error = json!({"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}).to_string();
    let events = decode_lines(&[text, error]);
    let s = summarize(&events);
    assert_eq!(s.text, "partial");
    assert_eq!(
        s.error,
        Some(ErrorInfo { status: 503, kind: "overloaded".into(), message: "The model is overloaded.".into() })
    );
    assert_reencodes(&events);

    let s = summarize(&decode_lines(&[
        json!({"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"MAX_TOKENS"}]}).to_string(),
    ]));
    assert_eq!(s.stop, Some(StopReason::MaxTokens));
    let s = summarize(&decode_lines(&[json!({"candidates":[{"finishReason":"SAFETY"}]}).to_string()]));
    assert_eq!(s.stop, Some(StopReason::ContentFilter));

    let mut decoder = gemini::Decoder::new();
    assert!(matches!(decoder.decode(None, "{not json"), Err(TranslateError::Upstream(_))));
    assert!(matches!(decoder.finish().as_slice(), [StreamEvent::Error(_)]));
}

#[test]
fn thought_parts_stream_and_round_trip() {
    let chunks = [
        json!({"candidates":[{"content":{"role":"model","parts":[{"text":"Let me think","thought":true}]}}],"responseId":"abc","modelVersion":"gemini-2.5-pro"}),
        json!({"candidates":[{"content":{"role":"model","parts":[{"text":" harder.","thought":true}]}}]}),
        json!({"candidates":[{"content":{"role":"model","parts":[{"text":"","thought":true,"thoughtSignature":"SIG1"}]}}]}),
        json!({"candidates":[{"content":{"role":"model","parts":[{"text":"Answer."}]}}]}),
        json!({"candidates":[{"content":{"role":"model","parts":[{"text":""}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":3,"candidatesTokenCount":2,"thoughtsTokenCount":5,"cachedContentTokenCount":1}}),
    ];
    let lines: Vec<String> = chunks.iter().map(Value::to_string).collect();
    let events = decode_lines(&lines);
    let s = summarize(&events);
    assert_eq!(s.thinking, "Let me think harder.");
    assert_eq!(s.signatures, ["SIG1"]);
    assert_eq!(s.text, "Answer.");
    assert_eq!(s.usage, Some(usage(3, 7, 1, 5)));
    assert_reencodes(&events);
}

// ------------------------------------------------------------------------------------------------
// Errors

#[test]
fn error_bodies() {
    let body = fixture("google-429-retry-info.json");
    let expected = ErrorInfo {
        status: 429,
        kind: "rate_limit".into(),
        message: "You exceeded your current quota, please check your plan.".into(),
    };
    assert_eq!(gemini::error_to_ir(429, body.as_bytes()), expected);
    assert_eq!(gemini::error_to_ir(0, body.as_bytes()), expected, "status from the body's code");
    let array = format!("[{body}]");
    assert_eq!(gemini::error_to_ir(429, array.as_bytes()), expected);
    let wrapped = format!(r#"{{"response": {body}}}"#);
    assert_eq!(gemini::error_to_ir(429, wrapped.as_bytes()).kind, "rate_limit");

    let html = gemini::error_to_ir(503, b"<html>Service Unavailable</html>");
    assert_eq!((html.status, html.kind.as_str()), (503, "overloaded"));
    assert!(html.message.contains("Service Unavailable"));
    let empty = gemini::error_to_ir(401, b"");
    assert_eq!((empty.status, empty.kind.as_str()), (401, "authentication"));
    assert!(!empty.message.is_empty());
    let bare = gemini::error_to_ir(400, br#"{"error":"Missing API key"}"#);
    assert_eq!((bare.kind.as_str(), bare.message.as_str()), ("invalid_request", "Missing API key"));
    let google = gemini::error_to_ir(400, br#"{"error":{"code":400,"message":"bad","status":"PERMISSION_DENIED"}}"#);
    assert_eq!(google.kind, "permission");

    let written = gemini::error_from_ir(&expected);
    assert_eq!(
        written,
        json!({"error":{"code":429,"message":"You exceeded your current quota, please check your plan.","status":"RESOURCE_EXHAUSTED"}})
    );
    assert_eq!(gemini::error_to_ir(429, written.to_string().as_bytes()), expected);

    let frame = gemini::stream_error_frame(&expected);
    assert!(frame.starts_with("data: {\"error\":"), "{frame}");
    let payloads = parse_sse(frame.as_bytes(), 5);
    let s = summarize(&decode_payloads(gemini::Decoder::new(), &payloads));
    assert_eq!(s.error, Some(expected));
}

// ------------------------------------------------------------------------------------------------
// Requests

fn sample_request() -> Value {
    json!({
        "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Use tools."}]},
        "contents": [
            {"role": "user", "parts": [
                {"text": "What is in this image, and the weather in Paris?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}}
            ]},
            {"role": "model", "parts": [
                {"text": "Checking", "thought": true, "thoughtSignature": "THINK"},
                {"functionCall": {"name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "SIG_CALL"},
                {"functionCall": {"name": "clock", "args": {}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "clock", "response": {"output": "12:00"}}},
                {"functionResponse": {"name": "weather", "response": {"temp": 21, "sky": "clear"}}},
                {"text": "Thanks. And London?"}
            ]},
            {"role": "model", "parts": [{"text": "London is rainy."}]},
            {"role": "user", "parts": [{"text": "ok"}]}
        ],
        "tools": [
            {"functionDeclarations": [
                {"name": "weather", "description": "Weather by city",
                 "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
                {"name": "clock", "parameters": {"type": "OBJECT", "properties": {"tz": {"type": "STRING"}}}}
            ]},
            {"googleSearch": {}}
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}},
        "generationConfig": {
            "maxOutputTokens": 1000, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"],
            "thinkingConfig": {"thinkingBudget": 4096, "includeThoughts": true}
        }
    })
}

#[test]
fn request_to_ir_reads_every_field() {
    let request = gemini::request_to_ir(sample_request().to_string().as_bytes(), "models/gemini-2.5-pro").unwrap();
    assert_eq!(request.model, "gemini-2.5-pro");
    assert_eq!(request.system, ["Be brief.", "Use tools."]);
    assert_eq!(request.max_output_tokens, Some(1000));
    assert_eq!((request.temperature, request.top_p), (Some(0.5), Some(0.9)));
    assert_eq!(request.stop, ["END"]);
    assert_eq!(request.tool_choice, Some(ToolChoice::Tool("weather".into())));
    assert_eq!(request.reasoning, Some(Reasoning { effort: None, budget_tokens: Some(4096), include_thoughts: true }));
    assert_eq!(request.tools.len(), 2, "googleSearch is dropped");
    assert_eq!(request.tools[0].parameters["required"], json!(["city"]));
    assert_eq!(request.tools[1].parameters, json!({"type": "object", "properties": {"tz": {"type": "string"}}}));

    let roles: Vec<Role> = request.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::Tool, Role::User, Role::Assistant, Role::User]);
    assert_eq!(
        request.messages[0].content,
        vec![
            Part::Text("What is in this image, and the weather in Paris?".into()),
            Part::Image(ImageSource::Base64 { media_type: "image/png".into(), data: "iVBORw0KGgo=".into() }),
            Part::Image(ImageSource::Url("https://example.com/cat.jpg".into())),
        ]
    );
    assert_eq!(
        request.messages[1].content,
        vec![
            Part::Thinking { text: "Checking".into(), signature: Some("THINK".into()) },
            Part::Thinking { text: String::new(), signature: Some("SIG_CALL".into()) },
            Part::ToolCall { id: "call_0".into(), name: "weather".into(), arguments: r#"{"city":"Paris"}"#.into() },
            Part::ToolCall { id: "call_1".into(), name: "clock".into(), arguments: "{}".into() },
        ]
    );
    // Results are matched to the calls by name.
    assert_eq!(
        request.messages[2].content,
        vec![
            Part::ToolResult { call_id: "call_1".into(), content: vec![Part::Text("12:00".into())], is_error: false },
            Part::ToolResult {
                call_id: "call_0".into(),
                content: vec![Part::Text(r#"{"temp":21,"sky":"clear"}"#.into())],
                is_error: false
            },
        ]
    );
    assert_eq!(request.messages[3].content, vec![Part::Text("Thanks. And London?".into())]);
}

#[test]
fn gemini_request_round_trips_through_ir() {
    let request = gemini::request_to_ir(sample_request().to_string().as_bytes(), "gemini-2.5-pro").unwrap();
    let written = gemini::request_from_ir(&request).unwrap();
    assert_eq!(written["systemInstruction"]["parts"], json!([{"text": "Be brief."}, {"text": "Use tools."}]));
    let model = &written["contents"][1];
    assert_eq!(model["role"], "model");
    assert_eq!(model["parts"][0], json!({"text": "Checking", "thought": true, "thoughtSignature": "THINK"}));
    assert_eq!(
        model["parts"][1],
        json!({"functionCall": {"id": "call_0", "name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "SIG_CALL"})
    );
    assert_eq!(model["parts"][2], json!({"functionCall": {"id": "call_1", "name": "clock", "args": {}}}));
    let results = &written["contents"][2];
    assert_eq!(results["role"], "user");
    assert_eq!(
        results["parts"][0],
        json!({"functionResponse": {"id": "call_1", "name": "clock", "response": {"output": "12:00"}}})
    );
    assert_eq!(results["parts"][1]["functionResponse"]["response"], json!({"temp": 21, "sky": "clear"}));
    assert_eq!(results["parts"][2], json!({"text": "Thanks. And London?"}), "tool and user turns share a content");
    assert_eq!(written["contents"].as_array().unwrap().len(), 5);
    assert_eq!(
        written["contents"][0]["parts"][1],
        json!({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})
    );
    assert_eq!(
        written["contents"][0]["parts"][2],
        json!({"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat.jpg"}})
    );
    assert_eq!(
        written["toolConfig"],
        json!({"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}})
    );
    assert_eq!(
        written["generationConfig"],
        json!({"maxOutputTokens": 1000, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"],
               "thinkingConfig": {"thinkingBudget": 4096, "includeThoughts": true}})
    );
    assert_eq!(
        written["tools"][0]["functionDeclarations"][1]["parametersJsonSchema"]["properties"]["tz"]["type"],
        "string"
    );
    // Reading it again gives the same neutral request.
    let again = gemini::request_to_ir(written.to_string().as_bytes(), "gemini-2.5-pro").unwrap();
    assert_eq!(again, request);
}

#[test]
fn gemini_request_into_responses() {
    let request = gemini::request_to_ir(sample_request().to_string().as_bytes(), "gemini-2.5-pro").unwrap();
    let written = openai_responses::request_from_ir(&request).unwrap();
    assert_eq!(written["instructions"], "Be brief.\n\nUse tools.");
    assert_eq!(written["store"], false);
    assert_eq!(written["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(written["reasoning"], json!({"effort": "medium", "summary": "auto"}));
    assert_eq!(written["tool_choice"], json!({"type": "function", "name": "weather"}));
    assert_eq!(written["max_output_tokens"], 1000);
    assert!(written.get("stop").is_none(), "Responses has no stop sequences");
    assert_eq!(
        written["tools"][0],
        json!({"type": "function", "name": "weather", "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "strict": false})
    );
    let input = written["input"].as_array().unwrap();
    let kinds: Vec<&str> = input.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "message",
            "reasoning",
            "reasoning",
            "function_call",
            "function_call",
            "function_call_output",
            "function_call_output",
            "message",
            "message",
            "message"
        ]
    );
    assert_eq!(
        input[0]["content"][1],
        json!({"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"})
    );
    assert_eq!(input[0]["content"][2]["image_url"], "https://example.com/cat.jpg");
    assert_eq!(
        input[1],
        json!({"type": "reasoning", "summary": [{"type": "summary_text", "text": "Checking"}], "encrypted_content": "THINK"})
    );
    assert_eq!(
        input[3],
        json!({"type": "function_call", "call_id": "call_0", "name": "weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    assert_eq!(input[5], json!({"type": "function_call_output", "call_id": "call_1", "output": "12:00"}));
    assert_eq!(input[8]["role"], "assistant");
    assert_eq!(input[8]["content"][0]["type"], "output_text");

    // And back: the same conversation shape.
    let back = openai_responses::request_to_ir(written.to_string().as_bytes()).unwrap();
    assert_eq!(back.messages.len(), request.messages.len());
    for (a, b) in back.messages.iter().zip(&request.messages) {
        assert_eq!(a.role, b.role);
        assert_eq!(a.content, b.content);
    }
}

#[test]
fn unsigned_calls_get_the_bypass_signature() {
    let request = ChatRequest {
        model: "gemini-3-pro-preview".into(),
        system: vec![],
        messages: vec![
            Message { role: Role::User, content: vec![Part::Text("hi".into())] },
            Message {
                role: Role::Assistant,
                content: vec![
                    Part::Text("calling".into()),
                    Part::ToolCall { id: "toolu_1".into(), name: "a".into(), arguments: "".into() },
                    Part::ToolCall { id: "toolu_2".into(), name: "b".into(), arguments: r#"{"x":1}"#.into() },
                ],
            },
            Message {
                role: Role::Tool,
                content: vec![
                    Part::ToolResult {
                        call_id: "toolu_1".into(),
                        content: vec![Part::Text("boom".into())],
                        is_error: true,
                    },
                    Part::ToolResult {
                        call_id: "toolu_2".into(),
                        content: vec![
                            Part::Text("see".into()),
                            Part::Image(ImageSource::Base64 { media_type: "image/png".into(), data: "AA==".into() }),
                        ],
                        is_error: false,
                    },
                ],
            },
        ],
        tools: vec![ToolDefinition { name: "a".into(), description: None, parameters: json!({"type": "object"}) }],
        tool_choice: Some(ToolChoice::Required),
        max_output_tokens: None,
        temperature: None,
        top_p: None,
        stop: vec![],
        stream: true,
        reasoning: Some(Reasoning { effort: Some("high".into()), budget_tokens: None, include_thoughts: false }),
        user: Some("u1".into()),
    };
    let written = gemini::request_from_ir(&request).unwrap();
    let parts = &written["contents"][1]["parts"];
    assert_eq!(parts[1]["thoughtSignature"], gemini::SKIP_SIGNATURE);
    assert!(parts[2].get("thoughtSignature").is_none(), "only the first call of a turn needs one");
    assert_eq!(parts[1]["functionCall"], json!({"id": "toolu_1", "name": "a", "args": {}}));
    let results = &written["contents"][2]["parts"];
    assert_eq!(results[0]["functionResponse"], json!({"id": "toolu_1", "name": "a", "response": {"error": "boom"}}));
    assert_eq!(results[1]["functionResponse"]["response"], json!({"output": "see"}));
    assert_eq!(results[1]["functionResponse"]["parts"][0]["inlineData"]["mimeType"], "image/png");
    assert_eq!(written["toolConfig"]["functionCallingConfig"]["mode"], "ANY");
    assert_eq!(written["generationConfig"]["thinkingConfig"], json!({"thinkingLevel": "high"}));
    assert!(written.get("user").is_none() && written.get("model").is_none());

    // The error flag survives a Gemini round trip.
    let back = gemini::request_to_ir(written.to_string().as_bytes(), "gemini-3-pro-preview").unwrap();
    assert_eq!(
        back.messages[2].content[0],
        Part::ToolResult { call_id: "toolu_1".into(), content: vec![Part::Text("boom".into())], is_error: true }
    );

    // Effort on older models becomes a budget; unknown call ids are an error.
    let mut older = request.clone();
    older.model = "gemini-2.5-flash".into();
    assert_eq!(gemini::request_from_ir(&older).unwrap()["generationConfig"]["thinkingConfig"]["thinkingBudget"], 24576);
    let mut orphan = request.clone();
    orphan.messages.remove(1);
    match gemini::request_from_ir(&orphan) {
        Err(TranslateError::InvalidField { field, .. }) => assert_eq!(field, "messages[1].content[0].call_id"),
        other => panic!("{other:?}"),
    }
}

fn invalid_field(body: &str) -> String {
    match gemini::request_to_ir(body.as_bytes(), "gemini-2.5-pro") {
        Err(TranslateError::InvalidField { field, .. }) => field,
        other => panic!("expected InvalidField for {body}: {other:?}"),
    }
}

#[test]
fn invalid_requests_name_the_field() {
    assert_eq!(invalid_field("{not json"), "body");
    assert_eq!(invalid_field("[]"), "body");
    assert_eq!(invalid_field("{}"), "contents");
    assert_eq!(invalid_field(r#"{"contents":"hi"}"#), "contents");
    assert_eq!(invalid_field(r#"{"contents":[]}"#), "contents");
    assert_eq!(invalid_field(r#"{"contents":[5]}"#), "contents[0]");
    assert_eq!(invalid_field(r#"{"contents":[{"role":"system","parts":[{"text":"x"}]}]}"#), "contents[0].role");
    assert_eq!(invalid_field(r#"{"contents":[{"role":"user","parts":{"text":"x"}}]}"#), "contents[0].parts");
    assert_eq!(invalid_field(r#"{"contents":[{"role":"user","parts":[{"text":5}]}]}"#), "contents[0].parts[0]");
    assert_eq!(
        invalid_field(
            r#"{"contents":[{"role":"user","parts":[{"text":"a"}]},{"role":"user","parts":[{"functionResponse":{"response":{}}}]}]}"#
        ),
        "contents[1].parts[0].functionResponse.name"
    );
    assert_eq!(
        invalid_field(r#"{"contents":[{"role":"model","parts":[{"functionCall":{"args":{}}}]}]}"#),
        "contents[0].parts[0].functionCall.name"
    );
    assert_eq!(invalid_field(r#"{"contents":[{"parts":[{"text":"a"}]}],"tools":{}}"#), "tools");
    assert_eq!(
        invalid_field(
            r#"{"contents":[{"parts":[{"text":"a"}]}],"tools":[{"functionDeclarations":[{"description":"x"}]}]}"#
        ),
        "tools[0].functionDeclarations[0].name"
    );
    assert_eq!(
        invalid_field(r#"{"contents":[{"parts":[{"text":"a"}]}],"generationConfig":{"maxOutputTokens":"lots"}}"#),
        "generationConfig"
    );
    assert!(matches!(
        gemini::request_to_ir(
            br#"{"contents":[{"parts":[{"inlineData":{"mimeType":"application/pdf","data":"JVBER"}}]}]}"#,
            "m"
        ),
        Err(TranslateError::Unsupported(message)) if message.contains("contents[0].parts[0].inlineData")
    ));
    // snake_case field names (proto JSON) and a missing role are accepted.
    let ok = gemini::request_to_ir(
        br#"{"contents":[{"parts":[{"inline_data":{"mime_type":"image/gif","data":"R0"}}]}],"system_instruction":{"parts":[{"text":"s"}]}}"#,
        "m",
    )
    .unwrap();
    assert_eq!(ok.system, ["s"]);
    assert_eq!(ok.messages[0].role, Role::User);
}

// ------------------------------------------------------------------------------------------------
// Code Assist envelope and response writing

#[test]
fn code_assist_envelope() {
    let request = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let wrapped = gemini::wrap_code_assist_request("gemini-2.5-pro", "proj-1", request.clone());
    assert_eq!(wrapped, json!({"model": "gemini-2.5-pro", "project": "proj-1", "request": request}));
    assert_eq!(gemini::request_to_ir(wrapped.to_string().as_bytes(), "gemini-2.5-pro").unwrap().messages.len(), 1);

    let body: Value = serde_json::from_str(&fixture("google-text.json")).unwrap();
    let envelope = json!({"response": body.clone(), "traceId": "t"});
    assert_eq!(gemini::unwrap_code_assist_response(envelope.clone()), body);
    assert_eq!(gemini::unwrap_code_assist_response(body.clone()), body);
    assert_eq!(
        gemini::response_to_ir(envelope.to_string().as_bytes()).unwrap(),
        gemini::response_to_ir(body.to_string().as_bytes()).unwrap()
    );
    let wrapped_lines: Vec<String> = json_lines("google-tool-call.chunks.txt")
        .into_iter()
        .map(|chunk| json!({"response": chunk, "traceId": "t"}).to_string())
        .collect();
    assert_eq!(
        summarize(&decode_lines(&wrapped_lines)),
        summarize(&decode_lines(&lines("google-tool-call.chunks.txt")))
    );
}

#[test]
fn response_from_ir_round_trips() {
    let response = ChatResponse {
        id: "resp-1".into(),
        model: "gemini-2.5-pro".into(),
        content: vec![
            Part::Thinking { text: "plan".into(), signature: Some("S1".into()) },
            Part::Text("Calling.".into()),
            Part::Thinking { text: String::new(), signature: Some("S2".into()) },
            Part::ToolCall { id: "call_x".into(), name: "f".into(), arguments: r#"{"a":[1,2]}"#.into() },
        ],
        stop_reason: Some(StopReason::ToolUse),
        usage: usage(10, 30, 4, 20),
    };
    let written = gemini::response_from_ir(&response);
    let parts = written["candidates"][0]["content"]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0], json!({"text": "plan", "thought": true, "thoughtSignature": "S1"}));
    assert_eq!(parts[2]["thoughtSignature"], "S2");
    assert_eq!(
        written["usageMetadata"],
        json!({"promptTokenCount": 10, "candidatesTokenCount": 10, "cachedContentTokenCount": 4, "thoughtsTokenCount": 20, "totalTokenCount": 40})
    );
    assert_eq!(gemini::response_to_ir(written.to_string().as_bytes()).unwrap(), response);

    let mut capped = response.clone();
    capped.stop_reason = Some(StopReason::MaxTokens);
    assert_eq!(gemini::response_from_ir(&capped)["candidates"][0]["finishReason"], "MAX_TOKENS");
}

// ------------------------------------------------------------------------------------------------
// Totality: any input gives a value or an error, never a panic

#[test]
fn translators_never_panic_on_mangled_input() {
    for name in STREAMS {
        let lines = lines(name);
        for (n, line) in lines.iter().enumerate() {
            let value: Value = serde_json::from_str(line).unwrap();
            let mut variants: Vec<String> = mutations(&value, 60).iter().map(Value::to_string).collect();
            variants.extend(prefixes(line, 17).into_iter().map(str::to_owned));
            for variant in variants {
                let mut decoder = gemini::Decoder::new();
                for earlier in &lines[..n] {
                    let _ = decoder.decode(None, earlier);
                }
                let _ = decoder.decode(None, &variant);
                let _ = decoder.finish();
                let _ = gemini::response_to_ir(variant.as_bytes());
                // Decoded events of any mangled stream still re-encode.
                let mut decoder = gemini::Decoder::new();
                let mut events = Vec::new();
                for payload in lines[..n].iter().chain([&variant]) {
                    events.extend(decoder.decode(None, payload).unwrap_or_default());
                }
                events.extend(decoder.finish());
                let _ = encode_all(gemini::Encoder::new(), &events);
                let _ = encode_all(openai_responses::Encoder::new(), &events);
            }
        }
    }
    for name in
        ["google-text.json", "google-tool-call.json", "issue-19822-complete-usage.json", "google-429-retry-info.json"]
    {
        let value: Value = serde_json::from_str(&fixture(name)).unwrap();
        for variant in mutations(&value, 200) {
            let body = variant.to_string();
            if let Ok(response) = gemini::response_to_ir(body.as_bytes()) {
                let _ = gemini::response_from_ir(&response);
                let _ = openai_responses::response_from_ir(&response);
            }
            let _ = gemini::error_to_ir(500, body.as_bytes());
        }
    }
    let request = sample_request();
    for variant in mutations(&request, 400) {
        let body = variant.to_string();
        if let Ok(ir) = gemini::request_to_ir(body.as_bytes(), "gemini-2.5-pro") {
            let _ = gemini::request_from_ir(&ir);
            let _ = openai_responses::request_from_ir(&ir);
        }
    }
    for prefix in prefixes(&request.to_string(), 7) {
        assert!(gemini::request_to_ir(prefix.as_bytes(), "m").is_err());
    }
}
