//! Kiro (AWS CodeWhisperer / Amazon Q), spec providers-extra §2 and cpa-core §1.11.
//!
//! Ways to add an account, all under the login name `kiro`:
//!
//! | method | kind | file |
//! |---|---|---|
//! | `builder-id` (alias `aws`) | AWS Builder ID device flow (SSO-OIDC, fresh client per login) | `kiro-aws-<id>.json` |
//! | `idc` | the same flow against an IAM Identity Center start URL and region | `kiro-idc-<id>.json` |
//! | `google`, `github` | Kiro social login (PKCE, `kiro://` redirect, pasted back) | `kiro-google-<id>.json`, `kiro-github-<id>.json` |
//! | `import` | the Kiro IDE's token cache (`~/.aws/sso/cache/kiro-auth-token.json`) | `kiro-<provider or imported>-<id>.json` |
//!
//! `<id>` is the sanitised email (spec §2.4) when one is known, else the last segment of the
//! profile ARN, else `unix_nanos % 100000` (the spec's fallbacks; AWS tokens are usually opaque).
//!
//! Endpoints (`upstream-urls.kiro.<name>`): `oidc` (`{region}` is filled per login / account),
//! `social`, `api` (CodeWhisperer) and `q-api` (Amazon Q). A configured URL always wins.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use switchyard_auth::Credential;
use switchyard_auth::login::{Login, TokenRefresher, jwt_claims};

use crate::oauth_http::{self, str_at};
use crate::{Ask, AskKind, Endpoint, LoginKind, LoginMethod, ModelInfo, Provider, dialect};

mod device;
mod import;
mod refresh;
mod social;

pub use device::{DeviceKind, KiroDeviceLogin};
pub use import::{IDE_TOKEN_FILE, KiroImport};
pub use refresh::KiroRefresher;
pub use social::{KiroSocialLogin, REDIRECT_URI, SocialIdp};

/// Provider key, login name and auth-file `type`.
pub const ID: &str = "kiro";
/// Everything Kiro's own services live in.
pub const DEFAULT_REGION: &str = "us-east-1";
/// AWS Builder ID's start URL (IdC logins bring their own).
pub const BUILDER_ID_START_URL: &str = "https://view.awsapps.com/start";
/// The AWS SSO-OIDC host of a region.
pub const OIDC_URL: &str = "https://oidc.{region}.amazonaws.com";
/// The Kiro auth service (social login and its refresh).
pub const SOCIAL_URL: &str = "https://prod.us-east-1.auth.desktop.kiro.dev";
/// CodeWhisperer streaming API (`/generateAssistantResponse`, origin `AI_EDITOR`).
pub const API_URL: &str = "https://codewhisperer.us-east-1.amazonaws.com";
/// Amazon Q developer streaming API (`/`, `SendMessage`, origin `CLI`).
pub const Q_API_URL: &str = "https://q.us-east-1.amazonaws.com";
/// CPA sends this to the Kiro auth service.
pub(crate) const SOCIAL_USER_AGENT: &str = "cli-proxy-api/1.0.0";
/// AWS's access tokens live an hour; a 20-minute lead (cpa-core's newer fork, rather than the
/// older snapshot's 5 minutes) leaves room for the refresher's 1-minute-doubling backoff to retry
/// a transient failure several times before the token actually runs out.
pub const REFRESH_LEAD: Duration = Duration::from_secs(20 * 60);

const ENDPOINTS: &[Endpoint] = &[
    Endpoint { name: "oidc", default: OIDC_URL },
    Endpoint { name: "social", default: SOCIAL_URL },
    Endpoint { name: "api", default: API_URL },
    Endpoint { name: "q-api", default: Q_API_URL },
    Endpoint { name: "quota", default: API_URL },
];

const IDC_ASKS: &[Ask] = &[
    Ask {
        name: "start_url",
        label: "IAM Identity Center start URL (https://<org>.awsapps.com/start)",
        kind: AskKind::Text,
        required: true,
        default: None,
    },
    Ask { name: "region", label: "AWS region", kind: AskKind::Text, required: false, default: Some(DEFAULT_REGION) },
];

const IMPORT_ASKS: &[Ask] = &[Ask {
    name: "file",
    label: "Kiro IDE token file",
    kind: AskKind::File,
    required: true,
    default: Some(IDE_TOKEN_FILE),
}];

pub struct Kiro;

impl Provider for Kiro {
    fn id(&self) -> &'static str {
        ID
    }

    fn label(&self) -> &'static str {
        "Kiro"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &[ID]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }

    fn login_methods(&self) -> Vec<LoginMethod> {
        vec![
            LoginMethod {
                id: "builder-id",
                aliases: &["aws"],
                label: "AWS Builder ID",
                kind: LoginKind::Device,
                asks: &[],
                login: Login::Device(Arc::new(KiroDeviceLogin::new(DeviceKind::BuilderId))),
            },
            LoginMethod {
                id: "idc",
                aliases: &[],
                label: "AWS IAM Identity Center",
                kind: LoginKind::Device,
                asks: IDC_ASKS,
                login: Login::Device(Arc::new(KiroDeviceLogin::new(DeviceKind::Idc))),
            },
            LoginMethod {
                id: "google",
                aliases: &[],
                label: "Google (Kiro social login)",
                kind: LoginKind::Browser,
                asks: &[],
                login: Login::Browser(Arc::new(KiroSocialLogin::new(SocialIdp::Google))),
            },
            LoginMethod {
                id: "github",
                aliases: &[],
                label: "GitHub (Kiro social login)",
                kind: LoginKind::Browser,
                asks: &[],
                login: Login::Browser(Arc::new(KiroSocialLogin::new(SocialIdp::Github))),
            },
            LoginMethod {
                id: "import",
                aliases: &[],
                label: "Import the Kiro IDE's token file",
                kind: LoginKind::Import,
                asks: IMPORT_ASKS,
                login: Login::Import(Arc::new(KiroImport)),
            },
        ]
    }

    fn endpoints(&self) -> &'static [Endpoint] {
        ENDPOINTS
    }

    fn refresher(&self) -> Option<Arc<dyn TokenRefresher>> {
        Some(Arc::new(KiroRefresher))
    }

    fn executor(&self) -> Option<Arc<dyn crate::executor::Executor>> {
        Some(Arc::new(crate::exec::kiro::KiroExecutor))
    }

    fn quota(&self) -> Option<Arc<dyn crate::quota::QuotaFetcher>> {
        Some(Arc::new(crate::quota::KiroQuota))
    }
}

/// Kiro's auth service words its errors as `{"message"}` (with an `error` code on the code
/// exchange): the standard text, plus that message (scrubbed) when there is no description.
pub(crate) struct KiroWording;

impl oauth_http::Wording for KiroWording {
    fn error_answer(&self, reply: &oauth_http::Reply) -> String {
        let standard = oauth_http::Standard.error_answer(reply);
        let message = reply.json().and_then(|body| str_at(&body, &["message"]).map(|m| reply.scrub(m)));
        match message {
            Some(message) if !standard.ends_with(')') => format!("{standard} ({message})"),
            _ => standard,
        }
    }
}

/// A file-name part as CPA sanitises it (spec §2.4): URL-escaped separators, dots and NULs and
/// any other `%` become `_`; path and shell-special characters, spaces and NUL become `_`; and
/// every `_`-separated part loses its leading dots (each becomes `_`), so nothing can climb out
/// of the auth dir or hide a file.
pub fn sanitise_file_part(raw: &str) -> String {
    let mut text = raw.trim().to_owned();
    for escaped in ["%2F", "%2f", "%5C", "%5c", "%2E", "%2e", "%00"] {
        text = text.replace(escaped, "_");
    }
    let text: String = text
        .chars()
        .map(|c| match c {
            '%' | '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' | ' ' | '\0' => '_',
            other => other,
        })
        .collect();
    text.split('_')
        .map(|part| {
            let dots = part.len() - part.trim_start_matches('.').len();
            format!("{}{}", "_".repeat(dots), &part[dots..])
        })
        .collect::<Vec<_>>()
        .join("_")
}

/// `kiro-<kind>-<id>.json`: `<id>` from the email, else the profile ARN's last segment, else
/// `unix_nanos % 100000` (spec §2.4).
pub fn kiro_file_name(kind: &str, email: Option<&str>, profile_arn: Option<&str>) -> String {
    let from_arn = profile_arn.and_then(|arn| arn.rsplit('/').next()).map(str::trim).filter(|s| !s.is_empty());
    let id = match email.map(str::trim).filter(|e| !e.is_empty()).or(from_arn) {
        Some(id) => sanitise_file_part(id),
        None => {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            format!("{:05}", nanos % 100_000)
        }
    };
    format!("{ID}-{}-{id}.json", sanitise_file_part(kind))
}

/// The email in an access token, when it is a JWT: `email`, else `preferred_username` or `sub`
/// if it looks like an address (spec §2.1 step 6). AWS tokens are often opaque: then `None`.
pub(crate) fn email_from_token(token: &str) -> Option<String> {
    let claims = Value::Object(jwt_claims(token).ok()?);
    str_at(&claims, &["email"])
        .or_else(|| {
            ["preferred_username", "sub"].iter().find_map(|k| str_at(&claims, &[k]).filter(|v| v.contains('@')))
        })
        .map(str::to_owned)
}

/// `now + expiresIn` (Kiro and AWS answer camelCase; a missing or non-positive value means one
/// hour, as CPA reads it) in CPA's RFC 3339 form.
pub(crate) fn expiry_from(answer: &Value) -> String {
    let seconds = ["expiresIn", "expires_in"]
        .iter()
        .find_map(|key| match answer.get(*key)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .filter(|s| *s > 0)
        .unwrap_or(3600);
    let lifetime = chrono::Duration::try_seconds(seconds).unwrap_or(chrono::Duration::hours(1));
    let at = chrono::Local::now().checked_add_signed(lifetime).unwrap_or_else(chrono::Local::now);
    oauth_http::rfc3339(at)
}

/// The refresh token of a token answer (camelCase first).
pub(crate) fn refresh_token_of(answer: &Value) -> Option<&str> {
    str_at(answer, &["refreshToken"]).or_else(|| str_at(answer, &["refresh_token"]))
}

/// The SSO-OIDC base URL for `region`: the configured `upstream-urls.kiro.oidc` (with any
/// `{region}` filled in) or AWS's regional host.
pub(crate) fn oidc_base(ctx: &switchyard_auth::login::LoginContext, region: &str) -> String {
    ctx.endpoint(ID, "oidc", OIDC_URL).replace("{region}", region)
}

/// A region name as AWS spells them (`us-east-1`, `eu-central-1`, `us-gov-west-1`): lower-case
/// words and a number joined by `-`. Anything else never reaches a URL.
pub(crate) fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// Inserts `value` under `key` when it is `Some`.
pub(crate) fn put(fields: &mut Map<String, Value>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        fields.insert(key.into(), value.into());
    }
}

/// How a Kiro credential authenticates, read from either casing (our snake_case files and the
/// Kiro IDE's camelCase cache).
pub(crate) struct KiroAccount<'a> {
    credential: &'a Credential,
}

impl<'a> KiroAccount<'a> {
    pub(crate) fn new(credential: &'a Credential) -> Self {
        Self { credential }
    }

    fn field(&self, snake: &str, camel: &str) -> Option<&'a str> {
        self.credential.str_field(snake).or_else(|| self.credential.str_field(camel))
    }

    pub(crate) fn auth_method(&self) -> Option<&'a str> {
        self.field("auth_method", "authMethod")
    }

    pub(crate) fn client(&self) -> Option<(&'a str, &'a str)> {
        Some((self.field("client_id", "clientId")?, self.field("client_secret", "clientSecret")?))
    }

    pub(crate) fn region(&self) -> &'a str {
        self.field("region", "region").unwrap_or(DEFAULT_REGION)
    }

    pub(crate) fn profile_arn(&self) -> Option<&'a str> {
        self.field("profile_arn", "profileArn")
    }

    /// Builder ID and IdC tokens come from SSO-OIDC and refresh there; the Kiro IDE writes
    /// `IdC` for both. Social (and unknown) ones refresh at the Kiro auth service.
    pub(crate) fn uses_oidc(&self) -> bool {
        match self.auth_method() {
            Some(method) => ["builder-id", "idc", "builderid"].iter().any(|m| method.eq_ignore_ascii_case(m)),
            None => self.client().is_some(),
        }
    }

    pub(crate) fn preferred_endpoint(&self) -> Option<&'a str> {
        self.field("preferred_endpoint", "preferredEndpoint")
    }
}

// Static until the live model-list refresh lands (spec §2.6: 200k context, 64k output).
const MODELS: &[ModelInfo] = &[
    model("kiro-claude-opus-4-5", "Kiro Claude Opus 4.5"),
    model("kiro-claude-sonnet-4-5", "Kiro Claude Sonnet 4.5"),
    model("kiro-claude-sonnet-4", "Kiro Claude Sonnet 4"),
    model("kiro-claude-haiku-4-5", "Kiro Claude Haiku 4.5"),
    model("kiro-claude-opus-4-5-agentic", "Kiro Claude Opus 4.5 (Agentic)"),
    model("kiro-claude-sonnet-4-5-agentic", "Kiro Claude Sonnet 4.5 (Agentic)"),
    model("kiro-claude-sonnet-4-agentic", "Kiro Claude Sonnet 4 (Agentic)"),
    model("kiro-claude-haiku-4-5-agentic", "Kiro Claude Haiku 4.5 (Agentic)"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "aws", dialect::CLAUDE)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;

    #[test]
    fn sanitiser_follows_the_spec() {
        assert_eq!(sanitise_file_part("dev@example.com"), "dev@example.com");
        assert_eq!(sanitise_file_part("a/b\\c:d*e?f\"g<h>i|j k"), "a_b_c_d_e_f_g_h_i_j_k");
        assert_eq!(sanitise_file_part("x%2Fy%2fz%5Cw%5cv%2Eu%2et%00s%41"), "x_y_z_w_v_u_t_s_41");
        assert_eq!(sanitise_file_part("../../etc/passwd"), "______etc_passwd");
        assert_eq!(sanitise_file_part(".hidden"), "_hidden");
        assert_eq!(sanitise_file_part("a_..b_.c"), "a___b__c");
        assert_eq!(sanitise_file_part("nul\0byte"), "nul_byte");
    }

    #[test]
    fn file_names_fall_back_from_email_to_profile_arn_to_a_number() {
        assert_eq!(kiro_file_name("aws", Some("dev@example.com"), None), "kiro-aws-dev@example.com.json");
        let arn = "arn:aws:codewhisperer:us-east-1:699475941385:profile/EHGA3GRVQMUK";
        assert_eq!(kiro_file_name("google", None, Some(arn)), "kiro-google-EHGA3GRVQMUK.json");
        assert_eq!(kiro_file_name("github", Some("  "), Some(arn)), "kiro-github-EHGA3GRVQMUK.json");
        let name = kiro_file_name("idc", None, None);
        let id = name.strip_prefix("kiro-idc-").and_then(|n| n.strip_suffix(".json")).unwrap();
        assert!(id.len() == 5 && id.chars().all(|c| c.is_ascii_digit()), "{name}");
    }

    #[test]
    fn emails_come_from_jwt_claims_only() {
        let jwt = |claims: &str| format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(claims));
        assert_eq!(email_from_token(&jwt(r#"{"email":"a@b.c"}"#)).as_deref(), Some("a@b.c"));
        assert_eq!(email_from_token(&jwt(r#"{"preferred_username":"p@q.r"}"#)).as_deref(), Some("p@q.r"));
        assert_eq!(email_from_token(&jwt(r#"{"sub":"s@t.u"}"#)).as_deref(), Some("s@t.u"));
        assert_eq!(email_from_token(&jwt(r#"{"sub":"user-123"}"#)), None);
        assert_eq!(email_from_token("aoaAAAAAGopaque"), None);
    }

    #[test]
    fn regions_must_look_like_aws_regions() {
        for ok in ["us-east-1", "eu-central-1", "us-gov-west-1", "ap-southeast-2"] {
            assert!(valid_region(ok), "{ok}");
        }
        for bad in ["", "us-east", "US-EAST-1", "us-east-1/../x", "us_east_1", "evil.com#-a-1", "us--1"] {
            assert!(!valid_region(bad), "{bad}");
        }
    }

    #[test]
    fn expiry_defaults_to_an_hour_for_missing_or_non_positive_lifetimes() {
        let lifetime = |answer: Value| {
            let at = chrono::DateTime::parse_from_rfc3339(&expiry_from(&answer)).unwrap();
            (at.to_utc() - chrono::Utc::now()).num_seconds()
        };
        assert!((3590..=3600).contains(&lifetime(serde_json::json!({"expiresIn": 3600}))));
        assert!((3590..=3600).contains(&lifetime(serde_json::json!({"expiresIn": 0}))));
        assert!((3590..=3600).contains(&lifetime(serde_json::json!({}))));
        assert!((28790..=28800).contains(&lifetime(serde_json::json!({"expiresIn": "28800"}))));
    }

    #[test]
    fn endpoints_and_login_methods_are_declared() {
        let names: Vec<_> = Kiro.endpoints().iter().map(|e| (e.name, e.default)).collect();
        assert_eq!(
            names,
            [
                ("oidc", "https://oidc.{region}.amazonaws.com"),
                ("social", "https://prod.us-east-1.auth.desktop.kiro.dev"),
                ("api", "https://codewhisperer.us-east-1.amazonaws.com"),
                ("q-api", "https://q.us-east-1.amazonaws.com"),
                ("quota", "https://codewhisperer.us-east-1.amazonaws.com"),
            ]
        );
        let methods: Vec<_> = Kiro.login_methods().iter().map(|m| (m.id, m.kind, m.login.name().to_owned())).collect();
        assert_eq!(
            methods,
            [
                ("builder-id", LoginKind::Device, "kiro".to_owned()),
                ("idc", LoginKind::Device, "kiro".to_owned()),
                ("google", LoginKind::Browser, "kiro".to_owned()),
                ("github", LoginKind::Browser, "kiro".to_owned()),
                ("import", LoginKind::Import, "kiro".to_owned()),
            ]
        );
        assert!(Kiro.login_methods()[0].answers_to("aws"));
    }
}
