//! Accounts: every credential the router can send a request with (OAuth files from the auth dir
//! and API keys from config), each with the client-visible models it serves (CPA §4.3).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde_json::Value;
use switchyard_auth::Credential;
use switchyard_config::{ApiKeyEntry, Config, ModelMapping, OpenAiCompatibility};
use switchyard_providers::{ModelInfo, Registry, dialect};

use crate::model_rules::{
    AccountModelRules, CatalogModel, ExposedModel, ModelAlias, account_models, configured_models,
};

/// One routable credential.
#[derive(Clone, Debug, PartialEq)]
pub struct Account {
    /// Auth file name, or a stable config id: `claude-api-key[0]`, `openai-compatibility:<name>[<key
    /// index>]` (just `openai-compatibility:<name>` for a provider without key entries).
    pub id: String,
    /// Provider id: `claude`, `codex`, `gemini-cli`, ..., `gemini` (Gemini API key), a configured
    /// OAuth provider's name, or `openai-compatibility:<name>`.
    pub provider: String,
    pub kind: AccountKind,
    /// Routing tier; higher tiers are tried first.
    pub priority: i64,
    /// Weighted-round-robin share; 0 (configured ≤ 0) keeps the account out of that strategy.
    pub weight: u32,
    pub disabled: bool,
    /// Per-account `disable_cooling`; `None` follows the global setting.
    pub disable_cooling: Option<bool>,
    /// Per-account `request_retry`; `None` (unset or negative) follows the global setting.
    pub request_retry: Option<u32>,
    /// Shared by the accounts whose lists are equal (every file of a provider without its own
    /// rules): thousands of auth files hold one list, not one each.
    pub models: Arc<[ExposedModel]>,
    /// Why Switchyard cannot send requests with this account, as `/auth-files` reports it
    /// (`cannot be served: ...`, `needs re-login: ...`). Such an account lists no model and is
    /// never routed to; it stays here so listings and its health survive.
    pub unservable: Option<String>,
}

/// Where an account's secret lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountKind {
    OAuth {
        file: String,
    },
    /// `section` is the config key (`claude-api-key`, ...), `index` the entry's position in it.
    ApiKey {
        section: String,
        index: usize,
    },
    /// `openai-compatibility[entry]`, using `api-key-entries[key]` (`None`: the provider has no
    /// key entries and is called without a key).
    Compat {
        name: String,
        entry: usize,
        key: Option<usize>,
    },
}

/// A config key as an API-key account calls with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigKey<'a> {
    /// `claude-api-key`, ..., or `openai-compatibility`.
    pub section: &'a str,
    /// Empty for an openai-compatibility provider without key entries.
    pub key: &'a str,
    /// Empty when the entry sets none (the executor's default applies).
    pub base_url: &'a str,
    pub headers: &'a BTreeMap<String, String>,
    /// The key entry's own `proxy-url` (blank = the global one; `direct`/`none` = no proxy).
    pub proxy_url: &'a str,
}

impl AccountKind {
    /// The key behind an API-key or openai-compatibility account, read from `config` (the config
    /// the accounts were built from); `None` for OAuth accounts or an entry that went away.
    pub fn config_key<'a>(&self, config: &'a Config) -> Option<ConfigKey<'a>> {
        match self {
            AccountKind::OAuth { .. } => None,
            AccountKind::ApiKey { section, index } => {
                let (section, entries) = config.api_key_sections().into_iter().find(|(name, _)| name == section)?;
                let entry = entries.get(*index)?;
                Some(ConfigKey {
                    section,
                    key: &entry.api_key,
                    base_url: &entry.base_url,
                    headers: &entry.headers,
                    proxy_url: &entry.proxy_url,
                })
            }
            AccountKind::Compat { entry, key, .. } => {
                let compat = config.openai_compatibility.get(*entry)?;
                let key_entry = key.and_then(|k| compat.api_key_entries.get(k));
                Some(ConfigKey {
                    section: "openai-compatibility",
                    key: key_entry.map_or("", |k| k.api_key.as_str()),
                    base_url: &compat.base_url,
                    headers: &compat.headers,
                    proxy_url: key_entry.map_or("", |k| k.proxy_url.as_str()),
                })
            }
        }
    }
}

/// The provider each API-key section feeds, and whose catalogue it serves when its entry lists
/// no `models`. The Gemini API serves the same models as Vertex.
const API_KEY_SECTIONS: &[(&str, &str, &str)] = &[
    ("claude-api-key", "claude", "claude"),
    ("codex-api-key", "codex", "codex"),
    ("gemini-api-key", "gemini", "vertex"),
    ("vertex-api-key", "vertex", "vertex"),
    ("xai-api-key", "xai", "xai"),
];

/// Every account: one per auth file whose `type` names a known provider (built in or configured
/// in `oauth-providers`), one per non-blank API key in the config sections, and one per key of
/// each enabled `openai-compatibility` provider. Files of unknown type are left out.
///
/// An account whose provider (or API-key section) has no executor is marked
/// [`Account::unservable`]; marking accounts that need a re-login is the caller's part (the
/// refresher knows them).
pub fn accounts_from<'a>(files: impl IntoIterator<Item = (&'a str, &'a Credential)>, config: &Config) -> Vec<Account> {
    let registry = Registry::new(config);
    let mut accounts: Vec<Account> =
        files.into_iter().filter_map(|(file, credential)| file_account(file, credential, config, &registry)).collect();
    for (section, entries) in config.api_key_sections() {
        for (index, entry) in entries.iter().enumerate().filter(|(_, e)| !e.api_key.trim().is_empty()) {
            accounts.push(api_key_account(section, index, entry, config));
        }
    }
    for (entry, compat) in config.openai_compatibility.iter().enumerate().filter(|(_, c)| !c.disabled) {
        accounts.extend(compat_accounts(entry, compat, config));
    }
    let mut lists: HashSet<Arc<[ExposedModel]>> = HashSet::new();
    for account in &mut accounts {
        match lists.get(&account.models) {
            Some(shared) => account.models = shared.clone(),
            None => {
                lists.insert(account.models.clone());
            }
        }
    }
    accounts
}

/// The account of one auth file, as [`accounts_from`] builds it (its model list not shared
/// with equal ones, which compares the same); `None` for a file of unknown type.
pub fn file_account(file: &str, credential: &Credential, config: &Config, registry: &Registry) -> Option<Account> {
    let mut account = oauth_account(file, credential, config)?;
    account.unservable = registry.unservable_reason(credential).map(|reason| cannot_serve(&reason));
    Some(account)
}

fn oauth_account(file: &str, credential: &Credential, config: &Config) -> Option<Account> {
    let key = credential.provider()?;
    let (provider, channel, models) = if let Some(builtin) =
        switchyard_providers::for_file_type(&key).or_else(|| switchyard_providers::by_id(&key))
    {
        (builtin.id().to_owned(), builtin.channel(), Catalogue::Static(builtin.models()))
    } else {
        let custom = config.oauth_providers.iter().find(|p| p.name.eq_ignore_ascii_case(&key))?;
        // Listings give the dialect family; `openai-responses` is still OpenAI.
        let kind = match custom.dialect.as_str() {
            "claude" => dialect::CLAUDE,
            "gemini" => dialect::GEMINI,
            _ => dialect::OPENAI,
        };
        (custom.name.clone(), custom.name.as_str(), Catalogue::Custom(&custom.models, &custom.name, kind))
    };
    let global_excluded = config.oauth_excluded_models.get(channel).map(Vec::as_slice).unwrap_or_default();
    let global_aliases: Vec<ModelAlias> =
        config.oauth_model_alias.get(channel).into_iter().flatten().map(config_alias).collect();
    let fields = credential.fields();
    let account_excluded = string_list(fields.get("excluded_models"));
    let account_aliases = file_aliases(fields.get("model_aliases"));
    let rules = AccountModelRules {
        global_excluded,
        account_excluded: &account_excluded,
        global_aliases: &global_aliases,
        account_aliases: &account_aliases,
        prefix: credential.prefix(),
        force_model_prefix: config.force_model_prefix,
    };
    let models = match models {
        Catalogue::Static(catalog) => account_models(catalog, &rules),
        Catalogue::Custom(ids, owner, kind) => account_models(
            ids.iter().map(|id| CatalogModel { id: id.as_str(), display_name: id.as_str(), owned_by: owner, kind }),
            &rules,
        ),
    };
    Some(Account {
        id: file.to_owned(),
        provider,
        kind: AccountKind::OAuth { file: file.to_owned() },
        priority: credential.priority(),
        weight: weight(credential.weight()),
        disabled: credential.disabled(),
        disable_cooling: fields.get("disable_cooling").and_then(Value::as_bool),
        request_retry: fields.get("request_retry").and_then(Value::as_i64).and_then(retry),
        models: models.into(),
        unservable: None,
    })
}

/// The status message of an account Switchyard has no way to send requests with.
pub fn cannot_serve(reason: &str) -> String {
    format!("cannot be served: {reason}")
}

/// Where an OAuth account's models come from.
enum Catalogue<'c> {
    Static(&'static [ModelInfo]),
    /// A configured provider's model ids, owner and dialect.
    Custom(&'c [String], &'c str, &'c str),
}

fn api_key_account(section: &str, index: usize, entry: &ApiKeyEntry, config: &Config) -> Account {
    let (_, provider, catalogue) =
        API_KEY_SECTIONS.iter().find(|(s, ..)| *s == section).expect("every API-key section is mapped");
    let catalog = switchyard_providers::by_id(catalogue).map(|p| p.models()).unwrap_or_default();
    let rules = AccountModelRules {
        account_excluded: &entry.excluded_models,
        prefix: Some(&entry.prefix),
        force_model_prefix: config.force_model_prefix,
        ..Default::default()
    };
    let models = if entry.models.is_empty() {
        account_models(catalog, &rules)
    } else {
        // Owner and type of a listed model come from the catalogue when it knows the name, else
        // from the catalogue's first entry (all of a provider's models share them).
        configured_models(
            listed(&entry.models).map(|(mapping, client, id)| (client, describe(catalog, mapping, id))),
            &rules,
        )
    };
    Account {
        id: format!("{section}[{index}]"),
        provider: (*provider).to_owned(),
        kind: AccountKind::ApiKey { section: section.to_owned(), index },
        priority: entry.priority,
        weight: weight(entry.weight),
        // CPA disables a config key by excluding every model (`PATCH /auth-files/status`).
        disabled: entry.excluded_models.iter().any(|pattern| pattern == "*"),
        disable_cooling: entry.disable_cooling,
        request_retry: entry.request_retry.and_then(retry),
        models: models.into(),
        unservable: switchyard_providers::exec::api_key_executor(section)
            .is_none()
            .then(|| cannot_serve(&format!("Switchyard has no executor for {section}"))),
    }
}

/// A configured model of an API-key entry. Owner and type come from the catalogue entry of the
/// same name, else from the catalogue's first entry (a provider's models share them).
fn describe<'c>(catalog: &'static [ModelInfo], mapping: &'c ModelMapping, id: &'c str) -> CatalogModel<'c> {
    let known = catalog.iter().find(|m| m.id.eq_ignore_ascii_case(id));
    let (owned_by, kind) = known.or(catalog.first()).map_or(("", ""), |m| (m.owned_by, m.kind));
    let display_name = mapping.display_name.as_deref().or(known.map(|m| m.display_name)).unwrap_or(id);
    CatalogModel { id, display_name, owned_by, kind }
}

fn compat_accounts(entry: usize, compat: &OpenAiCompatibility, config: &Config) -> Vec<Account> {
    let name = compat.name.trim();
    let rules = AccountModelRules {
        prefix: Some(&compat.prefix),
        force_model_prefix: config.force_model_prefix,
        ..Default::default()
    };
    let models: Arc<[ExposedModel]> = configured_models(
        listed(&compat.models).map(|(mapping, client, id)| {
            let display_name = mapping.display_name.as_deref().unwrap_or(client);
            (client, CatalogModel { id, display_name, owned_by: name, kind: dialect::OPENAI })
        }),
        &rules,
    )
    .into();
    let account = |id: String, key: Option<usize>, weight_value: Option<i64>| Account {
        id,
        provider: format!("openai-compatibility:{name}"),
        kind: AccountKind::Compat { name: name.to_owned(), entry, key },
        priority: compat.priority,
        weight: weight(weight_value),
        disabled: false,
        disable_cooling: compat.disable_cooling,
        request_retry: compat.request_retry.and_then(retry),
        models: models.clone(),
        unservable: None,
    };
    if compat.api_key_entries.is_empty() {
        // CPA serves a provider without key entries as one keyless account (local servers).
        return vec![account(format!("openai-compatibility:{name}"), None, None)];
    }
    compat
        .api_key_entries
        .iter()
        .enumerate()
        .map(|(key, k)| account(format!("openai-compatibility:{name}[{key}]"), Some(key), k.weight))
        .collect()
}

/// `(mapping, client-visible name, upstream name)` for each usable `models` entry: the alias
/// defaults to the name and the name to the alias; entries with neither are skipped.
fn listed(models: &[ModelMapping]) -> impl Iterator<Item = (&ModelMapping, &str, &str)> {
    models.iter().filter_map(|m| {
        let name = Some(m.name.trim()).filter(|n| !n.is_empty());
        let alias = Some(m.alias.trim()).filter(|a| !a.is_empty());
        Some((m, alias.or(name)?, name.or(alias)?))
    })
}

/// Unset counts as 1; ≤ 0 as 0 (left out of weighted round-robin).
fn weight(configured: Option<i64>) -> u32 {
    configured.map_or(1, |w| w.clamp(0, i64::from(u32::MAX)) as u32)
}

/// A negative `request_retry` means "inherit".
fn retry(value: i64) -> Option<u32> {
    u32::try_from(value).ok()
}

fn config_alias(a: &switchyard_config::ModelAlias) -> ModelAlias {
    ModelAlias { name: a.name.clone(), alias: a.alias.clone(), fork: a.fork, force_mapping: a.force_mapping }
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
}

/// Auth-file `model_aliases`: `[{name, alias, fork?, force-mapping?}]`; malformed items are skipped.
fn file_aliases(value: Option<&Value>) -> Vec<ModelAlias> {
    let flag = |item: &Value, keys: &[&str]| keys.iter().find_map(|k| item.get(*k)?.as_bool()).unwrap_or(false);
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| {
            Some(ModelAlias {
                name: item.get("name")?.as_str()?.to_owned(),
                alias: item.get("alias")?.as_str()?.to_owned(),
                fork: flag(item, &["fork"]),
                force_mapping: flag(item, &["force-mapping", "force_mapping"]),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
oauth-excluded-models:
  claude: ["claude-opus-4-1"]
oauth-model-alias:
  claude:
    - name: claude-sonnet-4-5
      alias: sonnet
claude-api-key:
  - api-key: sk-a
    priority: 2
    weight: 3
    prefix: work
    disable-cooling: true
    request-retry: 1
    excluded-models: ["claude-haiku-*"]
    models:
      - name: claude-opus-4-5
        alias: opus
      - name: claude-haiku-4-5
      - name: claude-next
        display-name: Claude Next
  - api-key: sk-b
gemini-api-key:
  - api-key: g-1
    request-retry: -1
    excluded-models: ["*flash*"]
openai-compatibility:
  - name: local
    priority: 1
    base-url: http://localhost:11434/v1
    models:
      - name: llama3
        alias: llama
  - name: router
    prefix: or
    base-url: https://openrouter.ai/api/v1
    disable-cooling: false
    api-key-entries:
      - api-key: k1
      - api-key: k2
        weight: 5
    models:
      - name: moonshot/kimi-k2
        alias: kimi
  - name: off
    disabled: true
    base-url: https://off.example.com/v1
    models: [{name: x}]
oauth-providers:
  - name: acme
    client-id: acme-client
    issuer: https://id.acme.example
    dialect: openai-responses
    models: [acme-1, acme-2]
"#;

    fn config(text: &str) -> Config {
        switchyard_config::parse(text).expect("valid config").config
    }

    fn credential(json: &str) -> Credential {
        Credential::from_json(json.as_bytes()).expect("valid credential")
    }

    fn ids(account: &Account) -> Vec<&str> {
        account.models.iter().map(|m| m.id.as_str()).collect()
    }

    fn upstream_of<'a>(account: &'a Account, id: &str) -> &'a str {
        &account.models.iter().find(|m| m.id == id).unwrap_or_else(|| panic!("{id} not exposed")).upstream
    }

    fn build() -> Vec<Account> {
        let files = [
            (
                "claude-a.json",
                credential(
                    r#"{"type":"claude","prefix":"team","priority":5,"weight":2,"disable_cooling":false,
                        "request_retry":-1,"excluded_models":["*haiku*"],
                        "model_aliases":[{"name":"claude-opus-4-5","alias":"big","fork":true}]}"#,
                ),
            ),
            ("gemini-b.json", credential(r#"{"type":"gemini","disabled":true,"weight":0,"request_retry":2}"#)),
            ("mystery.json", credential(r#"{"type":"nope"}"#)),
            ("acme-c.json", credential(r#"{"type":"acme"}"#)),
        ];
        accounts_from(files.iter().map(|(name, c)| (*name, c)), &config(CONFIG))
    }

    fn find<'a>(accounts: &'a [Account], id: &str) -> &'a Account {
        accounts.iter().find(|a| a.id == id).unwrap_or_else(|| panic!("no account {id}"))
    }

    #[test]
    fn one_account_per_known_file_key_and_compat_key() {
        let accounts = build();
        let all: Vec<&str> = accounts.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(
            all,
            [
                "claude-a.json",
                "gemini-b.json",
                "acme-c.json",
                "claude-api-key[0]",
                "claude-api-key[1]",
                "gemini-api-key[0]",
                "openai-compatibility:local",
                "openai-compatibility:router[0]",
                "openai-compatibility:router[1]",
            ]
        );
    }

    #[test]
    fn oauth_file_applies_global_and_file_rules() {
        let accounts = build();
        let a = find(&accounts, "claude-a.json");
        assert_eq!(a.provider, "claude");
        assert_eq!(a.kind, AccountKind::OAuth { file: "claude-a.json".into() });
        assert_eq!((a.priority, a.weight, a.disabled), (5, 2, false));
        assert_eq!(a.disable_cooling, Some(false));
        assert_eq!(a.request_retry, None, "negative request_retry inherits");
        // Global exclusion drops opus-4-1, the file's drops haiku; the global alias replaces
        // sonnet, the file's forked alias adds `big`; every id also comes with the prefix.
        assert_eq!(
            ids(a),
            [
                "team/claude-opus-4-5",
                "claude-opus-4-5",
                "team/big",
                "big",
                "team/sonnet",
                "sonnet",
                "team/claude-sonnet-4",
                "claude-sonnet-4",
            ]
        );
        assert_eq!(upstream_of(a, "team/big"), "claude-opus-4-5");
        assert_eq!(upstream_of(a, "sonnet"), "claude-sonnet-4-5");
    }

    #[test]
    fn gemini_file_type_is_gemini_cli_and_keeps_its_settings() {
        let accounts = build();
        let b = find(&accounts, "gemini-b.json");
        assert_eq!(b.provider, "gemini-cli");
        assert!(b.disabled);
        assert_eq!((b.weight, b.request_retry, b.disable_cooling), (0, Some(2), None));
        assert!(ids(b).contains(&"gemini-2.5-pro"));
    }

    #[test]
    fn configured_oauth_provider_serves_its_model_list() {
        let accounts = build();
        let c = find(&accounts, "acme-c.json");
        assert_eq!(c.provider, "acme");
        assert_eq!(ids(c), ["acme-1", "acme-2"]);
        assert_eq!((c.models[0].owned_by.as_str(), c.models[0].kind.as_str()), ("acme", "openai"));
    }

    #[test]
    fn force_model_prefix_drops_bare_ids_of_prefixed_files() {
        let mut config = config(CONFIG);
        config.force_model_prefix = true;
        let file = credential(r#"{"type":"claude","prefix":"team"}"#);
        let plain = credential(r#"{"type":"claude"}"#);
        let accounts = accounts_from([("a.json", &file), ("b.json", &plain)], &config);
        assert!(accounts[0].models.iter().all(|m| m.id.starts_with("team/")));
        assert!(accounts[1].models.iter().any(|m| m.id == "sonnet"));
    }

    #[test]
    fn accounts_with_equal_model_lists_share_one() {
        let plain = credential(r#"{"type":"claude"}"#);
        let excluding = credential(r#"{"type":"claude","excluded_models":["*haiku*"]}"#);
        let files = [("a.json", &plain), ("b.json", &plain), ("c.json", &excluding), ("d.json", &excluding)];
        let accounts = accounts_from(files, &config(CONFIG));
        assert!(Arc::ptr_eq(&accounts[0].models, &accounts[1].models));
        assert!(Arc::ptr_eq(&accounts[2].models, &accounts[3].models));
        assert!(!Arc::ptr_eq(&accounts[0].models, &accounts[2].models));
        assert_ne!(accounts[0].models, accounts[2].models, "different rules, different lists");
    }

    #[test]
    fn api_key_entry_lists_its_models_with_aliases_exclusions_and_prefix() {
        let accounts = build();
        let key = find(&accounts, "claude-api-key[0]");
        assert_eq!(key.provider, "claude");
        assert_eq!(key.kind, AccountKind::ApiKey { section: "claude-api-key".into(), index: 0 });
        assert_eq!((key.priority, key.weight, key.disable_cooling, key.request_retry), (2, 3, Some(true), Some(1)));
        // haiku is excluded; oauth-model-alias does not apply to API keys.
        assert_eq!(ids(key), ["work/opus", "opus", "work/claude-next", "claude-next"]);
        assert_eq!(upstream_of(key, "opus"), "claude-opus-4-5");
        let opus = &key.models[1];
        assert_eq!((opus.display_name.as_str(), opus.owned_by.as_str()), ("Claude Opus 4.5", "anthropic"));
        // A name the catalogue does not know keeps the provider's owner and type.
        let next = &key.models[3];
        assert_eq!(
            (next.display_name.as_str(), next.owned_by.as_str(), next.kind.as_str()),
            ("Claude Next", "anthropic", "claude")
        );
    }

    #[test]
    fn api_key_entry_without_models_serves_the_catalogue() {
        let accounts = build();
        let plain = find(&accounts, "claude-api-key[1]");
        assert_eq!((plain.weight, plain.priority), (1, 0));
        let catalogue: Vec<&str> =
            switchyard_providers::by_id("claude").unwrap().models().iter().map(|m| m.id).collect();
        assert_eq!(ids(plain), catalogue);

        let gemini = find(&accounts, "gemini-api-key[0]");
        assert_eq!(gemini.provider, "gemini");
        assert_eq!(gemini.request_retry, None);
        assert_eq!(ids(gemini), ["gemini-2.5-pro", "gemini-3-pro-preview"]);
    }

    #[test]
    fn every_api_key_section_maps_to_a_provider_with_a_catalogue() {
        for (section, provider, catalogue) in API_KEY_SECTIONS {
            let yaml = format!("{section}:\n  - api-key: k\n");
            let accounts = accounts_from([], &config(&yaml));
            assert_eq!(accounts.len(), 1, "{section}");
            assert_eq!(accounts[0].provider, *provider);
            assert_eq!(accounts[0].id, format!("{section}[0]"));
            assert!(!accounts[0].models.is_empty(), "{section} has models from {catalogue}");
        }
    }

    #[test]
    fn openai_compatibility_one_account_per_key_models_from_config_only() {
        let accounts = build();
        let local = find(&accounts, "openai-compatibility:local");
        assert_eq!(local.kind, AccountKind::Compat { name: "local".into(), entry: 0, key: None });
        assert_eq!((local.provider.as_str(), local.priority), ("openai-compatibility:local", 1));
        assert_eq!(ids(local), ["llama"]);
        assert_eq!(upstream_of(local, "llama"), "llama3");
        assert_eq!((local.models[0].owned_by.as_str(), local.models[0].kind.as_str()), ("local", "openai"));

        let k2 = find(&accounts, "openai-compatibility:router[1]");
        assert_eq!(k2.kind, AccountKind::Compat { name: "router".into(), entry: 1, key: Some(1) });
        assert_eq!((k2.weight, k2.disable_cooling), (5, Some(false)));
        assert_eq!(ids(k2), ["or/kimi", "kimi"]);
        assert_eq!(upstream_of(k2, "kimi"), "moonshot/kimi-k2");
        assert_eq!(find(&accounts, "openai-compatibility:router[0]").weight, 1);
        assert!(!accounts.iter().any(|a| a.provider == "openai-compatibility:off"), "disabled entry skipped");
    }

    #[test]
    fn accounts_nothing_can_be_sent_with_are_marked_with_the_reason() {
        let gem = config(
            "oauth-providers:\n  - name: gem\n    client-id: c\n    issuer: https://id.gem.example\n    dialect: gemini\n    models: [g-1]\n",
        );
        let files = [
            ("gem-a.json", credential(r#"{"type":"gem"}"#)),
            ("kimi-b.json", credential(r#"{"type":"kimi"}"#)),
            ("claude-c.json", credential(r#"{"type":"claude"}"#)),
        ];
        let accounts = accounts_from(files.iter().map(|(n, c)| (*n, c)), &gem);
        assert_eq!(
            find(&accounts, "gem-a.json").unservable.as_deref(),
            Some("cannot be served: Switchyard has no executor for the `gemini` dialect of gem")
        );
        assert_eq!(find(&accounts, "kimi-b.json").unservable, None);
        assert_eq!(find(&accounts, "claude-c.json").unservable, None);
        // Built-in providers and API-key sections: unservable exactly when they have no executor.
        for provider in switchyard_providers::all() {
            let file = credential(&format!(r#"{{"type":"{}"}}"#, provider.file_types()[0]));
            let account = &accounts_from([("f.json", &file)], &gem)[0];
            let expected = provider
                .executor()
                .is_none()
                .then(|| format!("cannot be served: Switchyard has no executor for {}", provider.id()));
            assert_eq!(account.unservable, expected, "{}", provider.id());
        }
        for (section, ..) in API_KEY_SECTIONS {
            let account = &accounts_from([], &config(&format!("{section}:\n  - api-key: k\n")))[0];
            let served = switchyard_providers::exec::api_key_executor(section).is_some();
            assert_eq!(account.unservable.is_none(), served, "{section}");
        }
    }

    #[test]
    fn config_key_reads_the_key_behind_an_account() {
        let config = config(
            "claude-api-key:\n  - api-key: k-claude\n    base-url: https://proxy.example\n    headers: {X-A: b}\n    proxy-url: direct\n\
             openai-compatibility:\n  - name: local\n    base-url: http://127.0.0.1:9\n    api-key-entries:\n      - api-key: k-compat\n        proxy-url: socks5://127.0.0.1:1080\n",
        );
        let key = AccountKind::ApiKey { section: "claude-api-key".into(), index: 0 };
        let found = key.config_key(&config).unwrap();
        assert_eq!((found.section, found.key, found.base_url), ("claude-api-key", "k-claude", "https://proxy.example"));
        assert_eq!(found.headers.get("X-A").map(String::as_str), Some("b"));
        assert_eq!(found.proxy_url, "direct");
        let compat = AccountKind::Compat { name: "local".into(), entry: 0, key: Some(0) }.config_key(&config).unwrap();
        assert_eq!((compat.section, compat.key), ("openai-compatibility", "k-compat"));
        assert_eq!(compat.proxy_url, "socks5://127.0.0.1:1080");
        let keyless = AccountKind::Compat { name: "local".into(), entry: 0, key: None }.config_key(&config).unwrap();
        assert_eq!((keyless.key, keyless.proxy_url), ("", ""));
        assert!(AccountKind::ApiKey { section: "claude-api-key".into(), index: 5 }.config_key(&config).is_none());
        assert!(AccountKind::OAuth { file: "x.json".into() }.config_key(&config).is_none());
    }
}
