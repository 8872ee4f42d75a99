//! Helpers shared by the dialect test files: fixtures, SSE framing, decoding and encoding whole streams. Each
//! integration test file is its own crate and uses a part of them, hence `dead_code` is allowed.
//!
//! [`anthropic_chat`] holds the stream summary and framing checks of the Anthropic / OpenAI Chat tests,
//! [`gemini_responses`] those of the Gemini / OpenAI Responses tests.

#![allow(dead_code)]

pub mod anthropic_chat;
pub mod gemini_responses;

use std::path::PathBuf;

use serde_json::{Value, json};
use switchyard_dialects::ir::{StreamDecoder, StreamEncoder, StreamEvent, Usage};
use switchyard_dialects::sse::SseParser;

// ------------------------------------------------------------------------------------------------
// Fixtures (`../shared/fixtures/upstream/<dir>`)

pub fn fixture_dir(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/upstream").join(dir)
}

pub fn fixture_bytes(dir: &str, name: &str) -> Vec<u8> {
    let path = fixture_dir(dir).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

pub fn fixture_text(dir: &str, name: &str) -> String {
    String::from_utf8(fixture_bytes(dir, name)).unwrap_or_else(|e| panic!("fixture {dir}/{name}: utf-8: {e}"))
}

/// The fixture's non-empty lines, trimmed (one payload per line).
pub fn fixture_lines(dir: &str, name: &str) -> Vec<String> {
    fixture_text(dir, name).lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
}

/// The file names in the fixture directory, sorted; there must be at least `at_least`.
pub fn fixture_names(dir: &str, at_least: usize) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixture_dir(dir))
        .expect("fixture directory")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= at_least, "expected the {dir} fixtures, found {names:?}");
    names
}

// ------------------------------------------------------------------------------------------------
// SSE

/// Payload lines as data-only SSE frames (OpenAI Chat, Gemini).
pub fn data_frames(lines: &[String]) -> String {
    lines.iter().map(|line| format!("data: {line}\n\n")).collect()
}

/// Payload lines as SSE frames named by each payload's `type` (Anthropic, OpenAI Responses).
pub fn typed_frames(lines: &[String]) -> String {
    lines
        .iter()
        .map(|line| {
            let value: Value = serde_json::from_str(line).expect("fixture chunk is JSON");
            let kind = value["type"].as_str().expect("chunk type").to_owned();
            format!("event: {kind}\ndata: {line}\n\n")
        })
        .collect()
}

/// Splits wire text into SSE events (name, data), feeding the parser `size` bytes at a time.
pub fn parse_sse(wire: &[u8], size: usize) -> Vec<(Option<String>, String)> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for chunk in wire.chunks(size.max(1)) {
        events.extend(parser.feed(chunk));
    }
    events.extend(parser.finish());
    events.into_iter().map(|e| (e.event, e.data)).collect()
}

/// Splits wire text into SSE events, fed to the parser in one piece.
pub fn sse_events(wire: &str) -> Vec<(Option<String>, String)> {
    parse_sse(wire.as_bytes(), wire.len())
}

// ------------------------------------------------------------------------------------------------
// Whole streams through decoders and encoders

fn decode_with(decoder: &mut dyn StreamDecoder, payloads: &[(Option<String>, String)]) -> Vec<StreamEvent> {
    let mut events = Vec::new();
    for (event, data) in payloads {
        events.extend(decoder.decode(event.as_deref(), data).expect("event decodes"));
    }
    events.extend(decoder.finish());
    events
}

/// Feeds SSE payloads (name, data) to `decoder`, then `finish`.
pub fn decode_payloads<D: StreamDecoder>(mut decoder: D, payloads: &[(Option<String>, String)]) -> Vec<StreamEvent> {
    decode_with(&mut decoder, payloads)
}

/// Runs wire text through the SSE parser and `decoder`, then `finish`.
pub fn decode(decoder: &mut dyn StreamDecoder, wire: &str) -> Vec<StreamEvent> {
    decode_with(decoder, &sse_events(wire))
}

fn encode_with(encoder: &mut dyn StreamEncoder, events: &[StreamEvent]) -> Vec<String> {
    events.iter().flat_map(|event| encoder.encode(event)).collect()
}

/// The frames `encoder` writes for `events`.
pub fn encode_all<E: StreamEncoder>(mut encoder: E, events: &[StreamEvent]) -> Vec<String> {
    encode_with(&mut encoder, events)
}

/// The wire text `encoder` writes for `events`.
pub fn encode(encoder: &mut dyn StreamEncoder, events: &[StreamEvent]) -> String {
    encode_with(encoder, events).concat()
}

/// Usage without cache writes.
pub fn usage(input: i64, output: i64, cached: i64, reasoning: i64) -> Usage {
    Usage {
        input_tokens: input,
        output_tokens: output,
        cached_input_tokens: cached,
        cache_creation_tokens: 0,
        reasoning_tokens: reasoning,
    }
}

// ------------------------------------------------------------------------------------------------
// Totality checks

/// Copies of `value` with one node (pre-order, at most `limit` nodes) replaced by each of a few wrong types.
pub fn mutations(value: &Value, limit: usize) -> Vec<Value> {
    fn count(value: &Value) -> usize {
        1 + match value {
            Value::Array(items) => items.iter().map(count).sum(),
            Value::Object(map) => map.values().map(count).sum(),
            _ => 0,
        }
    }
    fn replace(value: &mut Value, target: usize, seen: &mut usize, with: &Value) -> bool {
        if *seen == target {
            *value = with.clone();
            return true;
        }
        *seen += 1;
        match value {
            Value::Array(items) => items.iter_mut().any(|v| replace(v, target, seen, with)),
            Value::Object(map) => map.values_mut().any(|v| replace(v, target, seen, with)),
            _ => false,
        }
    }
    let replacements = [Value::Null, json!(7), json!("x"), json!([1]), json!({"k": true})];
    let mut out = Vec::new();
    for target in 1..count(value).min(limit) {
        for with in &replacements {
            let mut copy = value.clone();
            replace(&mut copy, target, &mut 0, with);
            out.push(copy);
        }
    }
    out
}

/// Byte prefixes of `text` (on char boundaries), every `step` bytes.
pub fn prefixes(text: &str, step: usize) -> Vec<&str> {
    (0..text.len()).step_by(step).filter(|n| text.is_char_boundary(*n)).map(|n| &text[..n]).collect()
}
