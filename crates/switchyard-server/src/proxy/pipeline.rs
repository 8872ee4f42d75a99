//! One client request, end to end: read the model, ask the router for an ordered plan, and try
//! each account until one answers, in retry rounds as CPA runs them (§4.5). Same-dialect traffic
//! is passed through as bytes; otherwise the request goes through the neutral form and the
//! answer (whole or streamed) comes back the same way. One attempt is [`attempt`]'s job, the
//! answer's way back [`relay`]'s.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use switchyard_dialects::ir::{ChatRequest, ErrorInfo};
use switchyard_dialects::{Dialect, TranslateError, usage};
use switchyard_health::FailureSignal;
use switchyard_providers::executor::{ExecContext, Operation};
use switchyard_router::{AccountKind, Outcome, PinError, Plan, RouteError, RouteSettings};

use super::attempt::{self, Answer, AttemptResult, Limits, Prepared};
use super::relay;
use super::request_log::{RequestLog, RequestTag};
use crate::AppState;
use crate::account_health::feed;
use crate::usage::RequestSink;

/// A request body larger than this is refused (images inline make bodies big, not this big).
const MAX_REQUEST_BYTES: usize = 32 * 1024 * 1024;

/// What the client asked for, and in which dialect to answer.
pub struct ClientCall {
    pub dialect: Dialect,
    pub operation: Operation,
    pub headers: HeaderMap,
    /// From the URL (Gemini); otherwise read from the body.
    pub model: Option<String>,
    /// From the URL (Gemini `streamGenerateContent`); otherwise the body's `stream`.
    pub stream: Option<bool>,
    /// The request id and client key alias, for the request log line.
    pub tag: Option<RequestTag>,
    /// Only this account, no failover (test requests and probes).
    pub pin: Option<Pin>,
}

/// A call pinned to one account: one attempt, no other account, no retry round.
#[derive(Clone, Debug)]
pub struct Pin {
    pub account_id: String,
    /// Plan a disabled account too (inspections probe disabled accounts to see if they recovered).
    pub include_disabled: bool,
    /// The failed attempt's error as the upstream gave it, for the caller to classify.
    pub failure: Arc<Mutex<Option<FailureSignal>>>,
}

impl Pin {
    fn note(&self, failure: FailureSignal) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(failure);
    }
}

impl ClientCall {
    pub fn new(dialect: Dialect, operation: Operation, headers: HeaderMap) -> Self {
        Self { dialect, operation, headers, model: None, stream: None, tag: None, pin: None }
    }

    pub fn tagged(mut self, tag: RequestTag) -> Self {
        self.tag = Some(tag);
        self
    }

    pub fn pinned(mut self, pin: Pin) -> Self {
        self.pin = Some(pin);
        self
    }

    /// An error answer in the client's dialect.
    pub fn error(&self, status: u16, kind: &str, message: &str) -> Response {
        self.error_info(&ErrorInfo { status, kind: kind.to_owned(), message: message.to_owned() })
    }

    pub(super) fn error_info(&self, error: &ErrorInfo) -> Response {
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

/// A failed attempt, in neutral terms, reported to the client if no other account succeeds.
type Failure = ErrorInfo;

/// How the plan ended: an answer to relay, or a response made here.
enum Reply {
    Answer { native: Dialect, answer: Answer },
    Done(Response),
}

pub async fn serve(state: &AppState, mut call: ClientCall, body: Body) -> Response {
    let tag = call.tag.clone().unwrap_or_else(RequestTag::untagged);
    let config = state.config.get();
    let sink = RequestSink::new(
        state.usage.clone(),
        &config,
        state.management.enabled(&config),
        &tag.method,
        &tag.endpoint,
        &call.headers,
    );
    let mut log = RequestLog::new(tag, call.dialect);
    log.generate = call.operation == Operation::Generate;
    log.sink = Some(sink);
    match run_plan(state, &mut call, body, &mut log).await {
        Reply::Answer { native, answer } => relay::respond(&call, native, answer, log).await,
        Reply::Done(response) => relay::finish_whole(response, log).await,
    }
}

/// After a round ends with one of these, another round may follow (CPA §4.5).
fn worth_another_round(status: u16) -> bool {
    matches!(status, 403 | 408 | 429 | 500 | 502 | 503 | 504)
}

/// Our own refusal of the request, in the client's dialect, with the reason kept for the log.
fn refuse(call: &ClientCall, log: &mut RequestLog, status: u16, message: &str) -> Reply {
    log.error = Some(message.to_owned());
    Reply::Done(call.error(status, "invalid_request", message))
}

async fn run_plan(state: &AppState, call: &mut ClientCall, body: Body, log: &mut RequestLog) -> Reply {
    let Ok(bytes) = axum::body::to_bytes(body, MAX_REQUEST_BYTES).await else {
        return refuse(call, log, 413, &format!("request body exceeds {MAX_REQUEST_BYTES} bytes"));
    };
    if let Some(sink) = &mut log.sink {
        sink.request_body(&bytes);
    }
    // Passed through, the request is never parsed: its size stands in for its text.
    log.tokens.request_chars = bytes.len();
    let peek = match serde_json::from_slice::<Peek>(&bytes) {
        Ok(peek) => peek,
        // The dialect's own parser names the offending field precisely.
        Err(_) => {
            let message = match call.dialect.request_to_ir(&bytes, call.model.as_deref().unwrap_or("")) {
                Err(error) => error.to_string(),
                Ok(_) => "invalid request body".to_owned(),
            };
            return refuse(call, log, 400, &message);
        }
    };
    let Some(model) = call.model.clone().or(peek.model).filter(|m| !m.trim().is_empty()) else {
        return refuse(call, log, 400, "invalid request: model: is required");
    };
    call.model = Some(model.clone());
    let stream = call.stream.or(peek.stream).unwrap_or(false) && call.operation == Operation::Generate;
    call.stream = Some(stream);
    log.requested_model = model.clone();
    log.stream = stream;
    let call = &*call;

    let config = state.config.get();
    let settings = RouteSettings::from_config(&config);
    let limits = Limits::from_config(&config);
    // `max-retry-credentials` caps each round after its admission below, so the plan is uncapped.
    let uncapped = RouteSettings { max_retry_credentials: 0, ..settings.clone() };
    let cap = if settings.max_retry_credentials == 0 { usize::MAX } else { settings.max_retry_credentials };
    let mut plan = match first_plan(state, call, &model, &uncapped) {
        Ok(plan) => plan,
        Err(refusal) => {
            log.error = Some(refusal.to_string());
            return Reply::Done(refusal.response(call));
        }
    };
    let mut neutral: Option<ChatRequest> = None;
    let mut last_failure: Option<Failure> = None;
    // The upstream's error body behind `last_failure`, when it answered one.
    let mut last_body: Option<Box<str>> = None;
    let mut last_retry_after: Option<Duration> = None;
    let mut round: u32 = 0;

    loop {
        // Attempts are built as they are reached: most requests build one.
        for attempt in plan.attempts.for_round(round).take(cap) {
            let attempt = &attempt;
            let Some(target) = attempt::resolve(&config, attempt) else { continue };
            // The client's own dialect when the upstream takes it too: no translation at all.
            let native = if target.executor.accepts(call.dialect) { call.dialect } else { target.executor.dialect() };
            if call.operation == Operation::CountTokens && native != call.dialect {
                // No cross-dialect token-count endpoint exists; answer with a local estimate.
                return match neutral_request(call, &bytes, &mut neutral) {
                    Ok(request) => Reply::Done(count_estimate(call, request)),
                    Err(error) => refuse(call, log, 400, &error.to_string()),
                };
            }
            let upstream_body = if native == call.dialect {
                pass_through_body(&bytes, call.dialect, &model, &attempt.upstream_model)
            } else {
                let request = match neutral_request(call, &bytes, &mut neutral) {
                    Ok(request) => request,
                    Err(error) => return refuse(call, log, 400, &error.to_string()),
                };
                log.tokens.request_chars = usage::request_chars(request);
                let mut request = request.clone();
                request.model = attempt.upstream_model.to_string();
                request.stream = stream;
                match native.request_from_ir(&request) {
                    Ok(value) => Bytes::from(serde_json::to_vec(&value).unwrap_or_default()),
                    Err(error) => return refuse(call, log, 400, &error.to_string()),
                }
            };

            log.attempts += 1;
            log.provider = attempt.provider.to_string();
            log.upstream_model = attempt.upstream_model.to_string();
            log.auth_index = attempt::auth_index(state, &config, attempt);
            log.account = attempt.account_id.to_string();
            log.auth_type = if matches!(*attempt.kind, AccountKind::OAuth { .. }) { "oauth" } else { "api_key" };
            log.dialect_out = Some(native);
            let prepared = Prepared { attempt, target: &target, native, body: upstream_body };
            let result = match attempt::http_for(state, &config, attempt).await {
                Ok(http) => {
                    let ctx = ExecContext { http, config: config.clone() };
                    attempt::run(state, &ctx, call, prepared, limits).await
                }
                Err(failure) => failure,
            };
            match result {
                AttemptResult::Answered(answer) => {
                    state.usage.attempt_done(&log.auth_index, true);
                    let (id, model) = (&attempt.account_id, &attempt.upstream_model);
                    state.router.report(id, model, Outcome::Success, &settings, Instant::now());
                    feed::attempt_succeeded(state, attempt);
                    return Reply::Answer { native, answer };
                }
                AttemptResult::ClientError { error, body } => {
                    state.usage.attempt_done(&log.auth_index, false);
                    log.error = Some(error.message.clone());
                    if let Some(pin) = &call.pin {
                        pin.note(FailureSignal::from_body(&attempt.provider, error.status, &error.message));
                    }
                    log.upstream_error = Some(body);
                    return Reply::Done(call.error_info(&error));
                }
                AttemptResult::Unsupported if call.operation == Operation::CountTokens => {
                    return match neutral_request(call, &bytes, &mut neutral) {
                        Ok(request) => Reply::Done(count_estimate(call, request)),
                        Err(error) => refuse(call, log, 400, &error.to_string()),
                    };
                }
                AttemptResult::Unsupported => continue,
                AttemptResult::Failed { outcome, failure, read, body } => {
                    state.usage.attempt_done(&log.auth_index, false);
                    tracing::debug!(account = %attempt.account_id, model = %attempt.upstream_model, round, "attempt failed; trying the next account");
                    let mut failed_with = None;
                    if let Outcome::Failure { retry_after, status, message, .. } = &outcome {
                        last_retry_after = *retry_after;
                        failed_with = Some((*status, message.clone()));
                    }
                    state.router.report(
                        &attempt.account_id,
                        &attempt.upstream_model,
                        outcome,
                        &settings,
                        Instant::now(),
                    );
                    // After the report, so the router's cooldown is there to read.
                    if let Some((status, message)) = failed_with {
                        let read = feed::attempt_failed(state, attempt, status, &message, read.map(|r| *r)).await;
                        if let Some(pin) = &call.pin {
                            pin.note(read);
                        }
                    }
                    if failure.is_some() {
                        last_failure = failure;
                        last_body = body;
                    }
                }
            }
        }

        // A pinned call has its one attempt only.
        if call.pin.is_some() {
            break;
        }
        // The round is exhausted: another one if the failure may pass and an account may recover
        // soon enough.
        if !last_failure.as_ref().is_some_and(|f| worth_another_round(f.status)) {
            break;
        }
        round += 1;
        if !plan.attempts.any_in_round(round) {
            break;
        }
        plan = match state.router.plan(&model, &uncapped, Instant::now()) {
            Ok(plan) => plan,
            Err(RouteError::AllCooling { retry_after, .. })
                if !settings.max_retry_interval.is_zero() && retry_after <= settings.max_retry_interval =>
            {
                tracing::debug!(model = %model, round, wait_ms = retry_after.as_millis() as u64, "waiting for a cooled-down account");
                tokio::time::sleep(retry_after).await;
                match state.router.plan(&model, &uncapped, Instant::now()) {
                    Ok(plan) => plan,
                    Err(_) => break,
                }
            }
            Err(_) => break,
        };
    }
    let Some(failure) = last_failure else {
        let message = format!("no account could serve model {model}");
        log.error = Some(message.clone());
        return Reply::Done(call.error(503, "overloaded", &message));
    };
    log.error = Some(failure.message.clone());
    log.upstream_error = last_body.map(String::from);
    let mut response = call.error_info(&failure);
    if failure.status == 429 {
        // When the soonest account is back (its cooldown follows the upstream's Retry-After).
        let wait = state.router.soonest_recovery(&model, &settings, Instant::now()).or(last_retry_after);
        if let Some(wait) = wait {
            set_retry_after(&mut response, wait);
        }
    }
    Reply::Done(response)
}

fn set_retry_after(response: &mut Response, wait: Duration) {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    if let Ok(value) = HeaderValue::from_str(&seconds.max(1).to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
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

/// Why a call has no plan.
enum Refusal {
    Route(RouteError),
    Pin(PinError),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Route(error) => error.fmt(f),
            Refusal::Pin(error) => error.fmt(f),
        }
    }
}

impl Refusal {
    fn response(&self, call: &ClientCall) -> Response {
        let status = match self {
            Refusal::Route(error) => return route_error(call, error),
            Refusal::Pin(PinError::UnknownAccount) => 404,
            Refusal::Pin(PinError::Disabled) => 409,
            Refusal::Pin(PinError::Unservable(_)) => 422,
            Refusal::Pin(PinError::ModelNotServed { .. }) => 400,
        };
        call.error(status, "invalid_request", &self.to_string())
    }
}

/// The plan for the call's model: the router's, or the pinned account's only.
fn first_plan(state: &AppState, call: &ClientCall, model: &str, settings: &RouteSettings) -> Result<Plan, Refusal> {
    match &call.pin {
        None => state.router.plan(model, settings, Instant::now()).map_err(Refusal::Route),
        Some(pin) => state.router.plan_for(&pin.account_id, model, pin.include_disabled).map_err(Refusal::Pin),
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
            set_retry_after(&mut response, *retry_after);
            response
        }
        RouteError::NoneAvailable { .. } => call.error(503, "overloaded", &error.to_string()),
    }
}

/// A rough count (4 characters per token) for token-count calls that cross dialects.
fn count_estimate(call: &ClientCall, request: &ChatRequest) -> Response {
    let tokens = usage::estimate_tokens(usage::request_chars(request));
    let body = match call.dialect {
        Dialect::Gemini => serde_json::json!({ "totalTokens": tokens }),
        _ => serde_json::json!({ "input_tokens": tokens }),
    };
    axum::Json(body).into_response()
}
