//! OpenAI Chat Completions (`POST /v1/chat/completions`) ↔ neutral form, including the
//! OpenAI-compatible vendors' extensions (DeepSeek `reasoning_content`, usage in the finish chunk).
//!
//! | neutral | OpenAI Chat |
//! |---|---|
//! | `system` entries | `system` / `developer` messages (hoisted, in order; one entry per text part); sent back as `system` messages |
//! | `Image` base64 / URL | `image_url.url` as a `data:<type>;base64,` URL / the URL |
//! | `ToolCall` | `assistant.tool_calls[]` (`function.arguments` JSON text) |
//! | `Role::Tool` message with n results | n consecutive `role: tool` messages (`tool_call_id`); images in results follow in a `user` message, since tool messages carry text only |
//! | `Thinking` | `reasoning_content` (DeepSeek style); sent upstream only when unsigned (it came from such an upstream) |
//! | `ToolChoice::{Auto, None, Required, Tool}` | `"auto"` / `"none"` / `"required"` / `{"type":"function","function":{"name"}}` |
//! | stop `EndTurn`+`StopSequence` / `MaxTokens` / `ToolUse` / `ContentFilter` | `stop` / `length` / `tool_calls` / `content_filter` (`stop` after tool calls → `ToolUse`; a refusal → `ContentFilter`) |
//! | `Usage.input_tokens` / `cached_input_tokens` / `reasoning_tokens` | `prompt_tokens` / `prompt_tokens_details.cached_tokens` (DeepSeek `prompt_cache_hit_tokens`) / `completion_tokens_details.reasoning_tokens` |
//!
//! Reasoning: `reasoning_effort` ↔ effort. Towards OpenAI an explicit effort passes through (`max` → `xhigh`;
//! `none`/`auto` → omitted, so non-reasoning models are not sent a field they reject), and a thinking budget
//! maps with [`effort_for_budget`]. `max_tokens` (accepted by OpenAI and every compatible vendor) carries the
//! output cap; `max_completion_tokens` is read as well.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ir::{
    self, ChatRequest, ChatResponse, ErrorInfo, ImageSource, Message, Part, Reasoning, Role, StopReason, StreamEvent,
    ToolChoice, ToolDefinition, TranslateError, Usage,
};
use crate::sse;
use crate::wire::{StringOr, WireErrorField, WireErrorObject, body_text, parse_body, required, to_json};

/// Thinking budget → `reasoning_effort` (CPA's thresholds, capped at `high`, the highest level
/// every reasoning model accepts; `minimal`/`xhigh` only pass through when asked for by name):
///
/// | budget | effort |
/// |---|---|
/// | 0 | none (omitted) |
/// | < 0 (dynamic) | omitted (upstream default) |
/// | 1..=1024 | `low` |
/// | 1025..=8192 | `medium` |
/// | > 8192 | `high` |
pub fn effort_for_budget(budget: i64) -> Option<&'static str> {
    match budget {
        ..=0 => None,
        1..=1024 => Some("low"),
        1025..=8192 => Some("medium"),
        _ => Some("high"),
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

// ---------------------------------------------------------------------------------------------
// Wire types

#[derive(Deserialize)]
struct WireRequest {
    model: Option<String>,
    messages: Option<Vec<WireMessage>>,
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    stop: Option<StringOr<String>>,
    stream: Option<bool>,
    tools: Option<Vec<WireTool>>,
    tool_choice: Option<WireToolChoice>,
    reasoning_effort: Option<String>,
    user: Option<String>,
    safety_identifier: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum WireRole {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

#[derive(Deserialize)]
struct WireMessage {
    role: WireRole,
    content: Option<StringOr<WirePart>>,
    tool_calls: Option<Vec<WireToolCall>>,
    tool_call_id: Option<String>,
    reasoning_content: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WirePart {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
    image_url: Option<WireImageUrl>,
    refusal: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireImageUrl {
    url: Option<String>,
}

/// A tool call in a request, a response or a stream fragment (where every field is optional).
#[derive(Deserialize, Default)]
#[serde(default)]
struct WireToolCall {
    index: Option<usize>,
    id: Option<String>,
    function: Option<WireFunctionCall>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireFunctionCall {
    name: Option<String>,
    /// A JSON string per the spec; some clients send the object itself.
    arguments: Option<Value>,
}

impl WireFunctionCall {
    fn arguments_text(&self) -> Option<String> {
        match &self.arguments {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(text.clone()),
            Some(other) => Some(other.to_string()),
        }
    }
}

#[derive(Deserialize)]
struct WireTool {
    #[serde(rename = "type")]
    kind: Option<String>,
    function: Option<WireFunctionDef>,
}

#[derive(Deserialize)]
struct WireFunctionDef {
    name: Option<String>,
    description: Option<String>,
    parameters: Option<Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireToolChoice {
    Mode(String),
    Named { function: WireName },
}

#[derive(Deserialize)]
struct WireName {
    name: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireResponse {
    id: String,
    model: String,
    choices: Option<Vec<WireChoice>>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireChoice {
    index: usize,
    /// `message` in a whole response, `delta` in a stream chunk.
    #[serde(alias = "delta")]
    message: Option<WireOutMessage>,
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct WireOutMessage {
    content: Option<StringOr<WirePart>>,
    reasoning_content: Option<String>,
    /// vLLM / OpenRouter name for the same thing.
    reasoning: Option<String>,
    refusal: Option<String>,
    tool_calls: Option<Vec<WireToolCall>>,
}

impl WireOutMessage {
    fn reasoning_text(&mut self) -> Option<String> {
        self.reasoning_content.take().or(self.reasoning.take()).filter(|t| !t.is_empty())
    }

    fn content_text(&mut self) -> String {
        match self.content.take() {
            None => String::new(),
            Some(StringOr::Text(text)) => text,
            Some(StringOr::Items(parts)) => parts.into_iter().filter_map(|p| p.text.or(p.refusal)).collect(),
        }
    }
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
pub(crate) struct WireUsage {
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    prompt_tokens_details: Option<WirePromptDetails>,
    completion_tokens_details: Option<WireCompletionDetails>,
    /// DeepSeek's older name for cached prompt tokens.
    prompt_cache_hit_tokens: Option<i64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct WirePromptDetails {
    cached_tokens: Option<i64>,
}

#[derive(Deserialize, Default, Clone)]
#[serde(default)]
struct WireCompletionDetails {
    reasoning_tokens: Option<i64>,
}

impl WireUsage {
    pub(crate) fn to_ir(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens.unwrap_or(0),
            output_tokens: self.completion_tokens.unwrap_or(0),
            cached_input_tokens: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .or(self.prompt_cache_hit_tokens)
                .unwrap_or(0),
            cache_creation_tokens: 0,
            reasoning_tokens: self.completion_tokens_details.as_ref().and_then(|d| d.reasoning_tokens).unwrap_or(0),
        }
    }
}

/// One stream chunk; `error` is how vendors report a failure mid-stream.
#[derive(Deserialize, Default)]
#[serde(default)]
struct WireChunk {
    id: String,
    model: String,
    choices: Option<Vec<WireChoice>>,
    usage: Option<WireUsage>,
    error: Option<WireErrorField>,
}

// ---------------------------------------------------------------------------------------------
// Output types

#[derive(Serialize)]
struct OutRequest<'a> {
    model: &'a str,
    messages: Vec<OutMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<OutStreamOptions>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<OutTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
}

#[derive(Serialize)]
struct OutStreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct OutMessage<'a> {
    role: &'static str,
    /// `null` for an assistant turn that only calls tools.
    content: Option<OutContent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<OutToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutContent<'a> {
    Text(String),
    Parts(Vec<OutPart<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutPart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: OutImageUrl },
}

#[derive(Serialize)]
struct OutImageUrl {
    url: String,
}

#[derive(Serialize)]
struct OutToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: OutFunctionCall<'a>,
}

#[derive(Serialize)]
struct OutFunctionCall<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct OutTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: OutFunctionDef<'a>,
}

#[derive(Serialize)]
struct OutFunctionDef<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a Value,
}

#[derive(Serialize)]
struct OutUsage {
    prompt_tokens: i64,
    completion_tokens: i64,
    total_tokens: i64,
    prompt_tokens_details: OutPromptDetails,
    completion_tokens_details: OutCompletionDetails,
}

#[derive(Serialize)]
struct OutPromptDetails {
    cached_tokens: i64,
}

#[derive(Serialize)]
struct OutCompletionDetails {
    reasoning_tokens: i64,
}

fn usage_out(usage: &Usage) -> OutUsage {
    OutUsage {
        prompt_tokens: usage.input_tokens,
        completion_tokens: usage.output_tokens,
        total_tokens: usage.input_tokens.saturating_add(usage.output_tokens),
        prompt_tokens_details: OutPromptDetails { cached_tokens: usage.cached_input_tokens },
        completion_tokens_details: OutCompletionDetails { reasoning_tokens: usage.reasoning_tokens },
    }
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

    let mut system = Vec::new();
    let mut messages: Vec<Message> = Vec::new();
    for (i, message) in wire_messages.into_iter().enumerate() {
        let path = format!("messages[{i}]");
        match message.role {
            WireRole::System | WireRole::Developer => match required(message.content, &format!("{path}.content"))? {
                StringOr::Text(text) => system.push(text),
                StringOr::Items(parts) => {
                    for (j, part) in parts.into_iter().enumerate() {
                        let part_path = format!("{path}.content[{j}]");
                        if part.kind != "text" {
                            return Err(TranslateError::field(
                                format!("{part_path}.type"),
                                "system content must be text",
                            ));
                        }
                        system.push(required(part.text, &format!("{part_path}.text"))?);
                    }
                }
            },
            WireRole::User => {
                let content = content_to_ir(required(message.content, &format!("{path}.content"))?, &path)?;
                messages.push(Message { role: Role::User, content });
            }
            WireRole::Assistant => {
                let mut content = Vec::new();
                if let Some(text) = message.reasoning_content.filter(|t| !t.is_empty()) {
                    content.push(Part::Thinking { text, signature: None });
                }
                if let Some(parts) = message.content {
                    content
                        .extend(content_to_ir(parts, &path)?.into_iter().filter(|p| *p != Part::Text(String::new())));
                }
                for (j, call) in message.tool_calls.unwrap_or_default().into_iter().enumerate() {
                    let call_path = format!("{path}.tool_calls[{j}]");
                    let function = required(call.function, &format!("{call_path}.function"))?;
                    content.push(Part::ToolCall {
                        id: required(call.id.filter(|id| !id.is_empty()), &format!("{call_path}.id"))?,
                        arguments: function.arguments_text().filter(|a| !a.is_empty()).unwrap_or_else(|| "{}".into()),
                        name: required(function.name, &format!("{call_path}.function.name"))?,
                    });
                }
                messages.push(Message { role: Role::Assistant, content });
            }
            WireRole::Tool => {
                let call_id =
                    required(message.tool_call_id.filter(|id| !id.is_empty()), &format!("{path}.tool_call_id"))?;
                let content = match message.content {
                    Some(content) => content_to_ir(content, &path)?,
                    None => Vec::new(),
                };
                let content = content.into_iter().filter(|p| *p != Part::Text(String::new())).collect();
                let result = Part::ToolResult { call_id, content, is_error: false };
                // Consecutive tool messages answer one assistant turn: keep them together.
                match messages.last_mut() {
                    Some(last) if last.role == Role::Tool => last.content.push(result),
                    _ => messages.push(Message { role: Role::Tool, content: vec![result] }),
                }
            }
            WireRole::Function => {
                return Err(TranslateError::Unsupported(format!("{path}: the deprecated `function` role")));
            }
        }
    }

    let mut tools = Vec::new();
    for (i, tool) in wire.tools.unwrap_or_default().into_iter().enumerate() {
        let kind = tool.kind.unwrap_or_else(|| "function".to_owned());
        if kind != "function" {
            return Err(TranslateError::Unsupported(format!("tools[{i}]: `{kind}` tools")));
        }
        let function = required(tool.function, &format!("tools[{i}].function"))?;
        tools.push(ToolDefinition {
            name: required(function.name, &format!("tools[{i}].function.name"))?,
            description: function.description,
            // Parameters are optional here, a schema is required elsewhere: an empty object schema.
            parameters: function.parameters.unwrap_or_else(|| json!({"type": "object", "properties": {}})),
        });
    }

    let tool_choice = match wire.tool_choice {
        None => None,
        Some(WireToolChoice::Named { function }) => Some(ToolChoice::Tool(function.name)),
        Some(WireToolChoice::Mode(mode)) => Some(match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => return Err(TranslateError::field("tool_choice", format!("unknown value `{mode}`"))),
        }),
    };

    let reasoning = wire.reasoning_effort.map(|effort| Reasoning {
        include_thoughts: !effort.eq_ignore_ascii_case("none"),
        effort: Some(effort),
        budget_tokens: None,
    });

    Ok(ChatRequest {
        model,
        system,
        messages,
        tools,
        tool_choice,
        max_output_tokens: wire.max_completion_tokens.or(wire.max_tokens),
        temperature: wire.temperature,
        top_p: wire.top_p,
        stop: match wire.stop {
            None => Vec::new(),
            Some(StringOr::Text(stop)) => vec![stop],
            Some(StringOr::Items(stops)) => stops,
        },
        stream: wire.stream.unwrap_or(false),
        reasoning,
        user: wire.user.or(wire.safety_identifier),
    })
}

/// `content` of a user/assistant/tool message → parts (`path` is the message's path).
fn content_to_ir(content: StringOr<WirePart>, path: &str) -> Result<Vec<Part>, TranslateError> {
    let parts = match content {
        StringOr::Text(text) => return Ok(vec![Part::Text(text)]),
        StringOr::Items(parts) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (j, part) in parts.into_iter().enumerate() {
        let part_path = format!("{path}.content[{j}]");
        out.push(match part.kind.as_str() {
            "text" => Part::Text(required(part.text, &format!("{part_path}.text"))?),
            "refusal" => Part::Text(required(part.refusal, &format!("{part_path}.refusal"))?),
            "image_url" => {
                let image = required(part.image_url, &format!("{part_path}.image_url"))?;
                let url_path = format!("{part_path}.image_url.url");
                Part::Image(image_from_url(required(image.url.filter(|u| !u.is_empty()), &url_path)?, &url_path)?)
            }
            "input_audio" | "file" => {
                return Err(TranslateError::Unsupported(format!("{part_path}: `{}` content parts", part.kind)));
            }
            "" => return Err(TranslateError::field(format!("{part_path}.type"), "required")),
            other => {
                return Err(TranslateError::field(format!("{part_path}.type"), format!("unknown part type `{other}`")));
            }
        });
    }
    Ok(out)
}

/// `data:<media type>;base64,<data>` → inline image; any other URL is fetched by the upstream.
fn image_from_url(url: String, path: &str) -> Result<ImageSource, TranslateError> {
    let Some(rest) = url.strip_prefix("data:") else { return Ok(ImageSource::Url(url)) };
    let Some((meta, data)) = rest.split_once(',') else {
        return Err(TranslateError::field(path, "malformed data URL"));
    };
    let mut params = meta.split(';');
    let media_type = params.next().unwrap_or("").trim();
    if !params.any(|p| p.trim().eq_ignore_ascii_case("base64")) {
        return Err(TranslateError::field(path, "data URL must be base64-encoded"));
    }
    if data.is_empty() {
        return Err(TranslateError::field(path, "data URL has no data"));
    }
    // Only images are images: another type would reach an upstream as one and be refused.
    if !crate::ir::is_image_media_type(media_type) {
        return Err(TranslateError::field(path, "data URL must name an image media type (image/...)"));
    }
    Ok(ImageSource::Base64 { media_type: media_type.to_owned(), data: data.to_owned() })
}

fn image_url(image: &ImageSource) -> OutImageUrl {
    OutImageUrl {
        url: match image {
            ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
            ImageSource::Url(url) => url.clone(),
        },
    }
}

/// The `reasoning_effort` to send: see the module docs and [`effort_for_budget`].
fn effort_out(reasoning: &Reasoning) -> Option<&'static str> {
    match reasoning.effort.as_deref().map(str::to_ascii_lowercase).as_deref() {
        Some("none" | "auto") => None,
        Some("minimal") => Some("minimal"),
        Some("low") => Some("low"),
        Some("medium") => Some("medium"),
        Some("high") => Some("high"),
        Some("xhigh" | "max") => Some("xhigh"),
        _ => reasoning.budget_tokens.and_then(effort_for_budget),
    }
}

pub fn request_from_ir(request: &ChatRequest) -> Result<Value, TranslateError> {
    let mut messages: Vec<OutMessage> = request
        .system
        .iter()
        .map(|text| OutMessage {
            role: "system",
            content: Some(OutContent::Text(text.clone())),
            reasoning_content: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
        })
        .collect();
    for message in &request.messages {
        match message.role {
            Role::Assistant => messages.extend(assistant_out(&message.content)),
            Role::User | Role::Tool => user_out(&message.content, &mut messages),
        }
    }
    // Nothing to send (a Responses request with tools but no input): Chat refuses an empty
    // `messages`, so say so here as a 400 in the client's dialect.
    if messages.is_empty() {
        return Err(TranslateError::Unsupported(
            "the request has no message with content; OpenAI Chat needs at least one".into(),
        ));
    }

    let tool_choice = if request.tools.is_empty() { None } else { request.tool_choice.as_ref() };
    let body = OutRequest {
        model: &request.model,
        messages,
        max_tokens: request.max_output_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        stop: &request.stop,
        stream: request.stream,
        stream_options: request.stream.then_some(OutStreamOptions { include_usage: true }),
        tools: request
            .tools
            .iter()
            .map(|tool| OutTool {
                kind: "function",
                function: OutFunctionDef {
                    name: &tool.name,
                    description: tool.description.as_deref(),
                    parameters: &tool.parameters,
                },
            })
            .collect(),
        tool_choice: tool_choice.map(|choice| match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
        }),
        reasoning_effort: request.reasoning.as_ref().and_then(effort_out),
        user: request.user.as_deref(),
    };
    Ok(to_json(&body))
}

fn assistant_out(parts: &[Part]) -> Option<OutMessage<'_>> {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for part in parts {
        match part {
            Part::Text(t) => text.push_str(t),
            // Signed reasoning belongs to Anthropic/Gemini; only unsigned (DeepSeek-style) goes back.
            Part::Thinking { text: t, signature: None } => reasoning.push_str(t),
            Part::ToolCall { id, name, arguments } => tool_calls.push(OutToolCall {
                id,
                kind: "function",
                function: OutFunctionCall { name, arguments: if arguments.is_empty() { "{}" } else { arguments } },
            }),
            Part::Thinking { .. } | Part::Image(_) | Part::ToolResult { .. } => {}
        }
    }
    if text.is_empty() && tool_calls.is_empty() {
        return None;
    }
    Some(OutMessage {
        role: "assistant",
        content: (!text.is_empty()).then_some(OutContent::Text(text)),
        reasoning_content: (!reasoning.is_empty()).then_some(reasoning),
        tool_calls,
        tool_call_id: None,
    })
}

/// A user or tool turn: one `tool` message per result, then a `user` message with the rest
/// (including any images the tool results held).
fn user_out<'a>(parts: &'a [Part], out: &mut Vec<OutMessage<'a>>) {
    let mut user_parts = Vec::new();
    let mut result_images = Vec::new();
    for part in parts {
        match part {
            Part::Text(text) => user_parts.push(OutPart::Text { text }),
            Part::Image(image) => user_parts.push(OutPart::ImageUrl { image_url: image_url(image) }),
            Part::ToolResult { call_id, content, .. } => {
                let mut text = String::new();
                for item in content {
                    match item {
                        Part::Text(t) => text.push_str(t),
                        Part::Image(image) => result_images.push(OutPart::ImageUrl { image_url: image_url(image) }),
                        _ => {}
                    }
                }
                out.push(OutMessage {
                    role: "tool",
                    content: Some(OutContent::Text(text)),
                    reasoning_content: None,
                    tool_calls: Vec::new(),
                    tool_call_id: Some(call_id),
                });
            }
            Part::Thinking { .. } | Part::ToolCall { .. } => {}
        }
    }
    result_images.extend(user_parts);
    let content = match result_images.as_slice() {
        [] => return,
        [OutPart::Text { text }] => OutContent::Text((*text).to_owned()),
        _ => OutContent::Parts(result_images),
    };
    out.push(OutMessage {
        role: "user",
        content: Some(content),
        reasoning_content: None,
        tool_calls: Vec::new(),
        tool_call_id: None,
    });
}

// ---------------------------------------------------------------------------------------------
// Whole responses

pub fn response_to_ir(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let wire: WireResponse =
        serde_json::from_slice(body).map_err(|e| TranslateError::Upstream(format!("openai chat response: {e}")))?;
    let mut content = Vec::new();
    let mut stop_reason = None;
    let choice = wire.choices.unwrap_or_default().into_iter().find(|c| c.index == 0);
    if let Some(mut choice) = choice {
        let mut message = choice.message.take().unwrap_or_default();
        if let Some(text) = message.reasoning_text() {
            content.push(Part::Thinking { text, signature: None });
        }
        let refusal = message.refusal.take().filter(|r| !r.is_empty());
        let text = message.content_text();
        if !text.is_empty() {
            content.push(Part::Text(text));
        }
        if let Some(refusal) = &refusal {
            content.push(Part::Text(refusal.clone()));
        }
        let mut has_tool_calls = false;
        for call in message.tool_calls.unwrap_or_default() {
            has_tool_calls = true;
            let function = call.function.unwrap_or_default();
            content.push(Part::ToolCall {
                id: call.id.unwrap_or_default(),
                arguments: function.arguments_text().filter(|a| !a.is_empty()).unwrap_or_else(|| "{}".into()),
                name: function.name.unwrap_or_default(),
            });
        }
        stop_reason =
            choice.finish_reason.as_deref().map(|reason| stop_reason_to_ir(reason, has_tool_calls, refusal.is_some()));
    }
    Ok(ChatResponse {
        id: wire.id,
        model: wire.model,
        content,
        stop_reason,
        usage: wire.usage.map(|u| u.to_ir()).unwrap_or_default(),
    })
}

pub fn response_from_ir(response: &ChatResponse) -> Value {
    let mut text = String::new();
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    for part in &response.content {
        match part {
            Part::Text(t) => text.push_str(t),
            Part::Thinking { text: t, .. } => reasoning.push_str(t),
            Part::ToolCall { id, name, arguments } => tool_calls.push(json!({
                "id": id,
                "type": "function",
                "function": {"name": name, "arguments": if arguments.is_empty() { "{}" } else { arguments }},
            })),
            Part::Image(_) | Part::ToolResult { .. } => {}
        }
    }
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { Value::String(text) },
        "refusal": null,
    });
    if !reasoning.is_empty() {
        message["reasoning_content"] = Value::String(reasoning);
    }
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    json!({
        "id": response.id,
        "object": "chat.completion",
        "created": unix_now(),
        "model": response.model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(response.stop_reason.unwrap_or(StopReason::EndTurn)),
        }],
        "usage": to_json(&usage_out(&response.usage)),
    })
}

fn stop_reason_to_ir(reason: &str, had_tool_calls: bool, refused: bool) -> StopReason {
    match reason {
        "length" => StopReason::MaxTokens,
        "tool_calls" | "function_call" => StopReason::ToolUse,
        "content_filter" => StopReason::ContentFilter,
        // DeepSeek: generation interrupted for lack of resources.
        "insufficient_system_resource" => StopReason::Error,
        _ if refused => StopReason::ContentFilter,
        // Some vendors say `stop` after tool calls; the client must still run them.
        _ if had_tool_calls => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}

fn finish_reason(reason: StopReason) -> &'static str {
    match reason {
        StopReason::MaxTokens => "length",
        StopReason::ToolUse => "tool_calls",
        StopReason::ContentFilter => "content_filter",
        // The failure itself travels as an error chunk.
        StopReason::EndTurn | StopReason::StopSequence | StopReason::Error => "stop",
    }
}

// ---------------------------------------------------------------------------------------------
// Errors

/// OpenAI error `type`/`code` (and Gemini `status`-style codes) → neutral kind.
fn kind_for_type(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "invalid_request_error" | "unsupported_parameter" | "invalid_value" | "context_length_exceeded" => {
            "invalid_request"
        }
        "authentication_error" | "invalid_api_key" => "authentication",
        "permission_error" | "permission_denied" => "permission",
        "not_found_error" | "model_not_found" => "not_found",
        "rate_limit_error" | "rate_limit_exceeded" | "requests" | "tokens" | "insufficient_quota" => "rate_limit",
        "overloaded_error" | "overloaded" | "service_unavailable" => "overloaded",
        "timeout" | "timeout_error" => "timeout",
        "server_error" | "api_error" | "internal_error" => "server_error",
        _ => return None,
    })
}

fn type_and_code(kind: &str) -> (&'static str, Option<&'static str>) {
    match kind {
        "invalid_request" => ("invalid_request_error", None),
        "authentication" => ("authentication_error", Some("invalid_api_key")),
        "permission" => ("permission_error", None),
        "not_found" => ("not_found_error", None),
        "rate_limit" => ("rate_limit_error", Some("rate_limit_exceeded")),
        "overloaded" => ("server_error", Some("overloaded")),
        "timeout" => ("server_error", Some("timeout")),
        _ => ("server_error", None),
    }
}

/// The neutral error for an upstream error `status` (0 or 2xx: a mid-stream error) and its body.
/// A real HTTP status decides the kind; otherwise the body's `code`, then `type`.
pub fn error_to_ir(status: u16, body: &[u8]) -> ErrorInfo {
    error_info(status, WireErrorObject::from_body(body), body)
}

fn error_info(status: u16, error: WireErrorObject, body: &[u8]) -> ErrorInfo {
    let kind = if status >= 400 {
        ErrorInfo::kind_for_status(status)
    } else {
        let code = error.code.as_ref().and_then(Value::as_str).and_then(kind_for_type);
        let numeric = error.code.as_ref().and_then(Value::as_u64).and_then(|c| u16::try_from(c).ok());
        code.or_else(|| error.kind.as_deref().and_then(kind_for_type))
            .or_else(|| numeric.filter(|c| *c >= 400).map(ErrorInfo::kind_for_status))
            .unwrap_or("server_error")
    };
    let status = if status >= 400 { status } else { ErrorInfo::status_for_kind(kind) };
    let message = error
        .message
        .filter(|m| !m.trim().is_empty())
        .or_else(|| Some(body_text(body)).filter(|t| !t.is_empty()))
        .unwrap_or_else(|| format!("upstream returned HTTP {status}"));
    ErrorInfo { status, kind: kind.to_owned(), message }
}

pub fn error_from_ir(error: &ErrorInfo) -> Value {
    let (kind, code) = type_and_code(&error.kind);
    json!({"error": {"message": error.message, "type": kind, "param": null, "code": code}})
}

/// The mid-stream error as a `data: {"error": {...}}` chunk: the official SDKs (Python
/// `openai.Stream`, Node `Stream`) raise an `APIError` with its message when a chunk has an
/// `error` key. No `[DONE]` follows, so no client mistakes the stream for a complete one.
pub fn stream_error_frame(error: &ErrorInfo) -> String {
    sse::frame(None, &error_from_ir(error).to_string())
}

// ---------------------------------------------------------------------------------------------
// Streams

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Thinking,
    /// A tool call, by its position in `tool_calls`.
    Tool(usize),
}

/// OpenAI chunks → neutral events. One block is open at a time (text, reasoning, or one tool
/// call), as OpenAI streams them; a fragment for an already closed tool call is an error rather
/// than a silently garbled call.
#[derive(Debug, Default)]
pub struct Decoder {
    started: bool,
    open: Option<(usize, BlockKind)>,
    next_index: usize,
    /// Tool-call positions already opened.
    tools_seen: Vec<usize>,
    /// The open tool call has no argument text yet (closed with `{}`, always a JSON object).
    tool_without_args: bool,
    refused: bool,
    finished: bool,
    /// `[DONE]` or an error seen.
    ended: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// The open block's index, opening a block of `kind` (and closing the previous one) if needed.
    fn block(&mut self, out: &mut Vec<StreamEvent>, kind: BlockKind) -> usize {
        if let Some((index, open)) = self.open
            && open == kind
        {
            return index;
        }
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.open = Some((index, kind));
        match kind {
            BlockKind::Text => out.push(StreamEvent::TextStart { index }),
            BlockKind::Thinking => out.push(StreamEvent::ThinkingStart { index }),
            BlockKind::Tool(_) => {} // the caller sends ToolCallStart with id and name
        }
        index
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some((index, kind)) = self.open.take() {
            if matches!(kind, BlockKind::Tool(_)) && std::mem::take(&mut self.tool_without_args) {
                out.push(StreamEvent::ToolCallDelta { index, arguments: "{}".to_owned() });
            }
            out.push(StreamEvent::BlockStop { index });
        }
    }

    fn tool_fragment(&mut self, out: &mut Vec<StreamEvent>, call: WireToolCall) -> Result<(), TranslateError> {
        // Vendors that omit `index` send one call at a time: a new id starts the next one.
        let position = call.index.unwrap_or_else(|| match (&call.id, self.tools_seen.last()) {
            (None, Some(last)) => *last,
            _ => self.tools_seen.len(),
        });
        let function = call.function.unwrap_or_default();
        let arguments = function.arguments_text().unwrap_or_default();
        let index = if self.tools_seen.contains(&position) {
            match self.open {
                Some((index, BlockKind::Tool(open))) if open == position => index,
                _ => {
                    return Err(TranslateError::Upstream(format!(
                        "tool call {position} continued after another block started"
                    )));
                }
            }
        } else {
            self.tools_seen.push(position);
            let index = self.block(out, BlockKind::Tool(position));
            out.push(StreamEvent::ToolCallStart {
                index,
                id: call.id.filter(|id| !id.is_empty()).unwrap_or_else(|| format!("call_{position}")),
                name: function.name.unwrap_or_default(),
            });
            self.tool_without_args = true;
            index
        };
        if !arguments.is_empty() {
            self.tool_without_args = false;
            out.push(StreamEvent::ToolCallDelta { index, arguments });
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<StreamEvent>) {
        self.close(out);
        if !self.finished {
            self.finished = true;
            let reason = stop_reason_to_ir("stop", !self.tools_seen.is_empty(), self.refused);
            out.push(StreamEvent::Finish { stop_reason: reason });
        }
        out.push(StreamEvent::Done);
        self.ended = true;
    }
}

impl ir::StreamDecoder for Decoder {
    fn decode(&mut self, event: Option<&str>, data: &str) -> Result<Vec<StreamEvent>, TranslateError> {
        let mut out = Vec::new();
        if self.ended {
            return Ok(out);
        }
        if data.trim() == "[DONE]" {
            self.end(&mut out);
            return Ok(out);
        }
        let chunk: WireChunk =
            serde_json::from_str(data).map_err(|e| TranslateError::Upstream(format!("openai chat chunk: {e}")))?;
        if let Some(error) = chunk.error {
            out.push(StreamEvent::Error(error_info(0, error.into(), data.as_bytes())));
            self.ended = true;
            return Ok(out);
        }
        if event == Some("error") {
            out.push(StreamEvent::Error(error_to_ir(0, data.as_bytes())));
            self.ended = true;
            return Ok(out);
        }
        let choices = chunk.choices.unwrap_or_default();
        // Azure opens with a prompt-filter chunk that has no id and no choices.
        if !self.started && (!chunk.id.is_empty() || !choices.is_empty()) {
            self.started = true;
            out.push(StreamEvent::Start { id: chunk.id, model: chunk.model });
        }
        // Only the first choice: the neutral form has one answer (`n` > 1 is not translated).
        for mut choice in choices.into_iter().filter(|c| c.index == 0) {
            if self.finished {
                break;
            }
            let mut delta = choice.message.take().unwrap_or_default();
            if let Some(text) = delta.reasoning_text() {
                let index = self.block(&mut out, BlockKind::Thinking);
                out.push(StreamEvent::ThinkingDelta { index, text });
            }
            let text = delta.content_text();
            if !text.is_empty() {
                let index = self.block(&mut out, BlockKind::Text);
                out.push(StreamEvent::TextDelta { index, text });
            }
            if let Some(refusal) = delta.refusal.take().filter(|r| !r.is_empty()) {
                self.refused = true;
                let index = self.block(&mut out, BlockKind::Text);
                out.push(StreamEvent::TextDelta { index, text: refusal });
            }
            for call in delta.tool_calls.take().unwrap_or_default() {
                self.tool_fragment(&mut out, call)?;
            }
            if let Some(reason) = choice.finish_reason {
                self.close(&mut out);
                self.finished = true;
                let stop_reason = stop_reason_to_ir(&reason, !self.tools_seen.is_empty(), self.refused);
                out.push(StreamEvent::Finish { stop_reason });
            }
        }
        if let Some(usage) = chunk.usage {
            out.push(StreamEvent::Usage(usage.to_ir()));
        }
        Ok(out)
    }

    fn finish(&mut self) -> Vec<StreamEvent> {
        let mut out = Vec::new();
        if self.ended {
            return out;
        }
        if self.finished {
            // The finish chunk came; a missing `[DONE]` loses nothing.
            self.end(&mut out);
        } else {
            self.ended = true;
            out.push(StreamEvent::Error(ErrorInfo {
                status: 502,
                kind: "server_error".to_owned(),
                message: "upstream stream ended before its finish_reason (truncated)".to_owned(),
            }));
        }
        out
    }
}

#[derive(Serialize)]
struct OutChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: i64,
    model: &'a str,
    choices: Vec<OutChunkChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<OutUsage>,
}

#[derive(Serialize)]
struct OutChunkChoice<'a> {
    index: usize,
    delta: OutDelta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct OutDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<OutToolCallDelta<'a>>,
}

#[derive(Serialize)]
struct OutToolCallDelta<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: OutFunctionDelta<'a>,
}

#[derive(Serialize)]
struct OutFunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// Neutral events → `chat.completion.chunk` frames for the client: a role chunk first, the
/// finish chunk on `Finish`, then (with usage on) a usage-only chunk with `choices: []`, then
/// `data: [DONE]`.
#[derive(Debug)]
pub struct Encoder {
    id: String,
    model: String,
    created: i64,
    include_usage: bool,
    started: bool,
    /// Neutral block index of each tool call, by position (= OpenAI `tool_calls[].index`).
    tools: Vec<usize>,
    usage: Option<Usage>,
    finished: bool,
    ended: bool,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// Sends the usage chunk; see [`Encoder::include_usage`].
    pub fn new() -> Self {
        Self {
            id: String::new(),
            model: String::new(),
            created: unix_now(),
            include_usage: true,
            started: false,
            tools: Vec::new(),
            usage: None,
            finished: false,
            ended: false,
        }
    }

    /// Whether to send the usage-only chunk before `[DONE]` (the client's
    /// `stream_options.include_usage`; on by default so clients always see token counts).
    pub fn include_usage(mut self, include: bool) -> Self {
        self.include_usage = include;
        self
    }

    fn chunk(&self, choices: Vec<OutChunkChoice>, usage: Option<OutUsage>) -> String {
        let id = if self.id.is_empty() { "chatcmpl-switchyard" } else { &self.id };
        let chunk =
            OutChunk { id, object: "chat.completion.chunk", created: self.created, model: &self.model, choices, usage };
        sse::frame(None, &to_json(&chunk).to_string())
    }

    fn delta(&mut self, out: &mut Vec<String>, delta: OutDelta) {
        self.ensure_started(out);
        out.push(self.chunk(vec![OutChunkChoice { index: 0, delta, logprobs: None, finish_reason: None }], None));
    }

    fn ensure_started(&mut self, out: &mut Vec<String>) {
        if !self.started {
            self.started = true;
            let delta = OutDelta { role: Some("assistant"), content: Some(""), ..Default::default() };
            out.push(self.chunk(vec![OutChunkChoice { index: 0, delta, logprobs: None, finish_reason: None }], None));
        }
    }

    fn finish_chunk(&mut self, out: &mut Vec<String>, reason: StopReason) {
        self.ensure_started(out);
        self.finished = true;
        let choice = OutChunkChoice {
            index: 0,
            delta: OutDelta::default(),
            logprobs: None,
            finish_reason: Some(finish_reason(reason)),
        };
        out.push(self.chunk(vec![choice], None));
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
                self.ensure_started(&mut out);
            }
            StreamEvent::TextStart { .. } | StreamEvent::ThinkingStart { .. } | StreamEvent::BlockStop { .. } => {}
            // OpenAI has no place for a reasoning signature.
            StreamEvent::ThinkingSignature { .. } => {}
            StreamEvent::TextDelta { text, .. } => {
                self.delta(&mut out, OutDelta { content: Some(text), ..Default::default() })
            }
            StreamEvent::ThinkingDelta { text, .. } => {
                self.delta(&mut out, OutDelta { reasoning_content: Some(text), ..Default::default() })
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                let position = self.tools.len();
                self.tools.push(*index);
                let call = OutToolCallDelta {
                    index: position,
                    id: Some(id),
                    kind: Some("function"),
                    function: OutFunctionDelta { name: Some(name), arguments: "" },
                };
                self.delta(&mut out, OutDelta { tool_calls: vec![call], ..Default::default() });
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                if let Some(position) = self.tools.iter().position(|i| i == index) {
                    let call = OutToolCallDelta {
                        index: position,
                        id: None,
                        kind: None,
                        function: OutFunctionDelta { name: None, arguments },
                    };
                    self.delta(&mut out, OutDelta { tool_calls: vec![call], ..Default::default() });
                }
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            StreamEvent::Finish { stop_reason } => {
                if !self.finished {
                    self.finish_chunk(&mut out, *stop_reason);
                }
            }
            StreamEvent::Error(error) => {
                self.ended = true;
                out.push(stream_error_frame(error));
            }
            StreamEvent::Done => {
                if !self.finished {
                    self.finish_chunk(&mut out, StopReason::EndTurn);
                }
                if self.include_usage
                    && let Some(usage) = self.usage
                {
                    out.push(self.chunk(Vec::new(), Some(usage_out(&usage))));
                }
                out.push(sse::frame(None, "[DONE]"));
                self.ended = true;
            }
        }
        out
    }
}
