//! The stream summary of the Anthropic and OpenAI Chat tests (checking the neutral stream's discipline on the
//! way) and both encoders' framing checks.

use std::collections::HashMap;

use serde_json::Value;
use switchyard_dialects::ir::{ErrorInfo, StopReason, StreamEvent, Usage};

use super::sse_events;

/// What a stream says, for comparisons.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub id: String,
    pub model: String,
    pub text: String,
    pub thinking: String,
    pub signature: String,
    /// id, name, concatenated arguments.
    pub tools: Vec<(String, String, String)>,
    pub stop: Option<StopReason>,
    pub usage: Usage,
    pub done: bool,
    pub error: Option<ErrorInfo>,
}

/// Folds events into a summary, checking the neutral stream's discipline on the way: `Start`
/// first, every block opened before its deltas and closed before `Done`, nothing after the end.
pub fn summarize(events: &[StreamEvent]) -> Summary {
    let mut summary = Summary::default();
    let mut open: Vec<usize> = Vec::new();
    let mut tool_of_block: HashMap<usize, usize> = HashMap::new();
    for (n, event) in events.iter().enumerate() {
        assert!(!summary.done && summary.error.is_none(), "event after the end: {event:?}");
        match event {
            StreamEvent::Start { id, model } => {
                assert_eq!(n, 0, "Start comes first");
                summary.id.clone_from(id);
                summary.model.clone_from(model);
            }
            StreamEvent::TextStart { index } | StreamEvent::ThinkingStart { index } => open.push(*index),
            StreamEvent::ToolCallStart { index, id, name } => {
                open.push(*index);
                tool_of_block.insert(*index, summary.tools.len());
                summary.tools.push((id.clone(), name.clone(), String::new()));
            }
            StreamEvent::TextDelta { index, text } => {
                assert!(open.contains(index), "text delta for closed block {index}");
                summary.text.push_str(text);
            }
            StreamEvent::ThinkingDelta { index, text } => {
                assert!(open.contains(index), "thinking delta for closed block {index}");
                summary.thinking.push_str(text);
            }
            StreamEvent::ThinkingSignature { index, signature } => {
                assert!(open.contains(index), "signature for closed block {index}");
                summary.signature.push_str(signature);
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                assert!(open.contains(index), "tool delta for closed block {index}");
                summary.tools[tool_of_block[index]].2.push_str(arguments);
            }
            StreamEvent::BlockStop { index } => {
                let position = open.iter().position(|i| i == index).expect("stop of an open block");
                open.remove(position);
            }
            StreamEvent::Usage(usage) => summary.usage = *usage,
            StreamEvent::Finish { stop_reason } => summary.stop = Some(*stop_reason),
            StreamEvent::Error(error) => summary.error = Some(error.clone()),
            StreamEvent::Done => {
                assert!(open.is_empty(), "blocks {open:?} still open at Done");
                summary.done = true;
            }
        }
    }
    summary
}

/// Anthropic framing: `event:` equals `type`; message_start … message_delta, message_stop;
/// blocks numbered from 0, one open at a time, deltas and stops on the open block.
pub fn check_anthropic_frames(wire: &str) {
    let events = sse_events(wire);
    let last = events.len() - 1;
    let mut open: Option<u64> = None;
    let mut next = 0;
    for (n, (event, data)) in events.iter().enumerate() {
        let data: Value = serde_json::from_str(data).expect("frame data is JSON");
        let kind = data["type"].as_str().expect("type");
        assert_eq!(event.as_deref(), Some(kind), "event name equals type");
        match kind {
            "message_start" => {
                assert_eq!(n, 0);
                assert_eq!(data["message"]["type"], "message");
                assert!(data["message"]["id"].as_str().is_some_and(|id| !id.is_empty()));
                assert!(data["message"]["usage"]["input_tokens"].is_i64());
            }
            "content_block_start" => {
                assert!(n > 0 && open.is_none(), "block start while {open:?} open");
                assert_eq!(data["index"], next);
                assert!(data["content_block"]["type"].is_string());
                open = Some(next);
                next += 1;
            }
            "content_block_delta" => {
                assert_eq!(data["index"].as_u64(), open);
                assert!(data["delta"]["type"].is_string());
            }
            "content_block_stop" => {
                assert_eq!(data["index"].as_u64(), open);
                open = None;
            }
            "message_delta" => {
                assert!(open.is_none() && n == last - 1, "message_delta after the blocks, before message_stop");
                assert!(data["delta"]["stop_reason"].is_string());
                assert!(data["usage"]["output_tokens"].is_i64());
            }
            "message_stop" => assert_eq!(n, last),
            "error" => {
                assert_eq!(n, last);
                assert!(data["error"]["message"].is_string());
            }
            other => panic!("unexpected event {other}"),
        }
    }
}

/// OpenAI framing: chunks with id/object/model/choices, one finish_reason, a usage-only chunk
/// with `choices: []` after it, then `[DONE]` (or a final error chunk).
pub fn check_openai_frames(wire: &str) {
    let events = sse_events(wire);
    let (last, chunks) = events.split_last().expect("frames");
    assert!(events.iter().all(|(event, _)| event.is_none()), "no event names");
    let ends_in_error = last.1 != "[DONE]";
    if ends_in_error {
        let error: Value = serde_json::from_str(&last.1).expect("error chunk");
        assert!(error["error"]["message"].is_string());
    }
    let mut finishes = 0;
    let mut calls_started = 0;
    for (_, data) in chunks {
        let chunk: Value = serde_json::from_str(data).expect("chunk is JSON");
        assert!(chunk["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert!(chunk["model"].is_string() && chunk["created"].is_i64());
        let choices = chunk["choices"].as_array().expect("choices");
        if finishes > 0 {
            assert!(choices.is_empty() && chunk["usage"]["prompt_tokens"].is_i64(), "only usage after finish");
        }
        for choice in choices {
            assert_eq!(choice["index"], 0);
            assert!(choice["delta"].is_object());
            // tool_calls[].index counts calls from 0; id and name come with a call's first fragment.
            for call in choice["delta"]["tool_calls"].as_array().into_iter().flatten() {
                if call.get("id").is_some() {
                    assert_eq!(call["index"], calls_started);
                    assert!(call["function"]["name"].is_string());
                    calls_started += 1;
                } else {
                    assert!(call["index"].as_u64().is_some_and(|i| i < calls_started), "fragment of an unknown call");
                }
            }
            if !choice["finish_reason"].is_null() {
                finishes += 1;
            }
        }
    }
    assert!(ends_in_error || finishes == 1, "exactly one finish_reason");
}
