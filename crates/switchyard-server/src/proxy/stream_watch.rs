//! What a passed-through stream tells the usage record, without parsing it: its token usage and
//! whether the upstream ended it with an error event. Each relayed chunk is searched for the
//! dialect's usage key and for `"error"` (one byte search each); only the complete events that
//! hold one are parsed.

use switchyard_dialects::Dialect;
use switchyard_dialects::ir::Usage;
use switchyard_dialects::usage::{StreamUsage, may_carry_usage};

use super::scrub::last_event_end;

/// An event split over relayed chunks is kept for the watch up to this size, then given up.
const MAX_CARRY: usize = 4 * 1024 * 1024;

/// What the chunks fed so far changed.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Seen {
    /// The usage, when an event updated it.
    pub usage: Option<Usage>,
    /// An upstream error event's data (already scrubbed by the relay).
    pub error: Option<String>,
}

pub(super) struct StreamWatch {
    dialect: Dialect,
    usage: StreamUsage,
    /// The start of an event the relay let out before its end (an oversized event): only then
    /// are bytes copied here.
    carry: Vec<u8>,
    /// The carried event outgrew [`MAX_CARRY`]: skip to its end.
    skipping: bool,
}

impl StreamWatch {
    pub fn new(dialect: Dialect) -> Self {
        Self { dialect, usage: StreamUsage::new(dialect), carry: Vec::new(), skipping: false }
    }

    /// Bytes just relayed: normally whole events, rarely ending inside one.
    pub fn feed(&mut self, bytes: &[u8]) -> Seen {
        let mut seen = Seen::default();
        let (complete, rest) = match last_event_end(bytes) {
            Some(end) => bytes.split_at(end),
            None => (&bytes[..0], bytes),
        };
        if !complete.is_empty() {
            if self.carry.is_empty() && !self.skipping {
                self.scan(complete, &mut seen);
            } else {
                // The carried event ends at the first boundary of this chunk.
                let first = first_event_end(complete).unwrap_or(complete.len());
                let mut event = std::mem::take(&mut self.carry);
                if !std::mem::take(&mut self.skipping) {
                    event.extend_from_slice(&complete[..first]);
                    self.scan(&event, &mut seen);
                }
                self.scan(&complete[first..], &mut seen);
            }
        }
        self.keep(rest);
        seen
    }

    /// The stream ended: a last event without its blank line still counts.
    pub fn finish(&mut self) -> Seen {
        let mut seen = Seen::default();
        let rest = std::mem::take(&mut self.carry);
        if !self.skipping {
            self.scan(&rest, &mut seen);
        }
        seen
    }

    fn keep(&mut self, rest: &[u8]) {
        if rest.is_empty() || self.skipping {
            return;
        }
        if self.carry.len() + rest.len() > MAX_CARRY {
            self.carry = Vec::new();
            self.skipping = true;
            return;
        }
        self.carry.extend_from_slice(rest);
    }

    /// Complete events: only those holding a usage key or an error are parsed.
    fn scan(&mut self, events: &[u8], seen: &mut Seen) {
        let usage = may_carry_usage(self.dialect, events);
        let error = memchr::memmem::find(events, b"\"error\"").is_some();
        if !usage && !error {
            return;
        }
        for event in split_events(events) {
            let data = event_data(event);
            if usage && self.usage.event(&data) {
                seen.usage = self.usage.usage();
            }
            if error && is_error_event(&data) {
                seen.error = Some(String::from_utf8_lossy(&data).into_owned());
            }
        }
    }
}

/// An upstream error event of any dialect: a top-level `error` (OpenAI Chat, Gemini, Anthropic
/// with its `"type": "error"`), or a Responses `error` / `response.failed` event.
fn is_error_event(data: &[u8]) -> bool {
    if memchr::memmem::find(data, b"\"error\"").is_none() {
        return false;
    }
    let Ok(serde_json::Value::Object(event)) = serde_json::from_slice::<serde_json::Value>(data) else {
        return false;
    };
    let kind = event.get("type").and_then(|t| t.as_str()).unwrap_or_default();
    event.get("error").is_some_and(|e| !e.is_null()) || matches!(kind, "error" | "response.failed")
}

/// The events of `bytes`, each without its blank line.
fn split_events(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        while !rest.is_empty() {
            let (event, after) = match first_event_end(rest) {
                Some(end) => (&rest[..end], &rest[end..]),
                None => (rest, &rest[rest.len()..]),
            };
            rest = after;
            if !event.iter().all(u8::is_ascii_whitespace) {
                return Some(event);
            }
        }
        None
    })
}

/// An event's `data:` lines, joined with `\n` (the SSE rule).
fn event_data(event: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    for line in event.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if let Some(value) = line.strip_prefix(b"data:") {
            if !data.is_empty() {
                data.push(b'\n');
            }
            data.extend_from_slice(value.strip_prefix(b" ").unwrap_or(value));
        }
    }
    data
}

/// The end (exclusive) of the first complete event: after its blank line.
fn first_event_end(bytes: &[u8]) -> Option<usize> {
    let lf = memchr::memmem::find(bytes, b"\n\n").map(|at| at + 2);
    let crlf = memchr::memmem::find(bytes, b"\r\n\r\n").map(|at| at + 4);
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{\"input_tokens\":12,\"output_tokens\":1}}}\n\n";
    const DELTA: &str = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n";
    const END: &str = "event: message_delta\ndata: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":30}}\n\n";

    fn usage(input: i64, output: i64) -> Usage {
        Usage { input_tokens: input, output_tokens: output, ..Usage::default() }
    }

    #[test]
    fn usage_events_update_the_count_and_others_do_not() {
        let mut watch = StreamWatch::new(Dialect::AnthropicMessages);
        assert_eq!(watch.feed(START.as_bytes()).usage, Some(usage(12, 1)));
        assert_eq!(watch.feed(DELTA.as_bytes()), Seen::default());
        assert_eq!(watch.feed(END.as_bytes()).usage, Some(usage(12, 30)));
    }

    #[test]
    fn an_event_split_over_chunks_is_read_whole() {
        let mut watch = StreamWatch::new(Dialect::AnthropicMessages);
        let wire = format!("{DELTA}{START}");
        let (a, b) = wire.split_at(DELTA.len() + 40);
        assert_eq!(watch.feed(a.as_bytes()), Seen::default());
        assert_eq!(watch.feed(b.as_bytes()).usage, Some(usage(12, 1)));
        // Without the final blank line, the stream's end completes it.
        let mut watch = StreamWatch::new(Dialect::AnthropicMessages);
        watch.feed(END.trim_end().as_bytes());
        assert_eq!(watch.finish().usage, Some(usage(0, 30)));
    }

    #[test]
    fn error_events_of_every_dialect_are_seen() {
        let cases = [
            (
                Dialect::AnthropicMessages,
                "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}\n\n",
            ),
            (Dialect::OpenAiChat, "data: {\"error\":{\"message\":\"busy\",\"type\":\"server_error\"}}\n\n"),
            (
                Dialect::OpenAiResponses,
                "event: response.failed\ndata: {\"type\":\"response.failed\",\"response\":{\"error\":{\"code\":\"server_error\"}}}\n\n",
            ),
            (Dialect::Gemini, "data: {\"error\":{\"code\":503,\"message\":\"busy\"}}\r\n\r\n"),
        ];
        for (dialect, wire) in cases {
            let seen = StreamWatch::new(dialect).feed(wire.as_bytes());
            assert!(seen.error.is_some(), "{dialect:?}: {wire}");
        }
        // `"error": null` in a normal event is no error.
        let completed = "data: {\"type\":\"response.completed\",\"response\":{\"error\":null,\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}}\n\n";
        let seen = StreamWatch::new(Dialect::OpenAiResponses).feed(completed.as_bytes());
        assert_eq!(seen, Seen { usage: Some(usage(3, 4)), error: None });
    }
}
