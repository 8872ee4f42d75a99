//! `stream_decoder`, `stream_encoder`: the stream state machines of every dialect.

use std::collections::HashMap;

use switchyard_dialects::Dialect;
use switchyard_dialects::ir::{ErrorInfo, StopReason, StreamEvent, Usage};
use switchyard_dialects::usage::StreamUsage;

use crate::support::{DIALECTS, assert_sse_frames, dialect_of, parse_sse};

/// An upstream SSE stream (after a selector byte): parsed, decoded to neutral events (until the
/// first decode error, as the executors stop there), then encoded to every dialect, each frame
/// complete SSE with a JSON payload. The usage reader never panics on the same events.
pub fn stream_decoder(data: &[u8]) {
    let Some((&selector, wire)) = data.split_first() else { return };
    let source = dialect_of(selector);
    let mut decoder = source.decoder();
    let mut usage = StreamUsage::new(source);
    let mut events = Vec::new();
    let mut failed = false;
    for sse in parse_sse([wire]) {
        usage.event(sse.data.as_bytes());
        match decoder.decode(sse.event.as_deref(), &sse.data) {
            Ok(decoded) => events.extend(decoded),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    if !failed {
        events.extend(decoder.finish());
    }
    assert_block_order(&format!("{source:?} decoder"), &events);
    encode_everywhere(&events);
}

/// The decoders' contract ([`StreamEvent`]'s docs): a block is opened before its deltas, its
/// deltas match its kind, it is closed once, and none is left open when the stream is `Done`.
pub fn assert_block_order(who: &str, events: &[StreamEvent]) {
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum Kind {
        Text,
        Thinking,
        Tool,
    }
    let mut open: HashMap<usize, Kind> = HashMap::new();
    for (at, event) in events.iter().enumerate() {
        let (index, kind, opens) = match event {
            StreamEvent::TextStart { index } => (*index, Some(Kind::Text), true),
            StreamEvent::ThinkingStart { index } => (*index, Some(Kind::Thinking), true),
            StreamEvent::ToolCallStart { index, .. } => (*index, Some(Kind::Tool), true),
            StreamEvent::TextDelta { index, .. } => (*index, Some(Kind::Text), false),
            StreamEvent::ThinkingDelta { index, .. } | StreamEvent::ThinkingSignature { index, .. } => {
                (*index, Some(Kind::Thinking), false)
            }
            StreamEvent::ToolCallDelta { index, .. } => (*index, Some(Kind::Tool), false),
            StreamEvent::BlockStop { index } => (*index, None, false),
            StreamEvent::Done => {
                assert!(open.is_empty(), "{who}: Done with blocks open {open:?} (event {at} of {events:?})");
                continue;
            }
            _ => continue,
        };
        match (opens, kind) {
            (true, Some(kind)) => {
                let previous = open.insert(index, kind);
                assert!(previous.is_none(), "{who}: block {index} opened twice (event {at} of {events:?})");
            }
            (false, Some(kind)) => {
                let current = open.get(&index);
                assert_eq!(current, Some(&kind), "{who}: {kind:?} delta for block {index} (event {at} of {events:?})");
            }
            (_, None) => {
                let closed = open.remove(&index);
                assert!(closed.is_some(), "{who}: block {index} closed but not open (event {at} of {events:?})");
            }
        }
    }
}

/// Every dialect's encoder fed `events`: complete frames, JSON payloads.
pub fn encode_everywhere(events: &[StreamEvent]) {
    for target in DIALECTS {
        encode(target, events);
    }
}

fn encode(target: Dialect, events: &[StreamEvent]) {
    let mut encoder = target.encoder();
    for event in events {
        let frames = encoder.encode(event);
        assert_sse_frames(target, &frames);
    }
}

/// An arbitrary sequence of neutral events (built from the bytes, in any order, with any
/// indexes) through every encoder: no panic, only complete frames with JSON payloads.
pub fn stream_encoder(data: &[u8]) {
    let mut bytes = Bytes(data);
    let mut events = Vec::new();
    while let Some(event) = bytes.event() {
        events.push(event);
    }
    encode_everywhere(&events);
}

/// A reader of the fuzzer's bytes as structured choices.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(first)
    }

    /// A string: a length byte, then that many bytes (lossy UTF-8).
    fn text(&mut self) -> String {
        let len = usize::from(self.byte().unwrap_or(0) % 24).min(self.0.len());
        let (text, rest) = self.0.split_at(len);
        self.0 = rest;
        String::from_utf8_lossy(text).into_owned()
    }

    /// Mostly small indexes (so blocks line up), sometimes a huge one.
    fn index(&mut self) -> usize {
        match self.byte().unwrap_or(0) {
            255 => usize::MAX,
            254 => u32::MAX as usize,
            b => usize::from(b % 5),
        }
    }

    fn count(&mut self) -> i64 {
        match self.byte().unwrap_or(0) {
            255 => i64::MAX,
            254 => i64::MIN,
            253 => -1,
            b => i64::from(b) * 1000,
        }
    }

    fn event(&mut self) -> Option<StreamEvent> {
        Some(match self.byte()? % 14 {
            0 => StreamEvent::Start { id: self.text(), model: self.text() },
            1 => StreamEvent::TextStart { index: self.index() },
            2 => StreamEvent::TextDelta { index: self.index(), text: self.text() },
            3 => StreamEvent::ThinkingStart { index: self.index() },
            4 => StreamEvent::ThinkingDelta { index: self.index(), text: self.text() },
            5 => StreamEvent::ThinkingSignature { index: self.index(), signature: self.text() },
            6 => StreamEvent::ToolCallStart { index: self.index(), id: self.text(), name: self.text() },
            7 => StreamEvent::ToolCallDelta { index: self.index(), arguments: self.text() },
            8 => StreamEvent::BlockStop { index: self.index() },
            9 => StreamEvent::Usage(Usage {
                input_tokens: self.count(),
                output_tokens: self.count(),
                cached_input_tokens: self.count(),
                cache_creation_tokens: self.count(),
                reasoning_tokens: self.count(),
            }),
            10 => StreamEvent::Finish { stop_reason: self.stop_reason() },
            11 => {
                let status = u16::from(self.byte().unwrap_or(0)) * 3;
                StreamEvent::Error(ErrorInfo { status, kind: self.text(), message: self.text() })
            }
            _ => StreamEvent::Done,
        })
    }

    fn stop_reason(&mut self) -> StopReason {
        match self.byte().unwrap_or(0) % 6 {
            0 => StopReason::EndTurn,
            1 => StopReason::MaxTokens,
            2 => StopReason::StopSequence,
            3 => StopReason::ToolUse,
            4 => StopReason::ContentFilter,
            _ => StopReason::Error,
        }
    }
}
