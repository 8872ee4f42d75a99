//! Token usage as each dialect reports it, read without translating the answer: from a whole
//! answer body ([`from_body`]) and from single stream events ([`from_event`], folded over a
//! stream by [`StreamUsage`]). Same-dialect traffic is relayed as bytes, so [`may_carry_usage`]
//! is the byte search that picks the few events worth parsing.
//!
//! Counts come out in the neutral [`Usage`]: input includes cached and cache-written tokens,
//! output includes reasoning tokens, whatever the dialect's own convention (Anthropic's
//! `input_tokens` excludes cache reads and writes; the others include them).
//!
//! When an upstream reports nothing, the estimate is [`CHARS_PER_TOKEN`] characters per token
//! ([`estimate_tokens`]) of the request's and answer's text ([`request_chars`],
//! [`response_chars`]), the same rule as cross-dialect token counting.

use memchr::memmem;
use serde::Deserialize;

use crate::Dialect;
use crate::ir::{ChatRequest, ChatResponse, Part, Usage};
use crate::{anthropic, gemini, openai_chat, openai_responses};

/// Characters per token of the local estimate.
pub const CHARS_PER_TOKEN: usize = 4;

/// Tokens for `chars` characters of text (rounded up).
pub fn estimate_tokens(chars: usize) -> u64 {
    chars.div_ceil(CHARS_PER_TOKEN) as u64
}

/// Characters of text a request sends: system, messages (text, reasoning, tool calls and
/// results; images count nothing) and tool definitions.
pub fn request_chars(request: &ChatRequest) -> usize {
    let system = request.system.iter().map(String::len).sum::<usize>();
    let messages = request.messages.iter().map(|m| parts_chars(&m.content)).sum::<usize>();
    let tools = request
        .tools
        .iter()
        .map(|t| t.name.len() + t.description.as_deref().map_or(0, str::len) + t.parameters.to_string().len())
        .sum::<usize>();
    system + messages + tools
}

/// Characters of text an answer holds.
pub fn response_chars(response: &ChatResponse) -> usize {
    parts_chars(&response.content)
}

fn parts_chars(parts: &[Part]) -> usize {
    parts
        .iter()
        .map(|part| match part {
            Part::Text(text) => text.len(),
            Part::Thinking { text, .. } => text.len(),
            Part::ToolCall { name, arguments, .. } => name.len() + arguments.len(),
            Part::ToolResult { content, .. } => parts_chars(content),
            Part::Image(_) => 0,
        })
        .sum()
}

/// Whether this stream event (raw bytes or its data) may hold usage: a byte search for the
/// dialect's usage key followed by an object (`"usage":null`, which some vendors put on every
/// chunk, does not count), no parsing. False positives only cost a parse.
pub fn may_carry_usage(dialect: Dialect, bytes: &[u8]) -> bool {
    let key: &[u8] = match dialect {
        Dialect::Gemini => b"\"usageMetadata\"",
        Dialect::OpenAiChat | Dialect::OpenAiResponses | Dialect::AnthropicMessages => b"\"usage\"",
    };
    memmem::find_iter(bytes, key).any(|at| {
        let mut rest = bytes[at + key.len()..].iter().copied().skip_while(u8::is_ascii_whitespace);
        rest.next() == Some(b':') && rest.find(|b| !b.is_ascii_whitespace()) == Some(b'{')
    })
}

/// The usage a whole (non-stream) answer reports; `None` when it reports none (or is not JSON).
pub fn from_body(dialect: Dialect, body: &[u8]) -> Option<Usage> {
    match dialect {
        Dialect::OpenAiChat => {
            serde_json::from_slice::<ChatEnvelope>(body).ok()?.usage.map(|u| u.to_ir()).filter(has_counts)
        }
        Dialect::OpenAiResponses => {
            let envelope = serde_json::from_slice::<ResponsesEnvelope>(body).ok()?;
            let usage = envelope.usage.or(envelope.response.and_then(|r| r.usage))?;
            Some(openai_responses::usage_to_ir(&usage)).filter(has_counts)
        }
        Dialect::AnthropicMessages => {
            let usage = serde_json::from_slice::<AnthropicEnvelope>(body).ok()?.usage?;
            Some(anthropic::Counters::default().with(&usage).to_ir()).filter(has_counts)
        }
        Dialect::Gemini => gemini_usage(serde_json::from_slice::<GeminiEnvelope>(body).ok()?),
    }
}

/// What one stream event says about usage.
#[derive(Debug, Clone)]
pub enum EventUsage {
    /// The whole running count so far (OpenAI Chat, Responses, Gemini).
    Total(Usage),
    /// Anthropic's partial counts: the fields present replace earlier ones (`message_start`
    /// carries the input, `message_delta` the output); [`StreamUsage`] merges them.
    Partial(AnthropicPartial),
}

/// The counters one Anthropic event carried, in Anthropic's own terms (cache reads and writes
/// apart from `input_tokens`), so they can only be turned neutral once merged.
#[derive(Debug, Clone)]
pub struct AnthropicPartial(anthropic::WireUsage);

/// The usage one stream event's `data` carries, if any.
pub fn from_event(dialect: Dialect, data: &[u8]) -> Option<EventUsage> {
    match dialect {
        Dialect::OpenAiChat => {
            let usage = serde_json::from_slice::<ChatEnvelope>(data).ok()?.usage?.to_ir();
            has_counts(&usage).then_some(EventUsage::Total(usage))
        }
        Dialect::OpenAiResponses => {
            let envelope = serde_json::from_slice::<ResponsesEnvelope>(data).ok()?;
            let usage = envelope.response.and_then(|r| r.usage).or(envelope.usage)?;
            Some(EventUsage::Total(openai_responses::usage_to_ir(&usage)))
        }
        Dialect::AnthropicMessages => {
            let event = serde_json::from_slice::<AnthropicEvent>(data).ok()?;
            let usage = event.message.and_then(|m| m.usage).or(event.usage)?;
            Some(EventUsage::Partial(AnthropicPartial(usage)))
        }
        Dialect::Gemini => gemini_usage(serde_json::from_slice::<GeminiEnvelope>(data).ok()?).map(EventUsage::Total),
    }
}

/// A stream's usage so far, folded event by event. Feed it only the events
/// [`may_carry_usage`] picks; the rest cannot change it.
#[derive(Debug, Clone)]
pub struct StreamUsage {
    dialect: Dialect,
    anthropic: anthropic::Counters,
    latest: Option<Usage>,
}

impl StreamUsage {
    pub fn new(dialect: Dialect) -> Self {
        Self { dialect, anthropic: anthropic::Counters::default(), latest: None }
    }

    /// One complete event's `data`; returns whether it changed the usage.
    pub fn event(&mut self, data: &[u8]) -> bool {
        if !may_carry_usage(self.dialect, data) {
            return false;
        }
        match from_event(self.dialect, data) {
            Some(EventUsage::Total(usage)) => self.latest = Some(usage),
            Some(EventUsage::Partial(AnthropicPartial(usage))) => {
                self.anthropic = self.anthropic.with(&usage);
                self.latest = Some(self.anthropic.to_ir());
            }
            None => return false,
        }
        true
    }

    /// The latest usage; `None` when no event reported one.
    pub fn usage(&self) -> Option<Usage> {
        self.latest
    }
}

fn has_counts(usage: &Usage) -> bool {
    *usage != Usage::default()
}

fn gemini_usage(envelope: GeminiEnvelope) -> Option<Usage> {
    // Code Assist wraps each answer in `{"response": ...}`.
    let metadata = envelope.usage_metadata.or(envelope.response.and_then(|r| r.usage_metadata))?;
    metadata.has_counts().then(|| gemini::usage_to_ir(&metadata))
}

// Envelopes that read the usage and skip everything else of an answer or event.

#[derive(Deserialize)]
struct ChatEnvelope {
    #[serde(default)]
    usage: Option<openai_chat::WireUsage>,
}

#[derive(Deserialize)]
struct ResponsesEnvelope {
    #[serde(default)]
    usage: Option<openai_responses::InUsage>,
    /// Stream events (`response.completed`, `.incomplete`, `.failed`) carry the response.
    #[serde(default)]
    response: Option<ResponsesInner>,
}

#[derive(Deserialize)]
struct ResponsesInner {
    #[serde(default)]
    usage: Option<openai_responses::InUsage>,
}

#[derive(Deserialize)]
struct AnthropicEnvelope {
    #[serde(default)]
    usage: Option<anthropic::WireUsage>,
}

#[derive(Deserialize)]
struct AnthropicEvent {
    /// `message_start` carries the message with its input usage.
    #[serde(default)]
    message: Option<AnthropicEnvelope>,
    /// `message_delta` carries the usage itself.
    #[serde(default)]
    usage: Option<anthropic::WireUsage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeminiEnvelope {
    #[serde(default)]
    usage_metadata: Option<gemini::UsageMetadata>,
    #[serde(default)]
    response: Option<GeminiInner>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeminiInner {
    #[serde(default)]
    usage_metadata: Option<gemini::UsageMetadata>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_search_looks_for_the_dialects_key_only() {
        assert!(may_carry_usage(Dialect::OpenAiChat, br#"{"usage":{"prompt_tokens":1}}"#));
        assert!(may_carry_usage(Dialect::OpenAiChat, b"{\"usage\" : \n {\"prompt_tokens\":1}}"));
        assert!(!may_carry_usage(Dialect::OpenAiChat, br#"{"choices":[{"delta":{"content":"usage"}}]}"#));
        assert!(!may_carry_usage(Dialect::OpenAiChat, br#"{"choices":[],"usage":null}"#));
        assert!(may_carry_usage(Dialect::Gemini, br#"{"usageMetadata":{}}"#));
        assert!(!may_carry_usage(Dialect::Gemini, br#"{"usage":{}}"#));
    }

    #[test]
    fn null_or_empty_usage_is_no_usage() {
        assert_eq!(from_body(Dialect::OpenAiChat, br#"{"usage":null}"#), None);
        assert!(from_event(Dialect::OpenAiChat, br#"{"usage":null,"choices":[]}"#).is_none());
        let created = br#"{"type":"response.created","response":{"usage":null}}"#;
        assert!(from_event(Dialect::OpenAiResponses, created).is_none());
        assert_eq!(from_body(Dialect::Gemini, br#"{"usageMetadata":{"trafficType":"ON_DEMAND"}}"#), None);
        assert_eq!(from_body(Dialect::AnthropicMessages, b"not json"), None);
    }

    #[test]
    fn the_estimate_rounds_up() {
        assert_eq!(estimate_tokens(0), 0);
        assert_eq!(estimate_tokens(1), 1);
        assert_eq!(estimate_tokens(8), 2);
        assert_eq!(estimate_tokens(9), 3);
    }
}
