//! The public Gemini API for `gemini-api-key` keys, and Vertex AI's express mode for
//! `vertex-api-key` keys (spec §4.6): `…/models/<model>:<action>` with `x-goog-api-key`.
//! Bodies and answers are plain Gemini and pass through untouched.

use switchyard_dialects::Dialect;

use super::{Headers, join, own_base, pass_through, send};
use crate::executor::{ExecContext, ExecError, Executor, Operation, UpstreamAuth, UpstreamRequest, UpstreamResponse};

/// One of the two Google APIs that take a Gemini body and an API key.
pub struct GeminiApiExecutor {
    /// `upstream-urls` provider key.
    provider: &'static str,
    pub(super) default_base: &'static str,
    /// Path up to the model name.
    models_path: &'static str,
    /// The base is a Vertex template whose `{location}` is filled with `global`.
    vertex_template: bool,
}

impl GeminiApiExecutor {
    pub const GEMINI: GeminiApiExecutor = GeminiApiExecutor {
        provider: "gemini",
        default_base: "https://generativelanguage.googleapis.com",
        models_path: "/v1beta/models/",
        vertex_template: false,
    };
    pub const VERTEX: GeminiApiExecutor = GeminiApiExecutor {
        provider: "vertex",
        default_base: crate::vertex::API_BASE_TEMPLATE,
        models_path: "/v1/publishers/google/models/",
        vertex_template: true,
    };
}

#[async_trait::async_trait]
impl Executor for GeminiApiExecutor {
    fn dialect(&self) -> Dialect {
        Dialect::Gemini
    }

    async fn execute(
        &self,
        ctx: &ExecContext,
        auth: &UpstreamAuth<'_>,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, ExecError> {
        let mut headers = Headers::default();
        let base = match auth {
            UpstreamAuth::ApiKey { key, base_url, .. } => {
                headers.secret("x-goog-api-key", key)?;
                own_base(*base_url).map(str::to_owned)
            }
            UpstreamAuth::OAuth { access_token, credential } => {
                headers.secret("authorization", &format!("Bearer {access_token}"))?;
                credential.str_field("base_url").map(str::to_owned)
            }
            UpstreamAuth::Stored { .. } => return Err(super::stored_not_supported()),
        }
        .unwrap_or_else(|| {
            let configured = ctx.endpoint(self.provider, "api", self.default_base);
            // Express mode has no region: the shared `vertex.api` value is read for `global`.
            if self.vertex_template { super::vertex::vertex_base(&configured, "global") } else { configured }
        });
        let action = match (request.operation, request.stream) {
            (Operation::CountTokens, _) => "countTokens",
            (Operation::Generate, true) => "streamGenerateContent?alt=sse",
            (Operation::Generate, false) => "generateContent",
        };
        let model = request.model.strip_prefix("models/").unwrap_or(&request.model);
        let url = join(&base, &format!("{}{model}:{action}", self.models_path));
        headers.set("content-type", "application/json")?;
        headers.set("accept", if request.stream { "text/event-stream" } else { "application/json" })?;
        if let UpstreamAuth::ApiKey { headers: extra, .. } = auth {
            headers.extra(extra)?;
        }
        let response = send(ctx.http.post(url).headers(headers.0).body(request.body)).await?;
        Ok(pass_through(response))
    }
}
