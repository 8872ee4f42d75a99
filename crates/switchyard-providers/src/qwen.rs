//! Qwen Code: OAuth device flow with PKCE at `chat.qwen.ai`; the upstream speaks OpenAI Chat
//! (providers-extra §3, cpa-core §1.8).
//!
//! Qwen has no identity endpoint, so the file is named after the optional `alias` the user
//! gives (`qwen-<alias>.json`), else after the login's time (`qwen-<unix ms>.json`, as CPA's
//! management login does). While the user has not confirmed, Qwen answers polls with HTTP 400
//! and an `error` member. The token answer's `resource_url` names the API host of the account.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header;
use serde_json::{Map, Value};
use switchyard_auth::Credential;
use switchyard_auth::login::{
    DeviceAuthorization, DeviceLogin, DevicePoll, DeviceSpec, Login, LoginContext, LoginError, LoginOptions,
    LoginOutcome, RefreshError, TokenRefresher, new_state, s256_challenge,
};

use crate::device_http::{self, RFC8628};
use crate::exec::qwen::{API_URL, PROVIDER, QwenExecutor};
use crate::oauth_http::{self, Reply, Standard};
use crate::{Ask, AskKind, Endpoint, LoginKind, LoginMethod, ModelInfo, Provider, dialect};

/// Qwen Code's public OAuth client.
const CLIENT_ID: &str = "f0304373b74a44d2b584a3fb70ca9e56";
const SCOPE: &str = "openid profile email model.completion";
const DEVICE_URL: &str = "https://chat.qwen.ai/api/v1/oauth2/device/code";
const TOKEN_URL: &str = "https://chat.qwen.ai/api/v1/oauth2/token";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Qwen's CLI gives up after 5 minutes of polling; a device code without `expires_in` gets that.
const DEFAULT_DEVICE_LIFETIME: Duration = Duration::from_secs(5 * 60);
const MAX_WAIT: Duration = Duration::from_secs(15 * 60);
/// Renewed this long before expiry (CPA mainline's lead; see the refresher for why not 3 h).
const REFRESH_LEAD: Duration = Duration::from_secs(20 * 60);
/// Key of the PKCE verifier in [`DeviceAuthorization::extra`].
const VERIFIER: &str = "code_verifier";
const ALIAS: &str = "alias";
const MAX_ALIAS_CHARS: usize = 100;

const ENDPOINTS: &[Endpoint] = &[
    Endpoint { name: "device", default: DEVICE_URL },
    Endpoint { name: "token", default: TOKEN_URL },
    Endpoint { name: "api", default: API_URL },
];

const ASKS: &[Ask] = &[Ask {
    name: ALIAS,
    label: "Account alias or email (names the auth file)",
    kind: AskKind::Text,
    required: false,
    default: None,
}];

pub struct Qwen;

impl Provider for Qwen {
    fn id(&self) -> &'static str {
        PROVIDER
    }

    fn label(&self) -> &'static str {
        "Qwen Code"
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
            label: "Qwen device code",
            kind: LoginKind::Device,
            asks: ASKS,
            login: Login::Device(Arc::new(Qwen)),
        }]
    }

    fn endpoints(&self) -> &'static [Endpoint] {
        ENDPOINTS
    }

    fn refresher(&self) -> Option<Arc<dyn TokenRefresher>> {
        Some(Arc::new(Qwen))
    }

    fn executor(&self) -> Option<Arc<dyn crate::executor::Executor>> {
        Some(Arc::new(QwenExecutor))
    }
}

/// The alias the user asked for, checked to be usable in a file name; `None` when blank.
fn alias(options: &LoginOptions) -> Result<Option<&str>, LoginError> {
    let Some(alias) = options.get(ALIAS).map(|a| a.trim()).filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, '@' | '.' | '_' | '-' | '+');
    if alias.chars().count() > MAX_ALIAS_CHARS {
        return Err(LoginError::InvalidInput(format!("alias must be at most {MAX_ALIAS_CHARS} characters")));
    }
    if !alias.chars().all(allowed) || alias.starts_with('.') || alias.contains("..") {
        return Err(LoginError::InvalidInput(
            "alias may contain only letters, digits and @ . _ - + (no leading dot, no \"..\")".into(),
        ));
    }
    Ok(Some(alias))
}

/// A PKCE pair with a 32-byte verifier, as Qwen Code's own client makes it.
fn pkce() -> (String, String) {
    let random = hex::decode(new_state() + &new_state()).expect("states are hex");
    let verifier = URL_SAFE_NO_PAD.encode(random);
    let challenge = s256_challenge(&verifier);
    (verifier, challenge)
}

fn token_request(ctx: &LoginContext, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
    ctx.http.post(ctx.endpoint(PROVIDER, "token", TOKEN_URL)).header(header::ACCEPT, "application/json").form(form)
}

#[async_trait::async_trait]
impl DeviceLogin for Qwen {
    fn spec(&self) -> DeviceSpec<'_> {
        DeviceSpec { name: PROVIDER, aliases: &["qwen-code"], state_prefix: "qwen-", max_wait: MAX_WAIT }
    }

    async fn start(&self, ctx: &LoginContext, options: &LoginOptions) -> Result<DeviceAuthorization, LoginError> {
        // A bad alias fails before the user is sent anywhere.
        alias(options)?;
        let (verifier, challenge) = pkce();
        let form = [
            ("client_id", CLIENT_ID),
            ("scope", SCOPE),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ];
        let request = ctx
            .http
            .post(ctx.endpoint(PROVIDER, "device", DEVICE_URL))
            .header(header::ACCEPT, "application/json")
            .form(&form);
        let mut device = device_http::request_device_code(request, RFC8628, DEFAULT_DEVICE_LIFETIME).await?;
        device.extra.insert(VERIFIER.into(), verifier.into());
        Ok(device)
    }

    async fn poll(&self, ctx: &LoginContext, device: &DeviceAuthorization) -> Result<DevicePoll, LoginError> {
        let verifier = device
            .extra
            .get(VERIFIER)
            .and_then(Value::as_str)
            .ok_or_else(|| LoginError::Provider("Qwen login lost its PKCE verifier".into()))?;
        let form = [
            ("grant_type", DEVICE_GRANT),
            ("client_id", CLIENT_ID),
            ("device_code", device.device_code.as_str()),
            ("code_verifier", verifier),
        ];
        device_http::poll_token(token_request(ctx, &form)).await
    }

    async fn finish(
        &self,
        _ctx: &LoginContext,
        _device: &DeviceAuthorization,
        grant: Map<String, Value>,
        options: &LoginOptions,
    ) -> Result<LoginOutcome, LoginError> {
        // The grant was classified as a token answer already; read it with the shared reader.
        let body = serde_json::to_vec(&grant).unwrap_or_default();
        let tokens = Reply::new(StatusCode::OK, body).tokens().map_err(LoginError::TokenExchange)?;
        // Without an alias the file stem doubles as the label, so panels show which file it is.
        let (file_name, label) = match alias(options)? {
            Some(alias) => (format!("{PROVIDER}-{alias}.json"), alias.to_owned()),
            None => {
                let stem = format!("{PROVIDER}-{}", chrono::Utc::now().timestamp_millis());
                (format!("{stem}.json"), stem)
            }
        };

        let mut credential = Credential::new(PROVIDER);
        let fields = credential.fields_mut();
        fields.insert("access_token".into(), tokens.access_token().into());
        fields.insert("refresh_token".into(), tokens.str("refresh_token").unwrap_or_default().into());
        fields.insert("last_refresh".into(), oauth_http::now().into());
        fields.insert("resource_url".into(), tokens.str("resource_url").unwrap_or_default().into());
        fields.insert("email".into(), label.into());
        if let Some(expiry) = tokens.expiry() {
            fields.insert("expired".into(), expiry.into());
        }
        Ok(LoginOutcome { file_name, credential })
    }
}

#[async_trait::async_trait]
impl TokenRefresher for Qwen {
    /// 20 min, CPA mainline's lead, rather than the 3 h of the Plus snapshot: a lead longer than
    /// a token's lifetime would refresh on every pass, and requests refresh on demand anyway.
    fn refresh_lead(&self) -> Option<Duration> {
        Some(REFRESH_LEAD)
    }

    async fn refresh(&self, ctx: &LoginContext, credential: &Credential) -> Result<Map<String, Value>, RefreshError> {
        let refresh_token = credential.refresh_token().ok_or(RefreshError::NoRefreshToken)?;
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", CLIENT_ID)];
        let tokens = oauth_http::refresh(token_request(ctx, &form), &Standard).await?;
        let mut fields = Map::new();
        fields.insert("access_token".into(), tokens.access_token().into());
        if let Some(rotated) = tokens.str("refresh_token") {
            fields.insert("refresh_token".into(), rotated.into());
        }
        if let Some(resource_url) = tokens.str("resource_url") {
            fields.insert("resource_url".into(), resource_url.into());
        }
        if let Some(expiry) = tokens.expiry() {
            fields.insert("expired".into(), expiry.into());
        }
        fields.insert("last_refresh".into(), oauth_http::now().into());
        Ok(fields)
    }
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("qwen3-coder-plus", "Qwen3 Coder Plus"),
    model("qwen3-coder-flash", "Qwen3 Coder Flash"),
    model("vision-model", "Qwen Vision"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, PROVIDER, dialect::OPENAI)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(alias: &str) -> LoginOptions {
        LoginOptions::from([(ALIAS.to_owned(), alias.to_owned())])
    }

    #[test]
    fn aliases_must_fit_a_file_name() {
        assert_eq!(alias(&options(" me@example.com ")).unwrap(), Some("me@example.com"));
        assert_eq!(alias(&options("  ")).unwrap(), None);
        assert_eq!(alias(&LoginOptions::new()).unwrap(), None);
        for bad in ["../x", "a/b", "a b", ".hidden", "a..b", "x\u{7}"] {
            assert!(matches!(alias(&options(bad)), Err(LoginError::InvalidInput(_))), "{bad:?}");
        }
        assert!(alias(&options(&"a".repeat(101))).is_err());
    }

    #[test]
    fn pkce_verifier_is_32_bytes_base64url_with_its_s256_challenge() {
        let (verifier, challenge) = pkce();
        assert_eq!(verifier.len(), 43);
        assert_eq!(URL_SAFE_NO_PAD.decode(&verifier).unwrap().len(), 32);
        assert_eq!(challenge, s256_challenge(&verifier));
        assert_ne!(pkce().0, verifier);
    }
}
