//! The AWS event stream (`application/vnd.amazon.eventstream`) under Kiro's answers: frames
//! decoded with `aws_smithy_eventstream`'s [`MessageFrameDecoder`], which checks the prelude and
//! message CRCs, fed bytes as they arrive (a frame may be split across reads at any byte), and
//! read into [`KiroEvent`]s.

use aws_smithy_eventstream::frame::{DecodedFrame, MessageFrameDecoder};
use aws_smithy_types::event_stream::{HeaderValue, Message};
use bytes::{Buf, BytesMut};
use serde_json::Value;

/// A frame is at least its prelude (12 bytes) and message CRC (4).
const MIN_FRAME_BYTES: u32 = 16;
/// Kiro's frames are small; a length beyond this is a corrupt prelude, not a frame to wait for.
pub const MAX_FRAME_BYTES: u32 = 16 * 1024 * 1024;
const PRELUDE_BYTES: usize = 12;

/// Why the byte stream is no event stream (any more). Texts carry no payload bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A CRC mismatch or a malformed frame, as the decoder words it.
    #[error("Kiro event stream frame is corrupt: {0}")]
    Corrupt(String),
    #[error("Kiro event stream frame announces {0} bytes (allowed: 16 to 16 MiB)")]
    BadLength(u32),
    #[error("Kiro event stream ended in the middle of a frame ({0} bytes of it received)")]
    Truncated(usize),
}

/// Incremental frame reader.
#[derive(Default)]
pub struct FrameReader {
    buffer: BytesMut,
    decoder: MessageFrameDecoder,
    /// The decoder has taken the current frame's prelude out of `buffer`.
    in_frame: bool,
    /// Bytes of the current frame received so far (for the truncation message).
    frame_bytes: usize,
    failed: bool,
}

impl FrameReader {
    pub fn new() -> Self {
        Self::default()
    }

    /// The frames `chunk` completes, in order. After an error the reader stays failed.
    pub fn feed(&mut self, chunk: &[u8]) -> Result<Vec<Message>, FrameError> {
        if self.failed {
            return Ok(Vec::new());
        }
        self.buffer.extend_from_slice(chunk);
        self.frame_bytes += chunk.len();
        let mut frames = Vec::new();
        loop {
            if !self.in_frame {
                if self.buffer.len() < PRELUDE_BYTES {
                    break;
                }
                let length = (&self.buffer[..4]).get_u32();
                if !(MIN_FRAME_BYTES..=MAX_FRAME_BYTES).contains(&length) {
                    self.failed = true;
                    return Err(FrameError::BadLength(length));
                }
            }
            let before = self.buffer.len();
            match self.decoder.decode_frame(&mut self.buffer) {
                Ok(DecodedFrame::Complete(message)) => {
                    self.in_frame = false;
                    self.frame_bytes = self.buffer.len();
                    frames.push(message);
                }
                Ok(DecodedFrame::Incomplete) => {
                    if self.buffer.len() < before {
                        self.in_frame = true;
                    }
                    break;
                }
                Err(error) => {
                    self.failed = true;
                    return Err(FrameError::Corrupt(error.to_string()));
                }
            }
        }
        Ok(frames)
    }

    /// The stream ended: anything left over is a frame cut short.
    pub fn finish(&self) -> Result<(), FrameError> {
        if !self.failed && (self.in_frame || !self.buffer.is_empty()) {
            return Err(FrameError::Truncated(self.frame_bytes));
        }
        Ok(())
    }
}

/// One Kiro event, by `:event-type` (or, without one, by the payload's shape).
#[derive(Debug, Clone, PartialEq)]
pub enum KiroEvent {
    /// `assistantResponseEvent`: a piece of the answer's text, and complete tool uses if any.
    Text { content: String, tool_uses: Vec<(String, String, String)> },
    /// `toolUseEvent`: a fragment of one tool call's input (JSON text), `stop` on its last one.
    ToolUse { id: String, name: String, input: String, stop: bool },
    /// `supplementaryWebLinksEvent` with token counts (the only usage the spec knows).
    Usage { input_tokens: Option<i64>, output_tokens: Option<i64> },
    /// `messageStopEvent`.
    Stop { reason: Option<String> },
    /// An `exception` / `error` message, or a payload typed `error` / `exception`.
    Error { kind: String, message: String },
    /// Events that change nothing here (`followupPromptEvent`, metering, context usage, ...).
    Ignored,
}

fn header<'a>(message: &'a Message, name: &str) -> Option<&'a str> {
    message.headers().iter().find(|h| h.name().as_str() == name).and_then(|h| match h.value() {
        HeaderValue::String(value) => Some(value.as_str()),
        _ => None,
    })
}

fn text(value: &Value, key: &str) -> Option<String> {
    value.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// An input that arrives as a JSON text fragment or (in some answers) as an object.
fn input_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(fragment)) => fragment.clone(),
        Some(other) => other.to_string(),
    }
}

/// Reads one frame. A payload that is no JSON object is an error: the stream is not what Kiro
/// sends, and guessing would silently lose content.
pub fn event_of(message: &Message) -> Result<KiroEvent, FrameError> {
    let message_type = header(message, ":message-type").unwrap_or("event");
    let payload: Option<Value> = if message.payload().is_empty() {
        Some(Value::Object(Default::default()))
    } else {
        serde_json::from_slice(message.payload()).ok().filter(Value::is_object)
    };
    match message_type {
        "exception" => {
            let kind = header(message, ":exception-type").unwrap_or("UnknownException").to_owned();
            let message = payload.as_ref().and_then(|p| text(p, "message")).unwrap_or_else(|| kind.clone());
            return Ok(KiroEvent::Error { kind, message });
        }
        "error" => {
            let kind = header(message, ":error-code").unwrap_or("UnknownError").to_owned();
            let message = header(message, ":error-message").map(str::to_owned).unwrap_or_else(|| kind.clone());
            return Ok(KiroEvent::Error { kind, message });
        }
        _ => {}
    }
    let event_type = header(message, ":event-type");
    let Some(payload) = payload else {
        return Err(FrameError::Corrupt(format!(
            "the payload of the {} event is not a JSON object",
            event_type.unwrap_or("untyped")
        )));
    };
    let typed = text(&payload, "_type").or_else(|| text(&payload, "type"));
    if let Some(kind) = typed.filter(|t| t.eq_ignore_ascii_case("error") || t.eq_ignore_ascii_case("exception")) {
        let message = text(&payload, "message").unwrap_or_else(|| kind.clone());
        return Ok(KiroEvent::Error { kind, message });
    }
    let event_type = event_type.unwrap_or(if payload.get("toolUseId").is_some() {
        "toolUseEvent"
    } else if payload.get("content").is_some() {
        "assistantResponseEvent"
    } else {
        ""
    });
    Ok(match event_type {
        "assistantResponseEvent" => {
            let tool_uses = payload
                .get("toolUses")
                .and_then(Value::as_array)
                .map(|uses| {
                    uses.iter()
                        .filter_map(|u| {
                            Some((
                                text(u, "toolUseId")?,
                                text(u, "name").unwrap_or_default(),
                                input_text(u.get("input")),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default();
            KiroEvent::Text { content: text(&payload, "content").unwrap_or_default(), tool_uses }
        }
        "toolUseEvent" => KiroEvent::ToolUse {
            id: text(&payload, "toolUseId").unwrap_or_default(),
            name: text(&payload, "name").unwrap_or_default(),
            input: input_text(payload.get("input")),
            stop: payload.get("stop").and_then(Value::as_bool).unwrap_or(false),
        },
        "supplementaryWebLinksEvent"
            if payload.get("inputTokens").is_some() || payload.get("outputTokens").is_some() =>
        {
            KiroEvent::Usage {
                input_tokens: payload.get("inputTokens").and_then(Value::as_i64),
                output_tokens: payload.get("outputTokens").and_then(Value::as_i64),
            }
        }
        "messageStopEvent" => {
            KiroEvent::Stop { reason: text(&payload, "stopReason").or_else(|| text(&payload, "stop_reason")) }
        }
        _ => KiroEvent::Ignored,
    })
}
