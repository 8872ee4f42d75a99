//! xAI: the OpenAI Responses API (`POST {base}/responses`), spec §4.6.
//!
//! Where a request goes and what it carries:
//!
//! - OAuth accounts (Grok CLI login) chat through `https://cli-chat-proxy.grok.com/v1` with the
//!   Grok CLI's headers (`X-XAI-Token-Auth`, `x-grok-client-version`, `User-Agent`,
//!   `x-grok-client-identifier`, `x-authenticateresponse`) and an `x-grok-conv-id` per request
//!   (the client's own `x-grok-conv-id` when it sends one). The Grok CLI only ever streams from
//!   that proxy, so a non-stream request is sent with `stream: true` and the events are folded
//!   into the non-stream answer, exactly as for the ChatGPT Codex backend.
//! - Accounts whose file says `using_api: true`, and `xai-api-key` entries, use the public API
//!   `https://api.x.ai/v1` with a plain Bearer token, streaming or not as asked. An API key's own
//!   `base-url` wins, then `upstream-urls.xai.api`; for `using_api` accounts the configured URL
//!   wins over the file's `base_url`.
//!
//! What the Grok Responses API needs that Codex's does not:
//!
//! - `store` defaults to `true` there (responses are kept on xAI's servers for 30 days). A body
//!   without `store` (and without `previous_response_id`, which needs stored state) gets
//!   `store: false`: requests are spread over pooled accounts, so a stored response would not
//!   even be reachable on the next turn, and nothing is kept that nobody asked to keep.
//! - Reasoning effort: most Grok models reject `reasoning.effort` with 400 ("does not support
//!   parameter reasoningEffort": grok-4, grok-4-fast*, grok-code-fast-1 pick reasoning by model,
//!   not by parameter), the non-reasoning models take no `reasoning` at all, and grok-3-mini
//!   takes only `low` / `high`. Requests translated from other dialects carry an effort whenever
//!   the client asked for thinking, so for the catalogued models the body is adjusted (see
//!   [`ReasoningSupport`]); other model names go out untouched.
//! - Token counting: xAI has no `/responses/input_tokens`; it is [`ExecError::Unsupported`].
//! - A rejected Bearer is HTTP 400 ("Incorrect API key provided"), not 401; it is passed on as
//!   401 so the router refreshes the token or tries another account.

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value};
use switchyard_auth::Credential;
use switchyard_dialects::Dialect;

use super::codex::fold_stream;
use super::{Headers, body_of, collect, end_to_end_headers, own_base, pass_through, post, send, uuid_v4};
use crate::executor::{ExecContext, ExecError, Executor, Operation, UpstreamAuth, UpstreamRequest, UpstreamResponse};
use crate::xai::{API_BASE, CLI_CHAT_BASE};

/// The Grok CLI release whose headers the chat proxy expects (spec §4.6).
const CLIENT_VERSION: &str = "0.2.120";
const USER_AGENT: &str = "xai-grok-workspace/0.2.120";
const CLIENT_IDENTIFIER: &str = "grok-shell";
const CONVERSATION_HEADER: &str = "x-grok-conv-id";

pub struct XaiExecutor;

#[async_trait::async_trait]
impl Executor for XaiExecutor {
    fn dialect(&self) -> Dialect {
        Dialect::OpenAiResponses
    }

    async fn execute(
        &self,
        ctx: &ExecContext,
        auth: &UpstreamAuth<'_>,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, ExecError> {
        if request.operation == Operation::CountTokens {
            return Err(ExecError::Unsupported("xAI's Responses API cannot count tokens".into()));
        }
        let mut headers = Headers::default();
        let configured = ctx.config.upstream_url("xai", "api").map(str::trim).filter(|b| !b.is_empty());
        let (base, cli_proxy) = match auth {
            UpstreamAuth::OAuth { access_token, credential } => {
                headers.secret("authorization", &format!("Bearer {access_token}"))?;
                if uses_public_api(credential) {
                    let stored = credential.str_field("base_url");
                    (configured.or(stored).unwrap_or(API_BASE).to_owned(), false)
                } else {
                    (configured.unwrap_or(CLI_CHAT_BASE).to_owned(), true)
                }
            }
            UpstreamAuth::ApiKey { key, base_url, .. } => {
                headers.secret("authorization", &format!("Bearer {key}"))?;
                (own_base(*base_url).or(configured).unwrap_or(API_BASE).to_owned(), false)
            }
            UpstreamAuth::Stored { .. } => return Err(super::stored_not_supported()),
        };
        let fold = cli_proxy && !request.stream;
        let body = prepare_body(request.body, &request.model, fold);
        headers.set("content-type", "application/json")?;
        headers.set("accept", if request.stream || fold { "text/event-stream" } else { "application/json" })?;
        if cli_proxy {
            grok_cli_headers(&mut headers, &request.client_headers)?;
        }
        if let UpstreamAuth::ApiKey { headers: extra, .. } = auth {
            headers.extra(extra)?;
        }
        let response = send(post(ctx, &base, "/responses").headers(headers.0).body(body)).await?;
        if fold && response.status().is_success() {
            return fold_stream(response).await;
        }
        if response.status() == reqwest::StatusCode::BAD_REQUEST {
            return rejected_credential_is_401(response).await;
        }
        Ok(pass_through(response))
    }
}

/// xAI answers a wrong or expired Bearer with **400** "Incorrect API key provided: …". Passed on
/// as 400 it would read as a bad request (no other account tried, no token refresh), so that
/// one answer becomes 401 with its body kept; every other 400 stays as it is.
async fn rejected_credential_is_401(response: reqwest::Response) -> Result<UpstreamResponse, ExecError> {
    let headers = end_to_end_headers(&response);
    let body = collect(body_of(response)).await?;
    let message = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    let status = if message.starts_with("Incorrect API key provided") { 401 } else { 400 };
    Ok(UpstreamResponse { status, headers, body: futures::stream::once(async { Ok(body) }).boxed() })
}

/// `using_api: true` (or `"true"`) in the auth file: the account's token works on the public API.
fn uses_public_api(credential: &Credential) -> bool {
    match credential.fields().get("using_api") {
        Some(Value::Bool(flag)) => *flag,
        Some(Value::String(text)) => text.trim().eq_ignore_ascii_case("true"),
        _ => false,
    }
}

fn grok_cli_headers(headers: &mut Headers, client: &HeaderMap) -> Result<(), ExecError> {
    headers.set("x-xai-token-auth", "xai-grok-cli")?;
    headers.set("x-grok-client-version", CLIENT_VERSION)?;
    headers.set("user-agent", USER_AGENT)?;
    headers.set("x-grok-client-identifier", CLIENT_IDENTIFIER)?;
    headers.set("x-authenticateresponse", "authenticate-response")?;
    let conversation = client
        .get(CONVERSATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map_or_else(uuid_v4, str::to_owned);
    headers.set(CONVERSATION_HEADER, &conversation)
}

/// How a catalogued model takes the `reasoning` object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReasoningSupport {
    /// Unknown to the catalogue: sent as the client wrote it.
    AsSent,
    /// Reasons by itself; `reasoning.effort` is refused.
    NoEffort,
    /// Does not reason; any `reasoning` is refused.
    None,
    /// Only `low` and `high` efforts.
    LowHigh,
}

fn reasoning_support(model: &str) -> ReasoningSupport {
    match model {
        "grok-3-mini" | "grok-3-mini-fast" => ReasoningSupport::LowHigh,
        "grok-4" | "grok-4-0709" | "grok-4-fast" | "grok-4-fast-reasoning" | "grok-code-fast-1" => {
            ReasoningSupport::NoEffort
        }
        "grok-3" | "grok-4-fast-non-reasoning" => ReasoningSupport::None,
        _ => ReasoningSupport::AsSent,
    }
}

/// The body as xAI takes it: `store: false` unless the client decided, reasoning fitted to the
/// model, and `stream: true` when the answer is to be folded. Untouched bytes when nothing
/// changes (or the body is no JSON object: upstream will say what is wrong with it).
fn prepare_body(body: Bytes, model: &str, force_stream: bool) -> Bytes {
    let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(&body) else {
        return body;
    };
    let mut changed = false;
    if !map.contains_key("store") && !map.contains_key("previous_response_id") {
        map.insert("store".into(), Value::Bool(false));
        changed = true;
    }
    changed |= fit_reasoning(&mut map, reasoning_support(model));
    if force_stream && map.get("stream") != Some(&Value::Bool(true)) {
        map.insert("stream".into(), Value::Bool(true));
        changed = true;
    }
    if !changed {
        return body;
    }
    serde_json::to_vec(&map).map(Bytes::from).unwrap_or(body)
}

/// Adjusts `reasoning` for `support`; true when the body changed.
fn fit_reasoning(map: &mut Map<String, Value>, support: ReasoningSupport) -> bool {
    match support {
        ReasoningSupport::AsSent => false,
        ReasoningSupport::None => map.remove("reasoning").is_some(),
        ReasoningSupport::NoEffort => {
            let Some(Value::Object(reasoning)) = map.get_mut("reasoning") else {
                return false;
            };
            let removed = reasoning.remove("effort").is_some();
            if reasoning.is_empty() {
                map.remove("reasoning");
            }
            removed
        }
        ReasoningSupport::LowHigh => {
            let Some(Value::Object(reasoning)) = map.get_mut("reasoning") else {
                return false;
            };
            let Some(effort) = reasoning.get("effort").and_then(Value::as_str).map(str::to_owned) else {
                return false;
            };
            let fitted = match effort.as_str() {
                "low" | "high" => return false,
                "none" => None,
                "minimal" => Some("low"),
                _ => Some("high"),
            };
            match fitted {
                Some(level) => {
                    reasoning.insert("effort".into(), level.into());
                }
                None => {
                    reasoning.remove("effort");
                    if reasoning.is_empty() {
                        map.remove("reasoning");
                    }
                }
            }
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn prepared(body: Value, model: &str, force_stream: bool) -> Value {
        serde_json::from_slice(&prepare_body(Bytes::from(body.to_string()), model, force_stream)).unwrap()
    }

    #[test]
    fn store_defaults_to_false_unless_the_client_chose_or_continues_a_stored_response() {
        assert_eq!(prepared(json!({"model": "m"}), "m", false), json!({"model": "m", "store": false}));
        assert_eq!(prepared(json!({"store": true}), "m", false), json!({"store": true}));
        let continued = json!({"previous_response_id": "resp_1"});
        assert_eq!(prepared(continued.clone(), "m", false), continued);
    }

    #[test]
    fn unchanged_bodies_keep_their_bytes() {
        let raw = Bytes::from_static(br#"{ "store" : false, "model":"grok-4" }"#);
        assert_eq!(prepare_body(raw.clone(), "grok-4", false), raw);
        let not_json = Bytes::from_static(b"[1]");
        assert_eq!(prepare_body(not_json.clone(), "grok-4", true), not_json);
    }

    #[test]
    fn reasoning_is_fitted_to_the_catalogued_models() {
        let body = |effort: &str| json!({"store": false, "reasoning": {"effort": effort, "summary": "auto"}});
        assert_eq!(prepared(body("high"), "grok-4", false)["reasoning"], json!({"summary": "auto"}));
        let only_effort = json!({"store": false, "reasoning": {"effort": "low"}});
        assert_eq!(prepared(only_effort, "grok-code-fast-1", false).get("reasoning"), None);
        assert_eq!(prepared(body("high"), "grok-3", false).get("reasoning"), None);
        assert_eq!(prepared(body("medium"), "grok-3-mini", false)["reasoning"]["effort"], "high");
        assert_eq!(prepared(body("minimal"), "grok-3-mini", false)["reasoning"]["effort"], "low");
        assert_eq!(prepared(body("low"), "grok-3-mini", false)["reasoning"]["effort"], "low");
        assert_eq!(prepared(body("none"), "grok-3-mini", false)["reasoning"], json!({"summary": "auto"}));
        assert_eq!(prepared(body("medium"), "grok-4.3", false)["reasoning"]["effort"], "medium");
    }

    #[test]
    fn folded_requests_stream() {
        assert_eq!(prepared(json!({"store": false, "stream": false}), "m", true)["stream"], true);
        assert_eq!(prepared(json!({"store": false}), "m", true)["stream"], true);
    }
}
