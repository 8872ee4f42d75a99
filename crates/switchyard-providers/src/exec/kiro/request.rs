//! Anthropic Messages (as the neutral form) → Kiro's AWS JSON request (spec §2.6). Pure: the
//! clock, the conversation id and the endpoint's origin come in as arguments.
//!
//! Rules, in the order they apply:
//! - roles: user text, images and tool results are `userInputMessage`s; assistant text and tool
//!   calls `assistantResponseMessage`s; adjacent turns of one role are merged (texts joined by a
//!   blank line); thinking parts of earlier turns are not sent (Kiro has no field for them);
//! - a `toolUseId` seen before (as a call, or as a result) is dropped the second time;
//! - the last turn must be the user's: an assistant tail goes to the history and the current
//!   message becomes `Continue`;
//! - empty content: `Tool results provided.` for a user turn carrying tool results, else
//!   `Continue` (Kiro refuses empty content);
//! - the system prompt — prefixed with the current time, followed by the `-agentic` protocol
//!   text and the thinking hint when they apply — is inlined at the start of the current message
//!   between `--- SYSTEM PROMPT ---` and `--- END SYSTEM PROMPT ---`; without any of the three
//!   nothing is added;
//! - tools go in the current message's context (none for `-chat` models); descriptions longer
//!   than [`MAX_TOOL_DESCRIPTION_BYTES`] are cut at a UTF-8 boundary and marked; an empty one is
//!   the tool's name;
//! - images must be inline base64 (`format` from the media type); URLs are refused;
//! - `profileArn` only for social / imported accounts (Builder ID and IdC tokens carry no
//!   profile); `inferenceConfig` only with the fields the client set.

use serde::Serialize;
use serde_json::Value;
use switchyard_dialects::TranslateError;
use switchyard_dialects::ir::{ChatRequest, ImageSource, Part, Role};

/// Tool descriptions are cut to this many bytes (Kiro refuses very long ones).
pub const MAX_TOOL_DESCRIPTION_BYTES: usize = 10 * 1024;
pub const TRUNCATION_MARK: &str = "... (description truncated)";
/// Thinking budget when the client turns thinking on without one.
pub const DEFAULT_THINKING_BUDGET: i64 = 16_000;
pub const EMPTY_USER_CONTENT: &str = "Continue";
pub const TOOL_RESULTS_CONTENT: &str = "Tool results provided.";

/// System text for `-agentic` models: asks the model to write large files in pieces, because
/// one huge tool call tends to be cut off upstream.
pub const AGENTIC_SYSTEM_TEXT: &str = "\
# Writing large files
Your tool calls are delivered through a stream that may cut off very long arguments. When you \
create or rewrite a file longer than about 300 lines, do it in several steps: first write the \
file's opening part (at most 300 lines) with one tool call, then add each following part with \
an append or edit call of at most 300 lines, until the file is complete. Never put more than \
300 lines of file content into a single tool call, and do not mention this procedure to the user.";

/// What the request depends on besides the client's body.
pub struct BuildOptions<'a> {
    /// The upstream model name the client asked for (`kiro-claude-sonnet-4-5-agentic`, ...).
    pub model: &'a str,
    /// `AI_EDITOR` (CodeWhisperer) or `CLI` (Amazon Q).
    pub origin: &'a str,
    /// Sent only for social / imported accounts.
    pub profile_arn: Option<&'a str>,
    /// `YYYY-MM-DD HH:MM:SS TZ`, for the system prompt's time context.
    pub now: &'a str,
    pub conversation_id: &'a str,
}

/// The request and how much text it carries (for the usage estimate when Kiro reports none).
pub struct Built {
    pub request: KiroRequest,
    pub input_chars: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KiroRequest {
    pub conversation_state: ConversationState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_arn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inference_config: Option<InferenceConfig>,
}

impl KiroRequest {
    /// Sets the origin of every user message (it differs per endpoint).
    pub fn set_origin(&mut self, origin: &str) {
        let state = &mut self.conversation_state;
        state.current_message.user_input_message.origin = origin.to_owned();
        for entry in &mut state.history {
            if let HistoryEntry::UserInputMessage(message) = entry {
                message.origin = origin.to_owned();
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationState {
    pub chat_trigger_type: &'static str,
    pub conversation_id: String,
    pub current_message: CurrentMessage,
    pub history: Vec<HistoryEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CurrentMessage {
    pub user_input_message: UserInputMessage,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HistoryEntry {
    UserInputMessage(UserInputMessage),
    AssistantResponseMessage(AssistantResponseMessage),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInputMessage {
    pub content: String,
    pub model_id: String,
    pub origin: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_input_message_context: Option<UserInputMessageContext>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UserInputMessageContext {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_results: Vec<ToolResult>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolResult {
    pub content: Vec<TextContent>,
    pub status: &'static str,
    pub tool_use_id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextContent {
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    pub tool_specification: ToolSpecification,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolSpecification {
    pub name: String,
    pub description: String,
    pub input_schema: InputSchema,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputSchema {
    pub json: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Image {
    pub format: String,
    pub source: ImageBytes,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageBytes {
    /// Base64, as the client sent it.
    pub bytes: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AssistantResponseMessage {
    pub content: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_uses: Vec<ToolUse>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolUse {
    pub tool_use_id: String,
    pub name: String,
    pub input: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
}

/// Kiro's `modelId` for one of our model names (spec §2.6): Opus 4.5, Sonnet 4.5, Sonnet 4,
/// Haiku 4.5, `auto`, Sonnet 3.7; anything else is Sonnet 4.5.
pub fn model_id(model: &str) -> &'static str {
    let name = model.trim().to_ascii_lowercase();
    let has = |needle: &str| name.contains(needle);
    if has("opus-4-5") || has("opus-4.5") {
        "claude-opus-4.5"
    } else if has("sonnet-4-5") || has("sonnet-4.5") {
        "claude-sonnet-4.5"
    } else if has("3-7-sonnet") || has("3.7-sonnet") || has("sonnet-3-7") || has("sonnet-3.7") {
        "claude-3-7-sonnet-20250219"
    } else if has("sonnet-4") {
        "claude-sonnet-4"
    } else if has("haiku") {
        "claude-haiku-4.5"
    } else if name == "auto" || name.ends_with("-auto") {
        "auto"
    } else {
        "claude-sonnet-4.5"
    }
}

/// `-agentic` twins get the chunked-write system text.
pub fn is_agentic(model: &str) -> bool {
    model.trim().to_ascii_lowercase().ends_with("-agentic")
}

/// `-chat` models are sent without tools.
pub fn is_chat_only(model: &str) -> bool {
    model.trim().to_ascii_lowercase().ends_with("-chat")
}

/// The thinking budget to hint at, when the client turned thinking on.
pub fn thinking_budget(request: &ChatRequest) -> Option<i64> {
    let reasoning = request.reasoning.as_ref()?;
    if reasoning.effort.as_deref().is_some_and(|e| e.eq_ignore_ascii_case("none")) || !reasoning.include_thoughts {
        return None;
    }
    Some(reasoning.budget_tokens.filter(|b| *b > 0).unwrap_or(DEFAULT_THINKING_BUDGET))
}

/// `description` cut to at most `max` bytes (mark included) at a character boundary.
pub fn truncate_description(description: &str, max: usize) -> String {
    if description.len() <= max {
        return description.to_owned();
    }
    let mut cut = max.saturating_sub(TRUNCATION_MARK.len());
    while !description.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{TRUNCATION_MARK}", &description[..cut])
}

/// One merged turn before it becomes a Kiro message.
#[derive(Default)]
struct Turn {
    user: bool,
    texts: Vec<String>,
    images: Vec<Image>,
    tool_results: Vec<ToolResult>,
    tool_uses: Vec<ToolUse>,
}

impl Turn {
    fn text(&self) -> String {
        self.texts.iter().map(|t| t.as_str()).filter(|t| !t.trim().is_empty()).collect::<Vec<_>>().join("\n\n")
    }
}

fn image(source: &ImageSource, path: &str) -> Result<Image, TranslateError> {
    match source {
        ImageSource::Base64 { media_type, data } => {
            let subtype = media_type.trim().to_ascii_lowercase();
            let format = subtype.strip_prefix("image/").unwrap_or(&subtype);
            let format = if format == "jpg" { "jpeg" } else { format };
            Ok(Image { format: format.to_owned(), source: ImageBytes { bytes: data.clone() } })
        }
        ImageSource::Url(_) => {
            Err(TranslateError::Unsupported(format!("{path}: image URLs (Kiro takes inline base64 images only)")))
        }
    }
}

fn result_text(content: &[Part]) -> String {
    content
        .iter()
        .filter_map(|part| match part {
            Part::Text(text) => Some(text.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Merges the neutral messages into alternating turns, dropping repeated tool-use ids.
fn turns(request: &ChatRequest) -> Result<Vec<Turn>, TranslateError> {
    let mut turns: Vec<Turn> = Vec::new();
    let mut seen_calls = std::collections::HashSet::new();
    let mut seen_results = std::collections::HashSet::new();
    for (i, message) in request.messages.iter().enumerate() {
        let user = message.role != Role::Assistant;
        if turns.last().is_none_or(|t| t.user != user) {
            turns.push(Turn { user, ..Turn::default() });
        }
        let turn = turns.last_mut().expect("pushed above");
        let mut texts = Vec::new();
        for (j, part) in message.content.iter().enumerate() {
            match part {
                Part::Text(text) => texts.push(text.as_str()),
                Part::Image(source) if user => turn.images.push(image(source, &format!("messages[{i}].content[{j}]"))?),
                Part::ToolCall { id, name, arguments } if !user && seen_calls.insert(id.clone()) => {
                    let input = match serde_json::from_str::<Value>(arguments) {
                        Ok(value @ Value::Object(_)) => value,
                        _ => Value::Object(Default::default()),
                    };
                    turn.tool_uses.push(ToolUse { tool_use_id: id.clone(), name: name.clone(), input });
                }
                Part::ToolResult { call_id, content, is_error } if seen_results.insert(call_id.clone()) => {
                    turn.tool_results.push(ToolResult {
                        content: vec![TextContent { text: result_text(content) }],
                        status: if *is_error { "error" } else { "success" },
                        tool_use_id: call_id.clone(),
                    });
                }
                // Earlier reasoning, assistant images and user-side tool calls have no Kiro field.
                _ => {}
            }
        }
        turn.texts.push(texts.join("\n"));
    }
    Ok(turns)
}

fn user_message(turn: Turn, model_id: &str, origin: &str) -> UserInputMessage {
    let mut content = turn.text();
    if content.trim().is_empty() {
        content = if turn.tool_results.is_empty() { EMPTY_USER_CONTENT } else { TOOL_RESULTS_CONTENT }.to_owned();
    }
    let context = (!turn.tool_results.is_empty())
        .then(|| UserInputMessageContext { tool_results: turn.tool_results, tools: Vec::new() });
    UserInputMessage {
        content,
        model_id: model_id.to_owned(),
        origin: origin.to_owned(),
        images: turn.images,
        user_input_message_context: context,
    }
}

/// The system block inlined in front of the current message, if there is anything to say.
fn system_block(request: &ChatRequest, options: &BuildOptions<'_>) -> Option<String> {
    let mut sections: Vec<String> = request.system.iter().filter(|s| !s.trim().is_empty()).cloned().collect();
    if is_agentic(options.model) {
        sections.push(AGENTIC_SYSTEM_TEXT.to_owned());
    }
    if let Some(budget) = thinking_budget(request) {
        sections.push(format!(
            "<thinking_mode>interleaved</thinking_mode><max_thinking_length>{budget}</max_thinking_length>"
        ));
    }
    if sections.is_empty() {
        return None;
    }
    Some(format!(
        "--- SYSTEM PROMPT ---\n[Context: Current time is {}]\n\n{}\n--- END SYSTEM PROMPT ---\n\n",
        options.now,
        sections.join("\n\n")
    ))
}

pub fn build(request: &ChatRequest, options: &BuildOptions<'_>) -> Result<Built, TranslateError> {
    let model_id = model_id(options.model);
    let mut turns = turns(request)?;
    if turns.last().is_none_or(|t| !t.user) {
        turns.push(Turn { user: true, ..Turn::default() });
    }
    let current_turn = turns.pop().expect("a user turn is last");
    let mut input_chars = 0;
    let mut history = Vec::with_capacity(turns.len());
    for turn in turns {
        if turn.user {
            let message = user_message(turn, model_id, options.origin);
            input_chars += message.content.len();
            history.push(HistoryEntry::UserInputMessage(message));
        } else {
            let mut content = turn.text();
            if content.trim().is_empty() {
                content = EMPTY_USER_CONTENT.to_owned();
            }
            input_chars += content.len() + turn.tool_uses.iter().map(|t| t.input.to_string().len()).sum::<usize>();
            history.push(HistoryEntry::AssistantResponseMessage(AssistantResponseMessage {
                content,
                tool_uses: turn.tool_uses,
            }));
        }
    }

    let mut current = user_message(current_turn, model_id, options.origin);
    if let Some(block) = system_block(request, options) {
        current.content = format!("{block}{}", current.content);
    }
    input_chars += current.content.len();
    if !is_chat_only(options.model) && !request.tools.is_empty() {
        let tools: Vec<Tool> = request
            .tools
            .iter()
            .map(|tool| {
                let description = tool.description.as_deref().map(str::trim).filter(|d| !d.is_empty());
                Tool {
                    tool_specification: ToolSpecification {
                        name: tool.name.clone(),
                        description: truncate_description(
                            description.unwrap_or(&tool.name),
                            MAX_TOOL_DESCRIPTION_BYTES,
                        ),
                        input_schema: InputSchema { json: tool.parameters.clone() },
                    },
                }
            })
            .collect();
        input_chars += tools
            .iter()
            .map(|t| t.tool_specification.description.len() + t.tool_specification.input_schema.json.to_string().len())
            .sum::<usize>();
        current.user_input_message_context.get_or_insert_with(Default::default).tools = tools;
    }
    for result in current.user_input_message_context.iter().flat_map(|c| &c.tool_results) {
        input_chars += result.content.iter().map(|c| c.text.len()).sum::<usize>();
    }

    let inference_config = (request.max_output_tokens.is_some() || request.temperature.is_some())
        .then_some(InferenceConfig { max_tokens: request.max_output_tokens, temperature: request.temperature });
    Ok(Built {
        request: KiroRequest {
            conversation_state: ConversationState {
                chat_trigger_type: "MANUAL",
                conversation_id: options.conversation_id.to_owned(),
                current_message: CurrentMessage { user_input_message: current },
                history,
            },
            profile_arn: options.profile_arn.map(str::to_owned),
            inference_config,
        },
        input_chars,
    })
}
