//! Any OpenAI-compatible Chat Completions API (`openai-compatibility` entries): `POST
//! <base-url>/chat/completions` with the key as Bearer and the entry's own headers. Bodies and
//! answers pass through untouched.

use switchyard_dialects::Dialect;

use super::{Headers, own_base, pass_through, post, send};
use crate::executor::{ExecContext, ExecError, Executor, Operation, UpstreamAuth, UpstreamRequest, UpstreamResponse};

pub struct OpenAiCompatExecutor;

#[async_trait::async_trait]
impl Executor for OpenAiCompatExecutor {
    fn dialect(&self) -> Dialect {
        Dialect::OpenAiChat
    }

    async fn execute(
        &self,
        ctx: &ExecContext,
        auth: &UpstreamAuth<'_>,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, ExecError> {
        if request.operation == Operation::CountTokens {
            return Err(ExecError::Unsupported("Chat Completions APIs cannot count tokens".into()));
        }
        let (token, base) = match auth {
            UpstreamAuth::ApiKey { key, base_url, .. } => (*key, own_base(*base_url)),
            UpstreamAuth::OAuth { access_token, credential } => (*access_token, credential.str_field("base_url")),
            UpstreamAuth::Stored { .. } => return Err(super::stored_not_supported()),
        };
        let base =
            base.ok_or_else(|| ExecError::Credential("an OpenAI-compatible upstream needs a base-url".into()))?;
        let mut headers = Headers::default();
        // Local servers often take no key at all.
        if !token.trim().is_empty() {
            headers.secret("authorization", &format!("Bearer {}", token.trim()))?;
        }
        headers.set("content-type", "application/json")?;
        headers.set("accept", if request.stream { "text/event-stream" } else { "application/json" })?;
        if let UpstreamAuth::ApiKey { headers: extra, .. } = auth {
            headers.extra(extra)?;
        }
        let response = send(post(ctx, base, "/chat/completions").headers(headers.0).body(request.body)).await?;
        Ok(pass_through(response))
    }
}
