//! The neutral stream summary of the Gemini and OpenAI Responses tests (with the block discipline every decoder
//! must keep), both encoders' framing checks, and the re-encoding round trip through them.

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use switchyard_dialects::ir::{ErrorInfo, StopReason, StreamEvent, Usage};
use switchyard_dialects::{gemini, openai_responses};

use super::{decode_payloads, encode_all, parse_sse};

// ------------------------------------------------------------------------------------------------
// Neutral stream summary (and the block discipline every decoder must keep)

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub start: Option<(String, String)>,
    pub text: String,
    pub thinking: String,
    pub signatures: Vec<String>,
    /// (id, name, parsed arguments)
    pub calls: Vec<(String, String, Value)>,
    pub stop: Option<StopReason>,
    pub usage: Option<Usage>,
    pub error: Option<ErrorInfo>,
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Text,
    Thinking,
    Tool,
}

pub fn summarize(events: &[StreamEvent]) -> Summary {
    let mut summary = Summary::default();
    let mut open: HashMap<usize, Kind> = HashMap::new();
    let mut seen: HashSet<usize> = HashSet::new();
    let mut calls: Vec<(usize, String, String, String)> = Vec::new();
    for (n, event) in events.iter().enumerate() {
        assert!(!summary.done && summary.error.is_none(), "event after the end: {event:?}");
        let mut begin = |index: usize, kind: Kind| {
            assert!(seen.insert(index), "block {index} opened twice");
            open.insert(index, kind);
        };
        match event {
            StreamEvent::Start { id, model } => {
                assert_eq!(n, 0, "Start must come first");
                summary.start = Some((id.clone(), model.clone()));
            }
            StreamEvent::TextStart { index } => begin(*index, Kind::Text),
            StreamEvent::ThinkingStart { index } => begin(*index, Kind::Thinking),
            StreamEvent::ToolCallStart { index, id, name } => {
                begin(*index, Kind::Tool);
                calls.push((*index, id.clone(), name.clone(), String::new()));
            }
            StreamEvent::TextDelta { index, text } => {
                assert_eq!(open.get(index), Some(&Kind::Text), "text delta outside an open text block");
                summary.text.push_str(text);
            }
            StreamEvent::ThinkingDelta { index, text } => {
                assert_eq!(open.get(index), Some(&Kind::Thinking), "thinking delta outside a thinking block");
                summary.thinking.push_str(text);
            }
            StreamEvent::ThinkingSignature { index, signature } => {
                assert_eq!(open.get(index), Some(&Kind::Thinking), "signature outside a thinking block");
                summary.signatures.push(signature.clone());
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                assert_eq!(open.get(index), Some(&Kind::Tool), "arguments outside a tool block");
                let call = calls.iter_mut().find(|c| c.0 == *index).unwrap();
                call.3.push_str(arguments);
            }
            StreamEvent::BlockStop { index } => {
                assert!(open.remove(index).is_some(), "stop of block {index} that is not open");
            }
            StreamEvent::Usage(usage) => summary.usage = Some(*usage),
            StreamEvent::Finish { stop_reason } => {
                assert!(open.is_empty(), "Finish with open blocks {open:?}");
                summary.stop = Some(*stop_reason);
            }
            StreamEvent::Done => {
                assert!(open.is_empty(), "Done with open blocks");
                summary.done = true;
            }
            StreamEvent::Error(error) => summary.error = Some(error.clone()),
        }
    }
    let truncated = summary.error.is_some();
    summary.calls = calls
        .into_iter()
        .map(|(_, id, name, args)| {
            // A call cut off by an error may hold partial JSON; a finished one must parse.
            let args: Value = match serde_json::from_str(&args) {
                Ok(args) => args,
                Err(_) if truncated => Value::String(args),
                Err(e) => panic!("arguments {args:?}: {e}"),
            };
            (id, name, args)
        })
        .collect();
    summary
}

/// What must survive a re-encoding: content, calls, stop, usage (minus what the target cannot express), errors.
pub fn neutral(summary: &Summary, keep_cache_creation: bool) -> Summary {
    let mut out = summary.clone();
    out.start = None;
    if let Some(usage) = out.usage.as_mut()
        && !keep_cache_creation
    {
        usage.cache_creation_tokens = 0;
    }
    out
}

// ------------------------------------------------------------------------------------------------
// Frame validators for both encoders

/// Gemini frames: data-only SSE, every chunk JSON, `finishReason` / `usageMetadata` only on the last chunk, an
/// `error` chunk only last.
pub fn check_gemini_frames(frames: &[String]) -> Vec<(Option<String>, String)> {
    for frame in frames {
        assert!(frame.starts_with("data: ") && frame.ends_with("\n\n"), "not a data frame: {frame:?}");
        assert!(!frame.contains("\nevent:"), "Gemini frames carry no event names");
    }
    let events = parse_sse(frames.concat().as_bytes(), 4096);
    assert_eq!(events.len(), frames.len());
    for (n, (name, data)) in events.iter().enumerate() {
        assert!(name.is_none());
        let chunk: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("chunk {data}: {e}"));
        let last = n + 1 == events.len();
        if chunk.get("error").is_some() {
            assert!(last, "error chunk before the end");
            assert_eq!(chunk.as_object().unwrap().keys().next().map(String::as_str), Some("error"));
            continue;
        }
        let candidate = &chunk["candidates"][0];
        assert!(candidate["content"]["parts"].is_array(), "chunk without parts: {data}");
        assert_eq!(candidate["content"]["role"], "model");
        assert_eq!(candidate.get("finishReason").is_some(), last, "finishReason only on the last chunk: {data}");
        assert!(last || chunk.get("usageMetadata").is_none(), "usage only on the last chunk");
    }
    events
}

/// Responses frames: `event:` = data `type`, strictly increasing `sequence_number`, deltas only for open items,
/// every added item done, one terminal event, last.
pub fn check_responses_frames(frames: &[String]) -> Vec<(Option<String>, String)> {
    let events = parse_sse(frames.concat().as_bytes(), 4096);
    let mut last_sequence: Option<u64> = None;
    let mut open: HashMap<u64, String> = HashMap::new();
    let mut added: HashSet<u64> = HashSet::new();
    let mut terminal = 0;
    for (n, (name, data)) in events.iter().enumerate() {
        let event: Value = serde_json::from_str(data).unwrap();
        let kind = event["type"].as_str().unwrap().to_owned();
        assert_eq!(name.as_deref(), Some(kind.as_str()), "event name differs from type");
        let sequence = event["sequence_number"].as_u64().expect("sequence_number");
        assert!(last_sequence.is_none_or(|last| sequence > last), "sequence_number not increasing at {kind}");
        last_sequence = Some(sequence);
        if n == 0 {
            assert!(kind == "response.created" || kind == "error", "first event {kind}");
        }
        match kind.as_str() {
            "response.output_item.added" => {
                let index = event["output_index"].as_u64().unwrap();
                assert!(added.insert(index), "output_index {index} added twice");
                open.insert(index, event["item"]["id"].as_str().unwrap().to_owned());
            }
            "response.output_item.done" => {
                let index = event["output_index"].as_u64().unwrap();
                assert_eq!(open.remove(&index).as_deref(), event["item"]["id"].as_str(), "done without added");
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                terminal += 1;
                assert_eq!(n + 1, events.len(), "{kind} must be last");
                if kind != "response.failed" {
                    assert!(open.is_empty(), "items left open: {open:?}");
                }
            }
            "response.created" | "response.in_progress" | "error" => {}
            _ => {
                let index = event["output_index"].as_u64().expect("output_index");
                assert_eq!(
                    open.get(&index).map(String::as_str),
                    event["item_id"].as_str(),
                    "{kind} for an unopened item"
                );
            }
        }
    }
    assert_eq!(terminal, 1, "exactly one terminal event");
    events
}

/// Re-encodes a decoded stream with both encoders and checks that decoding again gives the same neutral summary.
pub fn assert_reencodes(events: &[StreamEvent]) {
    let original = summarize(events);

    let frames = encode_all(gemini::Encoder::new(), events);
    let payloads = check_gemini_frames(&frames);
    let again = summarize(&decode_payloads(gemini::Decoder::new(), &payloads));
    assert_eq!(neutral(&again, false), neutral(&original, false), "through the Gemini encoder");
    if original.error.is_none() {
        assert_eq!(again.start, original.start);
    }

    let frames = encode_all(openai_responses::Encoder::new(), events);
    let payloads = check_responses_frames(&frames);
    let again = summarize(&decode_payloads(openai_responses::Decoder::new(), &payloads));
    assert_eq!(neutral(&again, true), neutral(&original, true), "through the Responses encoder");
    if original.error.is_none() {
        assert_eq!(again.start, original.start);
    }
}
