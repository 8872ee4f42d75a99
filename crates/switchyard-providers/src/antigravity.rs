//! Antigravity: Google OAuth for the Antigravity IDE. Every model, Claude ones included, goes
//! upstream in the Gemini envelope, hence one dialect.
//!
//! Login: Google authorization code (client secret, no PKCE), userinfo v2 for the email, then
//! project discovery through Code Assist (`loadCodeAssist`, else `onboardUser` polled up to five
//! times, 2 s apart; login option `onboard_poll_ms` overrides). A failed discovery only warns: the
//! file is saved without `project_id`. Refresh runs 5 minutes before expiry.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::header::{ACCEPT, USER_AGENT};
use serde_json::{Map, Value, json};
use switchyard_auth::Credential;
use switchyard_auth::login::{
    AuthorizeRequest, BrowserLogin, LoginContext, LoginError, LoginOutcome, LoginSpec, RefreshError, TokenRefresher,
};

use crate::google_oauth::{self, OAuthClient, Tokens};
use crate::oauth_http::rfc3339;
use crate::{ModelInfo, Provider, dialect};

pub struct Antigravity;

impl Provider for Antigravity {
    fn id(&self) -> &'static str {
        PROVIDER
    }

    fn label(&self) -> &'static str {
        "Antigravity"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &[PROVIDER]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    fn browser_login(&self) -> Option<Arc<dyn BrowserLogin>> {
        Some(Arc::new(Antigravity))
    }

    fn endpoints(&self) -> &'static [crate::Endpoint] {
        ENDPOINTS
    }

    fn refresher(&self) -> Option<Arc<dyn TokenRefresher>> {
        Some(Arc::new(Antigravity))
    }

    fn executor(&self) -> Option<Arc<dyn crate::executor::Executor>> {
        Some(Arc::new(crate::exec::AntigravityExecutor))
    }

    fn quota(&self) -> Option<Arc<dyn crate::quota::QuotaFetcher>> {
        Some(Arc::new(crate::quota::AntigravityQuota))
    }
}

const PROVIDER: &str = "antigravity";

/// The Antigravity IDE's public installed-app client.
const CLIENT: OAuthClient = OAuthClient {
    id: "1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com",
    secret: "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",
    scopes: &[
        "https://www.googleapis.com/auth/cloud-platform",
        "https://www.googleapis.com/auth/userinfo.email",
        "https://www.googleapis.com/auth/userinfo.profile",
        "https://www.googleapis.com/auth/cclog",
        "https://www.googleapis.com/auth/experimentsandconfigs",
    ],
};

// Built-in endpoints; `upstream-urls.antigravity.<key>` overrides each.
const AUTHORIZE_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
const USERINFO_URL: &str = "https://www.googleapis.com/oauth2/v2/userinfo?alt=json";
const CODE_ASSIST_URL: &str = "https://cloudcode-pa.googleapis.com";
/// The IDE onboards against the daily channel.
const ONBOARD_URL: &str = "https://daily-cloudcode-pa.googleapis.com";
/// Every URL Antigravity logins and requests call, by its `upstream-urls.antigravity` key. The
/// executor tries `daily`, then `prod`; a configured `api` replaces both.
const ENDPOINTS: &[crate::Endpoint] = &[
    crate::Endpoint { name: "authorize", default: AUTHORIZE_URL },
    crate::Endpoint { name: "token", default: TOKEN_URL },
    crate::Endpoint { name: "userinfo", default: USERINFO_URL },
    crate::Endpoint { name: "code-assist", default: CODE_ASSIST_URL },
    crate::Endpoint { name: "onboard", default: ONBOARD_URL },
    crate::Endpoint { name: "daily", default: "https://daily-cloudcode-pa.sandbox.googleapis.com" },
    crate::Endpoint { name: "prod", default: "https://cloudcode-pa.googleapis.com" },
    crate::Endpoint { name: "quota", default: "https://cloudcode-pa.googleapis.com" },
];

const REFRESH_LEAD: Duration = Duration::from_secs(5 * 60);
const ONBOARD_POLL: Duration = Duration::from_secs(2);
const ONBOARD_MAX_POLLS: u32 = 5;
/// Tier used when `loadCodeAssist` names neither a default nor a current one.
const FALLBACK_TIER: &str = "free-tier";

// What the Antigravity hub identifies as (CPA's fallback version when its updater is unreachable).
const IDE_VERSION: &str = "2.9.1";
const HUB_USER_AGENT: &str = "antigravity/hub/2.9.1 darwin/arm64";
const ONBOARD_USER_AGENT: &str = "antigravity/hub/2.9.1 darwin/arm64 google-api-nodejs-client/10.3.0";
const ONBOARD_API_CLIENT: &str = "gl-node/22.21.1";

#[async_trait::async_trait]
impl BrowserLogin for Antigravity {
    fn spec(&self) -> LoginSpec<'_> {
        LoginSpec {
            name: PROVIDER,
            aliases: &["anti-gravity"],
            callback_route: PROVIDER,
            default_callback_port: 51121,
            callback_path: "/oauth-callback",
            pkce: false,
        }
    }

    fn authorize_url(&self, ctx: &LoginContext, request: &AuthorizeRequest<'_>) -> Result<String, LoginError> {
        google_oauth::authorize_url(&ctx.endpoint(PROVIDER, "authorize", AUTHORIZE_URL), &CLIENT, request)
    }

    async fn finish(
        &self,
        ctx: &LoginContext,
        code: &str,
        request: &AuthorizeRequest<'_>,
    ) -> Result<LoginOutcome, LoginError> {
        let token_url = ctx.endpoint(PROVIDER, "token", TOKEN_URL);
        let tokens = google_oauth::exchange_code(&ctx.http, &token_url, &CLIENT, code, request.redirect_uri).await?;
        let userinfo_url = ctx.endpoint(PROVIDER, "userinfo", USERINFO_URL);
        let email = google_oauth::fetch_email(&ctx.http, &userinfo_url, &tokens.access_token).await?;

        let poll = google_oauth::poll_interval(request.options, ONBOARD_POLL);
        let project_id = match discover_project(ctx, &tokens.access_token, poll).await {
            Ok(project) => Some(project),
            Err(error) => {
                // The executor can still work without it; CPA saves the login either way.
                tracing::warn!(%error, "Antigravity project discovery failed; saving the login without project_id");
                None
            }
        };
        Ok(LoginOutcome {
            file_name: format!("antigravity-{email}.json"),
            credential: credential(&tokens, &email, project_id.as_deref()),
        })
    }
}

#[async_trait::async_trait]
impl TokenRefresher for Antigravity {
    fn refresh_lead(&self) -> Option<Duration> {
        Some(REFRESH_LEAD)
    }

    async fn refresh(&self, ctx: &LoginContext, credential: &Credential) -> Result<Map<String, Value>, RefreshError> {
        let refresh_token = credential.refresh_token().ok_or(RefreshError::NoRefreshToken)?;
        let token_url = ctx.endpoint(PROVIDER, "token", TOKEN_URL);
        let tokens = google_oauth::refresh(&ctx.http, &token_url, &CLIENT, refresh_token).await?;
        let mut update = token_fields(&tokens);
        update.insert("last_refresh".into(), json!(rfc3339(Utc::now())));
        Ok(update)
    }
}

/// The account's Code Assist project: the one `loadCodeAssist` reports, else the one onboarding
/// assigns. Errors are texts for the warning log.
async fn discover_project(ctx: &LoginContext, access_token: &str, poll: Duration) -> Result<String, String> {
    let base = ctx.endpoint(PROVIDER, "code-assist", CODE_ASSIST_URL);
    let load_request = ctx
        .http
        .post(format!("{}/v1internal:loadCodeAssist", base.trim_end_matches('/')))
        .bearer_auth(access_token)
        .header(ACCEPT, "*/*")
        .header(USER_AGENT, HUB_USER_AGENT)
        .json(&json!({"metadata": {"ideType": "ANTIGRAVITY"}}));
    let load = google_oauth::send_json(load_request).await.map_err(|e| format!("loadCodeAssist: {e}"))?;
    if let Some(project) =
        ["cloudaicompanionProject", "projectId", "project"].iter().find_map(|k| google_oauth::project_of(load.get(*k)))
    {
        return Ok(project);
    }

    let tier = google_oauth::default_tier(&load)
        .or_else(|| load.pointer("/currentTier/id").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| FALLBACK_TIER.into());
    let body = json!({
        "tier_id": tier,
        "metadata": {"ide_type": "ANTIGRAVITY", "ide_version": IDE_VERSION, "ide_name": "antigravity"},
    });
    let onboard_url =
        format!("{}/v1internal:onboardUser", ctx.endpoint(PROVIDER, "onboard", ONBOARD_URL).trim_end_matches('/'));
    let onboard = || {
        ctx.http
            .post(&onboard_url)
            .bearer_auth(access_token)
            .header(ACCEPT, "*/*")
            .header(USER_AGENT, ONBOARD_USER_AGENT)
            .header("X-Goog-Api-Client", ONBOARD_API_CLIENT)
            .json(&body)
    };
    let response =
        google_oauth::onboard_user(onboard, ONBOARD_MAX_POLLS, poll).await.map_err(|e| format!("onboardUser: {e}"))?;
    google_oauth::project_of(response.get("cloudaicompanionProject"))
        .ok_or_else(|| "onboardUser finished without a project".into())
}

/// The token keys a login writes and a refresh updates; `refresh_token` only when Google sent one.
fn token_fields(tokens: &Tokens) -> Map<String, Value> {
    let now = Utc::now();
    let mut fields = Map::new();
    fields.insert("access_token".into(), json!(tokens.access_token));
    if let Some(refresh_token) = &tokens.refresh_token {
        fields.insert("refresh_token".into(), json!(refresh_token));
    }
    fields.insert("expires_in".into(), json!(tokens.expires_in));
    fields.insert("timestamp".into(), json!(now.timestamp_millis()));
    fields.insert("expired".into(), json!(rfc3339(tokens.expiry(now))));
    fields
}

fn credential(tokens: &Tokens, email: &str, project_id: Option<&str>) -> Credential {
    let mut credential = Credential::new(PROVIDER);
    let fields = credential.fields_mut();
    fields.insert("email".into(), json!(email));
    fields.extend(token_fields(tokens));
    if let Some(project_id) = project_id {
        fields.insert("project_id".into(), json!(project_id));
    }
    fields.insert("disabled".into(), json!(false));
    credential
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("gemini-3-pro-preview", "Gemini 3 Pro Preview"),
    model("gemini-3-pro-image-preview", "Gemini 3 Pro Image Preview"),
    model("gemini-2.5-flash", "Gemini 2.5 Flash"),
    model("gemini-2.5-flash-lite", "Gemini 2.5 Flash Lite"),
    model("claude-sonnet-4-5", "Claude Sonnet 4.5"),
    model("claude-sonnet-4-5-thinking", "Claude Sonnet 4.5 Thinking"),
    model("claude-opus-4-5-thinking", "Claude Opus 4.5 Thinking"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "antigravity", dialect::GEMINI)
}
