//! Auth-dir hygiene over a real directory: symlinks, FIFOs, directories and oversized files are
//! refused (listed with a reason, never loaded, never followed or waited on), stale temp files
//! go at start while fresh ones stay, and loose modes are reported and fixed.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use switchyard_auth::hygiene::{self, LooseMode};
use switchyard_auth::{AuthContent, Credential, CredentialStore, MAX_AUTH_FILE_BYTES, StoreError};
use tempfile::TempDir;

fn auth_dir() -> (TempDir, std::path::PathBuf) {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("auths");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    (tmp, dir)
}

fn write_private(path: &Path, bytes: &[u8]) {
    fs::write(path, bytes).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

fn mkfifo(path: &Path) {
    let c_path = CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates a directory entry.
    let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) };
    assert_eq!(rc, 0, "mkfifo failed: {}", std::io::Error::last_os_error());
}

fn refused_reason(store: &CredentialStore, name: &str) -> String {
    let entry = store.get(name).unwrap_or_else(|| panic!("{name} not listed"));
    assert!(entry.credential().is_none(), "{name} must not be loaded as an account");
    match &entry.content {
        AuthContent::Refused { reason } => reason.clone(),
        other => panic!("{name} should be refused, is {other:?}"),
    }
}

const VALID: &[u8] = br#"{"type":"claude","access_token":"at-secret"}"#;

#[tokio::test]
async fn a_symlink_to_a_file_outside_the_dir_is_refused_and_never_followed() {
    let (tmp, dir) = auth_dir();
    let outside = tmp.path().join("outside.json");
    write_private(&outside, VALID);
    std::os::unix::fs::symlink(&outside, dir.join("claude-link.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", dir.join("zero.json")).unwrap();

    let store = CredentialStore::open(dir.clone()).await.unwrap();
    assert_eq!(refused_reason(&store, "claude-link.json"), "not a regular file (symlink)");
    assert_eq!(refused_reason(&store, "zero.json"), "not a regular file (symlink)");

    let err = store.read_raw("claude-link.json").await.unwrap_err();
    assert!(matches!(&err, StoreError::Refused(m) if m == "claude-link.json: not a regular file (symlink)"), "{err}");
    let err = store.read_raw("zero.json").await.unwrap_err();
    assert!(matches!(err, StoreError::Refused(_)), "{err}");

    // Neither a save nor an update goes through the link to the outside file.
    let credential = Credential::from_json(br#"{"type":"claude","access_token":"new"}"#).unwrap();
    assert!(matches!(store.save("claude-link.json", &credential).await, Err(StoreError::Refused(_))));
    assert!(matches!(store.update("claude-link.json", |_| Ok(())).await, Err(StoreError::Refused(_))));
    assert_eq!(fs::read(&outside).unwrap(), VALID);
    assert!(fs::symlink_metadata(dir.join("claude-link.json")).unwrap().file_type().is_symlink());
}

#[tokio::test]
async fn a_fifo_named_json_is_refused_without_blocking() {
    let (_tmp, dir) = auth_dir();
    mkfifo(&dir.join("claude-fifo.json"));
    write_private(&dir.join("claude-ok.json"), VALID);

    // Nobody ever opens the FIFO's other end: a blocking open would hang here forever.
    let store = CredentialStore::open(dir.clone()).await.unwrap();
    assert_eq!(refused_reason(&store, "claude-fifo.json"), "not a regular file (FIFO)");
    assert!(store.get("claude-ok.json").unwrap().credential().is_some());
    let err = store.read_raw("claude-fifo.json").await.unwrap_err();
    assert!(matches!(&err, StoreError::Refused(m) if m.ends_with("not a regular file (FIFO)")), "{err}");
    // A rescan (what the watcher does) does not block either.
    store.rescan().await.unwrap();
    assert_eq!(refused_reason(&store, "claude-fifo.json"), "not a regular file (FIFO)");
}

#[tokio::test]
async fn a_directory_named_json_is_refused() {
    let (_tmp, dir) = auth_dir();
    fs::create_dir(dir.join("claude-dir.json")).unwrap();
    let store = CredentialStore::open(dir.clone()).await.unwrap();
    assert_eq!(refused_reason(&store, "claude-dir.json"), "not a regular file (directory)");
    assert!(matches!(store.read_raw("claude-dir.json").await, Err(StoreError::Refused(_))));
    // Deleting it is refused too (not ours to remove); deleting a symlink removes only the link.
    assert!(matches!(store.delete("claude-dir.json").await, Err(StoreError::Refused(_))));
    assert!(dir.join("claude-dir.json").is_dir());
    let target = dir.parent().unwrap().join("target.json");
    write_private(&target, VALID);
    std::os::unix::fs::symlink(&target, dir.join("claude-link.json")).unwrap();
    store.rescan().await.unwrap();
    store.delete("claude-link.json").await.unwrap();
    assert!(target.exists() && store.get("claude-link.json").is_none());
    assert_eq!(store.delete_all().await.unwrap(), 0, "delete-all leaves the directory alone");
    assert!(dir.join("claude-dir.json").is_dir());
}

#[tokio::test]
async fn a_file_over_the_cap_is_refused_and_one_at_the_cap_is_read() {
    let (_tmp, dir) = auth_dir();
    write_private(&dir.join("big.json"), &vec![b' '; 2 * 1024 * 1024]);
    // Exactly the cap: a valid object padded with spaces.
    let mut at_cap = VALID.to_vec();
    at_cap.resize(MAX_AUTH_FILE_BYTES, b' ');
    write_private(&dir.join("claude-cap.json"), &at_cap);

    let store = CredentialStore::open(dir.clone()).await.unwrap();
    assert_eq!(refused_reason(&store, "big.json"), "larger than the 1 MiB cap");
    assert!(matches!(store.read_raw("big.json").await, Err(StoreError::Refused(_))));
    assert!(store.get("claude-cap.json").unwrap().credential().is_some());
    assert_eq!(store.read_raw("claude-cap.json").await.unwrap().len(), MAX_AUTH_FILE_BYTES);
}

#[tokio::test]
async fn stale_temp_files_are_removed_at_start_and_fresh_ones_kept() {
    let (_tmp, dir) = auth_dir();
    let stale = dir.join(".switchyard-crashed.tmp");
    let fresh = dir.join(".switchyard-writing.tmp");
    let other = dir.join(".other-tool.tmp");
    for path in [&stale, &fresh, &other] {
        write_private(path, b"{\"type\":\"claude\"");
    }
    let old = SystemTime::now() - hygiene::STALE_TEMP_AGE - Duration::from_secs(60);
    for path in [&stale, &other] {
        fs::File::options().write(true).open(path).unwrap().set_modified(old).unwrap();
    }

    let store = CredentialStore::open(dir.clone()).await.unwrap();
    assert!(!stale.exists(), "a temp file older than 60 s is a crash leftover");
    assert!(fresh.exists(), "a young temp file may belong to a running writer");
    assert!(other.exists(), "only the store's own temp-name pattern is touched");
    assert!(store.list().is_empty(), "temp files are never accounts");
}

#[tokio::test]
async fn a_world_writable_dir_and_group_readable_file_are_reported_and_fixed() {
    let (_tmp, dir) = auth_dir();
    write_private(&dir.join("claude-a.json"), VALID);
    write_private(&dir.join("claude-b.json"), VALID);
    fs::set_permissions(dir.join("claude-b.json"), fs::Permissions::from_mode(0o640)).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();

    let want =
        vec![LooseMode { name: None, mode: 0o777 }, LooseMode { name: Some("claude-b.json".into()), mode: 0o640 }];
    assert_eq!(hygiene::loose_modes(&dir).unwrap(), want);
    let report = hygiene::inspect(&dir, SystemTime::now()).unwrap();
    assert_eq!(report.loose_modes, want);
    assert!(!report.is_clean());

    // The store still opens (it warns; it does not change modes by itself).
    let store = CredentialStore::open(dir.clone()).await.unwrap();
    assert_eq!(store.list().len(), 2);
    assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o777);

    assert_eq!(hygiene::fix_modes(&dir).unwrap(), want);
    assert_eq!(fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(fs::metadata(dir.join("claude-b.json")).unwrap().permissions().mode() & 0o777, 0o600);
    assert!(hygiene::loose_modes(&dir).unwrap().is_empty());
}

#[tokio::test]
async fn the_report_names_refused_corrupt_and_stale_entries() {
    let (tmp, dir) = auth_dir();
    write_private(&dir.join("claude-ok.json"), VALID);
    write_private(&dir.join("broken.json"), b"{not json");
    std::os::unix::fs::symlink(tmp.path(), dir.join("link.json")).unwrap();
    let stale = dir.join(".switchyard-x.tmp");
    write_private(&stale, b"");
    let now = SystemTime::now() + hygiene::STALE_TEMP_AGE + Duration::from_secs(5);

    let report = hygiene::inspect(&dir, now).unwrap();
    assert_eq!(report.refused, vec![("link.json".to_owned(), "not a regular file (symlink)".to_owned())]);
    assert_eq!(report.corrupt.len(), 1);
    assert_eq!(report.corrupt[0].0, "broken.json");
    assert_eq!(report.stale_temps, vec![".switchyard-x.tmp".to_owned()]);
    assert!(report.loose_modes.is_empty());
}
