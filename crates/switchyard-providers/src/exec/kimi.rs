//! Kimi's coding API (spec §4.6), which speaks two dialects natively: OpenAI Chat at
//! `{api}/v1/chat/completions` (the executor's own dialect) and Anthropic Messages at
//! `{api}/v1/messages`, so Claude clients reach it untranslated. `api` is
//! `upstream-urls.kimi.api`, default `https://api.kimi.com/coding`. Every request carries the
//! login's `X-Msh-*` identity (its stored `device_id`) besides the Bearer token.

use switchyard_dialects::Dialect;

use super::{Headers, own_base, pass_through, post, send};
use crate::executor::{ExecContext, ExecError, Executor, Operation, UpstreamAuth, UpstreamRequest, UpstreamResponse};
use crate::kimi::{API_BASE, PROVIDER, VERSION, identity_headers, stored_device_id};

/// Anthropic's API version when the client names none.
const ANTHROPIC_VERSION: &str = "2023-06-01";

pub struct KimiExecutor;

/// A fresh RFC 4122 v4 UUID: one per Kimi login (its `device_id`).
pub(crate) fn new_device_id() -> String {
    super::uuid_v4()
}

#[async_trait::async_trait]
impl Executor for KimiExecutor {
    fn dialect(&self) -> Dialect {
        Dialect::OpenAiChat
    }

    fn accepts(&self, dialect: Dialect) -> bool {
        matches!(dialect, Dialect::OpenAiChat | Dialect::AnthropicMessages)
    }

    async fn execute(
        &self,
        ctx: &ExecContext,
        auth: &UpstreamAuth<'_>,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, ExecError> {
        let (token, base, device_id) = match auth {
            UpstreamAuth::OAuth { access_token, credential } => {
                (*access_token, ctx.endpoint(PROVIDER, "api", API_BASE), stored_device_id(credential))
            }
            UpstreamAuth::ApiKey { key, base_url, .. } => (
                *key,
                own_base(*base_url).map_or_else(|| ctx.endpoint(PROVIDER, "api", API_BASE), str::to_owned),
                new_device_id(),
            ),
            UpstreamAuth::Stored { .. } => return Err(super::stored_not_supported()),
        };
        let anthropic = request.dialect == Some(Dialect::AnthropicMessages);
        let path = match (anthropic, request.operation) {
            (true, Operation::Generate) => "/v1/messages",
            (true, Operation::CountTokens) => "/v1/messages/count_tokens",
            (false, Operation::Generate) => "/v1/chat/completions",
            (false, Operation::CountTokens) => {
                return Err(ExecError::Unsupported("Kimi's OpenAI endpoint cannot count tokens".into()));
            }
        };
        let mut headers = Headers::default();
        headers.secret("authorization", &format!("Bearer {token}"))?;
        headers.set("content-type", "application/json")?;
        let streams = request.stream && request.operation == Operation::Generate;
        headers.set("accept", if streams { "text/event-stream" } else { "application/json" })?;
        headers.set("user-agent", &format!("CLIProxyAPI/{VERSION}"))?;
        for (name, value) in identity_headers(&device_id).await {
            headers.set(name, &value)?;
        }
        if anthropic {
            headers.set("anthropic-version", ANTHROPIC_VERSION)?;
            // The client's own choices win: its API version and betas.
            headers.forward(&request.client_headers, &["anthropic-version", "anthropic-beta"]);
        }
        if let UpstreamAuth::ApiKey { headers: extra, .. } = auth {
            headers.extra(extra)?;
        }
        let response = send(post(ctx, &base, path).headers(headers.0).body(request.body)).await?;
        Ok(pass_through(response))
    }
}
