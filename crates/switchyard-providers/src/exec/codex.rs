//! OpenAI Responses: the ChatGPT Codex backend for OAuth accounts, the OpenAI API for
//! `codex-api-key` keys (spec §4.6).
//!
//! The ChatGPT backend only streams (it answers `stream: false` with 400). A non-stream request is
//! therefore sent with `stream: true` and the events are folded into what the non-stream API
//! returns: the `response` object of `response.completed` (or `.incomplete`) with status 200, or,
//! for `response.failed` / a lone `error` event, `{"error": …}` with the status the OpenAI API
//! gives that error. A stream that ends without any of them is `Interrupted`. API keys talk to
//! the public Responses API, which does both, so their requests go out unchanged.

use bytes::Bytes;
use futures::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use switchyard_dialects::Dialect;
use switchyard_dialects::sse::{SseEvent, SseParser};

use super::{Headers, body_of, config_value, end_to_end_headers, own_base, pass_through, post, send};
use crate::executor::{ExecContext, ExecError, Executor, Operation, UpstreamAuth, UpstreamRequest, UpstreamResponse};

const DEFAULT_BASE: &str = "https://chatgpt.com/backend-api/codex";
pub(super) const OPENAI_BASE: &str = "https://api.openai.com/v1";
const HEADER_DEFAULTS: &str = "codex-header-defaults";
/// The Codex TUI the backend expects to talk to (spec §4.6).
const ORIGINATOR: &str = "codex-tui";
const USER_AGENT: &str = "codex-tui/0.146.0 (Mac OS 26.5.0; arm64) iTerm.app/3.6.10 (codex-tui; 0.146.0)";

/// Codex client headers passed on as sent (session and turn identity, client version).
const FORWARDED: &[&str] = &[
    "version",
    "session_id",
    "session-id",
    "conversation_id",
    "x-client-request-id",
    "x-codex-turn-metadata",
    "x-codex-window-id",
    "thread-id",
    "x-codex-beta-features",
];

pub struct CodexExecutor;

#[async_trait::async_trait]
impl Executor for CodexExecutor {
    fn dialect(&self) -> Dialect {
        Dialect::OpenAiResponses
    }

    async fn execute(
        &self,
        ctx: &ExecContext,
        auth: &UpstreamAuth<'_>,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, ExecError> {
        let mut headers = Headers::default();
        let (base, backend) = match auth {
            UpstreamAuth::OAuth { access_token, credential } => {
                headers.secret("authorization", &format!("Bearer {access_token}"))?;
                if let Some(account) = credential.str_field("account_id") {
                    headers.set("chatgpt-account-id", account)?;
                }
                (ctx.endpoint("codex", "api", DEFAULT_BASE), true)
            }
            UpstreamAuth::ApiKey { key, base_url, .. } => {
                headers.secret("authorization", &format!("Bearer {key}"))?;
                (own_base(*base_url).map_or_else(|| ctx.endpoint("openai", "api", OPENAI_BASE), str::to_owned), false)
            }
            UpstreamAuth::Stored { .. } => return Err(super::stored_not_supported()),
        };
        let path = match (request.operation, backend) {
            (Operation::Generate, _) => "/responses",
            (Operation::CountTokens, false) => "/responses/input_tokens",
            (Operation::CountTokens, true) => {
                return Err(ExecError::Unsupported("the ChatGPT Codex backend cannot count tokens".into()));
            }
        };
        let generate = request.operation == Operation::Generate;
        let fold = backend && generate && !request.stream;
        let body = if fold { streaming(request.body) } else { request.body };
        headers.set("content-type", "application/json")?;
        let event_stream = generate && (backend || request.stream);
        headers.set("accept", if event_stream { "text/event-stream" } else { "application/json" })?;
        if backend {
            headers.set("originator", ORIGINATOR)?;
            headers.set(
                "user-agent",
                &config_value(ctx, HEADER_DEFAULTS, "user-agent").unwrap_or_else(|| USER_AGENT.into()),
            )?;
            if let Some(features) = config_value(ctx, HEADER_DEFAULTS, "beta-features") {
                headers.set("x-codex-beta-features", &features)?;
            }
        }
        headers.forward(&request.client_headers, FORWARDED);
        if let UpstreamAuth::ApiKey { headers: extra, .. } = auth {
            headers.extra(extra)?;
        }
        let response = send(post(ctx, &base, path).headers(headers.0).body(body)).await?;
        if fold && response.status().is_success() {
            return fold_stream(response).await;
        }
        Ok(pass_through(response))
    }
}

/// The body with `"stream": true` (kept as is when it is not a JSON object: upstream will say why).
fn streaming(body: Bytes) -> Bytes {
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut map)) => {
            map.insert("stream".into(), Value::Bool(true));
            serde_json::to_vec(&map).map(Bytes::from).unwrap_or(body)
        }
        _ => body,
    }
}

/// How a folded stream ended.
enum Outcome {
    Response(Value),
    Failed(Value),
}

/// Reads the whole event stream and answers as the non-stream API would.
pub(super) async fn fold_stream(response: reqwest::Response) -> Result<UpstreamResponse, ExecError> {
    let mut headers = end_to_end_headers(&response);
    let mut body = body_of(response);
    let mut parser = SseParser::new();
    let mut outcome = None;
    while let Some(chunk) = body.next().await {
        parser.feed(&chunk?).into_iter().for_each(|event| absorb(&mut outcome, event));
    }
    parser.finish().into_iter().for_each(|event| absorb(&mut outcome, event));
    let (status, value) = match outcome {
        Some(Outcome::Response(response)) => (200, response),
        Some(Outcome::Failed(error)) => (error_status(&error), json!({ "error": error })),
        None => return Err(ExecError::Interrupted("the stream ended before response.completed".into())),
    };
    headers.remove(CONTENT_LENGTH);
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let bytes = Bytes::from(value.to_string());
    Ok(UpstreamResponse { status, headers, body: futures::stream::once(async { Ok(bytes) }).boxed() })
}

fn absorb(outcome: &mut Option<Outcome>, event: SseEvent) {
    let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
        return;
    };
    let kind = event.event.as_deref().or_else(|| data.get("type").and_then(Value::as_str)).unwrap_or_default();
    match kind {
        "response.completed" | "response.incomplete" | "response.done" => {
            if let Some(response) = data.get("response") {
                *outcome = Some(Outcome::Response(response.clone()));
            }
        }
        "response.failed" => {
            let error = data.pointer("/response/error").filter(|e| e.is_object()).cloned();
            *outcome = Some(Outcome::Failed(error.unwrap_or_else(|| json!({"message": "response failed"}))));
        }
        // An `error` event says why; a later `response.failed` may say it again, in full.
        "error" if outcome.is_none() => {
            let error = data.get("error").filter(|e| e.is_object()).cloned().unwrap_or_else(|| {
                let mut fields = data.as_object().cloned().unwrap_or_default();
                fields.remove("type");
                fields.remove("sequence_number");
                Value::Object(fields)
            });
            *outcome = Some(Outcome::Failed(error));
        }
        _ => {}
    }
}

/// The status the OpenAI API answers this error with.
fn error_status(error: &Value) -> u16 {
    let field = |key: &str| error.get(key).and_then(Value::as_str).unwrap_or_default();
    match [field("code"), field("type")] {
        codes
            if codes
                .iter()
                .any(|c| matches!(*c, "rate_limit_exceeded" | "insufficient_quota" | "usage_limit_reached")) =>
        {
            429
        }
        codes if codes.iter().any(|c| c.starts_with("invalid_") || *c == "context_length_exceeded") => 400,
        _ => 500,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fold(events: &[(&str, Value)]) -> Option<Outcome> {
        let mut outcome = None;
        for (name, data) in events {
            absorb(&mut outcome, SseEvent { event: Some((*name).into()), data: data.to_string() });
        }
        outcome
    }

    #[test]
    fn completed_response_is_the_answer() {
        let outcome = fold(&[
            ("response.created", json!({"type": "response.created", "response": {"status": "in_progress"}})),
            (
                "response.completed",
                json!({"type": "response.completed", "response": {"id": "r", "status": "completed"}}),
            ),
        ]);
        assert!(matches!(outcome, Some(Outcome::Response(r)) if r["id"] == "r"));
    }

    #[test]
    fn failures_keep_the_fullest_error_and_map_to_statuses() {
        let error = json!({"type": "error", "code": "insufficient_quota", "message": "quota", "sequence_number": 2});
        let failed = json!({"type": "response.failed", "response": {"error": {"code": "insufficient_quota", "message": "full"}}});
        let Some(Outcome::Failed(e)) = fold(&[("error", error.clone()), ("response.failed", failed)]) else { panic!() };
        assert_eq!(e["message"], "full");
        let Some(Outcome::Failed(e)) = fold(&[("error", error)]) else { panic!() };
        assert_eq!(e, json!({"code": "insufficient_quota", "message": "quota"}));
        assert_eq!(error_status(&e), 429);
        assert_eq!(error_status(&json!({"code": "context_length_exceeded"})), 400);
        assert_eq!(error_status(&json!({"type": "server_error", "code": null})), 500);
    }

    #[test]
    fn streaming_sets_the_flag_and_keeps_other_fields() {
        let body = streaming(Bytes::from_static(br#"{"model":"m","stream":false,"input":"hi"}"#));
        assert_eq!(&body[..], br#"{"model":"m","stream":true,"input":"hi"}"#);
        assert_eq!(&streaming(Bytes::from_static(b"[1]"))[..], b"[1]");
    }
}
