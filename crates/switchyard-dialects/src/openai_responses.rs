//! OpenAI Responses API (`POST /v1/responses`, also Codex's `/backend-api/codex/responses` and xAI).
//!
//! How the Responses API maps onto the neutral form:
//! - `instructions` and `system` / `developer` input messages ⇄ `system` (written back as one `instructions`).
//! - Input items ⇄ messages: `message` (string or parts: `input_text`, `output_text`, `refusal`, `input_image`),
//!   `function_call` ⇄ [`Part::ToolCall`] (`call_id` is the id), `function_call_output` ⇄ [`Part::ToolResult`],
//!   `reasoning` ⇄ [`Part::Thinking`] (summary texts joined by a blank line ⇄ text, `encrypted_content` ⇄
//!   signature). Consecutive items of one role share a message. `custom_tool_call(_output)` history reads as a
//!   call with arguments `{"input": ...}`; other built-in tool items (web search, file search, ...) are skipped.
//! - Written requests use `store: false` (stateless, as Codex requires) and, when reasoning is requested,
//!   `include: ["reasoning.encrypted_content"]` so reasoning survives the next turn. Thinking without a signature is
//!   not written (a stateless upstream cannot use it). Function tools are written with `strict: false` (the API
//!   defaults to strict, which rejects ordinary schemas).
//! - Not expressible, dropped: `stop` sequences, `is_error` of tool results, images in assistant turns, non-function
//!   tools (web_search, custom, ...), `text.format`, `previous_response_id` (rejected as Unsupported: its context
//!   lives on OpenAI's servers), `item_reference` (Unsupported), file inputs (Unsupported).
//! - Output: `message` → text (a `refusal` part → text and stop ContentFilter), `function_call` → tool call,
//!   `reasoning` → thinking. Status `completed` → EndTurn (ToolUse when there are calls), `incomplete` with
//!   `max_output_tokens` → MaxTokens, with `content_filter` → ContentFilter, `failed` → Error.
//! - Usage: `input_tokens` (includes cached), `input_tokens_details.cached_tokens` → cached,
//!   `input_tokens_details.cache_write_tokens` → cache creation, `output_tokens` (includes reasoning),
//!   `output_tokens_details.reasoning_tokens` → reasoning.
//! - Streams: `response.failed` and `error` events → [`StreamEvent::Error`] (once), `response.incomplete` → Finish
//!   MaxTokens / ContentFilter. A stream without `response.completed` / `.incomplete` / `.failed` / `error` ends in
//!   an Error from [`ir::StreamDecoder::finish`].

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::ir::{
    self, ChatRequest, ChatResponse, ErrorInfo, ImageSource, Message, Part, Reasoning, Role, StopReason, StreamEvent,
    ToolChoice, ToolDefinition, TranslateError, Usage,
};
use crate::sse;
use crate::wire::{null_default, opt, typed};

// ---------------------------------------------------------------------------------------------------------------
// Serde helpers

/// Arguments are JSON text, but some OpenAI-compatible upstreams send the object itself.
fn string_or_json<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Wire types (read)

/// Top-level request fields, each parsed on its own so errors name the field.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RequestFields {
    model: Option<Value>,
    input: Option<Value>,
    instructions: Option<Value>,
    tools: Option<Value>,
    tool_choice: Option<Value>,
    max_output_tokens: Option<Value>,
    temperature: Option<Value>,
    top_p: Option<Value>,
    stream: Option<Value>,
    user: Option<Value>,
    safety_identifier: Option<Value>,
    reasoning: Option<Value>,
    previous_response_id: Option<Value>,
}

/// Any input or output item; which fields matter depends on `type`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct InItem {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<String>,
    role: Option<String>,
    /// Message: a string or parts. Reasoning: `reasoning_text` parts.
    content: Option<Value>,
    call_id: Option<String>,
    name: Option<String>,
    #[serde(deserialize_with = "string_or_json")]
    arguments: Option<String>,
    /// `custom_tool_call` input text.
    input: Option<String>,
    output: Option<Value>,
    #[serde(deserialize_with = "null_default")]
    summary: Vec<InPart>,
    encrypted_content: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct InPart {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    refusal: Option<String>,
    /// A string (Responses) or `{"url": ...}` (Chat style, tolerated).
    image_url: Option<Value>,
    file_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct InTool {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    description: Option<String>,
    parameters: Option<Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct InReasoning {
    effort: Option<String>,
    summary: Option<String>,
    generate_summary: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct InResponse {
    id: Option<String>,
    model: Option<String>,
    status: Option<String>,
    #[serde(deserialize_with = "null_default")]
    output: Vec<InItem>,
    usage: Option<InUsage>,
    error: Option<InError>,
    incomplete_details: Option<InIncomplete>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct InUsage {
    input_tokens: Option<i64>,
    input_tokens_details: Option<InInputDetails>,
    output_tokens: Option<i64>,
    output_tokens_details: Option<InOutputDetails>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct InInputDetails {
    cached_tokens: Option<i64>,
    cache_write_tokens: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct InOutputDetails {
    reasoning_tokens: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct InError {
    /// A string, a number or null depending on the upstream.
    code: Option<Value>,
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct InIncomplete {
    reason: Option<String>,
}

/// One stream event; which fields matter depends on `type`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct InEvent {
    #[serde(rename = "type")]
    kind: String,
    response: Option<InResponse>,
    item: Option<InItem>,
    output_index: Option<usize>,
    content_index: Option<usize>,
    item_id: Option<String>,
    delta: Option<String>,
    text: Option<String>,
    #[serde(deserialize_with = "string_or_json")]
    arguments: Option<String>,
    part: Option<InPart>,
    error: Option<InError>,
    code: Option<Value>,
    message: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------------
// Wire types (write)

#[derive(Debug, Serialize)]
struct OutRequest {
    model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    instructions: Option<String>,
    input: Vec<OutInput>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<OutTool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<OutReasoning>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    include: Vec<&'static str>,
    stream: bool,
    store: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutInput {
    Message {
        role: &'static str,
        content: Vec<OutContent>,
    },
    FunctionCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    FunctionCallOutput {
        call_id: String,
        output: Value,
    },
    Reasoning {
        summary: Vec<OutSummary>,
        #[serde(skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<String>,
    },
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutContent {
    InputText { text: String },
    InputImage { image_url: String, detail: &'static str },
    OutputText { text: String, annotations: Vec<Value> },
}

#[derive(Debug, Serialize)]
struct OutTool {
    #[serde(rename = "type")]
    kind: &'static str,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    parameters: Value,
    strict: bool,
}

#[derive(Debug, Serialize)]
struct OutReasoning {
    #[serde(skip_serializing_if = "Option::is_none")]
    effort: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summary: Option<&'static str>,
}

#[derive(Debug, Clone, Serialize)]
struct OutSummary {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
}

impl OutSummary {
    fn new(text: String) -> Self {
        Self { kind: "summary_text", text }
    }
}

#[derive(Debug, Clone, Serialize)]
struct OutText {
    #[serde(rename = "type")]
    kind: &'static str,
    annotations: Vec<Value>,
    logprobs: Vec<Value>,
    text: String,
}

impl OutText {
    fn new(text: String) -> Self {
        Self { kind: "output_text", annotations: Vec::new(), logprobs: Vec::new(), text }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutItem {
    Message {
        id: String,
        status: &'static str,
        role: &'static str,
        content: Vec<OutText>,
    },
    Reasoning {
        id: String,
        summary: Vec<OutSummary>,
        #[serde(skip_serializing_if = "Option::is_none")]
        encrypted_content: Option<String>,
    },
    FunctionCall {
        id: String,
        status: &'static str,
        arguments: String,
        call_id: String,
        name: String,
    },
}

/// The response object (non-streaming body and stream snapshots).
#[derive(Debug, Clone, Serialize)]
struct OutResponse {
    id: String,
    object: &'static str,
    created_at: i64,
    status: &'static str,
    error: Option<OutError>,
    incomplete_details: Option<OutIncomplete>,
    instructions: Option<String>,
    model: String,
    output: Vec<OutItem>,
    parallel_tool_calls: bool,
    previous_response_id: Option<String>,
    tool_choice: &'static str,
    tools: Vec<Value>,
    usage: Option<OutUsage>,
    metadata: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize)]
struct OutError {
    code: String,
    message: String,
}

#[derive(Debug, Clone, Serialize)]
struct OutIncomplete {
    reason: &'static str,
}

#[derive(Debug, Clone, Serialize)]
struct OutUsage {
    input_tokens: i64,
    input_tokens_details: OutInputDetails,
    output_tokens: i64,
    output_tokens_details: OutOutputDetails,
    total_tokens: i64,
}

#[derive(Debug, Clone, Serialize)]
struct OutInputDetails {
    cached_tokens: i64,
    #[serde(skip_serializing_if = "is_zero")]
    cache_write_tokens: i64,
}

#[derive(Debug, Clone, Serialize)]
struct OutOutputDetails {
    reasoning_tokens: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// The `error` object inside an `error` stream event.
#[derive(Debug, Clone, Serialize)]
struct OutErrorDetail {
    #[serde(rename = "type")]
    kind: &'static str,
    code: Option<&'static str>,
    message: String,
    param: Option<String>,
}

/// Stream events as written; `sequence_number` is added when framing.
#[derive(Debug, Serialize)]
#[serde(tag = "type")]
enum OutEvent {
    #[serde(rename = "response.created")]
    Created { response: Box<OutResponse> },
    #[serde(rename = "response.in_progress")]
    InProgress { response: Box<OutResponse> },
    #[serde(rename = "response.completed")]
    Completed { response: Box<OutResponse> },
    #[serde(rename = "response.incomplete")]
    Incomplete { response: Box<OutResponse> },
    #[serde(rename = "response.failed")]
    Failed { response: Box<OutResponse> },
    #[serde(rename = "response.output_item.added")]
    ItemAdded { output_index: usize, item: OutItem },
    #[serde(rename = "response.output_item.done")]
    ItemDone { output_index: usize, item: OutItem },
    #[serde(rename = "response.content_part.added")]
    PartAdded { item_id: String, output_index: usize, content_index: usize, part: OutText },
    #[serde(rename = "response.content_part.done")]
    PartDone { item_id: String, output_index: usize, content_index: usize, part: OutText },
    #[serde(rename = "response.output_text.delta")]
    TextDelta { item_id: String, output_index: usize, content_index: usize, delta: String, logprobs: Vec<Value> },
    #[serde(rename = "response.output_text.done")]
    TextDone { item_id: String, output_index: usize, content_index: usize, text: String, logprobs: Vec<Value> },
    #[serde(rename = "response.reasoning_summary_part.added")]
    SummaryPartAdded { item_id: String, output_index: usize, summary_index: usize, part: OutSummary },
    #[serde(rename = "response.reasoning_summary_part.done")]
    SummaryPartDone { item_id: String, output_index: usize, summary_index: usize, part: OutSummary },
    #[serde(rename = "response.reasoning_summary_text.delta")]
    SummaryDelta { item_id: String, output_index: usize, summary_index: usize, delta: String },
    #[serde(rename = "response.reasoning_summary_text.done")]
    SummaryDone { item_id: String, output_index: usize, summary_index: usize, text: String },
    #[serde(rename = "response.function_call_arguments.delta")]
    ArgsDelta { item_id: String, output_index: usize, delta: String },
    #[serde(rename = "response.function_call_arguments.done")]
    ArgsDone { item_id: String, output_index: usize, arguments: String },
    /// Carries the fields both at the top level (API reference) and in `error` (what the API sends), so either
    /// reader finds them.
    #[serde(rename = "error")]
    Error { code: Option<&'static str>, message: String, param: Option<String>, error: OutErrorDetail },
}

// ---------------------------------------------------------------------------------------------------------------
// Requests

/// Reads a Responses request body.
pub fn request_to_ir(body: &[u8]) -> Result<ChatRequest, TranslateError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| TranslateError::field("body", format!("not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(TranslateError::field("body", "expected a JSON object"));
    }
    let fields: RequestFields = typed(value, "body")?;

    let model = opt::<String>(fields.model, "model")?
        .filter(|m| !m.is_empty())
        .ok_or_else(|| TranslateError::field("model", "required"))?;
    if opt::<String>(fields.previous_response_id, "previous_response_id")?.is_some_and(|id| !id.is_empty()) {
        return Err(TranslateError::Unsupported(
            "previous_response_id: the earlier turns live on OpenAI's servers; send the full input instead".into(),
        ));
    }

    let mut system: Vec<String> =
        opt::<String>(fields.instructions, "instructions")?.filter(|s| !s.is_empty()).into_iter().collect();
    let mut messages: Vec<Message> = Vec::new();
    match fields.input {
        None | Some(Value::Null) => return Err(TranslateError::field("input", "required")),
        Some(Value::String(text)) => messages.push(Message { role: Role::User, content: vec![Part::Text(text)] }),
        Some(Value::Array(items)) => {
            for (i, raw) in items.into_iter().enumerate() {
                input_item(raw, &format!("input[{i}]"), &mut system, &mut messages)?;
            }
        }
        Some(_) => return Err(TranslateError::field("input", "expected a string or an array")),
    }

    let tools = match fields.tools {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut tools = Vec::new();
            for (i, raw) in items.into_iter().enumerate() {
                let path = format!("tools[{i}]");
                let tool: InTool = typed(raw, &path)?;
                // Hosted tools (web_search, file_search, custom, ...) have no neutral form: dropped.
                if tool.kind.as_deref() != Some("function") {
                    continue;
                }
                let name = tool
                    .name
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| TranslateError::field(format!("{path}.name"), "required"))?;
                let parameters = tool
                    .parameters
                    .filter(|p| !p.is_null())
                    .unwrap_or_else(|| json!({ "type": "object", "properties": {} }));
                tools.push(ToolDefinition { name, description: tool.description, parameters });
            }
            tools
        }
        Some(_) => return Err(TranslateError::field("tools", "expected an array")),
    };

    let tool_choice = match fields.tool_choice {
        None | Some(Value::Null) => None,
        Some(Value::String(mode)) => Some(match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => return Err(TranslateError::field("tool_choice", format!("unknown mode {other:?}"))),
        }),
        Some(Value::Object(choice)) => match choice.get("type").and_then(Value::as_str) {
            Some("function") => match choice.get("name").and_then(Value::as_str) {
                Some(name) if !name.is_empty() => Some(ToolChoice::Tool(name.to_owned())),
                _ => return Err(TranslateError::field("tool_choice.name", "required")),
            },
            Some("allowed_tools") if choice.get("mode").and_then(Value::as_str) == Some("required") => {
                Some(ToolChoice::Required)
            }
            _ => Some(ToolChoice::Auto), // hosted-tool choices and allowed_tools/auto
        },
        Some(_) => return Err(TranslateError::field("tool_choice", "expected a string or an object")),
    };

    let reasoning = opt::<InReasoning>(fields.reasoning, "reasoning")?.and_then(|r| {
        let summary = r.summary.or(r.generate_summary);
        let include_thoughts = summary.as_deref().is_some_and(|s| s != "none");
        (r.effort.is_some() || include_thoughts).then_some(Reasoning {
            effort: r.effort,
            budget_tokens: None,
            include_thoughts,
        })
    });

    Ok(ChatRequest {
        model,
        system,
        messages,
        tools,
        tool_choice,
        max_output_tokens: opt(fields.max_output_tokens, "max_output_tokens")?,
        temperature: opt(fields.temperature, "temperature")?,
        top_p: opt(fields.top_p, "top_p")?,
        stop: Vec::new(),
        stream: opt(fields.stream, "stream")?.unwrap_or(false),
        reasoning,
        user: match opt::<String>(fields.user, "user")? {
            Some(user) => Some(user),
            None => opt(fields.safety_identifier, "safety_identifier")?,
        },
    })
}

/// Appends a part to the last message when it has the same role (consecutive items of one role are one turn).
fn push_part(messages: &mut Vec<Message>, role: Role, part: Part) {
    match messages.last_mut() {
        Some(last) if last.role == role => last.content.push(part),
        _ => messages.push(Message { role, content: vec![part] }),
    }
}

fn input_item(
    raw: Value,
    path: &str,
    system: &mut Vec<String>,
    messages: &mut Vec<Message>,
) -> Result<(), TranslateError> {
    if !raw.is_object() {
        return Err(TranslateError::field(path, "expected an object"));
    }
    let item: InItem = typed(raw, path)?;
    let kind = match item.kind.as_deref() {
        Some(kind) => kind,
        None if item.role.is_some() => "message",
        None => return Err(TranslateError::field(format!("{path}.type"), "required")),
    };
    match kind {
        "message" => {
            let role = match item.role.as_deref() {
                Some("user") => Role::User,
                Some("assistant") => Role::Assistant,
                Some("system" | "developer") => {
                    let parts = content_parts(item.content, path)?;
                    system.extend(parts.into_iter().filter_map(|p| match p {
                        Part::Text(text) => Some(text),
                        _ => None,
                    }));
                    return Ok(());
                }
                Some(other) => {
                    return Err(TranslateError::field(
                        format!("{path}.role"),
                        format!("unknown role {other:?} (expected user, assistant, system or developer)"),
                    ));
                }
                None => return Err(TranslateError::field(format!("{path}.role"), "required")),
            };
            for part in content_parts(item.content, path)? {
                push_part(messages, role, part);
            }
        }
        "function_call" | "custom_tool_call" => {
            let id = item
                .call_id
                .filter(|id| !id.is_empty())
                .ok_or_else(|| TranslateError::field(format!("{path}.call_id"), "required"))?;
            let name = item
                .name
                .filter(|n| !n.is_empty())
                .ok_or_else(|| TranslateError::field(format!("{path}.name"), "required"))?;
            let arguments = if kind == "custom_tool_call" {
                json!({ "input": item.input.unwrap_or_default() }).to_string()
            } else {
                item.arguments.unwrap_or_default()
            };
            push_part(messages, Role::Assistant, Part::ToolCall { id, name, arguments });
        }
        "function_call_output" | "custom_tool_call_output" => {
            let call_id = item
                .call_id
                .filter(|id| !id.is_empty())
                .ok_or_else(|| TranslateError::field(format!("{path}.call_id"), "required"))?;
            let content = match item.output {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::String(text)) => vec![Part::Text(text)],
                Some(array @ Value::Array(_)) => content_parts(Some(array), &format!("{path}.output"))?,
                Some(other) => vec![Part::Text(other.to_string())],
            };
            push_part(messages, Role::Tool, Part::ToolResult { call_id, content, is_error: false });
        }
        "reasoning" => {
            let text = reasoning_text(&item);
            let signature = item.encrypted_content.filter(|s| !s.is_empty());
            if !text.is_empty() || signature.is_some() {
                push_part(messages, Role::Assistant, Part::Thinking { text, signature });
            }
        }
        "item_reference" => {
            return Err(TranslateError::Unsupported(format!(
                "{path}: item_reference points at a stored item; send the item itself"
            )));
        }
        // Hosted tool calls and their results (web_search_call, file_search_call, ...): no neutral form.
        _ => {}
    }
    Ok(())
}

/// Summary texts joined by a blank line; raw `reasoning_text` content when there is no summary.
fn reasoning_text(item: &InItem) -> String {
    let summary: Vec<&str> = item.summary.iter().filter_map(|p| p.text.as_deref()).filter(|t| !t.is_empty()).collect();
    if !summary.is_empty() {
        return summary.join("\n\n");
    }
    let content: Vec<InPart> = item.content.clone().and_then(|c| serde_json::from_value(c).ok()).unwrap_or_default();
    content.iter().filter_map(|p| p.text.as_deref()).collect::<Vec<_>>().join("")
}

/// A message's `content` (string or parts) → neutral parts.
fn content_parts(content: Option<Value>, path: &str) -> Result<Vec<Part>, TranslateError> {
    let items = match content {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(text)) => return Ok(vec![Part::Text(text)]),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(TranslateError::field(format!("{path}.content"), "expected a string or an array")),
    };
    let mut parts = Vec::new();
    for (j, raw) in items.into_iter().enumerate() {
        let part_path = format!("{path}.content[{j}]");
        let part: InPart = typed(raw, &part_path)?;
        match part.kind.as_deref() {
            Some("input_text" | "output_text" | "text") => parts.push(Part::Text(part.text.unwrap_or_default())),
            Some("refusal") => parts.push(Part::Text(part.refusal.or(part.text).unwrap_or_default())),
            Some("input_image") => {
                let url = match part.image_url {
                    Some(Value::String(url)) => Some(url),
                    Some(Value::Object(map)) => map.get("url").and_then(Value::as_str).map(str::to_owned),
                    _ => None,
                };
                match url.filter(|u| !u.is_empty()) {
                    Some(url) => parts.push(Part::Image(image_from_url(url))),
                    None if part.file_id.is_some() => {
                        return Err(TranslateError::Unsupported(format!(
                            "{part_path}.file_id: uploaded files only exist on OpenAI"
                        )));
                    }
                    None => return Err(TranslateError::field(format!("{part_path}.image_url"), "required")),
                }
            }
            Some(kind @ ("input_file" | "input_audio")) => {
                return Err(TranslateError::Unsupported(format!(
                    "{part_path}: {kind} content (only images translate)"
                )));
            }
            Some(other) => {
                return Err(TranslateError::field(
                    format!("{part_path}.type"),
                    format!("unknown content type {other:?}"),
                ));
            }
            None => return Err(TranslateError::field(format!("{part_path}.type"), "required")),
        }
    }
    Ok(parts)
}

fn image_from_url(url: String) -> ImageSource {
    if let Some(rest) = url.strip_prefix("data:")
        && let Some((meta, data)) = rest.split_once(',')
        && let Some(media_type) = meta.strip_suffix(";base64")
        && crate::ir::is_image_media_type(media_type)
    {
        return ImageSource::Base64 { media_type: media_type.to_owned(), data: data.to_owned() };
    }
    ImageSource::Url(url)
}

fn image_to_url(image: &ImageSource) -> String {
    match image {
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        ImageSource::Url(url) => url.clone(),
    }
}

/// Writes a neutral request as a Responses body.
pub fn request_from_ir(request: &ChatRequest) -> Result<Value, TranslateError> {
    let mut input = Vec::new();
    for message in &request.messages {
        let role = match message.role {
            Role::Assistant => "assistant",
            Role::User | Role::Tool => "user",
        };
        let mut content: Vec<OutContent> = Vec::new();
        let flush = |content: &mut Vec<OutContent>, input: &mut Vec<OutInput>| {
            if !content.is_empty() {
                input.push(OutInput::Message { role, content: std::mem::take(content) });
            }
        };
        for part in &message.content {
            match part {
                Part::Text(text) if role == "assistant" => {
                    content.push(OutContent::OutputText { text: text.clone(), annotations: Vec::new() });
                }
                Part::Text(text) => content.push(OutContent::InputText { text: text.clone() }),
                Part::Image(image) if role == "user" => {
                    content.push(OutContent::InputImage { image_url: image_to_url(image), detail: "auto" });
                }
                Part::Image(_) => {} // assistant images cannot be sent back
                Part::Thinking { text, signature } => {
                    // Without encrypted content a stateless upstream cannot use the reasoning.
                    if let Some(signature) = signature.clone().filter(|s| !s.is_empty()) {
                        flush(&mut content, &mut input);
                        let summary = if text.is_empty() { Vec::new() } else { vec![OutSummary::new(text.clone())] };
                        input.push(OutInput::Reasoning { summary, encrypted_content: Some(signature) });
                    }
                }
                Part::ToolCall { id, name, arguments } => {
                    flush(&mut content, &mut input);
                    let arguments = if arguments.trim().is_empty() { "{}".to_owned() } else { arguments.clone() };
                    input.push(OutInput::FunctionCall { call_id: id.clone(), name: name.clone(), arguments });
                }
                Part::ToolResult { call_id, content: result, .. } => {
                    flush(&mut content, &mut input);
                    input
                        .push(OutInput::FunctionCallOutput { call_id: call_id.clone(), output: result_output(result) });
                }
            }
        }
        flush(&mut content, &mut input);
    }

    let tools = request
        .tools
        .iter()
        .map(|t| OutTool {
            kind: "function",
            name: t.name.clone(),
            description: t.description.clone(),
            parameters: if t.parameters.is_null() {
                json!({ "type": "object", "properties": {} })
            } else {
                t.parameters.clone()
            },
            strict: false,
        })
        .collect();

    let tool_choice = request.tool_choice.as_ref().map(|choice| match choice {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Tool(name) => json!({ "type": "function", "name": name }),
    });

    let reasoning = request.reasoning.as_ref().map(|r| OutReasoning {
        effort: r.effort.clone().or_else(|| r.budget_tokens.map(effort_for_budget)),
        summary: r.include_thoughts.then_some("auto"),
    });
    let wants_reasoning = reasoning.as_ref().is_some_and(|r| r.effort.as_deref() != Some("none"));

    let out = OutRequest {
        model: request.model.clone(),
        instructions: (!request.system.is_empty()).then(|| request.system.join("\n\n")),
        input,
        tools,
        tool_choice,
        max_output_tokens: request.max_output_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        reasoning,
        include: if wants_reasoning { vec!["reasoning.encrypted_content"] } else { Vec::new() },
        stream: request.stream,
        store: false,
        user: request.user.clone(),
    };
    serde_json::to_value(out).map_err(|e| TranslateError::Unsupported(e.to_string()))
}

fn effort_for_budget(budget: i64) -> String {
    match budget {
        ..=0 => "none",
        1..=2048 => "low",
        2049..=16384 => "medium",
        _ => "high",
    }
    .to_owned()
}

/// A tool result as `function_call_output.output`: text, or parts when it holds images.
fn result_output(content: &[Part]) -> Value {
    let has_images = content.iter().any(|p| matches!(p, Part::Image(_)));
    if !has_images {
        let text = content
            .iter()
            .filter_map(|p| match p {
                Part::Text(t) => Some(t.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("\n");
        return Value::String(text);
    }
    let parts: Vec<OutContent> = content
        .iter()
        .filter_map(|p| match p {
            Part::Text(text) => Some(OutContent::InputText { text: text.clone() }),
            Part::Image(image) => Some(OutContent::InputImage { image_url: image_to_url(image), detail: "auto" }),
            _ => None,
        })
        .collect();
    serde_json::to_value(parts).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------------------------
// Responses

/// Reads a non-streaming response body.
pub fn response_to_ir(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| TranslateError::Upstream(format!("Responses body is not JSON: {e}")))?;
    if value.get("error").is_some_and(Value::is_object) && value.get("output").is_none() {
        let info = error_to_ir(0, body);
        return Err(TranslateError::Upstream(format!("OpenAI error: {}", info.message)));
    }
    let response: InResponse =
        serde_json::from_value(value).map_err(|e| TranslateError::Upstream(format!("not a Responses body: {e}")))?;

    let mut content = Vec::new();
    let mut refused = false;
    for item in &response.output {
        match item.kind.as_deref() {
            Some("message") => {
                let parts: Vec<InPart> =
                    item.content.clone().and_then(|c| serde_json::from_value(c).ok()).unwrap_or_default();
                for part in parts {
                    match part.kind.as_deref() {
                        Some("refusal") => {
                            refused = true;
                            content.push(Part::Text(part.refusal.or(part.text).unwrap_or_default()));
                        }
                        _ => {
                            if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                                content.push(Part::Text(text));
                            }
                        }
                    }
                }
            }
            Some(kind @ ("function_call" | "custom_tool_call")) => {
                let arguments = if kind == "custom_tool_call" {
                    json!({ "input": item.input.clone().unwrap_or_default() }).to_string()
                } else {
                    item.arguments.clone().unwrap_or_default()
                };
                content.push(Part::ToolCall {
                    id: item.call_id.clone().or_else(|| item.id.clone()).unwrap_or_default(),
                    name: item.name.clone().unwrap_or_default(),
                    arguments,
                });
            }
            Some("reasoning") => {
                let text = reasoning_text(item);
                let signature = item.encrypted_content.clone().filter(|s| !s.is_empty());
                if !text.is_empty() || signature.is_some() {
                    content.push(Part::Thinking { text, signature });
                }
            }
            _ => {} // hosted tool calls
        }
    }
    let has_calls = content.iter().any(|p| matches!(p, Part::ToolCall { .. }));
    let stop_reason = stop_for(&response, has_calls, refused);
    Ok(ChatResponse {
        id: response.id.clone().unwrap_or_default(),
        model: response.model.clone().unwrap_or_default(),
        content,
        stop_reason,
        usage: response.usage.as_ref().map(usage_to_ir).unwrap_or_default(),
    })
}

fn stop_for(response: &InResponse, has_calls: bool, refused: bool) -> Option<StopReason> {
    match response.status.as_deref() {
        Some("incomplete") => Some(incomplete_reason(response.incomplete_details.as_ref())),
        Some("failed" | "cancelled") => Some(StopReason::Error),
        Some("completed") | None => Some(if refused {
            StopReason::ContentFilter
        } else if has_calls {
            StopReason::ToolUse
        } else {
            StopReason::EndTurn
        }),
        Some(_) => None, // queued / in_progress (background responses)
    }
}

fn incomplete_reason(details: Option<&InIncomplete>) -> StopReason {
    match details.and_then(|d| d.reason.as_deref()) {
        Some("content_filter") => StopReason::ContentFilter,
        _ => StopReason::MaxTokens,
    }
}

pub(crate) fn usage_to_ir(usage: &InUsage) -> Usage {
    let input = usage.input_tokens_details.clone().unwrap_or_default();
    Usage {
        input_tokens: usage.input_tokens.unwrap_or(0),
        output_tokens: usage.output_tokens.unwrap_or(0),
        cached_input_tokens: input.cached_tokens.unwrap_or(0),
        cache_creation_tokens: input.cache_write_tokens.unwrap_or(0),
        reasoning_tokens: usage.output_tokens_details.as_ref().and_then(|d| d.reasoning_tokens).unwrap_or(0),
    }
}

fn usage_from_ir(usage: &Usage) -> OutUsage {
    OutUsage {
        input_tokens: usage.input_tokens,
        input_tokens_details: OutInputDetails {
            cached_tokens: usage.cached_input_tokens,
            cache_write_tokens: usage.cache_creation_tokens,
        },
        output_tokens: usage.output_tokens,
        output_tokens_details: OutOutputDetails { reasoning_tokens: usage.reasoning_tokens },
        total_tokens: usage.input_tokens.saturating_add(usage.output_tokens),
    }
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).ok().and_then(|d| i64::try_from(d.as_secs()).ok()).unwrap_or(0)
}

fn fresh_response_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("resp_{nanos:x}")
}

/// Output item ids derived from the response id, so they are unique across responses.
fn item_id(prefix: &str, response_id: &str, n: usize) -> String {
    format!("{prefix}_{}_{n}", response_id.trim_start_matches("resp_"))
}

fn snapshot(id: &str, model: &str, created_at: i64, status: &'static str) -> OutResponse {
    OutResponse {
        id: id.to_owned(),
        object: "response",
        created_at,
        status,
        error: None,
        incomplete_details: None,
        instructions: None,
        model: model.to_owned(),
        output: Vec::new(),
        parallel_tool_calls: true,
        previous_response_id: None,
        tool_choice: "auto",
        tools: Vec::new(),
        usage: None,
        metadata: Map::new(),
    }
}

/// Sets status / incomplete_details / error of a finished response from its stop reason.
fn finish_snapshot(response: &mut OutResponse, stop: StopReason) {
    match stop {
        StopReason::MaxTokens => {
            response.status = "incomplete";
            response.incomplete_details = Some(OutIncomplete { reason: "max_output_tokens" });
        }
        StopReason::ContentFilter => {
            response.status = "incomplete";
            response.incomplete_details = Some(OutIncomplete { reason: "content_filter" });
        }
        StopReason::Error => {
            response.status = "failed";
            response.error = Some(OutError { code: "server_error".into(), message: "upstream failed".into() });
        }
        StopReason::EndTurn | StopReason::StopSequence | StopReason::ToolUse => response.status = "completed",
    }
}

/// Writes a neutral response as a Responses body.
pub fn response_from_ir(response: &ChatResponse) -> Value {
    let id = if response.id.is_empty() { fresh_response_id() } else { response.id.clone() };
    let mut output = Vec::new();
    let mut texts: Vec<OutText> = Vec::new();
    let flush = |texts: &mut Vec<OutText>, output: &mut Vec<OutItem>| {
        if !texts.is_empty() {
            let n = output.len();
            output.push(OutItem::Message {
                id: item_id("msg", &id, n),
                status: "completed",
                role: "assistant",
                content: std::mem::take(texts),
            });
        }
    };
    for part in &response.content {
        match part {
            Part::Text(text) => texts.push(OutText::new(text.clone())),
            Part::Thinking { text, signature } => {
                flush(&mut texts, &mut output);
                let n = output.len();
                output.push(OutItem::Reasoning {
                    id: item_id("rs", &id, n),
                    summary: if text.is_empty() { Vec::new() } else { vec![OutSummary::new(text.clone())] },
                    encrypted_content: signature.clone(),
                });
            }
            Part::ToolCall { id: call_id, name, arguments } => {
                flush(&mut texts, &mut output);
                let n = output.len();
                output.push(OutItem::FunctionCall {
                    id: item_id("fc", &id, n),
                    status: "completed",
                    arguments: arguments.clone(),
                    call_id: call_id.clone(),
                    name: name.clone(),
                });
            }
            Part::Image(_) | Part::ToolResult { .. } => {}
        }
    }
    flush(&mut texts, &mut output);

    let mut body = snapshot(&id, &response.model, now_secs(), "completed");
    finish_snapshot(&mut body, response.stop_reason.unwrap_or(StopReason::EndTurn));
    body.output = output;
    body.usage = Some(usage_from_ir(&response.usage));
    serde_json::to_value(body).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

/// (status, kind) for an OpenAI error `code` or `type`.
fn classify(name: &str) -> Option<(u16, &'static str)> {
    Some(match name {
        "rate_limit_exceeded" | "insufficient_quota" | "rate_limit_error" | "requests" | "tokens" => {
            (429, "rate_limit")
        }
        "invalid_api_key" | "authentication_error" | "invalid_authentication" | "unauthorized" => {
            (401, "authentication")
        }
        "permission_error" | "permission_denied" | "unsupported_country_region_territory" => (403, "permission"),
        "model_not_found" | "not_found_error" | "not_found" => (404, "not_found"),
        "server_is_overloaded" | "overloaded" | "overloaded_error" | "slow_down" => (503, "overloaded"),
        "timeout" | "request_timeout" => (504, "timeout"),
        "server_error" | "internal_error" | "api_error" => (500, "server_error"),
        "invalid_request_error"
        | "invalid_prompt"
        | "context_length_exceeded"
        | "invalid_value"
        | "unsupported_parameter"
        | "unsupported_value"
        | "invalid_type"
        | "missing_required_parameter" => (400, "invalid_request"),
        _ => return None,
    })
}

fn code_text(code: Option<&Value>) -> Option<String> {
    match code? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Neutral error from an OpenAI error object. `status` is the HTTP status, or 0 inside a stream (then the code /
/// type decide it).
fn error_info(status: u16, code: Option<String>, kind: Option<&str>, message: Option<String>) -> ErrorInfo {
    let by_code = code.as_deref().and_then(classify);
    let by_type = kind.and_then(classify);
    let http_known = (100..=599).contains(&status);
    let status = if http_known { status } else { by_code.or(by_type).map_or(500, |(s, _)| s) };
    let kind = match (by_code, http_known && status >= 400) {
        (Some((_, kind)), _) => kind,
        (None, true) => ErrorInfo::kind_for_status(status),
        (None, false) => by_type.map_or_else(|| ErrorInfo::kind_for_status(status), |(_, kind)| kind),
    };
    let message = message.filter(|m| !m.is_empty()).unwrap_or_else(|| match &code {
        Some(code) => code.clone(),
        None => format!("upstream error (HTTP {status})"),
    });
    ErrorInfo { status, kind: kind.into(), message }
}

fn error_from_in(status: u16, error: &InError) -> ErrorInfo {
    error_info(status, code_text(error.code.as_ref()), error.kind.as_deref(), error.message.clone())
}

/// Reads an upstream error body: `{"error":{"message","type","param","code"}}`, `{"error": "text"}`, or anything
/// else (the text becomes the message).
pub fn error_to_ir(status: u16, body: &[u8]) -> ErrorInfo {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    match parsed.as_ref().and_then(|v| v.get("error")) {
        Some(Value::String(message)) => return error_info(status, None, None, Some(message.clone())),
        Some(object @ Value::Object(_)) => {
            let error: InError = serde_json::from_value(object.clone()).unwrap_or_default();
            return error_from_in(status, &error);
        }
        _ => {}
    }
    let status = if (100..=599).contains(&status) { status } else { 502 };
    let mut text = String::from_utf8_lossy(body).trim().to_owned();
    if text.len() > 4000 {
        let mut cut = 4000;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    let message = if text.is_empty() { format!("upstream returned HTTP {status}") } else { text };
    ErrorInfo { status, kind: ErrorInfo::kind_for_status(status).into(), message }
}

/// OpenAI's (`type`, `code`) for a neutral error.
fn openai_type_code(error: &ErrorInfo) -> (&'static str, Option<&'static str>) {
    match error.kind.as_str() {
        "invalid_request" => ("invalid_request_error", None),
        "authentication" => ("invalid_request_error", Some("invalid_api_key")),
        "permission" => ("invalid_request_error", Some("permission_denied")),
        "not_found" => ("invalid_request_error", Some("not_found")),
        "rate_limit" => ("rate_limit_error", Some("rate_limit_exceeded")),
        "overloaded" => ("server_error", Some("server_is_overloaded")),
        "timeout" => ("server_error", Some("timeout")),
        _ if (400..500).contains(&error.status) => ("invalid_request_error", None),
        _ => ("server_error", Some("server_error")),
    }
}

/// `{"error":{"message","type","param","code"}}`.
pub fn error_from_ir(error: &ErrorInfo) -> Value {
    let (kind, code) = openai_type_code(error);
    json!({ "error": { "message": error.message, "type": kind, "param": null, "code": code } })
}

fn error_event(error: &ErrorInfo) -> OutEvent {
    let (kind, code) = openai_type_code(error);
    OutEvent::Error {
        code,
        message: error.message.clone(),
        param: None,
        error: OutErrorDetail { kind, code, message: error.message.clone(), param: None },
    }
}

fn failed_snapshot(mut response: OutResponse, error: &ErrorInfo) -> OutResponse {
    let (kind, code) = openai_type_code(error);
    response.status = "failed";
    response.error = Some(OutError { code: code.unwrap_or(kind).to_owned(), message: error.message.clone() });
    response
}

fn frame_event(event: &OutEvent, sequence_number: Option<u64>) -> String {
    let mut value = serde_json::to_value(event).unwrap_or_default();
    let name = value.get("type").and_then(Value::as_str).unwrap_or("error").to_owned();
    if let (Some(n), Value::Object(map)) = (sequence_number, &mut value) {
        map.insert("sequence_number".into(), Value::from(n));
    }
    sse::frame(Some(&name), &value.to_string())
}

/// A mid-stream error outside an [`Encoder`] (which numbers events itself): an `error` event followed by
/// `response.failed`, without `sequence_number`s since the stream's numbering is unknown here.
pub fn stream_error_frame(error: &ErrorInfo) -> String {
    let failed = failed_snapshot(snapshot("", "", now_secs(), "failed"), error);
    frame_event(&error_event(error), None) + &frame_event(&OutEvent::Failed { response: Box::new(failed) }, None)
}

// ---------------------------------------------------------------------------------------------------------------
// Stream decoding

#[derive(Debug)]
struct TextBlock {
    block: usize,
    text: String,
    closed: bool,
}

#[derive(Debug)]
enum ItemState {
    Message {
        blocks: BTreeMap<usize, TextBlock>,
    },
    Function {
        block: usize,
        sent_args: bool,
        custom: bool,
        closed: bool,
    },
    Reasoning {
        block: Option<usize>,
        had_text: bool,
        /// The current summary part got text.
        part_text: bool,
        /// A new summary part started after earlier text: separate with a blank line.
        separator: bool,
        signature: Option<String>,
        closed: bool,
    },
    Other,
}

/// Responses SSE events → neutral events.
#[derive(Debug, Default)]
pub struct Decoder {
    started: bool,
    terminal: bool,
    next_block: usize,
    items: BTreeMap<usize, ItemState>,
    item_ids: HashMap<String, usize>,
    saw_call: bool,
    refused: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn block(&mut self) -> usize {
        let index = self.next_block;
        self.next_block += 1;
        index
    }

    fn start(&mut self, response: Option<&InResponse>, out: &mut Vec<StreamEvent>) {
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: response.and_then(|r| r.id.clone()).unwrap_or_default(),
                model: response.and_then(|r| r.model.clone()).unwrap_or_default(),
            });
        }
    }

    /// The output index an event refers to (by `output_index`, else by `item_id`).
    fn index_of(&self, event: &InEvent) -> Option<usize> {
        event.output_index.or_else(|| event.item_id.as_ref().and_then(|id| self.item_ids.get(id).copied()))
    }

    fn text_delta(&mut self, output_index: usize, content_index: usize, delta: String, out: &mut Vec<StreamEvent>) {
        let next = self.next_block;
        let Some(ItemState::Message { blocks }) = self.items.get_mut(&output_index) else {
            return;
        };
        let block = blocks.entry(content_index).or_insert_with(|| {
            out.push(StreamEvent::TextStart { index: next });
            TextBlock { block: next, text: String::new(), closed: false }
        });
        if block.block == next {
            self.next_block += 1;
        }
        if block.closed || delta.is_empty() {
            return;
        }
        block.text.push_str(&delta);
        out.push(StreamEvent::TextDelta { index: block.block, text: delta });
    }

    fn thinking_delta(&mut self, output_index: usize, delta: String, out: &mut Vec<StreamEvent>) {
        let next = self.next_block;
        let Some(ItemState::Reasoning { block, had_text, part_text, separator, closed, .. }) =
            self.items.get_mut(&output_index)
        else {
            return;
        };
        if *closed || delta.is_empty() {
            return;
        }
        let index = match *block {
            Some(index) => index,
            None => {
                out.push(StreamEvent::ThinkingStart { index: next });
                self.next_block += 1;
                *block = Some(next);
                next
            }
        };
        let text = if std::mem::take(separator) { format!("\n\n{delta}") } else { delta };
        *had_text = true;
        *part_text = true;
        out.push(StreamEvent::ThinkingDelta { index, text });
    }

    fn item_added(&mut self, event: InEvent, out: &mut Vec<StreamEvent>) {
        let Some(item) = event.item else { return };
        let output_index = event.output_index.unwrap_or(self.items.len());
        // A repeated `output_item.added` must not open the item (a tool call) a second time.
        if self.items.contains_key(&output_index) {
            return;
        }
        if let Some(id) = item.id.clone() {
            self.item_ids.insert(id, output_index);
        }
        let state = match item.kind.as_deref() {
            Some("message") => ItemState::Message { blocks: BTreeMap::new() },
            Some(kind @ ("function_call" | "custom_tool_call")) => {
                let block = self.block();
                self.saw_call = true;
                out.push(StreamEvent::ToolCallStart {
                    index: block,
                    id: item.call_id.clone().or(item.id.clone()).unwrap_or_default(),
                    name: item.name.clone().unwrap_or_default(),
                });
                let custom = kind == "custom_tool_call";
                let arguments = item.arguments.unwrap_or_default();
                let sent_args = !custom && !arguments.is_empty();
                if sent_args {
                    out.push(StreamEvent::ToolCallDelta { index: block, arguments });
                }
                ItemState::Function { block, sent_args, custom, closed: false }
            }
            Some("reasoning") => ItemState::Reasoning {
                block: None,
                had_text: false,
                part_text: false,
                separator: false,
                signature: item.encrypted_content.filter(|s| !s.is_empty()),
                closed: false,
            },
            _ => ItemState::Other,
        };
        self.items.insert(output_index, state);
    }

    fn item_done(&mut self, event: InEvent, out: &mut Vec<StreamEvent>) {
        let Some(item) = event.item else { return };
        let output_index = event
            .output_index
            .or_else(|| item.id.as_ref().and_then(|id| self.item_ids.get(id).copied()))
            .unwrap_or(self.items.len());
        if !self.items.contains_key(&output_index) {
            // No `output_item.added` came: open the item now.
            self.item_added(
                InEvent { output_index: Some(output_index), item: Some(item.clone()), ..InEvent::default() },
                out,
            );
        }
        // A repeated `output_item.done` of an item already closed adds nothing: its block ended.
        if matches!(
            self.items.get(&output_index),
            Some(ItemState::Function { closed: true, .. } | ItemState::Reasoning { closed: true, .. })
        ) {
            return;
        }
        match item.kind.as_deref() {
            Some("message") => {
                let had_blocks =
                    matches!(self.items.get(&output_index), Some(ItemState::Message { blocks }) if !blocks.is_empty());
                if !had_blocks {
                    let parts: Vec<InPart> =
                        item.content.clone().and_then(|c| serde_json::from_value(c).ok()).unwrap_or_default();
                    for (content_index, part) in parts.into_iter().enumerate() {
                        let text = if part.kind.as_deref() == Some("refusal") {
                            self.refused = true;
                            part.refusal.or(part.text)
                        } else {
                            part.text
                        };
                        self.text_delta(output_index, content_index, text.unwrap_or_default(), out);
                    }
                }
            }
            Some("function_call" | "custom_tool_call") => {
                if let Some(ItemState::Function { block, sent_args, custom, .. }) = self.items.get_mut(&output_index)
                    && !*sent_args
                {
                    let arguments = if *custom {
                        json!({ "input": item.input.clone().unwrap_or_default() }).to_string()
                    } else {
                        item.arguments.clone().unwrap_or_default()
                    };
                    if !arguments.is_empty() {
                        out.push(StreamEvent::ToolCallDelta { index: *block, arguments });
                    }
                    *sent_args = true;
                }
            }
            Some("reasoning") => {
                let had_text =
                    matches!(self.items.get(&output_index), Some(ItemState::Reasoning { had_text: true, .. }));
                if !had_text {
                    let text = reasoning_text(&item);
                    self.thinking_delta(output_index, text, out);
                }
                let next = self.next_block;
                if let Some(ItemState::Reasoning { block, signature, .. }) = self.items.get_mut(&output_index)
                    && let Some(signature) =
                        item.encrypted_content.clone().filter(|s| !s.is_empty()).or(signature.take())
                {
                    let index = match *block {
                        Some(index) => index,
                        None => {
                            out.push(StreamEvent::ThinkingStart { index: next });
                            self.next_block += 1;
                            *block = Some(next);
                            next
                        }
                    };
                    out.push(StreamEvent::ThinkingSignature { index, signature });
                }
            }
            _ => {}
        }
        self.close_item(output_index, out);
    }

    fn close_item(&mut self, output_index: usize, out: &mut Vec<StreamEvent>) {
        match self.items.get_mut(&output_index) {
            Some(ItemState::Message { blocks }) => {
                for block in blocks.values_mut().filter(|b| !b.closed) {
                    block.closed = true;
                    out.push(StreamEvent::BlockStop { index: block.block });
                }
            }
            Some(ItemState::Function { block, closed, .. }) if !*closed => {
                *closed = true;
                out.push(StreamEvent::BlockStop { index: *block });
            }
            Some(ItemState::Reasoning { block, closed, .. }) if !*closed => {
                *closed = true;
                if let Some(index) = block {
                    out.push(StreamEvent::BlockStop { index: *index });
                }
            }
            _ => {}
        }
    }

    fn close_all(&mut self, out: &mut Vec<StreamEvent>) {
        let indexes: Vec<usize> = self.items.keys().copied().collect();
        for index in indexes {
            self.close_item(index, out);
        }
    }

    fn event(&mut self, event: InEvent, out: &mut Vec<StreamEvent>) {
        match event.kind.as_str() {
            "response.created" | "response.in_progress" | "response.queued" => self.start(event.response.as_ref(), out),
            "response.output_item.added" => {
                self.start(None, out);
                self.item_added(event, out);
            }
            "response.output_item.done" => {
                self.start(None, out);
                self.item_done(event, out);
            }
            "response.content_part.added" => {
                if let (Some(output_index), Some(part)) = (self.index_of(&event), &event.part)
                    && matches!(part.kind.as_deref(), Some("output_text" | "refusal"))
                {
                    self.text_delta(output_index, event.content_index.unwrap_or(0), String::new(), out);
                }
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                if event.kind == "response.refusal.delta" {
                    self.refused = true;
                }
                if let Some(output_index) = self.index_of(&event) {
                    let delta = event.delta.unwrap_or_default();
                    self.text_delta(output_index, event.content_index.unwrap_or(0), delta, out);
                }
            }
            "response.output_text.done" | "response.refusal.done" => {
                // Upstreams that skip deltas: send what the `.done` text adds.
                let Some(output_index) = self.index_of(&event) else { return };
                let content_index = event.content_index.unwrap_or(0);
                let done = event.text.or(event.message).unwrap_or_default();
                let sent = match self.items.get(&output_index) {
                    Some(ItemState::Message { blocks }) => blocks.get(&content_index).map(|b| b.text.clone()),
                    _ => return,
                }
                .unwrap_or_default();
                if done.len() > sent.len() && done.starts_with(&sent) {
                    self.text_delta(output_index, content_index, done[sent.len()..].to_owned(), out);
                }
            }
            "response.content_part.done" => {
                let Some(output_index) = self.index_of(&event) else { return };
                let content_index = event.content_index.unwrap_or(0);
                if let Some(ItemState::Message { blocks }) = self.items.get_mut(&output_index)
                    && let Some(block) = blocks.get_mut(&content_index)
                    && !block.closed
                {
                    block.closed = true;
                    out.push(StreamEvent::BlockStop { index: block.block });
                }
            }
            "response.function_call_arguments.delta" | "response.function_call_arguments.done" => {
                let Some(output_index) = self.index_of(&event) else { return };
                let is_delta = event.kind.ends_with(".delta");
                if let Some(ItemState::Function { block, sent_args, closed: false, .. }) =
                    self.items.get_mut(&output_index)
                {
                    let arguments =
                        if is_delta { event.delta.unwrap_or_default() } else { event.arguments.unwrap_or_default() };
                    if arguments.is_empty() || (!is_delta && *sent_args) {
                        return;
                    }
                    *sent_args = true;
                    out.push(StreamEvent::ToolCallDelta { index: *block, arguments });
                }
            }
            "response.reasoning_summary_part.added" => {
                if let Some(output_index) = self.index_of(&event)
                    && let Some(ItemState::Reasoning { had_text, part_text, separator, .. }) =
                        self.items.get_mut(&output_index)
                {
                    *part_text = false;
                    *separator = *had_text;
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                if let Some(output_index) = self.index_of(&event) {
                    self.thinking_delta(output_index, event.delta.unwrap_or_default(), out);
                }
            }
            "response.reasoning_summary_text.done" => {
                let Some(output_index) = self.index_of(&event) else { return };
                if let Some(ItemState::Reasoning { part_text: false, .. }) = self.items.get(&output_index) {
                    self.thinking_delta(output_index, event.text.unwrap_or_default(), out);
                }
            }
            "response.completed" | "response.incomplete" => {
                self.start(event.response.as_ref(), out);
                self.close_all(out);
                let response = event.response.unwrap_or_default();
                let stop_reason = if event.kind == "response.incomplete" {
                    incomplete_reason(response.incomplete_details.as_ref())
                } else {
                    stop_for(&response, self.saw_call, self.refused).unwrap_or(StopReason::EndTurn)
                };
                out.push(StreamEvent::Finish { stop_reason });
                if let Some(usage) = &response.usage {
                    out.push(StreamEvent::Usage(usage_to_ir(usage)));
                }
                out.push(StreamEvent::Done);
                self.terminal = true;
            }
            "response.failed" | "response.cancelled" => {
                let error = event.response.and_then(|r| r.error).unwrap_or_default();
                let mut info = error_from_in(0, &error);
                if error.message.is_none() && error.code.is_none() {
                    info.message = format!("upstream {}", event.kind.trim_start_matches("response."));
                }
                out.push(StreamEvent::Error(info));
                self.terminal = true;
            }
            "error" => {
                let info = match &event.error {
                    Some(error) => error_from_in(0, error),
                    None => error_info(0, code_text(event.code.as_ref()), None, event.message.clone()),
                };
                out.push(StreamEvent::Error(info));
                self.terminal = true;
            }
            _ => {} // hosted-tool progress, annotations, audio, ...
        }
    }
}

/// Event types the decoder reads (others are skipped without parsing).
fn known_event(kind: &str) -> bool {
    kind == "error"
        || matches!(
            kind.strip_prefix("response."),
            Some(
                "created"
                    | "in_progress"
                    | "queued"
                    | "output_item.added"
                    | "output_item.done"
                    | "content_part.added"
                    | "content_part.done"
                    | "output_text.delta"
                    | "output_text.done"
                    | "refusal.delta"
                    | "refusal.done"
                    | "function_call_arguments.delta"
                    | "function_call_arguments.done"
                    | "reasoning_summary_part.added"
                    | "reasoning_summary_text.delta"
                    | "reasoning_summary_text.done"
                    | "reasoning_text.delta"
                    | "completed"
                    | "incomplete"
                    | "failed"
                    | "cancelled"
            )
        )
}

impl ir::StreamDecoder for Decoder {
    fn decode(&mut self, event: Option<&str>, data: &str) -> Result<Vec<StreamEvent>, TranslateError> {
        let data = data.trim();
        if self.terminal || data.is_empty() || data == "[DONE]" {
            return Ok(Vec::new());
        }
        let value: Value = serde_json::from_str(data)
            .map_err(|e| TranslateError::Upstream(format!("Responses stream event is not JSON: {e}")))?;
        let kind = value.get("type").and_then(Value::as_str).or(event).unwrap_or_default().to_owned();
        if !known_event(&kind) {
            return Ok(Vec::new());
        }
        let mut parsed: InEvent = serde_json::from_value(value)
            .map_err(|e| TranslateError::Upstream(format!("malformed Responses event {kind}: {e}")))?;
        parsed.kind = kind;
        let mut out = Vec::new();
        self.event(parsed, &mut out);
        Ok(out)
    }

    fn finish(&mut self) -> Vec<StreamEvent> {
        if self.terminal {
            return Vec::new();
        }
        self.terminal = true;
        vec![StreamEvent::Error(ErrorInfo {
            status: 502,
            kind: "server_error".into(),
            message: "Responses stream ended before response.completed (truncated)".into(),
        })]
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Stream encoding

#[derive(Debug)]
enum OpenKind {
    Message { text: String },
    Reasoning { text: String, signature: Option<String>, part_open: bool },
    Function { call_id: String, name: String, arguments: String },
}

#[derive(Debug)]
struct OpenItem {
    output_index: usize,
    id: String,
    kind: OpenKind,
}

/// Neutral events → the Responses event sequence: `response.created`, `response.in_progress`, one output item per
/// neutral block (message / reasoning / function_call) with its part and delta events, and a terminal
/// `response.completed` (`response.incomplete` for MaxTokens / ContentFilter, `error` + `response.failed` for
/// errors). Every event has an increasing `sequence_number`.
#[derive(Debug, Default)]
pub struct Encoder {
    sequence: u64,
    id: String,
    model: String,
    created_at: i64,
    started: bool,
    finished: bool,
    next_output: usize,
    open: HashMap<usize, OpenItem>,
    done_items: BTreeMap<usize, OutItem>,
    usage: Option<Usage>,
    stop: Option<StopReason>,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn emit(&mut self, event: &OutEvent, out: &mut Vec<String>) {
        out.push(frame_event(event, Some(self.sequence)));
        self.sequence += 1;
    }

    fn snapshot(&self, status: &'static str) -> OutResponse {
        let mut response = snapshot(&self.id, &self.model, self.created_at, status);
        response.output = self.done_items.values().cloned().collect();
        response.usage = self.usage.as_ref().map(usage_from_ir);
        response
    }

    fn ensure_started(&mut self, out: &mut Vec<String>) {
        if self.started {
            return;
        }
        self.started = true;
        if self.id.is_empty() {
            self.id = fresh_response_id();
        }
        self.created_at = now_secs();
        let created = OutEvent::Created { response: Box::new(self.snapshot("in_progress")) };
        self.emit(&created, out);
        let progress = OutEvent::InProgress { response: Box::new(self.snapshot("in_progress")) };
        self.emit(&progress, out);
    }

    fn open_item(&mut self, index: usize, prefix: &str, kind: OpenKind, out: &mut Vec<String>) {
        self.ensure_started(out);
        let output_index = self.next_output;
        self.next_output += 1;
        let id = item_id(prefix, &self.id, output_index);
        let item = match &kind {
            OpenKind::Message { .. } => {
                OutItem::Message { id: id.clone(), status: "in_progress", role: "assistant", content: Vec::new() }
            }
            OpenKind::Reasoning { .. } => {
                OutItem::Reasoning { id: id.clone(), summary: Vec::new(), encrypted_content: None }
            }
            OpenKind::Function { call_id, name, .. } => OutItem::FunctionCall {
                id: id.clone(),
                status: "in_progress",
                arguments: String::new(),
                call_id: call_id.clone(),
                name: name.clone(),
            },
        };
        self.emit(&OutEvent::ItemAdded { output_index, item }, out);
        if matches!(kind, OpenKind::Message { .. }) {
            let part = OutEvent::PartAdded {
                item_id: id.clone(),
                output_index,
                content_index: 0,
                part: OutText::new(String::new()),
            };
            self.emit(&part, out);
        }
        self.open.insert(index, OpenItem { output_index, id, kind });
    }

    fn close_item(&mut self, index: usize, out: &mut Vec<String>) {
        let Some(OpenItem { output_index, id, kind }) = self.open.remove(&index) else { return };
        let item = match kind {
            OpenKind::Message { text } => {
                let done = OutEvent::TextDone {
                    item_id: id.clone(),
                    output_index,
                    content_index: 0,
                    text: text.clone(),
                    logprobs: Vec::new(),
                };
                self.emit(&done, out);
                let part = OutEvent::PartDone {
                    item_id: id.clone(),
                    output_index,
                    content_index: 0,
                    part: OutText::new(text.clone()),
                };
                self.emit(&part, out);
                OutItem::Message { id, status: "completed", role: "assistant", content: vec![OutText::new(text)] }
            }
            OpenKind::Reasoning { text, signature, part_open } => {
                if part_open {
                    let done = OutEvent::SummaryDone {
                        item_id: id.clone(),
                        output_index,
                        summary_index: 0,
                        text: text.clone(),
                    };
                    self.emit(&done, out);
                    let part = OutEvent::SummaryPartDone {
                        item_id: id.clone(),
                        output_index,
                        summary_index: 0,
                        part: OutSummary::new(text.clone()),
                    };
                    self.emit(&part, out);
                }
                let summary = if text.is_empty() { Vec::new() } else { vec![OutSummary::new(text)] };
                OutItem::Reasoning { id, summary, encrypted_content: signature }
            }
            OpenKind::Function { call_id, name, arguments } => {
                let done = OutEvent::ArgsDone { item_id: id.clone(), output_index, arguments: arguments.clone() };
                self.emit(&done, out);
                OutItem::FunctionCall { id, status: "completed", arguments, call_id, name }
            }
        };
        self.emit(&OutEvent::ItemDone { output_index, item: item.clone() }, out);
        self.done_items.insert(output_index, item);
    }

    fn close_all(&mut self, out: &mut Vec<String>) {
        let mut open: Vec<(usize, usize)> = self.open.iter().map(|(index, item)| (item.output_index, *index)).collect();
        open.sort_unstable();
        for (_, index) in open {
            self.close_item(index, out);
        }
    }

    fn text(&mut self, index: usize, delta: &str, out: &mut Vec<String>) {
        if !matches!(self.open.get(&index), Some(OpenItem { kind: OpenKind::Message { .. }, .. })) {
            self.close_item(index, out);
            self.open_item(index, "msg", OpenKind::Message { text: String::new() }, out);
        }
        let Some(OpenItem { output_index, id, kind: OpenKind::Message { text } }) = self.open.get_mut(&index) else {
            return;
        };
        text.push_str(delta);
        let event = OutEvent::TextDelta {
            item_id: id.clone(),
            output_index: *output_index,
            content_index: 0,
            delta: delta.to_owned(),
            logprobs: Vec::new(),
        };
        self.emit(&event, out);
    }

    fn thinking(&mut self, index: usize, delta: &str, out: &mut Vec<String>) {
        if !matches!(self.open.get(&index), Some(OpenItem { kind: OpenKind::Reasoning { .. }, .. })) {
            self.close_item(index, out);
            let kind = OpenKind::Reasoning { text: String::new(), signature: None, part_open: false };
            self.open_item(index, "rs", kind, out);
        }
        let Some(OpenItem { output_index, id, kind: OpenKind::Reasoning { text, part_open, .. } }) =
            self.open.get_mut(&index)
        else {
            return;
        };
        let (item_id, output_index) = (id.clone(), *output_index);
        text.push_str(delta);
        let first = !std::mem::replace(part_open, true);
        if first {
            let added = OutEvent::SummaryPartAdded {
                item_id: item_id.clone(),
                output_index,
                summary_index: 0,
                part: OutSummary::new(String::new()),
            };
            self.emit(&added, out);
        }
        let event = OutEvent::SummaryDelta { item_id, output_index, summary_index: 0, delta: delta.to_owned() };
        self.emit(&event, out);
    }

    fn terminal(&mut self, out: &mut Vec<String>) {
        self.ensure_started(out);
        self.close_all(out);
        let stop = self.stop.unwrap_or(StopReason::EndTurn);
        let mut response = self.snapshot("completed");
        finish_snapshot(&mut response, stop);
        let event = match response.status {
            "incomplete" => OutEvent::Incomplete { response: Box::new(response) },
            "failed" => {
                let error = ErrorInfo { status: 502, kind: "server_error".into(), message: "upstream failed".into() };
                self.emit(&error_event(&error), out);
                OutEvent::Failed { response: Box::new(failed_snapshot(response, &error)) }
            }
            _ => OutEvent::Completed { response: Box::new(response) },
        };
        self.emit(&event, out);
    }
}

impl ir::StreamEncoder for Encoder {
    fn encode(&mut self, event: &StreamEvent) -> Vec<String> {
        let mut out = Vec::new();
        if self.finished {
            return out;
        }
        match event {
            StreamEvent::Start { id, model } => {
                if !self.started {
                    self.id = id.clone();
                    self.model = model.clone();
                    self.ensure_started(&mut out);
                }
            }
            StreamEvent::TextStart { index } => {
                self.close_item(*index, &mut out);
                self.open_item(*index, "msg", OpenKind::Message { text: String::new() }, &mut out);
            }
            StreamEvent::TextDelta { index, text } => self.text(*index, text, &mut out),
            StreamEvent::ThinkingStart { index } => {
                self.close_item(*index, &mut out);
                let kind = OpenKind::Reasoning { text: String::new(), signature: None, part_open: false };
                self.open_item(*index, "rs", kind, &mut out);
            }
            StreamEvent::ThinkingDelta { index, text } => {
                if !text.is_empty() {
                    self.thinking(*index, text, &mut out);
                }
            }
            StreamEvent::ThinkingSignature { index, signature } => {
                if !matches!(self.open.get(index), Some(OpenItem { kind: OpenKind::Reasoning { .. }, .. })) {
                    self.close_item(*index, &mut out);
                    let kind = OpenKind::Reasoning { text: String::new(), signature: None, part_open: false };
                    self.open_item(*index, "rs", kind, &mut out);
                }
                if let Some(OpenItem { kind: OpenKind::Reasoning { signature: slot, .. }, .. }) =
                    self.open.get_mut(index)
                {
                    *slot = Some(signature.clone());
                }
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.close_item(*index, &mut out);
                let kind = OpenKind::Function { call_id: id.clone(), name: name.clone(), arguments: String::new() };
                self.open_item(*index, "fc", kind, &mut out);
            }
            StreamEvent::ToolCallDelta { index, arguments: delta } => {
                if let Some(OpenItem { output_index, id, kind: OpenKind::Function { arguments, .. } }) =
                    self.open.get_mut(index)
                    && !delta.is_empty()
                {
                    arguments.push_str(delta);
                    let event =
                        OutEvent::ArgsDelta { item_id: id.clone(), output_index: *output_index, delta: delta.clone() };
                    self.emit(&event, &mut out);
                }
            }
            StreamEvent::BlockStop { index } => self.close_item(*index, &mut out),
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            StreamEvent::Finish { stop_reason } => self.stop = Some(*stop_reason),
            StreamEvent::Done => {
                self.terminal(&mut out);
                self.finished = true;
            }
            StreamEvent::Error(error) => {
                self.emit(&error_event(error), &mut out);
                let response = failed_snapshot(self.snapshot("failed"), error);
                self.emit(&OutEvent::Failed { response: Box::new(response) }, &mut out);
                self.finished = true;
            }
        }
        out
    }
}
