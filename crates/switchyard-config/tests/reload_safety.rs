//! Safe hot reload (issue 12, deliverable 3), with a real file and the real watcher: a file
//! caught half-written is never applied, and one that loosens security keys (`api-keys` emptied,
//! ...) is applied only if it stays so for `SECURITY_HOLD`. Every wait is a condition wait.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use switchyard_config::{Config, ConfigHandle, ReloadOutcome, SECURITY_HOLD, SECURITY_KEYS};

/// Generous: the hold plus the machine being busy.
const DEADLINE: Duration = Duration::from_secs(30);

const FULL: &str = "port: 9700\napi-keys:\n  - client-key-1\nremote-management:\n  secret-key: mgmt-key\n";

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Every configuration a handle applied, in order.
type Applied = Arc<Mutex<Vec<Arc<Config>>>>;

/// A watched handle on `text`, and every configuration it applies from now on.
fn watched(dir: &Path, text: &str) -> (Arc<ConfigHandle>, switchyard_config::ConfigWatcher, Applied) {
    let path = dir.join("config.yaml");
    fs::write(&path, text).unwrap();
    let (handle, _) = ConfigHandle::from_file(&path).unwrap();
    let handle = Arc::new(handle);
    let applied = Arc::new(Mutex::new(Vec::new()));
    let mut updates = handle.subscribe();
    let seen = applied.clone();
    // A watch channel keeps only the newest value, so a thread reads each one as it comes.
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async move {
            while updates.changed().await.is_ok() {
                let config = updates.borrow_and_update().clone();
                seen.lock().unwrap().push(config);
            }
        });
    });
    let watcher = handle.watch(Duration::from_millis(100)).unwrap();
    (handle, watcher, applied)
}

fn keys(applied: &Mutex<Vec<Arc<Config>>>) -> Vec<Vec<String>> {
    applied.lock().unwrap().iter().map(|c| c.api_keys.clone()).collect()
}

#[test]
fn half_a_file_then_the_rest_applies_only_the_complete_file() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, _watcher, applied) = watched(dir.path(), FULL);
    let complete = format!("{FULL}debug: true\n");
    // The first half parses, and has no api-keys yet.
    let (half, _) = complete.split_at(complete.find("api-keys").unwrap());
    fs::write(dir.path().join("config.yaml"), half).unwrap();
    eventually("the half file to be held", || handle.held_change().is_some());
    assert_eq!(handle.held_change().unwrap(), ["api-keys", "remote-management.secret-key"]);
    assert_eq!(handle.get().api_keys, ["client-key-1"], "client auth stays on");

    fs::write(dir.path().join("config.yaml"), &complete).unwrap();
    eventually("the complete file", || handle.get().debug);
    assert_eq!(handle.held_change(), None);
    assert_eq!(handle.get().api_keys, ["client-key-1"]);
    eventually("the applied configs to be seen", || !keys(&applied).is_empty());
    assert!(keys(&applied).iter().all(|k| k == &["client-key-1"]), "only complete files applied: {:?}", keys(&applied));
}

#[test]
fn a_truncated_file_restored_within_the_hold_is_never_applied() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, _watcher, applied) = watched(dir.path(), FULL);
    let path = dir.path().join("config.yaml");
    fs::write(&path, "port: 9700\n").unwrap();
    eventually("the truncated file to be held", || handle.held_change().is_some());
    fs::write(&path, FULL).unwrap();
    eventually("the restored file to end the hold", || handle.held_change().is_none());
    // A later edit shows the watcher is past both changes; nothing in between was applied.
    fs::write(&path, format!("{FULL}debug: true\n")).unwrap();
    eventually("the later edit", || handle.get().debug);
    let seen = keys(&applied);
    assert!(seen.iter().all(|k| k == &["client-key-1"]), "the truncated file was applied: {seen:?}");
}

#[test]
fn a_deliberate_removal_that_stays_is_applied_after_the_hold() {
    let dir = tempfile::tempdir().unwrap();
    let (handle, _watcher, _applied) = watched(dir.path(), FULL);
    let started = Instant::now();
    fs::write(dir.path().join("config.yaml"), "port: 9700\nremote-management:\n  secret-key: mgmt-key\n").unwrap();
    eventually("client auth to be turned off", || handle.get().api_keys.is_empty());
    assert!(started.elapsed() >= SECURITY_HOLD, "applied only after the hold");
    assert_eq!(handle.held_change(), None);
    assert_eq!(handle.get().management_secret(), Some("mgmt-key"));
}

#[test]
fn an_explicit_reload_holds_too_and_a_broken_file_is_never_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    fs::write(&path, FULL).unwrap();
    let (handle, _) = ConfigHandle::from_file(&path).unwrap();
    fs::write(&path, "port: 9700\nremote-management:\n  allow-remote: true\n  secret-key: mgmt-key\napi-keys: [k]\n")
        .unwrap();
    assert_eq!(
        handle.reload().unwrap(),
        ReloadOutcome::Held { dropped: vec!["remote-management.allow-remote".into()] }
    );
    assert!(!handle.get().remote_management.allow_remote);

    fs::write(&path, "port: 9700\napi-keys:\n  - [client-key-1\n").unwrap();
    let error = handle.reload().unwrap_err();
    assert_eq!(error.line, Some(3), "{error}");
    assert_eq!(handle.held_change(), None, "the held file is gone");
    assert_eq!(handle.get().api_keys, ["client-key-1"]);
    assert!(SECURITY_KEYS.iter().any(|(key, _)| *key == "api-keys"));
}
