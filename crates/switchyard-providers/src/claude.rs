//! Claude Code: Anthropic account OAuth (authorization code + PKCE); upstream speaks Anthropic
//! Messages.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header;
use serde_json::{Map, Value, json};
use switchyard_auth::Credential;
use switchyard_auth::login::{
    AuthorizeRequest, BrowserLogin, LoginContext, LoginError, LoginOutcome, LoginSpec, RefreshError, TokenRefresher,
    new_state,
};

use crate::oauth_http::{self, Standard, TokenResponse, str_at};
use crate::{ModelInfo, Provider, dialect};

/// Claude Code's public OAuth client.
const CLIENT_ID: &str = "9d1c250a-e61b-44d9-88ed-5944d1962f5e";
const SCOPE: &str = "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload";
const AUTHORIZE_URL: &str = "https://claude.ai/oauth/authorize";
const TOKEN_URL: &str = "https://platform.claude.com/v1/oauth/token";
const PROFILE_URL: &str = "https://api.anthropic.com/api/oauth/profile";
/// Every URL Claude logins and requests call, by its `upstream-urls.claude` key.
const ENDPOINTS: &[crate::Endpoint] = &[
    crate::Endpoint { name: "authorize", default: AUTHORIZE_URL },
    crate::Endpoint { name: "token", default: TOKEN_URL },
    crate::Endpoint { name: "profile", default: PROFILE_URL },
    crate::Endpoint { name: "api", default: "https://api.anthropic.com" },
    crate::Endpoint { name: "usage", default: crate::quota::claude::USAGE_URL },
];

/// Headers of the axios client Claude Code uses; the token endpoint sits behind bot detection.
/// `Accept-Encoding` is left to the HTTP client, which only sends encodings it can decode.
const AXIOS_ACCEPT: &str = "application/json, text/plain, */*";
const AXIOS_USER_AGENT: &str = "axios/1.15.2";

const REFRESH_LEAD: Duration = Duration::from_secs(4 * 60 * 60);
/// CPA blocks a rate-limited refresh token for `Retry-After`, clamped to this range.
const RATE_LIMIT_BLOCK: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(5 * 60));

pub struct Claude;

impl Provider for Claude {
    fn id(&self) -> &'static str {
        "claude"
    }

    fn label(&self) -> &'static str {
        "Claude Code"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["claude"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    fn browser_login(&self) -> Option<Arc<dyn BrowserLogin>> {
        Some(Arc::new(Claude))
    }

    fn endpoints(&self) -> &'static [crate::Endpoint] {
        ENDPOINTS
    }

    fn refresher(&self) -> Option<Arc<dyn TokenRefresher>> {
        Some(Arc::new(Claude))
    }

    fn executor(&self) -> Option<Arc<dyn crate::executor::Executor>> {
        Some(Arc::new(crate::exec::ClaudeExecutor))
    }

    fn quota(&self) -> Option<Arc<dyn crate::quota::QuotaFetcher>> {
        Some(Arc::new(crate::quota::ClaudeQuota))
    }
}

#[async_trait::async_trait]
impl BrowserLogin for Claude {
    fn spec(&self) -> LoginSpec<'_> {
        LoginSpec {
            name: "anthropic",
            aliases: &["claude"],
            callback_route: "anthropic",
            default_callback_port: 54545,
            callback_path: "/callback",
            pkce: true,
        }
    }

    fn authorize_url(&self, ctx: &LoginContext, request: &AuthorizeRequest<'_>) -> Result<String, LoginError> {
        let pkce = request.pkce.ok_or_else(missing_pkce)?;
        let base = ctx.endpoint("claude", "authorize", AUTHORIZE_URL);
        let params = [
            ("code", "true"),
            ("client_id", CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", request.redirect_uri),
            ("scope", SCOPE),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("state", request.state),
        ];
        crate::oauth_http::url_with_params("Claude authorize URL", &base, &params)
    }

    async fn finish(
        &self,
        ctx: &LoginContext,
        code: &str,
        request: &AuthorizeRequest<'_>,
    ) -> Result<LoginOutcome, LoginError> {
        let pkce = request.pkce.ok_or_else(missing_pkce)?;
        // Claude's copy-paste page shows `<code>#<state>`; the state after `#` is the one to send.
        let (code, code_state) = code.split_once('#').unwrap_or((code, ""));
        let state = if code_state.is_empty() { request.state } else { code_state };
        // Key order matters to the imitation of Claude Code: serde_json keeps insertion order.
        let body = json!({
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": request.redirect_uri,
            "client_id": CLIENT_ID,
            "code_verifier": pkce.verifier,
            "state": state,
        });
        let tokens = oauth_http::exchange(token_request(ctx, &body), &Standard).await?;

        let mut identity = Identity::from_tokens(&tokens);
        match fetch_profile(ctx, tokens.access_token()).await {
            Ok(profile) => identity.overlay_profile(&profile),
            Err(reason) => tracing::warn!(%reason, "Claude profile lookup failed; using the token response's identity"),
        }
        let email = identity
            .email
            .ok_or_else(|| LoginError::Identity("neither the token response nor the profile has an email".into()))?;

        let mut credential = Credential::new("claude");
        let fields = credential.fields_mut();
        let or_empty = |value: Option<String>| Value::String(value.unwrap_or_default());
        fields.insert("access_token".into(), tokens.access_token().into());
        fields.insert("refresh_token".into(), tokens.str("refresh_token").unwrap_or_default().into());
        fields.insert("id_token".into(), "".into());
        fields.insert("last_refresh".into(), oauth_http::now().into());
        fields.insert("email".into(), email.clone().into());
        fields.insert("account_uuid".into(), or_empty(identity.account_uuid));
        fields.insert("organization_uuid".into(), or_empty(identity.organization_uuid));
        fields.insert("organization_name".into(), or_empty(identity.organization_name));
        fields.insert("claude_device_ids".into(), json!([device_id()]));
        if let Some(expiry) = tokens.expiry() {
            fields.insert("expired".into(), expiry.into());
        }
        fields.insert("disabled".into(), false.into());
        Ok(LoginOutcome { file_name: format!("claude-{email}.json"), credential })
    }
}

#[async_trait::async_trait]
impl TokenRefresher for Claude {
    fn refresh_lead(&self) -> Option<Duration> {
        Some(REFRESH_LEAD)
    }

    async fn refresh(&self, ctx: &LoginContext, credential: &Credential) -> Result<Map<String, Value>, RefreshError> {
        let refresh_token = credential.refresh_token().ok_or(RefreshError::NoRefreshToken)?;
        let body = json!({
            "client_id": CLIENT_ID,
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "scope": SCOPE,
        });
        let tokens = oauth_http::refresh(token_request(ctx, &body), &Standard).await.map_err(|e| match e {
            RefreshError::RateLimited { retry_after } => RefreshError::RateLimited {
                retry_after: retry_after.map(|d| d.clamp(RATE_LIMIT_BLOCK.0, RATE_LIMIT_BLOCK.1)),
            },
            other => other,
        })?;

        let mut fields = Map::new();
        fields.insert("access_token".into(), tokens.access_token().into());
        // Without a new refresh token the old one stays valid (and stays in the file).
        if let Some(rotated) = tokens.str("refresh_token") {
            fields.insert("refresh_token".into(), rotated.into());
        }
        let identity = Identity::from_tokens(&tokens);
        let known = [
            ("email", identity.email),
            ("account_uuid", identity.account_uuid),
            ("organization_uuid", identity.organization_uuid),
            ("organization_name", identity.organization_name),
        ];
        for (key, value) in known {
            if let Some(value) = value {
                fields.insert(key.into(), value.into());
            }
        }
        if let Some(expiry) = tokens.expiry() {
            fields.insert("expired".into(), expiry.into());
        }
        fields.insert("last_refresh".into(), oauth_http::now().into());
        Ok(fields)
    }
}

fn missing_pkce() -> LoginError {
    LoginError::Provider("Claude login needs PKCE".into())
}

/// A POST of `body` to the token endpoint, dressed like Claude Code's axios client.
fn token_request(ctx: &LoginContext, body: &Value) -> reqwest::RequestBuilder {
    ctx.http
        .post(ctx.endpoint("claude", "token", TOKEN_URL))
        .header(header::ACCEPT, AXIOS_ACCEPT)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, AXIOS_USER_AGENT)
        .header(header::CONNECTION, "close")
        .json(body)
}

/// The account a token belongs to, as far as Anthropic told us.
struct Identity {
    email: Option<String>,
    account_uuid: Option<String>,
    organization_uuid: Option<String>,
    organization_name: Option<String>,
}

impl Identity {
    fn from_tokens(tokens: &TokenResponse) -> Identity {
        let json = tokens.json();
        let get = |path: &[&str]| str_at(json, path).map(str::to_owned);
        Identity {
            email: get(&["account", "email_address"]),
            account_uuid: get(&["account", "uuid"]),
            organization_uuid: get(&["organization", "uuid"]),
            organization_name: get(&["organization", "name"]),
        }
    }

    /// The profile endpoint is the fresher source: its values win where present.
    fn overlay_profile(&mut self, profile: &Value) {
        let fields = [
            (&mut self.email, ["account", "email"]),
            (&mut self.account_uuid, ["account", "uuid"]),
            (&mut self.organization_uuid, ["organization", "uuid"]),
            (&mut self.organization_name, ["organization", "name"]),
        ];
        for (field, path) in fields {
            if let Some(value) = str_at(profile, &path) {
                *field = Some(value.to_owned());
            }
        }
    }
}

/// `GET /api/oauth/profile`; the error text names the failure, never the token.
async fn fetch_profile(ctx: &LoginContext, access_token: &str) -> Result<Value, String> {
    let response = ctx
        .http
        .get(ctx.endpoint("claude", "profile", PROFILE_URL))
        .bearer_auth(access_token)
        .header(header::ACCEPT, "application/json")
        .timeout(oauth_http::TIMEOUT)
        .send()
        .await
        .map_err(|e| oauth_http::describe(&e))?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status().as_u16()));
    }
    response.json().await.map_err(|_| "malformed profile JSON".to_owned())
}

/// Claude Code's device id: 32 random bytes as lower-case hex, drawn as two login states (16
/// CSPRNG bytes each) since this crate has no randomness source of its own.
fn device_id() -> String {
    format!("{}{}", new_state(), new_state())
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("claude-opus-4-5", "Claude Opus 4.5"),
    model("claude-sonnet-4-5", "Claude Sonnet 4.5"),
    model("claude-haiku-4-5", "Claude Haiku 4.5"),
    model("claude-opus-4-1", "Claude Opus 4.1"),
    model("claude-sonnet-4", "Claude Sonnet 4"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "anthropic", dialect::CLAUDE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_ids_are_64_lower_hex_and_fresh_each_time() {
        let id = device_id();
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')), "{id}");
        assert_ne!(id, device_id());
    }
}
