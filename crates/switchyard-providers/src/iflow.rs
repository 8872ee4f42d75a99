//! iFlow (spec providers-extra §4, cpa-core §1.9): two ways to an account, both ending in an
//! iFlow **API key**, which is what chat calls use (never the OAuth token):
//!
//! - browser OAuth (authorization code, no PKCE, client credentials as form fields and HTTP
//!   Basic), then `getUserInfo?accessToken=` for the key and the identity (e-mail, else phone);
//! - a `BXAuth` cookie from a signed-in `platform.iflow.cn` session ([`cookie`]), which reads
//!   and renews the key on the platform's API-key endpoint.
//!
//! Refresh (lead 24 h) follows the file's kind: cookie files renew the key when it expires
//! within 48 h; OAuth files run the refresh grant and read the key again.

mod cookie;

use std::sync::Arc;
use std::time::Duration;

use reqwest::{RequestBuilder, header};
use serde_json::{Map, Value};
use switchyard_auth::Credential;
use switchyard_auth::login::{
    AuthorizeRequest, BrowserLogin, Login, LoginContext, LoginError, LoginOutcome, LoginSpec, RefreshError,
    TokenRefresher,
};

use crate::oauth_http::{self, Reply, Standard, str_at};
use crate::{Ask, AskKind, Endpoint, LoginKind, LoginMethod, ModelInfo, Provider, dialect};

pub use cookie::{IflowCookie, normalise_cookie, sanitise_file_part};

pub(crate) const PROVIDER: &str = "iflow";
/// The iFlow CLI's public OAuth client.
const CLIENT_ID: &str = "10009311001";
const CLIENT_SECRET: &str = "4Z3YjXycVsQvyGF1etiNlIBB4RsqSDtW";
/// Overrides [`CLIENT_SECRET`] (as in CPA).
const CLIENT_SECRET_ENV: &str = "IFLOW_CLIENT_SECRET";
const AUTHORIZE_URL: &str = "https://iflow.cn/oauth";
const TOKEN_URL: &str = "https://iflow.cn/oauth/token";
const USER_INFO_URL: &str = "https://iflow.cn/api/oauth/getUserInfo";
pub(crate) const API_BASE: &str = "https://apis.iflow.cn/v1";
const PLATFORM_API_KEY_URL: &str = "https://platform.iflow.cn/api/openapi/apikey";

const REFRESH_LEAD: Duration = Duration::from_secs(24 * 60 * 60);

static ENDPOINTS: &[Endpoint] = &[
    Endpoint { name: "authorize", default: AUTHORIZE_URL },
    Endpoint { name: "token", default: TOKEN_URL },
    Endpoint { name: "user-info", default: USER_INFO_URL },
    Endpoint { name: "api", default: API_BASE },
    Endpoint { name: "platform-api-key", default: PLATFORM_API_KEY_URL },
];

const COOKIE_ASK: Ask = Ask {
    name: "cookie",
    label: "Cookie of a signed-in platform.iflow.cn session (must contain BXAuth)",
    kind: AskKind::Secret,
    required: true,
    default: None,
};

pub struct Iflow;

impl Provider for Iflow {
    fn id(&self) -> &'static str {
        PROVIDER
    }

    fn label(&self) -> &'static str {
        "iFlow"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["iflow"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    fn browser_login(&self) -> Option<Arc<dyn BrowserLogin>> {
        Some(Arc::new(Iflow))
    }

    fn login_methods(&self) -> Vec<LoginMethod> {
        vec![
            LoginMethod {
                id: "browser",
                aliases: &["oauth"],
                label: "Browser login (phone)",
                kind: LoginKind::Browser,
                asks: &[],
                login: Login::Browser(Arc::new(Iflow)),
            },
            LoginMethod {
                id: "cookie",
                aliases: &[],
                label: "Browser cookie (BXAuth)",
                kind: LoginKind::Cookie,
                asks: &[COOKIE_ASK],
                login: Login::Import(Arc::new(IflowCookie)),
            },
        ]
    }

    fn endpoints(&self) -> &'static [Endpoint] {
        ENDPOINTS
    }

    fn refresher(&self) -> Option<Arc<dyn TokenRefresher>> {
        Some(Arc::new(Iflow))
    }

    /// Requests sign with `api_key`; the refresher gets a new one from a refresh token or a cookie.
    fn required_fields(&self) -> &'static [crate::RequiredField] {
        &[crate::RequiredField {
            name: "api_key, refresh_token or cookie",
            present: |c| {
                c.str_field("api_key").is_some() || c.refresh_token().is_some() || c.str_field("cookie").is_some()
            },
        }]
    }

    fn executor(&self) -> Option<Arc<dyn crate::executor::Executor>> {
        Some(Arc::new(crate::exec::iflow::IflowExecutor))
    }
}

#[async_trait::async_trait]
impl BrowserLogin for Iflow {
    fn spec(&self) -> LoginSpec<'_> {
        LoginSpec {
            name: PROVIDER,
            aliases: &[],
            callback_route: PROVIDER,
            default_callback_port: 11451,
            callback_path: "/oauth2callback",
            pkce: false,
        }
    }

    fn authorize_url(&self, ctx: &LoginContext, request: &AuthorizeRequest<'_>) -> Result<String, LoginError> {
        let base = ctx.endpoint(PROVIDER, "authorize", AUTHORIZE_URL);
        // iFlow's page reads `redirect`, not `redirect_uri`; it takes no scope and no PKCE.
        let params = [
            ("loginMethod", "phone"),
            ("type", "phone"),
            ("redirect", request.redirect_uri),
            ("state", request.state),
            ("client_id", CLIENT_ID),
        ];
        crate::oauth_http::url_with_params("iFlow authorize URL", &base, &params)
    }

    async fn finish(
        &self,
        ctx: &LoginContext,
        code: &str,
        request: &AuthorizeRequest<'_>,
    ) -> Result<LoginOutcome, LoginError> {
        let secret = client_secret();
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", request.redirect_uri),
            ("client_id", CLIENT_ID),
            ("client_secret", secret.as_str()),
        ];
        let tokens = oauth_http::exchange(token_request(ctx, &secret, &form), &Standard).await?;
        let info = user_info(ctx, tokens.access_token()).await.map_err(LoginError::Identity)?;
        let api_key = info.api_key.ok_or_else(|| {
            LoginError::Identity("iFlow returned no API key for this account (empty apiKey in getUserInfo)".into())
        })?;
        let identity = info.email.or(info.phone);
        let file_name = match &identity {
            Some(identity) => format!("iflow-{identity}.json"),
            // CPA's fallback identifier when the account shows neither.
            None => format!("iflow-{}.json", chrono::Utc::now().timestamp_millis()),
        };

        let mut credential = Credential::new(PROVIDER);
        let fields = credential.fields_mut();
        fields.insert("access_token".into(), tokens.access_token().into());
        fields.insert("refresh_token".into(), tokens.str("refresh_token").unwrap_or_default().into());
        fields.insert("last_refresh".into(), oauth_http::now().into());
        fields.insert("expired".into(), tokens.expiry().unwrap_or_default().into());
        fields.insert("api_key".into(), api_key.into());
        fields.insert("email".into(), identity.unwrap_or_default().into());
        fields.insert("token_type".into(), tokens.str("token_type").unwrap_or_default().into());
        fields.insert("scope".into(), tokens.str("scope").unwrap_or_default().into());
        fields.insert("cookie".into(), "".into());
        Ok(LoginOutcome { file_name, credential })
    }
}

#[async_trait::async_trait]
impl TokenRefresher for Iflow {
    fn refresh_lead(&self) -> Option<Duration> {
        Some(REFRESH_LEAD)
    }

    async fn refresh(&self, ctx: &LoginContext, credential: &Credential) -> Result<Map<String, Value>, RefreshError> {
        if cookie::is_cookie_file(credential) {
            return cookie::refresh(ctx, credential).await;
        }
        let refresh_token = credential.refresh_token().ok_or(RefreshError::NoRefreshToken)?;
        let secret = client_secret();
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("client_id", CLIENT_ID),
            ("client_secret", secret.as_str()),
        ];
        let tokens = oauth_http::refresh(token_request(ctx, &secret, &form), &Standard).await?;

        let mut fields = Map::new();
        fields.insert("access_token".into(), tokens.access_token().into());
        if let Some(rotated) = tokens.str("refresh_token") {
            fields.insert("refresh_token".into(), rotated.into());
        }
        // The refresh token may have rotated already, so a failed key lookup must not fail the
        // refresh (that would lose the new tokens); the stored key stays.
        match user_info(ctx, tokens.access_token()).await {
            Ok(UserInfo { api_key: Some(api_key), .. }) => {
                fields.insert("api_key".into(), api_key.into());
            }
            Ok(_) => tracing::warn!("iFlow getUserInfo returned no API key after a refresh; the stored key stays"),
            Err(reason) => tracing::warn!(%reason, "iFlow getUserInfo failed after a refresh; the stored key stays"),
        }
        if let Some(expiry) = tokens.expiry() {
            fields.insert("expired".into(), expiry.into());
        }
        fields.insert("last_refresh".into(), oauth_http::now().into());
        Ok(fields)
    }
}

/// `IFLOW_CLIENT_SECRET` when set, else the iFlow CLI's public secret.
fn client_secret() -> String {
    std::env::var(CLIENT_SECRET_ENV)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| CLIENT_SECRET.to_owned())
}

/// A token-endpoint call: the form, and the client credentials again as HTTP Basic (iFlow's
/// endpoint wants both).
fn token_request(ctx: &LoginContext, secret: &str, form: &[(&str, &str)]) -> RequestBuilder {
    ctx.http
        .post(ctx.endpoint(PROVIDER, "token", TOKEN_URL))
        .basic_auth(CLIENT_ID, Some(secret))
        .header(header::ACCEPT, "application/json")
        .form(form)
}

/// What getUserInfo says about the account; blank fields are `None`.
struct UserInfo {
    api_key: Option<String>,
    email: Option<String>,
    phone: Option<String>,
}

/// `GET {user-info}?accessToken=<token>` → `{"success": true, "data": {"apiKey", "email",
/// "phone"}}`. iFlow answers refusals with HTTP 200 and `success: false`. Error texts never
/// hold the token (transport errors are stripped of the URL, which carries it).
async fn user_info(ctx: &LoginContext, access_token: &str) -> Result<UserInfo, String> {
    let request = ctx
        .http
        .get(ctx.endpoint(PROVIDER, "user-info", USER_INFO_URL))
        .query(&[("accessToken", access_token)])
        .header(header::ACCEPT, "application/json");
    let reply = send_without_url(request).await.map_err(|e| format!("getUserInfo request failed: {e}"))?;
    if !reply.status.is_success() {
        return Err(format!("getUserInfo answered HTTP {}", reply.status.as_u16()));
    }
    let body = reply.json().filter(Value::is_object).ok_or("getUserInfo answered with malformed JSON")?;
    if body.get("success").and_then(Value::as_bool) != Some(true) {
        return Err(format!("getUserInfo refused the token: {}", envelope_message(&body, access_token)));
    }
    let field = |key: &str| str_at(&body, &["data", key]).map(str::to_owned);
    Ok(UserInfo { api_key: field("apiKey"), email: field("email"), phone: field("phone") })
}

/// Like [`oauth_http::send`], but transport errors leave out the URL (its query may hold a
/// token).
async fn send_without_url(request: RequestBuilder) -> Result<Reply, String> {
    let describe = |e: reqwest::Error| oauth_http::describe(&e.without_url());
    let response = request.timeout(oauth_http::TIMEOUT).send().await.map_err(describe)?;
    let status = response.status();
    let body = response.bytes().await.map_err(describe)?.to_vec();
    Ok(Reply::new(status, body))
}

/// The `message` (or `code`) of an iFlow `{"success": false, ...}` envelope, shortened, with
/// `secret` and anything credential-shaped masked.
fn envelope_message(body: &Value, secret: &str) -> String {
    let text = str_at(body, &["message"])
        .or_else(|| str_at(body, &["msg"]))
        .map(str::to_owned)
        .or_else(|| body.get("code").filter(|c| !c.is_null()).map(|c| format!("code {c}")))
        .unwrap_or_else(|| "no reason given".into());
    let text = if secret.is_empty() { text } else { text.replace(secret, "[redacted]") };
    oauth_http::truncate(&switchyard_redact::text(&text), 200)
}

// Static until the live model-list refresh lands (spec §4.5).
const MODELS: &[ModelInfo] = &[
    model("tstars2.0", "TStars 2.0"),
    model("qwen3-coder-plus", "Qwen3 Coder Plus"),
    model("qwen3-max", "Qwen3 Max"),
    model("qwen3-vl-plus", "Qwen3 VL Plus"),
    model("qwen3-max-preview", "Qwen3 Max Preview"),
    model("kimi-k2-0905", "Kimi K2 0905"),
    model("glm-4.6", "GLM 4.6"),
    model("kimi-k2", "Kimi K2"),
    model("kimi-k2-thinking", "Kimi K2 Thinking"),
    model("deepseek-v3.2-chat", "DeepSeek V3.2 Chat"),
    model("deepseek-v3.2", "DeepSeek V3.2"),
    model("deepseek-v3.1", "DeepSeek V3.1"),
    model("deepseek-r1", "DeepSeek R1"),
    model("deepseek-v3", "DeepSeek V3"),
    model("qwen3-32b", "Qwen3 32B"),
    model("qwen3-235b-a22b-thinking-2507", "Qwen3 235B A22B Thinking 2507"),
    model("qwen3-235b-a22b-instruct", "Qwen3 235B A22B Instruct"),
    model("qwen3-235b", "Qwen3 235B"),
    model("minimax-m2", "MiniMax M2"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "iflow", dialect::OPENAI)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn envelope_messages_are_short_and_masked() {
        let body = json!({"success": false, "code": "401", "message": "token mock-token-123 is invalid"});
        assert_eq!(envelope_message(&body, "mock-token-123"), "token [redacted] is invalid");
        assert_eq!(envelope_message(&json!({"success": false, "code": 500}), ""), "code 500");
        assert_eq!(envelope_message(&json!({"success": false}), ""), "no reason given");
        let long = json!({"message": "x".repeat(500)});
        assert_eq!(envelope_message(&long, "").chars().count(), 201);
        let leaky = json!({"message": "bad key sk-0123456789abcdef0123"});
        assert!(!envelope_message(&leaky, "").contains("0123456789abcdef"));
    }

    #[test]
    fn every_endpoint_is_declared_with_its_default() {
        let names: Vec<&str> = Iflow.endpoints().iter().map(|e| e.name).collect();
        assert_eq!(names, ["authorize", "token", "user-info", "api", "platform-api-key"]);
        assert!(Iflow.endpoints().iter().all(|e| e.default.starts_with("https://")));
    }
}
