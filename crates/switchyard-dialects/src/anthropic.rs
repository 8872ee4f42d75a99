//! Anthropic Messages API (`POST /v1/messages`) ↔ neutral form.
//!
//! Mapping choices (the other direction of each lives in the dialect that has the other shape):
//!
//! | neutral | Anthropic |
//! |---|---|
//! | `system` entries | `system` string, or one text block per entry |
//! | `Role::Tool` message | `tool_result` blocks at the start of a `user` message (merged with the user turn after it) |
//! | `ToolCall.arguments` (JSON text) | `tool_use.input` (object); unparsable or non-object arguments become `{}` |
//! | `ToolCall.id` / `ToolResult.call_id` | `tool_use.id` / `tool_use_id`, characters outside `[A-Za-z0-9_-]` replaced by `_` |
//! | `Thinking { signature: Some }` | `thinking` block; thinking without a signature (from another upstream) is not sent upstream |
//! | `redacted_thinking`, server-tool blocks | dropped (only meaningful to Anthropic itself, which gets same-dialect traffic as pass-through) |
//! | `document` / `search_result` / `file` image sources | `Unsupported` (user content that the neutral form cannot carry) |
//! | `ToolChoice::{Auto, Required, Tool, None}` | `tool_choice.type` `auto` / `any` / `tool` / `none` |
//! | stop `EndTurn/MaxTokens/StopSequence/ToolUse/ContentFilter` | `end_turn/max_tokens/stop_sequence/tool_use/refusal` (`pause_turn` → `EndTurn`, `model_context_window_exceeded` → `MaxTokens`) |
//! | `Usage.input_tokens` (total) | `input_tokens + cache_read_input_tokens + cache_creation_input_tokens` |
//!
//! Reasoning: `thinking.type=enabled` carries `budget_tokens`; `disabled` → effort `none`; `adaptive` → thoughts
//! on, effort from `output_config.effort`. Towards Anthropic an effort becomes a budget with
//! [`budget_for_effort`]; budgets are at least 1024 and below `max_tokens`. `max_tokens` is required upstream:
//! without one we send [`DEFAULT_MAX_TOKENS`] (plus the thinking budget when thinking is on). With thinking on
//! Anthropic rejects `temperature`/`top_p` changes and forced tool use, so those sampling fields are dropped,
//! and a forced `tool_choice` wins over thinking (thinking is dropped), as does a tool loop whose last
//! assistant turn has no signed thinking block to start with (Anthropic requires one). Newer Claude models reject
//! `temperature` together with `top_p`: only `temperature` is sent when both are set; both are clamped to
//! Anthropic's 0..=1 range.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ir::{
    self, ChatRequest, ChatResponse, ErrorInfo, ImageSource, Message, Part, Reasoning, Role, StopReason, StreamEvent,
    ToolChoice, ToolDefinition, TranslateError, Usage,
};
use crate::sse;
use crate::wire::{StringOr, WireErrorObject, body_text, parse_body, required, to_json};

/// `max_tokens` sent upstream when the client did not give one: every current Claude model accepts it.
pub const DEFAULT_MAX_TOKENS: i64 = 8192;
/// Anthropic's smallest accepted `thinking.budget_tokens`.
pub const MIN_THINKING_BUDGET: i64 = 1024;

/// Effort level → thinking budget (CPA's table, floored at Anthropic's minimum):
///
/// | effort | budget |
/// |---|---|
/// | `minimal`, `low` | 1024 |
/// | `medium`, `auto`, unknown | 8192 |
/// | `high` | 24576 |
/// | `xhigh`, `max` | 32768 |
///
/// Larger budgets need a model-aware clamp (output limits differ per model); that belongs to the provider.
pub fn budget_for_effort(effort: &str) -> i64 {
    match effort.trim().to_ascii_lowercase().as_str() {
        "minimal" | "low" => MIN_THINKING_BUDGET,
        "high" => 24576,
        "xhigh" | "max" => 32768,
        _ => 8192,
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// The `input` object of a tool call from its JSON text; models and clients sometimes produce
/// empty or broken arguments, which must not fail the whole request.
fn arguments_object(arguments: &str) -> Value {
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => value,
        _ => json!({}),
    }
}

// ---------------------------------------------------------------------------------------------
// Wire types (what clients and upstreams send)

#[derive(Deserialize)]
struct WireRequest {
    model: Option<String>,
    messages: Option<Vec<WireMessage>>,
    system: Option<StringOr<WireBlock>>,
    max_tokens: Option<i64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop_sequences: Option<Vec<String>>,
    stream: Option<bool>,
    tools: Option<Vec<WireTool>>,
    tool_choice: Option<WireToolChoice>,
    thinking: Option<WireThinking>,
    output_config: Option<WireOutputConfig>,
    metadata: Option<WireMetadata>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum WireRole {
    User,
    Assistant,
}

#[derive(Deserialize)]
struct WireMessage {
    role: WireRole,
    content: StringOr<WireBlock>,
}

/// Every content block kind in one flat struct, so each kind's required fields are checked with
/// their own path (an internally tagged enum would report errors at the end of the block).
#[derive(Deserialize, Default)]
#[serde(default)]
struct WireBlock {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    source: Option<WireSource>,
    id: Option<String>,
    name: Option<String>,
    input: Option<Value>,
    tool_use_id: Option<String>,
    content: Option<StringOr<WireBlock>>,
    is_error: Option<bool>,
    thinking: Option<String>,
    signature: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireSource {
    #[serde(rename = "type")]
    kind: String,
    media_type: Option<String>,
    data: Option<String>,
    url: Option<String>,
}

#[derive(Deserialize)]
struct WireTool {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    description: Option<String>,
    input_schema: Option<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum WireToolChoiceKind {
    Auto,
    Any,
    Tool,
    None,
}

#[derive(Deserialize)]
struct WireToolChoice {
    #[serde(rename = "type")]
    kind: WireToolChoiceKind,
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum WireThinkingKind {
    Enabled,
    Disabled,
    Adaptive,
}

#[derive(Deserialize)]
struct WireThinking {
    #[serde(rename = "type")]
    kind: WireThinkingKind,
    budget_tokens: Option<i64>,
}

#[derive(Deserialize)]
struct WireOutputConfig {
    effort: Option<String>,
}

#[derive(Deserialize)]
struct WireMetadata {
    user_id: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireResponse {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: String,
    model: String,
    content: Vec<WireBlock>,
    stop_reason: Option<String>,
    usage: WireUsage,
}

/// Usage counters as Anthropic reports them; `None` = not in this event (stream events carry
/// partial usage, and present fields replace earlier ones).
#[derive(Deserialize, Default, Clone, Debug)]
#[serde(default)]
pub(crate) struct WireUsage {
    input_tokens: Option<i64>,
    output_tokens: Option<i64>,
    cache_creation_input_tokens: Option<i64>,
    cache_read_input_tokens: Option<i64>,
    output_tokens_details: Option<WireOutputDetails>,
}

#[derive(Deserialize, Default, Clone, Debug)]
#[serde(default)]
struct WireOutputDetails {
    thinking_tokens: Option<i64>,
}

// ---------------------------------------------------------------------------------------------
// Output types (what we send)

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutBlock<'a> {
    Text {
        text: &'a str,
    },
    Image {
        source: OutSource<'a>,
    },
    ToolUse {
        id: Cow<'a, str>,
        name: &'a str,
        input: Value,
    },
    ToolResult {
        tool_use_id: Cow<'a, str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        content: Vec<OutBlock<'a>>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutSource<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

#[derive(Serialize)]
struct OutMessage<'a> {
    role: &'static str,
    content: Vec<OutBlock<'a>>,
}

#[derive(Serialize)]
struct OutTool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: Value,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutToolChoice<'a> {
    Auto,
    Any,
    Tool { name: &'a str },
    None,
}

#[derive(Serialize)]
struct OutThinking {
    #[serde(rename = "type")]
    kind: &'static str,
    budget_tokens: i64,
}

#[derive(Serialize)]
struct OutMetadata<'a> {
    user_id: &'a str,
}

#[derive(Serialize)]
struct OutRequest<'a> {
    model: &'a str,
    max_tokens: i64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<OutBlock<'a>>,
    messages: Vec<OutMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<OutTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<OutToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<OutThinking>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<OutMetadata<'a>>,
}

#[derive(Serialize)]
struct OutUsage {
    input_tokens: i64,
    cache_creation_input_tokens: i64,
    cache_read_input_tokens: i64,
    output_tokens: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_tokens_details: Option<OutOutputDetails>,
}

#[derive(Serialize)]
struct OutOutputDetails {
    thinking_tokens: i64,
}

// ---------------------------------------------------------------------------------------------
// Requests

pub fn request_to_ir(body: &[u8]) -> Result<ChatRequest, TranslateError> {
    let wire: WireRequest = parse_body(body)?;
    let model = required(wire.model.filter(|m| !m.is_empty()), "model")?;
    let wire_messages = required(wire.messages, "messages")?;
    if wire_messages.is_empty() {
        return Err(TranslateError::field("messages", "must contain at least one message"));
    }

    let system = match wire.system {
        None => Vec::new(),
        Some(StringOr::Text(text)) => [text].into_iter().filter(|t| !t.is_empty()).collect(),
        Some(StringOr::Items(blocks)) => blocks
            .into_iter()
            .enumerate()
            .map(|(i, block)| {
                let path = format!("system[{i}]");
                if block.kind != "text" {
                    return Err(TranslateError::field(format!("{path}.type"), "system blocks must be `text`"));
                }
                required(block.text, &format!("{path}.text"))
            })
            .collect::<Result<_, _>>()?,
    };

    let mut messages = Vec::new();
    for (i, message) in wire_messages.into_iter().enumerate() {
        message_to_ir(message, &format!("messages[{i}]"), &mut messages)?;
    }

    let mut tools = Vec::new();
    for (i, tool) in wire.tools.unwrap_or_default().into_iter().enumerate() {
        // Server tools (`web_search_20250305`, …) run inside Anthropic; no other upstream has them.
        if tool.kind.as_deref().is_some_and(|kind| kind != "custom") {
            continue;
        }
        tools.push(ToolDefinition {
            name: required(tool.name, &format!("tools[{i}].name"))?,
            description: tool.description,
            parameters: required(tool.input_schema, &format!("tools[{i}].input_schema"))?,
        });
    }

    let tool_choice = match wire.tool_choice {
        None => None,
        Some(choice) => Some(match choice.kind {
            WireToolChoiceKind::Auto => ToolChoice::Auto,
            WireToolChoiceKind::Any => ToolChoice::Required,
            WireToolChoiceKind::None => ToolChoice::None,
            WireToolChoiceKind::Tool => ToolChoice::Tool(required(choice.name, "tool_choice.name")?),
        }),
    };

    let effort = wire.output_config.and_then(|config| config.effort);
    let reasoning = match wire.thinking {
        Some(thinking) => Some(match thinking.kind {
            WireThinkingKind::Enabled => Reasoning {
                effort,
                budget_tokens: Some(required(thinking.budget_tokens, "thinking.budget_tokens")?),
                include_thoughts: true,
            },
            WireThinkingKind::Disabled => {
                Reasoning { effort: Some("none".to_owned()), budget_tokens: None, include_thoughts: false }
            }
            WireThinkingKind::Adaptive => Reasoning { effort, budget_tokens: None, include_thoughts: true },
        }),
        // `output_config.effort` alone steers token spend without visible thinking.
        None => effort.map(|effort| Reasoning { effort: Some(effort), budget_tokens: None, include_thoughts: false }),
    };

    Ok(ChatRequest {
        model,
        system,
        messages,
        tools,
        tool_choice,
        max_output_tokens: wire.max_tokens,
        temperature: wire.temperature,
        top_p: wire.top_p,
        stop: wire.stop_sequences.unwrap_or_default(),
        stream: wire.stream.unwrap_or(false),
        reasoning,
        user: wire.metadata.and_then(|metadata| metadata.user_id),
    })
}

/// One Anthropic message becomes one or more neutral messages: `tool_result` blocks form
/// `Role::Tool` messages, the other blocks stay with the message's role, in order.
fn message_to_ir(message: WireMessage, path: &str, out: &mut Vec<Message>) -> Result<(), TranslateError> {
    let role = match message.role {
        WireRole::User => Role::User,
        WireRole::Assistant => Role::Assistant,
    };
    let first = out.len();
    let blocks = match message.content {
        StringOr::Text(text) => {
            out.push(Message { role, content: vec![Part::Text(text)] });
            return Ok(());
        }
        StringOr::Items(blocks) => blocks,
    };
    for (j, block) in blocks.into_iter().enumerate() {
        let Some(part) = block_to_part(block, &format!("{path}.content[{j}]"))? else { continue };
        let part_role = if matches!(part, Part::ToolResult { .. }) { Role::Tool } else { role };
        let this_message = out.len() > first;
        match out.last_mut() {
            Some(last) if this_message && last.role == part_role => last.content.push(part),
            _ => out.push(Message { role: part_role, content: vec![part] }),
        }
    }
    if out.len() == first {
        // Keep the turn (e.g. an assistant prefill of only dropped blocks) so roles still alternate.
        out.push(Message { role, content: Vec::new() });
    }
    Ok(())
}

/// A client content block → neutral part; `None` for blocks deliberately dropped.
fn block_to_part(block: WireBlock, path: &str) -> Result<Option<Part>, TranslateError> {
    Ok(Some(match block.kind.as_str() {
        "text" => Part::Text(required(block.text, &format!("{path}.text"))?),
        "image" => {
            Part::Image(image_to_ir(required(block.source, &format!("{path}.source"))?, &format!("{path}.source"))?)
        }
        "tool_use" => Part::ToolCall {
            id: required(block.id, &format!("{path}.id"))?,
            name: required(block.name, &format!("{path}.name"))?,
            arguments: block.input.unwrap_or_else(|| json!({})).to_string(),
        },
        "tool_result" => {
            let call_id = required(block.tool_use_id.filter(|id| !id.is_empty()), &format!("{path}.tool_use_id"))?;
            let content = match block.content {
                None => Vec::new(),
                Some(StringOr::Text(text)) => [text].into_iter().filter(|t| !t.is_empty()).map(Part::Text).collect(),
                Some(StringOr::Items(items)) => {
                    let mut parts = Vec::new();
                    for (k, item) in items.into_iter().enumerate() {
                        let item_path = format!("{path}.content[{k}]");
                        match block_to_part(item, &item_path)? {
                            Some(part @ (Part::Text(_) | Part::Image(_))) => parts.push(part),
                            Some(_) => {
                                return Err(TranslateError::field(
                                    format!("{item_path}.type"),
                                    "tool results hold text and images only",
                                ));
                            }
                            None => {}
                        }
                    }
                    parts
                }
            };
            Part::ToolResult { call_id, content, is_error: block.is_error.unwrap_or(false) }
        }
        "thinking" => Part::Thinking {
            text: block.thinking.unwrap_or_default(),
            signature: block.signature.filter(|s| !s.is_empty()),
        },
        "document" | "search_result" => {
            return Err(TranslateError::Unsupported(format!("{path}: `{}` blocks", block.kind)));
        }
        "" => return Err(TranslateError::field(format!("{path}.type"), "required")),
        // redacted_thinking, server tool calls/results and future kinds: only Anthropic reads them.
        _ => return Ok(None),
    }))
}

fn image_to_ir(source: WireSource, path: &str) -> Result<ImageSource, TranslateError> {
    match source.kind.as_str() {
        "base64" => {
            let media_type = required(source.media_type.filter(|m| !m.is_empty()), &format!("{path}.media_type"))?;
            // Only images are images: another type would reach an upstream as one and be refused.
            if !crate::ir::is_image_media_type(&media_type) {
                return Err(TranslateError::field(format!("{path}.media_type"), "must be an image type (image/...)"));
            }
            Ok(ImageSource::Base64 {
                media_type,
                data: required(source.data.filter(|d| !d.is_empty()), &format!("{path}.data"))?,
            })
        }
        "url" => Ok(ImageSource::Url(required(source.url.filter(|u| !u.is_empty()), &format!("{path}.url"))?)),
        "file" => Err(TranslateError::Unsupported(format!("{path}: file image sources"))),
        "" => Err(TranslateError::field(format!("{path}.type"), "required")),
        other => Err(TranslateError::field(format!("{path}.type"), format!("unknown image source type `{other}`"))),
    }
}

/// The thinking budget to send, if thinking is on (see [`budget_for_effort`]).
fn thinking_budget(reasoning: &Reasoning) -> Option<i64> {
    if reasoning.effort.as_deref().is_some_and(|e| e.eq_ignore_ascii_case("none")) {
        return None;
    }
    match reasoning.budget_tokens {
        Some(0) => None,
        // Negative = "dynamic" (Gemini's -1): let the effort, or a medium budget, decide.
        Some(budget) if budget > 0 => Some(budget.max(MIN_THINKING_BUDGET)),
        _ => match &reasoning.effort {
            Some(effort) => Some(budget_for_effort(effort)),
            None if reasoning.include_thoughts || reasoning.budget_tokens.is_some() => {
                Some(budget_for_effort("medium"))
            }
            None => None,
        },
    }
}

pub fn request_from_ir(request: &ChatRequest) -> Result<Value, TranslateError> {
    let mut messages: Vec<OutMessage> = Vec::new();
    for message in &request.messages {
        let role = match message.role {
            Role::Assistant => "assistant",
            Role::User | Role::Tool => "user",
        };
        let blocks: Vec<OutBlock> = message.content.iter().filter_map(part_to_block).collect();
        if blocks.is_empty() {
            continue; // Anthropic rejects empty turns; same-role neighbours merge below.
        }
        match messages.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => messages.push(OutMessage { role, content: blocks }),
        }
    }
    // A system-only OpenAI request (or one whose turns are all empty) has nothing to send:
    // Anthropic refuses an empty `messages`, so say so here as a 400 in the client's dialect.
    if messages.is_empty() {
        return Err(TranslateError::Unsupported(
            "the request has no message with content; Anthropic needs at least one".into(),
        ));
    }

    let tool_choice = if request.tools.is_empty() { None } else { request.tool_choice.as_ref() };
    let forced_tool = matches!(tool_choice, Some(ToolChoice::Required | ToolChoice::Tool(_)));
    // With thinking on, the assistant turn of an ongoing tool loop must start with its signed
    // thinking block; clients of other dialects never have one.
    let unsigned_tool_turn = messages.iter().rev().find(|m| m.role == "assistant").is_some_and(|m| {
        m.content.iter().any(|b| matches!(b, OutBlock::ToolUse { .. }))
            && !matches!(m.content.first(), Some(OutBlock::Thinking { .. }))
    });
    let mut budget =
        request.reasoning.as_ref().and_then(thinking_budget).filter(|_| !forced_tool && !unsigned_tool_turn);
    let max_tokens = match request.max_output_tokens.filter(|m| *m > 0) {
        Some(max) => {
            // The client's cap includes reasoning (OpenAI semantics): shrink the budget to fit.
            budget = budget.map(|b| b.min(max - 1)).filter(|b| *b >= MIN_THINKING_BUDGET);
            max
        }
        None => budget.map_or(DEFAULT_MAX_TOKENS, |b| b + DEFAULT_MAX_TOKENS),
    };
    let (temperature, top_p) = match (budget, request.temperature) {
        (Some(_), _) => (None, None),
        (None, Some(t)) => (Some(t.clamp(0.0, 1.0)), None),
        (None, None) => (None, request.top_p.map(|p| p.clamp(0.0, 1.0))),
    };

    let body = OutRequest {
        model: &request.model,
        max_tokens,
        system: request.system.iter().filter(|s| !s.is_empty()).map(|text| OutBlock::Text { text }).collect(),
        messages,
        temperature,
        top_p,
        stop_sequences: &request.stop,
        stream: request.stream,
        tools: request
            .tools
            .iter()
            .map(|tool| OutTool {
                name: &tool.name,
                description: tool.description.as_deref().filter(|d| !d.is_empty()),
                input_schema: match &tool.parameters {
                    Value::Object(_) => tool.parameters.clone(),
                    _ => json!({"type": "object", "properties": {}}),
                },
            })
            .collect(),
        tool_choice: tool_choice.map(|choice| match choice {
            ToolChoice::Auto => OutToolChoice::Auto,
            ToolChoice::None => OutToolChoice::None,
            ToolChoice::Required => OutToolChoice::Any,
            ToolChoice::Tool(name) => OutToolChoice::Tool { name },
        }),
        thinking: budget.map(|budget_tokens| OutThinking { kind: "enabled", budget_tokens }),
        metadata: request.user.as_deref().map(|user_id| OutMetadata { user_id }),
    };
    Ok(to_json(&body))
}

/// A neutral part as a block for an Anthropic upstream; `None` when Anthropic cannot take it.
fn part_to_block(part: &Part) -> Option<OutBlock<'_>> {
    Some(match part {
        Part::Text(text) if text.is_empty() => return None, // rejected by Anthropic
        Part::Text(text) => OutBlock::Text { text },
        Part::Image(image) => OutBlock::Image { source: source_out(image) },
        // Only Anthropic's own signed thinking is accepted back.
        Part::Thinking { text, signature: Some(signature) } => OutBlock::Thinking { thinking: text, signature },
        Part::Thinking { signature: None, .. } => return None,
        Part::ToolCall { id, name, arguments } => {
            OutBlock::ToolUse { id: tool_id(id), name, input: arguments_object(arguments) }
        }
        Part::ToolResult { call_id, content, is_error } => OutBlock::ToolResult {
            tool_use_id: tool_id(call_id),
            content: content
                .iter()
                .filter(|p| matches!(p, Part::Text(_) | Part::Image(_)))
                .filter_map(part_to_block)
                .collect(),
            is_error: *is_error,
        },
    })
}

/// Anthropic accepts tool ids matching `^[a-zA-Z0-9_-]+$`; other upstreams' ids (Kimi's
/// `functions.get_weather:0`) are mapped the same way in calls and results, so they still pair.
fn tool_id(id: &str) -> Cow<'_, str> {
    if id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        Cow::Borrowed(id)
    } else {
        Cow::Owned(id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect())
    }
}

fn source_out(image: &ImageSource) -> OutSource<'_> {
    match image {
        ImageSource::Base64 { media_type, data } => OutSource::Base64 { media_type, data },
        ImageSource::Url(url) => OutSource::Url { url },
    }
}

// ---------------------------------------------------------------------------------------------
// Whole responses

pub fn response_to_ir(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let wire: WireResponse =
        serde_json::from_slice(body).map_err(|e| TranslateError::Upstream(format!("anthropic response: {e}")))?;
    if wire.kind.as_deref() == Some("error") {
        return Err(TranslateError::Upstream(format!("anthropic response is an error: {}", body_text(body))));
    }
    let content = wire
        .content
        .into_iter()
        .filter_map(|block| match block.kind.as_str() {
            "text" => Some(Part::Text(block.text.unwrap_or_default())),
            "thinking" => Some(Part::Thinking {
                text: block.thinking.unwrap_or_default(),
                signature: block.signature.filter(|s| !s.is_empty()),
            }),
            "tool_use" => Some(Part::ToolCall {
                id: block.id.unwrap_or_default(),
                name: block.name.unwrap_or_default(),
                arguments: block.input.unwrap_or_else(|| json!({})).to_string(),
            }),
            _ => None,
        })
        .collect();
    Ok(ChatResponse {
        id: wire.id,
        model: wire.model,
        content,
        stop_reason: wire.stop_reason.as_deref().map(stop_reason_to_ir),
        usage: Counters::default().with(&wire.usage).to_ir(),
    })
}

pub fn response_from_ir(response: &ChatResponse) -> Value {
    let content: Vec<OutBlock> = response
        .content
        .iter()
        .filter_map(|part| match part {
            Part::Text(text) => Some(OutBlock::Text { text }),
            // Reasoning from other upstreams has no signature; the client still gets to see it.
            Part::Thinking { text, signature } => {
                Some(OutBlock::Thinking { thinking: text, signature: signature.as_deref().unwrap_or("") })
            }
            Part::ToolCall { id, name, arguments } => {
                Some(OutBlock::ToolUse { id: tool_id(id), name, input: arguments_object(arguments) })
            }
            Part::Image(_) | Part::ToolResult { .. } => None,
        })
        .collect();
    json!({
        "id": response.id,
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": to_json(&content),
        "stop_reason": stop_reason_from_ir(response.stop_reason.unwrap_or(StopReason::EndTurn)),
        "stop_sequence": null,
        "usage": to_json(&usage_out(&response.usage)),
    })
}

fn stop_reason_to_ir(reason: &str) -> StopReason {
    match reason {
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "tool_use" => StopReason::ToolUse,
        "refusal" => StopReason::ContentFilter,
        // end_turn, pause_turn (a server tool paused a long turn) and future reasons.
        _ => StopReason::EndTurn,
    }
}

fn stop_reason_from_ir(reason: StopReason) -> &'static str {
    match reason {
        StopReason::MaxTokens => "max_tokens",
        StopReason::StopSequence => "stop_sequence",
        StopReason::ToolUse => "tool_use",
        StopReason::ContentFilter => "refusal",
        // The failure itself travels as an `error` event.
        StopReason::EndTurn | StopReason::Error => "end_turn",
    }
}

/// Anthropic's usage counters; its `input_tokens` excludes cache reads and writes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    input: i64,
    output: i64,
    cache_read: i64,
    cache_creation: i64,
    thinking: i64,
}

impl Counters {
    /// Fields present in `usage` replace the current ones.
    pub(crate) fn with(mut self, usage: &WireUsage) -> Self {
        self.input = usage.input_tokens.unwrap_or(self.input);
        self.output = usage.output_tokens.unwrap_or(self.output);
        self.cache_read = usage.cache_read_input_tokens.unwrap_or(self.cache_read);
        self.cache_creation = usage.cache_creation_input_tokens.unwrap_or(self.cache_creation);
        if let Some(thinking) = usage.output_tokens_details.as_ref().and_then(|d| d.thinking_tokens) {
            self.thinking = thinking;
        }
        self
    }

    pub(crate) fn to_ir(self) -> Usage {
        Usage {
            input_tokens: self.input.saturating_add(self.cache_read).saturating_add(self.cache_creation),
            output_tokens: self.output,
            cached_input_tokens: self.cache_read,
            cache_creation_tokens: self.cache_creation,
            reasoning_tokens: self.thinking,
        }
    }
}

fn usage_out(usage: &Usage) -> OutUsage {
    OutUsage {
        input_tokens: (usage.input_tokens.saturating_sub(usage.cached_input_tokens))
            .saturating_sub(usage.cache_creation_tokens)
            .max(0),
        cache_creation_input_tokens: usage.cache_creation_tokens,
        cache_read_input_tokens: usage.cached_input_tokens,
        output_tokens: usage.output_tokens,
        output_tokens_details: (usage.reasoning_tokens > 0)
            .then_some(OutOutputDetails { thinking_tokens: usage.reasoning_tokens }),
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Anthropic error `type` → neutral kind.
fn kind_for_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "invalid_request_error" | "request_too_large" => "invalid_request",
        "authentication_error" => "authentication",
        "permission_error" | "billing_error" => "permission",
        "not_found_error" => "not_found",
        "rate_limit_error" => "rate_limit",
        "overloaded_error" => "overloaded",
        "timeout_error" => "timeout",
        "api_error" => "server_error",
        _ => return None,
    })
}

fn type_for_kind(kind: &str) -> &'static str {
    match kind {
        "invalid_request" => "invalid_request_error",
        "authentication" => "authentication_error",
        "permission" => "permission_error",
        "not_found" => "not_found_error",
        "rate_limit" => "rate_limit_error",
        "overloaded" => "overloaded_error",
        "timeout" => "timeout_error",
        _ => "api_error",
    }
}

/// The neutral error for an upstream error `status` (0 or 2xx: a mid-stream error) and its body.
/// A real HTTP status decides the kind; otherwise the body's error type does.
pub fn error_to_ir(status: u16, body: &[u8]) -> ErrorInfo {
    let error = WireErrorObject::from_body(body);
    error_info(status, error.kind.as_deref(), error.message, body)
}

fn error_info(status: u16, kind: Option<&str>, message: Option<String>, body: &[u8]) -> ErrorInfo {
    let kind = if status >= 400 {
        ErrorInfo::kind_for_status(status)
    } else {
        kind.and_then(kind_for_type).unwrap_or("server_error")
    };
    let status = if status >= 400 { status } else { ErrorInfo::status_for_kind(kind) };
    let message = message
        .filter(|m| !m.trim().is_empty())
        .or_else(|| Some(body_text(body)).filter(|t| !t.is_empty()))
        .unwrap_or_else(|| format!("upstream returned HTTP {status}"));
    ErrorInfo { status, kind: kind.to_owned(), message }
}

pub fn error_from_ir(error: &ErrorInfo) -> Value {
    json!({"type": "error", "error": {"type": type_for_kind(&error.kind), "message": error.message}})
}

/// The mid-stream error as an `event: error` frame; the official SDKs raise it as an API error.
pub fn stream_error_frame(error: &ErrorInfo) -> String {
    sse::frame(Some("error"), &error_from_ir(error).to_string())
}

// ---------------------------------------------------------------------------------------------
// Streams

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: WireStartMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: Box<WireBlock>,
    },
    ContentBlockDelta {
        index: usize,
        delta: WireDelta,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        #[serde(default)]
        delta: WireMessageDelta,
        #[serde(default)]
        usage: WireUsage,
    },
    MessageStop,
    Error {
        #[serde(default)]
        error: WireErrorObject,
    },
    /// `ping` and event types added later.
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireStartMessage {
    id: String,
    model: String,
    usage: WireUsage,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireMessageDelta {
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireDelta {
    TextDelta {
        text: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    SignatureDelta {
        signature: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    /// `citations_delta` and later kinds.
    #[serde(other)]
    Other,
}

fn truncated(what: &str) -> StreamEvent {
    StreamEvent::Error(ErrorInfo {
        status: 502,
        kind: "server_error".to_owned(),
        message: format!("upstream stream ended before {what} (truncated)"),
    })
}

/// Anthropic upstream events → neutral events. Block indexes are renumbered over the blocks
/// kept (redacted thinking and server-tool blocks are skipped).
#[derive(Debug, Default)]
pub struct Decoder {
    /// Anthropic block index → neutral index, `None` for a skipped block.
    blocks: HashMap<usize, Option<usize>>,
    /// The neutral blocks started and not yet stopped, with their kind: deltas of another kind,
    /// and deltas or stops of a block that is not open, are dropped (a malformed upstream must
    /// not make the encoders see a block closed twice or a text delta in a tool call).
    open: BTreeMap<usize, BlockKind>,
    next_index: usize,
    /// Tool blocks (neutral index) with no argument text yet: closed with `{}` so that the
    /// arguments are always a JSON object.
    tools_without_args: Vec<usize>,
    counters: Counters,
    stopped: bool,
    /// `message_stop` or `error` seen: nothing more is expected.
    ended: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Decoder {
    /// Stops the open neutral block `index` (a tool call that got no argument text gets `{}`);
    /// nothing for a block that is not open.
    fn close(&mut self, index: usize, out: &mut Vec<StreamEvent>) {
        if self.open.remove(&index).is_none() {
            return;
        }
        if let Some(position) = self.tools_without_args.iter().position(|i| *i == index) {
            self.tools_without_args.swap_remove(position);
            out.push(StreamEvent::ToolCallDelta { index, arguments: "{}".to_owned() });
        }
        out.push(StreamEvent::BlockStop { index });
    }
}

impl ir::StreamDecoder for Decoder {
    fn decode(&mut self, _event: Option<&str>, data: &str) -> Result<Vec<StreamEvent>, TranslateError> {
        if self.ended {
            return Ok(Vec::new());
        }
        let event: WireEvent =
            serde_json::from_str(data).map_err(|e| TranslateError::Upstream(format!("anthropic stream event: {e}")))?;
        let mut out = Vec::new();
        match event {
            WireEvent::MessageStart { message } => {
                self.counters = self.counters.with(&message.usage);
                out.push(StreamEvent::Start { id: message.id, model: message.model });
                out.push(StreamEvent::Usage(self.counters.to_ir()));
            }
            WireEvent::ContentBlockStart { index: wire_index, content_block: block } => {
                // A start that reuses an open block's wire index closes that block first.
                if let Some(&Some(previous)) = self.blocks.get(&wire_index) {
                    self.close(previous, &mut out);
                }
                let index = self.next_index;
                let kind = match block.kind.as_str() {
                    "text" => Some(BlockKind::Text),
                    "thinking" => Some(BlockKind::Thinking),
                    "tool_use" => Some(BlockKind::Tool),
                    _ => None,
                };
                if let Some(kind) = kind {
                    self.open.insert(index, kind);
                }
                let kept = match block.kind.as_str() {
                    "text" => {
                        out.push(StreamEvent::TextStart { index });
                        if let Some(text) = block.text.filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::TextDelta { index, text });
                        }
                        true
                    }
                    "thinking" => {
                        out.push(StreamEvent::ThinkingStart { index });
                        if let Some(text) = block.thinking.filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::ThinkingDelta { index, text });
                        }
                        if let Some(signature) = block.signature.filter(|s| !s.is_empty()) {
                            out.push(StreamEvent::ThinkingSignature { index, signature });
                        }
                        true
                    }
                    "tool_use" => {
                        out.push(StreamEvent::ToolCallStart {
                            index,
                            id: block.id.unwrap_or_default(),
                            name: block.name.unwrap_or_default(),
                        });
                        // The input normally streams as deltas and starts as `{}`.
                        match block.input.filter(|i| i.as_object().is_some_and(|o| !o.is_empty())) {
                            Some(input) => out.push(StreamEvent::ToolCallDelta { index, arguments: input.to_string() }),
                            None => self.tools_without_args.push(index),
                        }
                        true
                    }
                    _ => false,
                };
                if kept {
                    self.next_index += 1;
                }
                self.blocks.insert(wire_index, kept.then_some(index));
            }
            WireEvent::ContentBlockDelta { index, delta } => {
                if let Some(&Some(index)) = self.blocks.get(&index) {
                    let kind = self.open.get(&index).copied();
                    match delta {
                        WireDelta::TextDelta { text } if !text.is_empty() && kind == Some(BlockKind::Text) => {
                            out.push(StreamEvent::TextDelta { index, text })
                        }
                        WireDelta::ThinkingDelta { thinking }
                            if !thinking.is_empty() && kind == Some(BlockKind::Thinking) =>
                        {
                            out.push(StreamEvent::ThinkingDelta { index, text: thinking })
                        }
                        WireDelta::SignatureDelta { signature }
                            if !signature.is_empty() && kind == Some(BlockKind::Thinking) =>
                        {
                            out.push(StreamEvent::ThinkingSignature { index, signature })
                        }
                        WireDelta::InputJsonDelta { partial_json }
                            if !partial_json.is_empty() && kind == Some(BlockKind::Tool) =>
                        {
                            self.tools_without_args.retain(|i| *i != index);
                            out.push(StreamEvent::ToolCallDelta { index, arguments: partial_json })
                        }
                        _ => {}
                    }
                }
            }
            WireEvent::ContentBlockStop { index } => {
                if let Some(&Some(index)) = self.blocks.get(&index) {
                    self.close(index, &mut out);
                }
            }
            WireEvent::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.stopped = true;
                    out.push(StreamEvent::Finish { stop_reason: stop_reason_to_ir(&reason) });
                }
                // The final counts (input included) come from here, replacing message_start's.
                self.counters = self.counters.with(&usage);
                out.push(StreamEvent::Usage(self.counters.to_ir()));
            }
            WireEvent::MessageStop => {
                // Blocks the upstream left open end with the message.
                let still_open: Vec<usize> = self.open.keys().copied().collect();
                for index in still_open {
                    self.close(index, &mut out);
                }
                if !self.stopped {
                    out.push(StreamEvent::Finish { stop_reason: StopReason::EndTurn });
                }
                out.push(StreamEvent::Done);
                self.ended = true;
            }
            WireEvent::Error { error } => {
                out.push(StreamEvent::Error(error_info(0, error.kind.as_deref(), error.message, data.as_bytes())));
                self.ended = true;
            }
            WireEvent::Other => {}
        }
        Ok(out)
    }

    fn finish(&mut self) -> Vec<StreamEvent> {
        if std::mem::replace(&mut self.ended, true) { Vec::new() } else { vec![truncated("message_stop")] }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Thinking,
    Tool,
}

/// Neutral events → Anthropic SSE frames for the client. `message_start` waits for the first
/// content (or the end) so it can carry the input usage an upstream reported at its start.
/// Blocks are sent one at a time and renumbered from 0.
#[derive(Debug, Default)]
pub struct Encoder {
    id: String,
    model: String,
    started: bool,
    /// The open block: neutral index, Anthropic index, kind.
    open: Option<(usize, usize, BlockKind)>,
    next_index: usize,
    usage: Usage,
    stop_reason: Option<StopReason>,
    ended: bool,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn emit(out: &mut Vec<String>, value: Value) {
        let name = value.get("type").and_then(Value::as_str).unwrap_or("").to_owned();
        out.push(sse::frame(Some(&name), &value.to_string()));
    }

    fn ensure_started(&mut self, out: &mut Vec<String>) {
        if self.started {
            return;
        }
        self.started = true;
        let id = if self.id.is_empty() { "msg_switchyard" } else { &self.id };
        let message = json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": to_json(&usage_out(&self.usage)),
        });
        Self::emit(out, json!({"type": "message_start", "message": message}));
    }

    fn close_block(&mut self, out: &mut Vec<String>) {
        if let Some((_, index, _)) = self.open.take() {
            Self::emit(out, json!({"type": "content_block_stop", "index": index}));
        }
    }

    fn open_block(&mut self, out: &mut Vec<String>, ir_index: usize, kind: BlockKind, block: OutBlock) {
        self.ensure_started(out);
        self.close_block(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((ir_index, index, kind));
        Self::emit(out, json!({"type": "content_block_start", "index": index, "content_block": to_json(&block)}));
    }

    /// A delta for neutral block `ir_index`; text and thinking without an open block get one.
    fn delta(&mut self, out: &mut Vec<String>, ir_index: usize, kind: BlockKind, delta: Value) {
        let index = match self.open {
            Some((open, index, open_kind)) if open == ir_index && open_kind == kind => index,
            _ => match kind {
                BlockKind::Text => {
                    self.open_block(out, ir_index, kind, OutBlock::Text { text: "" });
                    self.next_index - 1
                }
                BlockKind::Thinking => {
                    self.open_block(out, ir_index, kind, OutBlock::Thinking { thinking: "", signature: "" });
                    self.next_index - 1
                }
                BlockKind::Tool => return, // no id/name to open it with
            },
        };
        Self::emit(out, json!({"type": "content_block_delta", "index": index, "delta": delta}));
    }
}

impl ir::StreamEncoder for Encoder {
    fn encode(&mut self, event: &StreamEvent) -> Vec<String> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        match event {
            StreamEvent::Start { id, model } => {
                self.id.clone_from(id);
                self.model.clone_from(model);
            }
            StreamEvent::Usage(usage) => self.usage = *usage,
            StreamEvent::Finish { stop_reason } => self.stop_reason = Some(*stop_reason),
            StreamEvent::TextStart { index } => {
                self.open_block(&mut out, *index, BlockKind::Text, OutBlock::Text { text: "" })
            }
            StreamEvent::ThinkingStart { index } => self.open_block(
                &mut out,
                *index,
                BlockKind::Thinking,
                OutBlock::Thinking { thinking: "", signature: "" },
            ),
            StreamEvent::ToolCallStart { index, id, name } => self.open_block(
                &mut out,
                *index,
                BlockKind::Tool,
                OutBlock::ToolUse { id: tool_id(id), name, input: json!({}) },
            ),
            StreamEvent::TextDelta { index, text } => {
                self.delta(&mut out, *index, BlockKind::Text, json!({"type": "text_delta", "text": text}))
            }
            StreamEvent::ThinkingDelta { index, text } => {
                self.delta(&mut out, *index, BlockKind::Thinking, json!({"type": "thinking_delta", "thinking": text}))
            }
            StreamEvent::ThinkingSignature { index, signature } => self.delta(
                &mut out,
                *index,
                BlockKind::Thinking,
                json!({"type": "signature_delta", "signature": signature}),
            ),
            StreamEvent::ToolCallDelta { index, arguments } => self.delta(
                &mut out,
                *index,
                BlockKind::Tool,
                json!({"type": "input_json_delta", "partial_json": arguments}),
            ),
            StreamEvent::BlockStop { index } => {
                if self.open.is_some_and(|(open, _, _)| open == *index) {
                    self.close_block(&mut out);
                }
            }
            StreamEvent::Error(error) => {
                self.ended = true;
                out.push(stream_error_frame(error));
            }
            StreamEvent::Done => {
                self.ensure_started(&mut out);
                self.close_block(&mut out);
                let stop_reason = stop_reason_from_ir(self.stop_reason.unwrap_or(StopReason::EndTurn));
                Self::emit(
                    &mut out,
                    json!({
                        "type": "message_delta",
                        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                        "usage": to_json(&usage_out(&self.usage)),
                    }),
                );
                Self::emit(&mut out, json!({"type": "message_stop"}));
                self.ended = true;
            }
        }
        out
    }
}
