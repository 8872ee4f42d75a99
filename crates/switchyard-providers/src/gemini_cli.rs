//! Gemini CLI: Google OAuth against Cloud Code Assist. CPA wrote its files as `type: "gemini"`, so
//! both types are ours.
//!
//! Login: Google authorization code (installed-app client, no PKCE), userinfo for the email, then
//! the Code Assist setup the real Gemini CLI performs: pick the project (login option
//! `project_id`: an id, a comma list, `ALL`, or empty for the first listed project), load Code
//! Assist, onboard the user (a long-running operation polled every 5 s; login option
//! `onboard_poll_ms` overrides), and make sure the Cloud AI Companion API is enabled.
//! Refresh happens on use only; Google never rotates the refresh token.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use reqwest::RequestBuilder;
use reqwest::header::USER_AGENT;
use serde_json::{Map, Value, json};
use switchyard_auth::Credential;
use switchyard_auth::login::{
    AuthorizeRequest, BrowserLogin, LoginContext, LoginError, LoginOutcome, LoginSpec, RefreshError, TokenRefresher,
};

use crate::google_oauth::{self, OAuthClient, Tokens};
use crate::oauth_http::{self, rfc3339};
use crate::{ModelInfo, Provider, dialect};

pub struct GeminiCli;

impl Provider for GeminiCli {
    fn id(&self) -> &'static str {
        PROVIDER
    }

    fn label(&self) -> &'static str {
        "Gemini CLI"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &[FILE_TYPE, "gemini-cli"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    fn browser_login(&self) -> Option<Arc<dyn BrowserLogin>> {
        Some(Arc::new(GeminiCli))
    }

    fn login_methods(&self) -> Vec<crate::LoginMethod> {
        const ASKS: &[crate::Ask] = &[crate::Ask {
            name: PROJECT_OPTION,
            label: "Google Cloud project id (a comma list, or ALL for every project; empty: the first one)",
            kind: crate::AskKind::Text,
            required: false,
            default: None,
        }];
        vec![crate::LoginMethod {
            id: "browser",
            aliases: &[],
            label: "Browser login",
            kind: crate::LoginKind::Browser,
            asks: ASKS,
            login: switchyard_auth::login::Login::Browser(Arc::new(GeminiCli)),
        }]
    }

    fn endpoints(&self) -> &'static [crate::Endpoint] {
        ENDPOINTS
    }

    fn refresher(&self) -> Option<Arc<dyn TokenRefresher>> {
        Some(Arc::new(GeminiCli))
    }

    fn executor(&self) -> Option<Arc<dyn crate::executor::Executor>> {
        Some(Arc::new(crate::exec::GeminiCliExecutor))
    }
}

const PROVIDER: &str = "gemini-cli";
const FILE_TYPE: &str = "gemini";

/// The Gemini CLI's public installed-app client.
const CLIENT: OAuthClient = OAuthClient {
    id: "681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com",
    secret: "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",
    scopes: &[
        "https://www.googleapis.com/auth/cloud-platform",
        "https://www.googleapis.com/auth/userinfo.email",
        "https://www.googleapis.com/auth/userinfo.profile",
    ],
};

// Built-in endpoints; `upstream-urls.gemini-cli.<key>` overrides each.
const AUTHORIZE_URL: &str = "https://accounts.google.com/o/oauth2/auth";
const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
const USERINFO_URL: &str = "https://www.googleapis.com/oauth2/v1/userinfo?alt=json";
const PROJECTS_URL: &str = "https://cloudresourcemanager.googleapis.com/v1/projects";
const CODE_ASSIST_URL: &str = "https://cloudcode-pa.googleapis.com";
const SERVICE_USAGE_URL: &str = "https://serviceusage.googleapis.com";
/// Every URL above by its `upstream-urls.gemini-cli` key (the executor calls `code-assist` too).
const ENDPOINTS: &[crate::Endpoint] = &[
    crate::Endpoint { name: "authorize", default: AUTHORIZE_URL },
    crate::Endpoint { name: "token", default: TOKEN_URL },
    crate::Endpoint { name: "userinfo", default: USERINFO_URL },
    crate::Endpoint { name: "projects", default: PROJECTS_URL },
    crate::Endpoint { name: "service-usage", default: SERVICE_USAGE_URL },
    crate::Endpoint { name: "code-assist", default: CODE_ASSIST_URL },
];

/// The API a project needs before Code Assist serves it.
const CLOUD_AI_SERVICE: &str = "cloudaicompanion.googleapis.com";
const PROJECT_OPTION: &str = "project_id";
const ALL_PROJECTS: &str = "ALL";
/// Tier used when `loadCodeAssist` marks none as default.
const FALLBACK_TIER: &str = "legacy-tier";
const ONBOARD_POLL: Duration = Duration::from_secs(5);
/// One minute of polling at the default interval.
const ONBOARD_MAX_POLLS: u32 = 12;

// Headers the real Gemini CLI sends to Code Assist.
const NODE_USER_AGENT: &str = "google-api-nodejs-client/9.15.1";
const API_CLIENT: &str = "gl-node/22.17.0";
const CLIENT_METADATA: &str = "ideType=IDE_UNSPECIFIED,platform=PLATFORM_UNSPECIFIED,pluginType=GEMINI";

#[async_trait::async_trait]
impl BrowserLogin for GeminiCli {
    fn spec(&self) -> LoginSpec<'_> {
        LoginSpec {
            name: PROVIDER,
            aliases: &["gemini", "google"],
            callback_route: "google",
            default_callback_port: 8085,
            callback_path: "/oauth2callback",
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

        let setup = Setup {
            ctx,
            access_token: &tokens.access_token,
            poll: google_oauth::poll_interval(request.options, ONBOARD_POLL),
        };
        let requested = request.options.get(PROJECT_OPTION).map(|p| p.trim()).filter(|p| !p.is_empty());
        let all = requested.is_some_and(|p| p.eq_ignore_ascii_case(ALL_PROJECTS));
        let candidates: Vec<String> = match requested {
            Some(_) if all => setup.list_projects().await?,
            Some(list) => list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect(),
            None => setup.list_projects().await?.into_iter().take(1).collect(),
        };

        let mut projects = Vec::new();
        if candidates.is_empty() {
            // No Cloud project to offer: take the one Code Assist manages for the account, if any.
            projects.push(setup.onboard(None).await?);
        }
        for candidate in &candidates {
            let project = setup.onboard(Some(candidate)).await?;
            if !projects.contains(&project) {
                projects.push(project);
            }
        }
        for project in &projects {
            setup.ensure_api_enabled(project).await?;
        }

        let project_id = projects.join(",");
        let file_project = if all || projects.len() > 1 { "all" } else { project_id.as_str() };
        Ok(LoginOutcome {
            file_name: format!("gemini-{email}-{file_project}.json"),
            credential: credential(&tokens, &token_url, &email, &project_id, requested.is_none()),
        })
    }
}

#[async_trait::async_trait]
impl TokenRefresher for GeminiCli {
    fn refresh_lead(&self) -> Option<Duration> {
        None
    }

    async fn refresh(&self, ctx: &LoginContext, credential: &Credential) -> Result<Map<String, Value>, RefreshError> {
        let refresh_token = credential.refresh_token().ok_or(RefreshError::NoRefreshToken)?;
        let token_url = ctx.endpoint(PROVIDER, "token", TOKEN_URL);
        let tokens = google_oauth::refresh(&ctx.http, &token_url, &CLIENT, refresh_token).await?;
        let refresh_token = tokens.refresh_token.as_deref().unwrap_or(refresh_token);
        let expiry = rfc3339(tokens.expiry(Utc::now()));

        // The refresher merges shallowly, so the whole `token` object goes back; starting from the
        // stored one keeps nested keys we do not manage.
        let mut token = credential.fields().get("token").and_then(Value::as_object).cloned().unwrap_or_default();
        token.insert("access_token".into(), json!(tokens.access_token));
        token.insert("token_type".into(), json!(tokens.token_type));
        token.insert("refresh_token".into(), json!(refresh_token));
        token.insert("expiry".into(), json!(expiry));
        token.insert("expires_in".into(), json!(tokens.expires_in));

        let mut update = Map::new();
        update.insert("token".into(), Value::Object(token));
        update.insert("access_token".into(), json!(tokens.access_token));
        update.insert("token_type".into(), json!(tokens.token_type));
        update.insert("refresh_token".into(), json!(refresh_token));
        update.insert("expiry".into(), json!(expiry));
        update.insert("last_refresh".into(), json!(rfc3339(Utc::now())));
        Ok(update)
    }
}

/// One login's Google Cloud calls, all made with the new access token.
struct Setup<'a> {
    ctx: &'a LoginContext,
    access_token: &'a str,
    poll: Duration,
}

impl Setup<'_> {
    /// Project ids of the account's Cloud projects, in Google's order.
    async fn list_projects(&self) -> Result<Vec<String>, LoginError> {
        let url = self.ctx.endpoint(PROVIDER, "projects", PROJECTS_URL);
        let listing = google_oauth::send_json(self.ctx.http.get(url).bearer_auth(self.access_token))
            .await
            .map_err(|e| onboarding_failed(format!("could not list Google Cloud projects: {e}")))?;
        // Google leaves `projects` out entirely when the list is empty.
        let projects = listing.get("projects").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
        Ok(projects.iter().filter_map(|p| google_oauth::project_of(p.get("projectId"))).collect())
    }

    /// Loads Code Assist and onboards the user to `requested` (else to the project Code Assist
    /// already has); returns the project to use.
    async fn onboard(&self, requested: Option<&str>) -> Result<String, LoginError> {
        let metadata =
            json!({"ideType": "IDE_UNSPECIFIED", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"});
        let mut load_body = json!({"metadata": metadata});
        if let Some(project) = requested {
            load_body["cloudaicompanionProject"] = json!(project);
        }
        let load = google_oauth::send_json(self.code_assist("loadCodeAssist").json(&load_body))
            .await
            .map_err(|e| onboarding_failed(format!("loadCodeAssist: {e}")))?;
        let tier = google_oauth::default_tier(&load).unwrap_or_else(|| FALLBACK_TIER.into());
        let project = match requested {
            Some(project) => project.to_owned(),
            None => google_oauth::project_of(load.get("cloudaicompanionProject")).ok_or_else(|| {
                LoginError::Provider(
                    "Failed to resolve project ID: the account has no Google Cloud project; pass project_id".into(),
                )
            })?,
        };

        let body = json!({"tierId": tier, "metadata": metadata, "cloudaicompanionProject": project});
        let response =
            google_oauth::onboard_user(|| self.code_assist("onboardUser").json(&body), ONBOARD_MAX_POLLS, self.poll)
                .await
                .map_err(|e| onboarding_failed(format!("onboardUser: {e}")))?;
        let onboarded = google_oauth::project_of(response.get("cloudaicompanionProject"));
        if requested.is_none() {
            return Ok(onboarded.unwrap_or(project));
        }
        if let Some(other) = onboarded.filter(|p| !p.eq_ignore_ascii_case(&project)) {
            tracing::warn!(requested = %project, returned = %other, "Gemini onboarding returned another project; keeping the requested one");
        }
        Ok(project)
    }

    /// Checks that the Cloud AI Companion API is enabled on `project`, enabling it if not.
    async fn ensure_api_enabled(&self, project: &str) -> Result<(), LoginError> {
        let base = self.ctx.endpoint(PROVIDER, "service-usage", SERVICE_USAGE_URL);
        let service = format!("{}/v1/projects/{project}/services/{CLOUD_AI_SERVICE}", base.trim_end_matches('/'));
        let verify_failed = |e: String| LoginError::Provider(format!("Failed to verify Cloud AI API status: {e}"));

        let status = oauth_http::send(self.service_usage(self.ctx.http.get(&service))).await.map_err(verify_failed)?;
        let enabled = status.status.is_success()
            && status.json().is_some_and(|s| s.get("state").and_then(Value::as_str) == Some("ENABLED"));
        if enabled {
            return Ok(());
        }

        let enable = self.ctx.http.post(format!("{service}:enable")).json(&json!({}));
        let answer = oauth_http::send(self.service_usage(enable)).await.map_err(verify_failed)?;
        let error = google_oauth::error_text(&answer);
        match answer.status.as_u16() {
            200 | 201 => {
                tracing::info!(project, "enabled the Cloud AI Companion API");
                Ok(())
            }
            400 if error.to_ascii_lowercase().contains("already enabled") => Ok(()),
            _ => Err(LoginError::Provider(format!("Cloud AI API not enabled for project {project}: {error}"))),
        }
    }

    fn code_assist(&self, method: &str) -> RequestBuilder {
        let base = self.ctx.endpoint(PROVIDER, "code-assist", CODE_ASSIST_URL);
        self.ctx
            .http
            .post(format!("{}/v1internal:{method}", base.trim_end_matches('/')))
            .bearer_auth(self.access_token)
            .header(USER_AGENT, NODE_USER_AGENT)
            .header("X-Goog-Api-Client", API_CLIENT)
            .header("Client-Metadata", CLIENT_METADATA)
    }

    fn service_usage(&self, request: RequestBuilder) -> RequestBuilder {
        request.bearer_auth(self.access_token).header(USER_AGENT, NODE_USER_AGENT)
    }
}

fn onboarding_failed(cause: String) -> LoginError {
    LoginError::Provider(format!("Failed to complete Gemini CLI onboarding: {cause}"))
}

/// CPA's Gemini file: the oauth2 token nested under `token`, mirrored at the top level.
fn credential(tokens: &Tokens, token_url: &str, email: &str, project_id: &str, auto: bool) -> Credential {
    let expiry = rfc3339(tokens.expiry(Utc::now()));
    let mut token = Map::new();
    token.insert("access_token".into(), json!(tokens.access_token));
    token.insert("token_type".into(), json!(tokens.token_type));
    if let Some(refresh_token) = &tokens.refresh_token {
        token.insert("refresh_token".into(), json!(refresh_token));
    }
    token.insert("expiry".into(), json!(expiry));
    token.insert("expires_in".into(), json!(tokens.expires_in));
    token.insert("token_uri".into(), json!(token_url));
    token.insert("client_id".into(), json!(CLIENT.id));
    token.insert("client_secret".into(), json!(CLIENT.secret));
    token.insert("scopes".into(), json!(CLIENT.scopes));
    token.insert("universe_domain".into(), json!("googleapis.com"));

    let mut credential = Credential::new(FILE_TYPE);
    let fields = credential.fields_mut();
    fields.insert("email".into(), json!(email));
    fields.insert("project_id".into(), json!(project_id));
    fields.insert("auto".into(), json!(auto));
    // Login fails unless the API check passed, so a saved file is always checked.
    fields.insert("checked".into(), json!(true));
    fields.insert("token".into(), Value::Object(token));
    fields.insert("access_token".into(), json!(tokens.access_token));
    fields.insert("token_type".into(), json!(tokens.token_type));
    if let Some(refresh_token) = &tokens.refresh_token {
        fields.insert("refresh_token".into(), json!(refresh_token));
    }
    fields.insert("expiry".into(), json!(expiry));
    credential
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("gemini-2.5-pro", "Gemini 2.5 Pro"),
    model("gemini-2.5-flash", "Gemini 2.5 Flash"),
    model("gemini-2.5-flash-lite", "Gemini 2.5 Flash Lite"),
    model("gemini-3-pro-preview", "Gemini 3 Pro Preview"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "google", dialect::GEMINI)
}
