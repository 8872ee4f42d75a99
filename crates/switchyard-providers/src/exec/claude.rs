//! Anthropic Messages, as Claude Code sends it (spec §4.6): OAuth tokens as `Bearer` with the
//! OAuth betas, `claude-api-key` keys as `x-api-key` on Anthropic's own API (`Bearer` on a custom
//! base-url), and Claude Code's wire fingerprint (`claude-header-defaults` can update it).

use switchyard_dialects::Dialect;

use super::{Headers, config_value, own_base, pass_through, post, send};
use crate::executor::{ExecContext, ExecError, Executor, Operation, UpstreamAuth, UpstreamRequest, UpstreamResponse};

pub(super) const DEFAULT_BASE: &str = "https://api.anthropic.com";
const ANTHROPIC_HOST: &str = "api.anthropic.com";
const HEADER_DEFAULTS: &str = "claude-header-defaults";

/// Claude Code 2.1.220 with its bundled `@anthropic-ai/sdk` (spec §4.6).
const USER_AGENT: &str = "claude-cli/2.1.220 (external, cli)";
const PACKAGE_VERSION: &str = "0.94.0";
const RUNTIME_VERSION: &str = "v26.3.0";
const OS: &str = "MacOS";
const ARCH: &str = "arm64";
const TIMEOUT_SECONDS: &str = "600";

const CLAUDE_CODE_BETA: &str = "claude-code-20250219";
const OAUTH_BETA: &str = "oauth-2025-04-20";
const REDACT_THINKING_BETA: &str = "redact-thinking-2026-02-12";
const ADVANCED_TOOL_USE_BETA: &str = "advanced-tool-use-2025-11-20";
const FALLBACK_CREDIT_BETA: &str = "fallback-credit-2026-06-01";
/// Claude Code's count-tokens profile, after the leading betas.
const COUNT_TOKENS_BETAS: &[&str] =
    &["interleaved-thinking-2025-05-14", "context-management-2025-06-27", "token-counting-2024-11-01"];

/// Claude Code headers a client may carry per session or request; passed on as sent.
const FORWARDED: &[&str] =
    &["x-claude-code-session-id", "x-claude-code-agent-id", "x-claude-code-parent-agent-id", "x-client-request-id"];

pub struct ClaudeExecutor;

#[async_trait::async_trait]
impl Executor for ClaudeExecutor {
    fn dialect(&self) -> Dialect {
        Dialect::AnthropicMessages
    }

    async fn execute(
        &self,
        ctx: &ExecContext,
        auth: &UpstreamAuth<'_>,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, ExecError> {
        let count = request.operation == Operation::CountTokens;
        let path = if count { "/v1/messages/count_tokens?beta=true" } else { "/v1/messages?beta=true" };
        let mut headers = Headers::default();
        let (base, oauth) = match auth {
            UpstreamAuth::OAuth { access_token, .. } => {
                headers.secret("authorization", &format!("Bearer {access_token}"))?;
                (ctx.endpoint("claude", "api", DEFAULT_BASE), true)
            }
            UpstreamAuth::ApiKey { key, base_url, .. } => {
                let base = own_base(*base_url).map(str::to_owned);
                // Anthropic's API wants `x-api-key`; Anthropic-compatible gateways want Bearer.
                if base.as_deref().is_none_or(is_anthropic) {
                    headers.secret("x-api-key", key)?;
                } else {
                    headers.secret("authorization", &format!("Bearer {key}"))?;
                }
                (base.unwrap_or_else(|| ctx.endpoint("claude", "api", DEFAULT_BASE)), false)
            }
            UpstreamAuth::Stored { .. } => return Err(super::stored_not_supported()),
        };
        let hints = BetaHints::read(&request.body);
        let setting =
            |key: &str, default: &str| config_value(ctx, HEADER_DEFAULTS, key).unwrap_or_else(|| default.into());
        headers.set("content-type", "application/json")?;
        headers.set("accept", "application/json")?;
        headers.set("anthropic-version", "2023-06-01")?;
        headers.set("anthropic-beta", &betas(&hints, oauth, count, &request.client_headers))?;
        headers.set("anthropic-dangerous-direct-browser-access", "true")?;
        headers.set("x-app", "cli")?;
        headers.set("user-agent", &setting("user-agent", USER_AGENT))?;
        headers.set("x-stainless-lang", "js")?;
        headers.set("x-stainless-package-version", &setting("package-version", PACKAGE_VERSION))?;
        headers.set("x-stainless-os", &setting("os", OS))?;
        headers.set("x-stainless-arch", &setting("arch", ARCH))?;
        headers.set("x-stainless-runtime", "node")?;
        headers.set("x-stainless-runtime-version", &setting("runtime-version", RUNTIME_VERSION))?;
        headers.set("x-stainless-retry-count", "0")?;
        if !count {
            // Claude Code sends no timeout header on count_tokens.
            headers.set("x-stainless-timeout", &setting("timeout", TIMEOUT_SECONDS))?;
        }
        headers.forward(&request.client_headers, FORWARDED);
        if let UpstreamAuth::ApiKey { headers: extra, .. } = auth {
            headers.extra(extra)?;
        }
        let response = send(post(ctx, &base, path).headers(headers.0).body(request.body)).await?;
        Ok(pass_through(response))
    }
}

fn is_anthropic(base: &str) -> bool {
    url::Url::parse(base).ok().and_then(|u| u.host_str().map(|h| h.eq_ignore_ascii_case(ANTHROPIC_HOST))) == Some(true)
}

/// The scalar visits of a "does this value have X" visitor: a scalar has nothing.
macro_rules! scalars_are_false {
    () => {
        fn visit_bool<E>(self, _: bool) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_str<E>(self, _: &str) -> Result<bool, E> {
            Ok(false)
        }
        fn visit_unit<E>(self) -> Result<bool, E> {
            Ok(false)
        }
    };
}

/// The two facts of a request body the beta list depends on. Read without building the body as
/// a `Value` (which allocated every string and array of a long conversation on every request);
/// a body that is not an object has neither.
#[derive(Default, serde::Deserialize)]
struct BetaHints {
    /// `thinking.display` is present, whatever its value (`null` too).
    #[serde(default, rename = "thinking", deserialize_with = "has_display")]
    thinking_display: bool,
    /// `tools` is a non-empty array.
    #[serde(default, deserialize_with = "non_empty_array")]
    tools: bool,
}

impl BetaHints {
    fn read(body: &[u8]) -> BetaHints {
        serde_json::from_slice(body).unwrap_or_default()
    }
}

/// Any value: true only for an object with a `display` key.
fn has_display<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    struct HasDisplay;
    impl<'de> serde::de::Visitor<'de> for HasDisplay {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let mut found = false;
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                found |= key == "display";
                map.next_value::<serde::de::IgnoredAny>()?;
            }
            Ok(found)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(false)
        }
        scalars_are_false!();
    }
    deserializer.deserialize_any(HasDisplay)
}

fn non_empty_array<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    /// Any value: true only for an array with at least one element.
    struct NonEmpty;
    impl<'de> serde::de::Visitor<'de> for NonEmpty {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("any JSON value")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
            let first = seq.next_element::<serde::de::IgnoredAny>()?.is_some();
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(first)
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            while map.next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?.is_some() {}
            Ok(false)
        }
        scalars_are_false!();
    }
    deserializer.deserialize_any(NonEmpty)
}

/// Claude Code's per-request beta list (spec §4.6), then the client's own betas not yet in it.
fn betas(body: &BetaHints, oauth: bool, count: bool, client: &reqwest::header::HeaderMap) -> String {
    let mut list = vec![CLAUDE_CODE_BETA];
    if oauth {
        list.push(OAUTH_BETA);
    }
    if count {
        list.extend_from_slice(COUNT_TOKENS_BETAS);
    } else {
        list.push("interleaved-thinking-2025-05-14");
        // Thinking is redacted unless the request chose how it is displayed.
        if !body.thinking_display {
            list.push(REDACT_THINKING_BETA);
        }
        list.extend_from_slice(&[
            "thinking-token-count-2026-05-13",
            "context-management-2025-06-27",
            "prompt-caching-scope-2026-01-05",
            "mid-conversation-system-2026-04-07",
        ]);
        if body.tools {
            list.push(ADVANCED_TOOL_USE_BETA);
        }
        list.push("effort-2025-11-24");
        if oauth {
            list.push(FALLBACK_CREDIT_BETA);
        }
    }
    let mut out: Vec<String> = list.into_iter().map(str::to_owned).collect();
    let requested = client.get_all("anthropic-beta").iter().filter_map(|v| v.to_str().ok());
    for beta in requested.flat_map(|v| v.split(',')).map(str::trim).filter(|b| !b.is_empty()) {
        if !out.iter().any(|known| known == beta) {
            out.push(beta.to_owned());
        }
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;
    use serde_json::{Value, json};

    fn hints(body: Value) -> BetaHints {
        BetaHints::read(&serde_json::to_vec(&body).unwrap())
    }

    #[test]
    fn beta_hints_read_tools_and_thinking_display_from_the_raw_body() {
        let read = |body: Value| {
            let h = hints(body);
            (h.tools, h.thinking_display)
        };
        assert_eq!(read(json!({"tools": [{"name": "t"}], "thinking": {"display": null}})), (true, true));
        assert_eq!(read(json!({"tools": [], "thinking": {"type": "enabled"}})), (false, false));
        assert_eq!(read(json!({"tools": {"a": 1}, "messages": [{"content": [1, "x"]}]})), (false, false));
        assert_eq!(read(json!({"tools": "x", "thinking": "y"})), (false, false));
        assert_eq!(read(json!({"thinking": [1], "tools": [null]})), (true, false));
        assert_eq!(read(json!(["not", "an", "object"])), (false, false));
        assert!(!BetaHints::read(b"{bad").tools);
    }

    #[test]
    fn oauth_betas_lead_and_client_betas_follow_once() {
        let mut client = HeaderMap::new();
        client.append("anthropic-beta", "context-1m-2025-08-07, oauth-2025-04-20".parse().unwrap());
        client.append("anthropic-beta", "files-api-2025-04-14".parse().unwrap());
        let list = betas(&hints(json!({"tools": [{"name": "t"}]})), true, false, &client);
        assert!(list.starts_with("claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14,"));
        assert!(list.contains(ADVANCED_TOOL_USE_BETA) && list.contains(FALLBACK_CREDIT_BETA));
        assert!(list.ends_with(",context-1m-2025-08-07,files-api-2025-04-14"), "{list}");
        assert_eq!(list.matches(OAUTH_BETA).count(), 1);
    }

    #[test]
    fn api_keys_get_no_oauth_betas_and_count_tokens_its_own_profile() {
        let list = betas(&hints(json!({"thinking": {"display": "summarized"}})), false, false, &HeaderMap::new());
        assert!(
            !list.contains(OAUTH_BETA) && !list.contains(FALLBACK_CREDIT_BETA) && !list.contains(REDACT_THINKING_BETA)
        );
        let count = betas(&hints(Value::Null), true, true, &HeaderMap::new());
        assert_eq!(
            count,
            "claude-code-20250219,oauth-2025-04-20,interleaved-thinking-2025-05-14,context-management-2025-06-27,\
             token-counting-2024-11-01"
        );
    }

    #[test]
    fn anthropic_host_is_recognised() {
        assert!(is_anthropic("https://api.anthropic.com"));
        assert!(is_anthropic("https://API.anthropic.com/"));
        assert!(!is_anthropic("https://api.kimi.com/coding"));
        assert!(!is_anthropic("not a url"));
    }
}
