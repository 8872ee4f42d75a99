//! The executors: how a request in an upstream's native dialect reaches that upstream, and how
//! its answer comes back (streams as bytes as they arrive; Code Assist envelopes removed).
//!
//! Every URL has a built-in default that `upstream-urls.<provider>.<endpoint>` overrides:
//!
//! | executor | endpoint key | default |
//! |---|---|---|
//! | Claude (OAuth, `claude-api-key`) | `claude.api` | `https://api.anthropic.com` |
//! | Codex OAuth | `codex.api` | `https://chatgpt.com/backend-api/codex` |
//! | `codex-api-key` | `openai.api` | `https://api.openai.com/v1` |
//! | Gemini CLI | `gemini-cli.code-assist` | `https://cloudcode-pa.googleapis.com` |
//! | Antigravity | `antigravity.daily`, `.prod` (in order); `.api` replaces both | daily sandbox, then prod |
//! | `gemini-api-key` | `gemini.api` | `https://generativelanguage.googleapis.com` |
//! | Vertex service account | `vertex.api`, `vertex.token` | `https://{location}-aiplatform.googleapis.com`, `https://oauth2.googleapis.com/token` |
//! | `vertex-api-key` | `vertex.api` | `https://{location}-aiplatform.googleapis.com` with location `global` |
//! | Kimi (OpenAI Chat and Anthropic Messages) | `kimi.api` | `https://api.kimi.com/coding` |
//! | xAI OAuth / `using_api` and `xai-api-key` | `xai.api` | `https://cli-chat-proxy.grok.com/v1` / `https://api.x.ai/v1` |
//! | Qwen | `qwen.api` | `https://<resource_url>/v1`, else `https://portal.qwen.ai/v1` |
//! | iFlow (the file's `api_key`) | `iflow.api` | `https://apis.iflow.cn/v1` |
//! | GitHub Copilot | `github-copilot.copilot-token`, `.api` | `https://api.github.com/copilot_internal/v2/token`; the token's `endpoints.api`, else `https://api.githubcopilot.com` |
//! | Kiro | `kiro.api`, `kiro.q-api` (in order; `preferred_endpoint` reorders) | `https://codewhisperer.us-east-1.amazonaws.com`, `https://q.us-east-1.amazonaws.com` |
//!
//! A configured URL always wins over a base the provider hands back at runtime (Qwen's
//! `resource_url`, Copilot's `endpoints.api`). The login endpoints are listed by each provider's
//! `Provider::endpoints` (`switchyard providers` prints them all).
//!
//! `vertex.api` serves both Vertex executors. `{location}` in it is filled per request: with the
//! account's `location` for a service account, with `global` for an API key (express mode has no
//! region); for `global`, `{location}-` is removed first, so the default becomes
//! `https://aiplatform.googleapis.com`. A value without `{location}` (a proxy, a mock) is used as
//! is for every location. Service accounts append `/v1/projects/<p>/locations/<loc>/publishers/
//! google/models/…`, API keys `/v1/publishers/google/models/…`. `vertex.token` wins over the key
//! file's own `token_uri`, which is used only when it is `https://`.
//!
//! An API key's own `base-url` wins over both; `openai-compatibility` entries must have one.
//! Upstream HTTP errors are answers, not [`ExecError`]s: the router reads their status.

pub(crate) mod antigravity;
mod claude;
mod codex;
pub mod copilot;
mod gemini_api;
mod gemini_cli;
pub mod iflow;
pub mod kimi;
pub mod kiro;
mod openai_compat;
pub mod qwen;
pub mod vertex;
pub mod xai;

use std::error::Error as _;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, BoxStream, StreamExt};
use reqwest::header::{CONNECTION, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue, TRANSFER_ENCODING};
use serde_json::Value;
use switchyard_dialects::sse::{self, SseEvent, SseParser};

use crate::executor::{ExecContext, ExecError, Executor, UpstreamResponse};

pub use antigravity::AntigravityExecutor;
pub use claude::ClaudeExecutor;
pub use codex::CodexExecutor;
pub use gemini_api::GeminiApiExecutor;
pub use gemini_cli::GeminiCliExecutor;
pub use openai_compat::OpenAiCompatExecutor;
pub use vertex::VertexExecutor;

/// The executor serving a config API-key section (`claude-api-key`, `codex-api-key`,
/// `gemini-api-key`, `vertex-api-key`, `openai-compatibility`); `None` for sections without one yet.
pub fn api_key_executor(section: &str) -> Option<Arc<dyn Executor>> {
    match section {
        "claude-api-key" => Some(Arc::new(ClaudeExecutor)),
        "codex-api-key" => Some(Arc::new(CodexExecutor)),
        "gemini-api-key" => Some(Arc::new(GeminiApiExecutor::GEMINI)),
        "vertex-api-key" => Some(Arc::new(GeminiApiExecutor::VERTEX)),
        "openai-compatibility" => Some(Arc::new(OpenAiCompatExecutor)),
        "xai-api-key" => Some(Arc::new(xai::XaiExecutor)),
        _ => None,
    }
}

/// The built-in base URL a config API-key section's executor calls when the key has no
/// `base-url` and config no `upstream-urls` override (the table above).
pub fn api_key_default_base(section: &str) -> Option<&'static str> {
    match section {
        "claude-api-key" => Some(claude::DEFAULT_BASE),
        "codex-api-key" => Some(codex::OPENAI_BASE),
        "gemini-api-key" => Some(gemini_api::GeminiApiExecutor::GEMINI.default_base),
        "vertex-api-key" => Some(crate::vertex::API_BASE_TEMPLATE),
        "xai-api-key" => Some(crate::xai::API_BASE),
        _ => None,
    }
}

/// For executors whose upstream takes an access token or an API key, never a bare auth file.
fn stored_not_supported() -> ExecError {
    ExecError::Credential("this upstream needs an access token or an API key".into())
}

/// A response body: bytes as they arrive, ending in `Err(Interrupted)` if the stream broke.
type Body = BoxStream<'static, Result<Bytes, ExecError>>;

/// Sends the request; failures before the status line are `Connect` or `Timeout`.
async fn send(request: reqwest::RequestBuilder) -> Result<reqwest::Response, ExecError> {
    request.send().await.map_err(|e| if e.is_timeout() { ExecError::Timeout } else { ExecError::Connect(describe(&e)) })
}

/// The error with its causes (reqwest's own text is terse), with anything secret-looking masked.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    switchyard_redact::text(&text)
}

/// The response as it is, body streamed through.
fn pass_through(response: reqwest::Response) -> UpstreamResponse {
    let status = response.status().as_u16();
    let headers = end_to_end_headers(&response);
    UpstreamResponse { status, headers, body: body_of(response) }
}

/// The response with a rewritten body; its length header no longer holds.
fn rewritten(response: reqwest::Response, rewrite: impl FnOnce(Body) -> Body) -> UpstreamResponse {
    let status = response.status().as_u16();
    let mut headers = end_to_end_headers(&response);
    headers.remove(CONTENT_LENGTH);
    UpstreamResponse { status, headers, body: rewrite(body_of(response)) }
}

/// The upstream's headers without the hop-by-hop ones, which describe only our connection to it.
fn end_to_end_headers(response: &reqwest::Response) -> HeaderMap {
    let mut headers = response.headers().clone();
    for name in [CONNECTION, TRANSFER_ENCODING, HeaderName::from_static("keep-alive")] {
        headers.remove(name);
    }
    headers
}

/// The body as it arrives. A read error (connection cut, timeout) becomes the last item, so a
/// broken stream never looks like a finished one.
fn body_of(response: reqwest::Response) -> Body {
    response
        .bytes_stream()
        .map(|item| item.map_err(|e| ExecError::Interrupted(describe(&e))))
        .scan(false, |failed, item| {
            let next = (!*failed).then_some(item);
            *failed = next.as_ref().is_some_and(Result::is_err);
            futures::future::ready(next)
        })
        .boxed()
}

/// The whole body (for non-stream answers that must be rewritten as one JSON value).
async fn collect(mut body: Body) -> Result<Bytes, ExecError> {
    let mut all = Vec::new();
    while let Some(chunk) = body.next().await {
        all.extend_from_slice(&chunk?);
    }
    Ok(all.into())
}

/// A non-stream JSON body passed through `f` once complete; non-JSON bodies are kept as they are.
fn map_json_body(body: Body, f: fn(Value) -> Value) -> Body {
    stream::once(async move {
        let bytes = collect(body).await?;
        Ok(match serde_json::from_slice::<Value>(&bytes) {
            Ok(value) => Bytes::from(f(value).to_string()),
            Err(_) => bytes,
        })
    })
    .boxed()
}

/// An SSE body with each event's JSON data passed through `f`, re-framed event by event as the
/// events complete (nothing waits for the end). Non-JSON data (`[DONE]`) is kept verbatim.
fn map_sse_json(body: Body, f: fn(Value) -> Value) -> Body {
    struct State {
        body: Body,
        parser: SseParser,
        done: bool,
    }
    let reframe = move |events: Vec<SseEvent>| -> String {
        events
            .iter()
            .map(|event| {
                let data = match serde_json::from_str::<Value>(&event.data) {
                    Ok(value) => f(value).to_string(),
                    Err(_) => event.data.clone(),
                };
                sse::frame(event.event.as_deref(), &data)
            })
            .collect()
    };
    let state = State { body, parser: SseParser::new(), done: false };
    stream::unfold(state, move |mut state| async move {
        while !state.done {
            match state.body.next().await {
                Some(Ok(chunk)) => {
                    let out = reframe(state.parser.feed(&chunk));
                    if !out.is_empty() {
                        return Some((Ok(Bytes::from(out)), state));
                    }
                }
                Some(Err(error)) => {
                    state.done = true;
                    return Some((Err(error), state));
                }
                None => {
                    state.done = true;
                    let out = reframe(state.parser.finish().into_iter().collect());
                    if !out.is_empty() {
                        return Some((Ok(Bytes::from(out)), state));
                    }
                }
            }
        }
        None
    })
    .boxed()
}

/// Builds outgoing headers; values that are not valid header text are reported, never echoed.
#[derive(Default)]
struct Headers(HeaderMap);

impl Headers {
    fn set(&mut self, name: &str, value: &str) -> Result<(), ExecError> {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ExecError::Credential(format!("invalid header name {name:?}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| ExecError::Credential(format!("value of header {name} is not valid header text")))?;
        self.0.insert(name, value);
        Ok(())
    }

    /// A credential header, flagged sensitive so no debug output shows it.
    fn secret(&mut self, name: &'static str, value: &str) -> Result<(), ExecError> {
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| ExecError::Credential(format!("the credential for {name} is not valid header text")))?;
        value.set_sensitive(true);
        self.0.insert(HeaderName::from_static(name), value);
        Ok(())
    }

    /// Copies these client headers, when the client sent them.
    fn forward(&mut self, client: &HeaderMap, names: &[&str]) {
        for name in names {
            if let Some(value) = client.get(*name) {
                self.0.insert(
                    HeaderName::from_bytes(name.as_bytes()).expect("static header names are valid"),
                    value.clone(),
                );
            }
        }
    }

    /// The config entry's own `headers`, which win over ours.
    fn extra(&mut self, extra: &[(String, String)]) -> Result<(), ExecError> {
        extra.iter().try_for_each(|(name, value)| self.set(name, value))
    }
}

/// `base` + `path` without a doubled slash.
fn join(base: &str, path: &str) -> String {
    format!("{}{path}", base.trim().trim_end_matches('/'))
}

/// A POST to `base` + `path`, the URL parsed once per distinct URL: parsing (with IDNA host
/// checks) was a few percent of a pass-through request's CPU, and an executor's URLs are a few
/// fixed strings per config. A URL that does not parse goes to reqwest as text, which reports
/// it as before.
fn post(ctx: &ExecContext, base: &str, path: &str) -> reqwest::RequestBuilder {
    let joined = join(base, path);
    match parsed_url(&joined) {
        Some(url) => ctx.http.post(url),
        None => ctx.http.post(joined),
    }
}

static PARSED_URLS: std::sync::LazyLock<std::sync::Mutex<std::collections::HashMap<String, reqwest::Url>>> =
    std::sync::LazyLock::new(Default::default);

/// Distinct URLs kept (model names in Gemini paths make more); past it the cache starts over.
const PARSED_URLS_KEPT: usize = 1024;

fn parsed_url(joined: &str) -> Option<reqwest::Url> {
    let mut cache = PARSED_URLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(url) = cache.get(joined) {
        return Some(url.clone());
    }
    let url = reqwest::Url::parse(joined).ok()?;
    if cache.len() >= PARSED_URLS_KEPT {
        cache.clear();
    }
    cache.insert(joined.to_owned(), url.clone());
    Some(url)
}

/// An API key's own `base-url`, when it has a non-blank one.
fn own_base(base_url: Option<&str>) -> Option<&str> {
    base_url.map(str::trim).filter(|b| !b.is_empty())
}

/// A value of a config section Switchyard does not model itself (e.g. `claude-header-defaults`).
fn config_value(ctx: &ExecContext, section: &str, key: &str) -> Option<String> {
    let value = ctx.config.other.get(section)?.get(key)?;
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A random RFC 4122 version-4 UUID.
fn uuid_v4() -> String {
    let mut hex = switchyard_auth::login::new_state().into_bytes();
    hex[12] = b'4';
    hex[16] = b"89ab"[usize::from(hex[16]) % 4];
    let hex = String::from_utf8(hex).expect("hex is ASCII");
    format!("{}-{}-{}-{}-{}", &hex[..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..])
}

/// A random non-negative 63-bit integer.
fn random_i63() -> i64 {
    let hex = switchyard_auth::login::new_state();
    (u64::from_str_radix(&hex[..16], 16).expect("hex") >> 1) as i64
}
