//! Google Gemini `generateContent` / `streamGenerateContent?alt=sse`, and the same body inside the Gemini CLI /
//! Antigravity Code Assist envelope ([`wrap_code_assist_request`], [`unwrap_code_assist_response`]).
//!
//! How Gemini maps onto the neutral form:
//! - Roles: `user` ⇄ [`Role::User`], `model` ⇄ [`Role::Assistant`] (legacy `function` reads as user). The
//!   `functionResponse` parts of a user turn become a [`Role::Tool`] message; tool messages are written as `user`,
//!   and consecutive turns of one role are written as one content (Gemini wants turns to alternate).
//! - Function-call ids: `functionCall.id` / `functionResponse.id` are used when present and always written (the API
//!   accepts them). Missing call ids are synthesized: `call_<n>` in requests (numbered over the whole conversation)
//!   and `call_<responseId>_<n>` in responses (unique across turns, which Anthropic requires). A `functionResponse`
//!   without id answers the oldest unanswered call of the same name.
//! - `functionResponse.response` is an object. Read: `{"output": X}`, `{"content": X}` or `{"result": X}` give X as
//!   text, `{"error": X}` gives X with `is_error`, any other object is the result as JSON text. Written: an error
//!   as `{"error": text}`, text that is a JSON object as that object, other text as `{"output": text}` (the keys the
//!   API documents). Images of a result travel in `functionResponse.parts`.
//! - Thought signatures stay in [`Part::Thinking`]: on a `thought: true` part the signature is that thinking's; on any
//!   other part (function call, text, empty text) it becomes a signature-only `Thinking { text: "", signature }`
//!   placed just before that part. Written back, a signature-only thinking is attached to the next part (or to an
//!   empty text part when nothing follows), so Gemini → neutral → Gemini keeps each signature on its part. In
//!   requests, the first function call of a model turn that has no signature gets the documented bypass value
//!   [`SKIP_SIGNATURE`] (Gemini 3 rejects unsigned calls in history it did not produce).
//! - Streamed arguments (Vertex `partialArgs` / `willContinue`) are accumulated into the arguments object and sent as
//!   one [`StreamEvent::ToolCallDelta`] when the call completes.
//! - Usage: input = `promptTokenCount` (includes cached), cached = `cachedContentTokenCount`, output =
//!   `candidatesTokenCount + thoughtsTokenCount`, reasoning = `thoughtsTokenCount`. `toolUsePromptTokenCount` is
//!   not counted.
//! - Stop: `STOP` → EndTurn (ToolUse when the turn has function calls), `MAX_TOKENS` → MaxTokens, safety / recitation
//!   / blocklist / prohibited / SPII / image-safety reasons and `promptFeedback.blockReason` → ContentFilter,
//!   malformed-call reasons → Error (a stream gets an [`StreamEvent::Error`] naming the reason).
//! - Dropped on purpose: safetySettings, responseSchema / responseMimeType, candidateCount, topK, built-in tools
//!   (googleSearch, codeExecution, ...), cachedContent, executableCode parts, and non-image media in responses.
//!   Non-image media in requests is [`TranslateError::Unsupported`].

use std::collections::HashMap;

use serde::de::Deserializer;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value, json};

use crate::ir::{
    self, ChatRequest, ChatResponse, ErrorInfo, ImageSource, Message, Part, Reasoning, Role, StopReason, StreamEvent,
    ToolChoice, ToolDefinition, TranslateError, Usage,
};
use crate::sse;
use crate::wire::{null_default, opt, typed};

/// The value Gemini accepts in place of a thought signature on history it did not produce itself.
pub const SKIP_SIGNATURE: &str = "skip_thought_signature_validator";

// ---------------------------------------------------------------------------------------------------------------
// Code Assist envelope (Gemini CLI, Antigravity)

/// Wraps a Gemini request body the way Code Assist (`v1internal:generateContent`) expects it.
pub fn wrap_code_assist_request(model: &str, project: &str, request: Value) -> Value {
    json!({ "model": model, "project": project, "request": request })
}

/// Unwraps `{"response": {...}, "traceId": ...}` from Code Assist; any other value is returned unchanged.
pub fn unwrap_code_assist_response(v: Value) -> Value {
    match v {
        Value::Object(mut map)
            if map.get("response").is_some_and(Value::is_object)
                && !map.contains_key("candidates")
                && !map.contains_key("promptFeedback") =>
        {
            map.remove("response").unwrap_or_default()
        }
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Wire types

/// Keeps an explicit `null` as `Some(Value::Null)`, so presence can be told from absence.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Top-level request fields, each parsed on its own so errors name the field (proto JSON also accepts snake_case).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct RequestFields {
    contents: Option<Value>,
    #[serde(alias = "system_instruction")]
    system_instruction: Option<Value>,
    tools: Option<Value>,
    #[serde(alias = "tool_config")]
    tool_config: Option<Value>,
    #[serde(alias = "generation_config")]
    generation_config: Option<Value>,
}

/// A request `Content` whose parts are parsed one by one (for precise error paths).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawContent {
    role: Option<String>,
    parts: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
struct Content {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(deserialize_with = "null_default")]
    parts: Vec<GPart>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct GPart {
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought: Option<bool>,
    #[serde(alias = "thought_signature", skip_serializing_if = "Option::is_none")]
    thought_signature: Option<String>,
    #[serde(alias = "inline_data", skip_serializing_if = "Option::is_none")]
    inline_data: Option<Blob>,
    #[serde(alias = "file_data", skip_serializing_if = "Option::is_none")]
    file_data: Option<FileData>,
    #[serde(alias = "function_call", skip_serializing_if = "Option::is_none")]
    function_call: Option<FunctionCall>,
    #[serde(alias = "function_response", skip_serializing_if = "Option::is_none")]
    function_response: Option<FunctionResponse>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Blob {
    #[serde(alias = "mime_type")]
    mime_type: Option<String>,
    data: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct FileData {
    #[serde(alias = "mime_type", skip_serializing_if = "Option::is_none")]
    mime_type: Option<String>,
    #[serde(alias = "file_uri")]
    file_uri: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct FunctionCall {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<Value>,
    #[serde(alias = "partial_args", skip_serializing_if = "Option::is_none")]
    partial_args: Option<Vec<PartialArg>>,
    #[serde(alias = "will_continue", skip_serializing_if = "Option::is_none")]
    will_continue: Option<bool>,
}

/// One streamed argument value (Vertex `streamFunctionCallArguments`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PartialArg {
    #[serde(alias = "json_path")]
    json_path: String,
    #[serde(alias = "string_value")]
    string_value: Option<String>,
    #[serde(alias = "number_value")]
    number_value: Option<Number>,
    #[serde(alias = "bool_value")]
    bool_value: Option<bool>,
    #[serde(alias = "null_value", deserialize_with = "present")]
    null_value: Option<Value>,
    #[serde(alias = "will_continue")]
    will_continue: Option<bool>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct FunctionResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parts: Option<Vec<GPart>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct GTool {
    #[serde(alias = "function_declarations", skip_serializing_if = "Option::is_none")]
    function_declarations: Option<Vec<Value>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct FunctionDeclaration {
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
    #[serde(alias = "parameters_json_schema", skip_serializing_if = "Option::is_none")]
    parameters_json_schema: Option<Value>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ToolConfig {
    #[serde(alias = "function_calling_config", skip_serializing_if = "Option::is_none")]
    function_calling_config: Option<FunctionCallingConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct FunctionCallingConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    mode: Option<String>,
    #[serde(alias = "allowed_function_names", skip_serializing_if = "Option::is_none")]
    allowed_function_names: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct GenerationConfig {
    #[serde(alias = "max_output_tokens", skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(alias = "top_p", skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(alias = "stop_sequences", skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<Vec<String>>,
    #[serde(alias = "thinking_config", skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct ThinkingConfig {
    #[serde(alias = "thinking_budget", skip_serializing_if = "Option::is_none")]
    thinking_budget: Option<i64>,
    #[serde(alias = "include_thoughts", skip_serializing_if = "Option::is_none")]
    include_thoughts: Option<bool>,
    #[serde(alias = "thinking_level", skip_serializing_if = "Option::is_none")]
    thinking_level: Option<String>,
}

/// The request body written by [`request_from_ir`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OutRequest {
    contents: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<Content>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<OutTool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<ToolConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OutTool {
    function_declarations: Vec<FunctionDeclaration>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct GenerateContentResponse {
    #[serde(deserialize_with = "null_default", skip_serializing_if = "Vec::is_empty")]
    candidates: Vec<Candidate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(skip_serializing_if = "Option::is_none")]
    usage_metadata: Option<UsageMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Candidate {
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_message: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct PromptFeedback {
    #[serde(skip_serializing_if = "Option::is_none")]
    block_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct UsageMetadata {
    #[serde(skip_serializing_if = "Option::is_none")]
    prompt_token_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    candidates_token_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cached_content_token_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thoughts_token_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    total_token_count: Option<i64>,
}

impl UsageMetadata {
    /// Vertex sends `usageMetadata` with only `trafficType` on intermediate chunks: that is no usage.
    pub(crate) fn has_counts(&self) -> bool {
        self.prompt_token_count.is_some() || self.candidates_token_count.is_some() || self.total_token_count.is_some()
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct GoogleError {
    code: Option<Value>,
    message: Option<String>,
    status: Option<String>,
}

// ---------------------------------------------------------------------------------------------------------------
// Requests

/// Reads a Gemini `generateContent` body. The model comes from the URL; `stream` is left false (the caller knows
/// whether the action was `streamGenerateContent`).
pub fn request_to_ir(body: &[u8], model: &str) -> Result<ChatRequest, TranslateError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| TranslateError::field("body", format!("not valid JSON: {e}")))?;
    let value = match value {
        Value::Object(map) if map.contains_key("request") && !map.contains_key("contents") => {
            // A Code Assist envelope sent as is: read the inner request.
            map.get("request").cloned().unwrap_or_default()
        }
        other => other,
    };
    if !value.is_object() {
        return Err(TranslateError::field("body", "expected a JSON object"));
    }
    let fields: RequestFields = typed(value, "body")?;

    let contents = match fields.contents {
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(Value::Array(_)) => return Err(TranslateError::field("contents", "must not be empty")),
        Some(_) => return Err(TranslateError::field("contents", "expected an array")),
        None => return Err(TranslateError::field("contents", "required")),
    };
    let mut ids = CallIds::new(None);
    let mut messages = Vec::new();
    for (i, raw) in contents.into_iter().enumerate() {
        let path = format!("contents[{i}]");
        if !raw.is_object() {
            return Err(TranslateError::field(path, "expected an object"));
        }
        let content: RawContent = typed(raw, &path)?;
        let role = match content.role.as_deref() {
            None | Some("" | "user" | "function") => Role::User,
            Some("model") => Role::Assistant,
            Some(other) => {
                return Err(TranslateError::field(
                    format!("{path}.role"),
                    format!("unknown role {other:?} (expected \"user\" or \"model\")"),
                ));
            }
        };
        let parts = raw_parts(content.parts, &path)?;
        let parts = parts_to_ir(parts, &path, &mut ids, true)?;
        push_split(&mut messages, role, parts);
    }
    // Parts of no known kind leave nothing to send: every other dialect needs a message.
    if messages.is_empty() {
        return Err(TranslateError::field("contents", "no part carries content (text, data or a function call)"));
    }

    let system = match fields.system_instruction {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) => vec![text],
        Some(raw) => {
            let content: RawContent = typed(raw, "systemInstruction")?;
            raw_parts(content.parts, "systemInstruction")?
                .into_iter()
                .filter_map(|p| p.text)
                .filter(|t| !t.is_empty())
                .collect()
        }
    };

    let tools = match fields.tools {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => tools_to_ir(items)?,
        Some(_) => return Err(TranslateError::field("tools", "expected an array")),
    };

    let tool_choice = opt::<ToolConfig>(fields.tool_config, "toolConfig")?
        .and_then(|c| c.function_calling_config)
        .and_then(tool_choice_to_ir);

    let config = opt::<GenerationConfig>(fields.generation_config, "generationConfig")?.unwrap_or_default();
    let reasoning = config.thinking_config.map(|t| {
        let budget = t.thinking_budget.filter(|b| *b >= 0); // -1 = dynamic = the provider default
        let effort =
            t.thinking_level.map(|l| l.to_ascii_lowercase()).or_else(|| (budget == Some(0)).then(|| "none".into()));
        Reasoning { effort, budget_tokens: budget, include_thoughts: t.include_thoughts.unwrap_or(false) }
    });

    Ok(ChatRequest {
        model: model.trim_start_matches("models/").to_owned(),
        system,
        messages,
        tools,
        tool_choice,
        max_output_tokens: config.max_output_tokens,
        temperature: config.temperature,
        top_p: config.top_p,
        stop: config.stop_sequences.unwrap_or_default(),
        stream: false,
        reasoning,
        user: None,
    })
}

fn raw_parts(parts: Option<Value>, path: &str) -> Result<Vec<GPart>, TranslateError> {
    let items = match parts {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(TranslateError::field(format!("{path}.parts"), "expected an array")),
    };
    items.into_iter().enumerate().map(|(j, raw)| typed(raw, &format!("{path}.parts[{j}]"))).collect()
}

/// Appends parts as messages of `role`, except tool results, which become Tool messages; runs of one kind share a
/// message.
fn push_split(messages: &mut Vec<Message>, role: Role, parts: Vec<Part>) {
    let mut last: Option<Role> = None;
    for part in parts {
        let part_role = if matches!(part, Part::ToolResult { .. }) { Role::Tool } else { role };
        match messages.last_mut() {
            Some(message) if last == Some(part_role) => message.content.push(part),
            _ => messages.push(Message { role: part_role, content: vec![part] }),
        }
        last = Some(part_role);
    }
}

fn tools_to_ir(items: Vec<Value>) -> Result<Vec<ToolDefinition>, TranslateError> {
    let mut tools = Vec::new();
    for (i, raw) in items.into_iter().enumerate() {
        let path = format!("tools[{i}]");
        let tool: GTool = typed(raw, &path)?;
        // Built-in tools (googleSearch, codeExecution, urlContext, ...) have no neutral form: dropped.
        for (k, raw_decl) in tool.function_declarations.unwrap_or_default().into_iter().enumerate() {
            let decl_path = format!("{path}.functionDeclarations[{k}]");
            let decl: FunctionDeclaration = typed(raw_decl, &decl_path)?;
            let name = decl
                .name
                .filter(|n| !n.is_empty())
                .ok_or_else(|| TranslateError::field(format!("{decl_path}.name"), "required"))?;
            let parameters = match (decl.parameters_json_schema, decl.parameters) {
                (Some(schema), _) if !schema.is_null() => schema,
                (_, Some(schema)) if !schema.is_null() => openapi_types_to_json_schema(schema),
                _ => json!({ "type": "object", "properties": {} }),
            };
            tools.push(ToolDefinition { name, description: decl.description, parameters });
        }
    }
    Ok(tools)
}

/// Gemini's OpenAPI-style `parameters` spell types in capitals (`OBJECT`); JSON Schema wants lower case.
fn openapi_types_to_json_schema(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("type", Value::String(t)) => (k, Value::String(t.to_ascii_lowercase())),
                    (_, v) => (k, openapi_types_to_json_schema(v)),
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(openapi_types_to_json_schema).collect()),
        other => other,
    }
}

fn tool_choice_to_ir(config: FunctionCallingConfig) -> Option<ToolChoice> {
    let allowed = config.allowed_function_names.unwrap_or_default();
    match config.mode.map(|m| m.to_ascii_uppercase()).as_deref() {
        Some("AUTO" | "VALIDATED") => Some(ToolChoice::Auto),
        Some("NONE") => Some(ToolChoice::None),
        Some("ANY") => match allowed.as_slice() {
            [only] => Some(ToolChoice::Tool(only.clone())),
            _ => Some(ToolChoice::Required),
        },
        _ => None,
    }
}

/// Assigns ids to function calls and matches function responses to them.
struct CallIds {
    /// `Some(responseId)` in responses: ids become `call_<responseId>_<n>`.
    scope: Option<String>,
    next: usize,
    /// Calls not yet answered, oldest first: (name, id).
    pending: Vec<(String, String)>,
}

impl CallIds {
    fn new(scope: Option<&str>) -> Self {
        let scope = scope
            .map(|s| s.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').collect::<String>())
            .filter(|s| !s.is_empty());
        Self { scope, next: 0, pending: Vec::new() }
    }

    fn synthesize(&mut self) -> String {
        let n = self.next;
        self.next += 1;
        match &self.scope {
            Some(scope) => format!("call_{scope}_{n}"),
            None => format!("call_{n}"),
        }
    }

    fn call(&mut self, explicit: Option<String>, name: &str) -> String {
        let id = match explicit.filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => self.synthesize(),
        };
        self.pending.push((name.to_owned(), id.clone()));
        id
    }

    fn result(&mut self, explicit: Option<String>, name: &str) -> String {
        if let Some(id) = explicit.filter(|id| !id.is_empty()) {
            self.pending.retain(|(_, pending)| *pending != id);
            return id;
        }
        match self.pending.iter().position(|(pending, _)| pending == name) {
            Some(at) => self.pending.remove(at).1,
            None => self.synthesize(),
        }
    }
}

/// Gemini parts → neutral parts (both requests and responses). `strict`: a request (reject what cannot be
/// expressed) rather than upstream output (skip it).
fn parts_to_ir(parts: Vec<GPart>, path: &str, ids: &mut CallIds, strict: bool) -> Result<Vec<Part>, TranslateError> {
    let mut out = Vec::new();
    for (j, part) in parts.into_iter().enumerate() {
        let part_path = format!("{path}.parts[{j}]");
        let signature = part.thought_signature.filter(|s| !s.is_empty());
        if part.thought == Some(true) {
            let text = part.text.unwrap_or_default();
            if let Some(Part::Thinking { text: previous, signature: previous_signature }) = out.last_mut()
                && previous_signature.is_none()
            {
                previous.push_str(&text);
                *previous_signature = signature;
            } else if !text.is_empty() || signature.is_some() {
                out.push(Part::Thinking { text, signature });
            }
            continue;
        }
        if let Some(signature) = signature {
            out.push(Part::Thinking { text: String::new(), signature: Some(signature) });
        }
        if let Some(text) = part.text.filter(|t| !t.is_empty()) {
            out.push(Part::Text(text));
        }
        if let Some(blob) = part.inline_data {
            out.extend(blob_to_ir(blob, &format!("{part_path}.inlineData"), strict)?);
        }
        if let Some(file) = part.file_data {
            out.extend(file_to_ir(file, &format!("{part_path}.fileData"), strict)?);
        }
        if let Some(call) = part.function_call {
            match call.name.filter(|n| !n.is_empty()) {
                Some(name) => {
                    let id = ids.call(call.id, &name);
                    let mut args = ArgsAccumulator::new(call.args);
                    args.apply(call.partial_args.unwrap_or_default());
                    out.push(Part::ToolCall { id, name, arguments: args.finish() });
                }
                None if strict => {
                    return Err(TranslateError::field(format!("{part_path}.functionCall.name"), "required"));
                }
                None => {}
            }
        }
        if let Some(response) = part.function_response {
            let response_path = format!("{part_path}.functionResponse");
            match response.name.filter(|n| !n.is_empty()) {
                Some(name) => {
                    let call_id = ids.result(response.id, &name);
                    let (mut content, is_error) = result_to_ir(response.response);
                    for (k, extra) in response.parts.unwrap_or_default().into_iter().enumerate() {
                        if let Some(blob) = extra.inline_data {
                            content.extend(blob_to_ir(
                                blob,
                                &format!("{response_path}.parts[{k}].inlineData"),
                                strict,
                            )?);
                        }
                        if let Some(file) = extra.file_data {
                            content.extend(file_to_ir(file, &format!("{response_path}.parts[{k}].fileData"), strict)?);
                        }
                    }
                    out.push(Part::ToolResult { call_id, content, is_error });
                }
                None if strict => return Err(TranslateError::field(format!("{response_path}.name"), "required")),
                None => {}
            }
        }
    }
    Ok(out)
}

fn blob_to_ir(blob: Blob, path: &str, strict: bool) -> Result<Option<Part>, TranslateError> {
    let media_type = blob.mime_type.unwrap_or_default();
    let data = blob.data.unwrap_or_default();
    // An image without bytes is no image: every other dialect (and Gemini itself) refuses it.
    if data.is_empty() {
        return if strict { Err(TranslateError::field(format!("{path}.data"), "required")) } else { Ok(None) };
    }
    if crate::ir::is_image_media_type(&media_type) {
        return Ok(Some(Part::Image(ImageSource::Base64 { media_type, data })));
    }
    if strict {
        return Err(TranslateError::Unsupported(format!("{path}: {media_type:?} content (only images translate)")));
    }
    Ok(None)
}

fn file_to_ir(file: FileData, path: &str, strict: bool) -> Result<Option<Part>, TranslateError> {
    let media_type = file.mime_type.unwrap_or_default();
    let uri = file.file_uri.unwrap_or_default();
    if uri.is_empty() {
        return if strict { Err(TranslateError::field(format!("{path}.fileUri"), "required")) } else { Ok(None) };
    }
    if media_type.is_empty() || media_type.starts_with("image/") {
        return Ok(Some(Part::Image(ImageSource::Url(uri))));
    }
    if strict {
        return Err(TranslateError::Unsupported(format!("{path}: {media_type:?} content (only images translate)")));
    }
    Ok(None)
}

/// `functionResponse.response` → result content and the error flag (see the module notes).
fn result_to_ir(response: Option<Value>) -> (Vec<Part>, bool) {
    fn text_of(value: &Value) -> String {
        match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    match response {
        None | Some(Value::Null) => (Vec::new(), false),
        Some(Value::Object(map)) if map.len() == 1 => {
            let (key, value) = map.iter().next().map(|(k, v)| (k.as_str(), v)).unwrap_or(("", &Value::Null));
            match key {
                "error" => (vec![Part::Text(text_of(value))], true),
                "output" | "content" | "result" => (vec![Part::Text(text_of(value))], false),
                _ => (vec![Part::Text(Value::Object(map).to_string())], false),
            }
        }
        Some(other) => (vec![Part::Text(text_of(&other))], false),
    }
}

/// Writes a neutral request as a Gemini body (without the model, which goes in the URL).
pub fn request_from_ir(request: &ChatRequest) -> Result<Value, TranslateError> {
    let mut names = HashMap::new();
    let mut contents = Vec::new();
    for (i, message) in request.messages.iter().enumerate() {
        let mode = if message.role == Role::Assistant { Mode::RequestModel } else { Mode::RequestUser };
        let parts = parts_from_ir(&message.content, &mut names, &format!("messages[{i}]"), mode)?;
        if parts.is_empty() {
            continue;
        }
        let role = if message.role == Role::Assistant { "model" } else { "user" };
        // Turns alternate in Gemini: a tool turn and the user turn after it become one `user` content.
        match contents.last_mut() {
            Some(Content { role: Some(last), parts: previous }) if last == role => previous.extend(parts),
            _ => contents.push(Content { role: Some(role.into()), parts }),
        }
    }
    // As for Anthropic: Gemini refuses an empty `contents`.
    if contents.is_empty() {
        return Err(TranslateError::Unsupported(
            "the request has no message with content; Gemini needs at least one".into(),
        ));
    }

    let system_instruction = (!request.system.is_empty()).then(|| Content {
        role: None,
        parts: request.system.iter().map(|t| GPart { text: Some(t.clone()), ..GPart::default() }).collect(),
    });

    let tools = if request.tools.is_empty() {
        Vec::new()
    } else {
        vec![OutTool {
            function_declarations: request
                .tools
                .iter()
                .map(|t| FunctionDeclaration {
                    name: Some(t.name.clone()),
                    description: t.description.clone(),
                    parameters: None,
                    // Full JSON Schema (`parameters` only takes Gemini's OpenAPI subset).
                    parameters_json_schema: (!t.parameters.is_null()).then(|| t.parameters.clone()),
                })
                .collect(),
        }]
    };

    let tool_config = request.tool_choice.as_ref().map(|choice| {
        let (mode, allowed) = match choice {
            ToolChoice::Auto => ("AUTO", None),
            ToolChoice::None => ("NONE", None),
            ToolChoice::Required => ("ANY", None),
            ToolChoice::Tool(name) => ("ANY", Some(vec![name.clone()])),
        };
        ToolConfig {
            function_calling_config: Some(FunctionCallingConfig {
                mode: Some(mode.into()),
                allowed_function_names: allowed,
            }),
        }
    });

    let generation_config = GenerationConfig {
        max_output_tokens: request.max_output_tokens,
        temperature: request.temperature,
        top_p: request.top_p,
        stop_sequences: (!request.stop.is_empty()).then(|| request.stop.clone()),
        thinking_config: request.reasoning.as_ref().map(|r| thinking_from_ir(r, &request.model)),
    };
    let has_config = generation_config.max_output_tokens.is_some()
        || generation_config.temperature.is_some()
        || generation_config.top_p.is_some()
        || generation_config.stop_sequences.is_some()
        || generation_config.thinking_config.is_some();

    let out = OutRequest {
        contents,
        system_instruction,
        tools,
        tool_config,
        generation_config: has_config.then_some(generation_config),
    };
    serde_json::to_value(out).map_err(|e| TranslateError::Unsupported(e.to_string()))
}

/// Effort levels become `thinkingLevel` on Gemini 3 and a `thinkingBudget` before it.
fn thinking_from_ir(reasoning: &Reasoning, model: &str) -> ThinkingConfig {
    let model = model.trim_start_matches("models/");
    let mut config =
        ThinkingConfig { include_thoughts: reasoning.include_thoughts.then_some(true), ..ThinkingConfig::default() };
    if let Some(budget) = reasoning.budget_tokens {
        config.thinking_budget = Some(budget);
    } else if let Some(effort) = reasoning.effort.as_deref() {
        if model.starts_with("gemini-3") {
            let flash = model.contains("flash");
            let level = match effort {
                "none" | "minimal" if flash => "minimal",
                "none" | "minimal" | "low" => "low",
                "medium" if flash => "medium",
                _ => "high",
            };
            config.thinking_level = Some(level.into());
        } else {
            config.thinking_budget = Some(match effort {
                "none" => 0,
                "minimal" => 512,
                "low" => 1024,
                "medium" => 8192,
                "high" => 24576,
                "xhigh" => 32768,
                _ => -1,
            });
        }
    }
    config
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A model turn of a request: unsigned first calls get [`SKIP_SIGNATURE`].
    RequestModel,
    /// A user / tool turn of a request.
    RequestUser,
    /// Output to a Gemini client (responses and streams).
    Output,
}

/// Neutral parts → Gemini parts. `names` maps call ids to function names (function responses need the name).
fn parts_from_ir(
    parts: &[Part],
    names: &mut HashMap<String, String>,
    path: &str,
    mode: Mode,
) -> Result<Vec<GPart>, TranslateError> {
    let mut out = Vec::new();
    let mut pending_signature: Option<String> = None;
    let mut seen_call = false;
    for (j, part) in parts.iter().enumerate() {
        let part_path = format!("{path}.content[{j}]");
        match part {
            Part::Thinking { text, signature } => {
                if mode == Mode::RequestUser {
                    continue;
                }
                if text.is_empty() {
                    if let Some(signature) = signature.clone().filter(|s| !s.is_empty())
                        && let Some(previous) = pending_signature.replace(signature)
                    {
                        out.push(signature_part(previous));
                    }
                } else {
                    let signature = signature.clone().or_else(|| pending_signature.take());
                    out.push(GPart {
                        text: Some(text.clone()),
                        thought: Some(true),
                        thought_signature: signature,
                        ..GPart::default()
                    });
                }
            }
            // An empty text carries nothing (Gemini refuses a turn of empty parts) unless it
            // must carry a pending signature.
            Part::Text(text) if text.is_empty() && pending_signature.is_none() => {}
            Part::Text(text) => out.push(GPart {
                text: Some(text.clone()),
                thought_signature: pending_signature.take(),
                ..GPart::default()
            }),
            Part::Image(image) => {
                let mut gpart = image_from_ir(image);
                gpart.thought_signature = pending_signature.take();
                out.push(gpart);
            }
            Part::ToolCall { id, name, arguments } => {
                names.insert(id.clone(), name.clone());
                let args = match args_object(arguments) {
                    Ok(args) => args,
                    Err(message) if mode != Mode::Output => {
                        return Err(TranslateError::field(format!("{part_path}.arguments"), message));
                    }
                    Err(_) => Map::new(), // upstream sent broken JSON; a Gemini client needs an object
                };
                let mut signature = pending_signature.take();
                if signature.is_none() && mode == Mode::RequestModel && !seen_call {
                    signature = Some(SKIP_SIGNATURE.to_owned());
                }
                seen_call = true;
                out.push(GPart {
                    function_call: Some(FunctionCall {
                        id: (!id.is_empty()).then(|| id.clone()),
                        name: Some(name.clone()),
                        args: Some(Value::Object(args)),
                        ..FunctionCall::default()
                    }),
                    thought_signature: signature,
                    ..GPart::default()
                });
            }
            Part::ToolResult { call_id, content, is_error } => {
                let Some(name) = names.get(call_id).cloned() else {
                    if mode == Mode::Output {
                        continue;
                    }
                    return Err(TranslateError::field(
                        format!("{part_path}.call_id"),
                        format!("no earlier tool call has id {call_id:?} (Gemini needs its function name)"),
                    ));
                };
                out.push(GPart {
                    function_response: Some(result_from_ir(call_id, name, content, *is_error)),
                    ..GPart::default()
                });
            }
        }
    }
    if let Some(signature) = pending_signature {
        out.push(signature_part(signature));
    }
    Ok(out)
}

/// An empty text part that only carries a signature (what Gemini itself sends at the end of a turn).
fn signature_part(signature: String) -> GPart {
    GPart { text: Some(String::new()), thought_signature: Some(signature), ..GPart::default() }
}

fn args_object(arguments: &str) -> Result<Map<String, Value>, String> {
    if arguments.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("must be a JSON object".into()),
        Err(e) => Err(format!("not valid JSON: {e}")),
    }
}

fn image_from_ir(image: &ImageSource) -> GPart {
    match image {
        ImageSource::Base64 { media_type, data } => GPart {
            inline_data: Some(Blob { mime_type: Some(media_type.clone()), data: Some(data.clone()) }),
            ..GPart::default()
        },
        ImageSource::Url(url) => match parse_data_url(url) {
            Some((media_type, data)) => {
                GPart { inline_data: Some(Blob { mime_type: Some(media_type), data: Some(data) }), ..GPart::default() }
            }
            None => GPart {
                file_data: Some(FileData {
                    mime_type: Some(guess_image_type(url).into()),
                    file_uri: Some(url.clone()),
                }),
                ..GPart::default()
            },
        },
    }
}

/// `data:image/png;base64,AAAA` → (`image/png`, `AAAA`).
fn parse_data_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    Some((if media_type.is_empty() { "application/octet-stream".into() } else { media_type.into() }, data.into()))
}

fn guess_image_type(url: &str) -> &'static str {
    let path = url.split(['?', '#']).next().unwrap_or(url).to_ascii_lowercase();
    match path.rsplit('.').next() {
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("heic") => "image/heic",
        Some("heif") => "image/heif",
        _ => "image/jpeg",
    }
}

fn result_from_ir(call_id: &str, name: String, content: &[Part], is_error: bool) -> FunctionResponse {
    let text = content
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let images: Vec<GPart> = content
        .iter()
        .filter_map(|p| match p {
            Part::Image(image) => Some(image_from_ir(image)),
            _ => None,
        })
        .collect();
    let response = if is_error {
        json!({ "error": text })
    } else {
        match serde_json::from_str::<Value>(&text) {
            Ok(object @ Value::Object(_)) => object,
            _ => json!({ "output": text }),
        }
    };
    FunctionResponse {
        id: (!call_id.is_empty()).then(|| call_id.to_owned()),
        name: Some(name),
        response: Some(response),
        parts: (!images.is_empty()).then_some(images),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Responses

fn parse_response(body: &[u8]) -> Result<GenerateContentResponse, TranslateError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| TranslateError::Upstream(format!("Gemini response is not JSON: {e}")))?;
    response_value(value)
}

fn response_value(value: Value) -> Result<GenerateContentResponse, TranslateError> {
    let value = unwrap_code_assist_response(value);
    if let Some(error) = value.get("error") {
        let info = error_info(0, error);
        return Err(TranslateError::Upstream(format!("Gemini error {}: {}", info.status, info.message)));
    }
    serde_json::from_value(value).map_err(|e| TranslateError::Upstream(format!("not a Gemini response: {e}")))
}

/// Reads a non-streaming `generateContent` body (also accepts the Code Assist `{"response": ...}` envelope).
pub fn response_to_ir(body: &[u8]) -> Result<ChatResponse, TranslateError> {
    let response = parse_response(body)?;
    let id = response.response_id.clone().unwrap_or_default();
    let mut ids = CallIds::new(Some(&id));
    let candidate = response.candidates.into_iter().next().unwrap_or_default();
    let parts = candidate.content.map(|c| c.parts).unwrap_or_default();
    let content = parts_to_ir(parts, "candidates[0].content", &mut ids, false)?;
    let has_calls = content.iter().any(|p| matches!(p, Part::ToolCall { .. }));
    let stop_reason = match (candidate.finish_reason.as_deref(), &response.prompt_feedback) {
        (Some(reason), _) if !reason.is_empty() => {
            Some(finish_reason_to_ir(reason, has_calls).unwrap_or(StopReason::Error))
        }
        (_, Some(PromptFeedback { block_reason: Some(_) })) => Some(StopReason::ContentFilter),
        _ => None,
    };
    Ok(ChatResponse {
        id,
        model: response.model_version.unwrap_or_default(),
        content,
        stop_reason,
        usage: response.usage_metadata.as_ref().map(usage_to_ir).unwrap_or_default(),
    })
}

/// `Err` carries the reason for finish reasons that mean the model failed (a stream reports them as errors).
fn finish_reason_to_ir(reason: &str, has_calls: bool) -> Result<StopReason, String> {
    match reason {
        "MAX_TOKENS" => Ok(StopReason::MaxTokens),
        "SAFETY"
        | "RECITATION"
        | "BLOCKLIST"
        | "PROHIBITED_CONTENT"
        | "SPII"
        | "LANGUAGE"
        | "IMAGE_SAFETY"
        | "IMAGE_PROHIBITED_CONTENT"
        | "IMAGE_RECITATION"
        | "MODEL_ARMOR" => Ok(StopReason::ContentFilter),
        "MALFORMED_FUNCTION_CALL"
        | "UNEXPECTED_TOOL_CALL"
        | "TOO_MANY_TOOL_CALLS"
        | "MISSING_THOUGHT_SIGNATURE"
        | "MALFORMED_RESPONSE" => Err(format!("Gemini stopped with {reason}")),
        _ if has_calls => Ok(StopReason::ToolUse),
        _ => Ok(StopReason::EndTurn),
    }
}

fn finish_reason_from_ir(stop: StopReason) -> &'static str {
    match stop {
        StopReason::EndTurn | StopReason::StopSequence | StopReason::ToolUse => "STOP",
        StopReason::MaxTokens => "MAX_TOKENS",
        StopReason::ContentFilter => "SAFETY",
        StopReason::Error => "OTHER",
    }
}

pub(crate) fn usage_to_ir(usage: &UsageMetadata) -> Usage {
    let thoughts = usage.thoughts_token_count.unwrap_or(0);
    Usage {
        input_tokens: usage.prompt_token_count.unwrap_or(0),
        output_tokens: usage.candidates_token_count.unwrap_or(0).saturating_add(thoughts),
        cached_input_tokens: usage.cached_content_token_count.unwrap_or(0),
        cache_creation_tokens: 0,
        reasoning_tokens: thoughts,
    }
}

fn usage_from_ir(usage: &Usage) -> UsageMetadata {
    UsageMetadata {
        prompt_token_count: Some(usage.input_tokens),
        candidates_token_count: Some(usage.output_tokens.saturating_sub(usage.reasoning_tokens).max(0)),
        cached_content_token_count: (usage.cached_input_tokens > 0).then_some(usage.cached_input_tokens),
        thoughts_token_count: (usage.reasoning_tokens > 0).then_some(usage.reasoning_tokens),
        total_token_count: Some(usage.input_tokens.saturating_add(usage.output_tokens.max(usage.reasoning_tokens))),
    }
}

/// Writes a neutral response as a `generateContent` body.
pub fn response_from_ir(response: &ChatResponse) -> Value {
    let mut names = HashMap::new();
    let parts = parts_from_ir(&response.content, &mut names, "content", Mode::Output).unwrap_or_default();
    let body = GenerateContentResponse {
        candidates: vec![Candidate {
            content: Some(Content { role: Some("model".into()), parts }),
            finish_reason: Some(finish_reason_from_ir(response.stop_reason.unwrap_or(StopReason::EndTurn)).into()),
            index: Some(0),
            finish_message: None,
        }],
        prompt_feedback: None,
        usage_metadata: Some(usage_from_ir(&response.usage)),
        model_version: (!response.model.is_empty()).then(|| response.model.clone()),
        response_id: (!response.id.is_empty()).then(|| response.id.clone()),
    };
    serde_json::to_value(body).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------------------------
// Errors

/// Reads an upstream error body: `{"error":{"code","message","status"}}` (also inside an array or a Code Assist
/// envelope), a bare `{"error": "text"}`, or anything else (the text becomes the message).
pub fn error_to_ir(status: u16, body: &[u8]) -> ErrorInfo {
    let parsed = serde_json::from_slice::<Value>(body).ok().map(|v| match v {
        Value::Array(items) => items.into_iter().next().unwrap_or_default(),
        other => unwrap_code_assist_response(other),
    });
    if let Some(error) = parsed.as_ref().and_then(|v| v.get("error")) {
        return error_info(status, error);
    }
    let status = if (100..=599).contains(&status) { status } else { 502 };
    let text = String::from_utf8_lossy(body).trim().to_owned();
    let message = if text.is_empty() { format!("upstream returned HTTP {status}") } else { truncate(text, 4000) };
    ErrorInfo { status, kind: ErrorInfo::kind_for_status(status).into(), message }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

/// `status` is the HTTP status if known (an error inside a stream has none: pass 0).
fn error_info(status: u16, error: &Value) -> ErrorInfo {
    if let Value::String(message) = error {
        let status = if (100..=599).contains(&status) { status } else { 500 };
        return ErrorInfo { status, kind: ErrorInfo::kind_for_status(status).into(), message: message.clone() };
    }
    let detail: GoogleError = serde_json::from_value(error.clone()).unwrap_or_default();
    let code = match &detail.code {
        Some(Value::Number(n)) => n.as_u64().and_then(|c| u16::try_from(c).ok()),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    }
    .filter(|c| (100..=599).contains(c));
    let google_status = detail.status.unwrap_or_default();
    let status =
        if (100..=599).contains(&status) { status } else { code.unwrap_or_else(|| status_for_google(&google_status)) };
    let kind = kind_for_google(&google_status).unwrap_or_else(|| ErrorInfo::kind_for_status(status));
    let message = detail.message.filter(|m| !m.is_empty()).unwrap_or_else(|| {
        if google_status.is_empty() { format!("upstream error (HTTP {status})") } else { google_status.clone() }
    });
    ErrorInfo { status, kind: kind.into(), message }
}

fn kind_for_google(status: &str) -> Option<&'static str> {
    Some(match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => "invalid_request",
        "UNAUTHENTICATED" => "authentication",
        "PERMISSION_DENIED" => "permission",
        "NOT_FOUND" => "not_found",
        "RESOURCE_EXHAUSTED" => "rate_limit",
        "UNAVAILABLE" => "overloaded",
        "DEADLINE_EXCEEDED" => "timeout",
        "INTERNAL" | "UNKNOWN" | "DATA_LOSS" | "UNIMPLEMENTED" => "server_error",
        _ => return None,
    })
}

fn status_for_google(status: &str) -> u16 {
    match status {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "RESOURCE_EXHAUSTED" => 429,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => 500,
    }
}

fn google_status(error: &ErrorInfo) -> &'static str {
    match error.kind.as_str() {
        "invalid_request" => "INVALID_ARGUMENT",
        "authentication" => "UNAUTHENTICATED",
        "permission" => "PERMISSION_DENIED",
        "not_found" => "NOT_FOUND",
        "rate_limit" => "RESOURCE_EXHAUSTED",
        "overloaded" => "UNAVAILABLE",
        "timeout" => "DEADLINE_EXCEEDED",
        "server_error" => "INTERNAL",
        _ => match error.status {
            400 | 422 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            429 => "RESOURCE_EXHAUSTED",
            503 => "UNAVAILABLE",
            504 => "DEADLINE_EXCEEDED",
            _ => "INTERNAL",
        },
    }
}

/// `{"error":{"code","message","status"}}`.
pub fn error_from_ir(error: &ErrorInfo) -> Value {
    json!({ "error": { "code": error.status, "message": error.message, "status": google_status(error) } })
}

/// A mid-stream error as one SSE data chunk holding only an `error` object (the shape Gemini itself uses). The
/// google-genai SDKs check each streamed chunk for a leading `"error"` key and raise `APIError` (`ClientError` for
/// 4xx codes, `ServerError` for 5xx) with its code, status and message, so the key must come first.
pub fn stream_error_frame(error: &ErrorInfo) -> String {
    sse::frame(None, &error_from_ir(error).to_string())
}

// ---------------------------------------------------------------------------------------------------------------
// Stream decoding

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Open {
    #[default]
    None,
    Text(usize),
    Thinking(usize),
    Tool(usize),
}

/// `streamGenerateContent?alt=sse` chunks → neutral events. The stream's normal end is a chunk with a
/// `finishReason` (or a `promptFeedback.blockReason`); it also accepts Code Assist `{"response": ...}` chunks.
#[derive(Debug, Default)]
pub struct Decoder {
    started: bool,
    finished: bool,
    /// Sanitized responseId for synthesized call ids.
    scope: Option<String>,
    next_block: usize,
    open: Open,
    /// Arguments of a call streamed with `willContinue` (belongs to `Open::Tool`).
    streaming_args: Option<ArgsAccumulator>,
    calls: usize,
    usage: Option<Usage>,
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

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        match std::mem::take(&mut self.open) {
            Open::None => {}
            Open::Text(index) | Open::Thinking(index) => out.push(StreamEvent::BlockStop { index }),
            Open::Tool(index) => {
                if let Some(args) = self.streaming_args.take() {
                    out.push(StreamEvent::ToolCallDelta { index, arguments: args.finish() });
                }
                out.push(StreamEvent::BlockStop { index });
            }
        }
    }

    fn chunk(&mut self, value: Value, out: &mut Vec<StreamEvent>) -> Result<(), TranslateError> {
        if self.finished {
            return Ok(());
        }
        let value = unwrap_code_assist_response(value);
        if let Some(error) = value.get("error") {
            out.push(StreamEvent::Error(error_info(0, error)));
            self.finished = true;
            return Ok(());
        }
        let chunk: GenerateContentResponse = serde_json::from_value(value)
            .map_err(|e| TranslateError::Upstream(format!("not a Gemini stream chunk: {e}")))?;
        if !self.started {
            self.started = true;
            let id = chunk.response_id.clone().unwrap_or_default();
            self.scope = CallIds::new(Some(&id)).scope;
            out.push(StreamEvent::Start { id, model: chunk.model_version.clone().unwrap_or_default() });
        }
        if let Some(usage) = chunk.usage_metadata.as_ref().filter(|u| u.has_counts()) {
            self.usage = Some(usage_to_ir(usage));
        }
        if let Some(candidate) = chunk.candidates.into_iter().next() {
            for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
                self.part(part, out);
            }
            if let Some(reason) = candidate.finish_reason.filter(|r| !r.is_empty()) {
                self.close(out);
                match finish_reason_to_ir(&reason, self.calls > 0) {
                    Ok(stop_reason) => self.end(stop_reason, out),
                    Err(message) => {
                        let message = match candidate.finish_message {
                            Some(detail) => format!("{message}: {detail}"),
                            None => message,
                        };
                        out.push(StreamEvent::Error(ErrorInfo { status: 502, kind: "server_error".into(), message }));
                        self.finished = true;
                    }
                }
                return Ok(());
            }
        }
        if chunk.prompt_feedback.is_some_and(|f| f.block_reason.is_some()) {
            self.close(out);
            self.end(StopReason::ContentFilter, out);
        }
        Ok(())
    }

    fn end(&mut self, stop_reason: StopReason, out: &mut Vec<StreamEvent>) {
        out.push(StreamEvent::Finish { stop_reason });
        if let Some(usage) = self.usage {
            out.push(StreamEvent::Usage(usage));
        }
        out.push(StreamEvent::Done);
        self.finished = true;
    }

    fn part(&mut self, part: GPart, out: &mut Vec<StreamEvent>) {
        let signature = part.thought_signature.filter(|s| !s.is_empty());

        // A nameless function call continues the call being streamed.
        if let Some(call) = &part.function_call
            && call.name.as_deref().is_none_or(str::is_empty)
        {
            if let Some(args) = self.streaming_args.as_mut() {
                if let Some(initial) = call.args.clone() {
                    args.merge(initial);
                }
                args.apply(call.partial_args.clone().unwrap_or_default());
                if call.will_continue != Some(true) {
                    self.close(out);
                }
            }
            return;
        }

        if part.thought == Some(true) {
            let text = part.text.unwrap_or_default();
            let index = match self.open {
                Open::Thinking(index) => index,
                _ if text.is_empty() && signature.is_none() => return,
                _ => {
                    self.close(out);
                    let index = self.block();
                    out.push(StreamEvent::ThinkingStart { index });
                    self.open = Open::Thinking(index);
                    index
                }
            };
            if !text.is_empty() {
                out.push(StreamEvent::ThinkingDelta { index, text });
            }
            if let Some(signature) = signature {
                out.push(StreamEvent::ThinkingSignature { index, signature });
                self.close(out);
            }
            return;
        }

        if let Some(signature) = signature {
            self.close(out);
            let index = self.block();
            out.push(StreamEvent::ThinkingStart { index });
            out.push(StreamEvent::ThinkingSignature { index, signature });
            out.push(StreamEvent::BlockStop { index });
        }
        if let Some(text) = part.text.filter(|t| !t.is_empty()) {
            let index = match self.open {
                Open::Text(index) => index,
                _ => {
                    self.close(out);
                    let index = self.block();
                    out.push(StreamEvent::TextStart { index });
                    self.open = Open::Text(index);
                    index
                }
            };
            out.push(StreamEvent::TextDelta { index, text });
        }
        if let Some(call) = part.function_call {
            // Only named calls reach here (see above).
            self.close(out);
            let index = self.block();
            let id = match call.id.filter(|id| !id.is_empty()) {
                Some(id) => id,
                None => match &self.scope {
                    Some(scope) => format!("call_{scope}_{}", self.calls),
                    None => format!("call_{}", self.calls),
                },
            };
            self.calls += 1;
            out.push(StreamEvent::ToolCallStart { index, id, name: call.name.unwrap_or_default() });
            let mut args = ArgsAccumulator::new(call.args);
            args.apply(call.partial_args.unwrap_or_default());
            self.open = Open::Tool(index);
            if call.will_continue == Some(true) {
                self.streaming_args = Some(args);
            } else {
                out.push(StreamEvent::ToolCallDelta { index, arguments: args.finish() });
                out.push(StreamEvent::BlockStop { index });
                self.open = Open::None;
            }
        }
        // Inline media in a stream (image models) has no neutral stream event: skipped.
    }
}

impl ir::StreamDecoder for Decoder {
    fn decode(&mut self, _event: Option<&str>, data: &str) -> Result<Vec<StreamEvent>, TranslateError> {
        let data = data.trim();
        if data.is_empty() || self.finished {
            return Ok(Vec::new());
        }
        let value: Value = serde_json::from_str(data)
            .map_err(|e| TranslateError::Upstream(format!("Gemini stream chunk is not JSON: {e}")))?;
        let mut out = Vec::new();
        match value {
            // The JSON-array framing puts several responses in one payload.
            Value::Array(items) => {
                for item in items {
                    self.chunk(item, &mut out)?;
                }
            }
            other => self.chunk(other, &mut out)?,
        }
        Ok(out)
    }

    fn finish(&mut self) -> Vec<StreamEvent> {
        if self.finished {
            return Vec::new();
        }
        self.finished = true;
        let message = if self.started {
            "Gemini stream ended before its finishReason (truncated)"
        } else {
            "Gemini stream ended without any data"
        };
        vec![StreamEvent::Error(ErrorInfo { status: 502, kind: "server_error".into(), message: message.into() })]
    }
}

/// Builds a call's arguments object from `args` and streamed `partialArgs`.
#[derive(Debug, Default)]
struct ArgsAccumulator {
    root: Value,
    /// JSON path of a string value still being streamed (`willContinue`).
    open_string: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Array indexes above this are ignored (upstream data must not make us allocate without bound).
const MAX_INDEX: usize = 10_000;

impl ArgsAccumulator {
    fn new(args: Option<Value>) -> Self {
        let root = match args {
            Some(object @ Value::Object(_)) => object,
            _ => Value::Object(Map::new()),
        };
        Self { root, open_string: None }
    }

    fn merge(&mut self, args: Value) {
        if let (Value::Object(root), Value::Object(extra)) = (&mut self.root, args) {
            root.extend(extra);
        }
    }

    fn apply(&mut self, args: Vec<PartialArg>) {
        for arg in args {
            let segments = parse_json_path(&arg.json_path);
            if segments.is_empty() {
                continue;
            }
            if let Some(text) = arg.string_value {
                let continuing = self.open_string.as_deref() == Some(arg.json_path.as_str());
                if let Some(slot) = slot(&mut self.root, &segments) {
                    match slot {
                        Value::String(existing) if continuing => existing.push_str(&text),
                        other => *other = Value::String(text),
                    }
                }
                self.open_string = (arg.will_continue == Some(true)).then_some(arg.json_path);
                continue;
            }
            self.open_string = None;
            let value = if let Some(number) = arg.number_value {
                Value::Number(number)
            } else if let Some(flag) = arg.bool_value {
                Value::Bool(flag)
            } else if arg.null_value.is_some() {
                Value::Null
            } else {
                continue;
            };
            if let Some(slot) = slot(&mut self.root, &segments) {
                *slot = value;
            }
        }
    }

    fn finish(self) -> String {
        self.root.to_string()
    }
}

/// `$.a.b[0]["c d"]` → `[a, b, 0, "c d"]`.
fn parse_json_path(path: &str) -> Vec<Segment> {
    let mut segments = Vec::new();
    let rest = path.strip_prefix('$').unwrap_or(path);
    let chars: Vec<char> = rest.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                    end += 1;
                }
                if end > start {
                    segments.push(Segment::Key(chars[start..end].iter().collect()));
                }
                i = end;
            }
            '[' => {
                let Some(close) = chars[i..].iter().position(|c| *c == ']').map(|p| p + i) else {
                    break;
                };
                let inner: String = chars[i + 1..close].iter().collect();
                let inner = inner.trim();
                if let Ok(index) = inner.parse::<usize>() {
                    segments.push(Segment::Index(index));
                } else {
                    segments.push(Segment::Key(inner.trim_matches(['\'', '"']).to_owned()));
                }
                i = close + 1;
            }
            _ => {
                // A path without a leading `$.`: read a bare key.
                let start = i;
                let mut end = start;
                while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                    end += 1;
                }
                segments.push(Segment::Key(chars[start..end].iter().collect()));
                i = end;
            }
        }
    }
    segments
}

/// The value at `segments`, creating containers on the way (a scalar in the way is replaced).
fn slot<'a>(root: &'a mut Value, segments: &[Segment]) -> Option<&'a mut Value> {
    let mut node = root;
    for segment in segments {
        node = match segment {
            Segment::Key(key) => {
                if !node.is_object() {
                    *node = Value::Object(Map::new());
                }
                match node {
                    Value::Object(map) => map.entry(key.clone()).or_insert(Value::Null),
                    _ => return None,
                }
            }
            Segment::Index(index) => {
                if *index > MAX_INDEX {
                    return None;
                }
                if !node.is_array() {
                    *node = Value::Array(Vec::new());
                }
                match node {
                    Value::Array(items) => {
                        if items.len() <= *index {
                            items.resize(index + 1, Value::Null);
                        }
                        items.get_mut(*index)?
                    }
                    _ => return None,
                }
            }
        };
    }
    Some(node)
}

// ---------------------------------------------------------------------------------------------------------------
// Stream encoding

#[derive(Debug, Default)]
struct ToolBuffer {
    id: String,
    name: String,
    arguments: String,
}

/// Neutral events → `streamGenerateContent?alt=sse` data chunks: one chunk per delta, whole function calls when
/// their block stops, `finishReason` and `usageMetadata` only on the last chunk.
#[derive(Debug, Default)]
pub struct Encoder {
    id: String,
    model: String,
    /// A signature-only thinking waiting for the next part to ride on.
    pending_signature: Option<String>,
    /// Open thinking blocks → whether they had text.
    thinking: HashMap<usize, bool>,
    tools: HashMap<usize, ToolBuffer>,
    usage: Option<Usage>,
    stop: Option<StopReason>,
    finished: bool,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn chunk(&self, parts: Vec<GPart>, finish: Option<StopReason>) -> String {
        let body = GenerateContentResponse {
            candidates: vec![Candidate {
                content: Some(Content { role: Some("model".into()), parts }),
                finish_reason: finish.map(|s| finish_reason_from_ir(s).to_owned()),
                index: Some(0),
                finish_message: None,
            }],
            prompt_feedback: None,
            usage_metadata: finish.and(self.usage.as_ref()).map(usage_from_ir),
            model_version: (!self.model.is_empty()).then(|| self.model.clone()),
            response_id: (!self.id.is_empty()).then(|| self.id.clone()),
        };
        sse::frame(None, &serde_json::to_string(&body).unwrap_or_default())
    }

    fn tool_chunk(&mut self, tool: ToolBuffer) -> String {
        let args = args_object(&tool.arguments).unwrap_or_default();
        let part = GPart {
            function_call: Some(FunctionCall {
                id: (!tool.id.is_empty()).then_some(tool.id),
                name: Some(tool.name),
                args: Some(Value::Object(args)),
                ..FunctionCall::default()
            }),
            thought_signature: self.pending_signature.take(),
            ..GPart::default()
        };
        self.chunk(vec![part], None)
    }
}

impl ir::StreamEncoder for Encoder {
    fn encode(&mut self, event: &StreamEvent) -> Vec<String> {
        if self.finished {
            return Vec::new();
        }
        match event {
            StreamEvent::Start { id, model } => {
                self.id = id.clone();
                self.model = model.clone();
                Vec::new()
            }
            StreamEvent::TextStart { .. } => Vec::new(),
            StreamEvent::TextDelta { text, .. } => {
                if text.is_empty() {
                    return Vec::new();
                }
                let part = GPart {
                    text: Some(text.clone()),
                    thought_signature: self.pending_signature.take(),
                    ..GPart::default()
                };
                vec![self.chunk(vec![part], None)]
            }
            StreamEvent::ThinkingStart { index } => {
                self.thinking.insert(*index, false);
                Vec::new()
            }
            StreamEvent::ThinkingDelta { index, text } => {
                if text.is_empty() {
                    return Vec::new();
                }
                self.thinking.insert(*index, true);
                let part = GPart {
                    text: Some(text.clone()),
                    thought: Some(true),
                    thought_signature: self.pending_signature.take(),
                    ..GPart::default()
                };
                vec![self.chunk(vec![part], None)]
            }
            StreamEvent::ThinkingSignature { index, signature } => {
                if self.thinking.get(index) == Some(&true) {
                    // The signature closes the thought it belongs to.
                    let part = GPart {
                        text: Some(String::new()),
                        thought: Some(true),
                        thought_signature: Some(signature.clone()),
                        ..GPart::default()
                    };
                    return vec![self.chunk(vec![part], None)];
                }
                match self.pending_signature.replace(signature.clone()) {
                    Some(previous) => vec![self.chunk(vec![signature_part(previous)], None)],
                    None => Vec::new(),
                }
            }
            StreamEvent::ToolCallStart { index, id, name } => {
                self.tools.insert(*index, ToolBuffer { id: id.clone(), name: name.clone(), arguments: String::new() });
                Vec::new()
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                self.tools.entry(*index).or_default().arguments.push_str(arguments);
                Vec::new()
            }
            StreamEvent::BlockStop { index } => {
                self.thinking.remove(index);
                match self.tools.remove(index) {
                    Some(tool) => vec![self.tool_chunk(tool)],
                    None => Vec::new(),
                }
            }
            StreamEvent::Usage(usage) => {
                self.usage = Some(*usage);
                Vec::new()
            }
            StreamEvent::Finish { stop_reason } => {
                self.stop = Some(*stop_reason);
                Vec::new()
            }
            StreamEvent::Done => {
                self.finished = true;
                let mut open: Vec<usize> = self.tools.keys().copied().collect();
                open.sort_unstable();
                let mut out = Vec::new();
                for index in open {
                    if let Some(tool) = self.tools.remove(&index) {
                        out.push(self.tool_chunk(tool));
                    }
                }
                let stop = self.stop.unwrap_or(StopReason::EndTurn);
                if stop == StopReason::Error {
                    out.push(stream_error_frame(&ErrorInfo {
                        status: 502,
                        kind: "server_error".into(),
                        message: "upstream failed".into(),
                    }));
                    return out;
                }
                let last = match self.pending_signature.take() {
                    Some(signature) => signature_part(signature),
                    None => GPart { text: Some(String::new()), ..GPart::default() },
                };
                out.push(self.chunk(vec![last], Some(stop)));
                out
            }
            StreamEvent::Error(error) => {
                self.finished = true;
                vec![stream_error_frame(error)]
            }
        }
    }
}
