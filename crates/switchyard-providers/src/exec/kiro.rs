//! Kiro: Anthropic Messages in, AWS JSON to CodeWhisperer / Amazon Q, an AWS event stream back,
//! rebuilt as Anthropic SSE (stream) or one Anthropic message (non-stream). Spec §2.6.
//!
//! - Endpoints, in order: `api` + `/generateAssistantResponse` (origin `AI_EDITOR`), then
//!   `q-api` + `/` (origin `CLI`); the file's `preferred_endpoint` (`codewhisperer`/`ide` or
//!   `amazonq`/`q`/`cli`, else config `kiro-preferred-endpoint`) moves one to the front.
//! - Statuses: 429 → the next endpoint (separate quota pools); 5xx → retried on the same endpoint
//!   after 1 s and 2 s; 402 → its message returned; 403 naming `SUSPENDED` → "account suspended";
//!   403 about the token (token / expired / invalid / unauthorized) → answered as 401, so the
//!   pipeline refreshes and retries once; other 403s and 4xx → returned. Error bodies are
//!   rewritten into Anthropic's error shape (the upstream message kept, scrubbed).
//! - An `exception` frame before any content is answered like the HTTP error it stands for
//!   (a throttled first frame also moves on to the next endpoint); later ones end the stream
//!   with an Anthropic `error` event. A frame failing its CRC, a malformed frame or a stream cut
//!   mid-frame ends the body with [`ExecError::Interrupted`] saying so.
//! - Token counting: not offered by Kiro ([`ExecError::Unsupported`]; the pipeline estimates).

mod frames;
mod request;
mod response;

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::{self, BoxStream};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use serde_json::Value;
use switchyard_dialects::Dialect;
use switchyard_dialects::ir::{ErrorInfo, StreamEncoder, StreamEvent};

pub use frames::{FrameError, FrameReader, KiroEvent, MAX_FRAME_BYTES, event_of};
pub use request::{
    AGENTIC_SYSTEM_TEXT, BuildOptions, Built, DEFAULT_THINKING_BUDGET, KiroRequest, MAX_TOOL_DESCRIPTION_BYTES,
    TRUNCATION_MARK, build, is_agentic, is_chat_only, model_id, thinking_budget, truncate_description,
};
pub use response::{Fold, ResponseBuilder, error_info};

use super::{Body, Headers, body_of, join, send, uuid_v4};
use crate::executor::{ExecContext, ExecError, Executor, Operation, UpstreamAuth, UpstreamRequest, UpstreamResponse};
use crate::kiro::{API_URL, ID, KiroAccount, Q_API_URL};

pub(crate) const USER_AGENT: &str = "aws-sdk-rust/1.3.9 os/macos lang/rust/1.87.0";
pub(crate) const AMZ_USER_AGENT: &str =
    "aws-sdk-rust/1.3.9 ua/2.1 api/ssooidc/1.88.0 os/macos lang/rust/1.87.0 m/E app/AmazonQ-For-CLI";
/// Waits before the retries of a 5xx on the same endpoint.
const SERVER_ERROR_BACKOFF: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// One of the two chat APIs Kiro accounts can use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KiroApi {
    CodeWhisperer,
    AmazonQ,
}

impl KiroApi {
    fn url(self, ctx: &ExecContext, region: &str) -> String {
        let (endpoint, default, path) = match self {
            KiroApi::CodeWhisperer => ("api", API_URL, "/generateAssistantResponse"),
            KiroApi::AmazonQ => ("q-api", Q_API_URL, "/"),
        };
        join(&ctx.endpoint(ID, endpoint, default).replace("{region}", region), path)
    }

    pub fn origin(self) -> &'static str {
        match self {
            KiroApi::CodeWhisperer => "AI_EDITOR",
            KiroApi::AmazonQ => "CLI",
        }
    }

    pub fn target(self) -> &'static str {
        match self {
            KiroApi::CodeWhisperer => "AmazonCodeWhispererStreamingService.GenerateAssistantResponse",
            KiroApi::AmazonQ => "AmazonQDeveloperStreamingService.SendMessage",
        }
    }

    /// The order to try, with `preferred` (the file's, else the config's) first.
    pub fn order(preferred: Option<&str>) -> [KiroApi; 2] {
        match preferred.map(|p| p.trim().to_ascii_lowercase()).as_deref() {
            Some("amazonq" | "q" | "cli") => [KiroApi::AmazonQ, KiroApi::CodeWhisperer],
            _ => [KiroApi::CodeWhisperer, KiroApi::AmazonQ],
        }
    }
}

pub struct KiroExecutor;

/// What one request needs for every endpoint it tries.
struct Call<'a> {
    ctx: &'a ExecContext,
    access_token: &'a str,
    credential: &'a switchyard_auth::Credential,
    client_headers: &'a HeaderMap,
    model: String,
    stream: bool,
    thinking: bool,
    input_chars: usize,
}

#[async_trait::async_trait]
impl Executor for KiroExecutor {
    fn dialect(&self) -> Dialect {
        Dialect::AnthropicMessages
    }

    async fn execute(
        &self,
        ctx: &ExecContext,
        auth: &UpstreamAuth<'_>,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, ExecError> {
        if request.operation == Operation::CountTokens {
            return Err(ExecError::Unsupported("Kiro has no token-count endpoint".into()));
        }
        let UpstreamAuth::OAuth { access_token, credential } = auth else {
            return Err(super::stored_not_supported());
        };
        let neutral = match Dialect::AnthropicMessages.request_to_ir(&request.body, &request.model) {
            Ok(neutral) => neutral,
            Err(error) => return Ok(error_response(&invalid_request(error.to_string()), None)),
        };
        let account = KiroAccount::new(credential);
        // Builder ID and IdC tokens are tied to no profile; sending one fails the request.
        let profile_arn = if account.uses_oidc() { None } else { account.profile_arn() };
        let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S %Z").to_string();
        let conversation_id = uuid_v4();
        let options = BuildOptions {
            model: &request.model,
            origin: "",
            profile_arn,
            now: &now,
            conversation_id: &conversation_id,
        };
        let Built { request: mut kiro, input_chars } = match build(&neutral, &options) {
            Ok(built) => built,
            Err(error) => return Ok(error_response(&invalid_request(error.to_string()), None)),
        };
        let call = Call {
            ctx,
            access_token,
            credential,
            client_headers: &request.client_headers,
            model: request.model.clone(),
            stream: request.stream,
            thinking: thinking_budget(&neutral).is_some(),
            input_chars,
        };
        let preferred = account
            .preferred_endpoint()
            .map(str::to_owned)
            .or_else(|| ctx.config.other.get("kiro-preferred-endpoint").and_then(Value::as_str).map(str::to_owned));
        let order = KiroApi::order(preferred.as_deref());
        let mut last_error = None;
        for (position, api) in order.iter().enumerate() {
            let has_next = position + 1 < order.len();
            kiro.set_origin(api.origin());
            let body = Bytes::from(serde_json::to_vec(&kiro).expect("the Kiro request always serialises"));
            match call.attempt(*api, account.region(), body).await {
                Ok(Attempt::Done(response)) => return Ok(response),
                Ok(Attempt::Throttled(response)) if !has_next => return Ok(response),
                Ok(Attempt::Throttled(_)) => {
                    tracing::debug!(endpoint = ?api, "Kiro endpoint throttled; trying the next one");
                }
                Err(error) if has_next && matches!(error, ExecError::Connect(_) | ExecError::Timeout) => {
                    tracing::debug!(endpoint = ?api, %error, "Kiro endpoint unreachable; trying the next one");
                    last_error = Some(error);
                }
                Err(error) => return Err(error),
            }
        }
        Err(last_error.unwrap_or_else(|| ExecError::Connect("no Kiro endpoint answered".into())))
    }
}

/// How one endpoint answered.
enum Attempt {
    Done(UpstreamResponse),
    /// 429 (or a throttling exception first thing): another endpoint may have quota left.
    Throttled(UpstreamResponse),
}

impl Call<'_> {
    fn headers(&self, api: KiroApi) -> Result<HeaderMap, ExecError> {
        let mut headers = Headers::default();
        headers.set("content-type", "application/x-amz-json-1.0")?;
        headers.set("accept", "*/*")?;
        headers.set("x-amz-target", api.target())?;
        headers.set("user-agent", USER_AGENT)?;
        headers.set("x-amz-user-agent", AMZ_USER_AGENT)?;
        headers.set("amz-sdk-request", "attempt=1; max=3")?;
        headers.set("amz-sdk-invocation-id", &uuid_v4())?;
        // The file's own `headers` (CPA §0.4); `$Name` copies that client header.
        if let Some(Value::Object(extra)) = self.credential.fields().get("headers") {
            for (name, value) in extra {
                let Some(value) = value.as_str() else { continue };
                if name.eq_ignore_ascii_case("authorization") {
                    continue;
                }
                let value = match value.strip_prefix('$') {
                    Some(client) => match self.client_headers.get(client).and_then(|v| v.to_str().ok()) {
                        Some(value) => value.to_owned(),
                        None => continue,
                    },
                    None => value.to_owned(),
                };
                headers.set(name, &value)?;
            }
        }
        headers.secret("authorization", &format!("Bearer {}", self.access_token))?;
        Ok(headers.0)
    }

    async fn attempt(&self, api: KiroApi, region: &str, body: Bytes) -> Result<Attempt, ExecError> {
        let url = api.url(self.ctx, region);
        let mut backoff = SERVER_ERROR_BACKOFF.iter();
        loop {
            let request = self.ctx.http.post(&url).headers(self.headers(api)?).body(body.clone());
            let response = send(request).await?;
            let status = response.status().as_u16();
            if (200..300).contains(&status) {
                return self.answer(response).await;
            }
            if status >= 500
                && let Some(wait) = backoff.next()
            {
                tracing::debug!(status, "Kiro server error; retrying after {wait:?}");
                tokio::time::sleep(*wait).await;
                continue;
            }
            let retry_after = response.headers().get(RETRY_AFTER).cloned();
            let bytes = super::collect(body_of(response)).await.unwrap_or_default();
            let info = status_error(status, &bytes);
            let reply = error_response(&info, retry_after);
            return Ok(if status == 429 { Attempt::Throttled(reply) } else { Attempt::Done(reply) });
        }
    }

    /// A 2xx event stream: looked at until its first frame (an exception there is an error
    /// answer), then streamed on or folded.
    async fn answer(&self, response: reqwest::Response) -> Result<Attempt, ExecError> {
        let id = format!("msg_{}", uuid_v4().replace('-', ""));
        let builder = ResponseBuilder::new(id, self.model.clone(), self.input_chars, self.thinking);
        let mut events = KiroEvents::new(body_of(response), builder);
        let first = events.until_first_frame().await?;
        if let Some(StreamEvent::Error(error)) = first.iter().find(|e| matches!(e, StreamEvent::Error(_))) {
            let reply = error_response(error, None);
            return Ok(if error.status == 429 { Attempt::Throttled(reply) } else { Attempt::Done(reply) });
        }
        if !self.stream {
            let mut fold = Fold::default();
            fold.absorb(first);
            while let Some(more) = events.next_events().await {
                fold.absorb(more?);
            }
            return Ok(Attempt::Done(match fold.finish() {
                Ok(whole) => json_response(200, &Dialect::AnthropicMessages.response_from_ir(&whole)),
                Err(error) => error_response(&error, None),
            }));
        }
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        Ok(Attempt::Done(UpstreamResponse { status: 200, headers, body: sse_body(first, events) }))
    }
}

/// The frames of one answer as neutral events, as they arrive.
struct KiroEvents {
    body: Body,
    frames: FrameReader,
    builder: ResponseBuilder,
    done: bool,
}

impl KiroEvents {
    fn new(body: Body, builder: ResponseBuilder) -> Self {
        KiroEvents { body, frames: FrameReader::new(), builder, done: false }
    }

    /// The next batch of events (possibly empty), `None` after the end. A broken stream is an
    /// `Interrupted` error, after which nothing more comes.
    async fn next_events(&mut self) -> Option<Result<Vec<StreamEvent>, ExecError>> {
        if self.done {
            return None;
        }
        let broken = |error: FrameError| ExecError::Interrupted(error.to_string());
        match self.body.next().await {
            Some(Ok(chunk)) => {
                let frames = match self.frames.feed(&chunk) {
                    Ok(frames) => frames,
                    Err(error) => {
                        self.done = true;
                        return Some(Err(broken(error)));
                    }
                };
                let mut out = Vec::new();
                for frame in &frames {
                    match event_of(frame) {
                        Ok(event) => out.extend(self.builder.push(event)),
                        Err(error) => {
                            self.done = true;
                            return Some(Err(broken(error)));
                        }
                    }
                }
                Some(Ok(out))
            }
            Some(Err(error)) => {
                self.done = true;
                Some(Err(error))
            }
            None => {
                self.done = true;
                Some(match self.frames.finish() {
                    Ok(()) => Ok(self.builder.finish()),
                    Err(error) => Err(broken(error)),
                })
            }
        }
    }

    /// Events up to and including the first decoded frame's (or the end).
    async fn until_first_frame(&mut self) -> Result<Vec<StreamEvent>, ExecError> {
        let mut out = Vec::new();
        while let Some(batch) = self.next_events().await {
            let batch = batch?;
            let decoded = !batch.is_empty();
            out.extend(batch);
            if decoded {
                break;
            }
        }
        Ok(out)
    }
}

/// Anthropic SSE from the events so far and the rest of the stream, frame by frame.
fn sse_body(first: Vec<StreamEvent>, events: KiroEvents) -> BoxStream<'static, Result<Bytes, ExecError>> {
    struct State {
        events: KiroEvents,
        encoder: Box<dyn StreamEncoder>,
        queued: VecDeque<Vec<StreamEvent>>,
    }
    let state = State { events, encoder: Dialect::AnthropicMessages.encoder(), queued: VecDeque::from([first]) };
    stream::unfold(state, |mut state| async move {
        loop {
            let batch = match state.queued.pop_front() {
                Some(batch) => batch,
                None => match state.events.next_events().await? {
                    Ok(batch) => batch,
                    Err(error) => return Some((Err(error), state)),
                },
            };
            let text: String = batch.iter().flat_map(|event| state.encoder.encode(event)).collect();
            if !text.is_empty() {
                return Some((Ok(Bytes::from(text)), state));
            }
        }
    })
    .boxed()
}

fn invalid_request(message: String) -> ErrorInfo {
    ErrorInfo { status: 400, kind: "invalid_request".into(), message }
}

/// A non-2xx Kiro answer in neutral terms (spec §2.6's status rules).
fn status_error(status: u16, body: &[u8]) -> ErrorInfo {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let field = |key: &str| parsed.as_ref().and_then(|v| v.get(key)).and_then(Value::as_str).map(str::to_owned);
    let upstream = field("message")
        .or_else(|| field("Message"))
        .unwrap_or_else(|| crate::oauth_http::truncate(String::from_utf8_lossy(body).trim(), 300));
    let message = switchyard_redact::text(&upstream);
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    let (status, kind, message) = match status {
        403 if text.contains("SUSPENDED") => (403, "permission", format!("Kiro account suspended: {message}")),
        403 if ["token", "expired", "invalid", "unauthorized"].iter().any(|w| lower.contains(w)) => {
            (401, "authentication", format!("Kiro rejected the access token: {message}"))
        }
        402 => (402, "permission", format!("Kiro usage limit reached: {message}")),
        other => (other, ErrorInfo::kind_for_status(other), format!("Kiro answered HTTP {other}: {message}")),
    };
    ErrorInfo { status, kind: kind.into(), message }
}

fn json_response(status: u16, value: &Value) -> UpstreamResponse {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let bytes = Bytes::from(value.to_string());
    UpstreamResponse { status, headers, body: stream::once(async { Ok(bytes) }).boxed() }
}

/// An error answer in Anthropic's shape.
fn error_response(error: &ErrorInfo, retry_after: Option<HeaderValue>) -> UpstreamResponse {
    let mut response = json_response(error.status, &Dialect::AnthropicMessages.error_from_ir(error));
    if let Some(value) = retry_after {
        response.headers.insert(RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_answers_are_told_apart() {
        let suspended = status_error(403, br#"{"message":"Account TEMPORARILY_SUSPENDED","reason":"x"}"#);
        assert_eq!((suspended.status, suspended.kind.as_str()), (403, "permission"));
        assert!(suspended.message.starts_with("Kiro account suspended"), "{}", suspended.message);
        let token = status_error(403, br#"{"message":"The bearer token included in the request is invalid."}"#);
        assert_eq!((token.status, token.kind.as_str()), (401, "authentication"));
        let other = status_error(403, br#"{"message":"Not allowed in this region"}"#);
        assert_eq!((other.status, other.kind.as_str()), (403, "permission"));
        let limit = status_error(402, br#"{"message":"Monthly request limit reached"}"#);
        assert_eq!(
            (limit.status, limit.message.as_str()),
            (402, "Kiro usage limit reached: Monthly request limit reached")
        );
        let html = status_error(400, b"<html>bad</html>");
        assert_eq!(html.message, "Kiro answered HTTP 400: <html>bad</html>");
    }

    #[test]
    fn preferred_endpoint_moves_one_first() {
        use KiroApi::*;
        assert_eq!(KiroApi::order(None), [CodeWhisperer, AmazonQ]);
        for q in ["amazonq", "Q", "cli"] {
            assert_eq!(KiroApi::order(Some(q)), [AmazonQ, CodeWhisperer], "{q}");
        }
        for cw in ["codewhisperer", "ide", "other"] {
            assert_eq!(KiroApi::order(Some(cw)), [CodeWhisperer, AmazonQ], "{cw}");
        }
    }
}
