//! Vertex AI with a service account (CPA §4.6):
//! `POST {api}/v1/projects/<project>/locations/<location>/publishers/google/models/<model>:<action>`
//! with a Bearer token minted from the auth file's key (cached in memory, see
//! `vertex::token_cache`). Bodies and answers are plain Gemini and pass through untouched.
//!
//! A 401 drops the token it was sent with; when that token came from the cache (it may have
//! been revoked early), the request is sent once more with a freshly minted one.

use serde_json::{Map, Value};
use switchyard_auth::Credential;
use switchyard_dialects::Dialect;

use super::{Headers, join, pass_through, send};
use crate::executor::{
    ExecContext, ExecError, Executor, Operation, TokenSource, UpstreamAuth, UpstreamRequest, UpstreamResponse,
};
use crate::vertex::service_account::ServiceAccount;
use crate::vertex::token_cache::{self, CacheKey, MintError};
use crate::vertex::{API_BASE_TEMPLATE, DEFAULT_LOCATION, TOKEN_URL, check_location};

const PROVIDER: &str = "vertex";
/// The location whose host has no region in it.
const GLOBAL: &str = "global";

pub struct VertexExecutor;

#[async_trait::async_trait]
impl Executor for VertexExecutor {
    fn dialect(&self) -> Dialect {
        Dialect::Gemini
    }

    fn token_source(&self) -> TokenSource {
        TokenSource::Credential
    }

    async fn execute(
        &self,
        ctx: &ExecContext,
        auth: &UpstreamAuth<'_>,
        request: UpstreamRequest,
    ) -> Result<UpstreamResponse, ExecError> {
        let UpstreamAuth::Stored { credential } = auth else {
            return Err(ExecError::Credential("Vertex AI service accounts authenticate from their auth file".into()));
        };
        let account = Account::read(credential)?;
        let token_url = token_url(ctx, &account.key);
        let cache_key = CacheKey::new(&account.email, account.key_id(), &token_url);
        let base = vertex_base(&ctx.endpoint(PROVIDER, "api", API_BASE_TEMPLATE), &account.location);
        let url = join(&base, &model_path(&account.project, &account.location, &request));
        let mut retried = false;
        loop {
            let token = token_cache::access_token(&ctx.http, cache_key, &token_url, || {
                ServiceAccount::from_key(&account.key).map_err(|problem| problem.to_string())
            })
            .await
            .map_err(|error| mint_error(&account.email, error))?;
            let mut headers = Headers::default();
            headers.secret("authorization", &format!("Bearer {}", token.value))?;
            headers.set("content-type", "application/json")?;
            headers.set("accept", if request.stream { "text/event-stream" } else { "application/json" })?;
            let response = send(ctx.http.post(&url).headers(headers.0).body(request.body.clone())).await?;
            if response.status() == reqwest::StatusCode::UNAUTHORIZED {
                token_cache::forget(cache_key, &token.value).await;
                if !token.fresh && !retried {
                    retried = true;
                    continue;
                }
            }
            return Ok(pass_through(response));
        }
    }
}

/// What a request needs from a Vertex auth file.
struct Account {
    project: String,
    location: String,
    email: String,
    key: Map<String, Value>,
}

impl Account {
    fn read(credential: &Credential) -> Result<Account, ExecError> {
        let broken = |why: &str| ExecError::Credential(format!("the Vertex auth file {why}; import the key again"));
        let Some(Value::Object(key)) = credential.fields().get("service_account") else {
            return Err(broken("has no service_account object"));
        };
        let key_text = |name: &str| key.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
        let project = credential
            .project_id()
            .or_else(|| key_text("project_id"))
            .ok_or_else(|| broken("has no project_id"))?
            .to_owned();
        let email = key_text("client_email").ok_or_else(|| broken("has no service_account.client_email"))?.to_owned();
        let location = credential.str_field("location").unwrap_or(DEFAULT_LOCATION).to_owned();
        // The file may have been edited by hand; the location becomes part of a host name.
        check_location(&location).map_err(ExecError::Credential)?;
        Ok(Account { project, location, email, key: key.clone() })
    }

    fn key_id(&self) -> Option<&str> {
        self.key.get("private_key_id").and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
    }
}

/// `upstream-urls.vertex.token` when configured; else the key's own `token_uri` when it is an
/// `https://` URL (Google's libraries honour it too); else Google's token endpoint.
fn token_url(ctx: &ExecContext, key: &Map<String, Value>) -> String {
    if let Some(configured) = ctx.config.upstream_url(PROVIDER, "token") {
        return configured.to_owned();
    }
    key.get("token_uri")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|uri| uri.starts_with("https://"))
        .unwrap_or(TOKEN_URL)
        .to_owned()
}

/// The API base for `location` from a `upstream-urls.vertex.api` value (or the default
/// template): for `global`, `{location}-` is removed (Google's global host has no region);
/// then every `{location}` becomes the location. A value without `{location}` is used as is,
/// whatever the location.
pub(super) fn vertex_base(template: &str, location: &str) -> String {
    let template = if location == GLOBAL { template.replace("{location}-", "") } else { template.to_owned() };
    template.replace("{location}", location)
}

/// `/v1/projects/<p>/locations/<loc>/publishers/google/models/<m>:<action>[?alt=sse]`.
fn model_path(project: &str, location: &str, request: &UpstreamRequest) -> String {
    let action = match (request.operation, request.stream) {
        (Operation::CountTokens, _) => "countTokens",
        (Operation::Generate, true) => "streamGenerateContent?alt=sse",
        (Operation::Generate, false) => "generateContent",
    };
    let model = request.model.strip_prefix("models/").unwrap_or(&request.model);
    format!("/v1/projects/{project}/locations/{location}/publishers/google/models/{model}:{action}")
}

fn mint_error(email: &str, error: MintError) -> ExecError {
    match error {
        MintError::Refused(text) => {
            ExecError::Credential(format!("Google refused the service account {email}: {text}"))
        }
        MintError::Unavailable(text) => ExecError::Connect(format!("cannot mint a Vertex AI access token: {text}")),
        MintError::Key(text) => ExecError::Credential(format!("the Vertex auth file of {email} is unusable: {text}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bases_fill_the_location_and_drop_it_for_global() {
        assert_eq!(vertex_base(API_BASE_TEMPLATE, "us-central1"), "https://us-central1-aiplatform.googleapis.com");
        assert_eq!(vertex_base(API_BASE_TEMPLATE, "global"), "https://aiplatform.googleapis.com");
        assert_eq!(vertex_base("http://127.0.0.1:9/{location}/v", "europe-west4"), "http://127.0.0.1:9/europe-west4/v");
        assert_eq!(vertex_base("http://127.0.0.1:9/{location}/v", "global"), "http://127.0.0.1:9/global/v");
        assert_eq!(vertex_base("http://127.0.0.1:9", "europe-west4"), "http://127.0.0.1:9");
    }
}
