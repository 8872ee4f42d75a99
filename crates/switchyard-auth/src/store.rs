//! The auth dir as a store: an in-memory index of every auth file, kept in step with our own
//! atomic writes and (through [`crate::watch`]) with changes made by other programs.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use tokio::sync::{Mutex, broadcast};

use crate::credential::Credential;
use crate::disk::{self, FileStamp};
use crate::hygiene;
use crate::paths::{auth_index, clean_path, validate_file_name};

/// Events are small; a slow subscriber that falls this far behind gets `Lagged` and should
/// re-read [`CredentialStore::list`].
const EVENT_CAPACITY: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("invalid auth file name: {0}")]
    InvalidName(String),
    #[error("auth file not found: {0}")]
    NotFound(String),
    /// Refusing to modify a file we cannot parse: it is the user's to fix or delete.
    #[error("refusing to modify corrupt auth file {0}")]
    Corrupt(String),
    /// Not a file we read at all (symlink, FIFO, device, directory, over the size cap); the
    /// message is `<name>: <reason>`.
    #[error("refused auth file {0}")]
    Refused(String),
    /// Content rejected before anything was written.
    #[error("invalid auth file content: {0}")]
    Invalid(String),
    #[error("auth store I/O error: {0}")]
    Io(#[from] io::Error),
}

/// What an auth file holds, as far as we could read it.
#[derive(Clone, Debug, PartialEq)]
pub enum AuthContent {
    Valid(Credential),
    /// Unreadable or unparsable; `message` says why (never quoting the file's content).
    Corrupt {
        message: String,
    },
    /// Never opened or read past the cap: not a regular file (symlink, FIFO, socket, device,
    /// directory) or larger than [`crate::MAX_AUTH_FILE_BYTES`]. `reason` says which, e.g.
    /// `not a regular file (symlink)`.
    Refused {
        reason: String,
    },
}

/// One auth file as last seen on disk.
#[derive(Clone, Debug)]
pub struct StoredAuth {
    /// File name, e.g. `claude-a@b.com.json`.
    pub name: String,
    /// Absolute path.
    pub path: PathBuf,
    pub size: u64,
    pub modified: SystemTime,
    /// From the file's type (`unknown` for corrupt files) and path; see [`auth_index`].
    pub auth_index: String,
    pub content: AuthContent,
    /// The file version `content` was read from (or written as); `None` when it was not read
    /// from a regular file, which every rescan reads again.
    pub(crate) stamp: Option<FileStamp>,
}

impl StoredAuth {
    pub(crate) fn new(dir: &Path, name: &str, size: u64, modified: SystemTime, content: AuthContent) -> Self {
        let path = dir.join(name);
        let index_type = match &content {
            AuthContent::Valid(c) => c.file_type().map(str::to_owned).or_else(|| c.provider()),
            AuthContent::Corrupt { .. } | AuthContent::Refused { .. } => None,
        };
        let auth_index = auth_index(index_type.as_deref().unwrap_or("unknown"), &path);
        StoredAuth { name: name.to_owned(), path, size, modified, auth_index, content, stamp: None }
    }

    pub(crate) fn with_stamp(mut self, stamp: Option<FileStamp>) -> Self {
        self.stamp = stamp;
        self
    }

    /// The credential, unless the file is corrupt or refused.
    pub fn credential(&self) -> Option<&Credential> {
        match &self.content {
            AuthContent::Valid(c) => Some(c),
            AuthContent::Corrupt { .. } | AuthContent::Refused { .. } => None,
        }
    }

    /// The credential to modify, or why this file is never rewritten (corrupt or refused).
    fn writable(&self) -> Result<&Credential, StoreError> {
        match &self.content {
            AuthContent::Valid(credential) => Ok(credential),
            AuthContent::Corrupt { message } => Err(StoreError::Corrupt(format!("{}: {message}", self.name))),
            AuthContent::Refused { reason } => Err(StoreError::Refused(format!("{}: {reason}", self.name))),
        }
    }

    /// Why this file is not an account, if it is not: the corrupt or refused reason.
    pub fn problem(&self) -> Option<&str> {
        match &self.content {
            AuthContent::Valid(_) => None,
            AuthContent::Corrupt { message } => Some(message),
            AuthContent::Refused { reason } => Some(reason),
        }
    }
}

/// A change to the index. Emitted when a file appears, its content changes, or it goes away
/// (a rewrite with identical content only refreshes size/mtime and emits nothing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreEvent {
    Upserted(String),
    Removed(String),
}

/// The auth dir. Share it as `Arc<CredentialStore>`.
pub struct CredentialStore {
    dir: PathBuf,
    entries: RwLock<HashMap<String, Arc<StoredAuth>>>,
    /// Held across every read-disk-then-update-index sequence (our writes, rescans, watcher
    /// syncs), so updates never lose each other's fields and the index never moves back to an
    /// older state of a file.
    disk_lock: Mutex<()>,
    events: broadcast::Sender<StoreEvent>,
    /// Auth files read from disk since open (`/metrics`: `switchyard_auth_file_reads_total`):
    /// shows that a change re-reads the changed file only.
    file_reads: AtomicU64,
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialStore").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl CredentialStore {
    /// Opens `dir` (created with parents, mode 0700, if missing) and indexes every auth file
    /// directly in it (`*.json`, not dotfiles; `.oauth`/`.cds`/`.tmp` files are ignored;
    /// non-regular `*.json` entries are listed as [`AuthContent::Refused`]). Removes the store's
    /// temp files older than [`hygiene::STALE_TEMP_AGE`] and warns (one line) when the dir or a
    /// file in it is group/world-accessible.
    pub async fn open(dir: PathBuf) -> Result<Arc<Self>, StoreError> {
        let dir = clean_path(&std::path::absolute(&dir)?);
        let create = dir.clone();
        blocking(move || -> io::Result<()> {
            disk::create_dir(&create)?;
            start_up_hygiene(&create);
            Ok(())
        })
        .await??;
        let store = Arc::new(CredentialStore {
            dir,
            entries: RwLock::default(),
            disk_lock: Mutex::new(()),
            events: broadcast::channel(EVENT_CAPACITY).0,
            file_reads: AtomicU64::new(0),
        });
        store.rescan().await?;
        Ok(store)
    }

    /// Absolute, lexically clean path of the auth dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every indexed file, sorted case-insensitively by name.
    pub fn list(&self) -> Vec<Arc<StoredAuth>> {
        let mut all: Vec<_> = self.read_entries().values().cloned().collect();
        // Each name lower-cased once, not once per comparison (thousands of files).
        all.sort_by_cached_key(|a| (a.name.to_lowercase(), a.name.clone()));
        all
    }

    /// How many auth files were read from disk since [`CredentialStore::open`] (every read of
    /// a file's content: start-up, rescans, watcher syncs, the read before a write, downloads).
    pub fn file_reads(&self) -> u64 {
        self.file_reads.load(Ordering::Relaxed)
    }

    fn count_reads(&self, files: usize) {
        self.file_reads.fetch_add(files as u64, Ordering::Relaxed);
    }

    pub fn get(&self, name: &str) -> Option<Arc<StoredAuth>> {
        self.read_entries().get(name).cloned()
    }

    /// The file's bytes as they are on disk (for download). Never follows a symlink nor waits
    /// on a FIFO: anything but a regular file within the size cap is [`StoreError::Refused`].
    pub async fn read_raw(&self, name: &str) -> Result<Vec<u8>, StoreError> {
        validate_file_name(name)?;
        let path = self.dir.join(name);
        self.count_reads(1);
        match blocking(move || disk::read_auth_file(&path)).await? {
            Ok((bytes, _)) => Ok(bytes),
            Err(disk::ReadError::NotFound) => Err(StoreError::NotFound(name.to_owned())),
            Err(disk::ReadError::Refused(reason)) => Err(StoreError::Refused(format!("{name}: {reason}"))),
            Err(disk::ReadError::Io(err)) => Err(StoreError::Io(err)),
        }
    }

    /// Writes `credential` (as [`Credential::to_json_pretty`]) atomically with mode 0600, for a
    /// login or a user action. Refuses to replace a file we cannot parse.
    pub async fn save(&self, name: &str, credential: &Credential) -> Result<Arc<StoredAuth>, StoreError> {
        validate_file_name(name)?;
        let (bytes, credential) = checked_bytes(credential)?;
        let _guard = self.disk_lock.lock().await;
        if let Some(current) = self.load(name).await?
            && let Err(error) = current.writable()
        {
            self.upsert(current);
            return Err(error);
        }
        self.write(name, bytes, credential).await
    }

    /// Upload: validates `bytes` as an auth file first (rejected → [`StoreError::Invalid`], the
    /// existing file untouched), then writes them unchanged, atomically, mode 0600. A valid
    /// upload may replace a corrupt file: that is the user fixing it.
    pub async fn put_raw(&self, name: &str, bytes: &[u8]) -> Result<Arc<StoredAuth>, StoreError> {
        validate_file_name(name)?;
        let credential = Credential::from_json(bytes).map_err(|err| StoreError::Invalid(err.to_string()))?;
        let _guard = self.disk_lock.lock().await;
        self.write(name, bytes.to_vec(), credential).await
    }

    /// Read-modify-write of one file, serialised with every other write of this store. The file
    /// is re-read from disk; a corrupt file is left untouched ([`StoreError::Corrupt`]); an
    /// error from `edit` writes nothing; the file is only rewritten if the content changed.
    pub async fn update<F>(&self, name: &str, edit: F) -> Result<Arc<StoredAuth>, StoreError>
    where
        F: FnOnce(&mut Credential) -> Result<(), StoreError> + Send,
    {
        validate_file_name(name)?;
        let _guard = self.disk_lock.lock().await;
        let Some(current) = self.load(name).await? else {
            self.remove(name);
            return Err(StoreError::NotFound(name.to_owned()));
        };
        let original = match current.writable() {
            Ok(credential) => credential.clone(),
            Err(error) => {
                self.upsert(current);
                return Err(error);
            }
        };
        let mut edited = original.clone();
        edit(&mut edited)?;
        if edited == original {
            return Ok(self.upsert(current));
        }
        let (bytes, edited) = checked_bytes(&edited)?;
        self.write(name, bytes, edited).await
    }

    /// Deletes one auth file (a user action, so corrupt files may be deleted too).
    pub async fn delete(&self, name: &str) -> Result<(), StoreError> {
        validate_file_name(name)?;
        let _guard = self.disk_lock.lock().await;
        let (dir, file) = (self.dir.clone(), name.to_owned());
        let result = blocking(move || disk::remove(&dir, &file)).await?;
        match result {
            Ok(()) => {
                tracing::info!(file = name, "auth file deleted");
                self.remove(name);
                Ok(())
            }
            Err(err) if err.kind() == io::ErrorKind::IsADirectory => {
                Err(StoreError::Refused(format!("{name}: not a regular file (directory); remove it yourself")))
            }
            Err(err) => {
                if err.kind() == io::ErrorKind::NotFound {
                    self.remove(name);
                }
                Err(not_found_or(err, name))
            }
        }
    }

    /// Deletes every auth file in the dir; returns how many were deleted.
    pub async fn delete_all(&self) -> Result<usize, StoreError> {
        let _guard = self.disk_lock.lock().await;
        let dir = self.dir.clone();
        let removed = blocking(move || disk::remove_all(&dir)).await??;
        tracing::info!(count = removed.len(), "all auth files deleted");
        for name in &removed {
            self.remove(name);
        }
        Ok(removed.len())
    }

    /// Re-reads the whole dir and brings the index (and subscribers) up to date.
    pub async fn rescan(&self) -> Result<(), StoreError> {
        self.read_dir(HashMap::new()).await
    }

    /// Like [`CredentialStore::rescan`], but reads only the files whose [`FileStamp`] differs
    /// from the one their index entry was read at (new, replaced, written, `chmod`ed files, and
    /// entries that were not regular files); files gone from the dir leave the index. The
    /// watcher's passes over the whole dir use it: right after [`CredentialStore::open`] read
    /// every file, its first pass reads none of the unchanged thousands again.
    pub async fn rescan_changed(&self) -> Result<(), StoreError> {
        let known = self.read_entries().iter().filter_map(|(name, entry)| Some((name.clone(), entry.stamp?))).collect();
        self.read_dir(known).await
    }

    /// Reads every file of the dir whose stamp is not the one `known` gives for it (all of
    /// them when `known` is empty), and drops the entries of files gone from the dir.
    async fn read_dir(&self, known: HashMap<String, FileStamp>) -> Result<(), StoreError> {
        let _guard = self.disk_lock.lock().await;
        let dir = self.dir.clone();
        let (present, loaded) = blocking(move || -> io::Result<(HashSet<String>, Vec<StoredAuth>)> {
            let (mut present, mut loaded) = (HashSet::new(), Vec::new());
            for name in disk::auth_file_names(&dir)? {
                // Stat only what the index holds a stamp for: anything else is read anyway.
                let unchanged = known.get(&name).is_some_and(|&stamp| disk::current_stamp(&dir, &name) == Some(stamp));
                if !unchanged {
                    // Gone between the listing and the read: not present either.
                    let Some(entry) = disk::load(&dir, &name) else { continue };
                    loaded.push(entry);
                }
                present.insert(name);
            }
            Ok((present, loaded))
        })
        .await??;
        self.count_reads(loaded.len());
        let gone: Vec<String> = self.read_entries().keys().filter(|k| !present.contains(k.as_str())).cloned().collect();
        for name in gone {
            self.remove(&name);
        }
        for entry in loaded {
            self.upsert(entry);
        }
        Ok(())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StoreEvent> {
        self.events.subscribe()
    }

    /// Re-reads the named files (changed by someone else) and updates the index.
    pub(crate) async fn sync_files(&self, names: Vec<String>) -> Result<(), StoreError> {
        let _guard = self.disk_lock.lock().await;
        let dir = self.dir.clone();
        self.count_reads(names.len());
        let loaded =
            blocking(move || names.into_iter().map(|name| (disk::load(&dir, &name), name)).collect::<Vec<_>>()).await?;
        for (entry, name) in loaded {
            match entry {
                Some(entry) => {
                    self.upsert(entry);
                }
                None => self.remove(&name),
            }
        }
        Ok(())
    }

    async fn load(&self, name: &str) -> Result<Option<StoredAuth>, StoreError> {
        let (dir, name) = (self.dir.clone(), name.to_owned());
        self.count_reads(1);
        blocking(move || disk::load(&dir, &name)).await
    }

    async fn write(&self, name: &str, bytes: Vec<u8>, credential: Credential) -> Result<Arc<StoredAuth>, StoreError> {
        let (dir, file) = (self.dir.clone(), name.to_owned());
        let (size, modified, stamp) = blocking(move || disk::write_atomic(&dir, &file, &bytes)).await??;
        tracing::info!(file = name, "auth file written");
        let content = AuthContent::Valid(credential);
        Ok(self.upsert(StoredAuth::new(&self.dir, name, size, modified, content).with_stamp(stamp)))
    }

    // Events are sent while the index lock is held: whoever sees the new state can already
    // receive its event, and whoever receives an event sees (at least) that state.
    fn upsert(&self, entry: StoredAuth) -> Arc<StoredAuth> {
        let entry = Arc::new(entry);
        let mut entries = self.write_entries();
        let previous = entries.insert(entry.name.clone(), entry.clone());
        if previous.is_none_or(|old| old.content != entry.content) {
            let _ = self.events.send(StoreEvent::Upserted(entry.name.clone()));
        }
        entry
    }

    fn remove(&self, name: &str) {
        let mut entries = self.write_entries();
        if entries.remove(name).is_some() {
            let _ = self.events.send(StoreEvent::Removed(name.to_owned()));
        }
    }

    // A panic elsewhere cannot leave the map half-updated (every update is one insert/remove),
    // so a poisoned lock is still safe to use.
    fn read_entries(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, Arc<StoredAuth>>> {
        self.entries.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_entries(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, Arc<StoredAuth>>> {
        self.entries.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Start-up housekeeping of the auth dir: stale temp files go (one info line), loose modes are
/// warned about (one line). Failures are logged: they must not stop the server.
fn start_up_hygiene(dir: &Path) {
    match hygiene::remove_stale_temps(dir, SystemTime::now()) {
        Ok(removed) if !removed.is_empty() => {
            tracing::info!(count = removed.len(), dir = %dir.display(), "removed stale temp files of interrupted auth-file writes");
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, dir = %dir.display(), "cannot remove stale temp files"),
    }
    match hygiene::loose_modes(dir) {
        Ok(loose) if !loose.is_empty() => {
            let names: Vec<String> =
                loose.iter().map(|l| format!("{} ({:o})", l.name.as_deref().unwrap_or("<auth dir>"), l.mode)).collect();
            tracing::warn!(
                dir = %dir.display(),
                entries = %names.join(", "),
                "auth dir or files are group/world-accessible; run `switchyard doctor --fix` (dir 0700, files 0600)"
            );
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(%error, dir = %dir.display(), "cannot check auth dir permissions"),
    }
}

/// Serialises `credential` and proves the bytes read back as a valid auth file, so the store
/// never writes a file it would itself report as corrupt.
fn checked_bytes(credential: &Credential) -> Result<(Vec<u8>, Credential), StoreError> {
    let bytes = credential.to_json_pretty();
    let reread = Credential::from_json(&bytes).map_err(|err| StoreError::Invalid(err.to_string()))?;
    Ok((bytes, reread))
}

fn not_found_or(err: io::Error, name: &str) -> StoreError {
    if err.kind() == io::ErrorKind::NotFound { StoreError::NotFound(name.to_owned()) } else { StoreError::Io(err) }
}

/// Runs blocking file-system work off the async reactor.
async fn blocking<T, F>(work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|err| StoreError::Io(io::Error::other(err)))
}
