//! One module per upstream provider, and the registry that lists them.
//!
//! Callers (router, server, panel) learn about providers only through [`all`], [`by_id`] and
//! [`for_file_type`], never by matching on provider names, so adding a provider is one new module
//! plus one line in `REGISTRY`.

use std::sync::Arc;

use switchyard_auth::login::{BrowserLogin, Login, TokenRefresher};

pub mod antigravity;
pub mod claude;
pub mod codex;
pub mod custom;
mod device_http;
pub mod exec;
pub mod executor;
pub mod gemini_cli;
pub mod github_copilot;
mod google_oauth;
pub mod iflow;
pub mod kimi;
pub mod kiro;
mod oauth_http;
pub mod quota;
pub mod qwen;
mod registry;
mod upload_check;
pub mod vertex;
pub mod xai;

/// What a provider is: identity, catalogue, logins, refresh, executor and quota. New methods get
/// default bodies or are implemented by every module here, so callers never change.
pub trait Provider: Send + Sync + 'static {
    /// Provider key used in routing and listings, e.g. `"claude"`, `"gemini-cli"`.
    fn id(&self) -> &'static str;

    /// Human name, e.g. `"Claude Code"`.
    fn label(&self) -> &'static str;

    /// Auth-file `type` values this provider owns (lower case).
    fn file_types(&self) -> &'static [&'static str];

    /// Key under which config `oauth-excluded-models` / `oauth-model-alias` hold this provider's
    /// rules. Every CPA channel equals its provider key, so only a provider that breaks that
    /// rule needs to override this.
    fn channel(&self) -> &'static str {
        self.id()
    }

    /// Static model catalogue, in listing order.
    fn models(&self) -> &'static [ModelInfo];

    /// Browser (authorization-code) login, if the provider offers one. An `Arc` because a login
    /// outlives the request that started it (providers are unit structs: `Some(Arc::new(Self))`).
    fn browser_login(&self) -> Option<Arc<dyn BrowserLogin>> {
        None
    }

    /// Every way to add an account of this provider, the default first (the one
    /// `GET /v0/management/<login>-auth-url` and `switchyard login <login>` use without a
    /// `method`). By default: the [`browser_login`](Provider::browser_login), asking nothing.
    fn login_methods(&self) -> Vec<LoginMethod> {
        self.browser_login()
            .map(|login| LoginMethod {
                id: "browser",
                aliases: &[],
                label: "Browser login",
                kind: LoginKind::Browser,
                asks: &[],
                login: Login::Browser(login),
            })
            .into_iter()
            .collect()
    }

    /// Every upstream URL the provider calls, by the name `upstream-urls.<id>.<name>`
    /// overrides, with its built-in default (panels and `switchyard providers` list them).
    fn endpoints(&self) -> &'static [Endpoint] {
        &[]
    }

    /// Token renewal, if the provider's credentials expire (`Some(Arc::new(Self))`).
    fn refresher(&self) -> Option<Arc<dyn TokenRefresher>> {
        None
    }

    /// How requests reach this provider's upstream, if Switchyard can serve it yet.
    fn executor(&self) -> Option<Arc<dyn executor::Executor>> {
        None
    }

    /// Where this provider's accounts tell how much quota they have left, if anywhere.
    fn quota(&self) -> Option<Arc<dyn quota::QuotaFetcher>> {
        None
    }

    /// What an auth file of this provider must hold to be usable (what its refresher and
    /// executor read); an upload missing one is refused, naming it. By default: a token.
    fn required_fields(&self) -> &'static [RequiredField] {
        &[required::ANY_TOKEN]
    }
}

/// One thing an auth file must hold: `name` is what errors call it (a key, or "a or b").
#[derive(Clone, Copy)]
pub struct RequiredField {
    pub name: &'static str,
    pub present: fn(&switchyard_auth::Credential) -> bool,
}

impl std::fmt::Debug for RequiredField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequiredField").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Requirements several providers share.
pub mod required {
    use super::RequiredField;

    /// An access token (the executor's) or a refresh token (the refresher gets one from it),
    /// top level or nested under `token`, as [`switchyard_auth::Credential`] reads them.
    pub const ANY_TOKEN: RequiredField = RequiredField {
        name: "access_token or refresh_token",
        present: |c| c.access_token().is_some() || c.refresh_token().is_some(),
    };
}

/// Values of [`ModelInfo::kind`]: the dialect family the upstream speaks for that model.
pub mod dialect {
    pub const CLAUDE: &str = "claude";
    pub const OPENAI: &str = "openai";
    pub const GEMINI: &str = "gemini";
}

/// One catalogue entry. `id` is the name sent upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ModelInfo {
    pub id: &'static str,
    pub display_name: &'static str,
    pub owned_by: &'static str,
    /// One of the [`dialect`] constants.
    #[serde(rename = "type")]
    pub kind: &'static str,
}

impl ModelInfo {
    pub const fn new(id: &'static str, display_name: &'static str, owned_by: &'static str, kind: &'static str) -> Self {
        Self { id, display_name, owned_by, kind }
    }
}

pub use registry::{Capability, ConfigLookup, LoginCapability, Registry};
pub use upload_check::UploadProblem;

/// How a login method works, as panels present it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginKind {
    /// Authorization code in a browser (local callback, or a pasted callback URL).
    Browser,
    /// A code the user enters on the provider's page (RFC 8628 and variants).
    Device,
    /// A file the user already has (service-account key, another tool's token cache).
    Import,
    /// A browser cookie pasted by the user.
    Cookie,
}

/// What kind of value an [`Ask`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AskKind {
    Text,
    /// Shown masked, never echoed back (cookies).
    Secret,
    /// An uploaded file (multipart field `file`, or a path on the CLI).
    File,
}

/// One thing a login method asks the user for. `name` is the option key (query parameter of
/// the management start call, `--<name with - for _>` on the CLI, multipart field for imports).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Ask {
    pub name: &'static str,
    pub label: &'static str,
    #[serde(rename = "type")]
    pub kind: AskKind,
    pub required: bool,
    /// Used when the user gives nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<&'static str>,
}

/// One way to add an account.
#[derive(Clone)]
pub struct LoginMethod {
    /// `browser`, `device`, `builder-id`, `idc`, `google`, `github`, `import`, `cookie`, ...:
    /// the `method` parameter of the management start call and `--method` of the CLI.
    pub id: &'static str,
    /// Other values accepted for `method` (CPA's `aws` for Kiro's `builder-id`).
    pub aliases: &'static [&'static str],
    pub label: &'static str,
    pub kind: LoginKind,
    pub asks: &'static [Ask],
    pub login: Login,
}

impl LoginMethod {
    pub fn answers_to(&self, method: &str) -> bool {
        self.id.eq_ignore_ascii_case(method) || self.aliases.iter().any(|a| a.eq_ignore_ascii_case(method))
    }
}

/// One upstream URL of a provider: `upstream-urls.<provider>.<name>` overrides `default`.
/// Placeholders in braces (`{region}`, `{location}`) are filled per account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Endpoint {
    pub name: &'static str,
    pub default: &'static str,
}

static REGISTRY: &[&dyn Provider] = &[
    &claude::Claude,
    &codex::Codex,
    &gemini_cli::GeminiCli,
    &antigravity::Antigravity,
    &vertex::Vertex,
    &kimi::Kimi,
    &xai::Xai,
    &qwen::Qwen,
    &iflow::Iflow,
    &github_copilot::GithubCopilot,
    &kiro::Kiro,
];

/// Every known provider, in a stable order.
pub fn all() -> &'static [&'static dyn Provider] {
    REGISTRY
}

/// The provider owning an auth-file `type` (case-insensitive; `"gemini"` is Gemini CLI).
pub fn for_file_type(file_type: &str) -> Option<&'static dyn Provider> {
    REGISTRY.iter().copied().find(|p| p.file_types().iter().any(|t| t.eq_ignore_ascii_case(file_type)))
}

/// The provider with this exact key (keys are canonical lower case, as written by us).
pub fn by_id(id: &str) -> Option<&'static dyn Provider> {
    REGISTRY.iter().copied().find(|p| p.id() == id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Channels CPA uses as keys of `oauth-excluded-models` / `oauth-model-alias`.
    const CPA_CHANNELS: &[&str] = &[
        "claude",
        "codex",
        "antigravity",
        "gemini-cli",
        "vertex",
        "kimi",
        "xai",
        "qwen",
        "iflow",
        "github-copilot",
        "kiro",
    ];

    #[test]
    fn ids_are_unique_and_resolvable() {
        let mut ids = HashSet::new();
        for p in all() {
            assert!(ids.insert(p.id()), "duplicate provider id {}", p.id());
            assert!(!p.label().is_empty(), "{} has no label", p.id());
            assert_eq!(by_id(p.id()).map(|q| q.id()), Some(p.id()));
        }
    }

    #[test]
    fn every_cpa_channel_has_a_provider() {
        let channels: HashSet<_> = all().iter().map(|p| p.channel()).collect();
        for c in CPA_CHANNELS {
            assert!(channels.contains(c), "no provider for channel {c}");
        }
    }

    #[test]
    fn catalogues_are_non_empty_with_unique_ids_and_known_dialects() {
        for p in all() {
            let models = p.models();
            assert!(!models.is_empty(), "{} has no models", p.id());
            let mut ids = HashSet::new();
            for m in models {
                assert!(ids.insert(m.id), "{}: duplicate model {}", p.id(), m.id);
                assert!(!m.display_name.is_empty() && !m.owned_by.is_empty());
                assert!(
                    [dialect::CLAUDE, dialect::OPENAI, dialect::GEMINI].contains(&m.kind),
                    "{}: {} has unknown kind {}",
                    p.id(),
                    m.id,
                    m.kind
                );
            }
        }
    }

    #[test]
    fn every_file_type_belongs_to_exactly_one_provider() {
        let mut seen = HashSet::new();
        for p in all() {
            assert!(!p.file_types().is_empty(), "{} owns no file type", p.id());
            for t in p.file_types() {
                assert_eq!(*t, t.to_ascii_lowercase(), "file types are stored lower case");
                assert!(seen.insert(*t), "file type {t} claimed twice");
                assert_eq!(for_file_type(t).map(|q| q.id()), Some(p.id()));
            }
        }
    }

    #[test]
    fn file_type_lookup_maps_gemini_and_ignores_case() {
        let id = |t| for_file_type(t).map(|p| p.id());
        assert_eq!(id("gemini"), Some("gemini-cli"));
        assert_eq!(id("gemini-cli"), Some("gemini-cli"));
        assert_eq!(id("GEMINI"), Some("gemini-cli"));
        assert_eq!(id("Claude"), Some("claude"));
        assert_eq!(id("GitHub-Copilot"), Some("github-copilot"));
    }

    #[test]
    fn unknown_lookups_are_none() {
        assert!(for_file_type("openai").is_none());
        assert!(for_file_type("").is_none());
        assert!(by_id("gemini").is_none(), "file types are not provider ids");
        assert!(by_id("nope").is_none());
    }

    #[test]
    fn model_info_serialises_kind_as_type() {
        let m = ModelInfo::new("m", "M", "o", dialect::OPENAI);
        assert_eq!(
            serde_json::to_value(m).unwrap(),
            serde_json::json!({"id": "m", "display_name": "M", "owned_by": "o", "type": "openai"})
        );
    }
}
