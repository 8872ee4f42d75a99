//! `Refresher::relogin_changes`: the generation bumps exactly when a file's needs-re-login mark
//! is set or cleared (the mark changes no file, so routing follows this instead).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Map, Value, json};
use switchyard_auth::login::{LoginContext, RefreshError, Refresher, RefresherLookup, TokenRefresher};
use switchyard_auth::{Credential, CredentialStore};
use switchyard_config::ConfigHandle;

const FILE: &str = "acct.json";

/// Refuses every refresh token while `revoked`, else hands out a new access token.
struct Switchable {
    revoked: AtomicBool,
}

#[async_trait::async_trait]
impl TokenRefresher for Switchable {
    fn refresh_lead(&self) -> Option<Duration> {
        Some(Duration::from_secs(60))
    }

    async fn refresh(&self, _ctx: &LoginContext, _credential: &Credential) -> Result<Map<String, Value>, RefreshError> {
        if self.revoked.load(Ordering::SeqCst) {
            return Err(RefreshError::Revoked("HTTP 400: invalid_grant".into()));
        }
        let mut fields = Map::new();
        fields.insert("access_token".into(), json!("at-fresh"));
        Ok(fields)
    }
}

struct Lookup(Arc<Switchable>);

impl RefresherLookup for Lookup {
    fn refresher_for(&self, _credential: &Credential) -> Option<Arc<dyn TokenRefresher>> {
        Some(self.0.clone())
    }
}

fn credential(refresh_token: &str) -> Credential {
    Credential::from_json(json!({"type": "test", "refresh_token": refresh_token}).to_string().as_bytes()).unwrap()
}

#[tokio::test]
async fn marks_set_and_cleared_bump_the_generation_and_nothing_else_does() {
    let tmp = tempfile::tempdir().unwrap();
    let store = CredentialStore::open(tmp.path().join("auths")).await.unwrap();
    store.save(FILE, &credential("rt-1")).await.unwrap();
    let provider = Arc::new(Switchable { revoked: AtomicBool::new(true) });
    let config = Arc::new(ConfigHandle::embedded());
    let refresher = Refresher::new(
        store.clone(),
        Arc::new(Lookup(provider.clone())),
        config,
        Arc::new(switchyard_http::HttpClients::new()),
    );
    let mut changes = refresher.relogin_changes();
    let generation = |changes: &tokio::sync::watch::Receiver<u64>| *changes.borrow();
    assert_eq!(generation(&changes), 0);

    // Refused: marked, announced once; a second refusal changes nothing.
    assert!(matches!(refresher.force_refresh(FILE).await, Err(RefreshError::Revoked(_))));
    assert!(changes.has_changed().unwrap());
    assert_eq!(*changes.borrow_and_update(), 1);
    assert_eq!(refresher.state(FILE).unwrap().needs_relogin.as_deref(), Some("HTTP 400: invalid_grant"));
    assert!(matches!(refresher.force_refresh(FILE).await, Err(RefreshError::Revoked(_))));
    assert!(!changes.has_changed().unwrap(), "still marked: no news");

    // The user logs in again (the file changes): the next look clears the mark and says so.
    store.save(FILE, &credential("rt-2")).await.unwrap();
    assert_eq!(refresher.state(FILE).unwrap().needs_relogin, None);
    assert_eq!(*changes.borrow_and_update(), 2);
    assert_eq!(refresher.state(FILE).unwrap().needs_relogin, None);
    assert!(!changes.has_changed().unwrap());

    // A successful refresh of an unmarked file is no news either.
    provider.revoked.store(false, Ordering::SeqCst);
    refresher.force_refresh(FILE).await.unwrap();
    assert!(!changes.has_changed().unwrap());

    // Marked again, then a refresh that works clears it: two changes.
    provider.revoked.store(true, Ordering::SeqCst);
    let _ = refresher.force_refresh(FILE).await;
    provider.revoked.store(false, Ordering::SeqCst);
    refresher.force_refresh(FILE).await.unwrap();
    assert_eq!(*changes.borrow_and_update(), 4);
    assert_eq!(refresher.state(FILE).unwrap().needs_relogin, None);
}
