//! Token usage read straight from answers and single stream events (`usage`), checked against
//! every recorded fixture of every dialect: the counts must be the ones the full translators
//! read, and a few are checked by value (cache reads and writes, reasoning) on edited copies.

mod common;

use common::{fixture_bytes, fixture_lines, fixture_names, fixture_text, parse_sse, usage};
use serde_json::{Value, json};
use switchyard_dialects::Dialect;
use switchyard_dialects::ir::{StreamEvent, Usage};
use switchyard_dialects::usage::{StreamUsage, from_body, may_carry_usage};

const DIALECTS: [(Dialect, &str); 4] = [
    (Dialect::OpenAiChat, "openai-chat"),
    (Dialect::OpenAiResponses, "openai-responses"),
    (Dialect::AnthropicMessages, "anthropic-messages"),
    (Dialect::Gemini, "gemini"),
];

/// The one fixture stored as raw SSE rather than one payload per line.
const RAW_SSE: &str = "google-stream-gemini-3.7-flash-2026-09-16.chunks.txt";

fn nonzero(usage: Usage) -> Option<Usage> {
    (usage != Usage::default()).then_some(usage)
}

/// A stream fixture's events as (SSE event name, data), up to its first terminal Responses
/// event (one recording holds several responses in a row; a real stream ends there).
fn stream_payloads(dir: &str, name: &str) -> Vec<(Option<String>, String)> {
    if name == RAW_SSE {
        return parse_sse(fixture_text(dir, name).as_bytes(), 7);
    }
    let mut payloads = Vec::new();
    for line in fixture_lines(dir, name) {
        let kind = serde_json::from_str::<Value>(&line).ok().and_then(|v| v["type"].as_str().map(str::to_owned));
        let terminal = matches!(kind.as_deref(), Some("response.completed" | "response.incomplete"));
        payloads.push((kind, line));
        if terminal {
            break;
        }
    }
    payloads
}

/// The last usage the dialect's full stream decoder reports.
fn decoder_usage(dialect: Dialect, payloads: &[(Option<String>, String)]) -> Option<Usage> {
    let mut decoder = dialect.decoder();
    let mut last = None;
    let mut events = Vec::new();
    for (event, data) in payloads {
        match decoder.decode(event.as_deref(), data) {
            Ok(decoded) => events.extend(decoded),
            Err(_) => break,
        }
    }
    events.extend(decoder.finish());
    for event in events {
        if let StreamEvent::Usage(usage) = event {
            last = Some(usage);
        }
    }
    last.and_then(nonzero)
}

fn stream_usage(dialect: Dialect, payloads: &[(Option<String>, String)]) -> (Option<Usage>, usize) {
    let mut usage = StreamUsage::new(dialect);
    let mut parsed = 0;
    for (_, data) in payloads {
        if may_carry_usage(dialect, data.as_bytes()) {
            parsed += 1;
        }
        usage.event(data.as_bytes());
    }
    (usage.usage(), parsed)
}

#[test]
fn whole_answers_give_the_usage_the_translators_read() {
    let mut with_usage = 0;
    for (dialect, dir) in DIALECTS {
        for name in fixture_names(dir, 1).into_iter().filter(|n| n.ends_with(".json")) {
            let body = fixture_bytes(dir, &name);
            let expected = dialect.response_to_ir(&body).ok().and_then(|r| nonzero(r.usage));
            assert_eq!(from_body(dialect, &body), expected, "{dir}/{name}");
            with_usage += usize::from(expected.is_some());
        }
    }
    assert!(with_usage >= 15, "most recorded answers report usage ({with_usage})");
}

#[test]
fn streams_give_the_usage_the_decoders_read_parsing_only_the_events_that_carry_it() {
    let mut with_usage = 0;
    for (dialect, dir) in DIALECTS {
        for name in fixture_names(dir, 1).into_iter().filter(|n| n.ends_with(".chunks.txt")) {
            let payloads = stream_payloads(dir, &name);
            let expected = decoder_usage(dialect, &payloads);
            let (got, parsed) = stream_usage(dialect, &payloads);
            assert_eq!(got, expected, "{dir}/{name}");
            with_usage += usize::from(expected.is_some());
            // Only Gemini repeats its usage on every chunk; the others carry it on a few events.
            if dialect != Dialect::Gemini && payloads.len() > 4 {
                assert!(parsed * 2 < payloads.len(), "{dir}/{name}: {parsed} of {} events parsed", payloads.len());
            }
        }
    }
    assert!(with_usage >= 12, "most recorded streams report usage ({with_usage})");
}

#[test]
fn recorded_counts_by_value() {
    let body =
        |dir: &str, name: &str| from_body(DIALECTS.iter().find(|d| d.1 == dir).unwrap().0, &fixture_bytes(dir, name));
    assert_eq!(body("openai-chat", "openai-text.json"), Some(usage(16, 363, 0, 0)));
    assert_eq!(body("openai-chat", "deepseek-tool-call.json"), Some(usage(374, 60, 0, 16)));
    assert_eq!(body("openai-responses", "issue-20047-openai-responses.json"), Some(usage(12, 2, 0, 0)));
    assert_eq!(body("anthropic-messages", "anthropic-text.json"), Some(usage(12, 29, 0, 0)));
    assert_eq!(body("anthropic-messages", "issue-13430-thinking-tool-call.json"), Some(usage(599, 59, 0, 18)));
    // Gemini: output = candidates + thoughts; cached from cachedContentTokenCount.
    assert_eq!(body("gemini", "issue-19822-complete-usage.json"), Some(usage(19, 60, 3, 56)));
    assert_eq!(body("gemini", "issue-19758-prompt-block.json"), Some(usage(9, 0, 0, 0)));
    assert_eq!(body("anthropic-messages", "anthropic-issue-17366-error.json"), None);

    let stream = |dialect: Dialect, dir: &str, name: &str| stream_usage(dialect, &stream_payloads(dir, name)).0;
    // Input from message_start, output from message_delta.
    assert_eq!(
        stream(Dialect::AnthropicMessages, "anthropic-messages", "anthropic-text.chunks.txt"),
        Some(usage(12, 30, 0, 0))
    );
    // A message_delta that restates input_tokens replaces message_start's.
    assert_eq!(
        stream(Dialect::AnthropicMessages, "anthropic-messages", "anthropic-message-delta-input-tokens.chunks.txt"),
        Some(usage(61, 2, 0, 0))
    );
    // DeepSeek reports cache hits in both its own and OpenAI's field.
    assert_eq!(
        stream(Dialect::OpenAiChat, "openai-chat", "deepseek-tool-call.chunks.txt"),
        Some(usage(374, 61, 256, 17))
    );
    assert_eq!(
        stream(Dialect::OpenAiChat, "openai-chat", "issue-19789-live-usage.chunks.txt"),
        Some(usage(88, 4, 0, 4))
    );
    assert_eq!(stream(Dialect::OpenAiChat, "openai-chat", "groq-tool-call.chunks.txt"), Some(usage(210, 15, 0, 0)));
    assert_eq!(stream(Dialect::Gemini, "gemini", "google-text.chunks.txt"), Some(usage(9, 208, 0, 185)));
}

/// Edits the fixture's JSON with `edit` and returns the bytes.
fn edited(dir: &str, name: &str, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(&fixture_bytes(dir, name)).unwrap();
    edit(&mut value);
    serde_json::to_vec(&value).unwrap()
}

#[test]
fn cache_reads_cache_writes_and_reasoning_map_to_the_neutral_fields() {
    let chat = edited("openai-chat", "openai-text.json", |v| {
        v["usage"]["prompt_tokens_details"]["cached_tokens"] = json!(10);
        v["usage"]["completion_tokens_details"]["reasoning_tokens"] = json!(7);
    });
    assert_eq!(from_body(Dialect::OpenAiChat, &chat), Some(usage(16, 363, 10, 7)));

    let responses = edited("openai-responses", "issue-20047-openai-responses.json", |v| {
        v["usage"]["input_tokens_details"]["cached_tokens"] = json!(8);
        v["usage"]["output_tokens_details"]["reasoning_tokens"] = json!(1);
    });
    assert_eq!(from_body(Dialect::OpenAiResponses, &responses), Some(usage(12, 2, 8, 1)));

    // Anthropic's input_tokens leaves out cache reads and writes; the neutral input holds them.
    let anthropic = edited("anthropic-messages", "anthropic-text.json", |v| {
        v["usage"]["cache_read_input_tokens"] = json!(100);
        v["usage"]["cache_creation_input_tokens"] = json!(50);
    });
    let expected = Usage { cache_creation_tokens: 50, ..usage(162, 29, 100, 0) };
    assert_eq!(from_body(Dialect::AnthropicMessages, &anthropic), Some(expected));

    // A stream: message_start carries the cache counts, message_delta the output only.
    let mut stream = StreamUsage::new(Dialect::AnthropicMessages);
    for line in fixture_lines("anthropic-messages", "anthropic-text.chunks.txt") {
        let mut event: Value = serde_json::from_str(&line).unwrap();
        if event["type"] == "message_start" {
            event["message"]["usage"]["cache_read_input_tokens"] = json!(100);
            event["message"]["usage"]["cache_creation_input_tokens"] = json!(50);
        }
        if event["type"] == "message_delta" {
            event["usage"] = json!({"output_tokens": 30});
        }
        stream.event(event.to_string().as_bytes());
    }
    assert_eq!(stream.usage(), Some(Usage { cache_creation_tokens: 50, ..usage(162, 30, 100, 0) }));

    // Responses streams carry the usage in the final response event.
    let mut stream = StreamUsage::new(Dialect::OpenAiResponses);
    for (_, data) in stream_payloads("openai-responses", "issue-20047-openai-responses.chunks.txt") {
        let mut event: Value = serde_json::from_str(&data).unwrap();
        if event["type"] == "response.completed" {
            event["response"]["usage"]["input_tokens_details"]["cached_tokens"] = json!(4);
        }
        stream.event(event.to_string().as_bytes());
    }
    assert_eq!(stream.usage(), Some(usage(12, 2, 4, 0)));
}

#[test]
fn code_assist_envelopes_carry_gemini_usage() {
    let inner: Value = serde_json::from_slice(&fixture_bytes("gemini", "issue-19822-complete-usage.json")).unwrap();
    let envelope = json!({"response": inner, "traceId": "t-1"}).to_string();
    assert_eq!(from_body(Dialect::Gemini, envelope.as_bytes()), Some(usage(19, 60, 3, 56)));
    let mut stream = StreamUsage::new(Dialect::Gemini);
    assert!(stream.event(envelope.as_bytes()));
    assert_eq!(stream.usage(), Some(usage(19, 60, 3, 56)));
}
