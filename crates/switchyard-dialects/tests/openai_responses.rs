//! OpenAI Responses dialect: recorded upstream fixtures replayed field by field, re-encoding through both stream
//! encoders, requests, errors and truncation.

use std::collections::HashSet;

use serde_json::{Value, json};
use switchyard_dialects::ir::{
    ChatRequest, ChatResponse, ErrorInfo, ImageSource, Message, Part, Reasoning, Role, StopReason, StreamDecoder,
    StreamEvent, ToolChoice, ToolDefinition, TranslateError, Usage,
};
use switchyard_dialects::{gemini, openai_responses};

mod common;

use common::gemini_responses::{Summary, assert_reencodes, check_responses_frames, summarize};
use common::{decode_payloads, encode_all, fixture_lines, fixture_text, mutations, parse_sse, prefixes};

// ------------------------------------------------------------------------------------------------
// Fixture helpers

const DIR: &str = "openai-responses";

fn fixture(name: &str) -> String {
    fixture_text(DIR, name)
}

fn lines(name: &str) -> Vec<String> {
    fixture_lines(DIR, name)
}

/// Payloads with their SSE event name (the chunk's `type`, as the README says).
fn payloads(lines: &[String]) -> Vec<(Option<String>, String)> {
    lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["type"].as_str().map(str::to_owned), l.clone())
        })
        .collect()
}

/// The concatenated fixture split into its streams at each `response.created`.
fn split_streams(name: &str) -> Vec<Vec<String>> {
    let mut streams: Vec<Vec<String>> = Vec::new();
    for line in lines(name) {
        let v: Value = serde_json::from_str(&line).unwrap();
        if v["type"] == "response.created" || streams.is_empty() {
            streams.push(Vec::new());
        }
        streams.last_mut().unwrap().push(line);
    }
    streams
}

const STREAMS: &[&str] = &[
    "issue-20047-openai-responses.chunks.txt",
    "issue-19493-gpt-5.1-tool-call.chunks.txt",
    "openai-reasoning-encrypted-content.1.chunks.txt",
    "openai-web-search-tool.1.chunks.txt",
    "openai-error.1.chunks.txt",
    "openai-response-failed-only.1.chunks.txt",
    "openai-error-null-code.chunks.txt",
];

/// Every single stream of the fixtures (the concatenated one split).
fn all_streams() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for name in STREAMS {
        for (n, stream) in split_streams(name).into_iter().enumerate() {
            out.push((format!("{name}#{n}"), stream));
        }
    }
    out
}

fn decode_lines(lines: &[String]) -> Vec<StreamEvent> {
    decode_payloads(openai_responses::Decoder::new(), &payloads(lines))
}

fn full_usage(input: i64, output: i64, cached: i64, creation: i64, reasoning: i64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cached_input_tokens: cached,
        cache_creation_tokens: creation,
        reasoning_tokens: reasoning,
    }
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap()
}

/// The values a stream's own `.done` events and final response state, to compare the decoded deltas with.
struct Expected {
    text: String,
    thinking: String,
    signatures: Vec<String>,
    calls: Vec<(String, String, Value)>,
    usage: Option<Usage>,
}

fn expected_from_done_events(stream: &[String]) -> Expected {
    let mut expected =
        Expected { text: String::new(), thinking: String::new(), signatures: vec![], calls: vec![], usage: None };
    for line in stream {
        let v = parse(line);
        match v["type"].as_str().unwrap() {
            "response.output_text.done" => expected.text.push_str(v["text"].as_str().unwrap()),
            "response.output_item.done" => {
                let item = &v["item"];
                match item["type"].as_str().unwrap() {
                    "reasoning" => {
                        let summary: Vec<&str> =
                            item["summary"].as_array().unwrap().iter().map(|p| p["text"].as_str().unwrap()).collect();
                        expected.thinking.push_str(&summary.join("\n\n"));
                        if let Some(sig) = item["encrypted_content"].as_str() {
                            expected.signatures.push(sig.to_owned());
                        }
                    }
                    "function_call" => expected.calls.push((
                        item["call_id"].as_str().unwrap().to_owned(),
                        item["name"].as_str().unwrap().to_owned(),
                        serde_json::from_str(item["arguments"].as_str().unwrap()).unwrap(),
                    )),
                    _ => {}
                }
            }
            "response.completed" => {
                let u = &v["response"]["usage"];
                expected.usage = Some(full_usage(
                    u["input_tokens"].as_i64().unwrap(),
                    u["output_tokens"].as_i64().unwrap(),
                    u["input_tokens_details"]["cached_tokens"].as_i64().unwrap_or(0),
                    u["input_tokens_details"]["cache_write_tokens"].as_i64().unwrap_or(0),
                    u["output_tokens_details"]["reasoning_tokens"].as_i64().unwrap_or(0),
                ));
            }
            _ => {}
        }
    }
    expected
}

// ------------------------------------------------------------------------------------------------
// Stream fixtures

#[test]
fn every_successful_stream_matches_its_done_events() {
    let mut checked = 0;
    for (name, stream) in all_streams() {
        let events = decode_lines(&stream);
        let s = summarize(&events);
        if s.error.is_some() {
            continue;
        }
        checked += 1;
        let expected = expected_from_done_events(&stream);
        assert_eq!(s.text, expected.text, "{name}: text");
        assert_eq!(s.thinking, expected.thinking, "{name}: thinking");
        assert_eq!(s.signatures, expected.signatures, "{name}: signatures");
        assert_eq!(s.calls, expected.calls, "{name}: calls");
        assert_eq!(s.usage, expected.usage, "{name}: usage");
        let created = parse(&stream[0]);
        assert_eq!(
            s.start,
            Some((
                created["response"]["id"].as_str().unwrap().to_owned(),
                created["response"]["model"].as_str().unwrap().to_owned()
            )),
            "{name}: start"
        );
        let stop = if expected.calls.is_empty() { StopReason::EndTurn } else { StopReason::ToolUse };
        assert_eq!(s.stop, Some(stop), "{name}: stop");
        assert!(s.done);
        assert_reencodes(&events);
    }
    assert_eq!(checked, 7, "4 + 3 successful streams");
}

#[test]
fn text_stream_and_body() {
    let s = summarize(&decode_lines(&lines("issue-20047-openai-responses.chunks.txt")));
    assert_eq!(s.text, "OK");
    assert_eq!(s.usage, Some(full_usage(12, 2, 0, 0, 0)));
    assert_eq!(s.start, Some(("resp_sanitized_streaming".into(), "gpt-4o-mini-2024-07-18".into())));

    let response = openai_responses::response_to_ir(fixture("issue-20047-openai-responses.json").as_bytes()).unwrap();
    assert_eq!(response.id, "resp_sanitized_normal");
    assert_eq!(response.model, "gpt-4o-mini-2024-07-18");
    assert_eq!(response.content, vec![Part::Text("OK".into())]);
    assert_eq!(response.stop_reason, Some(StopReason::EndTurn));
    assert_eq!(response.usage, full_usage(12, 2, 0, 0, 0));
}

#[test]
fn tool_call_stream() {
    let stream = lines("issue-19493-gpt-5.1-tool-call.chunks.txt");
    let s = summarize(&decode_lines(&stream));
    let done = stream.iter().map(|l| parse(l)).find(|v| v["type"] == "response.function_call_arguments.done").unwrap();
    assert_eq!(
        s.calls,
        vec![(
            "call_2FQdm3Br7Qb35YUBSkDR7kue".into(),
            "get_weather".into(),
            serde_json::from_str::<Value>(done["arguments"].as_str().unwrap()).unwrap()
        )]
    );
    assert_eq!(s.calls[0].2, json!({"city": "Beijing"}));
    assert_eq!(s.stop, Some(StopReason::ToolUse));
    assert_eq!(s.usage, Some(full_usage(45, 25, 0, 0, 0)));
}

#[test]
fn reasoning_then_call_body() {
    let response =
        openai_responses::response_to_ir(fixture("issue-7082-o3-optional-tool-parameters.json").as_bytes()).unwrap();
    assert_eq!(response.model, "o3-2025-04-16");
    assert_eq!(
        response.content,
        vec![
            Part::Thinking { text: String::new(), signature: Some("[redacted]".into()) },
            Part::ToolCall {
                id: "call_2mhz5FtwkZnzXQkTOMtYZpZH".into(),
                name: "semantic_scholar_search".into(),
                arguments: r#"{"query":"machine learning","limit":10,"offset":0,"year":0}"#.into(),
            },
        ]
    );
    assert_eq!(response.stop_reason, Some(StopReason::ToolUse));
    assert_eq!(response.usage, full_usage(114, 88, 0, 0, 0));
}

#[test]
fn concatenated_reasoning_streams() {
    let streams = split_streams("openai-reasoning-encrypted-content.1.chunks.txt");
    assert_eq!(streams.len(), 4);
    let summaries: Vec<Summary> = streams.iter().map(|s| summarize(&decode_lines(s))).collect();
    let first = &summaries[0];
    assert_eq!(
        first.thinking,
        "**Calculating step-by-step using calculator**\n\nI'll compute 12 plus 7, then multiply the result by 3, and finally multiply that by 10, reporting the final product."
    );
    assert_eq!(first.signatures.len(), 1);
    assert!(first.signatures[0].starts_with("gAAAAABpPDIVOKrs"), "the signature is the item's final encrypted_content");
    assert_eq!(first.calls[0].1, "calculator");
    assert_eq!(first.calls[0].2, json!({"a": 12, "b": 7, "op": "add"}));
    let stops: Vec<Option<StopReason>> = summaries.iter().map(|s| s.stop).collect();
    assert_eq!(
        stops,
        [Some(StopReason::ToolUse), Some(StopReason::ToolUse), Some(StopReason::ToolUse), Some(StopReason::EndTurn)]
    );
    assert_eq!(summaries[2].calls[0].2, json!({"a": 57, "b": 10, "op": "multiply"}));
    assert_eq!(summaries[3].text, "The final result is **570**.");
    assert_eq!(summaries[3].usage, Some(full_usage(299, 12, 0, 0, 0)));
    // Every stream has its own id.
    let ids: HashSet<String> = summaries.iter().map(|s| s.start.clone().unwrap().0).collect();
    assert_eq!(ids.len(), 4);
}

#[test]
fn web_search_stream_and_body() {
    let s = summarize(&decode_lines(&lines("openai-web-search-tool.1.chunks.txt")));
    assert!(s.text.starts_with("Here\u{2019}s what\u{2019}s notable in Berlin today"));
    assert!(s.calls.is_empty(), "hosted web_search calls have no neutral form");
    assert_eq!((s.thinking.as_str(), s.signatures.len()), ("", 0), "empty reasoning items are skipped");
    assert_eq!(s.stop, Some(StopReason::EndTurn));
    assert_eq!(s.usage, Some(full_usage(60093, 4080, 34560, 0, 3648)));

    let response = openai_responses::response_to_ir(fixture("openai-web-search-tool.1.json").as_bytes()).unwrap();
    assert_eq!(response.content.len(), 1);
    let Part::Text(text) = &response.content[0] else { panic!() };
    assert!(text.starts_with("Last week in San Francisco"));
    assert_eq!(response.usage, full_usage(327, 770, 0, 0, 0));
}

#[test]
fn error_streams() {
    let message = "You exceeded your current quota, please check your plan and billing details. For more information on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.";
    let events = decode_lines(&lines("openai-error.1.chunks.txt"));
    let s = summarize(&events);
    assert!(s.start.is_some());
    assert_eq!(s.error, Some(ErrorInfo { status: 429, kind: "rate_limit".into(), message: message.into() }));
    assert_eq!(events.iter().filter(|e| matches!(e, StreamEvent::Error(_))).count(), 1, "error + failed = one Error");
    assert_reencodes(&events);

    let events = decode_lines(&lines("openai-response-failed-only.1.chunks.txt"));
    let s = summarize(&events);
    assert_eq!(
        s.error,
        Some(ErrorInfo {
            status: 429,
            kind: "rate_limit".into(),
            message: "Request too large for gpt-4o-mini in organization on tokens per min (TPM): Limit 30000, Requested 35364.".into()
        })
    );
    assert_reencodes(&events);

    let events = decode_lines(&lines("openai-error-null-code.chunks.txt"));
    let s = summarize(&events);
    assert_eq!(s.start, None);
    assert_eq!(
        s.error,
        Some(ErrorInfo {
            status: 500,
            kind: "server_error".into(),
            message: "An error occurred while processing the request.".into()
        })
    );
    assert_reencodes(&events);
}

#[test]
fn error_bodies() {
    let body = fixture("openai-error.1.json");
    let info = openai_responses::error_to_ir(429, body.as_bytes());
    assert_eq!((info.status, info.kind.as_str()), (429, "rate_limit"));
    assert!(info.message.starts_with("You exceeded your current quota"));
    assert_eq!(openai_responses::error_to_ir(0, body.as_bytes()).status, 429, "status from the code");

    let null_code = br#"{"error":{"message":"boom","type":"server_error","param":null,"code":null}}"#;
    assert_eq!(
        openai_responses::error_to_ir(500, null_code),
        ErrorInfo { status: 500, kind: "server_error".into(), message: "boom".into() }
    );
    let auth = br#"{"error":{"message":"Incorrect API key","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;
    assert_eq!(openai_responses::error_to_ir(401, auth).kind, "authentication");
    let not_found = br#"{"error":{"message":"no model","type":"invalid_request_error","param":"model","code":null}}"#;
    assert_eq!(openai_responses::error_to_ir(404, not_found).kind, "not_found");
    let cpa = openai_responses::error_to_ir(401, br#"{"error":"Invalid API key"}"#);
    assert_eq!((cpa.kind.as_str(), cpa.message.as_str()), ("authentication", "Invalid API key"));
    let html = openai_responses::error_to_ir(502, b"<html>Bad gateway</html>");
    assert_eq!((html.status, html.kind.as_str()), (502, "server_error"));
    assert!(html.message.contains("Bad gateway"));
    assert_eq!(openai_responses::error_to_ir(529, b"").kind, "overloaded");

    let neutral = ErrorInfo { status: 429, kind: "rate_limit".into(), message: "slow down".into() };
    assert_eq!(
        openai_responses::error_from_ir(&neutral),
        json!({"error": {"message": "slow down", "type": "rate_limit_error", "param": null, "code": "rate_limit_exceeded"}})
    );
    assert_eq!(
        openai_responses::error_to_ir(429, openai_responses::error_from_ir(&neutral).to_string().as_bytes()),
        neutral
    );

    // The standalone mid-stream frame: `error` then `response.failed`, decoded as one Error.
    let frame = openai_responses::stream_error_frame(&neutral);
    let events = parse_sse(frame.as_bytes(), 3);
    let names: Vec<Option<&str>> = events.iter().map(|(e, _)| e.as_deref()).collect();
    assert_eq!(names, [Some("error"), Some("response.failed")]);
    let error_event = parse(&events[0].1);
    assert_eq!(error_event["message"], "slow down");
    assert_eq!(error_event["error"]["code"], "rate_limit_exceeded");
    let failed = parse(&events[1].1);
    assert_eq!(failed["response"]["status"], "failed");
    assert_eq!(failed["response"]["error"]["message"], "slow down");
    let s = summarize(&decode_payloads(openai_responses::Decoder::new(), &events));
    assert_eq!(s.error, Some(neutral));
}

#[test]
fn truncated_streams_end_in_an_error() {
    for (name, stream) in all_streams() {
        let terminal = stream
            .iter()
            .position(|l| {
                let kind = parse(l)["type"].as_str().unwrap().to_owned();
                matches!(kind.as_str(), "response.completed" | "response.failed" | "response.incomplete" | "error")
            })
            .unwrap();
        for cut in 0..=terminal {
            let events = decode_lines(&stream[..cut]);
            let s = summarize(&events);
            let error = s.error.unwrap_or_else(|| panic!("{name} cut at {cut}: no error"));
            assert_eq!((error.status, error.kind.as_str()), (502, "server_error"), "{name} cut at {cut}");
            assert!(!s.done && s.stop.is_none());
        }
    }
    let mut decoder = openai_responses::Decoder::new();
    assert!(matches!(decoder.decode(Some("response.created"), "{oops"), Err(TranslateError::Upstream(_))));
    assert!(matches!(decoder.finish().as_slice(), [StreamEvent::Error(_)]));
}

#[test]
fn fixtures_through_sse_in_odd_chunks() {
    for (name, stream) in all_streams() {
        let direct = summarize(&decode_lines(&stream));
        let wire: String = payloads(&stream)
            .iter()
            .map(|(event, data)| format!("event: {}\ndata: {data}\n\n", event.as_deref().unwrap()))
            .collect();
        for size in [1, 9, 250] {
            let events = decode_payloads(openai_responses::Decoder::new(), &parse_sse(wire.as_bytes(), size));
            assert_eq!(summarize(&events), direct, "{name} in {size}-byte chunks");
        }
    }
}

#[test]
fn done_only_and_incomplete_streams() {
    // An upstream that sends no deltas, only `.done` events and whole items.
    let stream = [
        json!({"type":"response.created","response":{"id":"resp_1","model":"m","output":[]}}),
        json!({"type":"response.output_item.added","output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[]}}),
        json!({"type":"response.reasoning_summary_part.added","item_id":"rs_1","output_index":0,"summary_index":0,"part":{"type":"summary_text","text":""}}),
        json!({"type":"response.reasoning_summary_text.done","item_id":"rs_1","output_index":0,"summary_index":0,"text":"first"}),
        json!({"type":"response.reasoning_summary_part.added","item_id":"rs_1","output_index":0,"summary_index":1,"part":{"type":"summary_text","text":""}}),
        json!({"type":"response.reasoning_summary_text.delta","item_id":"rs_1","output_index":0,"summary_index":1,"delta":"second"}),
        json!({"type":"response.output_item.done","output_index":0,"item":{"id":"rs_1","type":"reasoning","summary":[],"encrypted_content":"ENC"}}),
        json!({"type":"response.output_item.added","output_index":1,"item":{"id":"msg_1","type":"message","role":"assistant","content":[]}}),
        json!({"type":"response.output_text.done","item_id":"msg_1","output_index":1,"content_index":0,"text":"Hello"}),
        json!({"type":"response.output_item.done","output_index":2,"item":{"id":"fc_1","type":"function_call","call_id":"c1","name":"f","arguments":"{\"x\":1}"}}),
        json!({"type":"response.incomplete","response":{"id":"resp_1","status":"incomplete","incomplete_details":{"reason":"max_output_tokens"},
            "usage":{"input_tokens":5,"output_tokens":7,"output_tokens_details":{"reasoning_tokens":3}}}}),
    ];
    let lines: Vec<String> = stream.iter().map(Value::to_string).collect();
    let events = decode_lines(&lines);
    let s = summarize(&events);
    assert_eq!(s.thinking, "first\n\nsecond");
    assert_eq!(s.signatures, ["ENC"]);
    assert_eq!(s.text, "Hello");
    assert_eq!(s.calls, vec![("c1".into(), "f".into(), json!({"x": 1}))]);
    assert_eq!(s.stop, Some(StopReason::MaxTokens));
    assert_eq!(s.usage, Some(full_usage(5, 7, 0, 0, 3)));
    assert_reencodes(&events);

    // Content filter, and the encoder's terminal events for each stop reason.
    let filtered =
        [json!({"type":"response.incomplete","response":{"id":"r","incomplete_details":{"reason":"content_filter"}}})];
    let s = summarize(&decode_lines(&[filtered[0].to_string()]));
    assert_eq!(s.stop, Some(StopReason::ContentFilter));
    for (stop, terminal, reason) in [
        (StopReason::MaxTokens, "response.incomplete", Some("max_output_tokens")),
        (StopReason::ContentFilter, "response.incomplete", Some("content_filter")),
        (StopReason::EndTurn, "response.completed", None),
        (StopReason::Error, "response.failed", None),
    ] {
        let events = [
            StreamEvent::Start { id: "resp_x".into(), model: "m".into() },
            StreamEvent::TextStart { index: 0 },
            StreamEvent::TextDelta { index: 0, text: "hi".into() },
            StreamEvent::BlockStop { index: 0 },
            StreamEvent::Finish { stop_reason: stop },
            StreamEvent::Done,
        ];
        let frames = encode_all(openai_responses::Encoder::new(), &events);
        let parsed = check_responses_frames(&frames);
        let last = parse(&parsed.last().unwrap().1);
        assert_eq!(last["type"], terminal);
        assert_eq!(last["response"]["incomplete_details"]["reason"].as_str(), reason);
        let s = summarize(&decode_payloads(openai_responses::Decoder::new(), &parsed));
        if stop == StopReason::Error {
            assert!(s.error.is_some());
        } else {
            assert_eq!(s.stop, Some(stop));
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Requests

fn sample_request() -> Value {
    json!({
        "model": "gpt-5",
        "instructions": "You are terse.",
        "input": [
            {"role": "developer", "content": "Prefer metric units."},
            {"type": "message", "role": "user", "content": [
                {"type": "input_text", "text": "Weather in Paris? See photo."},
                {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "high"},
                {"type": "input_image", "image_url": "https://example.com/sky.png"}
            ]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Need weather."},
                {"type": "summary_text", "text": "Call the tool."}], "encrypted_content": "gAAAA-enc"},
            {"type": "function_call", "id": "fc_1", "call_id": "call_w", "name": "weather", "arguments": "{\"city\":\"Paris\"}"},
            {"type": "function_call_output", "call_id": "call_w", "output": "{\"temp\":21}"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "21°C and sunny.", "annotations": []}]},
            {"type": "web_search_call", "id": "ws_1", "status": "completed"},
            {"role": "user", "content": "And London?"}
        ],
        "tools": [
            {"type": "function", "name": "weather", "description": "Weather by city", "strict": true,
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}},
            {"type": "web_search"}
        ],
        "tool_choice": "required",
        "reasoning": {"effort": "high", "summary": "auto"},
        "max_output_tokens": 2048,
        "temperature": 0.2,
        "top_p": 0.8,
        "stream": true,
        "store": false,
        "include": ["reasoning.encrypted_content"],
        "user": "user-7"
    })
}

#[test]
fn request_to_ir_reads_every_field() {
    let request = openai_responses::request_to_ir(sample_request().to_string().as_bytes()).unwrap();
    assert_eq!(request.model, "gpt-5");
    assert_eq!(request.system, ["You are terse.", "Prefer metric units."]);
    assert_eq!(request.tools.len(), 1, "hosted tools are dropped");
    assert_eq!(request.tools[0].name, "weather");
    assert_eq!(request.tool_choice, Some(ToolChoice::Required));
    assert_eq!(
        request.reasoning,
        Some(Reasoning { effort: Some("high".into()), budget_tokens: None, include_thoughts: true })
    );
    assert_eq!((request.max_output_tokens, request.temperature, request.top_p), (Some(2048), Some(0.2), Some(0.8)));
    assert!(request.stream);
    assert_eq!(request.user.as_deref(), Some("user-7"));
    assert_eq!(
        request.messages,
        vec![
            Message {
                role: Role::User,
                content: vec![
                    Part::Text("Weather in Paris? See photo.".into()),
                    Part::Image(ImageSource::Base64 { media_type: "image/jpeg".into(), data: "/9j/4AAQ".into() }),
                    Part::Image(ImageSource::Url("https://example.com/sky.png".into())),
                ],
            },
            Message {
                role: Role::Assistant,
                content: vec![
                    Part::Thinking {
                        text: "Need weather.\n\nCall the tool.".into(),
                        signature: Some("gAAAA-enc".into())
                    },
                    Part::ToolCall {
                        id: "call_w".into(),
                        name: "weather".into(),
                        arguments: r#"{"city":"Paris"}"#.into()
                    },
                ],
            },
            Message {
                role: Role::Tool,
                content: vec![Part::ToolResult {
                    call_id: "call_w".into(),
                    content: vec![Part::Text(r#"{"temp":21}"#.into())],
                    is_error: false
                }],
            },
            Message { role: Role::Assistant, content: vec![Part::Text("21°C and sunny.".into())] },
            Message { role: Role::User, content: vec![Part::Text("And London?".into())] },
        ]
    );
}

#[test]
fn responses_request_round_trips_through_ir() {
    let request = openai_responses::request_to_ir(sample_request().to_string().as_bytes()).unwrap();
    let written = openai_responses::request_from_ir(&request).unwrap();
    assert_eq!(written["instructions"], "You are terse.\n\nPrefer metric units.");
    assert_eq!((written["store"].clone(), written["stream"].clone()), (json!(false), json!(true)));
    assert_eq!(written["include"], json!(["reasoning.encrypted_content"]));
    assert_eq!(written["reasoning"], json!({"effort": "high", "summary": "auto"}));
    assert_eq!(written["tools"][0]["strict"], false);
    assert_eq!(written["tool_choice"], "required");
    assert_eq!(written["user"], "user-7");
    let input = written["input"].as_array().unwrap();
    assert_eq!(
        input[1],
        json!({"type": "reasoning", "summary": [{"type": "summary_text", "text": "Need weather.\n\nCall the tool."}], "encrypted_content": "gAAAA-enc"})
    );
    assert_eq!(
        input[2],
        json!({"type": "function_call", "call_id": "call_w", "name": "weather", "arguments": "{\"city\":\"Paris\"}"})
    );
    assert_eq!(input[3], json!({"type": "function_call_output", "call_id": "call_w", "output": "{\"temp\":21}"}));
    assert_eq!(input[0]["content"][1]["image_url"], "data:image/jpeg;base64,/9j/4AAQ");
    let again = openai_responses::request_to_ir(written.to_string().as_bytes()).unwrap();
    let mut expected = request.clone();
    expected.system = vec!["You are terse.\n\nPrefer metric units.".into()];
    assert_eq!(again, expected);
}

#[test]
fn responses_request_into_gemini() {
    let mut request = openai_responses::request_to_ir(sample_request().to_string().as_bytes()).unwrap();
    request.model = "gemini-3-pro-preview".into();
    let written = gemini::request_from_ir(&request).unwrap();
    assert_eq!(
        written["systemInstruction"]["parts"],
        json!([{"text": "You are terse."}, {"text": "Prefer metric units."}])
    );
    let contents = written["contents"].as_array().unwrap();
    let roles: Vec<&str> = contents.iter().map(|c| c["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "model", "user", "model", "user"]);
    assert_eq!(contents[0]["parts"][1], json!({"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQ"}}));
    assert_eq!(
        contents[0]["parts"][2],
        json!({"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/sky.png"}})
    );
    assert_eq!(
        contents[1]["parts"][0],
        json!({"text": "Need weather.\n\nCall the tool.", "thought": true, "thoughtSignature": "gAAAA-enc"})
    );
    assert_eq!(
        contents[1]["parts"][1],
        json!({"functionCall": {"id": "call_w", "name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": gemini::SKIP_SIGNATURE})
    );
    assert_eq!(
        contents[2]["parts"][0],
        json!({"functionResponse": {"id": "call_w", "name": "weather", "response": {"temp": 21}}})
    );
    assert_eq!(written["toolConfig"], json!({"functionCallingConfig": {"mode": "ANY"}}));
    assert_eq!(
        written["generationConfig"]["thinkingConfig"],
        json!({"includeThoughts": true, "thinkingLevel": "high"})
    );
    assert_eq!(written["generationConfig"]["maxOutputTokens"], 2048);
    assert_eq!(written["tools"][0]["functionDeclarations"][0]["parametersJsonSchema"]["required"], json!(["city"]));

    // Back through Gemini: same turns, same call ids.
    let back = gemini::request_to_ir(written.to_string().as_bytes(), "gemini-3-pro-preview").unwrap();
    let roles: Vec<Role> = back.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::Tool, Role::Assistant, Role::User]);
    assert!(back.messages[1].content.contains(&Part::ToolCall {
        id: "call_w".into(),
        name: "weather".into(),
        arguments: r#"{"city":"Paris"}"#.into()
    }));
    assert_eq!(back.messages[2].content, request.messages[2].content);
    assert_eq!(back.tool_choice, Some(ToolChoice::Required));
}

#[test]
fn request_from_ir_details() {
    let request = ChatRequest {
        model: "gpt-5-mini".into(),
        system: vec![],
        messages: vec![
            Message { role: Role::User, content: vec![Part::Text("hi".into())] },
            Message {
                role: Role::Assistant,
                content: vec![
                    Part::Thinking { text: "unsigned".into(), signature: None },
                    Part::Text("one".into()),
                    Part::Text("two".into()),
                    Part::ToolCall { id: "t1".into(), name: "f".into(), arguments: String::new() },
                ],
            },
            Message {
                role: Role::User,
                content: vec![
                    Part::ToolResult {
                        call_id: "t1".into(),
                        content: vec![
                            Part::Text("pic:".into()),
                            Part::Image(ImageSource::Url("https://x/y.png".into())),
                        ],
                        is_error: true,
                    },
                    Part::Text("next".into()),
                ],
            },
        ],
        tools: vec![ToolDefinition { name: "f".into(), description: None, parameters: Value::Null }],
        tool_choice: Some(ToolChoice::Tool("f".into())),
        max_output_tokens: Some(10),
        temperature: None,
        top_p: None,
        stop: vec!["STOP".into()],
        stream: false,
        reasoning: Some(Reasoning { effort: None, budget_tokens: Some(0), include_thoughts: false }),
        user: None,
    };
    let written = openai_responses::request_from_ir(&request).unwrap();
    let input = written["input"].as_array().unwrap();
    let kinds: Vec<&str> = input.iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["message", "message", "function_call", "function_call_output", "message"],
        "unsigned thinking is not sent"
    );
    assert_eq!(input[1]["content"].as_array().unwrap().len(), 2);
    assert_eq!(input[2]["arguments"], "{}");
    assert_eq!(
        input[3]["output"],
        json!([{"type": "input_text", "text": "pic:"}, {"type": "input_image", "image_url": "https://x/y.png", "detail": "auto"}])
    );
    assert_eq!(written["tools"][0]["parameters"], json!({"type": "object", "properties": {}}));
    assert_eq!(written["tool_choice"], json!({"type": "function", "name": "f"}));
    assert_eq!(written["reasoning"], json!({"effort": "none"}));
    assert!(written.get("include").is_none(), "no encrypted reasoning when reasoning is off");
    assert!(written.get("instructions").is_none() && written.get("stop").is_none());
}

fn invalid_field(body: &str) -> String {
    match openai_responses::request_to_ir(body.as_bytes()) {
        Err(TranslateError::InvalidField { field, .. }) => field,
        other => panic!("expected InvalidField for {body}: {other:?}"),
    }
}

#[test]
fn invalid_requests_name_the_field() {
    assert_eq!(invalid_field("not json"), "body");
    assert_eq!(invalid_field("\"text\""), "body");
    assert_eq!(invalid_field(r#"{"input":"hi"}"#), "model");
    assert_eq!(invalid_field(r#"{"model":"m"}"#), "input");
    assert_eq!(invalid_field(r#"{"model":"m","input":5}"#), "input");
    assert_eq!(invalid_field(r#"{"model":"m","input":[7]}"#), "input[0]");
    assert_eq!(invalid_field(r#"{"model":"m","input":[{"role":"robot","content":"x"}]}"#), "input[0].role");
    assert_eq!(invalid_field(r#"{"model":"m","input":[{"content":"x"}]}"#), "input[0].type");
    assert_eq!(
        invalid_field(
            r#"{"model":"m","input":[{"role":"user","content":"x"},{"type":"function_call","name":"f","arguments":"{}"}]}"#
        ),
        "input[1].call_id"
    );
    assert_eq!(
        invalid_field(r#"{"model":"m","input":[{"type":"function_call_output","output":"x"}]}"#),
        "input[0].call_id"
    );
    assert_eq!(
        invalid_field(r#"{"model":"m","input":[{"role":"user","content":[{"type":"input_video","url":"x"}]}]}"#),
        "input[0].content[0].type"
    );
    assert_eq!(invalid_field(r#"{"model":"m","input":[{"role":"user","content":{"a":1}}]}"#), "input[0].content");
    assert_eq!(invalid_field(r#"{"model":"m","input":"x","max_output_tokens":"many"}"#), "max_output_tokens");
    assert_eq!(invalid_field(r#"{"model":"m","input":"x","tools":[{"type":"function"}]}"#), "tools[0].name");
    assert_eq!(invalid_field(r#"{"model":"m","input":"x","tool_choice":"sometimes"}"#), "tool_choice");
    assert!(matches!(
        openai_responses::request_to_ir(br#"{"model":"m","input":"x","previous_response_id":"resp_1"}"#),
        Err(TranslateError::Unsupported(_))
    ));
    assert!(matches!(
        openai_responses::request_to_ir(br#"{"model":"m","input":[{"type":"item_reference","id":"msg_1"}]}"#),
        Err(TranslateError::Unsupported(_))
    ));
    assert!(matches!(
        openai_responses::request_to_ir(
            br#"{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}"#
        ),
        Err(TranslateError::Unsupported(_))
    ));
    let simple = openai_responses::request_to_ir(br#"{"model":"m","input":"hello"}"#).unwrap();
    assert_eq!(simple.messages, vec![Message { role: Role::User, content: vec![Part::Text("hello".into())] }]);
}

// ------------------------------------------------------------------------------------------------
// Response bodies

#[test]
fn response_from_ir_round_trips() {
    let response = ChatResponse {
        id: "resp_abc".into(),
        model: "gpt-5".into(),
        content: vec![
            Part::Thinking { text: "plan".into(), signature: Some("ENC".into()) },
            Part::Text("Hello".into()),
            Part::Text(" world".into()),
            Part::ToolCall { id: "call_1".into(), name: "f".into(), arguments: r#"{"q":"x"}"#.into() },
        ],
        stop_reason: Some(StopReason::ToolUse),
        usage: full_usage(100, 50, 20, 5, 30),
    };
    let written = openai_responses::response_from_ir(&response);
    assert_eq!(written["object"], "response");
    assert_eq!(written["status"], "completed");
    let kinds: Vec<&str> = written["output"].as_array().unwrap().iter().map(|i| i["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["reasoning", "message", "function_call"]);
    assert_eq!(written["output"][1]["content"].as_array().unwrap().len(), 2);
    assert_eq!(
        written["usage"],
        json!({"input_tokens": 100, "input_tokens_details": {"cached_tokens": 20, "cache_write_tokens": 5},
               "output_tokens": 50, "output_tokens_details": {"reasoning_tokens": 30}, "total_tokens": 150})
    );
    let ids: HashSet<&str> = written["output"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(openai_responses::response_to_ir(written.to_string().as_bytes()).unwrap(), response);

    let mut capped = response.clone();
    capped.stop_reason = Some(StopReason::MaxTokens);
    let written = openai_responses::response_from_ir(&capped);
    assert_eq!(
        (written["status"].as_str(), written["incomplete_details"]["reason"].as_str()),
        (Some("incomplete"), Some("max_output_tokens"))
    );
    assert_eq!(
        openai_responses::response_to_ir(written.to_string().as_bytes()).unwrap().stop_reason,
        Some(StopReason::MaxTokens)
    );

    assert!(matches!(
        openai_responses::response_to_ir(fixture("openai-error.1.json").as_bytes()),
        Err(TranslateError::Upstream(_))
    ));
}

// ------------------------------------------------------------------------------------------------
// Totality: any input gives a value or an error, never a panic

#[test]
fn translators_never_panic_on_mangled_input() {
    for (_, stream) in all_streams() {
        // Long streams: mutate the structural events, not every delta.
        for (n, line) in stream.iter().enumerate().filter(|(n, l)| *n < 12 || !l.contains(".delta")) {
            let value: Value = serde_json::from_str(line).unwrap();
            let mut variants: Vec<String> = mutations(&value, 40).iter().map(Value::to_string).collect();
            variants.extend(prefixes(line, 29).into_iter().map(str::to_owned));
            for variant in variants {
                let mut decoder = openai_responses::Decoder::new();
                let mut events = Vec::new();
                for (event, data) in payloads(&stream[..n]) {
                    events.extend(decoder.decode(event.as_deref(), &data).unwrap_or_default());
                }
                events.extend(decoder.decode(None, &variant).unwrap_or_default());
                events.extend(decoder.finish());
                let _ = encode_all(gemini::Encoder::new(), &events);
                let _ = encode_all(openai_responses::Encoder::new(), &events);
            }
        }
    }
    for name in
        ["issue-20047-openai-responses.json", "issue-7082-o3-optional-tool-parameters.json", "openai-error.1.json"]
    {
        let value: Value = serde_json::from_str(&fixture(name)).unwrap();
        for variant in mutations(&value, 200) {
            let body = variant.to_string();
            if let Ok(response) = openai_responses::response_to_ir(body.as_bytes()) {
                let _ = openai_responses::response_from_ir(&response);
                let _ = gemini::response_from_ir(&response);
            }
            let _ = openai_responses::error_to_ir(400, body.as_bytes());
        }
    }
    let request = sample_request();
    for variant in mutations(&request, 400) {
        let body = variant.to_string();
        if let Ok(ir) = openai_responses::request_to_ir(body.as_bytes()) {
            let _ = openai_responses::request_from_ir(&ir);
            let _ = gemini::request_from_ir(&ir);
        }
    }
    for prefix in prefixes(&request.to_string(), 7) {
        assert!(openai_responses::request_to_ir(prefix.as_bytes()).is_err());
    }
}
