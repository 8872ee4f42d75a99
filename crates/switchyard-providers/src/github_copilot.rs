//! GitHub Copilot: GitHub's OAuth device flow for the Copilot app, then the GitHub token is
//! exchanged for short-lived Copilot API tokens on use; the upstream speaks OpenAI Chat for
//! every model (providers-extra §1, cpa-core §1.10).
//!
//! Login: device code (`read:user user:email`), polling where GitHub answers HTTP 200 with an
//! `error` member while pending, then `GET {user}` for the login, name and email, then one
//! Copilot token exchange to prove the account has Copilot (no subscription aborts the login).
//! The file `github-copilot-<login>.json` holds the GitHub token only: it does not expire, so
//! there is no refresh lead; a refresh re-validates it with an exchange (401 = needs re-login)
//! and changes nothing in the file.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header;
use serde_json::{Map, Value};
use switchyard_auth::Credential;
use switchyard_auth::login::{
    DeviceAuthorization, DeviceLogin, DevicePoll, DeviceSpec, Login, LoginContext, LoginError, LoginOptions,
    LoginOutcome, RefreshError, TokenRefresher,
};

use crate::device_http::{self, RFC8628};
use crate::exec::copilot::{self as api, COPILOT_TOKEN_URL, ExchangeError, PROVIDER, USER_AGENT, Want};
use crate::oauth_http::{self, Wording, str_at};
use crate::{Endpoint, LoginKind, LoginMethod, ModelInfo, Provider, dialect};

/// GitHub Copilot's public OAuth app.
const CLIENT_ID: &str = "Iv1.b507a08c87ecfe98";
const SCOPE: &str = "read:user user:email";
const DEVICE_URL: &str = "https://github.com/login/device/code";
const TOKEN_URL: &str = "https://github.com/login/oauth/access_token";
const USER_URL: &str = "https://api.github.com/user";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// GitHub device codes live 15 minutes; the engine never waits longer either.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);

const ENDPOINTS: &[Endpoint] = &[
    Endpoint { name: "device", default: DEVICE_URL },
    Endpoint { name: "token", default: TOKEN_URL },
    Endpoint { name: "user", default: USER_URL },
    Endpoint { name: "copilot-token", default: COPILOT_TOKEN_URL },
    Endpoint { name: "api", default: api::API_URL },
    Endpoint { name: "quota", default: crate::quota::copilot::QUOTA_URL },
];

pub struct GithubCopilot;

impl Provider for GithubCopilot {
    fn id(&self) -> &'static str {
        PROVIDER
    }

    fn label(&self) -> &'static str {
        "GitHub Copilot"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &[PROVIDER]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    fn login_methods(&self) -> Vec<LoginMethod> {
        vec![LoginMethod {
            id: "device",
            aliases: &[],
            label: "GitHub device code",
            kind: LoginKind::Device,
            asks: &[],
            login: Login::Device(Arc::new(GithubCopilot)),
        }]
    }

    fn endpoints(&self) -> &'static [Endpoint] {
        ENDPOINTS
    }

    fn refresher(&self) -> Option<Arc<dyn TokenRefresher>> {
        Some(Arc::new(GithubCopilot))
    }

    fn executor(&self) -> Option<Arc<dyn crate::executor::Executor>> {
        Some(Arc::new(api::CopilotExecutor))
    }

    fn quota(&self) -> Option<Arc<dyn crate::quota::QuotaFetcher>> {
        Some(Arc::new(crate::quota::CopilotQuota))
    }

    /// The GitHub token in `access_token` is what the Copilot API token is minted from.
    fn required_fields(&self) -> &'static [crate::RequiredField] {
        &[crate::RequiredField { name: "access_token", present: |c| c.access_token().is_some() }]
    }
}

fn endpoint(ctx: &LoginContext, name: &str, default: &str) -> String {
    ctx.endpoint(PROVIDER, name, default)
}

#[async_trait::async_trait]
impl DeviceLogin for GithubCopilot {
    fn spec(&self) -> DeviceSpec<'_> {
        DeviceSpec { name: PROVIDER, aliases: &["copilot", "github"], state_prefix: "gh-", max_wait: MAX_WAIT }
    }

    async fn start(&self, ctx: &LoginContext, _options: &LoginOptions) -> Result<DeviceAuthorization, LoginError> {
        let request = ctx
            .http
            .post(endpoint(ctx, "device", DEVICE_URL))
            .header(header::ACCEPT, "application/json")
            .form(&[("client_id", CLIENT_ID), ("scope", SCOPE)]);
        let reply = oauth_http::send(request)
            .await
            .map_err(|e| LoginError::Provider(format!("GitHub device code request failed: {e}")))?;
        let body = match reply.json() {
            Some(Value::Object(body)) => body,
            _ => {
                return Err(LoginError::Provider(format!(
                    "GitHub answered the device code request with HTTP {} and no JSON object",
                    reply.status.as_u16()
                )));
            }
        };
        // GitHub refuses with HTTP 200 and an `error` member (e.g. `device_flow_disabled`).
        if body.contains_key("error") || !reply.status.is_success() {
            let answer = oauth_http::Standard.error_answer(&reply);
            return Err(LoginError::Provider(format!("GitHub refused the device code request: {answer}")));
        }
        device_http::device_authorization(&body, RFC8628, MAX_WAIT)
    }

    async fn poll(&self, ctx: &LoginContext, device: &DeviceAuthorization) -> Result<DevicePoll, LoginError> {
        let form =
            [("client_id", CLIENT_ID), ("device_code", device.device_code.as_str()), ("grant_type", DEVICE_GRANT)];
        let request =
            ctx.http.post(endpoint(ctx, "token", TOKEN_URL)).header(header::ACCEPT, "application/json").form(&form);
        device_http::poll_token(request).await
    }

    async fn finish(
        &self,
        ctx: &LoginContext,
        _device: &DeviceAuthorization,
        grant: Map<String, Value>,
        _options: &LoginOptions,
    ) -> Result<LoginOutcome, LoginError> {
        let grant = Value::Object(grant);
        let token = str_at(&grant, &["access_token"])
            .ok_or_else(|| LoginError::TokenExchange("GitHub's token answer has no access_token".into()))?;
        let user = fetch_user(ctx, token).await?;
        // One exchange proves the account has Copilot; the token it yields is cached for use.
        api::api_token(&ctx.http, &ctx.config, token, Want::Exchanged).await.map_err(|failure| match failure {
            ExchangeError::NoSubscription(_) => LoginError::Provider(failure.to_string()),
            other => LoginError::Provider(format!("cannot verify the Copilot subscription: {other}")),
        })?;

        let mut credential = Credential::new(PROVIDER);
        let fields = credential.fields_mut();
        fields.insert("username".into(), user.login.clone().into());
        fields.insert("email".into(), user.email.unwrap_or_default().into());
        fields.insert("name".into(), user.name.unwrap_or_default().into());
        fields.insert("access_token".into(), token.into());
        fields.insert("token_type".into(), str_at(&grant, &["token_type"]).unwrap_or("bearer").into());
        fields.insert("scope".into(), str_at(&grant, &["scope"]).unwrap_or_default().into());
        fields.insert("timestamp".into(), chrono::Utc::now().timestamp_millis().into());
        Ok(LoginOutcome { file_name: format!("{PROVIDER}-{}.json", user.login), credential })
    }
}

/// The GitHub account behind a token.
struct GithubUser {
    login: String,
    email: Option<String>,
    name: Option<String>,
}

async fn fetch_user(ctx: &LoginContext, token: &str) -> Result<GithubUser, LoginError> {
    let request = ctx
        .http
        .get(endpoint(ctx, "user", USER_URL))
        .bearer_auth(token)
        .header(header::ACCEPT, "application/json")
        .header(header::USER_AGENT, USER_AGENT);
    let reply = oauth_http::send(request).await.map_err(LoginError::Identity)?;
    if !reply.status.is_success() {
        return Err(LoginError::Identity(format!("GitHub's user endpoint answered HTTP {}", reply.status.as_u16())));
    }
    let body = reply.json().ok_or_else(|| LoginError::Identity("GitHub's user endpoint answered no JSON".into()))?;
    let login =
        str_at(&body, &["login"]).ok_or_else(|| LoginError::Identity("GitHub's user answer has no login".into()))?;
    // GitHub logins are letters, digits and hyphens; anything else must not reach a file name.
    if !login.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err(LoginError::Identity(format!("GitHub login {login:?} is not a valid GitHub user name")));
    }
    let text = |key: &str| str_at(&body, &[key]).map(str::to_owned);
    Ok(GithubUser { login: login.to_owned(), email: text("email"), name: text("name") })
}

#[async_trait::async_trait]
impl TokenRefresher for GithubCopilot {
    /// The GitHub token does not expire; Copilot tokens are renewed by the executor on use.
    fn refresh_lead(&self) -> Option<Duration> {
        None
    }

    /// Re-validates the GitHub token with one Copilot token exchange. Nothing in the file
    /// changes, so the map is empty (the store then leaves the file byte for byte as it was).
    async fn refresh(&self, ctx: &LoginContext, credential: &Credential) -> Result<Map<String, Value>, RefreshError> {
        let token = credential.access_token().ok_or(RefreshError::NoRefreshToken)?;
        match api::api_token(&ctx.http, &ctx.config, token, Want::Exchanged).await {
            Ok(_) => Ok(Map::new()),
            Err(ExchangeError::Rejected) => Err(RefreshError::Revoked(
                "GitHub no longer accepts the account's token (HTTP 401); log in again".into(),
            )),
            Err(ExchangeError::RateLimited { retry_after }) => Err(RefreshError::RateLimited { retry_after }),
            Err(other) => Err(RefreshError::Transient(other.to_string())),
        }
    }
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("gpt-4.1", "GPT-4.1"),
    model("gpt-5", "GPT-5"),
    model("gpt-5-mini", "GPT-5 mini"),
    model("gpt-5-codex", "GPT-5 Codex"),
    model("gpt-5.1", "GPT-5.1"),
    model("gpt-5.1-codex", "GPT-5.1 Codex"),
    model("gpt-5.1-codex-mini", "GPT-5.1 Codex mini"),
    model("claude-haiku-4.5", "Claude Haiku 4.5"),
    model("claude-opus-4.1", "Claude Opus 4.1"),
    model("claude-opus-4.5", "Claude Opus 4.5"),
    model("claude-sonnet-4", "Claude Sonnet 4"),
    model("claude-sonnet-4.5", "Claude Sonnet 4.5"),
    model("gemini-2.5-pro", "Gemini 2.5 Pro"),
    model("gemini-3-pro", "Gemini 3 Pro"),
    model("grok-code-fast-1", "Grok Code Fast 1"),
    model("raptor-mini", "Raptor mini"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, PROVIDER, dialect::OPENAI)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_have_the_real_defaults() {
        let names: Vec<(&str, &str)> = GithubCopilot.endpoints().iter().map(|e| (e.name, e.default)).collect();
        assert_eq!(
            names,
            [
                ("device", "https://github.com/login/device/code"),
                ("token", "https://github.com/login/oauth/access_token"),
                ("user", "https://api.github.com/user"),
                ("copilot-token", "https://api.github.com/copilot_internal/v2/token"),
                ("api", "https://api.githubcopilot.com"),
                ("quota", "https://api.github.com/copilot_internal/user"),
            ]
        );
    }

    #[test]
    fn the_device_login_answers_to_its_aliases() {
        let spec = DeviceLogin::spec(&GithubCopilot);
        assert!(["github-copilot", "copilot", "GitHub"].iter().all(|n| spec.answers_to(n)));
        assert_eq!((spec.state_prefix, spec.max_wait), ("gh-", Duration::from_secs(900)));
        assert_eq!(GithubCopilot.refresher().unwrap().refresh_lead(), None);
    }
}
