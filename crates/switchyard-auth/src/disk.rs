//! Blocking file-system work of the store. Every function here runs inside `spawn_blocking`.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::SystemTime;

use crate::credential::Credential;
use crate::paths::validate_file_name;
use crate::store::{AuthContent, StoredAuth};

/// Creates the auth dir and any missing parents with mode 0700; existing dirs are left alone.
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Names of the auth files directly in `dir` (see [`validate_file_name`]); subdirs and other
/// non-regular entries are skipped.
pub(crate) fn auth_file_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if validate_file_name(&name).is_ok() && fs::metadata(entry.path()).is_ok_and(|m| m.is_file()) {
            names.push(name);
        }
    }
    Ok(names)
}

/// Reads one auth file. `None` when it does not exist (or is not a regular file); a file we
/// cannot read or parse comes back as [`AuthContent::Corrupt`] with the reason.
pub(crate) fn load(dir: &Path, name: &str) -> Option<StoredAuth> {
    let path = dir.join(name);
    // Stat first: opening a FIFO that happens to be called `x.json` would block forever.
    let meta = match fs::metadata(&path) {
        Ok(meta) if meta.is_file() => meta,
        Ok(_) => return None,
        Err(err) => {
            if err.kind() != io::ErrorKind::NotFound {
                tracing::warn!(file = name, error = %err, "cannot stat auth file");
            }
            return None;
        }
    };
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    let (size, content) = match read_file(&path) {
        Ok(bytes) => {
            let content = match Credential::from_json(&bytes) {
                Ok(credential) => AuthContent::Valid(credential),
                Err(err) => AuthContent::Corrupt { message: err.to_string() },
            };
            (bytes.len() as u64, content)
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => return None,
        Err(err) => {
            let message = format!("unreadable: {}", describe_io_error(&err));
            (meta.len(), AuthContent::Corrupt { message })
        }
    };
    Some(StoredAuth::new(dir, name, size, modified, content))
}

fn read_file(path: &Path) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    File::open(path)?.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Replaces `dir/name` atomically: temp file in the same dir, mode 0600 before it gets its
/// name, fsync, rename, fsync of the dir. Returns the new file's size and mtime.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<(u64, SystemTime)> {
    // A dotfile ending in `.tmp` is ignored by our scanner and by CPA's.
    let mut tmp = tempfile::Builder::new().prefix(".switchyard-").suffix(".tmp").tempfile_in(dir)?;
    #[cfg(unix)]
    tmp.as_file().set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    let file = tmp.persist(dir.join(name)).map_err(|err| err.error)?;
    sync_dir(dir)?;
    let meta = file.metadata()?;
    Ok((meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
}

/// Removes `dir/name` and makes the removal durable.
pub(crate) fn remove(dir: &Path, name: &str) -> io::Result<()> {
    fs::remove_file(dir.join(name))?;
    sync_dir(dir)
}

/// Removes every auth file in `dir`; returns the names removed.
pub(crate) fn remove_all(dir: &Path) -> io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in auth_file_names(dir)? {
        match fs::remove_file(dir.join(&name)) {
            Ok(()) => removed.push(name),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    sync_dir(dir)?;
    Ok(removed)
}

/// Makes a rename or removal in `dir` durable. Windows cannot open a directory this way and
/// journals renames itself, so this is Unix-only.
fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// "Permission denied (os error 13)" → "permission denied": short, stable, user-facing.
fn describe_io_error(err: &io::Error) -> String {
    let text = err.to_string();
    let text = match text.rfind(" (os error ") {
        Some(at) => &text[..at],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
