//! Gemini through Google's Cloud Code Assist API, as the Gemini CLI calls it (providers-extra
//! §5.5): the Gemini body inside `{"model", "project", "request"}`, answers inside
//! `{"response": …}`, which is removed here (whole bodies and each stream event) so callers see
//! plain Gemini.

use serde_json::{Map, Value};
use switchyard_dialects::Dialect;
use switchyard_dialects::gemini::{unwrap_code_assist_response, wrap_code_assist_request};

use super::{Headers, join, map_json_body, map_sse_json, pass_through, rewritten, send};
use crate::executor::{ExecContext, ExecError, Executor, Operation, UpstreamAuth, UpstreamRequest, UpstreamResponse};

const DEFAULT_BASE: &str = "https://cloudcode-pa.googleapis.com";
/// Code Assist client identity (providers-extra §5.2); a client's own values win.
const CODE_ASSIST_HEADERS: [(&str, &str); 3] = [
    ("user-agent", "google-api-nodejs-client/9.15.1"),
    ("x-goog-api-client", "gl-node/22.17.0"),
    ("client-metadata", "ideType=IDE_UNSPECIFIED,platform=PLATFORM_UNSPECIFIED,pluginType=GEMINI"),
];

pub struct GeminiCliExecutor;

#[async_trait::async_trait]
impl Executor for GeminiCliExecutor {
    fn dialect(&self) -> Dialect {
        Dialect::Gemini
    }

    async fn execute(
        &self,
        ctx: &ExecContext,
        auth: &UpstreamAuth<'_>,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, ExecError> {
        let UpstreamAuth::OAuth { access_token, credential } = auth else {
            return Err(ExecError::Credential("Gemini CLI needs an OAuth account, not an API key".into()));
        };
        // A multi-project file lists several; the router hands each project over as its own account.
        let project = credential
            .project_id()
            .and_then(|p| p.split(',').map(str::trim).find(|p| !p.is_empty()))
            .ok_or_else(|| ExecError::Credential("the Gemini CLI account has no project_id; log in again".into()))?;
        let gemini = json_object(&request.body)?;
        let body = match request.operation {
            Operation::Generate => wrap_code_assist_request(&request.model, project, Value::Object(gemini)),
            Operation::CountTokens => count_tokens_body(&request.model, gemini),
        };
        let mut headers = Headers::default();
        headers.secret("authorization", &format!("Bearer {access_token}"))?;
        headers.set("content-type", "application/json")?;
        headers.set("accept", if request.stream { "text/event-stream" } else { "application/json" })?;
        for (name, value) in CODE_ASSIST_HEADERS {
            headers.set(name, value)?;
        }
        headers.forward(&request.client_headers, &CODE_ASSIST_HEADERS.map(|(name, _)| name));
        let url = join(&ctx.endpoint("gemini-cli", "code-assist", DEFAULT_BASE), action_path(&request));
        let response = send(ctx.http.post(url).headers(headers.0).body(body.to_string())).await?;
        Ok(code_assist_answer(response, &request))
    }
}

/// `/v1internal:<action>` for the request (shared with Antigravity).
pub(super) fn action_path(request: &UpstreamRequest) -> &'static str {
    match (request.operation, request.stream) {
        (Operation::CountTokens, _) => "/v1internal:countTokens",
        (Operation::Generate, true) => "/v1internal:streamGenerateContent?alt=sse",
        (Operation::Generate, false) => "/v1internal:generateContent",
    }
}

/// Code Assist's count request: the Gemini body under `request`, naming its model there.
pub(super) fn count_tokens_body(model: &str, mut gemini: Map<String, Value>) -> Value {
    gemini.entry("model").or_insert_with(|| Value::String(format!("models/{model}")));
    serde_json::json!({ "request": gemini })
}

/// The answer with Code Assist's envelope removed. Errors and token counts carry none.
pub(super) fn code_assist_answer(response: reqwest::Response, request: &UpstreamRequest) -> UpstreamResponse {
    if !response.status().is_success() || request.operation == Operation::CountTokens {
        return pass_through(response);
    }
    if request.stream {
        rewritten(response, |body| map_sse_json(body, unwrap_code_assist_response))
    } else {
        rewritten(response, |body| map_json_body(body, unwrap_code_assist_response))
    }
}

/// The request body as a JSON object (executors build envelopes around it).
pub(super) fn json_object(body: &[u8]) -> Result<Map<String, Value>, ExecError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(ExecError::Unsupported("a Code Assist request body must be a JSON object".into())),
    }
}
