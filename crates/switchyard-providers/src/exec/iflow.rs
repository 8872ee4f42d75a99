//! iFlow: OpenAI Chat Completions at `apis.iflow.cn/v1`, authenticated with the account's API
//! key (from the auth file, never the OAuth token) and iFlow's request signature (spec
//! providers-extra §4.5, cpa-core §1.9):
//!
//! `x-iflow-signature` = hex(HMAC-SHA256(key = API key, "<User-Agent>:<session-id>:<ms>")), sent
//! with `session-id: session-<uuid>` (new per request) and `x-iflow-timestamp: <ms>`.
//!
//! The file's own `base_url` wins over `upstream-urls.iflow.api`, which wins over the default.
//! In streams an empty `tools: []` (which iFlow rejects) becomes one placeholder function.

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use switchyard_auth::Credential;
use switchyard_dialects::Dialect;

use super::{Headers, own_base, pass_through, post, send, uuid_v4};
use crate::executor::{
    ExecContext, ExecError, Executor, Operation, TokenSource, UpstreamAuth, UpstreamRequest, UpstreamResponse,
};
use crate::iflow::{API_BASE, PROVIDER};

/// The iFlow CLI's user agent; the signature covers it.
pub const USER_AGENT: &str = "iFlow-Cli";
/// Name of the function that stands in for an empty tool list in streams.
pub const PLACEHOLDER_TOOL: &str = "noop";

pub struct IflowExecutor;

#[async_trait::async_trait]
impl Executor for IflowExecutor {
    fn dialect(&self) -> Dialect {
        Dialect::OpenAiChat
    }

    fn token_source(&self) -> TokenSource {
        TokenSource::Credential
    }

    async fn execute(
        &self,
        ctx: &ExecContext,
        auth: &UpstreamAuth<'_>,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, ExecError> {
        if request.operation == Operation::CountTokens {
            return Err(ExecError::Unsupported("iFlow has no token counting endpoint".into()));
        }
        let (api_key, base, extra) = match auth {
            // The OAuth token is only good for getUserInfo; chat takes the key the login stored.
            UpstreamAuth::Stored { credential } | UpstreamAuth::OAuth { credential, .. } => {
                (stored_key(credential)?, file_base(credential), &[][..])
            }
            UpstreamAuth::ApiKey { key, base_url, headers } => (*key, own_base(*base_url).map(str::to_owned), *headers),
        };
        let base = base.unwrap_or_else(|| ctx.endpoint(PROVIDER, "api", API_BASE));
        let body = if request.stream { with_placeholder_tool(request.body) } else { request.body };

        let session_id = format!("session-{}", uuid_v4());
        let timestamp = chrono::Utc::now().timestamp_millis().to_string();
        let mut headers = Headers::default();
        headers.secret("authorization", &format!("Bearer {api_key}"))?;
        headers.set("content-type", "application/json")?;
        headers.set("user-agent", USER_AGENT)?;
        headers.set("session-id", &session_id)?;
        headers.set("x-iflow-timestamp", &timestamp)?;
        headers.set("x-iflow-signature", &signature(api_key, USER_AGENT, &session_id, &timestamp))?;
        headers.set("accept", if request.stream { "text/event-stream" } else { "application/json" })?;
        headers.extra(extra)?;
        let response = send(post(ctx, &base, "/chat/completions").headers(headers.0).body(body)).await?;
        Ok(pass_through(response))
    }
}

fn stored_key(credential: &Credential) -> Result<&str, ExecError> {
    credential
        .str_field("api_key")
        .ok_or_else(|| ExecError::Credential("this iFlow account has no api_key; log in again".into()))
}

/// The account's own `base_url`, when it has a non-blank one.
fn file_base(credential: &Credential) -> Option<String> {
    own_base(credential.str_field("base_url")).map(str::to_owned)
}

/// hex(HMAC-SHA256(key = `api_key`, "<user_agent>:<session_id>:<timestamp>")).
pub fn signature(api_key: &str, user_agent: &str, session_id: &str, timestamp: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(api_key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(format!("{user_agent}:{session_id}:{timestamp}").as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The body with an empty `tools` array replaced by the placeholder function; any other body
/// goes out byte for byte.
fn with_placeholder_tool(body: Bytes) -> Bytes {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    if !map.get("tools").and_then(Value::as_array).is_some_and(Vec::is_empty) {
        return body;
    }
    map.insert(
        "tools".into(),
        json!([{
            "type": "function",
            "function": {
                "name": PLACEHOLDER_TOOL,
                "description": "Placeholder: iFlow rejects streamed requests with an empty tool list.",
                "parameters": {"type": "object", "properties": {}},
            },
        }]),
    );
    serde_json::to_vec(&map).map(Bytes::from).unwrap_or(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_agent_session_and_timestamp() {
        // Computed independently (Python's hmac module).
        assert_eq!(
            signature("sk-test", USER_AGENT, "session-abc", "1700000000000"),
            "c03ffa4fe1a9a874d324c60c6a19d1c6c3452c83ad96f434d117c824f57d3944"
        );
    }

    #[test]
    fn only_an_empty_tool_list_is_replaced() {
        let empty = with_placeholder_tool(Bytes::from_static(br#"{"model":"m","tools":[],"stream":true}"#));
        let value: Value = serde_json::from_slice(&empty).unwrap();
        assert_eq!(value["tools"][0]["function"]["name"], PLACEHOLDER_TOOL);
        assert_eq!(value["tools"].as_array().unwrap().len(), 1);
        assert_eq!(value["model"], "m");

        for kept in [&br#"{"model":"m","tools":[{"type":"function"}]}"#[..], br#"{"model":"m"}"#, b"not json"] {
            assert_eq!(&with_placeholder_tool(Bytes::copy_from_slice(kept))[..], kept);
        }
    }
}
