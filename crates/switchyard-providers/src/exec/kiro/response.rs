//! Kiro events → the neutral stream events of one Anthropic message: text, `<thinking>` blocks
//! (when thinking was asked for), tool calls from `toolUseEvent` fragments (joined until `stop`)
//! and from inline `[Called <tool> with args: {...}]` text, usage, stop reason. Text that may be
//! the start of a tag or an inline call is held back until it is clear what it is, so a marker
//! split across events is still found; everything else goes out as soon as it arrives.

use std::collections::HashSet;

use switchyard_dialects::ir::{ChatResponse, ErrorInfo, Part, StopReason, StreamEvent, Usage};

use super::frames::KiroEvent;

const THINK_OPEN: &str = "<thinking>";
const THINK_CLOSE: &str = "</thinking>";
const CALL_OPEN: &str = "[Called ";
const CALL_ARGS: &str = " with args: ";
/// An inline call longer than this is taken for text (nothing is held back forever).
const MAX_INLINE_CALL_BYTES: usize = 256 * 1024;
const MAX_TOOL_NAME_BYTES: usize = 200;

/// One piece of scanned answer text.
#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Text(String),
    Thinking(String),
    Call { name: String, arguments: String },
}

/// What the text at a `[Called ` is.
enum Inline {
    Call { name: String, arguments: String, len: usize },
    NeedMore,
    NotACall,
}

/// The end of the JSON object starting at `text[0] == '{'`, if it is complete.
fn object_end(text: &str) -> Option<usize> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i + 1);
                }
            }
            _ => {}
        }
    }
    None
}

/// `text` starts with `[Called `: a whole `[Called name with args: {...}]`, not yet, or never.
fn inline_call(text: &str) -> Inline {
    if text.len() > MAX_INLINE_CALL_BYTES {
        return Inline::NotACall;
    }
    let rest = &text[CALL_OPEN.len()..];
    let Some(at) = rest.find(CALL_ARGS) else {
        // A name has no whitespace; the only space allowed is the start of " with args: ".
        return match rest.find(char::is_whitespace) {
            Some(space) if CALL_ARGS.starts_with(&rest[space..]) => Inline::NeedMore,
            Some(_) => Inline::NotACall,
            None if rest.len() > MAX_TOOL_NAME_BYTES => Inline::NotACall,
            None => Inline::NeedMore,
        };
    };
    let name = &rest[..at];
    if name.is_empty() || name.len() > MAX_TOOL_NAME_BYTES || name.contains(char::is_whitespace) {
        return Inline::NotACall;
    }
    let args = &rest[at + CALL_ARGS.len()..];
    match args.chars().next() {
        None => return Inline::NeedMore,
        Some('{') => {}
        Some(_) => return Inline::NotACall,
    }
    let Some(end) = object_end(args) else { return Inline::NeedMore };
    match args[end..].chars().next() {
        None => return Inline::NeedMore,
        Some(']') => {}
        Some(_) => return Inline::NotACall,
    }
    match serde_json::from_str::<serde_json::Value>(&args[..end]) {
        Ok(value) if value.is_object() => Inline::Call {
            name: name.to_owned(),
            arguments: value.to_string(),
            len: CALL_OPEN.len() + at + CALL_ARGS.len() + end + 1,
        },
        _ => Inline::NotACall,
    }
}

/// The longest suffix of `text` that is a proper prefix of one of `markers`.
fn partial_marker(text: &str, markers: &[&str]) -> usize {
    markers
        .iter()
        .flat_map(|marker| (1..marker.len()).rev().filter(|n| text.ends_with(&marker[..*n])).take(1))
        .max()
        .unwrap_or(0)
}

/// Splits the answer text into text, thinking and inline calls, across events.
#[derive(Default)]
struct Scanner {
    pending: String,
    thinking: bool,
    /// Look for `<thinking>` at all (only when thinking was asked for).
    parse_thinking: bool,
    /// Newlines right after `</thinking>` are layout, not answer.
    trim_after_thinking: bool,
}

impl Scanner {
    fn push(&mut self, text: &str, out: &mut Vec<Segment>) {
        self.pending.push_str(text);
        self.scan(out, false);
    }

    fn flush(&mut self, out: &mut Vec<Segment>) {
        self.scan(out, true);
    }

    fn emit(&mut self, out: &mut Vec<Segment>, text: &str) {
        let text =
            if self.trim_after_thinking && !self.thinking { text.trim_start_matches(['\n', '\r']) } else { text };
        if text.is_empty() {
            return;
        }
        if !self.thinking {
            self.trim_after_thinking = false;
        }
        let segment = if self.thinking { Segment::Thinking(text.to_owned()) } else { Segment::Text(text.to_owned()) };
        match (out.last_mut(), segment) {
            (Some(Segment::Text(last)), Segment::Text(more))
            | (Some(Segment::Thinking(last)), Segment::Thinking(more)) => last.push_str(&more),
            (_, segment) => out.push(segment),
        }
    }

    fn scan(&mut self, out: &mut Vec<Segment>, at_end: bool) {
        loop {
            let pending = std::mem::take(&mut self.pending);
            if self.thinking {
                if let Some(at) = pending.find(THINK_CLOSE) {
                    self.emit(out, &pending[..at]);
                    self.thinking = false;
                    self.trim_after_thinking = true;
                    self.pending = pending[at + THINK_CLOSE.len()..].to_owned();
                    continue;
                }
                let keep = if at_end { 0 } else { partial_marker(&pending, &[THINK_CLOSE]) };
                self.emit(out, &pending[..pending.len() - keep]);
                self.pending = pending[pending.len() - keep..].to_owned();
                return;
            }
            let think_at = self.parse_thinking.then(|| pending.find(THINK_OPEN)).flatten();
            let call_at = pending.find(CALL_OPEN);
            match (think_at, call_at) {
                (Some(t), c) if c.is_none_or(|c| t < c) => {
                    self.emit(out, &pending[..t]);
                    self.thinking = true;
                    self.pending = pending[t + THINK_OPEN.len()..].to_owned();
                }
                (_, Some(c)) => {
                    self.emit(out, &pending[..c]);
                    match inline_call(&pending[c..]) {
                        Inline::Call { name, arguments, len } => {
                            out.push(Segment::Call { name, arguments });
                            self.pending = pending[c + len..].to_owned();
                        }
                        Inline::NeedMore if !at_end => {
                            self.pending = pending[c..].to_owned();
                            return;
                        }
                        Inline::NeedMore | Inline::NotACall => {
                            // Plain text after all: pass the `[` on and look again behind it.
                            self.emit(out, "[");
                            self.pending = pending[c + 1..].to_owned();
                        }
                    }
                }
                _ => {
                    let markers: &[&str] = if self.parse_thinking { &[THINK_OPEN, CALL_OPEN] } else { &[CALL_OPEN] };
                    let keep = if at_end { 0 } else { partial_marker(&pending, markers) };
                    self.emit(out, &pending[..pending.len() - keep]);
                    self.pending = pending[pending.len() - keep..].to_owned();
                    return;
                }
            }
        }
    }
}

#[derive(Clone, PartialEq)]
enum Open {
    Text(usize),
    Thinking(usize),
    Tool { index: usize, id: String },
}

/// Turns Kiro events into neutral stream events, one event at a time.
pub struct ResponseBuilder {
    id: String,
    model: String,
    started: bool,
    scanner: Scanner,
    open: Option<Open>,
    next_index: usize,
    seen_tools: HashSet<String>,
    tool_calls: usize,
    input_chars: usize,
    output_chars: usize,
    usage: (Option<i64>, Option<i64>),
    stop_reason: Option<String>,
    ended: bool,
}

/// Tokens for `chars` characters of text: Kiro often reports no usage, so 4 characters per
/// token stands in (the usual rough ratio for English and code).
fn estimate(chars: usize) -> i64 {
    i64::try_from(chars.div_ceil(4)).unwrap_or(i64::MAX)
}

/// The neutral status and kind of a Kiro exception.
pub fn error_info(kind: &str, message: &str) -> ErrorInfo {
    let (status, category) = match kind.rsplit(['#', ':']).next().unwrap_or(kind) {
        "ThrottlingException" | "ServiceQuotaExceededException" => (429, "rate_limit"),
        "ValidationException" | "BadRequestException" => (400, "invalid_request"),
        "AccessDeniedException" => (403, "permission"),
        "ResourceNotFoundException" => (404, "not_found"),
        "ServiceUnavailableException" => (503, "overloaded"),
        _ => (502, "server_error"),
    };
    let message = switchyard_redact::text(message);
    ErrorInfo { status, kind: category.into(), message: format!("Kiro answered {kind}: {message}") }
}

impl ResponseBuilder {
    /// `input_chars`: the request's text size, for the input estimate; `thinking`: whether
    /// `<thinking>` tags are read as reasoning.
    pub fn new(id: String, model: String, input_chars: usize, thinking: bool) -> Self {
        ResponseBuilder {
            id,
            model,
            started: false,
            scanner: Scanner { parse_thinking: thinking, ..Scanner::default() },
            open: None,
            next_index: 0,
            seen_tools: HashSet::new(),
            tool_calls: 0,
            input_chars,
            output_chars: 0,
            usage: (None, None),
            stop_reason: None,
            ended: false,
        }
    }

    fn start(&mut self, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start { id: self.id.clone(), model: self.model.clone() });
            out.push(StreamEvent::Usage(Usage { input_tokens: estimate(self.input_chars), ..Usage::default() }));
        }
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(open) = self.open.take() {
            let index = match open {
                Open::Text(i) | Open::Thinking(i) | Open::Tool { index: i, .. } => i,
            };
            out.push(StreamEvent::BlockStop { index });
        }
    }

    fn open_new(&mut self, out: &mut Vec<StreamEvent>) -> usize {
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        index
    }

    fn segments(&mut self, segments: Vec<Segment>, out: &mut Vec<StreamEvent>) {
        for segment in segments {
            match segment {
                Segment::Text(text) => {
                    self.output_chars += text.len();
                    let index = match self.open {
                        Some(Open::Text(index)) => index,
                        _ => {
                            let index = self.open_new(out);
                            out.push(StreamEvent::TextStart { index });
                            self.open = Some(Open::Text(index));
                            index
                        }
                    };
                    out.push(StreamEvent::TextDelta { index, text });
                }
                Segment::Thinking(text) => {
                    self.output_chars += text.len();
                    let index = match self.open {
                        Some(Open::Thinking(index)) => index,
                        _ => {
                            let index = self.open_new(out);
                            out.push(StreamEvent::ThinkingStart { index });
                            self.open = Some(Open::Thinking(index));
                            index
                        }
                    };
                    out.push(StreamEvent::ThinkingDelta { index, text });
                }
                Segment::Call { name, arguments } => {
                    let id = format!("tooluse_{}", crate::exec::uuid_v4().replace('-', ""));
                    self.whole_call(id, name, arguments, out);
                }
            }
        }
    }

    fn whole_call(&mut self, id: String, name: String, arguments: String, out: &mut Vec<StreamEvent>) {
        if !self.seen_tools.insert(id.clone()) {
            return;
        }
        self.tool_calls += 1;
        self.output_chars += name.len() + arguments.len();
        let index = self.open_new(out);
        out.push(StreamEvent::ToolCallStart { index, id, name });
        if !arguments.is_empty() {
            out.push(StreamEvent::ToolCallDelta { index, arguments });
        }
        out.push(StreamEvent::BlockStop { index });
    }

    fn flush_text(&mut self, out: &mut Vec<StreamEvent>) {
        let mut segments = Vec::new();
        self.scanner.flush(&mut segments);
        self.segments(segments, out);
    }

    /// The neutral events one Kiro event makes.
    pub fn push(&mut self, event: KiroEvent) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.start(&mut out);
        match event {
            KiroEvent::Text { content, tool_uses } => {
                let mut segments = Vec::new();
                self.scanner.push(&content, &mut segments);
                self.segments(segments, &mut out);
                for (id, name, input) in tool_uses {
                    if self.open.as_ref().is_some_and(|o| matches!(o, Open::Tool { id: open, .. } if *open == id)) {
                        continue;
                    }
                    self.flush_text(&mut out);
                    self.whole_call(id, name, input, &mut out);
                }
            }
            KiroEvent::ToolUse { id, name, input, stop } => {
                let continuing = matches!(&self.open, Some(Open::Tool { id: open, .. }) if *open == id);
                let index = if continuing {
                    match &self.open {
                        Some(Open::Tool { index, .. }) => *index,
                        _ => unreachable!("checked above"),
                    }
                } else if self.seen_tools.contains(&id) {
                    // The whole call again, after it was complete: already sent.
                    return out;
                } else {
                    self.flush_text(&mut out);
                    let index = self.open_new(&mut out);
                    self.seen_tools.insert(id.clone());
                    self.tool_calls += 1;
                    self.output_chars += name.len();
                    out.push(StreamEvent::ToolCallStart { index, id: id.clone(), name });
                    self.open = Some(Open::Tool { index, id });
                    index
                };
                if !input.is_empty() {
                    self.output_chars += input.len();
                    out.push(StreamEvent::ToolCallDelta { index, arguments: input });
                }
                if stop {
                    self.close(&mut out);
                }
            }
            KiroEvent::Usage { input_tokens, output_tokens } => {
                self.usage = (input_tokens.or(self.usage.0), output_tokens.or(self.usage.1));
            }
            KiroEvent::Stop { reason } => self.stop_reason = reason.or(self.stop_reason.take()),
            KiroEvent::Error { kind, message } => {
                self.flush_text(&mut out);
                self.close(&mut out);
                self.ended = true;
                out.push(StreamEvent::Error(error_info(&kind, &message)));
            }
            KiroEvent::Ignored => {}
        }
        out
    }

    /// The stream ended cleanly: close what is open, usage, stop reason, done.
    pub fn finish(&mut self) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        self.start(&mut out);
        self.flush_text(&mut out);
        self.close(&mut out);
        self.ended = true;
        out.push(StreamEvent::Usage(Usage {
            input_tokens: self.usage.0.unwrap_or_else(|| estimate(self.input_chars)),
            output_tokens: self.usage.1.unwrap_or_else(|| estimate(self.output_chars)),
            ..Usage::default()
        }));
        let stop_reason = if self.tool_calls > 0 {
            StopReason::ToolUse
        } else {
            match self.stop_reason.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("max_tokens" | "length") => StopReason::MaxTokens,
                Some("stop_sequence") => StopReason::StopSequence,
                Some("tool_use") => StopReason::ToolUse,
                Some("content_filtered" | "content_filter" | "guardrail_intervened") => StopReason::ContentFilter,
                _ => StopReason::EndTurn,
            }
        };
        out.push(StreamEvent::Finish { stop_reason });
        out.push(StreamEvent::Done);
        out
    }
}

/// Neutral stream events folded into one whole response; the first error wins.
#[derive(Default)]
pub struct Fold {
    response: Option<ChatResponse>,
    error: Option<ErrorInfo>,
}

impl Fold {
    pub fn absorb(&mut self, events: Vec<StreamEvent>) {
        for event in events {
            if self.error.is_some() {
                return;
            }
            let response = self.response.get_or_insert_with(|| ChatResponse {
                id: String::new(),
                model: String::new(),
                content: Vec::new(),
                stop_reason: None,
                usage: Usage::default(),
            });
            match event {
                StreamEvent::Start { id, model } => {
                    response.id = id;
                    response.model = model;
                }
                StreamEvent::TextStart { .. } => response.content.push(Part::Text(String::new())),
                StreamEvent::ThinkingStart { .. } => {
                    response.content.push(Part::Thinking { text: String::new(), signature: None })
                }
                StreamEvent::ToolCallStart { id, name, .. } => {
                    response.content.push(Part::ToolCall { id, name, arguments: String::new() })
                }
                StreamEvent::TextDelta { text: more, .. } | StreamEvent::ThinkingDelta { text: more, .. } => {
                    match response.content.last_mut() {
                        Some(Part::Text(text) | Part::Thinking { text, .. }) => text.push_str(&more),
                        _ => response.content.push(Part::Text(more)),
                    }
                }
                StreamEvent::ToolCallDelta { arguments: more, .. } => {
                    if let Some(Part::ToolCall { arguments, .. }) = response.content.last_mut() {
                        arguments.push_str(&more);
                    }
                }
                StreamEvent::Usage(usage) => response.usage = usage,
                StreamEvent::Finish { stop_reason } => response.stop_reason = Some(stop_reason),
                StreamEvent::Error(error) => self.error = Some(error),
                StreamEvent::ThinkingSignature { .. } | StreamEvent::BlockStop { .. } | StreamEvent::Done => {}
            }
        }
    }

    /// The whole response, or the error the stream ended with.
    pub fn finish(self) -> Result<ChatResponse, ErrorInfo> {
        match (self.error, self.response) {
            (Some(error), _) => Err(error),
            (None, Some(response)) => Ok(response),
            (None, None) => Err(ErrorInfo {
                status: 502,
                kind: "server_error".into(),
                message: "Kiro answered with an empty event stream".into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(pieces: &[&str], thinking: bool) -> Vec<Segment> {
        let mut scanner = Scanner { parse_thinking: thinking, ..Scanner::default() };
        let mut out = Vec::new();
        for piece in pieces {
            scanner.push(piece, &mut out);
        }
        scanner.flush(&mut out);
        out
    }

    fn text(s: &str) -> Segment {
        Segment::Text(s.into())
    }

    #[test]
    fn thinking_tags_split_anywhere_become_thinking() {
        let whole = "<thinking>plan it</thinking>\n\nThe answer.";
        let want = vec![Segment::Thinking("plan it".into()), text("The answer.")];
        for cut in 0..=whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(scan(&[a, b], true), want, "cut at {cut}");
        }
        assert_eq!(scan(&[whole], false), vec![text(whole)], "without thinking the tags are text");
    }

    #[test]
    fn inline_calls_are_parsed_and_near_misses_stay_text() {
        let whole = r#"Let me look. [Called read_file with args: {"path": "a]b.txt", "n": {"x": 1}}] done"#;
        let want = vec![
            text("Let me look. "),
            Segment::Call { name: "read_file".into(), arguments: r#"{"path":"a]b.txt","n":{"x":1}}"#.into() },
            text(" done"),
        ];
        for cut in 0..=whole.len() {
            let (a, b) = whole.split_at(cut);
            assert_eq!(scan(&[a, b], false), want, "cut at {cut}");
        }
        for plain in
            ["[Called it a day]", "[Called x with args: not json]", "a [Called x with args: {\"a\":1}", "[Call"]
        {
            assert_eq!(scan(&[plain], false), vec![text(plain)], "{plain}");
        }
    }

    #[test]
    fn partial_markers_are_the_longest_proper_prefixes() {
        assert_eq!(partial_marker("abc<thin", &[THINK_OPEN, CALL_OPEN]), 5);
        assert_eq!(partial_marker("abc[", &[THINK_OPEN, CALL_OPEN]), 1);
        assert_eq!(partial_marker("abc<thinking>", &[THINK_OPEN]), 0, "a whole marker is not partial");
        assert_eq!(partial_marker("abc", &[THINK_OPEN, CALL_OPEN]), 0);
    }

    #[test]
    fn tool_fragments_join_until_stop_and_repeats_are_dropped() {
        let mut builder = ResponseBuilder::new("msg_1".into(), "m".into(), 40, false);
        let mut events = Vec::new();
        let tool =
            |input: &str, stop| KiroEvent::ToolUse { id: "t1".into(), name: "f".into(), input: input.into(), stop };
        for event in [
            KiroEvent::Text { content: "hi".into(), tool_uses: vec![] },
            tool("{\"a\":", false),
            tool("1}", false),
            tool("", true),
            tool("{\"a\":1}", true),
            KiroEvent::Text { content: String::new(), tool_uses: vec![("t1".into(), "f".into(), "{}".into())] },
        ] {
            events.extend(builder.push(event));
        }
        events.extend(builder.finish());
        let mut fold = Fold::default();
        fold.absorb(events);
        let response = fold.finish().unwrap();
        assert_eq!(
            response.content,
            vec![
                Part::Text("hi".into()),
                Part::ToolCall { id: "t1".into(), name: "f".into(), arguments: "{\"a\":1}".into() }
            ]
        );
        assert_eq!(response.stop_reason, Some(StopReason::ToolUse));
        assert_eq!(response.usage.input_tokens, 10, "40 chars / 4");
        assert!(response.usage.output_tokens > 0);
    }

    #[test]
    fn reported_usage_wins_over_the_estimate_and_errors_end_the_message() {
        let mut builder = ResponseBuilder::new("msg_1".into(), "m".into(), 400, false);
        let mut events = builder.push(KiroEvent::Usage { input_tokens: Some(7), output_tokens: Some(3) });
        events.extend(builder.finish());
        let mut fold = Fold::default();
        fold.absorb(events);
        assert_eq!(fold.finish().unwrap().usage.output_tokens, 3);

        let mut builder = ResponseBuilder::new("msg_1".into(), "m".into(), 4, false);
        let events = builder.push(KiroEvent::Error { kind: "ThrottlingException".into(), message: "slow".into() });
        assert!(builder.finish().is_empty(), "nothing follows an error");
        let mut fold = Fold::default();
        fold.absorb(events);
        let error = fold.finish().unwrap_err();
        assert_eq!((error.status, error.kind.as_str()), (429, "rate_limit"));
        assert_eq!(error.message, "Kiro answered ThrottlingException: slow");
    }
}
