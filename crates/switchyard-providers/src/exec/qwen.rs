//! Qwen Code's chat API (OpenAI Chat Completions at `portal.qwen.ai/v1`), with the headers of
//! the current Qwen Code CLI (cpa-core §1.8: `QwenCode` user agent, `X-Dashscope-*` and the
//! Stainless SDK headers).
//!
//! Base URL: `upstream-urls.qwen.api` when configured (always wins), else `https://<resource_url>/v1`
//! from the account's file, else `https://portal.qwen.ai/v1`. Streams ask for usage
//! (`stream_options.include_usage`), and get a placeholder function tool when the request has
//! none: Qwen's streaming endpoint misbehaves on tool-less requests (providers-extra §3.4).

use bytes::Bytes;
use serde_json::{Value, json};
use switchyard_dialects::Dialect;

use super::{Headers, pass_through, post, send};
use crate::executor::{ExecContext, ExecError, Executor, Operation, UpstreamAuth, UpstreamRequest, UpstreamResponse};

pub(crate) const PROVIDER: &str = "qwen";
pub(crate) const API_URL: &str = "https://portal.qwen.ai/v1";
const USER_AGENT: &str = "QwenCode/0.14.2 (darwin; arm64)";
/// The Stainless (OpenAI Node SDK) headers the Qwen Code CLI sends.
const STAINLESS: &[(&str, &str)] = &[
    ("x-stainless-lang", "js"),
    ("x-stainless-package-version", "5.11.0"),
    ("x-stainless-os", "MacOS"),
    ("x-stainless-arch", "arm64"),
    ("x-stainless-runtime", "node"),
    ("x-stainless-runtime-version", "v22.17.0"),
    ("x-stainless-retry-count", "0"),
];
/// Name of the tool added to tool-less streams.
pub const PLACEHOLDER_TOOL: &str = "do_not_call_me";

pub struct QwenExecutor;

#[async_trait::async_trait]
impl Executor for QwenExecutor {
    fn dialect(&self) -> Dialect {
        Dialect::OpenAiChat
    }

    async fn execute(
        &self,
        ctx: &ExecContext,
        auth: &UpstreamAuth<'_>,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, ExecError> {
        if request.operation == Operation::CountTokens {
            return Err(ExecError::Unsupported("Qwen's chat API cannot count tokens".into()));
        }
        let UpstreamAuth::OAuth { access_token, credential } = auth else {
            return Err(ExecError::Credential("Qwen is served from a qwen auth file's access token".into()));
        };
        let base = match ctx.config.upstream_url(PROVIDER, "api") {
            Some(configured) => configured.to_owned(),
            None => credential.str_field("resource_url").map_or_else(|| API_URL.to_owned(), resource_base),
        };
        let mut headers = Headers::default();
        headers.secret("authorization", &format!("Bearer {access_token}"))?;
        headers.set("content-type", "application/json")?;
        headers.set("accept", if request.stream { "text/event-stream" } else { "application/json" })?;
        headers.set("user-agent", USER_AGENT)?;
        headers.set("x-dashscope-authtype", "qwen-oauth")?;
        headers.set("x-dashscope-cachecontrol", "enable")?;
        headers.set("x-dashscope-useragent", USER_AGENT)?;
        for (name, value) in STAINLESS {
            headers.set(name, value)?;
        }
        let body = shape(request.body, request.stream);
        let response = send(post(ctx, &base, "/chat/completions").headers(headers.0).body(body)).await?;
        Ok(pass_through(response))
    }
}

/// The API base for an account's `resource_url`: a bare host (what Qwen sends, e.g.
/// `portal.qwen.ai`) becomes `https://<host>/v1`; a URL with a scheme is taken as it is, with
/// `/v1` added when missing.
pub fn resource_base(resource_url: &str) -> String {
    let trimmed = resource_url.trim().trim_end_matches('/');
    let with_scheme = if trimmed.starts_with("https://") || trimmed.starts_with("http://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    if with_scheme.ends_with("/v1") { with_scheme } else { format!("{with_scheme}/v1") }
}

/// The tool added to streams without tools; its text tells the model to leave it alone.
fn placeholder_tool() -> Value {
    json!({
        "type": "function",
        "function": {
            "name": PLACEHOLDER_TOOL,
            "description": "Placeholder that keeps the stream well-formed. Never call it.",
            "parameters": {"type": "object", "properties": {}},
        },
    })
}

/// `stream` set as asked; streams also get `stream_options.include_usage: true` and, when
/// `tools` is missing or empty, the placeholder tool. Non-JSON bodies go out as they are.
fn shape(body: Bytes, stream: bool) -> Bytes {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    map.insert("stream".into(), stream.into());
    if stream {
        let options = map.entry("stream_options").or_insert_with(|| json!({}));
        if !options.is_object() {
            *options = json!({});
        }
        options["include_usage"] = true.into();
        let has_tools = map.get("tools").and_then(Value::as_array).is_some_and(|tools| !tools.is_empty());
        if !has_tools {
            map.insert("tools".into(), json!([placeholder_tool()]));
        }
    }
    serde_json::to_vec(&map).map(Bytes::from).unwrap_or(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_urls_become_v1_bases() {
        assert_eq!(resource_base("portal.qwen.ai"), "https://portal.qwen.ai/v1");
        assert_eq!(
            resource_base(" dashscope.aliyuncs.com/compatible-mode/ "),
            "https://dashscope.aliyuncs.com/compatible-mode/v1"
        );
        assert_eq!(resource_base("https://portal.qwen.ai/v1/"), "https://portal.qwen.ai/v1");
        assert_eq!(resource_base("http://127.0.0.1:8080"), "http://127.0.0.1:8080/v1");
    }

    fn shaped(body: Value, stream: bool) -> Value {
        serde_json::from_slice(&shape(Bytes::from(body.to_string()), stream)).unwrap()
    }

    #[test]
    fn streams_get_usage_and_a_placeholder_tool_only_when_tool_less() {
        let sent = shaped(json!({"model": "m", "messages": []}), true);
        assert_eq!(sent["stream"], true);
        assert_eq!(sent["stream_options"], json!({"include_usage": true}));
        assert_eq!(sent["tools"][0]["function"]["name"], PLACEHOLDER_TOOL);

        let sent = shaped(json!({"model": "m", "messages": [], "tools": []}), true);
        assert_eq!(sent["tools"].as_array().unwrap().len(), 1);

        let tool = json!({"type": "function", "function": {"name": "read_file", "parameters": {}}});
        let sent = shaped(
            json!({"model": "m", "messages": [], "tools": [tool.clone()],
                                 "stream_options": {"x": 1}}),
            true,
        );
        assert_eq!(sent["tools"], json!([tool]));
        assert_eq!(sent["stream_options"], json!({"x": 1, "include_usage": true}));

        let sent = shaped(json!({"model": "m", "messages": [], "stream": true}), false);
        assert_eq!(sent["stream"], false);
        assert!(sent.get("tools").is_none() && sent.get("stream_options").is_none());
    }
}
