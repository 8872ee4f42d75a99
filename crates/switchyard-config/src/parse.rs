//! `parse`: YAML text -> validated [`Config`] plus warnings for keys we do not know.

use std::collections::HashSet;
use std::fmt;

use serde::Deserialize;
use url::Url;

use crate::model::{ApiKeyEntry, CompatApiKeyEntry, Config, CustomOAuthProvider};
use crate::yaml::{self, De, DeError, Kind, Node, Unknowns};

/// Result of a successful [`parse`].
#[derive(Clone, Debug, PartialEq)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Warning>,
}

/// A problem that does not stop the document from loading (an unknown key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Dotted key path, list items as `[i]`: `claude-api-key[0].base-ur`.
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}, ")?;
        }
        write!(f, "key `{}`: {}", self.path, self.message)
    }
}

/// Why a document was rejected. Messages never contain key or secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ConfigError {
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// Dotted path of the offending value, as in [`Warning::path`].
    pub field: Option<String>,
    pub message: String,
}

impl ConfigError {
    /// An error not tied to a place in the document.
    pub(crate) fn message(message: impl Into<String>) -> Self {
        ConfigError { line: None, column: None, field: None, message: message.into() }
    }

    /// `line 3, column 7, field `port`: message`, leaving out what is unknown.
    fn render(&self) -> String {
        let mut parts = Vec::new();
        if let Some(line) = self.line {
            parts.push(format!("line {line}"));
        }
        if let Some(column) = self.column {
            parts.push(format!("column {column}"));
        }
        if let Some(field) = &self.field {
            parts.push(format!("field `{field}`"));
        }
        if parts.is_empty() { self.message.clone() } else { format!("{}: {}", parts.join(", "), self.message) }
    }
}

impl From<DeError> for ConfigError {
    fn from(err: DeError) -> Self {
        let (field, line, column) = match err.at {
            Some((path, line, column)) => ((!path.is_empty()).then_some(path), line, column),
            None => (None, 0, 0),
        };
        ConfigError {
            line: (line > 0).then_some(line),
            column: (column > 0).then_some(column),
            field,
            message: err.message,
        }
    }
}

/// Top-level keys CLIProxyAPI understands that Switchyard does not model yet. They load without
/// a warning and are kept in [`Config::other`].
const CPA_TOP_LEVEL: &[&str] = &[
    "ampcode",
    "antigravity",
    "antigravity-signature-bypass-strict",
    "antigravity-signature-cache-enabled",
    "claude-code",
    "claude-header-defaults",
    "codex",
    "codex-header-defaults",
    "commercial-mode",
    "credential-concurrency",
    "credential-in-flight",
    "disable-claude-cloak-mode",
    "disable-image-generation",
    "generative-language-api-key",
    "gpt-image-2-base-model",
    "incognito-browser",
    "nonstream-keepalive-interval",
    "oauth-request-scoped-errors",
    "passthrough-headers",
    "payload",
    "plugins",
    "pprof",
    "save-cooldown-status",
    "streaming",
    "tls",
    "video-result-auth-cache-ttl",
    "xai",
];

/// Nested CPA keys Switchyard does not model, per struct (serde's struct name). They load
/// without a warning; they stay in the file but not in the typed `Config`.
const CPA_NESTED: &[(&str, &[&str])] = &[
    ("Routing", &["session-affinity-subagents"]),
    (
        "ApiKeyEntry",
        &[
            "alpha-search",
            "cloak",
            "experimental-cch-signing",
            "fingerprint-profile",
            "rebuild-mid-system-message",
            "request-scoped-errors",
            "websockets",
        ],
    ),
    (
        "ModelMapping",
        &["image", "input-modalities", "is-compat", "max-context-length", "output-modalities", "thinking"],
    ),
    ("OpenAiCompatibility", &["request-scoped-errors", "support-prompt-cache-key"]),
];

fn is_cpa_only(container: &str, key: &str) -> bool {
    if container == "Config" {
        return CPA_TOP_LEVEL.contains(&key);
    }
    CPA_NESTED.iter().any(|(name, keys)| *name == container && keys.contains(&key))
}

/// Parses and validates a `config.yaml` document. An empty document (or only comments) gives
/// [`Config::default`]; a key present with no value takes its default.
pub fn parse(text: &str) -> Result<Loaded, ConfigError> {
    let root = yaml::load(text)?;
    if !matches!(root.kind, Kind::Map(_) | Kind::Null) {
        return Err(ConfigError {
            line: Some(root.line),
            column: Some(root.column),
            field: None,
            message: "the document must be a mapping of keys to values, like `port: 8317`".into(),
        });
    }
    let unknowns = Unknowns::default();
    let mut config = Config::deserialize(De::root(&root, &unknowns))?;

    let mut warnings = Vec::new();
    for unknown in unknowns.into_inner() {
        if unknown.container == "Config" {
            config.other.insert(unknown.key.clone(), unknown.value);
        }
        if !is_cpa_only(unknown.container, &unknown.key) {
            warnings.push(Warning {
                path: unknown.path,
                line: Some(unknown.line),
                message: "unknown key, ignored".into(),
            });
        }
    }

    validate(&config).map_err(|invalid| invalid.locate(&root))?;
    warnings.extend(crate::support::unsupported_warnings(&root));
    Ok(Loaded { config, warnings })
}

/// A semantic error found after typing; located in the document afterwards.
struct Invalid {
    path: String,
    message: String,
}

impl Invalid {
    fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid { path: path.into(), message: message.into() }
    }

    /// Points at the value, or at its closest ancestor when the key is missing.
    fn locate(self, root: &Node<'_>) -> ConfigError {
        let mut path = self.path.as_str();
        let node = loop {
            if let Some(node) = root.find(path) {
                break Some(node);
            }
            match path.rfind(['.', '[']) {
                Some(cut) => path = &path[..cut],
                None => break None,
            }
        };
        // The root node of an empty document has no useful position.
        let node = node.filter(|n| !std::ptr::eq(*n, root));
        ConfigError {
            line: node.map(|n| n.line),
            column: node.map(|n| n.column),
            field: Some(self.path),
            message: self.message,
        }
    }
}

fn validate(config: &Config) -> Result<(), Invalid> {
    if config.port == 0 {
        return Err(Invalid::new("port", "must be between 1 and 65535"));
    }
    if config.auth_dir.trim().is_empty() {
        return Err(Invalid::new("auth-dir", "must not be empty"));
    }
    check_proxy_url("proxy-url", &config.proxy_url, false)?;
    for (i, origin) in config.allowed_origins.iter().enumerate() {
        check_origin(&format!("allowed-origins[{i}]"), origin)?;
    }
    for (i, host) in config.allowed_hosts.iter().enumerate() {
        check_host_name(&format!("allowed-hosts[{i}]"), host)?;
    }
    at_least("request-retry", config.request_retry, 0)?;
    at_least("max-retry-credentials", config.max_retry_credentials, 0)?;
    at_least("max-retry-interval", config.max_retry_interval, 0)?;
    at_least("transient-error-cooldown-seconds", config.transient_error_cooldown_seconds, -1)?;
    at_least("auth-auto-refresh-workers", config.auth_auto_refresh_workers, 1)?;
    at_least("logs-max-total-size-mb", config.logs_max_total_size_mb, 0)?;
    at_least("error-logs-max-files", config.error_logs_max_files, 0)?;
    at_least("redis-usage-queue-retention-seconds", config.redis_usage_queue_retention_seconds, 1)?;
    if config.redis_usage_queue_retention_seconds > 3600 {
        return Err(Invalid::new("redis-usage-queue-retention-seconds", "must be at most 3600"));
    }

    let health = &config.health;
    if !(1..=64).contains(&health.inspection_workers) {
        return Err(Invalid::new("health.inspection-workers", "must be between 1 and 64"));
    }
    if !(1..=600).contains(&health.inspection_timeout_seconds) {
        return Err(Invalid::new("health.inspection-timeout-seconds", "must be between 1 and 600"));
    }
    if !(health.inspection_quota_threshold > 0.0 && health.inspection_quota_threshold <= 100.0) {
        return Err(Invalid::new("health.inspection-quota-threshold", "must be a percent above 0 and at most 100"));
    }

    let quota_interval = config.quota.refresh_interval_seconds;
    if quota_interval != 0 && quota_interval < 60 {
        return Err(Invalid::new("quota.refresh-interval-seconds", "must be 0 (off) or at least 60"));
    }

    if config.usage_store.enabled && config.usage_store.path.trim().is_empty() {
        return Err(Invalid::new("usage-store.path", "must name a file when usage-store.enabled is true"));
    }

    for (section, entries) in config.api_key_sections() {
        for (i, entry) in entries.iter().enumerate() {
            check_api_key_entry(&format!("{section}[{i}]"), entry)?;
        }
    }

    for (i, entry) in config.interactions_api_key.iter().enumerate() {
        check_api_key_entry(&format!("interactions-api-key[{i}]"), entry)?;
    }

    let mut names = HashSet::new();
    for (i, compat) in config.openai_compatibility.iter().enumerate() {
        let at = format!("openai-compatibility[{i}]");
        let name = compat.name.trim();
        if name.is_empty() {
            return Err(Invalid::new(format!("{at}.name"), "is required"));
        }
        if !names.insert(name) {
            return Err(Invalid::new(
                format!("{at}.name"),
                format!("duplicate provider name `{name}`; names must be unique"),
            ));
        }
        if compat.base_url.trim().is_empty() {
            return Err(Invalid::new(format!("{at}.base-url"), "is required"));
        }
        check_http_url(&format!("{at}.base-url"), &compat.base_url)?;
        check_prefix(&format!("{at}.prefix"), &compat.prefix)?;
        for (j, key) in compat.api_key_entries.iter().enumerate() {
            check_compat_key(&format!("{at}.api-key-entries[{j}]"), key)?;
        }
    }

    let mut provider_names = HashSet::new();
    for (i, provider) in config.oauth_providers.iter().enumerate() {
        check_custom_provider(&format!("oauth-providers[{i}]"), provider)?;
        if !provider_names.insert(provider.name.as_str()) {
            return Err(Invalid::new(
                format!("oauth-providers[{i}].name"),
                format!("duplicate provider name `{}`; names must be unique", provider.name),
            ));
        }
    }

    for (provider, endpoints) in &config.upstream_urls {
        for (endpoint, url) in endpoints {
            check_http_url(&format!("upstream-urls.{provider}.{endpoint}"), url)?;
        }
    }
    Ok(())
}

fn check_api_key_entry(at: &str, entry: &ApiKeyEntry) -> Result<(), Invalid> {
    if entry.api_key.trim().is_empty() {
        return Err(Invalid::new(format!("{at}.api-key"), "is required"));
    }
    check_weight(&format!("{at}.weight"), entry.weight)?;
    check_prefix(&format!("{at}.prefix"), &entry.prefix)?;
    if !entry.base_url.trim().is_empty() {
        check_http_url(&format!("{at}.base-url"), &entry.base_url)?;
    }
    check_proxy_url(&format!("{at}.proxy-url"), &entry.proxy_url, true)
}

/// Built-in provider keys a custom provider may not take over.
const RESERVED_PROVIDER_NAMES: &[&str] = &[
    "claude",
    "anthropic",
    "codex",
    "openai",
    "gemini",
    "gemini-cli",
    "google",
    "antigravity",
    "vertex",
    "kimi",
    "xai",
    "qwen",
    "iflow",
    "github-copilot",
    "kiro",
];

fn check_custom_provider(at: &str, provider: &CustomOAuthProvider) -> Result<(), Invalid> {
    let name = provider.name.as_str();
    if name.is_empty() {
        return Err(Invalid::new(format!("{at}.name"), "is required"));
    }
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') || name.starts_with('-') {
        return Err(Invalid::new(format!("{at}.name"), "must use lower-case letters, digits and `-` only"));
    }
    if RESERVED_PROVIDER_NAMES.contains(&name) {
        return Err(Invalid::new(format!("{at}.name"), format!("`{name}` is a built-in provider")));
    }
    if provider.client_id.trim().is_empty() {
        return Err(Invalid::new(format!("{at}.client-id"), "is required"));
    }
    if provider.issuer.trim().is_empty()
        && (provider.authorization_endpoint.trim().is_empty() || provider.token_endpoint.trim().is_empty())
    {
        return Err(Invalid::new(
            format!("{at}.issuer"),
            "is required unless authorization-endpoint and token-endpoint are both given",
        ));
    }
    for (key, value) in [
        ("issuer", &provider.issuer),
        ("authorization-endpoint", &provider.authorization_endpoint),
        ("token-endpoint", &provider.token_endpoint),
        ("userinfo-endpoint", &provider.userinfo_endpoint),
        ("api-base", &provider.api_base),
    ] {
        if !value.trim().is_empty() {
            check_http_url(&format!("{at}.{key}"), value)?;
        }
    }
    if !provider.callback_path.starts_with('/') {
        return Err(Invalid::new(format!("{at}.callback-path"), "must start with `/`"));
    }
    if !["openai", "openai-responses", "claude", "gemini"].contains(&provider.dialect.as_str()) {
        return Err(Invalid::new(format!("{at}.dialect"), "must be one of openai, openai-responses, claude, gemini"));
    }
    Ok(())
}

fn check_compat_key(at: &str, key: &CompatApiKeyEntry) -> Result<(), Invalid> {
    check_weight(&format!("{at}.weight"), key.weight)?;
    check_proxy_url(&format!("{at}.proxy-url"), &key.proxy_url, true)
}

fn at_least(path: &str, value: i64, min: i64) -> Result<(), Invalid> {
    if value < min {
        return Err(Invalid::new(path, format!("must be {min} or more")));
    }
    Ok(())
}

fn check_weight(path: &str, weight: Option<i64>) -> Result<(), Invalid> {
    match weight {
        Some(w) if !(1..=1_000_000).contains(&w) => Err(Invalid::new(path, "must be between 1 and 1000000")),
        _ => Ok(()),
    }
}

fn check_prefix(path: &str, prefix: &str) -> Result<(), Invalid> {
    if prefix.contains('/') {
        return Err(Invalid::new(path, "must be a single path segment (no `/`)"));
    }
    Ok(())
}

/// Empty means "none". Per-credential values may also be `direct`/`none` (bypass all proxies).
fn check_proxy_url(path: &str, value: &str, per_credential: bool) -> Result<(), Invalid> {
    let value = value.trim();
    if value.is_empty()
        || (per_credential && (value.eq_ignore_ascii_case("direct") || value.eq_ignore_ascii_case("none")))
    {
        return Ok(());
    }
    // The value is not echoed: proxy URLs often embed credentials.
    check_url(
        path,
        value,
        &["http", "https", "socks5", "socks5h"],
        "must be a URL with scheme http, https, socks5 or socks5h",
    )
}

fn check_http_url(path: &str, value: &str) -> Result<(), Invalid> {
    check_url(path, value.trim(), &["http", "https"], "must be an absolute http:// or https:// URL")
}

/// A web origin as browsers send it: `http(s)://host[:port]`, nothing after (a trailing `/` is
/// tolerated).
fn check_origin(path: &str, value: &str) -> Result<(), Invalid> {
    let expected = "must be an origin like https://panel.example.com (scheme, host and optional port, no path)";
    match Url::parse(value.trim()) {
        Ok(url)
            if ["http", "https"].contains(&url.scheme())
                && url.has_host()
                && url.path() == "/"
                && url.query().is_none()
                && url.fragment().is_none()
                && url.username().is_empty()
                && url.password().is_none() =>
        {
            Ok(())
        }
        _ => Err(Invalid::new(path, expected)),
    }
}

/// A host name or IP literal (IPv6 in brackets), without scheme, port or path.
fn check_host_name(path: &str, value: &str) -> Result<(), Invalid> {
    let value = value.trim();
    let expected = "must be a host name or IP address like gateway.lan or 192.168.1.20 (no scheme, port or path)";
    let bare = !value.is_empty() && !value.contains(['/', '@', '?', '#', ' ']);
    // `url` drops a default port, so the text is checked: a `:` only inside brackets.
    let port_free = if value.starts_with('[') { value.ends_with(']') } else { !value.contains(':') };
    match Url::parse(&format!("http://{value}")) {
        Ok(url) if bare && port_free && url.has_host() => Ok(()),
        _ => Err(Invalid::new(path, expected)),
    }
}

fn check_url(path: &str, value: &str, schemes: &[&str], expected: &str) -> Result<(), Invalid> {
    match Url::parse(value) {
        Ok(url) if schemes.contains(&url.scheme()) && url.has_host() => Ok(()),
        _ => Err(Invalid::new(path, expected)),
    }
}
