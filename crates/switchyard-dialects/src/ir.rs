//! The neutral form every dialect translates to and from.
//!
//! It holds what the four dialects share — messages, text, images, tool calls and results,
//! reasoning, stop reasons, usage — and nothing dialect-specific. A field one dialect has and
//! the others cannot express is dropped in translation, on purpose: the pair of dialects that
//! can carry it talks pass-through instead.

use serde_json::Value;

/// Why a translation failed. Messages name the offending field (`messages[2].content`), so a
/// client gets a precise 400 in its own dialect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    /// The input is not valid for its own dialect (missing/ill-typed field).
    #[error("invalid request: {field}: {message}")]
    InvalidField { field: String, message: String },
    /// Valid input the target dialect cannot express.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Malformed upstream data (a stream event or body that does not parse as its dialect).
    #[error("malformed upstream data: {0}")]
    Upstream(String),
}

impl TranslateError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField { field: field.into(), message: message.into() }
    }

    /// A failed typed parse of a client body, as `InvalidField`: syntax errors name the body and
    /// their line/column; type errors name the path of the offending value
    /// (`messages[2].content[0].source.data`), found from the position serde_json reports.
    pub fn from_json(body: &[u8], error: &serde_json::Error) -> Self {
        let text = error.to_string();
        let position = format!(" at line {} column {}", error.line(), error.column());
        let message = text.strip_suffix(&position).unwrap_or(&text).to_owned();
        if !error.is_data() {
            return Self::field("body", format!("invalid JSON: {text}"));
        }
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Self::field("body", "expected a JSON object");
        }
        let mut path = json_path_at(body, error.line(), error.column());
        // serde reports a missing field at the end of the object that lacks it.
        if let Some(missing) = message.strip_prefix("missing field `").and_then(|m| m.split('`').next()) {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(missing);
        }
        Self::field(if path.is_empty() { "body".to_owned() } else { path }, message)
    }
}

/// The path (`a.b[2].c`) of the value being read when a parser stopped at `line`/`column`
/// (1-based line, bytes consumed on that line): a small scan of the JSON up to that point.
fn json_path_at(body: &[u8], line: usize, column: usize) -> String {
    enum Frame {
        Object { key: Option<String>, expect_key: bool },
        Array { index: usize },
    }
    let line_start = if line <= 1 {
        0
    } else {
        body.iter().enumerate().filter(|(_, b)| **b == b'\n').nth(line - 2).map_or(body.len(), |(i, _)| i + 1)
    };
    let end = (line_start + column).min(body.len());
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < end {
        match body[i] {
            b'{' => stack.push(Frame::Object { key: None, expect_key: true }),
            b'[' => stack.push(Frame::Array { index: 0 }),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object { key, expect_key }) => {
                    *key = None;
                    *expect_key = true;
                }
                Some(Frame::Array { index }) => *index += 1,
                None => {}
            },
            b':' => {
                if let Some(Frame::Object { expect_key, .. }) = stack.last_mut() {
                    *expect_key = false;
                }
            }
            b'"' => {
                let start = i;
                i += 1;
                while i < body.len() && body[i] != b'"' {
                    i += if body[i] == b'\\' { 2 } else { 1 };
                }
                if let Some(Frame::Object { key, expect_key: true }) = stack.last_mut() {
                    let raw = &body[start..(i + 1).min(body.len())];
                    *key = Some(
                        serde_json::from_slice::<String>(raw)
                            .unwrap_or_else(|_| String::from_utf8_lossy(raw).trim_matches('"').to_owned()),
                    );
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut path = String::new();
    for frame in &stack {
        match frame {
            Frame::Object { key: Some(key), .. } => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Frame::Object { key: None, .. } => {}
            Frame::Array { index } => path.push_str(&format!("[{index}]")),
        }
    }
    path
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
    /// The result of a tool call, sent back by the client.
    Tool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ImageSource {
    /// Inline bytes, base64-encoded, with their media type (`image/png`).
    Base64 { media_type: String, data: String },
    /// A URL the upstream fetches itself.
    Url(String),
}

/// Whether `media_type` is an image type every dialect can carry: `image/<subtype>`, the
/// subtype made of RFC 6838 name characters (so it survives a data URL and each wire format).
pub fn is_image_media_type(media_type: &str) -> bool {
    let Some(subtype) = media_type.get(..6).filter(|t| t.eq_ignore_ascii_case("image/")).map(|_| &media_type[6..])
    else {
        return false;
    };
    !subtype.is_empty() && subtype.chars().all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Text(String),
    Image(ImageSource),
    /// Model reasoning. `signature` (Anthropic) / `thoughtSignature` (Gemini) / encrypted content
    /// (Responses) must travel back unchanged in multi-turn conversations with the same upstream.
    Thinking {
        text: String,
        signature: Option<String>,
    },
    /// A call the model asked for. `arguments` is the JSON text of the arguments object.
    ToolCall {
        id: String,
        name: String,
        arguments: String,
    },
    /// The client's answer to a call, matched by `call_id`.
    ToolResult {
        call_id: String,
        content: Vec<Part>,
        is_error: bool,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ToolDefinition {
    pub name: String,
    pub description: Option<String>,
    /// JSON Schema of the arguments object.
    pub parameters: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    Auto,
    None,
    /// Some tool must be called.
    Required,
    /// This tool must be called.
    Tool(String),
}

/// Reasoning controls; dialects express them differently (effort levels vs token budgets).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reasoning {
    /// `minimal` | `low` | `medium` | `high` (OpenAI style); `none` disables.
    pub effort: Option<String>,
    /// Token budget (Anthropic `budget_tokens`, Gemini `thinkingBudget`).
    pub budget_tokens: Option<i64>,
    /// Ask for reasoning summaries/thoughts in the output.
    pub include_thoughts: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    /// System instructions, in order.
    pub system: Vec<String>,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolDefinition>,
    pub tool_choice: Option<ToolChoice>,
    pub max_output_tokens: Option<i64>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub stop: Vec<String>,
    pub stream: bool,
    pub reasoning: Option<Reasoning>,
    /// `metadata.user_id` / `user`: an end-user id for abuse tracking.
    pub user: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    EndTurn,
    MaxTokens,
    StopSequence,
    ToolUse,
    /// Safety filter or model refusal.
    ContentFilter,
    /// The upstream failed mid-way (stream `error` / `response.failed`).
    Error,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// All prompt tokens, including cached ones.
    pub input_tokens: i64,
    /// Completion tokens, including reasoning tokens.
    pub output_tokens: i64,
    /// Prompt tokens served from cache (read).
    pub cached_input_tokens: i64,
    /// Prompt tokens written to cache (Anthropic `cache_creation_input_tokens`).
    pub cache_creation_tokens: i64,
    pub reasoning_tokens: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    pub id: String,
    pub model: String,
    /// Output parts in order (text, thinking, tool calls).
    pub content: Vec<Part>,
    pub stop_reason: Option<StopReason>,
    pub usage: Usage,
}

/// An upstream error in neutral terms, so each dialect can phrase it its own way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    /// HTTP status to answer with (or that the upstream used).
    pub status: u16,
    /// Category: `invalid_request`, `authentication`, `permission`, `not_found`, `rate_limit`,
    /// `overloaded`, `server_error`, `timeout`.
    pub kind: String,
    pub message: String,
}

impl ErrorInfo {
    /// The category an HTTP status falls in, for bodies that do not say.
    pub fn kind_for_status(status: u16) -> &'static str {
        match status {
            401 => "authentication",
            402 | 403 => "permission",
            404 => "not_found",
            408 | 504 => "timeout",
            429 => "rate_limit",
            503 | 529 => "overloaded",
            400..=499 => "invalid_request",
            _ => "server_error",
        }
    }

    /// The HTTP status to answer with for a category (errors that arrive without one, mid-stream).
    pub fn status_for_kind(kind: &str) -> u16 {
        match kind {
            "invalid_request" => 400,
            "authentication" => 401,
            "permission" => 403,
            "not_found" => 404,
            "rate_limit" => 429,
            "overloaded" => 503,
            "timeout" => 504,
            _ => 500,
        }
    }
}

/// One step of a streamed response. Blocks are numbered by `index` in output order; a decoder
/// opens each block before its deltas and closes it after.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// First event: response id and model.
    Start {
        id: String,
        model: String,
    },
    TextStart {
        index: usize,
    },
    TextDelta {
        index: usize,
        text: String,
    },
    ThinkingStart {
        index: usize,
    },
    ThinkingDelta {
        index: usize,
        text: String,
    },
    /// The reasoning block's signature, sent whole (Anthropic `signature_delta`).
    ThinkingSignature {
        index: usize,
        signature: String,
    },
    ToolCallStart {
        index: usize,
        id: String,
        name: String,
    },
    /// A fragment of the arguments JSON text; fragments concatenate to the full arguments.
    ToolCallDelta {
        index: usize,
        arguments: String,
    },
    BlockStop {
        index: usize,
    },
    /// Running or final usage; later values replace earlier ones.
    Usage(Usage),
    /// The model stopped; usage may follow.
    Finish {
        stop_reason: StopReason,
    },
    /// The upstream failed mid-stream: the client must see an error, never a silent truncation.
    Error(ErrorInfo),
    /// Last event of a successful stream.
    Done,
}

/// Turns one dialect's upstream stream (its SSE events, already split) into neutral events.
pub trait StreamDecoder: Send {
    /// `event` is the SSE `event:` name if any, `data` the `data:` payload.
    fn decode(&mut self, event: Option<&str>, data: &str) -> Result<Vec<StreamEvent>, TranslateError>;
    /// The upstream stream ended (EOF). Returns closing events, or an `Error` event when the
    /// stream ended before the dialect's normal end (a truncation).
    fn finish(&mut self) -> Vec<StreamEvent>;
}

/// Turns neutral events into one dialect's SSE frames (complete `event:`/`data:` text blocks,
/// each ending in a blank line), keeping whatever state that dialect's framing needs.
pub trait StreamEncoder: Send {
    fn encode(&mut self, event: &StreamEvent) -> Vec<String>;
}
