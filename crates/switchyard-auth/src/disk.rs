//! Blocking file-system work of the store. Every function here runs inside `spawn_blocking`.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::SystemTime;

use crate::MAX_AUTH_FILE_BYTES;
use crate::credential::Credential;
use crate::hygiene::{TEMP_PREFIX, TEMP_SUFFIX};
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

/// Names of the auth files directly in `dir` (see [`validate_file_name`]), whatever their kind:
/// symlinks, FIFOs and directories named `*.json` are listed too, so they show up as refused.
pub(crate) fn auth_file_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if validate_file_name(&name).is_ok() {
            names.push(name);
        }
    }
    Ok(names)
}

/// What identifies one version of a file without reading it: device, inode, size, and the
/// modification and status-change times to the nanosecond. An atomic replace gives a new inode,
/// an in-place write a new mtime and ctime, a `chmod` a new ctime; so an unchanged stamp means
/// an unchanged file, and a rescan can skip reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

impl FileStamp {
    /// The stamp of a regular file; `None` for anything else (and off Unix), which is always
    /// re-read.
    pub(crate) fn of(meta: &fs::Metadata) -> Option<FileStamp> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            meta.is_file().then(|| FileStamp {
                dev: meta.dev(),
                ino: meta.ino(),
                len: meta.len(),
                mtime: (meta.mtime(), meta.mtime_nsec()),
                ctime: (meta.ctime(), meta.ctime_nsec()),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            None
        }
    }
}

/// The stamp `dir/name` has now (by lstat, so a symlink has none).
pub(crate) fn current_stamp(dir: &Path, name: &str) -> Option<FileStamp> {
    fs::symlink_metadata(dir.join(name)).ok().as_ref().and_then(FileStamp::of)
}

/// Why an auth file could not be read.
#[derive(Debug)]
pub(crate) enum ReadError {
    NotFound,
    /// Not something we read: not a regular file, or over [`MAX_AUTH_FILE_BYTES`].
    Refused(String),
    Io(io::Error),
}

/// Reads one auth file safely: opened with `O_NOFOLLOW | O_NONBLOCK` (a symlink fails to open,
/// a FIFO opens without waiting for a writer), then the *opened* fd is checked to be a regular
/// file (so a swap between a stat and the open cannot fool us) and at most cap + 1 bytes are read.
pub(crate) fn read_auth_file(path: &Path) -> Result<(Vec<u8>, fs::Metadata), ReadError> {
    let file = match open_no_follow(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Err(ReadError::NotFound),
        #[cfg(unix)]
        Err(err) if err.raw_os_error() == Some(libc::ELOOP) => {
            return Err(ReadError::Refused("not a regular file (symlink)".into()));
        }
        Err(err) => return Err(ReadError::Io(err)),
    };
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::Refused(format!("not a regular file ({})", kind_name(&meta.file_type()))));
    }
    if meta.len() > MAX_AUTH_FILE_BYTES as u64 {
        return Err(ReadError::Refused(too_large()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_AUTH_FILE_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(ReadError::Io)?;
    // The file may have grown since the fstat.
    if bytes.len() > MAX_AUTH_FILE_BYTES {
        return Err(ReadError::Refused(too_large()));
    }
    Ok((bytes, meta))
}

/// Opens `path` for reading without following a symlink (`ELOOP`) or waiting for a FIFO's writer.
pub(crate) fn open_no_follow(path: &Path) -> io::Result<File> {
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NOFOLLOW | libc::O_NONBLOCK);
    options.open(path)
}

fn too_large() -> String {
    format!("larger than the {} MiB cap", MAX_AUTH_FILE_BYTES / (1024 * 1024))
}

/// A short name of a non-regular file kind, for status messages.
pub(crate) fn kind_name(kind: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "FIFO";
        }
        if kind.is_socket() {
            return "socket";
        }
        if kind.is_block_device() || kind.is_char_device() {
            return "device";
        }
    }
    if kind.is_symlink() {
        "symlink"
    } else if kind.is_dir() {
        "directory"
    } else if kind.is_file() {
        "regular file"
    } else {
        "special file"
    }
}

/// Reads one auth file. `None` when it does not exist; a file we cannot read or parse comes
/// back as [`AuthContent::Corrupt`] with the reason, one we refuse to read (symlink, FIFO,
/// device, directory, oversized) as [`AuthContent::Refused`].
pub(crate) fn load(dir: &Path, name: &str) -> Option<StoredAuth> {
    let path = dir.join(name);
    match read_auth_file(&path) {
        Ok((bytes, meta)) => {
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let content = match Credential::from_json(&bytes) {
                Ok(credential) => AuthContent::Valid(credential),
                Err(err) => AuthContent::Corrupt { message: err.to_string() },
            };
            // Taken before the read: a write during it changes the file's stamp, so the next
            // rescan reads it again.
            let stamp = FileStamp::of(&meta);
            Some(StoredAuth::new(dir, name, bytes.len() as u64, modified, content).with_stamp(stamp))
        }
        Err(ReadError::NotFound) => None,
        Err(ReadError::Refused(reason)) => Some(unread_entry(dir, name, AuthContent::Refused { reason })),
        Err(ReadError::Io(err)) => {
            let message = format!("unreadable: {}", describe_io_error(&err));
            Some(unread_entry(dir, name, AuthContent::Corrupt { message }))
        }
    }
}

/// An entry whose content was not read, sized and dated by lstat: the entry itself, never a
/// symlink's target.
fn unread_entry(dir: &Path, name: &str, content: AuthContent) -> StoredAuth {
    let meta = fs::symlink_metadata(dir.join(name)).ok();
    let size = meta.as_ref().map_or(0, fs::Metadata::len);
    let modified = meta.and_then(|m| m.modified().ok()).unwrap_or(SystemTime::UNIX_EPOCH);
    StoredAuth::new(dir, name, size, modified, content)
}

/// Replaces `dir/name` atomically: temp file in the same dir, mode 0600 before it gets its
/// name, fsync, rename, fsync of the dir. Returns the new file's size, mtime and stamp.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> io::Result<(u64, SystemTime, Option<FileStamp>)> {
    // A dotfile ending in `.tmp` is ignored by our scanner and by CPA's.
    let mut tmp = tempfile::Builder::new().prefix(TEMP_PREFIX).suffix(TEMP_SUFFIX).tempfile_in(dir)?;
    #[cfg(unix)]
    tmp.as_file().set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    let file = tmp.persist(dir.join(name)).map_err(|err| err.error)?;
    sync_dir(dir)?;
    let meta = file.metadata()?;
    Ok((meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), FileStamp::of(&meta)))
}

/// Removes `dir/name` (a symlink as the link itself) and makes the removal durable. A directory
/// named `*.json` is not ours to remove: `IsADirectory`.
pub(crate) fn remove(dir: &Path, name: &str) -> io::Result<()> {
    if fs::symlink_metadata(dir.join(name)).is_ok_and(|m| m.is_dir()) {
        return Err(io::Error::from(io::ErrorKind::IsADirectory));
    }
    fs::remove_file(dir.join(name))?;
    sync_dir(dir)
}

/// Removes every auth file in `dir` (symlinks as links; directories named `*.json` are left);
/// returns the names removed.
pub(crate) fn remove_all(dir: &Path) -> io::Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in auth_file_names(dir)? {
        if fs::symlink_metadata(dir.join(&name)).is_ok_and(|m| m.is_dir()) {
            continue;
        }
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
pub(crate) fn describe_io_error(err: &io::Error) -> String {
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
