//! `GET /v0/management/auth-files`: every auth file (and config API key) as CPA panels read it,
//! with a status saying whether Switchyard can use it and, when not, why (`needs re-login: ...`,
//! `cannot be served: ...`, a cooldown).

use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::extract::{RawQuery, State};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use switchyard_auth::login::RefreshState;
use switchyard_auth::{AuthContent, Credential, StoredAuth};
use switchyard_config::Config;
use switchyard_providers::Registry;
use switchyard_router::{Account, AccountHealth, AccountKind, ConfigKey, HealthStatus, cannot_serve};
use switchyard_usage::CounterSnapshot;

use super::auth_files::query_value;
use super::health_routes::add_health_fields;
use crate::AppState;
use crate::account_health::{AccountStanding, file_standing, key_standing};

fn rfc3339(time: SystemTime) -> String {
    DateTime::<Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `success`, `failed` and `recent_requests` (20 ten-minute buckets) from this process's counts.
fn add_counts(entry: &mut Map<String, Value>, counts: CounterSnapshot) {
    entry.insert("success".into(), json!(counts.success));
    entry.insert("failed".into(), json!(counts.failed));
    let buckets = counts
        .recent_requests
        .into_iter()
        .map(|b| json!({"time": b.time, "success": b.success, "failed": b.failed}))
        .collect();
    entry.insert("recent_requests".into(), Value::Array(buckets));
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
    standing: &'a AccountStanding,
    refresh: Option<RefreshState>,
    health: &'a AccountHealth,
    /// Why nothing can be sent with it whatever its tokens (no executor for its provider).
    unservable: Option<String>,
}

fn list_entry(view: FileView<'_>, counts: CounterSnapshot) -> Value {
    let FileView { stored, standing, refresh, health, unservable } = view;
    let mut entry = Map::new();
    let provider = match &stored.content {
        AuthContent::Valid(credential) => credential.provider().unwrap_or_else(|| "unknown".to_owned()),
        AuthContent::Corrupt { .. } | AuthContent::Refused { .. } => "unknown".to_owned(),
    };
    entry.insert("id".into(), json!(stored.name));
    entry.insert("auth_index".into(), json!(stored.auth_index));
    entry.insert("name".into(), json!(stored.name));
    entry.insert("type".into(), json!(provider));
    entry.insert("provider".into(), json!(provider));
    entry.insert("source".into(), json!("file"));
    entry.insert("runtime_only".into(), json!(false));
    entry.insert("path".into(), json!(stored.path.display().to_string()));
    entry.insert("size".into(), json!(stored.size));
    entry.insert("modtime".into(), json!(rfc3339(stored.modified)));
    entry.insert("updated_at".into(), json!(rfc3339(stored.modified)));
    entry.insert("created_at".into(), json!(rfc3339(stored.modified)));
    add_counts(&mut entry, counts);
    match &stored.content {
        AuthContent::Corrupt { message } | AuthContent::Refused { reason: message } => {
            if matches!(stored.content, AuthContent::Refused { .. }) {
                // Not read at all (symlink, FIFO, device, directory, oversized): not even downloadable.
                entry.insert("refused".into(), json!(true));
            }
            entry.insert("label".into(), json!(stored.name));
            entry.insert("status".into(), json!("error"));
            entry.insert("status_message".into(), json!(message));
            entry.insert("disabled".into(), json!(false));
            entry.insert("unavailable".into(), json!(true));
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
            entry.insert("label".into(), json!(credential.label().unwrap_or_else(|| stored.name.clone())));
            entry.insert("status".into(), json!(status));
            entry.insert("status_message".into(), json!(message));
            entry.insert("disabled".into(), json!(disabled));
            let unavailable = refresh.needs_relogin.is_some() || unservable.is_some() || health.unavailable;
            entry.insert("unavailable".into(), json!(unavailable));
            entry.insert("needs_relogin".into(), json!(refresh.needs_relogin.is_some()));
            add_health(&mut entry, health, refresh.next_attempt_after);
            add_health_fields(&mut entry, standing);
            if let Some(email) = credential.email() {
                entry.insert("email".into(), json!(email));
            }
            if let Some(project) = credential.project_id() {
                entry.insert("project_id".into(), json!(project));
            }
            let has_oauth_token = credential.access_token().is_some() || credential.refresh_token().is_some();
            let api_key = credential.str_field("api_key").filter(|_| !has_oauth_token);
            entry.insert("account_type".into(), json!(if api_key.is_some() { "api_key" } else { "oauth" }));
            // An API key is shown only by its length; an email is the account for OAuth.
            let account = match api_key {
                Some(key) => Some(switchyard_redact::secret(key).to_string()),
                None => credential.email().map(str::to_owned),
            };
            if let Some(account) = account {
                entry.insert("account".into(), json!(account));
            }
            if let Some(last) = credential.last_refresh() {
                entry.insert("last_refresh".into(), json!(last.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
            }
            if let Some(expiry) = credential.expiry() {
                entry.insert("expired".into(), json!(expiry.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
            }
            if provider == "codex"
                && let Some(claims) = codex_id_token_claims(credential)
            {
                entry.insert("id_token".into(), claims);
            }
            for key in PASSTHROUGH_FIELDS {
                if let Some(value) = credential.fields().get(*key) {
                    entry.insert((*key).to_owned(), value.clone());
                }
            }
        }
    }
    Value::Object(entry)
}

/// `GET /auth-files[?name=][&auth_index=]` → `{"files": [...]}`, sorted by name: the auth files,
/// then (as CPA lists them) the config API keys as runtime-only entries, so their cooldowns show too.
pub async fn list(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Json<Value> {
    let name = query_value(&query, "name").filter(|n| !n.is_empty());
    let index = query_value(&query, "auth_index").filter(|i| !i.is_empty());
    let now_wall = SystemTime::now();
    let config = state.config.get();
    let registry = Registry::new(&config);
    let now = std::time::Instant::now();
    let mut files: Vec<Value> = state
        .store
        .list()
        .iter()
        .filter(|s| name.as_deref().is_none_or(|n| s.name == n))
        .filter(|s| index.as_deref().is_none_or(|i| s.auth_index == i))
        .map(|stored| {
            let health = state.router.health(&stored.name, now);
            let unservable = stored.credential().and_then(|c| registry.unservable_reason(c)).map(|r| cannot_serve(&r));
            let standing = file_standing(&state, stored);
            let refresh = state.refresher.state(&stored.name);
            let view = FileView { stored, standing: &standing, refresh, health: &health, unservable };
            list_entry(view, state.usage.counters.snapshot(&stored.auth_index, now_wall))
        })
        .collect();
    // Only config keys become entries here: not a copy of every auth-file account too.
    for account in state.router.accounts_where(|a| !matches!(a.kind, AccountKind::OAuth { .. })) {
        let health = state.router.health(&account.id, now);
        let Some(mut entry) =
            api_key_entry(&config, &account, &health, |index| state.usage.counters.snapshot(index, now_wall))
        else {
            continue;
        };
        if let (Some(standing), Some(map)) = (key_standing(&state, &config, &account), entry.as_object_mut()) {
            add_health_fields(map, &standing);
        }
        let matches_name = name.as_deref().is_none_or(|n| account.id == n);
        let matches_index = index.as_deref().is_none_or(|i| entry["auth_index"] == i);
        if matches_name && matches_index {
            files.push(entry);
        }
    }
    // Each name lower-cased once, not once per comparison.
    files.sort_by_cached_key(|f| f["name"].as_str().unwrap_or_default().to_lowercase());
    // Not `json!({"files": files})`: the macro serializes its arguments into a new value, a
    // deep copy of every entry (most of the listing's time with thousands of files).
    let mut body = Map::new();
    body.insert("files".into(), Value::Array(files));
    Json(Value::Object(body))
}

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
fn api_key_entry(
    config: &Config,
    account: &Account,
    health: &AccountHealth,
    counts: impl FnOnce(&str) -> CounterSnapshot,
) -> Option<Value> {
    let ConfigKey { section, key, base_url, .. } = account.kind.config_key(config)?;
    let auth_index = api_key_auth_index(section, base_url, key);
    let cooling = health.status != HealthStatus::Active;
    let unservable = account.unservable.is_some();
    let mut entry = json!({
        "id": account.id,
        "auth_index": auth_index,
        "name": account.id,
        "type": account.provider,
        "provider": account.provider,
        "label": account.id,
        "status": if account.disabled { "disabled" } else if unservable || cooling { "error" } else { "active" },
        "status_message": match (&account.unservable, cooling) {
            (Some(reason), _) => reason.clone(),
            (None, true) => health.status_message.clone().unwrap_or_default(),
            (None, false) => String::new(),
        },
        "disabled": account.disabled,
        "unavailable": unservable || health.unavailable,
        "runtime_only": true,
        "source": "memory",
        "account_type": "api_key",
        "account": switchyard_redact::secret(key).to_string(),
        "priority": account.priority,
        "weight": account.weight,
    });
    if let Some(map) = entry.as_object_mut() {
        add_counts(map, counts(&auth_index));
        add_health(map, health, None);
    }
    Some(entry)
}

/// `next_retry_after` and per-model `cooldowns` from the router (falling back to the refresher's
/// next attempt).
fn add_health(entry: &mut Map<String, Value>, health: &AccountHealth, refresh_next: Option<DateTime<Utc>>) {
    let next_retry = health
        .next_retry_after
        .map(|wait| Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default())
        .or(refresh_next);
    if let Some(next) = next_retry {
        entry.insert("next_retry_after".into(), json!(next.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
    }
    if !health.models.is_empty() {
        let cooldowns: Vec<Value> = health
            .models
            .iter()
            .map(|m| json!({"model": m.model, "reason": m.reason.as_str(), "status": m.status, "retry_after_seconds": m.retry_after.as_secs()}))
            .collect();
        entry.insert("cooldowns".into(), Value::Array(cooldowns));
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

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
