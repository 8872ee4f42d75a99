//! One client request, end to end: read the model, ask the router for an ordered plan, and try
//! each account until one answers. Same-dialect traffic is passed through as bytes; otherwise the
//! request goes through the neutral form and the answer (whole or streamed) comes back the same way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;
use switchyard_auth::login::RefreshError;
use switchyard_dialects::ir::{ChatRequest, ErrorInfo, Part, StreamEvent};
use switchyard_dialects::sse::SseParser;
use switchyard_dialects::{Dialect, TranslateError};
use switchyard_providers::executor::{
    ExecContext, ExecError, Executor, Operation, TokenSource, UpstreamAuth, UpstreamRequest, UpstreamResponse,
};
use switchyard_router::{AccountKind, Attempt, Outcome, RouteError, RouteSettings};

use crate::AppState;

/// A request body larger than this is refused (images inline make bodies big, not this big).
const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;
/// A whole (non-streamed) upstream answer larger than this is treated as a failure.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// An access token must stay valid at least this long to be used for a request.
const TOKEN_SKEW: Duration = Duration::from_secs(60);

/// What the client asked for, and in which dialect to answer.
pub struct ClientCall {
    pub dialect: Dialect,
    pub operation: Operation,
    pub headers: HeaderMap,
    /// From the URL (Gemini); otherwise read from the body.
    pub model: Option<String>,
    /// From the URL (Gemini `streamGenerateContent`); otherwise the body's `stream`.
    pub stream: Option<bool>,
}

impl ClientCall {
    pub fn new(dialect: Dialect, operation: Operation, headers: HeaderMap) -> Self {
        Self { dialect, operation, headers, model: None, stream: None }
    }

    /// An error answer in the client's dialect.
    pub fn error(&self, status: u16, kind: &str, message: &str) -> Response {
        self.error_info(&ErrorInfo { status, kind: kind.to_owned(), message: message.to_owned() })
    }

    fn error_info(&self, error: &ErrorInfo) -> Response {
        self.error_with(error, |_| {})
    }

    /// An error answer whose JSON `adjust` may extend (e.g. with a machine-readable code).
    fn error_with(&self, error: &ErrorInfo, adjust: impl FnOnce(&mut Value)) -> Response {
        let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::BAD_GATEWAY);
        let mut body = self.dialect.error_from_ir(error);
        adjust(&mut body);
        (status, axum::Json(body)).into_response()
    }
}

/// The bits of a client body needed before routing; the rest is not parsed for pass-through.
#[derive(serde::Deserialize)]
struct Peek {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
}

/// How one attempt reaches its upstream.
struct Target {
    executor: Arc<dyn Executor>,
    auth: AuthMaterial,
}

enum AuthMaterial {
    /// An auth file; `base_url` is set for configured OAuth providers, whose token is used like
    /// an API key against their `api-base`.
    OAuth {
        file: String,
        base_url: Option<String>,
    },
    Key {
        key: String,
        base_url: Option<String>,
        headers: Vec<(String, String)>,
    },
}

/// A failed attempt, in neutral terms, reported to the client if no other account succeeds.
type Failure = ErrorInfo;

pub async fn serve(state: &AppState, mut call: ClientCall, body: Body) -> Response {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REQUEST_BYTES).await else {
        return call.error(413, "invalid_request", &format!("request body exceeds {MAX_REQUEST_BYTES} bytes"));
    };
    let peek = match serde_json::from_slice::<Peek>(&bytes) {
        Ok(peek) => peek,
        // The dialect's own parser names the offending field precisely.
        Err(_) => {
            let message = match call.dialect.request_to_ir(&bytes, call.model.as_deref().unwrap_or("")) {
                Err(error) => error.to_string(),
                Ok(_) => "invalid request body".to_owned(),
            };
            return call.error(400, "invalid_request", &message);
        }
    };
    let Some(model) = call.model.clone().or(peek.model).filter(|m| !m.trim().is_empty()) else {
        return call.error(400, "invalid_request", "invalid request: model: is required");
    };
    call.model = Some(model.clone());
    let stream = call.stream.or(peek.stream).unwrap_or(false) && call.operation == Operation::Generate;
    call.stream = Some(stream);

    let config = state.config.get();
    let settings = RouteSettings::from_config(&config);
    let plan = match state.router.plan(&model, &settings, Instant::now()) {
        Ok(plan) => plan,
        Err(error) => return route_error(&call, &error),
    };
    let mut neutral: Option<ChatRequest> = None;
    let mut last_failure: Option<Failure> = None;

    for attempt in &plan.attempts {
        let Some(target) = resolve(&config, attempt) else { continue };
        // The client's own dialect when the upstream takes it too: no translation at all.
        let native = if target.executor.accepts(call.dialect) { call.dialect } else { target.executor.dialect() };
        if call.operation == Operation::CountTokens && native != call.dialect {
            // No cross-dialect token-count endpoint exists; answer with a local estimate.
            return match neutral_request(&call, &bytes, &mut neutral) {
                Ok(request) => count_estimate(&call, request),
                Err(error) => call.error(400, "invalid_request", &error.to_string()),
            };
        }
        let upstream_body = if native == call.dialect {
            pass_through_body(&bytes, call.dialect, &model, &attempt.upstream_model)
        } else {
            let request = match neutral_request(&call, &bytes, &mut neutral) {
                Ok(request) => request,
                Err(error) => return call.error(400, "invalid_request", &error.to_string()),
            };
            let mut request = request.clone();
            request.model = attempt.upstream_model.clone();
            request.stream = stream;
            match native.request_from_ir(&request) {
                Ok(value) => Bytes::from(serde_json::to_vec(&value).unwrap_or_default()),
                Err(error) => return call.error(400, "invalid_request", &error.to_string()),
            }
        };

        let result = match attempt_http(state, &config, attempt).await {
            Ok(http) => {
                let ctx = ExecContext { http, config: config.clone() };
                run_attempt(state, &ctx, &call, attempt, &target, native, upstream_body).await
            }
            Err(failure) => failure,
        };
        match result {
            AttemptResult::Answered(response) => {
                state.router.report(
                    &attempt.account_id,
                    &attempt.upstream_model,
                    Outcome::Success,
                    &settings,
                    Instant::now(),
                );
                return respond(&call, native, response).await;
            }
            AttemptResult::ClientError(response) => return relay_error(&call, native, response).await,
            AttemptResult::Unsupported if call.operation == Operation::CountTokens => {
                return match neutral_request(&call, &bytes, &mut neutral) {
                    Ok(request) => count_estimate(&call, request),
                    Err(error) => call.error(400, "invalid_request", &error.to_string()),
                };
            }
            AttemptResult::Unsupported => continue,
            AttemptResult::Failed { outcome, failure } => {
                tracing::debug!(account = %attempt.account_id, model = %attempt.upstream_model, "attempt failed; trying the next account");
                state.router.report(&attempt.account_id, &attempt.upstream_model, outcome, &settings, Instant::now());
                if failure.is_some() {
                    last_failure = failure;
                }
            }
        }
    }
    match last_failure {
        Some(failure) => call.error_info(&failure),
        None => call.error(503, "overloaded", &format!("no account could serve model {model}")),
    }
}

/// The client's request in neutral form, parsed once and only when some attempt needs it.
fn neutral_request<'a>(
    call: &ClientCall,
    bytes: &[u8],
    cache: &'a mut Option<ChatRequest>,
) -> Result<&'a ChatRequest, TranslateError> {
    if cache.is_none() {
        *cache = Some(call.dialect.request_to_ir(bytes, call.model.as_deref().unwrap_or(""))?);
    }
    Ok(cache.as_ref().expect("filled above"))
}

/// The client's bytes, with only `model` rewritten when an alias or prefix resolved to another
/// upstream name (Gemini carries the model in the URL, so its body never changes).
fn pass_through_body(bytes: &Bytes, dialect: Dialect, requested: &str, upstream: &str) -> Bytes {
    if requested == upstream || dialect == Dialect::Gemini {
        return bytes.clone();
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(mut map)) => {
            map.insert("model".into(), Value::String(upstream.to_owned()));
            Bytes::from(serde_json::to_vec(&map).unwrap_or_default())
        }
        _ => bytes.clone(),
    }
}

fn route_error(call: &ClientCall, error: &RouteError) -> Response {
    match error {
        RouteError::UnknownModel { model } => {
            call.error(400, "invalid_request", &format!("unknown provider for model {model}"))
        }
        RouteError::AllCooling { retry_after, .. } => {
            let info = ErrorInfo { status: 429, kind: "rate_limit".into(), message: error.to_string() };
            // OpenAI-style error objects carry a machine-readable code; CPA's is `model_cooldown`.
            let mut response = call.error_with(&info, |body| {
                if matches!(call.dialect, Dialect::OpenAiChat | Dialect::OpenAiResponses)
                    && let Some(object) = body.get_mut("error").and_then(Value::as_object_mut)
                {
                    object.insert("code".into(), Value::String("model_cooldown".into()));
                }
            });
            let seconds = retry_after.as_secs().max(1);
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
        RouteError::NoneAvailable { .. } => call.error(503, "overloaded", &error.to_string()),
    }
}

fn resolve(config: &switchyard_config::Config, attempt: &Attempt) -> Option<Target> {
    use switchyard_providers::exec::api_key_executor;
    match &attempt.kind {
        AccountKind::OAuth { file } => {
            if let Some(executor) = switchyard_providers::by_id(&attempt.provider).and_then(|p| p.executor()) {
                return Some(Target { executor, auth: AuthMaterial::OAuth { file: file.clone(), base_url: None } });
            }
            // A configured OAuth provider: its token is a bearer key for `api-base`.
            let spec = config.oauth_providers.iter().find(|p| p.name == attempt.provider)?;
            let section = match spec.dialect.as_str() {
                "openai" => "openai-compatibility",
                "claude" => "claude-api-key",
                "openai-responses" => "codex-api-key",
                _ => return None,
            };
            let base_url = Some(spec.api_base.clone()).filter(|b| !b.is_empty());
            Some(Target {
                executor: api_key_executor(section)?,
                auth: AuthMaterial::OAuth { file: file.clone(), base_url },
            })
        }
        kind => {
            let key = kind.config_key(config)?;
            Some(Target {
                executor: api_key_executor(key.section)?,
                auth: AuthMaterial::Key {
                    key: key.key.to_owned(),
                    base_url: Some(key.base_url.to_owned()).filter(|b| !b.is_empty()),
                    headers: key.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                },
            })
        }
    }
}

/// The HTTP client for one attempt: through the account's effective proxy (auth file
/// `proxy_url` or key entry `proxy-url`, else the global `proxy-url`; `direct`/`none` bypass it).
/// An unusable proxy fails this attempt like an unreachable upstream, so the next account runs.
async fn attempt_http(
    state: &AppState,
    config: &switchyard_config::Config,
    attempt: &Attempt,
) -> Result<reqwest::Client, AttemptResult> {
    let stored;
    let own_proxy = match &attempt.kind {
        AccountKind::OAuth { file } => {
            stored = state.store.get(file);
            stored.as_ref().and_then(|s| s.credential()).and_then(|c| c.proxy_url())
        }
        kind => kind.config_key(config).map(|key| key.proxy_url),
    };
    state.http_clients.for_account(config, own_proxy).await.map_err(|error| {
        let failure = ErrorInfo { status: 502, kind: "server_error".into(), message: error.to_string() };
        failed(0, None, error.to_string(), Some(failure))
    })
}

enum AttemptResult {
    /// A 2xx answer.
    Answered(UpstreamResponse),
    /// The upstream rejected the request itself (400, 413, 422, ...): another account would too.
    ClientError(UpstreamResponse),
    /// This account failed; the next one may succeed.
    Failed { outcome: Outcome, failure: Option<Failure> },
    /// The upstream has no such operation (token counting on some backends).
    Unsupported,
}

fn failed(status: u16, retry_after: Option<Duration>, message: String, failure: Option<Failure>) -> AttemptResult {
    AttemptResult::Failed {
        outcome: Outcome::Failure { status, retry_after, credential_wide: false, message },
        failure,
    }
}

/// Statuses after which another account is tried (CPA §4.5).
fn worth_another_account(status: u16) -> bool {
    matches!(status, 401 | 402 | 403 | 404 | 408 | 429) || status >= 500
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim();
    value.parse::<u64>().ok().map(Duration::from_secs)
}

async fn run_attempt(
    state: &AppState,
    ctx: &ExecContext,
    call: &ClientCall,
    attempt: &Attempt,
    target: &Target,
    native: Dialect,
    body: Bytes,
) -> AttemptResult {
    let mut refreshed = false;
    let dialect = (native != target.executor.dialect()).then_some(native);
    loop {
        let request = UpstreamRequest {
            operation: call.operation,
            dialect,
            model: attempt.upstream_model.clone(),
            stream: call.stream.unwrap_or(false),
            body: body.clone(),
            client_headers: call.headers.clone(),
        };
        let result = match &target.auth {
            AuthMaterial::OAuth { file, base_url: None }
                if target.executor.token_source() == TokenSource::Credential =>
            {
                let Some(stored) = state.store.get(file) else {
                    return failed(0, None, "auth file disappeared".into(), None);
                };
                let Some(credential) = stored.credential() else {
                    return failed(0, None, "auth file is corrupt".into(), None);
                };
                target.executor.execute(ctx, &UpstreamAuth::Stored { credential }, request).await
            }
            AuthMaterial::OAuth { file, base_url } => {
                let token = match state.refresher.fresh_access_token(file, TOKEN_SKEW).await {
                    Ok(token) => token,
                    Err(RefreshError::Revoked(reason)) => return failed(401, None, reason, None),
                    Err(error) => return failed(0, None, error.to_string(), None),
                };
                match base_url {
                    Some(base_url) => {
                        let auth = UpstreamAuth::ApiKey { key: &token, base_url: Some(base_url), headers: &[] };
                        target.executor.execute(ctx, &auth, request).await
                    }
                    None => {
                        let Some(stored) = state.store.get(file) else {
                            return failed(0, None, "auth file disappeared".into(), None);
                        };
                        let Some(credential) = stored.credential() else {
                            return failed(0, None, "auth file is corrupt".into(), None);
                        };
                        let auth = UpstreamAuth::OAuth { access_token: &token, credential };
                        target.executor.execute(ctx, &auth, request).await
                    }
                }
            }
            AuthMaterial::Key { key, base_url, headers } => {
                let auth = UpstreamAuth::ApiKey { key, base_url: base_url.as_deref(), headers };
                target.executor.execute(ctx, &auth, request).await
            }
        };
        let response = match result {
            Ok(response) => response,
            Err(error @ (ExecError::Connect(_) | ExecError::Timeout | ExecError::Interrupted(_))) => {
                // No upstream answer to relay: say what broke (502, or 504 for a timeout).
                let (status, kind) = if error == ExecError::Timeout { (504, "timeout") } else { (502, "server_error") };
                let failure = ErrorInfo { status, kind: kind.into(), message: error.to_string() };
                return failed(0, None, error.to_string(), Some(failure));
            }
            Err(error @ ExecError::Credential(_)) => return failed(403, None, error.to_string(), None),
            Err(ExecError::Unsupported(_)) => return AttemptResult::Unsupported,
        };
        let status = response.status;
        if (200..300).contains(&status) {
            return AttemptResult::Answered(response);
        }
        // One in-request refresh for a rejected OAuth token before giving up on the account.
        if status == 401
            && !refreshed
            && let AuthMaterial::OAuth { file, .. } = &target.auth
            && state.refresher.force_refresh(file).await.is_ok()
        {
            refreshed = true;
            continue;
        }
        if !worth_another_account(status) {
            return AttemptResult::ClientError(response);
        }
        let wait = retry_after(&response.headers);
        let body = collect(response.body, MAX_RESPONSE_BYTES).await.unwrap_or_default();
        let message = switchyard_redact::text(&String::from_utf8_lossy(&body[..body.len().min(512)]));
        let failure = native.error_to_ir(status, &body);
        return failed(status, wait, message, Some(failure));
    }
}

async fn collect(mut body: BoxStream<'static, Result<Bytes, ExecError>>, limit: usize) -> Result<Bytes, ExecError> {
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if out.len() + chunk.len() > limit {
            return Err(ExecError::Interrupted(format!("answer exceeds {limit} bytes")));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// An upstream's refusal of the request itself, in the client's dialect.
async fn relay_error(call: &ClientCall, native: Dialect, response: UpstreamResponse) -> Response {
    let body = collect(response.body, MAX_RESPONSE_BYTES).await.unwrap_or_default();
    call.error_info(&native.error_to_ir(response.status, &body))
}

fn upstream_broke(message: &str) -> ErrorInfo {
    // `ExecError::Interrupted` already says it; do not say it twice.
    let message = message.strip_prefix("upstream stream broke off: ").unwrap_or(message);
    ErrorInfo { status: 502, kind: "server_error".into(), message: format!("upstream stream broke off: {message}") }
}

/// A 2xx upstream answer, as the client expects it.
async fn respond(call: &ClientCall, native: Dialect, response: UpstreamResponse) -> Response {
    if !call.stream.unwrap_or(false) {
        let body = match collect(response.body, MAX_RESPONSE_BYTES).await {
            Ok(body) => body,
            Err(error) => return call.error_info(&upstream_broke(&error.to_string())),
        };
        if native == call.dialect {
            return ([(header::CONTENT_TYPE, "application/json")], body).into_response();
        }
        return match native.response_to_ir(&body) {
            Ok(neutral) => axum::Json(call.dialect.response_from_ir(&neutral)).into_response(),
            Err(error) => call.error(502, "server_error", &error.to_string()),
        };
    }
    let client = call.dialect;
    let frames: BoxStream<'static, Result<Bytes, std::io::Error>> = if native == client {
        // Pass-through: bytes go out as they arrive; a break becomes the dialect's error frame.
        response
            .body
            .map(move |chunk| match chunk {
                Ok(bytes) => Ok(bytes),
                Err(error) => Ok(Bytes::from(client.stream_error_frame(&upstream_broke(&error.to_string())))),
            })
            .boxed()
    } else {
        translate_stream(native, client, response.body)
    };
    let mut out = Response::new(Body::from_stream(frames));
    let headers = out.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    out
}

/// Upstream SSE in `native` → neutral events → SSE in `client`, one chunk at a time.
fn translate_stream(
    native: Dialect,
    client: Dialect,
    body: BoxStream<'static, Result<Bytes, ExecError>>,
) -> BoxStream<'static, Result<Bytes, std::io::Error>> {
    struct State {
        body: BoxStream<'static, Result<Bytes, ExecError>>,
        parser: SseParser,
        decoder: Box<dyn switchyard_dialects::ir::StreamDecoder>,
        encoder: Box<dyn switchyard_dialects::ir::StreamEncoder>,
        done: bool,
    }
    let state =
        State { body, parser: SseParser::new(), decoder: native.decoder(), encoder: client.encoder(), done: false };
    futures::stream::unfold(state, move |mut state| async move {
        loop {
            if state.done {
                return None;
            }
            let events = match state.body.next().await {
                Some(Ok(chunk)) => {
                    let mut events = Vec::new();
                    for sse in state.parser.feed(&chunk) {
                        match state.decoder.decode(sse.event.as_deref(), &sse.data) {
                            Ok(decoded) => events.extend(decoded),
                            Err(error) => {
                                events.push(StreamEvent::Error(upstream_broke(&error.to_string())));
                                state.done = true;
                                break;
                            }
                        }
                    }
                    events
                }
                Some(Err(error)) => {
                    state.done = true;
                    vec![StreamEvent::Error(upstream_broke(&error.to_string()))]
                }
                None => {
                    state.done = true;
                    let mut events = Vec::new();
                    if let Some(sse) = state.parser.finish()
                        && let Ok(decoded) = state.decoder.decode(sse.event.as_deref(), &sse.data)
                    {
                        events.extend(decoded);
                    }
                    events.extend(state.decoder.finish());
                    events
                }
            };
            let mut text = String::new();
            for event in &events {
                match event {
                    StreamEvent::Error(error) => {
                        text.push_str(&client.stream_error_frame(error));
                        state.done = true;
                        break;
                    }
                    other => text.extend(state.encoder.encode(other)),
                }
            }
            if !text.is_empty() {
                return Some((Ok(Bytes::from(text)), state));
            }
        }
    })
    .boxed()
}

/// A rough count (4 characters per token) for token-count calls that cross dialects.
fn count_estimate(call: &ClientCall, request: &ChatRequest) -> Response {
    let mut chars = request.system.iter().map(String::len).sum::<usize>();
    for message in &request.messages {
        for part in &message.content {
            chars += match part {
                Part::Text(text) => text.len(),
                Part::Thinking { text, .. } => text.len(),
                Part::ToolCall { name, arguments, .. } => name.len() + arguments.len(),
                Part::ToolResult { content, .. } => {
                    content.iter().map(|p| if let Part::Text(t) = p { t.len() } else { 0 }).sum()
                }
                Part::Image(_) => 0,
            };
        }
    }
    for tool in &request.tools {
        chars += tool.name.len() + tool.description.as_deref().map_or(0, str::len) + tool.parameters.to_string().len();
    }
    let tokens = chars.div_ceil(4);
    let body = match call.dialect {
        Dialect::Gemini => serde_json::json!({ "totalTokens": tokens }),
        _ => serde_json::json!({ "input_tokens": tokens }),
    };
    axum::Json(body).into_response()
}
