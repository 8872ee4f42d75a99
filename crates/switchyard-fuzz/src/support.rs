//! Helpers the targets share: chunk splits derived from the input, the dialect a leading byte
//! selects, and the check that encoder output is well-formed SSE.

use switchyard_dialects::Dialect;
use switchyard_dialects::sse::{SseEvent, SseParser};

pub const DIALECTS: [Dialect; 4] =
    [Dialect::OpenAiChat, Dialect::OpenAiResponses, Dialect::AnthropicMessages, Dialect::Gemini];

/// The dialect a selector byte picks (corpus files start with it; see `fuzz/README.md`).
pub fn dialect_of(selector: u8) -> Dialect {
    DIALECTS[usize::from(selector) % DIALECTS.len()]
}

/// `data` cut into chunks whose lengths come from a generator seeded by `data` itself, so every
/// input brings its own split and the fuzzer explores splits as it explores inputs.
pub fn chunks(data: &[u8]) -> Vec<&[u8]> {
    // FNV-1a of the input seeds xorshift64 (never zero).
    let mut state =
        data.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    state |= 1;
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Mostly short chunks (1..=8 bytes), sometimes long ones: both kinds of boundary.
        let len = if state & 0x30 == 0 { (state >> 8) as usize % 64 + 1 } else { (state >> 8) as usize % 8 + 1 };
        let (chunk, tail) = rest.split_at(len.min(rest.len()));
        out.push(chunk);
        rest = tail;
    }
    out
}

/// All events of `chunks` fed in order, plus the final one `finish` completes.
pub fn parse_sse<'a>(chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<SseEvent> {
    let mut parser = SseParser::new();
    let mut events: Vec<SseEvent> = chunks.into_iter().flat_map(|c| parser.feed(c)).collect();
    events.extend(parser.finish());
    events
}

/// What an encoder writes must be complete SSE frames whose payloads are JSON (OpenAI's
/// `[DONE]` aside): each frame ends in a blank line and parses to exactly one event.
pub fn assert_sse_frames(dialect: Dialect, frames: &[String]) {
    for frame in frames {
        assert!(frame.ends_with("\n\n"), "{dialect:?} frame does not end in a blank line: {frame:?}");
        let mut parser = SseParser::new();
        let events = parser.feed(frame.as_bytes());
        assert_eq!(parser.finish(), None, "{dialect:?} frame leaves a partial event: {frame:?}");
        assert_eq!(events.len(), 1, "{dialect:?} frame is not one event: {frame:?}");
        assert_json_payload(dialect, &events[0].data);
    }
}

/// An SSE text holding any number of frames (`stream_error_frame`).
pub fn assert_sse_text(dialect: Dialect, text: &str) {
    assert!(text.ends_with("\n\n"), "{dialect:?} SSE text does not end in a blank line: {text:?}");
    let events = parse_sse([text.as_bytes()]);
    assert!(!events.is_empty(), "{dialect:?} SSE text holds no event: {text:?}");
    for event in &events {
        assert_json_payload(dialect, &event.data);
    }
}

fn assert_json_payload(dialect: Dialect, data: &str) {
    if dialect == Dialect::OpenAiChat && data == "[DONE]" {
        return;
    }
    if let Err(error) = serde_json::from_str::<serde_json::Value>(data) {
        panic!("{dialect:?} event data is not JSON ({error}): {data:?}");
    }
}

/// A JSON value as wire text must parse back to the same value.
pub fn assert_json_round_trip(what: &str, value: &serde_json::Value) {
    let text = serde_json::to_string(value).unwrap_or_else(|e| panic!("{what} does not serialize: {e}"));
    let back: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what} is not valid JSON ({e}): {text}"));
    assert_eq!(&back, value, "{what} changes when written and read back");
}
