//! Codex: ChatGPT account OAuth (authorization code + PKCE, or the device-code variant of it);
//! upstream speaks the OpenAI Responses API.
//!
//! The device login (cpa-core §1.2) is OpenAI's own flow, not RFC 8628: the user code comes from
//! `deviceauth/usercode`, polls of `deviceauth/token` answer 403/404 while the user has not
//! confirmed, and the grant is an authorization code plus the PKCE verifier the server made for
//! it, exchanged at the normal token endpoint with the device callback as `redirect_uri`. The
//! resulting credential and file are the browser login's.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use switchyard_auth::Credential;
use switchyard_auth::login::{
    AuthorizeRequest, BrowserLogin, Login, LoginContext, LoginError, LoginOutcome, LoginSpec, RefreshError,
    TokenRefresher, jwt_claims,
};

use crate::oauth_http::{self, Standard, str_at};
use crate::{Endpoint, LoginKind, LoginMethod, ModelInfo, Provider, dialect};

mod device;

pub use device::CodexDevice;

/// The Codex CLI's public OAuth client.
const CLIENT_ID: &str = "app_EMoamEEZ73f0CkXaXp7hrann";
const SCOPE: &str = "openid email profile offline_access";
const REFRESH_SCOPE: &str = "openid profile email";
const AUTHORIZE_URL: &str = "https://auth.openai.com/oauth/authorize";
const TOKEN_URL: &str = "https://auth.openai.com/oauth/token";
/// The ChatGPT Codex backend (the executor's default).
const API_URL: &str = "https://chatgpt.com/backend-api/codex";
const DEVICE_URL: &str = "https://auth.openai.com/api/accounts/deviceauth/usercode";
const DEVICE_TOKEN_URL: &str = "https://auth.openai.com/api/accounts/deviceauth/token";

static ENDPOINTS: &[Endpoint] = &[
    Endpoint { name: "authorize", default: AUTHORIZE_URL },
    Endpoint { name: "token", default: TOKEN_URL },
    Endpoint { name: "api", default: API_URL },
    Endpoint { name: "device", default: DEVICE_URL },
    Endpoint { name: "device-token", default: DEVICE_TOKEN_URL },
    Endpoint { name: "usage", default: crate::quota::codex::USAGE_URL },
];
/// id_token claim object holding the ChatGPT account and plan.
const AUTH_CLAIM: &str = "https://api.openai.com/auth";

const REFRESH_LEAD: Duration = Duration::from_secs(5 * 24 * 60 * 60);

pub struct Codex;

impl Provider for Codex {
    fn id(&self) -> &'static str {
        "codex"
    }

    fn label(&self) -> &'static str {
        "Codex"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["codex"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    fn browser_login(&self) -> Option<Arc<dyn BrowserLogin>> {
        Some(Arc::new(Codex))
    }

    fn login_methods(&self) -> Vec<LoginMethod> {
        vec![
            LoginMethod {
                id: "browser",
                aliases: &[],
                label: "Browser login",
                kind: LoginKind::Browser,
                asks: &[],
                login: Login::Browser(Arc::new(Codex)),
            },
            LoginMethod {
                id: "device",
                aliases: &[],
                label: "Device code (sign in on another device)",
                kind: LoginKind::Device,
                asks: &[],
                login: Login::Device(Arc::new(CodexDevice)),
            },
        ]
    }

    fn endpoints(&self) -> &'static [Endpoint] {
        ENDPOINTS
    }

    fn refresher(&self) -> Option<Arc<dyn TokenRefresher>> {
        Some(Arc::new(Codex))
    }

    fn executor(&self) -> Option<Arc<dyn crate::executor::Executor>> {
        Some(Arc::new(crate::exec::CodexExecutor))
    }

    fn quota(&self) -> Option<Arc<dyn crate::quota::QuotaFetcher>> {
        Some(Arc::new(crate::quota::CodexQuota))
    }
}

#[async_trait::async_trait]
impl BrowserLogin for Codex {
    fn spec(&self) -> LoginSpec<'_> {
        LoginSpec {
            name: "codex",
            aliases: &["openai"],
            callback_route: "codex",
            default_callback_port: 1455,
            callback_path: "/auth/callback",
            pkce: true,
        }
    }

    fn authorize_url(&self, ctx: &LoginContext, request: &AuthorizeRequest<'_>) -> Result<String, LoginError> {
        let pkce = request.pkce.ok_or_else(missing_pkce)?;
        let base = ctx.endpoint("codex", "authorize", AUTHORIZE_URL);
        let params = [
            ("client_id", CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", request.redirect_uri),
            ("scope", SCOPE),
            ("state", request.state),
            ("code_challenge", pkce.challenge.as_str()),
            ("code_challenge_method", "S256"),
            ("prompt", "login"),
            ("id_token_add_organizations", "true"),
            ("codex_cli_simplified_flow", "true"),
        ];
        crate::oauth_http::url_with_params("Codex authorize URL", &base, &params)
    }

    async fn finish(
        &self,
        ctx: &LoginContext,
        code: &str,
        request: &AuthorizeRequest<'_>,
    ) -> Result<LoginOutcome, LoginError> {
        let pkce = request.pkce.ok_or_else(missing_pkce)?;
        exchange_code(ctx, code, request.redirect_uri, &pkce.verifier).await
    }
}

/// The authorization-code exchange both logins end with (the device login's code comes with its
/// own verifier and redirect URI): the tokens, the identity from the id_token, the file.
async fn exchange_code(
    ctx: &LoginContext,
    code: &str,
    redirect_uri: &str,
    verifier: &str,
) -> Result<LoginOutcome, LoginError> {
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT_ID),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    let tokens = oauth_http::exchange(token_request(ctx, &form), &Standard).await?;
    let id_token =
        tokens.str("id_token").ok_or_else(|| LoginError::Identity("token response has no id_token".into()))?;
    let identity = IdToken::parse(id_token).map_err(LoginError::Identity)?;
    let email = identity.email.ok_or_else(|| LoginError::Identity("id_token has no email".into()))?;
    let file_name = codex_file_name(&email, identity.account_id.as_deref(), identity.plan.as_deref());

    let mut credential = Credential::new("codex");
    let fields = credential.fields_mut();
    fields.insert("id_token".into(), id_token.into());
    fields.insert("access_token".into(), tokens.access_token().into());
    fields.insert("refresh_token".into(), tokens.str("refresh_token").unwrap_or_default().into());
    fields.insert("account_id".into(), identity.account_id.unwrap_or_default().into());
    fields.insert("email".into(), email.into());
    fields.insert("last_refresh".into(), oauth_http::now().into());
    if let Some(expiry) = tokens.expiry() {
        fields.insert("expired".into(), expiry.into());
    }
    fields.insert("disabled".into(), false.into());
    Ok(LoginOutcome { file_name, credential })
}

#[async_trait::async_trait]
impl TokenRefresher for Codex {
    fn refresh_lead(&self) -> Option<Duration> {
        Some(REFRESH_LEAD)
    }

    async fn refresh(&self, ctx: &LoginContext, credential: &Credential) -> Result<Map<String, Value>, RefreshError> {
        let refresh_token = credential.refresh_token().ok_or(RefreshError::NoRefreshToken)?;
        let form = [
            ("client_id", CLIENT_ID),
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
            ("scope", REFRESH_SCOPE),
        ];
        let tokens = oauth_http::refresh(token_request(ctx, &form), &Standard).await?;

        let mut fields = Map::new();
        fields.insert("access_token".into(), tokens.access_token().into());
        // Without a new refresh token the old one stays valid (and stays in the file).
        if let Some(rotated) = tokens.str("refresh_token") {
            fields.insert("refresh_token".into(), rotated.into());
        }
        if let Some(id_token) = tokens.str("id_token") {
            fields.insert("id_token".into(), id_token.into());
            // The refresh token has already rotated, so an unreadable id_token must not fail the
            // refresh (that would lose the new tokens); the identity fields just stay as they are.
            match IdToken::parse(id_token) {
                Ok(identity) => {
                    for (key, value) in [("account_id", identity.account_id), ("email", identity.email)] {
                        if let Some(value) = value {
                            fields.insert(key.into(), value.into());
                        }
                    }
                }
                Err(reason) => tracing::warn!(%reason, "refreshed Codex id_token is unreadable; identity kept"),
            }
        }
        if let Some(expiry) = tokens.expiry() {
            fields.insert("expired".into(), expiry.into());
        }
        fields.insert("last_refresh".into(), oauth_http::now().into());
        Ok(fields)
    }
}

/// The auth-file name CPA gives a Codex login: `codex-<hash8>-<email>-<plan>.json`, where
/// `hash8` is the first 8 hex digits of SHA-256(ChatGPT account id) and `plan` the plan type in
/// lower case with every run of other characters turned into `-` ("Team Plan" → `team-plan`).
/// A blank account id drops the hash part, a blank plan the plan part.
pub fn codex_file_name(email: &str, account_id: Option<&str>, plan: Option<&str>) -> String {
    let hash = account_id
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(|id| hex::encode(Sha256::digest(id.as_bytes()))[..8].to_owned());
    let plan = plan.map(normalise_plan).filter(|p| !p.is_empty());
    let parts = ["codex"].into_iter().chain(hash.as_deref()).chain([email.trim()]).chain(plan.as_deref());
    format!("{}.json", parts.collect::<Vec<_>>().join("-"))
}

/// Lower-case alphanumeric words joined by `-`.
fn normalise_plan(plan: &str) -> String {
    plan.split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

fn missing_pkce() -> LoginError {
    LoginError::Provider("Codex login needs PKCE".into())
}

fn token_request(ctx: &LoginContext, form: &[(&str, &str)]) -> reqwest::RequestBuilder {
    ctx.http.post(ctx.endpoint("codex", "token", TOKEN_URL)).header(header::ACCEPT, "application/json").form(form)
}

/// What the id_token says about the account. Read without checking the signature: the token
/// came straight from the token endpoint over TLS, which is what vouches for it.
struct IdToken {
    email: Option<String>,
    account_id: Option<String>,
    plan: Option<String>,
}

impl IdToken {
    /// Errors name the defect only; the token itself never appears.
    fn parse(jwt: &str) -> Result<IdToken, String> {
        let claims = Value::Object(jwt_claims(jwt).map_err(|e| format!("id_token: {e}"))?);
        let get = |path: &[&str]| str_at(&claims, path).map(str::to_owned);
        Ok(IdToken {
            email: get(&["email"]),
            account_id: get(&[AUTH_CLAIM, "chatgpt_account_id"]),
            plan: get(&[AUTH_CLAIM, "chatgpt_plan_type"]),
        })
    }
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("gpt-5", "GPT-5"),
    model("gpt-5-codex", "GPT-5 Codex"),
    model("gpt-5-codex-mini", "GPT-5 Codex Mini"),
    model("gpt-5.1", "GPT-5.1"),
    model("gpt-5.1-codex", "GPT-5.1 Codex"),
    model("gpt-5.1-codex-mini", "GPT-5.1 Codex Mini"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "openai", dialect::OPENAI)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    /// The first 8 hex digits of SHA-256("acct-123") (from `sha256sum`).
    const HASH8: &str = "3abf465e";

    #[test]
    fn file_name_has_hash_email_and_plan() {
        let name = codex_file_name("user@example.com", Some("acct-123"), Some("Team Plan"));
        assert_eq!(name, format!("codex-{HASH8}-user@example.com-team-plan.json"));
    }

    #[test]
    fn file_name_fallbacks_drop_missing_parts() {
        assert_eq!(codex_file_name("u@x.io", None, Some("plus")), "codex-u@x.io-plus.json");
        assert_eq!(codex_file_name("u@x.io", Some("acct-123"), None), format!("codex-{HASH8}-u@x.io.json"));
        assert_eq!(codex_file_name("u@x.io", None, None), "codex-u@x.io.json");
        assert_eq!(codex_file_name(" u@x.io ", Some("  "), Some(" -- ")), "codex-u@x.io.json");
        assert_eq!(codex_file_name("u@x.io", Some(" acct-123 "), Some("")), format!("codex-{HASH8}-u@x.io.json"));
    }

    #[test]
    fn plan_is_lower_cased_with_separator_runs_collapsed() {
        assert_eq!(normalise_plan("Team Plan"), "team-plan");
        assert_eq!(normalise_plan("  PRO__plus!!2 "), "pro-plus-2");
        assert_eq!(normalise_plan("free"), "free");
        assert_eq!(normalise_plan("--"), "");
    }

    fn jwt(payload: &str) -> String {
        format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn id_token_claims_are_read_without_a_signature_check() {
        let token = jwt(
            r#"{"email":"a@b.c","https://api.openai.com/auth":{"chatgpt_account_id":"acct","chatgpt_plan_type":"plus"}}"#,
        );
        let identity = IdToken::parse(&token).unwrap();
        assert_eq!(identity.email.as_deref(), Some("a@b.c"));
        assert_eq!(identity.account_id.as_deref(), Some("acct"));
        assert_eq!(identity.plan.as_deref(), Some("plus"));

        let padded = format!("e30.{}==.sig", URL_SAFE_NO_PAD.encode(r#"{"email":"x@y.z"}"#));
        assert_eq!(IdToken::parse(&padded).unwrap().email.as_deref(), Some("x@y.z"));
        assert!(IdToken::parse(&jwt("{}")).unwrap().email.is_none());
    }

    #[test]
    fn malformed_id_tokens_are_rejected_without_echoing_them() {
        let not_json = format!("e30.{}.sig", URL_SAFE_NO_PAD.encode("secret-ish"));
        let not_object = jwt("[1]");
        for bad in ["opaque-token-value", "a.b", "a.b.c.d", "e30.!!!.sig", not_json.as_str(), not_object.as_str()] {
            let err = IdToken::parse(bad).err().unwrap_or_else(|| panic!("{bad} parsed"));
            assert!(!err.contains(bad), "{err}");
        }
    }
}
