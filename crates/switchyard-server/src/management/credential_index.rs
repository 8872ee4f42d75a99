//! Finding a credential by CPA's `auth_index` (what `/reset-quota` and `/api-call` name it by):
//! an auth file's index from the store, or a config key's from its section, base URL and key.

use std::sync::Arc;

use serde_json::{Map, Value};
use switchyard_auth::StoredAuth;
use switchyard_config::Config;
use switchyard_router::Account;

use super::auth_listing::api_key_auth_index;
use crate::{ApiError, AppState};

/// A credential some `auth_index` names.
pub(super) enum Indexed {
    File(Arc<StoredAuth>),
    /// A config API key (or openai-compatibility key), as the router's account.
    Key(Account),
}

impl Indexed {
    /// The router's id of the account behind it.
    pub fn account_id(&self) -> &str {
        match self {
            Indexed::File(stored) => &stored.name,
            Indexed::Key(account) => &account.id,
        }
    }
}

pub(super) fn find(state: &AppState, config: &Config, index: &str) -> Option<Indexed> {
    if let Some(stored) = state.store.list().into_iter().find(|s| s.auth_index == index) {
        return Some(Indexed::File(stored));
    }
    state
        .router
        .accounts()
        .into_iter()
        .find(|account| {
            account
                .kind
                .config_key(config)
                .is_some_and(|key| api_key_auth_index(key.section, key.base_url, key.key) == index)
        })
        .map(Indexed::Key)
}

/// The body's `auth_index` (CPA's name; the official panel sends `authIndex`, some `auth-index`).
/// Absent, `null` or blank is `None`; anything but a string is a 400 naming the field.
pub(super) fn auth_index_field(body: &Map<String, Value>) -> Result<Option<String>, ApiError> {
    for name in ["auth_index", "authIndex", "auth-index"] {
        match body.get(name) {
            None | Some(Value::Null) => continue,
            Some(Value::String(index)) if index.trim().is_empty() => continue,
            Some(Value::String(index)) => return Ok(Some(index.trim().to_owned())),
            Some(_) => return Err(ApiError::bad_request(format!("{name} must be a string"))),
        }
    }
    Ok(None)
}
