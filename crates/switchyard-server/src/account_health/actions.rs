//! Switching accounts off and on, with the ownership rule (§4.5): the auth file records who
//! disabled it (`switchyard_disabled_by`), a machine only enables what it disabled itself, and
//! a person always may. Every switch is one atomic store update that keeps the file's other
//! fields, and leaves a `Disabled`/`Enabled` evidence item.

use std::sync::Arc;

use chrono::Utc;
use serde_json::Value;
use switchyard_auth::{CredentialStore, StoreError, StoreEvent};
use switchyard_config::ConfigHandle;
use switchyard_health::{
    Actor, DISABLED_BY_KEY, DISABLED_CREDENTIAL_KEY, DISABLED_REASON_KEY, Evidence, HealthBook, Signal, Source,
    may_enable,
};
use tokio::sync::broadcast::error::RecvError;

use super::{credential_fingerprint, disabled_by};

/// What a switch did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Toggle {
    Changed,
    /// Already as asked (a machine's disable keeps the first owner).
    Unchanged,
    /// The ownership rule said no: why.
    Refused(String),
}

fn source_of(actor: Actor) -> Source {
    match actor {
        Actor::Manual => Source::Manual,
        Actor::Inspection => Source::Inspection,
        Actor::Quota => Source::Quota,
        Actor::AuthIssue => Source::Request,
    }
}

/// Disables or enables the auth file `file` as `actor`; `reason` is a short code or phrase
/// (kept in the file for automatic disables, never a secret).
pub(crate) async fn set_disabled(
    store: &CredentialStore,
    book: &HealthBook,
    file: &str,
    disabled: bool,
    actor: Actor,
    reason: &str,
) -> Result<Toggle, StoreError> {
    let mut toggle = Toggle::Unchanged;
    let outcome = &mut toggle;
    let reason_owned = reason.to_owned();
    let stored = store
        .update(file, move |credential| {
            let owner = disabled_by(credential);
            let fields = credential.fields_mut();
            let clear_owner = |fields: &mut serde_json::Map<String, Value>| {
                for key in [DISABLED_BY_KEY, DISABLED_REASON_KEY, DISABLED_CREDENTIAL_KEY] {
                    fields.remove(key);
                }
            };
            let currently = fields.get("disabled").and_then(Value::as_bool).unwrap_or(false);
            match (disabled, currently) {
                // A person's disable takes over a machine's: no machine may undo it now.
                (true, true) if actor == Actor::Manual && owner.is_some_and(|o| o != Actor::Manual) => {
                    clear_owner(fields);
                    fields.insert(DISABLED_BY_KEY.into(), Value::String(actor.as_str().into()));
                    *outcome = Toggle::Changed;
                }
                (true, true) => {}
                (true, false) => {
                    let fingerprint = credential_fingerprint(credential);
                    credential.set_disabled(true);
                    let fields = credential.fields_mut();
                    fields.insert(DISABLED_BY_KEY.into(), Value::String(actor.as_str().into()));
                    if actor == Actor::Manual {
                        fields.remove(DISABLED_REASON_KEY);
                    } else {
                        fields.insert(DISABLED_REASON_KEY.into(), Value::String(reason_owned));
                    }
                    match fingerprint.filter(|_| actor == Actor::AuthIssue) {
                        Some(fingerprint) => fields.insert(DISABLED_CREDENTIAL_KEY.into(), Value::String(fingerprint)),
                        None => fields.remove(DISABLED_CREDENTIAL_KEY),
                    };
                    *outcome = Toggle::Changed;
                }
                (false, false) => {
                    // A person's enable also tidies an owner left from an outside edit.
                    if actor == Actor::Manual {
                        clear_owner(fields);
                    }
                }
                (false, true) if !may_enable(owner, actor) => {
                    let owner = owner.unwrap_or(Actor::Manual).as_str();
                    *outcome = Toggle::Refused(format!("disabled by {owner}: only {owner} or a person may enable it"));
                }
                (false, true) => {
                    credential.set_disabled(false);
                    clear_owner(credential.fields_mut());
                    *outcome = Toggle::Changed;
                }
            }
            Ok(())
        })
        .await?;
    if toggle == Toggle::Changed {
        let fingerprint = stored.credential().and_then(credential_fingerprint);
        let (signal, verb) = if disabled {
            (Signal::Disabled { by: actor }, "disabled")
        } else {
            (Signal::Enabled { by: actor }, "enabled")
        };
        let detail = match actor {
            Actor::Manual => format!("{verb} via management API"),
            _ => format!("{verb} automatically: {reason}"),
        };
        book.record(file, fingerprint.as_deref(), Evidence::new(Utc::now(), source_of(actor), signal, detail));
        tracing::info!(file, disabled, actor = actor.as_str(), reason, "account switched");
    }
    Ok(toggle)
}

/// Disables `file` as `actor` when `health.auto-disable` is on; failures are logged.
pub(crate) async fn auto_disable(
    config: &ConfigHandle,
    store: &CredentialStore,
    book: &HealthBook,
    file: &str,
    actor: Actor,
    reason: &str,
) {
    if !config.get().health.auto_disable {
        return;
    }
    if let Err(error) = set_disabled(store, book, file, true, actor, reason).await {
        tracing::warn!(file, error = %switchyard_redact::text(&error.to_string()), "automatic disable failed");
    }
}

/// Follows the auth dir: a file whose credential was replaced (a re-login, an upload) drops its
/// old evidence, and if an auth issue had disabled it, the auth issue enables it again — the
/// new login is what it was waiting for. Removed files are forgotten.
pub(crate) fn spawn_relogin_watch(store: Arc<CredentialStore>, book: Arc<HealthBook>) -> tokio::task::JoinHandle<()> {
    let mut events = store.subscribe();
    tokio::spawn(async move {
        loop {
            let name = match events.recv().await {
                Ok(StoreEvent::Upserted(name)) => name,
                Ok(StoreEvent::Removed(name)) => {
                    book.retain(|account| account != name);
                    continue;
                }
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return,
            };
            let Some(credential) = store.get(&name).and_then(|s| s.credential().cloned()) else { continue };
            let Some(fingerprint) = credential_fingerprint(&credential) else { continue };
            book.observe_credential(&name, &fingerprint, Utc::now());
            let disabled_for = credential.str_field(DISABLED_CREDENTIAL_KEY);
            let relogged = disabled_by(&credential) == Some(Actor::AuthIssue)
                && credential.disabled()
                && disabled_for.is_some_and(|old| old != fingerprint);
            if relogged {
                match set_disabled(&store, &book, &name, false, Actor::AuthIssue, "logged in again").await {
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(file = %name, error = %switchyard_redact::text(&error.to_string()), "re-enable after re-login failed");
                    }
                }
            }
        }
    })
}
