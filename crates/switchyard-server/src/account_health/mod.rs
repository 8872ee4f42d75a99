//! Account health in the server: the evidence book every part feeds (request attempts, the
//! refresher, router cooldowns, manual switches, inspections, quota readings through
//! [`AppState::record_quota`]), the actions taken on it with their ownership rule, the pinned
//! probe request, and inspection runs. The rules themselves are `switchyard_health`'s.
//! Inspections of Codex and xAI accounts read quota through [`crate::quota`].

pub(crate) mod actions;
pub(crate) mod feed;
pub(crate) mod inspection;
pub(crate) mod probe;

use std::sync::Arc;

use serde_json::Value;
use sha2::{Digest, Sha256};
use switchyard_auth::{Credential, StoredAuth};
use switchyard_config::Config;
use switchyard_health::{Actor, DISABLED_BY_KEY, Evidence, Facts, Health, HealthBook};
use switchyard_router::{Account, AccountKind};

use crate::AppState;

/// Shared through [`AppState::health`].
#[derive(Default)]
pub struct HealthService {
    pub book: Arc<HealthBook>,
    pub(crate) runs: inspection::Runs,
}

/// Names the credential inside an auth file without holding it: a truncated SHA-256 of the
/// refresh token (what a re-login replaces), else of the access token or API key. `None` for a
/// file with none of them.
pub(crate) fn credential_fingerprint(credential: &Credential) -> Option<String> {
    let secret = credential
        .refresh_token()
        .or_else(|| credential.access_token())
        .or_else(|| credential.str_field("api_key"))
        .or_else(|| credential.str_field("cookie"))?;
    Some(hex::encode(&Sha256::digest(secret.as_bytes())[..8]))
}

/// One evidence item as listings show it: `at`, `source`, `signal` (`kind` and its fields),
/// `detail` and the combined `reason`.
pub(crate) fn evidence_json(evidence: &Evidence) -> Value {
    let mut value = serde_json::to_value(evidence).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.insert("reason".into(), Value::String(evidence.reason()));
    }
    value
}

/// Who disabled the file's account, as the file records it.
pub(crate) fn disabled_by(credential: &Credential) -> Option<Actor> {
    credential.str_field(DISABLED_BY_KEY).and_then(Actor::parse)
}

/// One account's health and where it stands, whatever kind it is.
pub(crate) struct AccountStanding {
    pub account_id: String,
    pub auth_index: String,
    pub provider: String,
    pub disabled: bool,
    pub disabled_by: Option<Actor>,
    pub health: Health,
}

/// An auth file's standing.
pub(crate) fn file_standing(state: &AppState, stored: &StoredAuth) -> AccountStanding {
    let credential = stored.credential();
    let fingerprint = credential.and_then(credential_fingerprint);
    let facts = Facts {
        disabled: credential.is_some_and(Credential::disabled),
        disabled_by: credential.and_then(disabled_by),
        credential_since: None,
    };
    let health = state.health.book.health(&stored.name, fingerprint.as_deref(), &facts, chrono::Utc::now());
    AccountStanding {
        account_id: stored.name.clone(),
        auth_index: stored.auth_index.clone(),
        provider: credential.and_then(Credential::provider).unwrap_or_else(|| "unknown".into()),
        disabled: facts.disabled,
        disabled_by: facts.disabled_by,
        health,
    }
}

/// A config key's standing; `None` when `account` is an auth file or its entry is gone.
pub(crate) fn key_standing(state: &AppState, config: &Config, account: &Account) -> Option<AccountStanding> {
    if matches!(account.kind, AccountKind::OAuth { .. }) {
        return None;
    }
    let key = account.kind.config_key(config)?;
    let auth_index = crate::management::api_key_auth_index(key.section, key.base_url, key.key);
    let facts = Facts { disabled: account.disabled, disabled_by: None, credential_since: None };
    let health = state.health.book.health(&account.id, Some(&auth_index), &facts, chrono::Utc::now());
    Some(AccountStanding {
        account_id: account.id.clone(),
        provider: account.provider.clone(),
        disabled: account.disabled,
        disabled_by: None,
        auth_index,
        health,
    })
}

/// The standing of the router account `account_id` (an auth file or a config key).
pub(crate) fn standing(state: &AppState, config: &Config, account_id: &str) -> Option<AccountStanding> {
    if let Some(stored) = state.store.get(account_id) {
        return Some(file_standing(state, &stored));
    }
    key_standing(state, config, &state.router.account(account_id)?)
}

/// The fingerprint evidence about `account_id` is filed under.
pub(crate) fn fingerprint_of(state: &AppState, config: &Config, account: &Account) -> Option<String> {
    match &account.kind {
        AccountKind::OAuth { file } => state.store.get(file)?.credential().and_then(credential_fingerprint),
        kind => {
            let key = kind.config_key(config)?;
            Some(crate::management::api_key_auth_index(key.section, key.base_url, key.key))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn credential(value: serde_json::Value) -> Credential {
        Credential::from_json(value.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn fingerprints_follow_the_refresh_token_and_never_show_it() {
        let a = credential(json!({"type": "claude", "access_token": "at-1", "refresh_token": "rt-secret-1"}));
        let refreshed = credential(json!({"type": "claude", "access_token": "at-2", "refresh_token": "rt-secret-1"}));
        let relogin = credential(json!({"type": "claude", "access_token": "at-3", "refresh_token": "rt-secret-2"}));
        let fp = credential_fingerprint(&a).unwrap();
        assert_eq!(fp.len(), 16);
        assert!(!fp.contains("secret"));
        assert_eq!(credential_fingerprint(&refreshed), Some(fp.clone()));
        assert_ne!(credential_fingerprint(&relogin), Some(fp));
        assert_eq!(credential_fingerprint(&credential(json!({"type": "claude"}))), None);
        let key_only = credential(json!({"type": "claude", "api_key": "sk-1"}));
        assert!(credential_fingerprint(&key_only).is_some());
    }

    #[test]
    fn the_owner_is_read_from_the_file() {
        let c = credential(json!({"type": "claude", "disabled": true, "switchyard_disabled_by": "quota"}));
        assert_eq!(disabled_by(&c), Some(Actor::Quota));
        let c = credential(json!({"type": "claude", "switchyard_disabled_by": "someone"}));
        assert_eq!(disabled_by(&c), None);
    }
}
