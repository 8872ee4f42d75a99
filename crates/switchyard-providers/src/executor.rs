//! Calling an upstream API with a credential: the `Executor` each provider implements.
//! Executors speak their upstream's native dialect; translation happens before and after them.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::BoxStream;
use reqwest::header::HeaderMap;
use switchyard_auth::Credential;
use switchyard_config::Config;
use switchyard_dialects::Dialect;

/// What the request asks the model to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Generate,
    CountTokens,
}

/// A request in the executor's native dialect.
pub struct UpstreamRequest {
    pub operation: Operation,
    /// The dialect `body` is in when it is not [`Executor::dialect`]: the client's own, sent
    /// untranslated because the executor [`accepts`](Executor::accepts) it (e.g. Kimi takes
    /// OpenAI Chat and Anthropic Messages). `None` = [`Executor::dialect`].
    pub dialect: Option<Dialect>,
    /// Upstream model name (aliases and prefixes already resolved).
    pub model: String,
    pub stream: bool,
    /// Body in [`Executor::dialect`], ready to send (executors may wrap it, e.g. Code Assist).
    pub body: Bytes,
    /// The client's headers, for the few an upstream needs passed on (e.g. `anthropic-beta`,
    /// Codex session ids). Executors pick what they forward; never forward auth headers.
    pub client_headers: HeaderMap,
}

/// Whose authority the call uses.
pub enum UpstreamAuth<'a> {
    /// An OAuth credential from the auth dir, with a fresh access token.
    OAuth { access_token: &'a str, credential: &'a Credential },
    /// A key from config (`claude-api-key`, `gemini-api-key`, `openai-compatibility`, ...).
    ApiKey { key: &'a str, base_url: Option<&'a str>, headers: &'a [(String, String)] },
    /// An auth file whose executor authenticates from the file itself
    /// ([`TokenSource::Credential`]): an API key a login fetched, a service account it signs with.
    Stored { credential: &'a Credential },
}

/// Where an executor's upstream credential comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// The auth file's access token, renewed on demand by the refresher before each call
    /// ([`UpstreamAuth::OAuth`]).
    AccessToken,
    /// The executor derives what it sends from the auth file ([`UpstreamAuth::Stored`]); the
    /// refresher only keeps the file fresh in the background (and on a forced refresh after a 401).
    Credential,
}

/// The upstream's answer. For streams, `body` yields SSE bytes in the native dialect as they
/// arrive (envelopes such as Code Assist's `{"response": ...}` already removed).
pub struct UpstreamResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: BoxStream<'static, Result<Bytes, ExecError>>,
}

/// A failed call. `before_first_byte` failures may be retried on another credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// Could not connect, or the connection broke before any response byte.
    #[error("upstream connection failed: {0}")]
    Connect(String),
    #[error("upstream timed out")]
    Timeout,
    /// The body broke off mid-way (after the status was sent).
    #[error("upstream stream broke off: {0}")]
    Interrupted(String),
    /// The credential lacks something the upstream needs (e.g. no project id).
    #[error("{0}")]
    Credential(String),
    /// The upstream has no such operation (e.g. token counting on the ChatGPT Codex backend).
    #[error("not supported: {0}")]
    Unsupported(String),
}

/// What an executor gets besides the request.
#[derive(Clone)]
pub struct ExecContext {
    pub http: reqwest::Client,
    pub config: Arc<Config>,
}

impl ExecContext {
    /// `upstream-urls.<provider>.<endpoint>` from config, else the built-in default.
    pub fn endpoint(&self, provider: &str, endpoint: &str, default: &str) -> String {
        self.config.upstream_url(provider, endpoint).unwrap_or(default).to_owned()
    }
}

#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    /// The dialect `UpstreamRequest::body` must be in, and responses come back in.
    fn dialect(&self) -> Dialect;
    /// Whether the upstream also takes `dialect` natively; the pipeline then sends the client's
    /// request in its own dialect (no translation) and [`UpstreamRequest::dialect`] says so.
    fn accepts(&self, dialect: Dialect) -> bool {
        dialect == self.dialect()
    }
    /// How auth files of this executor authenticate.
    fn token_source(&self) -> TokenSource {
        TokenSource::AccessToken
    }
    async fn execute(
        &self,
        ctx: &ExecContext,
        auth: &UpstreamAuth<'_>,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, ExecError>;
}
