//! `config.yaml`: the CLIProxyAPI-compatible model, its embedded default, validation and hot reload.
//!
//! INTERFACE CONTRACT (other crates code against these names; keep them, add freely):
//! - `Config` (all fields `pub`, serde kebab-case), `Config::default()` = parse of `DEFAULT_YAML`.
//! - `parse(text) -> Result<Loaded, ConfigError>`; `Loaded { config, warnings }`.
//! - `ConfigError { line, column, field, message }`, Display like `line 3, column 7, field `port`: ...`.
//! - `Config::auth_dir_path()`, `Config::management_secret()`, `Config::upstream_url(provider, endpoint)`.
//! - `ConfigHandle`: `embedded()`, `from_file(path)`, `get()`, `path()`, `raw_yaml()`, `subscribe()`,
//!   `reload()`, `replace_yaml(text)`, `edit_yaml(edits)`, `watch(debounce)`, `held_change()`.
//! - `edit`: comment-preserving edits of the YAML text (`Edit`, `Seg`, `apply`, `list_edits`).
//!
//! Keys outside the model:
//! - Unknown keys anywhere in the modelled structure load with a [`Warning`] naming their
//!   dotted path (`remote-management.alow-remote`, `claude-api-key[0].base-ur`) and line.
//! - Keys CLIProxyAPI has but Switchyard does not model (`tls`, `payload`, `plugins`,
//!   `claude-api-key[].cloak`, `models[].thinking`, ...) load without an unknown-key warning.
//! - Every top-level key outside the model (CPA-only or unknown) is kept verbatim, in document
//!   order, in [`Config::other`], which serializes inline so a `Config` written back out keeps
//!   them. Nested unmodelled keys stay in the file ([`ConfigHandle::raw_yaml`]) only.
//!   `Config::other` is filled by [`parse`], not by serde: deserializing a `Config` from JSON
//!   with serde leaves it empty.
//! - Keys of CPA's table that Switchyard parses but does not act on ([`UNSUPPORTED_KEYS`]) load
//!   with a "parsed but not supported" [`Warning`] when set to a non-default value.
//! - `key:` with no value means the key's default, as in CPA.

pub mod edit;
mod handle;
mod model;
mod parse;
mod security_keys;
mod support;
mod yaml;

pub use handle::{ConfigHandle, ConfigWatcher, EditYamlError, ReloadOutcome};
pub use model::{
    ApiKeyEntry, CompatApiKeyEntry, Config, CustomOAuthProvider, HealthSettings, MetricsSettings, ModelAlias,
    ModelMapping, OpenAiCompatibility, QuotaExceeded, RemoteManagement, Routing, RoutingStrategy, Timeouts, UsageStore,
};
pub use parse::{ConfigError, Loaded, Warning, parse};
pub use security_keys::{SECURITY_HOLD, SECURITY_KEYS, dropped_security_keys};
pub use support::{SUPPORTED_KEYS, UNSUPPORTED_KEYS, UNSUPPORTED_MESSAGE};

/// The embedded default configuration: commented, valid, and equal to [`Config::default`].
pub const DEFAULT_YAML: &str = include_str!("default.yaml");
