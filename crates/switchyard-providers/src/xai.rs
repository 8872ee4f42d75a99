//! xAI (Grok CLI): device-code OAuth (RFC 8628) against endpoints found by OpenID discovery;
//! the upstream speaks the OpenAI Responses API (spec §1.5, §4.6).
//!
//! Endpoints (`upstream-urls.xai.<name>`):
//!
//! | name | default |
//! |---|---|
//! | `issuer` | `https://auth.x.ai` |
//! | `device` | discovered: `device_authorization_endpoint` of `{issuer}/.well-known/openid-configuration` |
//! | `token` | discovered: `token_endpoint` of the same document |
//! | `api` | `https://cli-chat-proxy.grok.com/v1` for OAuth accounts; `https://api.x.ai/v1` for API keys and `using_api: true` accounts |
//!
//! [`Provider::endpoints`] lists the discovered defaults as the discovery URL with the member
//! name as its fragment, since there is no fixed URL to show.
//!
//! A configured `device` / `token` wins over discovery (no discovery request is made when both
//! are set). Endpoints discovered from the default issuer must be `https` on `x.ai` or a
//! subdomain of it: the device code and refresh token go there. With a configured issuer that
//! check is skipped, because a configured issuer is a deliberate choice (a test server, a
//! mirror) whose endpoints are whatever it says.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header;
use serde_json::{Map, Value};
use switchyard_auth::Credential;
use switchyard_auth::login::{
    DeviceAuthorization, DeviceLogin, DevicePoll, DeviceSpec, Login, LoginContext, LoginError, LoginOptions,
    LoginOutcome, RefreshError, TokenRefresher, jwt_claims,
};

use crate::device_http::{self, RFC8628};
use crate::oauth_http::{self, Standard, str_at};
use crate::{Endpoint, LoginKind, LoginMethod, ModelInfo, Provider, dialect};

/// The Grok CLI's public OAuth client.
pub const CLIENT_ID: &str = "b1a00492-073a-47ea-816f-4c329264a828";
pub const SCOPE: &str = "openid profile email offline_access grok-cli:access api:access";
pub const DEFAULT_ISSUER: &str = "https://auth.x.ai";
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";
/// Where Grok CLI OAuth accounts chat (unless the account says `using_api: true`).
pub const CLI_CHAT_BASE: &str = "https://cli-chat-proxy.grok.com/v1";
/// The public xAI API: API keys and `using_api: true` accounts.
pub const API_BASE: &str = "https://api.x.ai/v1";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Lifetime of a device code whose answer names none (CPA: 30 min).
const DEFAULT_DEVICE_LIFETIME: Duration = Duration::from_secs(30 * 60);
const MAX_WAIT: Duration = Duration::from_secs(30 * 60);
const REFRESH_LEAD: Duration = Duration::from_secs(5 * 60);
/// `DeviceAuthorization::extra` key: the token endpoint the poll and the saved file use.
const EXTRA_TOKEN_ENDPOINT: &str = "token_endpoint";

const ENDPOINTS: &[Endpoint] = &[
    Endpoint { name: "issuer", default: DEFAULT_ISSUER },
    Endpoint {
        name: "device",
        default: "https://auth.x.ai/.well-known/openid-configuration#device_authorization_endpoint",
    },
    Endpoint { name: "token", default: "https://auth.x.ai/.well-known/openid-configuration#token_endpoint" },
    Endpoint { name: "api", default: CLI_CHAT_BASE },
    Endpoint { name: "billing", default: crate::quota::xai::BILLING_URL },
];

pub struct Xai;

impl Provider for Xai {
    fn id(&self) -> &'static str {
        "xai"
    }

    fn label(&self) -> &'static str {
        "xAI Grok"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["xai"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    fn login_methods(&self) -> Vec<LoginMethod> {
        vec![LoginMethod {
            id: "device",
            aliases: &[],
            label: "Device code (Grok CLI)",
            kind: LoginKind::Device,
            asks: &[],
            login: Login::Device(Arc::new(Xai)),
        }]
    }

    fn endpoints(&self) -> &'static [Endpoint] {
        ENDPOINTS
    }

    fn refresher(&self) -> Option<Arc<dyn TokenRefresher>> {
        Some(Arc::new(Xai))
    }

    fn executor(&self) -> Option<Arc<dyn crate::executor::Executor>> {
        Some(Arc::new(crate::exec::xai::XaiExecutor))
    }

    fn quota(&self) -> Option<Arc<dyn crate::quota::QuotaFetcher>> {
        Some(Arc::new(crate::quota::XaiQuota))
    }
}

#[async_trait::async_trait]
impl DeviceLogin for Xai {
    fn spec(&self) -> DeviceSpec<'_> {
        DeviceSpec { name: "xai", aliases: &["grok", "x-ai", "x.ai"], state_prefix: "xai-", max_wait: MAX_WAIT }
    }

    async fn start(&self, ctx: &LoginContext, _options: &LoginOptions) -> Result<DeviceAuthorization, LoginError> {
        let (device_url, token_url) = login_endpoints(ctx).await.map_err(LoginError::Provider)?;
        let request = ctx
            .http
            .post(&device_url)
            .header(header::ACCEPT, "application/json")
            .form(&[("client_id", CLIENT_ID), ("scope", SCOPE)]);
        let mut device = device_http::request_device_code(request, RFC8628, DEFAULT_DEVICE_LIFETIME).await?;
        device.extra.insert(EXTRA_TOKEN_ENDPOINT.into(), token_url.into());
        Ok(device)
    }

    async fn poll(&self, ctx: &LoginContext, device: &DeviceAuthorization) -> Result<DevicePoll, LoginError> {
        let token_url = poll_endpoint(device)?;
        let form =
            [("grant_type", DEVICE_GRANT), ("device_code", device.device_code.as_str()), ("client_id", CLIENT_ID)];
        device_http::poll_token(ctx.http.post(token_url).header(header::ACCEPT, "application/json").form(&form)).await
    }

    async fn finish(
        &self,
        _ctx: &LoginContext,
        device: &DeviceAuthorization,
        grant: Map<String, Value>,
        _options: &LoginOptions,
    ) -> Result<LoginOutcome, LoginError> {
        let token_url = poll_endpoint(device)?;
        let grant = Value::Object(grant);
        let text = |key: &str| str_at(&grant, &[key]).map(str::to_owned);
        let access_token = text("access_token")
            .ok_or_else(|| LoginError::TokenExchange("token endpoint answer has no access_token".into()))?;
        let id_token = text("id_token");
        let identity = match &id_token {
            Some(jwt) => Identity::parse(jwt)?,
            None => Identity::default(),
        };
        let file_name = xai_file_name(identity.email.as_deref(), identity.sub.as_deref(), unix_millis());

        let mut credential = Credential::new("xai");
        let fields = credential.fields_mut();
        fields.insert("access_token".into(), access_token.into());
        fields.insert("refresh_token".into(), text("refresh_token").unwrap_or_default().into());
        fields.insert("id_token".into(), id_token.unwrap_or_default().into());
        fields.insert("token_type".into(), text("token_type").unwrap_or_else(|| "Bearer".into()).into());
        if let Some(lifetime) = expires_in(&grant) {
            fields.insert("expires_in".into(), lifetime.into());
            fields.insert("expired".into(), expiry_after(lifetime).into());
        }
        fields.insert("last_refresh".into(), oauth_http::now().into());
        fields.insert("email".into(), identity.email.unwrap_or_default().into());
        fields.insert("sub".into(), identity.sub.unwrap_or_default().into());
        fields.insert("base_url".into(), API_BASE.into());
        fields.insert("token_endpoint".into(), token_url.into());
        fields.insert("auth_kind".into(), "oauth".into());
        fields.insert("disabled".into(), false.into());
        Ok(LoginOutcome { file_name, credential })
    }
}

#[async_trait::async_trait]
impl TokenRefresher for Xai {
    fn refresh_lead(&self) -> Option<Duration> {
        Some(REFRESH_LEAD)
    }

    async fn refresh(&self, ctx: &LoginContext, credential: &Credential) -> Result<Map<String, Value>, RefreshError> {
        let refresh_token = credential.refresh_token().ok_or(RefreshError::NoRefreshToken)?;
        let token_url = refresh_endpoint(ctx, credential).await.map_err(RefreshError::Transient)?;
        let form = [("grant_type", "refresh_token"), ("client_id", CLIENT_ID), ("refresh_token", refresh_token)];
        let request = ctx.http.post(&token_url).header(header::ACCEPT, "application/json").form(&form);
        let tokens = oauth_http::refresh(request, &Standard).await?;

        let mut fields = Map::new();
        fields.insert("access_token".into(), tokens.access_token().into());
        // Without a new refresh token the old one stays valid (and stays in the file).
        for key in ["refresh_token", "id_token", "token_type"] {
            if let Some(value) = tokens.str(key) {
                fields.insert(key.into(), value.into());
            }
        }
        if let Some(lifetime) = expires_in(tokens.json()) {
            fields.insert("expires_in".into(), lifetime.into());
            fields.insert("expired".into(), expiry_after(lifetime).into());
        }
        fields.insert("last_refresh".into(), oauth_http::now().into());
        Ok(fields)
    }
}

/// The auth-file name CPA gives an xAI login: `xai-<email>.json`, else `xai-<sub>.json`, else
/// `xai-<unix millis>.json`; every character of the segment outside `[A-Za-z0-9@._-]` becomes
/// `-` (so a `sub` like `google-oauth2|123` stays one safe file name).
pub fn xai_file_name(email: Option<&str>, sub: Option<&str>, unix_millis: i64) -> String {
    let chosen = [email, sub].into_iter().flatten().map(str::trim).find(|s| !s.is_empty());
    let segment = match chosen {
        Some(segment) => segment
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '_' | '-') { c } else { '-' })
            .collect(),
        None => unix_millis.to_string(),
    };
    format!("xai-{segment}.json")
}

fn unix_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `expires_in` as whole seconds, from a number or a numeric string.
fn expires_in(answer: &Value) -> Option<i64> {
    match answer.get("expires_in")? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|seconds| *seconds > 0)
}

fn expiry_after(seconds: i64) -> String {
    let lifetime = chrono::Duration::try_seconds(seconds).unwrap_or(chrono::Duration::zero());
    oauth_http::rfc3339(chrono::Local::now() + lifetime)
}

/// The token endpoint `start` chose, carried to the poll and the saved file.
fn poll_endpoint(device: &DeviceAuthorization) -> Result<&str, LoginError> {
    device
        .extra
        .get(EXTRA_TOKEN_ENDPOINT)
        .and_then(Value::as_str)
        .ok_or_else(|| LoginError::Provider("xAI device login lost its token endpoint".into()))
}

/// What the id_token says about the account. Read without checking the signature: it came
/// straight from the token endpoint, which is what vouches for it.
#[derive(Default)]
struct Identity {
    email: Option<String>,
    sub: Option<String>,
}

impl Identity {
    /// Errors name the defect only; the token itself never appears.
    fn parse(jwt: &str) -> Result<Identity, LoginError> {
        let claims = Value::Object(jwt_claims(jwt).map_err(|e| LoginError::Identity(format!("xAI id_token: {e}")))?);
        let get = |key: &str| str_at(&claims, &[key]).map(str::to_owned);
        Ok(Identity { email: get("email"), sub: get("sub") })
    }
}

const DEVICE_MEMBER: &str = "device_authorization_endpoint";
const TOKEN_MEMBER: &str = "token_endpoint";

/// The device-authorization and token endpoints of a login: each the configured URL, else the
/// one OpenID discovery names (one discovery request at most, none when both are configured).
async fn login_endpoints(ctx: &LoginContext) -> Result<(String, String), String> {
    let (device, token) = (configured(ctx, "device"), configured(ctx, "token"));
    if let (Some(device), Some(token)) = (device, token) {
        return Ok((device.to_owned(), token.to_owned()));
    }
    let discovery = Discovery::fetch(ctx).await?;
    let pick = |configured: Option<&str>, member: &str| match configured {
        Some(url) => Ok(url.to_owned()),
        None => discovery.endpoint(member),
    };
    Ok((pick(device, DEVICE_MEMBER)?, pick(token, TOKEN_MEMBER)?))
}

/// The refresh's token endpoint: configured `token`, else the file's `token_endpoint`, else
/// rediscovered. Without a configured issuer the file's endpoint must pass the same x.ai check
/// as a discovered one: the refresh token is about to be sent there.
async fn refresh_endpoint(ctx: &LoginContext, credential: &Credential) -> Result<String, String> {
    if let Some(configured) = configured(ctx, "token") {
        return Ok(configured.to_owned());
    }
    if let Some(stored) = credential.str_field("token_endpoint") {
        if configured(ctx, "issuer").is_none() {
            check_xai_host("the auth file's token_endpoint", stored)?;
        }
        return Ok(stored.to_owned());
    }
    Discovery::fetch(ctx).await?.endpoint(TOKEN_MEMBER)
}

fn configured<'c>(ctx: &'c LoginContext, name: &str) -> Option<&'c str> {
    ctx.config.upstream_url("xai", name).map(str::trim).filter(|url| !url.is_empty())
}

/// The issuer's OpenID discovery document.
struct Discovery {
    url: String,
    document: Value,
    /// Whether the issuer is the built-in one, whose endpoints must be on x.ai.
    default_issuer: bool,
}

impl Discovery {
    /// Fetches `{issuer}/.well-known/openid-configuration`.
    async fn fetch(ctx: &LoginContext) -> Result<Discovery, String> {
        let configured_issuer = configured(ctx, "issuer");
        let issuer = configured_issuer.unwrap_or(DEFAULT_ISSUER);
        let url = format!("{}{DISCOVERY_PATH}", issuer.trim_end_matches('/'));
        let reply = oauth_http::send(ctx.http.get(&url).header(header::ACCEPT, "application/json"))
            .await
            .map_err(|e| format!("xAI OpenID discovery at {url} failed: {e}"))?;
        if !reply.status.is_success() {
            return Err(format!("xAI OpenID discovery at {url} answered HTTP {}", reply.status.as_u16()));
        }
        let Some(document @ Value::Object(_)) = reply.json() else {
            return Err(format!("xAI OpenID discovery at {url} did not answer with a JSON object"));
        };
        Ok(Discovery { url, document, default_issuer: configured_issuer.is_none() })
    }

    fn endpoint(&self, member: &str) -> Result<String, String> {
        discovered_endpoint(&self.document, member, self.default_issuer)
            .map_err(|why| format!("xAI OpenID discovery at {}: {why}", self.url))
    }
}

/// `member` of a discovery document: a URL, which with `xai_hosts_only` must be https on
/// `x.ai` or `*.x.ai`.
fn discovered_endpoint(document: &Value, member: &str, xai_hosts_only: bool) -> Result<String, String> {
    let value = str_at(document, &[member]).ok_or_else(|| format!("the document has no {member}"))?;
    if xai_hosts_only {
        check_xai_host(member, value)?;
    } else {
        url::Url::parse(value).map_err(|_| format!("{member} {value:?} is not a URL"))?;
    }
    Ok(value.to_owned())
}

/// Refuses `url` unless it is `https://x.ai/...` or `https://<sub>.x.ai/...`.
fn check_xai_host(what: &str, url: &str) -> Result<(), String> {
    let refused = || format!("{what} {url:?} is not an https URL on x.ai or *.x.ai; refusing to use it");
    let parsed = url::Url::parse(url).map_err(|_| refused())?;
    let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
    let on_xai = host == "x.ai" || host.ends_with(".x.ai");
    if parsed.scheme() == "https" && on_xai { Ok(()) } else { Err(refused()) }
}

// Static until the live model-list refresh lands. `grok-4-fast` is xAI's alias of
// `grok-4-fast-reasoning`.
const MODELS: &[ModelInfo] = &[
    model("grok-4", "Grok 4"),
    model("grok-4-fast", "Grok 4 Fast"),
    model("grok-4-fast-reasoning", "Grok 4 Fast Reasoning"),
    model("grok-4-fast-non-reasoning", "Grok 4 Fast Non-Reasoning"),
    model("grok-code-fast-1", "Grok Code Fast 1"),
    model("grok-3", "Grok 3"),
    model("grok-3-mini", "Grok 3 Mini"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "xai", dialect::OPENAI)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn discovered_endpoints_of_the_default_issuer_must_be_https_on_x_ai() {
        let document = |url: &str| json!({"token_endpoint": url});
        for good in ["https://auth.x.ai/oauth2/token", "https://x.ai/token", "https://a.b.X.AI/t"] {
            assert_eq!(discovered_endpoint(&document(good), "token_endpoint", true).as_deref(), Ok(good));
        }
        for bad in [
            "http://auth.x.ai/oauth2/token",
            "https://auth.x.ai.evil.example/token",
            "https://evilx.ai/token",
            "https://127.0.0.1/token",
            "not a url",
        ] {
            let error = discovered_endpoint(&document(bad), "token_endpoint", true).unwrap_err();
            assert!(error.contains("not an https URL on x.ai"), "{bad}: {error}");
            assert!(error.contains("token_endpoint"), "{error}");
        }
    }

    #[test]
    fn a_configured_issuer_skips_the_host_check_but_not_the_url_check() {
        let document = json!({"device_authorization_endpoint": "http://127.0.0.1:9/device"});
        let found = discovered_endpoint(&document, "device_authorization_endpoint", false);
        assert_eq!(found.as_deref(), Ok("http://127.0.0.1:9/device"));
        let junk = json!({"device_authorization_endpoint": "::"});
        assert!(discovered_endpoint(&junk, "device_authorization_endpoint", false).unwrap_err().contains("not a URL"));
        let missing = discovered_endpoint(&json!({}), "token_endpoint", false).unwrap_err();
        assert_eq!(missing, "the document has no token_endpoint");
    }

    #[test]
    fn file_name_prefers_email_then_sub_then_millis_and_sanitises() {
        assert_eq!(xai_file_name(Some("a.b@x.ai"), Some("s"), 1), "xai-a.b@x.ai.json");
        assert_eq!(xai_file_name(None, Some("google-oauth2|12 3"), 1), "xai-google-oauth2-12-3.json");
        assert_eq!(xai_file_name(Some("  "), Some("sub_1"), 1), "xai-sub_1.json");
        assert_eq!(xai_file_name(None, None, 1_700_000_000_123), "xai-1700000000123.json");
        assert_eq!(xai_file_name(Some("ü/../x@y.z"), None, 1), "xai---..-x@y.z.json");
    }

    #[test]
    fn expires_in_reads_numbers_and_strings() {
        assert_eq!(expires_in(&json!({"expires_in": 3600})), Some(3600));
        assert_eq!(expires_in(&json!({"expires_in": " 60 "})), Some(60));
        assert_eq!(expires_in(&json!({"expires_in": 0})), None);
        assert_eq!(expires_in(&json!({})), None);
    }
}
