//! What each mocked API answers: routing, request checks, fixture replay and error shapes.

use axum::http::Method;
use serde_json::{Value, json};

use super::http::Reply;
use super::{Api, CODEX_PREFIX, Fault, RequiredAuth, State};
use crate::RecordedRequest;
use crate::fixtures;

/// `traceId` of every Code Assist envelope the mock sends.
pub const TRACE_ID: &str = "mock-trace-0001";

const JSON: &str = "application/json";
const GOOGLE_JSON: &str = "application/json; charset=UTF-8";
const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";
const GOOGLE_429_FIXTURE: &str = "gemini/google-429-retry-info.json";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Generate,
    Stream,
    Count,
}

#[derive(Clone, Copy)]
enum Route {
    Messages,
    MessagesCount,
    Chat,
    Responses,
    ResponsesCount,
    Codex,
    Gemini(Action),
    CodeAssist(Action),
}

/// Which error body a route speaks.
#[derive(Clone, Copy)]
enum Shape {
    Anthropic,
    OpenAi,
    Codex,
    Google,
}

impl Route {
    fn parse(path: &str) -> Option<Route> {
        let action = |name: &str| match name {
            "generateContent" => Some(Action::Generate),
            "streamGenerateContent" => Some(Action::Stream),
            "countTokens" => Some(Action::Count),
            _ => None,
        };
        if let Some(name) = path.strip_prefix("/v1internal:") {
            return action(name).map(Route::CodeAssist);
        }
        if let Some((_, model_action)) = path.rsplit_once("/models/") {
            let (model, name) = model_action.split_once(':')?;
            return if model.is_empty() { None } else { action(name).map(Route::Gemini) };
        }
        // Anthropic-compatible APIs live under a prefix too (Kimi: `/coding/v1/messages`).
        if path.ends_with("/v1/messages") {
            return Some(Route::Messages);
        }
        if path.ends_with("/v1/messages/count_tokens") {
            return Some(Route::MessagesCount);
        }
        match path {
            "/v1/responses" => Some(Route::Responses),
            "/v1/responses/input_tokens" => Some(Route::ResponsesCount),
            _ if path == format!("{CODEX_PREFIX}/responses") => Some(Route::Codex),
            _ if path.ends_with("/chat/completions") => Some(Route::Chat),
            _ => None,
        }
    }

    fn shape(self) -> Shape {
        match self {
            Route::Messages | Route::MessagesCount => Shape::Anthropic,
            Route::Chat | Route::Responses | Route::ResponsesCount => Shape::OpenAi,
            Route::Codex => Shape::Codex,
            Route::Gemini(_) | Route::CodeAssist(_) => Shape::Google,
        }
    }
}

pub(super) fn respond(state: &mut State, request: &RecordedRequest) -> Reply {
    let Some(route) = Route::parse(&request.path) else {
        return full(404, JSON, r#"{"error":"no such route on the mock upstream"}"#.into());
    };
    let shape = route.shape();
    if request.method != Method::POST {
        return error(shape, 405, "method not allowed");
    }
    if let Some(fault) = state.faults.pop_front() {
        return fault_reply(shape, fault);
    }
    if let Some(auth) = &state.auth
        && !authorized(auth, request)
    {
        return error(shape, 401, "missing or invalid credentials");
    }
    if let Some(check) = &state.auth_check
        && !check(&request.headers)
    {
        return error(shape, 401, "missing or invalid credentials");
    }
    let body = match serde_json::from_slice::<Value>(&request.body) {
        Ok(body @ Value::Object(_)) => body,
        _ => return error(shape, 400, "request body is not a JSON object"),
    };
    let streaming = body.get("stream").and_then(Value::as_bool) == Some(true);
    let alt_sse = request.query.as_deref().is_some_and(|q| q.split('&').any(|p| p == "alt=sse"));
    match route {
        Route::Messages => {
            if let Some(missing) = ["model", "max_tokens", "messages"].into_iter().find(|k| body.get(k).is_none()) {
                return error(shape, 400, &format!("{missing}: Field required"));
            }
            replay(state, Api::Anthropic, streaming)
        }
        Route::MessagesCount => full(200, JSON, json!({"input_tokens": estimate(request)}).to_string().into()),
        Route::ResponsesCount => full(
            200,
            JSON,
            json!({"object": "response.input_tokens", "input_tokens": estimate(request)}).to_string().into(),
        ),
        Route::Chat | Route::Responses => {
            if body.get("model").is_none() {
                return error(shape, 400, "you must provide a model parameter");
            }
            let api = if matches!(route, Route::Chat) { Api::OpenAiChat } else { Api::OpenAiResponses };
            replay(state, api, streaming)
        }
        Route::Codex => {
            // The ChatGPT backend only streams, and never stores.
            if !streaming {
                return full(400, JSON, r#"{"detail":"Stream must be set to true"}"#.into());
            }
            if body.get("store").and_then(Value::as_bool) == Some(true) {
                return full(400, JSON, r#"{"detail":"Store must be set to false"}"#.into());
            }
            replay(state, Api::OpenAiResponses, true)
        }
        Route::Gemini(Action::Count) | Route::CodeAssist(Action::Count) => {
            if matches!(route, Route::CodeAssist(_)) && !body.get("request").is_some_and(Value::is_object) {
                return error(shape, 400, "Invalid JSON payload: missing \"request\"");
            }
            full(200, GOOGLE_JSON, json!({"totalTokens": estimate(request)}).to_string().into())
        }
        Route::Gemini(action) => gemini(state, action, alt_sse, false),
        Route::CodeAssist(action) => {
            if let Err(reply) = check_code_assist(state, &body) {
                return reply;
            }
            gemini(state, action, alt_sse, true)
        }
    }
}

/// Code Assist wants `{model, project, request}`, and only projects the caller may use.
fn check_code_assist(state: &State, body: &Value) -> Result<(), Reply> {
    let project = body.get("project").and_then(Value::as_str).unwrap_or_default();
    if project.is_empty() {
        return Err(error(Shape::Google, 400, "Invalid project resource name: \"projects/\""));
    }
    if state.project.as_deref().is_some_and(|p| p != project) {
        let message = format!("Permission denied on resource project {project}.");
        return Err(error(Shape::Google, 403, &message));
    }
    if body.get("model").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(error(Shape::Google, 400, "Invalid JSON payload: missing \"model\""));
    }
    if !body.get("request").is_some_and(Value::is_object) {
        return Err(error(Shape::Google, 400, "Invalid JSON payload: missing \"request\""));
    }
    Ok(())
}

fn replay(state: &State, api: Api, streaming: bool) -> Reply {
    let file = state.fixture(api, streaming);
    if streaming { stream(sse_events(api, file)) } else { full(200, JSON, fixtures::read(file)) }
}

/// Gemini and Code Assist: `:generateContent` answers the JSON fixture; `:streamGenerateContent`
/// the stream fixture as SSE with `?alt=sse`, else as one JSON array (as Google does).
fn gemini(state: &State, action: Action, alt_sse: bool, envelope: bool) -> Reply {
    let wrap = |chunk: &str| if envelope { code_assist_envelope(chunk) } else { chunk.to_owned() };
    if action == Action::Generate {
        let body = String::from_utf8(fixtures::read(state.fixture(Api::Gemini, false))).expect("fixture is UTF-8");
        return full(200, GOOGLE_JSON, wrap(&body).into_bytes());
    }
    let file = state.fixture(Api::Gemini, true);
    if !alt_sse {
        let items: Vec<String> = fixtures::chunks(file).iter().map(|c| wrap(c)).collect();
        return full(200, GOOGLE_JSON, format!("[{}]", items.join(",\r\n")).into_bytes());
    }
    if envelope {
        let events = fixtures::chunks(file).iter().map(|c| format!("data: {}\r\n\r\n", wrap(c)).into_bytes()).collect();
        stream(events)
    } else {
        stream(sse_events(Api::Gemini, file))
    }
}

/// The exact events the mock sends when streaming `file` for `api` (outside Code Assist), so a
/// test can compare what an executor passed on byte for byte.
pub fn sse_events(api: Api, file: &str) -> Vec<Vec<u8>> {
    if api == Api::Gemini {
        let text = String::from_utf8(fixtures::read(file)).expect("fixture is UTF-8");
        if fixtures::is_raw_sse(text.as_bytes()) {
            return fixtures::raw_events(&text).into_iter().map(String::into_bytes).collect();
        }
    }
    let mut events: Vec<Vec<u8>> = fixtures::chunks(file)
        .iter()
        .map(|chunk| match api {
            Api::Anthropic | Api::OpenAiResponses => format!("event: {}\ndata: {chunk}\n\n", type_of(chunk)),
            Api::OpenAiChat => format!("data: {chunk}\n\n"),
            Api::Gemini => format!("data: {chunk}\r\n\r\n"),
        })
        .map(String::into_bytes)
        .collect();
    if api == Api::OpenAiChat {
        events.push(b"data: [DONE]\n\n".to_vec());
    }
    events
}

/// Code Assist's wrapper, written around the chunk's own bytes so they stay as recorded.
fn code_assist_envelope(chunk: &str) -> String {
    format!("{{\"response\": {chunk}, \"traceId\": \"{TRACE_ID}\"}}")
}

/// The fixture's `type` field: the SSE event name Anthropic and OpenAI Responses send with it.
fn type_of(chunk: &str) -> String {
    serde_json::from_str::<Value>(chunk)
        .ok()
        .and_then(|v| v.get("type").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "message".into())
}

fn authorized(auth: &RequiredAuth, request: &RecordedRequest) -> bool {
    let header = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
    match auth {
        RequiredAuth::Bearer(token) => header("authorization") == Some(format!("Bearer {token}").as_str()),
        RequiredAuth::XApiKey(key) => header("x-api-key") == Some(key.as_str()),
        RequiredAuth::GoogApiKey(key) => {
            let in_query = request.query.as_deref().is_some_and(|q| q.split('&').any(|p| p == format!("key={key}")));
            header("x-goog-api-key") == Some(key.as_str()) || in_query
        }
    }
}

fn fault_reply(shape: Shape, fault: Fault) -> Reply {
    if fault.hangup {
        return Reply::Hangup;
    }
    let body = match (fault.body, shape, fault.status) {
        (Some(body), ..) => body.into_bytes(),
        (None, Shape::Google, 429) => fixtures::read(GOOGLE_429_FIXTURE),
        (None, shape, status) => error_body(shape, status, "injected fault"),
    };
    let mut headers = vec![("content-type".to_owned(), JSON.to_owned())];
    if let Some(seconds) = fault.retry_after {
        headers.push(("retry-after".to_owned(), seconds.to_string()));
    }
    Reply::Full { status: fault.status, headers, body }
}

fn error(shape: Shape, status: u16, message: &str) -> Reply {
    full(status, JSON, error_body(shape, status, message))
}

/// Each API's error body for `status`.
fn error_body(shape: Shape, status: u16, message: &str) -> Vec<u8> {
    let body = match shape {
        Shape::Anthropic => {
            let kind = match status {
                400 => "invalid_request_error",
                401 => "authentication_error",
                403 => "permission_error",
                404 => "not_found_error",
                413 => "request_too_large",
                429 => "rate_limit_error",
                529 => "overloaded_error",
                _ => "api_error",
            };
            json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_mock_0001"})
        }
        Shape::OpenAi => {
            let (kind, code) = match status {
                401 => ("invalid_request_error", json!("invalid_api_key")),
                429 => ("requests", json!("rate_limit_exceeded")),
                500.. => ("server_error", Value::Null),
                _ => ("invalid_request_error", Value::Null),
            };
            json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
        }
        Shape::Codex if status == 429 => json!({"error": {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": "plus",
            "resets_in_seconds": 3600,
        }}),
        Shape::Codex => json!({"detail": message}),
        Shape::Google => {
            let status_name = match status {
                400 => "INVALID_ARGUMENT",
                401 => "UNAUTHENTICATED",
                403 => "PERMISSION_DENIED",
                404 => "NOT_FOUND",
                429 => "RESOURCE_EXHAUSTED",
                500 => "INTERNAL",
                503 => "UNAVAILABLE",
                504 => "DEADLINE_EXCEEDED",
                _ => "UNKNOWN",
            };
            json!({"error": {"code": status, "message": message, "status": status_name}})
        }
    };
    body.to_string().into_bytes()
}

fn full(status: u16, content_type: &str, body: Vec<u8>) -> Reply {
    Reply::Full { status, headers: vec![("content-type".to_owned(), content_type.to_owned())], body }
}

fn stream(events: Vec<Vec<u8>>) -> Reply {
    let headers =
        vec![("content-type".to_owned(), EVENT_STREAM.to_owned()), ("cache-control".to_owned(), "no-cache".to_owned())];
    Reply::Stream { status: 200, headers, events }
}

/// A token count that grows with the request, so tests can tell requests apart.
fn estimate(request: &RecordedRequest) -> usize {
    (request.body.len() / 4).max(1)
}
