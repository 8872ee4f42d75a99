//! Kimi Code (Moonshot): device-code OAuth (RFC 8628) against `auth.kimi.com`, and the coding
//! API, which takes OpenAI Chat and Anthropic Messages natively (spec §1.4, §4.6).
//!
//! Kimi's quirks: the token endpoint answers HTTP 200 with an `error` member while the user has
//! not confirmed (the shared classification reads the body whatever the status); every auth and
//! API request carries the `X-Msh-*` client identity, whose device id is one UUID per login,
//! stored in the file as `device_id`; no account identity is fetched, so the file is named after
//! the login time (`kimi-<unix ms>.json`); a refused refresh is 401 or 403.

use std::sync::Arc;
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use reqwest::header;
use serde_json::{Map, Value};
use switchyard_auth::Credential;
use switchyard_auth::login::{
    DeviceAuthorization, DeviceLogin, DevicePoll, DeviceSpec, Login, LoginContext, LoginError, LoginOptions,
    LoginOutcome, RefreshError, TokenRefresher,
};

use crate::device_http::{self, RFC8628};
use crate::oauth_http::{self, Standard, str_at};
use crate::{Endpoint, LoginKind, LoginMethod, ModelInfo, Provider, dialect};

pub(crate) const PROVIDER: &str = "kimi";
/// Kimi Code's public OAuth client.
const CLIENT_ID: &str = "17e5f671-d194-4dfb-9706-5516cb48c098";
const DEVICE_URL: &str = "https://auth.kimi.com/api/oauth/device_authorization";
const TOKEN_URL: &str = "https://auth.kimi.com/api/oauth/token";
pub(crate) const API_BASE: &str = "https://api.kimi.com/coding";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// CPA stops polling after 15 minutes, whatever `expires_in` says.
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
const REFRESH_LEAD: Duration = Duration::from_secs(5 * 60);
/// Where the device id travels from `start` to `poll` and `finish`.
const DEVICE_ID_KEY: &str = "device_id";

/// The client platform Kimi's auth server and coding API see. Kimi admits known coding clients
/// only; this is the identity CPA presents (spec §1.4), with Switchyard's own version.
const PLATFORM: &str = "CLIProxyAPI";
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

const ENDPOINTS: &[Endpoint] = &[
    Endpoint { name: "device", default: DEVICE_URL },
    Endpoint { name: "token", default: TOKEN_URL },
    Endpoint { name: "api", default: API_BASE },
    Endpoint { name: "usage", default: crate::quota::kimi::USAGE_URL },
];

pub struct Kimi;

impl Provider for Kimi {
    fn id(&self) -> &'static str {
        PROVIDER
    }

    fn label(&self) -> &'static str {
        "Kimi"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["kimi"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    fn login_methods(&self) -> Vec<LoginMethod> {
        vec![LoginMethod {
            id: "device",
            aliases: &[],
            label: "Device code (confirm on kimi.com)",
            kind: LoginKind::Device,
            asks: &[],
            login: Login::Device(Arc::new(Kimi)),
        }]
    }

    fn endpoints(&self) -> &'static [Endpoint] {
        ENDPOINTS
    }

    fn refresher(&self) -> Option<Arc<dyn TokenRefresher>> {
        Some(Arc::new(Kimi))
    }

    fn executor(&self) -> Option<Arc<dyn crate::executor::Executor>> {
        Some(Arc::new(crate::exec::kimi::KimiExecutor))
    }

    fn quota(&self) -> Option<Arc<dyn crate::quota::QuotaFetcher>> {
        Some(Arc::new(crate::quota::KimiQuota))
    }
}

#[async_trait::async_trait]
impl DeviceLogin for Kimi {
    fn spec(&self) -> DeviceSpec<'_> {
        DeviceSpec { name: PROVIDER, aliases: &[], state_prefix: "kmi-", max_wait: MAX_WAIT }
    }

    async fn start(&self, ctx: &LoginContext, _options: &LoginOptions) -> Result<DeviceAuthorization, LoginError> {
        let device_id = crate::exec::kimi::new_device_id();
        let request = with_identity(ctx.http.post(ctx.endpoint(PROVIDER, "device", DEVICE_URL)), &device_id)
            .await
            .form(&[("client_id", CLIENT_ID)]);
        let mut device = device_http::request_device_code(request, RFC8628, MAX_WAIT).await?;
        device.extra.insert(DEVICE_ID_KEY.into(), device_id.into());
        Ok(device)
    }

    async fn poll(&self, ctx: &LoginContext, device: &DeviceAuthorization) -> Result<DevicePoll, LoginError> {
        let form =
            [("client_id", CLIENT_ID), ("device_code", device.device_code.as_str()), ("grant_type", DEVICE_GRANT)];
        let request = token_request(ctx, device_id_of(device)).await.form(&form);
        device_http::poll_token(request).await
    }

    async fn finish(
        &self,
        _ctx: &LoginContext,
        device: &DeviceAuthorization,
        grant: Map<String, Value>,
        _options: &LoginOptions,
    ) -> Result<LoginOutcome, LoginError> {
        let grant = Value::Object(grant);
        let text = |key: &str| str_at(&grant, &[key]).unwrap_or_default().to_owned();
        let access_token = str_at(&grant, &["access_token"])
            .ok_or_else(|| LoginError::TokenExchange("token endpoint answer has no access_token".into()))?;
        let now = Utc::now();
        let timestamp = now.timestamp_millis();

        let mut credential = Credential::new(PROVIDER);
        let fields = credential.fields_mut();
        fields.insert("access_token".into(), access_token.into());
        fields.insert("refresh_token".into(), text("refresh_token").into());
        fields.insert("token_type".into(), text("token_type").into());
        fields.insert("scope".into(), text("scope").into());
        fields.insert("device_id".into(), device_id_of(device).into());
        if let Some(expired) = utc_expiry(&grant) {
            fields.insert("expired".into(), expired.into());
        }
        fields.insert("timestamp".into(), timestamp.into());
        fields.insert("disabled".into(), false.into());
        Ok(LoginOutcome { file_name: format!("kimi-{timestamp}.json"), credential })
    }
}

#[async_trait::async_trait]
impl TokenRefresher for Kimi {
    fn refresh_lead(&self) -> Option<Duration> {
        Some(REFRESH_LEAD)
    }

    async fn refresh(&self, ctx: &LoginContext, credential: &Credential) -> Result<Map<String, Value>, RefreshError> {
        let refresh_token = credential.refresh_token().ok_or(RefreshError::NoRefreshToken)?;
        let device_id = stored_device_id(credential);
        let form = [("client_id", CLIENT_ID), ("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        let request = token_request(ctx, &device_id).await.form(&form);
        // Kimi refuses a dead refresh token with 401 or 403 (spec §1.4).
        let tokens = oauth_http::refresh_where_dead(request, &Standard, &[reqwest::StatusCode::FORBIDDEN]).await?;

        let mut fields = Map::new();
        fields.insert("access_token".into(), tokens.access_token().into());
        // Kimi rotates refresh tokens; without a new one the old one stays (and stays in the file).
        if let Some(rotated) = tokens.str("refresh_token") {
            fields.insert("refresh_token".into(), rotated.into());
        }
        if let Some(expired) = utc_expiry(tokens.json()) {
            fields.insert("expired".into(), expired.into());
        }
        fields.insert("last_refresh".into(), oauth_http::now().into());
        Ok(fields)
    }
}

/// The file's `device_id`; a credential without one (written by another tool) gets a fresh id
/// for this call, as a new device would.
pub(crate) fn stored_device_id(credential: &Credential) -> String {
    credential.str_field(DEVICE_ID_KEY).map_or_else(crate::exec::kimi::new_device_id, str::to_owned)
}

fn device_id_of(device: &DeviceAuthorization) -> &str {
    device.extra.get(DEVICE_ID_KEY).and_then(Value::as_str).unwrap_or_default()
}

async fn token_request(ctx: &LoginContext, device_id: &str) -> reqwest::RequestBuilder {
    let request = ctx.http.post(ctx.endpoint(PROVIDER, "token", TOKEN_URL)).header(header::ACCEPT, "application/json");
    with_identity(request, device_id).await
}

async fn with_identity(request: reqwest::RequestBuilder, device_id: &str) -> reqwest::RequestBuilder {
    identity_headers(device_id).await.into_iter().fold(request, |request, (name, value)| request.header(name, value))
}

/// The `X-Msh-*` client identity every Kimi request carries.
pub(crate) async fn identity_headers(device_id: &str) -> [(&'static str, String); 5] {
    [
        ("x-msh-platform", PLATFORM.to_owned()),
        ("x-msh-version", VERSION.to_owned()),
        ("x-msh-device-name", device_name().await.to_owned()),
        ("x-msh-device-model", device_model()),
        ("x-msh-device-id", device_id.to_owned()),
    ]
}

/// `now + expires_in` in UTC RFC 3339 (Kimi files store `expired` in UTC, unlike most).
fn utc_expiry(answer: &Value) -> Option<String> {
    let seconds = match answer.get("expires_in")? {
        Value::Number(n) => n.as_i64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    let lifetime = chrono::Duration::try_seconds(seconds.max(0))?;
    Utc::now().checked_add_signed(lifetime).map(|at| at.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// This machine's host name, read once (without blocking the runtime).
async fn device_name() -> &'static str {
    static NAME: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    NAME.get_or_init(|| async {
        for path in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
            if let Ok(text) = tokio::fs::read_to_string(path).await
                && let Some(name) = Some(text.trim()).filter(|n| !n.is_empty())
            {
                return name.to_owned();
            }
        }
        ["HOSTNAME", "COMPUTERNAME"]
            .iter()
            .find_map(|key| std::env::var(key).ok().filter(|v| !v.trim().is_empty()))
            .unwrap_or_else(|| "localhost".to_owned())
    })
    .await
}

/// `"<macOS|Windows|Linux> <arch>"`, as CPA describes the device.
fn device_model() -> String {
    let os = match std::env::consts::OS {
        "macos" => "macOS",
        "windows" => "Windows",
        "linux" => "Linux",
        other => other,
    };
    format!("{os} {}", std::env::consts::ARCH)
}

// Static until the live model-list refresh lands. `kimi-for-coding` is the id Kimi documents for
// its coding endpoint (what Kimi's own CLI sends there); the K2 ids are CPA's catalogue.
const MODELS: &[ModelInfo] = &[
    model("kimi-k2", "Kimi K2"),
    model("kimi-k2-thinking", "Kimi K2 Thinking"),
    model("kimi-k2-0905", "Kimi K2 0905"),
    model("kimi-for-coding", "Kimi for Coding"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "moonshot", dialect::OPENAI)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn expiry_is_utc_and_survives_absurd_values() {
        let at = utc_expiry(&json!({"expires_in": 900})).unwrap();
        assert!(at.ends_with('Z'), "{at}");
        let parsed = chrono::DateTime::parse_from_rfc3339(&at).unwrap();
        let left = parsed.with_timezone(&Utc) - Utc::now();
        assert!(left <= chrono::Duration::seconds(900) && left > chrono::Duration::seconds(890));
        assert_eq!(utc_expiry(&json!({"expires_in": i64::MAX})), None);
        assert_eq!(utc_expiry(&json!({"expires_in": "soon"})), None);
        assert!(utc_expiry(&json!({"expires_in": "60"})).is_some());
        assert_eq!(utc_expiry(&json!({})), None);
    }

    #[test]
    fn device_model_names_os_and_arch() {
        let model = device_model();
        let (os, arch) = model.split_once(' ').unwrap();
        assert!(["macOS", "Windows", "Linux"].contains(&os) || os == std::env::consts::OS, "{model}");
        assert_eq!(arch, std::env::consts::ARCH);
    }

    #[test]
    fn a_stored_device_id_is_reused_and_a_missing_one_replaced() {
        let mut credential = Credential::new("kimi");
        credential.fields_mut().insert("device_id".into(), "dev-1".into());
        assert_eq!(stored_device_id(&credential), "dev-1");
        let fresh = stored_device_id(&Credential::new("kimi"));
        assert_eq!(fresh.len(), 36, "{fresh}");
        assert_ne!(fresh, stored_device_id(&Credential::new("kimi")));
    }
}
