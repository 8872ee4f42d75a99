//! The CodeWhisperer and Amazon Q chat APIs: checks like the real ones (bearer, operation,
//! content type, origin, profile ARN rules), answers in event-stream frames sent in small
//! chunks, and the one-shot faults.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};

use super::{Api, ApiFault, Frame, Issuer, Shared, lock};
use crate::oauth;

pub(super) async fn codewhisperer(state: State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    chat(state, Api::CodeWhisperer, headers, body).await
}

pub(super) async fn amazon_q(state: State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    chat(state, Api::AmazonQ, headers, body).await
}

/// AWS's JSON error shape: `{"__type", "message"}` (plus whatever else the service adds).
fn aws_error(status: StatusCode, kind: &str, message: &str, extra: Value) -> Response {
    let mut body = json!({"__type": format!("com.amazon.aws.codewhisperer#{kind}"), "message": message});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert("x-amzn-errortype", kind.parse().expect("exception names are header text"));
    response
}

fn validation(message: &str) -> Response {
    aws_error(StatusCode::BAD_REQUEST, "ValidationException", message, Value::Null)
}

fn expected(api: Api) -> (&'static str, &'static str) {
    match api {
        Api::CodeWhisperer => ("AmazonCodeWhispererStreamingService.GenerateAssistantResponse", "AI_EDITOR"),
        Api::AmazonQ => ("AmazonQDeveloperStreamingService.SendMessage", "CLI"),
    }
}

async fn chat(State(state): State<Shared>, api: Api, headers: HeaderMap, body: Bytes) -> Response {
    let (frames, fault, chunk) = {
        let mut state = lock(&state);
        let fault = state.faults.iter().position(|(a, _)| *a == api).and_then(|at| state.faults.remove(at));
        if let Some(answer) = fault.as_ref().and_then(|(_, fault)| status_fault(fault)) {
            return answer;
        }
        if let Some(problem) = request_problem(&state, api, &headers, &body) {
            return problem;
        }
        (state.frames.clone(), fault.map(|(_, f)| f), state.chunk)
    };
    let bytes = answer_bytes(&frames, fault.as_ref());
    let chunks: Vec<Result<Bytes, Infallible>> = bytes.chunks(chunk).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    // Each chunk in its own write, so the client sees frames split across reads.
    let body = futures::stream::iter(chunks).then(|chunk| async move {
        tokio::time::sleep(Duration::from_millis(1)).await;
        chunk
    });
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, "application/vnd.amazon.eventstream".parse().expect("static"));
    headers.insert("x-amzn-requestid", "mock-kiro-request-0001".parse().expect("static"));
    response
}

/// The HTTP answer of a fault that replaces the whole response.
fn status_fault(fault: &ApiFault) -> Option<Response> {
    Some(match fault {
        ApiFault::Throttle => {
            let mut response = aws_error(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
                Value::Null,
            );
            response.headers_mut().insert(header::RETRY_AFTER, 7.into());
            response
        }
        ApiFault::Suspended => aws_error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "Your account has been temporarily suspended.",
            json!({"reason": "TEMPORARILY_SUSPENDED"}),
        ),
        ApiFault::InvalidToken => aws_error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "The bearer token included in the request is invalid.",
            Value::Null,
        ),
        ApiFault::MonthlyLimit => aws_error(
            StatusCode::PAYMENT_REQUIRED,
            "ServiceQuotaExceededException",
            "You have reached the monthly request limit of your plan.",
            json!({"reason": "MONTHLY_REQUEST_COUNT"}),
        ),
        ApiFault::ServerError => aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            "Encountered an unexpected error.",
            Value::Null,
        ),
        ApiFault::CorruptCrc { .. } | ApiFault::CutMidFrame { .. } | ApiFault::Exception { .. } => return None,
    })
}

/// Why the real API would refuse this request, if it would.
fn request_problem(state: &super::State, api: Api, headers: &HeaderMap, body: &[u8]) -> Option<Response> {
    let (target, origin) = expected(api);
    if !oauth::content_type_is(headers, "application/x-amz-json-1.0") {
        return Some(aws_error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "Unsupported content type",
            Value::Null,
        ));
    }
    if headers.get("x-amz-target").and_then(|v| v.to_str().ok()) != Some(target) {
        return Some(aws_error(StatusCode::BAD_REQUEST, "UnknownOperationException", "Unknown operation", Value::Null));
    }
    if !state.tokens.bearer_ok(headers) {
        return Some(aws_error(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "The bearer token included in the request is invalid.",
            Value::Null,
        ));
    }
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return Some(validation("Improperly formed request."));
    };
    let message = &request["conversationState"]["currentMessage"]["userInputMessage"];
    let text = |value: &Value| value.as_str().is_some_and(|s| !s.trim().is_empty());
    if !text(&request["conversationState"]["conversationId"])
        || !text(&message["content"])
        || !text(&message["modelId"])
    {
        return Some(validation("Improperly formed request."));
    }
    if message["origin"].as_str() != Some(origin) {
        return Some(validation(&format!("origin must be {origin} for this operation")));
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if request.get("profileArn").is_some() && state.issuers.get(bearer) == Some(&Issuer::Oidc) {
        return Some(validation("profileArn cannot be used with a Builder ID or IAM Identity Center token"));
    }
    None
}

/// The answer's bytes, with a stream fault applied.
fn answer_bytes(frames: &[Frame], fault: Option<&ApiFault>) -> Vec<u8> {
    let mut encoded: Vec<Vec<u8>> = frames.iter().map(Frame::encode).collect();
    match fault {
        Some(ApiFault::CorruptCrc { frame }) => {
            if let Some(bytes) = encoded.get_mut(*frame) {
                // The last payload byte (just before the message CRC).
                let at = bytes.len() - 5;
                bytes[at] ^= 0x01;
            }
        }
        Some(ApiFault::CutMidFrame { frame }) => {
            encoded.truncate(frame + 1);
            if let Some(last) = encoded.last_mut() {
                last.truncate(last.len() / 2);
            }
        }
        Some(ApiFault::Exception { kind, message }) => encoded = vec![Frame::exception(kind, message).encode()],
        _ => {}
    }
    encoded.concat()
}
