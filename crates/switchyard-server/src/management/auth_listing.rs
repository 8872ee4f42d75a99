//! `GET /v0/management/auth-files`: every auth file (and config API key) as CPA panels read it,
//! with a status saying whether Switchyard can use it and, when not, why (`needs re-login: ...`,
//! `cannot be served: ...`, a cooldown).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use switchyard_auth::login::RefreshState;
use switchyard_auth::{AuthContent, Credential, StoredAuth};
use switchyard_config::Config;
use switchyard_providers::Registry;
use switchyard_router::{Account, AccountHealth, AccountKind, ConfigKey, HealthStatus, cannot_serve};
use switchyard_usage::{Bucket, CounterSnapshot};

use super::auth_files::query_value;
use super::health_routes::HealthFields;
use crate::account_health::{AccountStanding, file_standing, key_standing};
use crate::{ApiError, AppState};

/// A time as the listing shows it: RFC 3339 in UTC, whole seconds.
pub(super) fn rfc3339(time: impl Into<DateTime<Utc>>) -> String {
    time.into().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// One entry of the listing, serialized straight from what it borrows: with thousands of auth
/// files, building a `serde_json::Value` tree per entry (an index map per object, every key an
/// allocation) and dropping it again took most of the call. Optional fields are left out when
/// `None`, as panels expect them absent rather than `null`.
#[derive(Serialize)]
struct ListEntry<'a> {
    id: &'a str,
    auth_index: Cow<'a, str>,
    name: &'a str,
    #[serde(rename = "type")]
    file_type: Cow<'a, str>,
    provider: Cow<'a, str>,
    source: &'static str,
    runtime_only: bool,
    #[serde(flatten)]
    file: Option<FileFields<'a>>,
    success: u64,
    failed: u64,
    /// 20 ten-minute buckets, oldest first.
    recent_requests: Vec<Bucket>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    refused: bool,
    label: Cow<'a, str>,
    status: &'static str,
    status_message: Cow<'a, str>,
    disabled: bool,
    unavailable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    needs_relogin: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_retry_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cooldowns: Option<Vec<Cooldown<'a>>>,
    #[serde(flatten)]
    health: Option<HealthFields>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_refresh: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expired: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<Value>,
    /// A config key's routing settings (an auth file's come with its [`Passthrough`] fields).
    #[serde(skip_serializing_if = "Option::is_none")]
    priority: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<u32>,
    #[serde(flatten)]
    passthrough: Passthrough<'a>,
}

impl<'a> ListEntry<'a> {
    /// An entry with nothing optional set, sourced from a file: `error` and unavailable,
    /// labelled by its name, until the caller knows better.
    fn new(name: &'a str, auth_index: Cow<'a, str>, provider: Cow<'a, str>, counts: CounterSnapshot) -> Self {
        ListEntry {
            id: name,
            auth_index,
            name,
            file_type: provider.clone(),
            provider,
            source: "file",
            runtime_only: false,
            file: None,
            success: counts.success,
            failed: counts.failed,
            recent_requests: counts.recent_requests,
            refused: false,
            label: Cow::Borrowed(name),
            status: "error",
            status_message: Cow::Borrowed(""),
            disabled: false,
            unavailable: true,
            needs_relogin: None,
            next_retry_after: None,
            cooldowns: None,
            health: None,
            email: None,
            project_id: None,
            account_type: None,
            account: None,
            last_refresh: None,
            expired: None,
            id_token: None,
            priority: None,
            weight: None,
            passthrough: Passthrough(None),
        }
    }
}

/// What only an auth file has: where it is and when it last changed.
#[derive(Serialize)]
struct FileFields<'a> {
    path: Cow<'a, str>,
    size: u64,
    modtime: String,
    updated_at: String,
    created_at: String,
}

/// One per-model cooldown of the router.
#[derive(Serialize)]
struct Cooldown<'a> {
    model: &'a str,
    reason: &'static str,
    status: u16,
    retry_after_seconds: u64,
}

/// The file's [`PASSTHROUGH_FIELDS`] that it sets, copied as they are.
struct Passthrough<'a>(Option<&'a Map<String, Value>>);

impl Serialize for Passthrough<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = self
            .0
            .into_iter()
            .flat_map(|fields| PASSTHROUGH_FIELDS.iter().filter_map(|key| fields.get(*key).map(|value| (*key, value))));
        serializer.collect_map(fields)
    }
}

/// Codex keeps plan and subscription in the id_token's claims; panels show them.
fn codex_id_token_claims(credential: &Credential) -> Option<Value> {
    let claims = switchyard_auth::login::jwt_claims(credential.str_field("id_token")?).ok()?;
    let auth = claims.get("https://api.openai.com/auth")?;
    let mut out = Map::new();
    for key in [
        "chatgpt_account_id",
        "plan_type",
        "chatgpt_plan_type",
        "chatgpt_subscription_active_start",
        "chatgpt_subscription_active_until",
    ] {
        if let Some(value) = auth.get(key) {
            let name = if key == "chatgpt_plan_type" { "plan_type" } else { key };
            out.entry(name.to_owned()).or_insert_with(|| value.clone());
        }
    }
    Some(Value::Object(out))
}

/// Editable and informative keys copied from the file as they are.
const PASSTHROUGH_FIELDS: &[&str] = &[
    "priority",
    "note",
    "weight",
    "websockets",
    "request_retry",
    "prefix",
    "proxy_url",
    "excluded_models",
    "disable_cooling",
    "headers",
    "using_api",
    "model_aliases",
];

/// What one auth file's listing entry is built from.
struct FileView<'a> {
    stored: &'a StoredAuth,
    standing: AccountStanding,
    refresh: Option<RefreshState>,
    health: &'a AccountHealth,
    /// Why nothing can be sent with it whatever its tokens (no executor for its provider).
    unservable: Option<String>,
}

fn file_entry(view: FileView<'_>, counts: CounterSnapshot) -> ListEntry<'_> {
    let FileView { stored, standing, refresh, health, unservable } = view;
    let provider: Cow<'_, str> = match &stored.content {
        AuthContent::Valid(credential) => credential.provider().map_or(Cow::Borrowed("unknown"), Cow::Owned),
        AuthContent::Corrupt { .. } | AuthContent::Refused { .. } => Cow::Borrowed("unknown"),
    };
    let modtime = rfc3339(stored.modified);
    let file = FileFields {
        path: stored.path.to_string_lossy(),
        size: stored.size,
        updated_at: modtime.clone(),
        created_at: modtime.clone(),
        modtime,
    };
    let mut entry = ListEntry::new(&stored.name, Cow::Borrowed(&stored.auth_index), provider, counts);
    entry.file = Some(file);
    match &stored.content {
        AuthContent::Corrupt { message } | AuthContent::Refused { reason: message } => {
            // Refused: not read at all (symlink, FIFO, device, directory, oversized), so not
            // even downloadable.
            entry.refused = matches!(stored.content, AuthContent::Refused { .. });
            entry.status_message = Cow::Borrowed(message);
        }
        AuthContent::Valid(credential) => {
            let disabled = credential.disabled();
            let refresh = refresh.unwrap_or_default();
            // A dead refresh token outranks everything but a manual disable: the panel offers re-login.
            // Then an account nothing can be sent with, then cooldowns after upstream failures
            // (the router's view), then refresh trouble.
            let cooling = health.status != HealthStatus::Active;
            let (status, message) = match (&refresh.needs_relogin, disabled) {
                (_, true) => ("disabled", String::new()),
                (Some(reason), false) => ("error", format!("needs re-login: {reason}")),
                (None, false) if unservable.is_some() => ("error", unservable.clone().unwrap_or_default()),
                (None, false) if cooling => ("error", health.status_message.clone().unwrap_or_default()),
                (None, false) if refresh.refreshing => ("refreshing", String::new()),
                (None, false) => ("active", refresh.last_error.clone().unwrap_or_default()),
            };
            if let Some(label) = credential.label() {
                entry.label = Cow::Owned(label);
            }
            entry.status = status;
            entry.status_message = Cow::Owned(message);
            entry.disabled = disabled;
            entry.unavailable = refresh.needs_relogin.is_some() || unservable.is_some() || health.unavailable;
            entry.needs_relogin = Some(refresh.needs_relogin.is_some());
            add_health(&mut entry, health, refresh.next_attempt_after);
            entry.health = Some(HealthFields::of(&standing));
            entry.email = credential.email();
            entry.project_id = credential.project_id();
            let has_oauth_token = credential.access_token().is_some() || credential.refresh_token().is_some();
            let api_key = credential.str_field("api_key").filter(|_| !has_oauth_token);
            entry.account_type = Some(if api_key.is_some() { "api_key" } else { "oauth" });
            // An API key is shown only by its length; an email is the account for OAuth.
            entry.account = match api_key {
                Some(key) => Some(Cow::Owned(switchyard_redact::secret(key).to_string())),
                None => credential.email().map(Cow::Borrowed),
            };
            entry.last_refresh = credential.last_refresh().map(rfc3339);
            entry.expired = credential.expiry().map(rfc3339);
            if entry.provider == "codex" {
                entry.id_token = codex_id_token_claims(credential);
            }
            entry.passthrough = Passthrough(Some(credential.fields()));
        }
    }
    entry
}

/// `{"files": [...]}`
#[derive(Serialize)]
struct Listing<'a> {
    files: Vec<ListEntry<'a>>,
}

/// `GET /auth-files[?name=][&auth_index=]` → `{"files": [...]}`, sorted by name: the auth files,
/// then (as CPA lists them) the config API keys as runtime-only entries, so their cooldowns show too.
pub async fn list(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Response {
    let name = query_value(&query, "name").filter(|n| !n.is_empty());
    let index = query_value(&query, "auth_index").filter(|i| !i.is_empty());
    let now_wall = SystemTime::now();
    let config = state.config.get();
    let registry = Registry::new(&config);
    let now = std::time::Instant::now();
    let stored_files: Vec<Arc<StoredAuth>> = state
        .store
        .list()
        .into_iter()
        .filter(|s| name.as_deref().is_none_or(|n| s.name == n))
        .filter(|s| index.as_deref().is_none_or(|i| s.auth_index == i))
        .collect();
    // Health is read into its own list first: entries borrow it.
    let healths: Vec<AccountHealth> = stored_files.iter().map(|s| state.router.health(&s.name, now)).collect();
    let mut files: Vec<ListEntry<'_>> = stored_files
        .iter()
        .zip(&healths)
        .map(|(stored, health)| {
            let unservable = stored.credential().and_then(|c| registry.unservable_reason(c)).map(|r| cannot_serve(&r));
            let standing = file_standing(&state, stored);
            let refresh = state.refresher.state(&stored.name);
            let view = FileView { stored, standing, refresh, health, unservable };
            file_entry(view, state.usage.counters.snapshot(&stored.auth_index, now_wall))
        })
        .collect();
    // Only config keys become entries here: not a copy of every auth-file account too.
    let keys = state.router.accounts_where(|a| !matches!(a.kind, AccountKind::OAuth { .. }));
    let key_healths: Vec<AccountHealth> = keys.iter().map(|a| state.router.health(&a.id, now)).collect();
    for (account, health) in keys.iter().zip(&key_healths) {
        let Some(mut entry) =
            api_key_entry(&config, account, health, |index| state.usage.counters.snapshot(index, now_wall))
        else {
            continue;
        };
        if let Some(standing) = key_standing(&state, &config, account) {
            entry.health = Some(HealthFields::of(&standing));
        }
        let matches_name = name.as_deref().is_none_or(|n| account.id == n);
        let matches_index = index.as_deref().is_none_or(|i| entry.auth_index == i);
        if matches_name && matches_index {
            files.push(entry);
        }
    }
    // Each name lower-cased once, not once per comparison.
    files.sort_by_cached_key(|f| f.name.to_lowercase());
    // Sized for the answer up front (an entry is about 1.7 KB, most of it `recent_requests`):
    // growing a 9 MB buffer by doubling copies it and peaks at twice its size.
    let mut body = Vec::with_capacity(files.len() * ENTRY_BYTES + 16);
    match serde_json::to_writer(&mut body, &Listing { files }) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(error) => ApiError::internal(format!("cannot serialize the listing: {error}")).into_response(),
    }
}

/// About what one serialized listing entry takes.
const ENTRY_BYTES: usize = 1800;

/// CPA's `auth_index` for a config key: the first 8 bytes of SHA-256 of
/// `<section>:<base_url>+<api_key>`, hex.
pub(crate) fn api_key_auth_index(section: &str, base_url: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{section}:{base_url}+{key}").as_bytes());
    hex::encode(&digest[..8])
}

/// The `auth_index` of a router account: its auth file's, or its config key's; `None` when the
/// file or the config entry is gone.
pub(crate) fn account_auth_index(state: &AppState, config: &Config, kind: &AccountKind) -> Option<String> {
    match kind {
        AccountKind::OAuth { file } => Some(state.store.get(file)?.auth_index.clone()),
        kind => kind.config_key(config).map(|key| api_key_auth_index(key.section, key.base_url, key.key)),
    }
}

/// A config API key (or openai-compatibility key) as a runtime-only listing entry.
fn api_key_entry<'a>(
    config: &'a Config,
    account: &'a Account,
    health: &'a AccountHealth,
    counts: impl FnOnce(&str) -> CounterSnapshot,
) -> Option<ListEntry<'a>> {
    let ConfigKey { section, key, base_url, .. } = account.kind.config_key(config)?;
    let auth_index = api_key_auth_index(section, base_url, key);
    let cooling = health.status != HealthStatus::Active;
    let unservable = account.unservable.is_some();
    let counts = counts(&auth_index);
    let mut entry = ListEntry::new(&account.id, Cow::Owned(auth_index), Cow::Borrowed(&account.provider), counts);
    entry.source = "memory";
    entry.runtime_only = true;
    entry.status = if account.disabled {
        "disabled"
    } else if unservable || cooling {
        "error"
    } else {
        "active"
    };
    entry.status_message = match (&account.unservable, cooling) {
        (Some(reason), _) => Cow::Borrowed(reason),
        (None, true) => Cow::Borrowed(health.status_message.as_deref().unwrap_or_default()),
        (None, false) => Cow::Borrowed(""),
    };
    entry.disabled = account.disabled;
    entry.unavailable = unservable || health.unavailable;
    entry.account_type = Some("api_key");
    entry.account = Some(Cow::Owned(switchyard_redact::secret(key).to_string()));
    entry.priority = Some(account.priority);
    entry.weight = Some(account.weight);
    add_health(&mut entry, health, None);
    Some(entry)
}

/// `next_retry_after` and per-model `cooldowns` from the router (falling back to the refresher's
/// next attempt).
fn add_health<'a>(entry: &mut ListEntry<'a>, health: &'a AccountHealth, refresh_next: Option<DateTime<Utc>>) {
    let next_retry = health
        .next_retry_after
        .map(|wait| Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default())
        .or(refresh_next);
    entry.next_retry_after = next_retry.map(rfc3339);
    if !health.models.is_empty() {
        let cooldowns = health
            .models
            .iter()
            .map(|m| Cooldown {
                model: &m.model,
                reason: m.reason.as_str(),
                status: m.status,
                retry_after_seconds: m.retry_after.as_secs(),
            })
            .collect();
        entry.cooldowns = Some(cooldowns);
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use serde_json::json;

    use super::*;

    #[test]
    fn codex_claims_are_read_from_the_id_token_payload() {
        let payload = json!({"email": "a@b.c", "https://api.openai.com/auth": {"chatgpt_account_id": "acc-1", "chatgpt_plan_type": "plus"}});
        let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload.to_string());
        let mut credential = Credential::new("codex");
        credential.fields_mut().insert("id_token".into(), json!(format!("h.{encoded}.s")));
        let claims = codex_id_token_claims(&credential).unwrap();
        assert_eq!(claims, json!({"chatgpt_account_id": "acc-1", "plan_type": "plus"}));
        credential.fields_mut().insert("id_token".into(), json!("not-a-jwt"));
        assert!(codex_id_token_claims(&credential).is_none());
    }
}
