//! The watcher picks up auth files changed by another program (plain std::fs here). Waits are
//! bounded polls / event waits, never sleeps standing in for assertions.

use std::fs;
use std::time::Duration;

use switchyard_auth::{AuthContent, CredentialStore, StoreEvent};
use tempfile::TempDir;
use tokio::sync::broadcast::Receiver;
use tokio::time::timeout;

const LIMIT: Duration = Duration::from_secs(15);

/// Polls `check` until it holds, failing after [`LIMIT`].
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let polled = async {
        while !check() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    timeout(LIMIT, polled).await.unwrap_or_else(|_| panic!("timed out waiting for {what}"));
}

/// Waits for `want`, returning the events that came before it.
async fn event(events: &mut Receiver<StoreEvent>, want: StoreEvent) -> Vec<StoreEvent> {
    let waited = async {
        let mut before = Vec::new();
        loop {
            let got = events.recv().await.expect("event stream closed or lagged");
            if got == want {
                return before;
            }
            before.push(got);
        }
    };
    timeout(LIMIT, waited).await.unwrap_or_else(|_| panic!("timed out waiting for {want:?}"))
}

fn drain(events: &mut Receiver<StoreEvent>) -> Vec<StoreEvent> {
    std::iter::from_fn(|| events.try_recv().ok()).collect()
}

fn note(store: &CredentialStore, name: &str) -> Option<String> {
    store.get(name)?.credential()?.note().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sees_files_created_modified_and_removed_by_another_program() {
    let tmp = TempDir::new().unwrap();
    let store = CredentialStore::open(tmp.path().to_path_buf()).await.unwrap();
    let mut events = store.subscribe();
    let _watcher = store.watch().unwrap();
    let path = tmp.path().join("kimi-1.json");
    let upserted = StoreEvent::Upserted("kimi-1.json".into());

    // The watcher may catch a write half-done (briefly listing the file as corrupt), so wait
    // for the final state; its event has been sent by the time the state is visible.
    fs::write(&path, r#"{"type": "kimi", "note": "v1"}"#).unwrap();
    eventually("the new file", || note(&store, "kimi-1.json").as_deref() == Some("v1")).await;
    assert!(drain(&mut events).contains(&upserted));

    fs::write(&path, r#"{"type": "kimi", "note": "v2", "unknown": [1, 2]}"#).unwrap();
    eventually("the modification", || note(&store, "kimi-1.json").as_deref() == Some("v2")).await;
    assert!(drain(&mut events).contains(&upserted));
    let entry = store.get("kimi-1.json").unwrap();
    assert_eq!(entry.size, fs::metadata(&path).unwrap().len());
    assert_eq!(entry.credential().unwrap().fields()["unknown"], serde_json::json!([1, 2]));

    fs::remove_file(&path).unwrap();
    event(&mut events, StoreEvent::Removed("kimi-1.json".into())).await;
    assert!(store.get("kimi-1.json").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sees_atomic_replacements_and_corrupt_writes() {
    let tmp = TempDir::new().unwrap();
    let store = CredentialStore::open(tmp.path().to_path_buf()).await.unwrap();
    let _watcher = store.watch().unwrap();

    // Another program's atomic replace: write a temp file, rename it over the target.
    fs::write(tmp.path().join(".upload.tmp"), r#"{"type": "xai", "note": "renamed in"}"#).unwrap();
    fs::rename(tmp.path().join(".upload.tmp"), tmp.path().join("xai-a.json")).unwrap();
    eventually("the renamed file", || note(&store, "xai-a.json").as_deref() == Some("renamed in")).await;

    fs::write(tmp.path().join("xai-a.json"), "{\"type\": ").unwrap();
    eventually("the corrupt state", || {
        store.get("xai-a.json").is_some_and(|e| matches!(e.content, AuthContent::Corrupt { .. }))
    })
    .await;
    assert_eq!(fs::read(tmp.path().join("xai-a.json")).unwrap(), b"{\"type\": ");
    assert_eq!(store.list().len(), 1, "temp files are never listed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_writes_are_not_reported_twice() {
    let tmp = TempDir::new().unwrap();
    let store = CredentialStore::open(tmp.path().to_path_buf()).await.unwrap();
    let mut events = store.subscribe();
    let _watcher = store.watch().unwrap();

    store.put_raw("claude-me.json", br#"{"type": "claude"}"#).await.unwrap();
    assert_eq!(events.recv().await.unwrap(), StoreEvent::Upserted("claude-me.json".into()));

    // A later external write is a barrier: the watcher handles events in order, so by the
    // time it reports the barrier it has already re-read our own write.
    fs::write(tmp.path().join("barrier.json"), r#"{"type": "kimi"}"#).unwrap();
    let before = event(&mut events, StoreEvent::Upserted("barrier.json".into())).await;
    assert!(before.is_empty(), "our own write was reported again: {before:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catches_changes_made_before_watch_started() {
    let tmp = TempDir::new().unwrap();
    let store = CredentialStore::open(tmp.path().to_path_buf()).await.unwrap();
    fs::write(tmp.path().join("early.json"), r#"{"type": "qwen"}"#).unwrap();
    let _watcher = store.watch().unwrap();
    eventually("the early file", || store.get("early.json").is_some()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_watcher_does_not_keep_the_store_alive() {
    let tmp = TempDir::new().unwrap();
    let store = CredentialStore::open(tmp.path().to_path_buf()).await.unwrap();
    let watcher = store.watch().unwrap();
    let weak = std::sync::Arc::downgrade(&store);
    drop(watcher);
    // The watch task may still hold a strong reference for the instant it runs its rescan.
    eventually("the watch task to let go", || std::sync::Arc::strong_count(&store) == 1).await;
    drop(store);
    assert!(weak.upgrade().is_none());
}

#[test]
fn watch_needs_a_runtime() {
    let tmp = TempDir::new().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = runtime.block_on(CredentialStore::open(tmp.path().to_path_buf())).unwrap();
    assert!(store.watch().is_err());
}

#[test]
fn store_and_watcher_can_be_shared_across_tasks() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<switchyard_auth::CredentialStore>();
    shareable::<switchyard_auth::StoreWatcher>();
}

/// Reading a file (inotify OPEN / CLOSE_NOWRITE) is no change: the watcher once re-read every
/// file it was told about, its own reads among them, so one rescan of the dir re-read it forever.
/// Counted with the store's read counter: one changed file is one read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_re_reads_only_the_changed_file() {
    let tmp = TempDir::new().unwrap();
    for i in 0..20 {
        fs::write(tmp.path().join(format!("kimi-{i}.json")), format!(r#"{{"type": "kimi", "note": "{i}"}}"#)).unwrap();
    }
    let store = CredentialStore::open(tmp.path().to_path_buf()).await.unwrap();
    assert_eq!(store.file_reads(), 20, "open reads each file once");
    let mut events = store.subscribe();
    let _watcher = store.watch().unwrap();
    // The watch starts with a pass over the dir of its own (changes between open and watch),
    // which reads none of the 20 unchanged files. Two barriers: batches are handled in order,
    // so once the second shows, the first pass and every read of the first barrier (by that
    // pass and by its own event) are done.
    for barrier in ["barrier-0.json", "barrier-1.json"] {
        fs::write(tmp.path().join(barrier), r#"{"type": "kimi"}"#).unwrap();
        event(&mut events, StoreEvent::Upserted(barrier.into())).await;
    }
    let reads = store.file_reads();
    assert!((22..=24).contains(&reads), "{reads} reads: open's 20 and the barriers' 2 to 4, no unchanged file again");

    fs::write(tmp.path().join("kimi-3.json"), r#"{"type": "kimi", "note": "changed"}"#).unwrap();
    eventually("the change", || note(&store, "kimi-3.json").as_deref() == Some("changed")).await;
    // A later external write is a barrier: batches are handled in order, so once it shows, every
    // re-read the first change (and the rescan before it) caused has happened.
    fs::write(tmp.path().join("barrier.json"), r#"{"type": "kimi"}"#).unwrap();
    event(&mut events, StoreEvent::Upserted("barrier.json".into())).await;
    let kimi_3_reads = store.file_reads() - reads - 1;
    assert!(kimi_3_reads >= 1, "the changed file was read");
    // fs::write may come in two batches (truncate, then write); never the other 19 files.
    assert!(kimi_3_reads <= 2, "{kimi_3_reads} reads for one changed file");
}
