use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use switchyard_config::{Config, ConfigHandle, DEFAULT_YAML, ReloadOutcome};

const DEADLINE: Duration = Duration::from_secs(10);

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    fs::write(&path, text).unwrap();
    path
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Polls `check` until it holds or the deadline passes.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn from_file_loads_and_returns_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let text = "port: 9100\ntypo-key: 1\n";
    let path = write_config(dir.path(), text);
    let (handle, warnings) = ConfigHandle::from_file(&path).unwrap();
    assert_eq!(handle.get().port, 9100);
    assert_eq!(handle.path(), Some(path.as_path()));
    assert_eq!(*handle.raw_yaml(), text);
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].path, "typo-key");
    assert_eq!(warnings[0].line, Some(2));
}

#[test]
fn from_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.yaml");
    let err = ConfigHandle::from_file(&missing).unwrap_err();
    assert!(err.message.contains(&*missing.to_string_lossy()), "{err}");

    let path = write_config(dir.path(), "port: 1\nproxy-url: bogus\n");
    let err = ConfigHandle::from_file(&path).unwrap_err();
    assert_eq!(err.line, Some(2));
    assert_eq!(err.field.as_deref(), Some("proxy-url"));
}

#[test]
fn embedded_handle_is_read_only() {
    let handle = Arc::new(ConfigHandle::embedded());
    assert_eq!(*handle.get(), Config::default());
    assert_eq!(*handle.raw_yaml(), DEFAULT_YAML);
    assert_eq!(handle.path(), None);
    assert_eq!(handle.reload().unwrap(), ReloadOutcome::Unchanged);

    let err = handle.replace_yaml("port: 9000\n").unwrap_err();
    assert_eq!(err.message, "no config file: start switchyard with --config PATH to edit the configuration");
    assert_eq!((err.field, err.line), (None, None));
    assert_eq!(handle.get().port, 8317);
    assert!(handle.watch(Duration::from_millis(50)).is_err());
}

#[test]
fn replace_yaml_rejects_bad_documents_and_leaves_the_file_alone() {
    let dir = tempfile::tempdir().unwrap();
    let original = "# mine\nport: 9200\n";
    let path = write_config(dir.path(), original);
    let (handle, _) = ConfigHandle::from_file(&path).unwrap();
    let rx = handle.subscribe();

    let err = handle.replace_yaml("port: 9201\nrouting:\n  strategy: sideways\n").unwrap_err();
    assert_eq!(err.line, Some(3));
    assert_eq!(err.field.as_deref(), Some("routing.strategy"));

    assert!(handle.replace_yaml("port: [\n").is_err());
    assert_eq!(fs::read(&path).unwrap(), original.as_bytes());
    assert_eq!(handle.get().port, 9200);
    assert_eq!(*handle.raw_yaml(), original);
    assert!(!rx.has_changed().unwrap());
}

#[test]
fn replace_yaml_writes_atomically_and_keeps_permissions() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "port: 9300\n");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
    let (handle, _) = ConfigHandle::from_file(&path).unwrap();
    let mut rx = handle.subscribe();

    let text = "# edited\nport: 9301\nunknown-thing: 1\n";
    let warnings = handle.replace_yaml(text).unwrap();
    assert_eq!(warnings.len(), 1);
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    assert_eq!(mode(&path), 0o640);
    assert_eq!(handle.get().port, 9301);
    assert_eq!(*handle.raw_yaml(), text);
    assert!(rx.has_changed().unwrap());
    assert_eq!(rx.borrow_and_update().port, 9301);
    // No temp file left behind.
    let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["config.yaml"]);
    // The written bytes are what is applied, so a reload is a no-op.
    assert_eq!(handle.reload().unwrap(), ReloadOutcome::Unchanged);
}

#[test]
fn replace_yaml_creates_a_missing_file_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "port: 9400\n");
    let (handle, _) = ConfigHandle::from_file(&path).unwrap();
    fs::remove_file(&path).unwrap();

    handle.replace_yaml("port: 9401\n").unwrap();
    assert_eq!(fs::read_to_string(&path).unwrap(), "port: 9401\n");
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn reload_applies_changes_and_keeps_the_last_good_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "port: 9500\n");
    let (handle, _) = ConfigHandle::from_file(&path).unwrap();
    let mut rx = handle.subscribe();

    assert_eq!(handle.reload().unwrap(), ReloadOutcome::Unchanged);

    fs::write(&path, "port: 9501\nmystery: true\n").unwrap();
    match handle.reload().unwrap() {
        ReloadOutcome::Applied { warnings } => assert_eq!(warnings[0].path, "mystery"),
        other => panic!("expected Applied, got {other:?}"),
    }
    assert_eq!(rx.borrow_and_update().port, 9501);

    fs::write(&path, "port: 9502\nrequest-retry: -3\n").unwrap();
    let err = handle.reload().unwrap_err();
    assert_eq!(err.field.as_deref(), Some("request-retry"));
    assert_eq!(handle.get().port, 9501);
    assert_eq!(*handle.raw_yaml(), "port: 9501\nmystery: true\n");
    assert_eq!(handle.last_reload_error(), Some(err));
    assert!(!rx.has_changed().unwrap());

    // Truncated to nothing (a save in progress) does not reset everything to defaults.
    fs::write(&path, "").unwrap();
    assert!(handle.reload().is_err());
    assert_eq!(handle.get().port, 9501);

    // Back to the applied bytes: unchanged, and the error is cleared.
    fs::write(&path, "port: 9501\nmystery: true\n").unwrap();
    assert_eq!(handle.reload().unwrap(), ReloadOutcome::Unchanged);
    assert_eq!(handle.last_reload_error(), None);
}

/// Runs without an async runtime: the watcher reloads on notify's own thread.
#[test]
fn watcher_hot_reloads_edits_renames_and_skips_broken_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "port: 9601\n");
    let (handle, _) = ConfigHandle::from_file(&path).unwrap();
    let handle = Arc::new(handle);
    let mut rx = handle.subscribe();
    let _watcher = handle.watch(Duration::from_millis(100)).unwrap();

    // In-place write.
    fs::write(&path, "port: 9602\n").unwrap();
    eventually("port 9602", || rx.has_changed().unwrap() && rx.borrow_and_update().port == 9602);

    // Broken edit: rejected, the last good config stays.
    fs::write(&path, "port: [9603\n").unwrap();
    eventually("the broken file to be rejected", || handle.last_reload_error().is_some_and(|e| e.line.is_some()));
    assert_eq!(handle.get().port, 9602);
    assert_eq!(*handle.raw_yaml(), "port: 9602\n");
    assert_eq!(rx.borrow().port, 9602);

    // Editor-style save: write a sibling, rename it over the config.
    let tmp = dir.path().join(".config.yaml.swp");
    fs::write(&tmp, "port: 9604\n").unwrap();
    fs::rename(&tmp, &path).unwrap();
    eventually("port 9604", || rx.has_changed().unwrap() && rx.borrow_and_update().port == 9604);
    assert_eq!(handle.get().port, 9604);
    assert_eq!(handle.last_reload_error(), None);

    // The replaced file is still watched (the watch is on the directory, not the old inode).
    fs::write(
        &path,
        "port: 9605
",
    )
    .unwrap();
    eventually("port 9605", || rx.has_changed().unwrap() && rx.borrow_and_update().port == 9605);
}
