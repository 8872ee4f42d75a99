//! CredentialStore over a real directory: listing, atomic 0600 writes, serialised updates,
//! corrupt-file protection, names, deletes and events.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchyard_auth::{AuthContent, Credential, CredentialStore, StoreError, StoreEvent, auth_index};
use tempfile::TempDir;
use tokio::sync::broadcast::error::TryRecvError;

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

fn corpus_names() -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(corpus_dir()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

/// A temp auth dir holding a copy of the corpus.
fn corpus_copy() -> (TempDir, PathBuf) {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("auths");
    fs::create_dir(&dir).unwrap();
    for name in corpus_names() {
        fs::copy(corpus_dir().join(&name), dir.join(&name)).unwrap();
    }
    (tmp, dir)
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn dir_listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

fn cred(value: Value) -> Credential {
    Credential::from_json(value.to_string().as_bytes()).unwrap()
}

fn corrupt_message(store: &CredentialStore, name: &str) -> String {
    match &store.get(name).unwrap_or_else(|| panic!("{name} not listed")).content {
        AuthContent::Corrupt { message } => message.clone(),
        other => panic!("{name} should be corrupt, is {other:?}"),
    }
}

#[tokio::test]
async fn open_lists_the_corpus_with_auth_index_and_size() {
    let (_tmp, dir) = corpus_copy();
    let store = CredentialStore::open(dir.clone()).await.unwrap();
    assert_eq!(store.dir(), dir);

    let listed: Vec<String> = store.list().iter().map(|e| e.name.clone()).collect();
    let mut expected = corpus_names();
    expected.sort_by_key(|n| n.to_lowercase());
    assert_eq!(listed, expected);

    for entry in store.list() {
        let path = dir.join(&entry.name);
        assert_eq!(entry.path, path);
        assert!(entry.path.is_absolute());
        assert_eq!(entry.size, fs::metadata(&path).unwrap().len(), "{}", entry.name);
        assert_eq!(entry.modified, fs::metadata(&path).unwrap().modified().unwrap());
        let credential = entry.credential().unwrap_or_else(|| panic!("{} corrupt", entry.name));
        // The seed is the raw type (the Kiro file without one falls back to its provider).
        let index_type = credential.file_type().map(str::to_lowercase).unwrap_or_else(|| "kiro".into());
        let digest = Sha256::digest(format!("{index_type}:{}", path.display()).as_bytes());
        assert_eq!(entry.auth_index, hex::encode(&digest[..8]), "{}", entry.name);
        assert_eq!(entry.auth_index, auth_index(&index_type, &path));
    }
    let gemini = store.get("gemini-lee@example.com-my-project-123.json").unwrap();
    assert_eq!(gemini.auth_index, auth_index("gemini", &gemini.path));
    assert!(store.get("missing.json").is_none());
}

#[tokio::test]
async fn list_sorts_case_insensitively() {
    let tmp = TempDir::new().unwrap();
    for name in ["b.json", "A.json", "a.json", "C.json"] {
        fs::write(tmp.path().join(name), r#"{"type":"kimi"}"#).unwrap();
    }
    let store = CredentialStore::open(tmp.path().to_path_buf()).await.unwrap();
    let names: Vec<String> = store.list().iter().map(|e| e.name.clone()).collect();
    assert_eq!(names, ["A.json", "a.json", "b.json", "C.json"]);
}

#[tokio::test]
async fn open_creates_the_dir_0700_and_ignores_non_auth_entries() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("deep/er/auths");
    let store = CredentialStore::open(dir.clone()).await.unwrap();
    assert!(store.list().is_empty());
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&tmp.path().join("deep")), 0o700);

    let valid = r#"{"type":"kimi"}"#;
    fs::write(dir.join(".hidden.json"), valid).unwrap();
    fs::write(dir.join("notes.txt"), valid).unwrap();
    fs::write(dir.join(".oauth-anthropic-0123abcd.oauth"), valid).unwrap();
    fs::write(dir.join("kimi.json.cds"), valid).unwrap();
    fs::write(dir.join(".switchyard-abc123.tmp"), valid).unwrap();
    fs::create_dir(dir.join("sub.json")).unwrap();
    fs::write(dir.join("sub.json/inner.json"), valid).unwrap();
    fs::write(dir.join("kimi-1.json"), valid).unwrap();
    store.rescan().await.unwrap();
    let names: Vec<String> = store.list().iter().map(|e| e.name.clone()).collect();
    // A directory named `*.json` is listed, but as refused: never loaded as an account.
    assert_eq!(names, ["kimi-1.json", "sub.json"]);
    assert!(
        matches!(&store.get("sub.json").unwrap().content, AuthContent::Refused { reason } if reason == "not a regular file (directory)")
    );
}

#[tokio::test]
async fn open_keeps_an_existing_dirs_mode() {
    let tmp = TempDir::new().unwrap();
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o750)).unwrap();
    CredentialStore::open(tmp.path().to_path_buf()).await.unwrap();
    assert_eq!(mode(tmp.path()), 0o750);
}

#[tokio::test]
async fn save_writes_pretty_json_0600_atomically() {
    let tmp = TempDir::new().unwrap();
    let store = CredentialStore::open(tmp.path().to_path_buf()).await.unwrap();
    let mut credential = cred(json!({"type": "claude", "email": "a@b.com", "access_token": "FAKE"}));

    let saved = store.save("claude-a@b.com.json", &credential).await.unwrap();
    let path = tmp.path().join("claude-a@b.com.json");
    assert_eq!(saved.path, path);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(fs::read(&path).unwrap(), credential.to_json_pretty());
    assert_eq!(saved.size, fs::metadata(&path).unwrap().len());
    assert_eq!(saved.auth_index, auth_index("claude", &path));
    assert_eq!(saved.credential(), Some(&credential));
    assert_eq!(dir_listing(tmp.path()), ["claude-a@b.com.json"]);

    // Replacing goes through a new inode (rename), keeps 0600 and leaves no temp file behind.
    let inode = fs::metadata(&path).unwrap().ino();
    credential.fields_mut().insert("note".into(), json!("second"));
    store.save("claude-a@b.com.json", &credential).await.unwrap();
    assert_ne!(fs::metadata(&path).unwrap().ino(), inode);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(dir_listing(tmp.path()), ["claude-a@b.com.json"]);
    assert_eq!(store.get("claude-a@b.com.json").unwrap().credential().unwrap().note(), Some("second"));
    assert_eq!(store.read_raw("claude-a@b.com.json").await.unwrap(), credential.to_json_pretty());
}

#[tokio::test]
async fn save_rejects_a_credential_that_would_not_read_back() {
    let tmp = TempDir::new().unwrap();
    let store = CredentialStore::open(tmp.path().to_path_buf()).await.unwrap();
    let mut credential = Credential::new("claude");
    credential.fields_mut().insert("weight".into(), json!("heavy"));
    let err = store.save("claude-x.json", &credential).await.unwrap_err();
    assert!(matches!(&err, StoreError::Invalid(m) if m == "field `weight` must be an integer"), "{err}");
    assert!(dir_listing(tmp.path()).is_empty());
}

#[tokio::test]
async fn put_raw_keeps_bytes_and_rejects_invalid_uploads() {
    let tmp = TempDir::new().unwrap();
    let store = CredentialStore::open(tmp.path().to_path_buf()).await.unwrap();
    let original = b"{\"type\":\"codex\",   \"email\":\"u@x.io\",\"proxy-url\":\"direct\"}";
    let entry = store.put_raw("codex-u@x.io.json", original).await.unwrap();
    let path = tmp.path().join("codex-u@x.io.json");
    assert_eq!(fs::read(&path).unwrap(), original);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(entry.size, original.len() as u64);
    // The index holds the normalised view of the unchanged bytes.
    assert_eq!(entry.credential().unwrap().str_field("proxy_url"), Some("direct"));

    for (bad, message) in [
        (&b"{\"type\":\"codex\",\"weight\":\"x\"}"[..], "field `weight` must be an integer"),
        (b"[1]", "not a JSON object"),
        (b"{\"type\":", "invalid JSON at line 1 column 8: EOF while parsing a value"),
    ] {
        let err = store.put_raw("codex-u@x.io.json", bad).await.unwrap_err();
        assert!(matches!(&err, StoreError::Invalid(m) if m == message), "{err}");
        assert_eq!(fs::read(&path).unwrap(), original);
    }
    assert_eq!(dir_listing(tmp.path()), ["codex-u@x.io.json"]);
}

#[tokio::test]
async fn update_keeps_unknown_fields_and_writes_only_on_change() {
    let (_tmp, dir) = corpus_copy();
    let store = CredentialStore::open(dir.clone()).await.unwrap();
    let name = "codex-1a2b3c4d-sam@example.org-team-plan.json";
    let path = dir.join(name);

    let updated = store
        .update(name, |c| {
            c.fields_mut().insert("note".into(), json!("rotated"));
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(mode(&path), 0o600);
    let on_disk = Credential::from_json(&fs::read(&path).unwrap()).unwrap();
    assert_eq!(on_disk.note(), Some("rotated"));
    assert_eq!(on_disk.fields()["model_states"]["gpt-5"]["status"], "active");
    assert_eq!(on_disk.fields()["excluded_models"], json!(["gpt-5-codex-mini", "*-preview"]));
    assert_eq!(updated.credential(), Some(&on_disk));

    // No change: the file is not rewritten (same inode, same bytes).
    let before = (fs::metadata(&path).unwrap().ino(), fs::read(&path).unwrap());
    store
        .update(name, |c| {
            c.fields_mut().insert("note".into(), json!("rotated"));
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!((fs::metadata(&path).unwrap().ino(), fs::read(&path).unwrap()), before);

    // An edit error writes nothing and is returned as-is.
    let err = store
        .update(name, |c| {
            c.fields_mut().insert("note".into(), json!("never"));
            Err(StoreError::Invalid("refresh failed".into()))
        })
        .await
        .unwrap_err();
    assert!(matches!(&err, StoreError::Invalid(m) if m == "refresh failed"));
    assert_eq!(fs::read(&path).unwrap(), before.1);

    // An edit producing an invalid credential is rejected before writing.
    let err = store
        .update(name, |c| {
            c.fields_mut().insert("disabled".into(), json!("no"));
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(matches!(&err, StoreError::Invalid(m) if m == "field `disabled` must be a boolean"));
    assert_eq!(fs::read(&path).unwrap(), before.1);

    let err = store.update("nope.json", |_| Ok(())).await.unwrap_err();
    assert!(matches!(&err, StoreError::NotFound(n) if n == "nope.json"));
}

#[tokio::test]
async fn update_rereads_the_file_from_disk() {
    let (_tmp, dir) = corpus_copy();
    let store = CredentialStore::open(dir.clone()).await.unwrap();
    let name = "kimi-1755853200000.json";
    // Another program adds a key the index has not seen yet; our update must keep it.
    let mut outside: Value = serde_json::from_slice(&fs::read(dir.join(name)).unwrap()).unwrap();
    outside["added_elsewhere"] = json!(true);
    fs::write(dir.join(name), serde_json::to_vec(&outside).unwrap()).unwrap();

    store
        .update(name, |c| {
            c.set_disabled(true);
            Ok(())
        })
        .await
        .unwrap();
    let on_disk = Credential::from_json(&fs::read(dir.join(name)).unwrap()).unwrap();
    assert_eq!(on_disk.fields()["added_elsewhere"], true);
    assert!(on_disk.disabled());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_updates_never_lose_each_others_fields() {
    let (_tmp, dir) = corpus_copy();
    let store = CredentialStore::open(dir.clone()).await.unwrap();
    let name = "claude-jane.doe@example.com.json";

    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .update(name, move |c| {
                        c.fields_mut().insert(format!("k{i}"), json!(i));
                        Ok(())
                    })
                    .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    let on_disk = Credential::from_json(&fs::read(dir.join(name)).unwrap()).unwrap();
    let indexed = store.get(name).unwrap();
    for i in 0..50 {
        assert_eq!(on_disk.fields()[&format!("k{i}")], i, "k{i} on disk");
    }
    assert_eq!(indexed.credential(), Some(&on_disk));
    assert_eq!(on_disk.fields()["cloak_mode"], "auto");
    assert!(dir_listing(&dir).iter().all(|n| n.ends_with(".json")));
}

#[tokio::test]
async fn corrupt_files_are_listed_and_never_modified() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let files: BTreeMap<&str, (&str, &str)> = BTreeMap::from([
        (
            "bad-json.json",
            (
                "{\n  \"type\": \"claude\",\n  \"email\" \"a@b.c\"\n}\n",
                "invalid JSON at line 3 column 11: expected `:`",
            ),
        ),
        ("array.json", ("[{\"type\": \"claude\"}]\n", "not a JSON object")),
        (
            "truncated.json",
            (
                "{\n  \"type\": \"codex\",\n  \"access_token\": \"FAKE",
                "invalid JSON at line 3 column 23: EOF while parsing a string",
            ),
        ),
        ("weight.json", ("{\"type\": \"claude\", \"weight\": \"3\"}", "field `weight` must be an integer")),
        ("empty.json", ("", "file is empty")),
    ]);
    for (name, (content, _)) in &files {
        fs::write(dir.join(name), content).unwrap();
    }
    let store = CredentialStore::open(dir.to_path_buf()).await.unwrap();

    for (name, (content, message)) in &files {
        let entry = store.get(name).unwrap();
        assert_eq!(corrupt_message(&store, name), *message, "{name}");
        assert_eq!(entry.credential(), None);
        assert_eq!(entry.auth_index, auth_index("unknown", &dir.join(name)));
        assert_eq!(entry.size, content.len() as u64);

        let err = store.update(name, |_| Ok(())).await.unwrap_err();
        assert_eq!(err.to_string(), format!("refusing to modify corrupt auth file {name}: {message}"));
        let err = store.save(name, &Credential::new("claude")).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{name}: {err}");
        let err = store.put_raw(name, b"{\"weight\": []}").await.unwrap_err();
        assert!(matches!(err, StoreError::Invalid(_)), "{name}: {err}");
        store.rescan().await.unwrap();
        assert_eq!(fs::read(dir.join(name)).unwrap(), content.as_bytes(), "{name} must stay byte-identical");
        assert_eq!(corrupt_message(&store, name), *message);
    }

    // A valid upload is the user fixing the file; a delete is the user removing it.
    let fixed = store.put_raw("bad-json.json", b"{\"type\": \"claude\"}").await.unwrap();
    assert_eq!(fixed.credential().and_then(Credential::file_type), Some("claude"));
    assert_eq!(fixed.auth_index, auth_index("claude", &dir.join("bad-json.json")));
    store.delete("array.json").await.unwrap();
    assert!(!dir.join("array.json").exists());
}

#[tokio::test]
async fn unreadable_file_is_listed_as_corrupt() {
    let tmp = TempDir::new().unwrap();
    let path = tmp.path().join("locked.json");
    fs::write(&path, r#"{"type": "claude"}"#).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::read(&path).is_ok() {
        eprintln!("skipped: running with privileges that ignore file modes (root)");
        return;
    }
    let store = CredentialStore::open(tmp.path().to_path_buf()).await.unwrap();
    assert_eq!(corrupt_message(&store, "locked.json"), "unreadable: permission denied");
    assert!(matches!(store.update("locked.json", |_| Ok(())).await, Err(StoreError::Corrupt(_))));
    assert_eq!(mode(&path), 0o000);
}

#[tokio::test]
async fn invalid_names_are_rejected_everywhere() {
    let tmp = TempDir::new().unwrap();
    let store = CredentialStore::open(tmp.path().join("auths")).await.unwrap();
    let credential = Credential::new("claude");
    for name in ["../x.json", "a/b.json", "x.txt", ".hidden.json", ""] {
        let invalid = |r: Result<(), StoreError>| matches!(r, Err(StoreError::InvalidName(_)));
        assert!(invalid(store.save(name, &credential).await.map(drop)), "save {name:?}");
        assert!(invalid(store.put_raw(name, b"{}").await.map(drop)), "put_raw {name:?}");
        assert!(invalid(store.update(name, |_| Ok(())).await.map(drop)), "update {name:?}");
        assert!(invalid(store.delete(name).await), "delete {name:?}");
        assert!(invalid(store.read_raw(name).await.map(drop)), "read_raw {name:?}");
    }
    assert_eq!(dir_listing(tmp.path()), ["auths"]);
    assert!(dir_listing(&tmp.path().join("auths")).is_empty());
}

#[tokio::test]
async fn delete_and_delete_all() {
    let (_tmp, dir) = corpus_copy();
    fs::write(dir.join("readme.txt"), "not an auth file").unwrap();
    fs::write(dir.join("broken.json"), "{").unwrap();
    let store = CredentialStore::open(dir.clone()).await.unwrap();
    let mut events = store.subscribe();

    assert!(matches!(store.delete("missing.json").await, Err(StoreError::NotFound(n)) if n == "missing.json"));
    assert!(matches!(store.read_raw("missing.json").await, Err(StoreError::NotFound(_))));

    store.delete("kimi-1755853200000.json").await.unwrap();
    assert!(!dir.join("kimi-1755853200000.json").exists());
    assert!(store.get("kimi-1755853200000.json").is_none());
    assert_eq!(events.try_recv().unwrap(), StoreEvent::Removed("kimi-1755853200000.json".into()));

    let remaining = store.list().len();
    assert_eq!(remaining, corpus_names().len());
    assert_eq!(store.delete_all().await.unwrap(), remaining);
    assert!(store.list().is_empty());
    assert_eq!(dir_listing(&dir), ["readme.txt"]);
    let mut removed = 0;
    while let Ok(event) = events.try_recv() {
        assert!(matches!(event, StoreEvent::Removed(_)));
        removed += 1;
    }
    assert_eq!(removed, remaining);
}

#[tokio::test]
async fn events_follow_content_changes() {
    let tmp = TempDir::new().unwrap();
    let store = CredentialStore::open(tmp.path().to_path_buf()).await.unwrap();
    let mut events = store.subscribe();
    let credential = cred(json!({"type": "xai", "email": "m@x.ai"}));

    store.save("xai-m@x.ai.json", &credential).await.unwrap();
    assert_eq!(events.try_recv().unwrap(), StoreEvent::Upserted("xai-m@x.ai.json".into()));
    // Same content again: refreshed on disk, but nothing changed for subscribers.
    store.save("xai-m@x.ai.json", &credential).await.unwrap();
    assert_eq!(events.try_recv().unwrap_err(), TryRecvError::Empty);

    // Changes made behind the store's back show up on rescan.
    fs::write(tmp.path().join("kimi-2.json"), r#"{"type": "kimi"}"#).unwrap();
    fs::write(tmp.path().join("xai-m@x.ai.json"), r#"{"type": "xai", "note": "edited"}"#).unwrap();
    store.rescan().await.unwrap();
    let mut seen = vec![events.try_recv().unwrap(), events.try_recv().unwrap()];
    seen.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(seen, [StoreEvent::Upserted("kimi-2.json".into()), StoreEvent::Upserted("xai-m@x.ai.json".into())]);
    assert_eq!(store.get("xai-m@x.ai.json").unwrap().credential().unwrap().note(), Some("edited"));

    fs::remove_file(tmp.path().join("kimi-2.json")).unwrap();
    store.rescan().await.unwrap();
    assert_eq!(events.try_recv().unwrap(), StoreEvent::Removed("kimi-2.json".into()));
    assert_eq!(events.try_recv().unwrap_err(), TryRecvError::Empty);
}

/// The watcher's whole-dir passes read only what changed since the index last read it. A
/// changed file keeps its size here, and one keeps its mtime too, so only the full stamp
/// (inode, ctime) can tell them from the unchanged ones.
#[tokio::test]
async fn rescan_changed_reads_only_new_replaced_and_written_files() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().to_path_buf();
    let body = |note: &str| format!(r#"{{"type": "kimi", "note": "{note}"}}"#);
    for i in 0..10 {
        fs::write(dir.join(format!("kimi-{i}.json")), body(&format!("old-{i}"))).unwrap();
    }
    fs::write(dir.join("broken.json"), "{ not json").unwrap();
    let store = CredentialStore::open(dir.clone()).await.unwrap();
    assert_eq!(store.file_reads(), 11, "open reads each file once");

    store.rescan_changed().await.unwrap();
    assert_eq!(store.file_reads(), 11, "nothing changed, corrupt file included: nothing read");

    let note = |name: &str| store.get(name).unwrap().credential().unwrap().note().map(str::to_owned);
    // Written in place, same size, its mtime put back: the ctime still moves.
    let in_place = dir.join("kimi-1.json");
    let mtime = fs::metadata(&in_place).unwrap().modified().unwrap();
    fs::write(&in_place, body("new-1")).unwrap();
    fs::File::options().write(true).open(&in_place).unwrap().set_modified(mtime).unwrap();
    // Replaced by a rename, same size and mtime: a new inode.
    let replaced = dir.join("kimi-2.json");
    let mtime = fs::metadata(&replaced).unwrap().modified().unwrap();
    let staged = dir.join(".staged.tmp");
    fs::write(&staged, body("new-2")).unwrap();
    fs::File::options().write(true).open(&staged).unwrap().set_modified(mtime).unwrap();
    fs::rename(&staged, &replaced).unwrap();
    // A new file, a removed one.
    fs::write(dir.join("kimi-new.json"), body("fresh")).unwrap();
    fs::remove_file(dir.join("kimi-3.json")).unwrap();

    store.rescan_changed().await.unwrap();
    assert_eq!(store.file_reads(), 14, "the two changed files and the new one, nothing else");
    assert_eq!(note("kimi-1.json").as_deref(), Some("new-1"));
    assert_eq!(note("kimi-2.json").as_deref(), Some("new-2"));
    assert_eq!(note("kimi-new.json").as_deref(), Some("fresh"));
    assert_eq!(note("kimi-4.json").as_deref(), Some("old-4"));
    assert!(store.get("kimi-3.json").is_none(), "a removed file leaves the index");
    assert!(store.get("broken.json").unwrap().problem().is_some());

    // Our own write stamps the entry it makes, so the next pass does not read it back.
    let written = cred(json!({"type": "kimi", "note": "ours"}));
    store.save("kimi-ours.json", &written).await.unwrap();
    let reads = store.file_reads();
    store.rescan_changed().await.unwrap();
    assert_eq!(store.file_reads(), reads);

    // `rescan` still reads every file.
    store.rescan().await.unwrap();
    assert_eq!(store.file_reads(), reads + 12);
}
