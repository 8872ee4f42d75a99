//! The typed `config.yaml` model. Key names and defaults follow CLIProxyAPI (spec §5); the values
//! a key takes when it is missing are the ones in `default.yaml` (a test keeps the two in sync).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The whole configuration. Every field is optional in the YAML document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Config {
    /// Bind address; `""` means all interfaces.
    pub host: String,
    pub port: u16,
    /// Credential directory; may start with `~` (see [`Config::auth_dir_path`]).
    pub auth_dir: String,
    /// Client API keys; empty means no client authentication.
    pub api_keys: Vec<String>,
    /// Switchyard only: web origins (`https://panel.example.com`) besides loopback ones whose
    /// pages may call this server from a browser (CORS, and the public API without `api-keys`).
    pub allowed_origins: Vec<String>,
    /// Switchyard only: `Host` names (or IPs) besides loopback ones and the bound address that
    /// requests may be addressed to (DNS-rebinding protection).
    pub allowed_hosts: Vec<String>,
    pub remote_management: RemoteManagement,
    pub debug: bool,
    pub logging_to_file: bool,
    pub request_log: bool,
    /// Cap on the log directory's total size (rotated logs and request logs); 0 = no cap.
    pub logs_max_total_size_mb: i64,
    /// `error-*.log` request logs kept while `request-log` is off (oldest deleted first).
    pub error_logs_max_files: i64,
    /// Global upstream proxy (`http`, `https`, `socks5`, `socks5h`); empty = none.
    pub proxy_url: String,
    pub request_retry: i64,
    /// 0 = try every credential.
    pub max_retry_credentials: i64,
    /// Seconds.
    pub max_retry_interval: i64,
    pub disable_cooling: bool,
    /// 0 = the legacy 60 s, -1 = no cooldown for transient errors.
    pub transient_error_cooldown_seconds: i64,
    pub auth_auto_refresh_workers: i64,
    pub force_model_prefix: bool,
    pub routing: Routing,
    pub quota_exceeded: QuotaExceeded,
    pub usage_statistics_enabled: bool,
    /// Seconds a usage-queue record waits for a consumer before it expires (1..=3600).
    pub redis_usage_queue_retention_seconds: i64,
    pub ws_auth: bool,
    /// OAuth channel -> excluded model patterns.
    pub oauth_excluded_models: BTreeMap<String, Vec<String>>,
    /// OAuth channel -> model aliases.
    pub oauth_model_alias: BTreeMap<String, Vec<ModelAlias>>,
    pub claude_api_key: Vec<ApiKeyEntry>,
    pub codex_api_key: Vec<ApiKeyEntry>,
    pub gemini_api_key: Vec<ApiKeyEntry>,
    pub vertex_api_key: Vec<ApiKeyEntry>,
    pub xai_api_key: Vec<ApiKeyEntry>,
    /// Gemini Interactions API keys: validated and editable, not routed (reported unsupported).
    pub interactions_api_key: Vec<ApiKeyEntry>,
    pub openai_compatibility: Vec<OpenAiCompatibility>,
    /// Switchyard only: provider -> endpoint name -> absolute http(s) URL, overriding the
    /// provider's built-in OAuth/API URLs (tests point these at loopback mocks).
    pub upstream_urls: BTreeMap<String, BTreeMap<String, String>>,
    /// Switchyard only: login name (`anthropic`, `codex`, ...) -> port of its local OAuth callback
    /// listener, replacing the provider's registered default; 0 picks any free port.
    pub oauth_callback_ports: BTreeMap<String, u16>,
    /// Switchyard only: OAuth providers declared in config (our equivalent of CPA's plugin logins).
    pub oauth_providers: Vec<CustomOAuthProvider>,
    /// Switchyard only: how long each stage of a request may take.
    pub timeouts: Timeouts,
    /// Switchyard only: unfinished client connections one IP may hold at once; 0 = no cap.
    pub max_connections_per_ip: u32,
    /// Switchyard only: account health actions and inspection.
    pub health: HealthSettings,
    /// Switchyard only: the request records database behind monitoring.
    pub usage_store: UsageStore,
    /// Switchyard only: the Prometheus `/metrics` endpoint.
    pub metrics: MetricsSettings,
    /// Switchyard only: reading the providers' quota endpoints.
    pub quota: QuotaSettings,
    /// Top-level keys Switchyard does not model (CPA-only sections such as `tls`, `payload`,
    /// `plugins`, and unknown keys), in document order. Filled by [`crate::parse`] so they
    /// survive serialization; never read from serde input (see the crate docs).
    #[serde(flatten, skip_deserializing)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Default for Config {
    /// The same values as parsing [`crate::DEFAULT_YAML`].
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 8317,
            auth_dir: "~/.cli-proxy-api".into(),
            api_keys: Vec::new(),
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            remote_management: RemoteManagement::default(),
            debug: false,
            logging_to_file: false,
            request_log: false,
            logs_max_total_size_mb: 0,
            error_logs_max_files: 10,
            proxy_url: String::new(),
            request_retry: 3,
            max_retry_credentials: 0,
            max_retry_interval: 30,
            disable_cooling: false,
            transient_error_cooldown_seconds: 0,
            auth_auto_refresh_workers: 16,
            force_model_prefix: false,
            routing: Routing::default(),
            quota_exceeded: QuotaExceeded::default(),
            usage_statistics_enabled: false,
            redis_usage_queue_retention_seconds: 60,
            ws_auth: true,
            oauth_excluded_models: BTreeMap::new(),
            oauth_model_alias: BTreeMap::new(),
            claude_api_key: Vec::new(),
            codex_api_key: Vec::new(),
            gemini_api_key: Vec::new(),
            vertex_api_key: Vec::new(),
            xai_api_key: Vec::new(),
            interactions_api_key: Vec::new(),
            openai_compatibility: Vec::new(),
            upstream_urls: BTreeMap::new(),
            oauth_callback_ports: BTreeMap::new(),
            oauth_providers: Vec::new(),
            timeouts: Timeouts::default(),
            max_connections_per_ip: 256,
            health: HealthSettings::default(),
            usage_store: UsageStore::default(),
            metrics: MetricsSettings::default(),
            quota: QuotaSettings::default(),
            other: serde_json::Map::new(),
        }
    }
}

impl Config {
    /// `auth-dir` with a leading `~` or `~/` replaced by the home directory.
    pub fn auth_dir_path(&self) -> PathBuf {
        let dir = self.auth_dir.as_str();
        let rest = match dir.strip_prefix('~') {
            Some("") => Some(""),
            Some(rest) => rest.strip_prefix('/'),
            None => None,
        };
        match (rest, std::env::home_dir()) {
            (Some(rest), Some(home)) => home.join(rest),
            _ => PathBuf::from(dir),
        }
    }

    /// The management key (`remote-management.secret-key`), trimmed; `None` disables management.
    pub fn management_secret(&self) -> Option<&str> {
        Some(self.remote_management.secret_key.trim()).filter(|s| !s.is_empty())
    }

    /// The `upstream-urls.<provider>.<endpoint>` override, if configured.
    pub fn upstream_url(&self, provider: &str, endpoint: &str) -> Option<&str> {
        self.upstream_urls.get(provider)?.get(endpoint).map(String::as_str)
    }

    /// The API-key sections with their YAML key names, in a fixed order.
    pub fn api_key_sections(&self) -> [(&'static str, &[ApiKeyEntry]); 5] {
        [
            ("claude-api-key", &self.claude_api_key),
            ("codex-api-key", &self.codex_api_key),
            ("gemini-api-key", &self.gemini_api_key),
            ("vertex-api-key", &self.vertex_api_key),
            ("xai-api-key", &self.xai_api_key),
        ]
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct RemoteManagement {
    pub allow_remote: bool,
    /// Plaintext or bcrypt hash; empty disables the management API.
    pub secret_key: String,
    pub disable_control_panel: bool,
    pub disable_auto_update_panel: bool,
    pub panel_github_repository: String,
}

impl Default for RemoteManagement {
    fn default() -> Self {
        Self {
            allow_remote: false,
            secret_key: String::new(),
            disable_control_panel: false,
            disable_auto_update_panel: false,
            panel_github_repository: "https://github.com/router-for-me/Cli-Proxy-API-Management-Center".into(),
        }
    }
}

/// Seconds each stage may take (0 = no limit). Client stages guard the server against slow or
/// stalled clients; upstream stages turn a silent upstream into a failover-worthy timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Timeouts {
    /// Until a client's request headers are complete.
    pub client_header: u64,
    /// Until a client's request body is complete.
    pub client_body: u64,
    /// An idle keep-alive connection is closed after this.
    pub client_idle: u64,
    /// TCP (and TLS, proxy) connect to an upstream.
    pub upstream_connect: u64,
    /// Until a non-stream upstream answer starts (its status line).
    pub upstream_first_byte: u64,
    /// Until a streamed upstream answer's first body bytes arrive.
    pub upstream_stream_first_byte: u64,
    /// Longest silence between two chunks of a streamed answer.
    pub upstream_stream_idle: u64,
    /// A whole non-stream upstream call.
    pub upstream_total: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            client_header: 10,
            client_body: 60,
            client_idle: 90,
            upstream_connect: 10,
            upstream_first_byte: 300,
            upstream_stream_first_byte: 120,
            upstream_stream_idle: 120,
            upstream_total: 600,
        }
    }
}

impl Timeouts {
    /// `seconds` as a limit; `None` for 0 (no limit).
    pub fn limit(seconds: u64) -> Option<std::time::Duration> {
        (seconds > 0).then(|| std::time::Duration::from_secs(seconds))
    }
}

/// What Switchyard does on its own about account health (all off by default), and how an
/// inspection probes accounts.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct HealthSettings {
    /// Disable an auth file on high-confidence evidence (revoked token, deactivated workspace,
    /// exhausted quota, an inspection's disable); only the same actor re-enables it.
    pub auto_disable: bool,
    /// Minutes between scheduled inspections; 0 = only on request.
    pub inspection_interval_minutes: u64,
    /// Accounts probed at once.
    pub inspection_workers: u64,
    /// Seconds one probe may take.
    pub inspection_timeout_seconds: u64,
    /// Quota use (percent) at which a Codex/xAI window counts as full.
    pub inspection_quota_threshold: f64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            auto_disable: false,
            inspection_interval_minutes: 0,
            inspection_workers: 4,
            inspection_timeout_seconds: 15,
            inspection_quota_threshold: 100.0,
        }
    }
}

/// When Switchyard asks the providers' quota endpoints by itself (never passively per request).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct QuotaSettings {
    /// Seconds between readings of every account that has a quota source; 0 = only on request.
    pub refresh_interval_seconds: u64,
}

/// Where the per-request records (monitoring) are kept and for how long.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct UsageStore {
    /// Record every proxied request (independent of CPA's `usage-statistics-enabled`, which
    /// governs the usage queue a collector pops).
    pub enabled: bool,
    /// The SQLite file; relative paths are under the auth dir.
    pub path: String,
    /// Records older than this are deleted; 0 = kept forever.
    pub retention_days: u32,
    /// The database is trimmed, oldest records first, to this size; 0 = no cap.
    pub max_size_mb: u64,
}

impl Default for UsageStore {
    fn default() -> Self {
        Self { enabled: true, path: "switchyard-usage.sqlite".into(), retention_days: 30, max_size_mb: 512 }
    }
}

impl Config {
    /// The records database file: `usage-store.path`, relative to the auth dir.
    pub fn usage_store_path(&self) -> PathBuf {
        let path = std::path::Path::new(&self.usage_store.path);
        if path.is_absolute() { path.to_owned() } else { self.auth_dir_path().join(path) }
    }
}

/// `GET /metrics` (Prometheus text format).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct MetricsSettings {
    /// Off: `/metrics` answers 404.
    pub enabled: bool,
    /// Open to anyone without a key. Otherwise it is guarded like the management API: the
    /// management key, from loopback unless remote management is allowed.
    pub public: bool,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self { enabled: true, public: false }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Routing {
    pub strategy: RoutingStrategy,
    pub session_affinity: bool,
    /// Go duration syntax, e.g. `1h`, `30m`.
    pub session_affinity_ttl: String,
}

impl Default for Routing {
    fn default() -> Self {
        Self { strategy: RoutingStrategy::RoundRobin, session_affinity: false, session_affinity_ttl: "1h".into() }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum RoutingStrategy {
    #[default]
    RoundRobin,
    FillFirst,
    WeightedRoundRobin,
}

impl RoutingStrategy {
    const ACCEPTED: &str = "round-robin (roundrobin, rr), fill-first (fillfirst, ff), weighted-round-robin (wrr)";

    /// The canonical CPA spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RoundRobin => "round-robin",
            Self::FillFirst => "fill-first",
            Self::WeightedRoundRobin => "weighted-round-robin",
        }
    }

    /// Accepts CPA's spellings and abbreviations, case-insensitively; empty means round-robin.
    pub fn parse(value: &str) -> Option<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "round-robin" | "roundrobin" | "rr" => Some(Self::RoundRobin),
            "fill-first" | "fillfirst" | "ff" => Some(Self::FillFirst),
            "weighted-round-robin" | "wrr" => Some(Self::WeightedRoundRobin),
            _ => None,
        }
    }
}

impl fmt::Display for RoutingStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for RoutingStrategy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for RoutingStrategy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Self::parse(&value).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown routing strategy `{}`; accepted values: {}",
                value.trim(),
                Self::ACCEPTED
            ))
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct QuotaExceeded {
    pub switch_project: bool,
    pub switch_preview_model: bool,
    pub antigravity_credits: bool,
}

impl Default for QuotaExceeded {
    fn default() -> Self {
        Self { switch_project: true, switch_preview_model: true, antigravity_credits: true }
    }
}

/// One entry of `oauth-model-alias.<channel>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct ModelAlias {
    /// Upstream model id.
    pub name: String,
    /// Client-visible id.
    pub alias: String,
    /// Keep the upstream id listed as well as the alias.
    pub fork: bool,
    pub display_name: Option<String>,
    pub force_mapping: bool,
}

/// One entry of a `models` list (API-key sections and `openai-compatibility`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct ModelMapping {
    /// Upstream model name.
    pub name: String,
    /// Client-visible alias.
    pub alias: String,
    pub display_name: Option<String>,
    pub force_mapping: bool,
}

/// One credential of `claude-api-key`, `codex-api-key`, `gemini-api-key`, `vertex-api-key` or
/// `xai-api-key`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct ApiKeyEntry {
    pub api_key: String,
    pub priority: i64,
    /// Weighted-round-robin share, 1..=1_000_000; `None` counts as 1.
    pub weight: Option<i64>,
    /// Model prefix (`<prefix>/<model>`), a single path segment.
    pub prefix: String,
    pub base_url: String,
    /// Per-key proxy; also `direct`/`none` to bypass the global proxy.
    pub proxy_url: String,
    pub headers: BTreeMap<String, String>,
    pub models: Vec<ModelMapping>,
    pub excluded_models: Vec<String>,
    /// Overrides the global `disable-cooling` when set.
    pub disable_cooling: Option<bool>,
    /// Overrides the global `request-retry` when set (negative = inherit).
    pub request_retry: Option<i64>,
}

/// One provider of `openai-compatibility`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct OpenAiCompatibility {
    /// Provider name, unique across entries.
    pub name: String,
    pub priority: i64,
    pub disabled: bool,
    pub prefix: String,
    pub base_url: String,
    pub api_key_entries: Vec<CompatApiKeyEntry>,
    pub models: Vec<ModelMapping>,
    pub headers: BTreeMap<String, String>,
    pub disable_cooling: Option<bool>,
    pub request_retry: Option<i64>,
}

/// One key of `openai-compatibility[].api-key-entries`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct CompatApiKeyEntry {
    pub api_key: String,
    pub weight: Option<i64>,
    pub proxy_url: String,
}

/// One entry of `oauth-providers`: any OAuth 2 / OpenID Connect server whose tokens an upstream
/// API accepts. Endpoints come from `issuer` discovery unless given explicitly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct CustomOAuthProvider {
    /// Provider key: files `<name>-<account>.json` with `type: <name>`, `switchyard login <name>`,
    /// `GET /v0/management/<name>-auth-url`. Lower-case letters, digits and `-`.
    pub name: String,
    /// Human name for listings; defaults to `name`.
    pub label: String,
    /// OpenID issuer; `<issuer>/.well-known/openid-configuration` supplies missing endpoints.
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: Vec<String>,
    pub pkce: bool,
    /// Claim (from the id_token, else userinfo) that names the account; `email` by default.
    pub account_claim: String,
    /// Local callback port (0 = any free port) and path for the redirect URI.
    pub callback_port: u16,
    pub callback_path: String,
    /// Renew this long before expiry (seconds).
    pub refresh_lead_seconds: u64,
    /// API the token is used with, and the dialect it speaks (`openai`, `claude`, `gemini`).
    pub api_base: String,
    pub dialect: String,
    /// Model ids served by `api-base`.
    pub models: Vec<String>,
}

impl Default for CustomOAuthProvider {
    fn default() -> Self {
        Self {
            name: String::new(),
            label: String::new(),
            issuer: String::new(),
            authorization_endpoint: String::new(),
            token_endpoint: String::new(),
            userinfo_endpoint: String::new(),
            client_id: String::new(),
            client_secret: String::new(),
            scopes: vec!["openid".into(), "email".into(), "offline_access".into()],
            pkce: true,
            account_claim: "email".into(),
            callback_port: 0,
            callback_path: "/callback".into(),
            refresh_lead_seconds: 300,
            api_base: String::new(),
            dialect: "openai".into(),
            models: Vec::new(),
        }
    }
}
