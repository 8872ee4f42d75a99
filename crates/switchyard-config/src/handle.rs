//! The live configuration: lock-free reads, validated writes, hot reload from disk.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, RecommendedCache, new_debouncer};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::edit::{self, Edit, EditError};

use crate::security_keys::{SECURITY_HOLD, dropped_security_keys};
use crate::{Config, ConfigError, DEFAULT_YAML, Warning, parse};

/// A reload reads the file until two reads this far apart are identical, so a save in progress
/// is not taken for the whole file.
const STABLE_READ_INTERVAL: Duration = Duration::from_millis(50);
/// Reads before a reload gives up on a file that keeps changing (the next change event retries).
const STABLE_READ_ATTEMPTS: usize = 40;

/// Why [`ConfigHandle::edit_yaml`] changed nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditYamlError {
    /// The edit does not fit the current document (a missing key or index, ...).
    #[error("{0}")]
    Edit(EditError),
    /// The edited document is invalid (or the file cannot be read or written).
    #[error("{0}")]
    Invalid(ConfigError),
}

const NO_FILE: &str = "no config file: start switchyard with --config PATH to edit the configuration";

/// What [`ConfigHandle::reload`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum ReloadOutcome {
    /// The file's bytes match the applied document (or there is no file).
    Unchanged,
    Applied {
        warnings: Vec<Warning>,
    },
    /// The file loosens these security keys ([`crate::SECURITY_KEYS`]): not applied until it
    /// has stayed so for [`SECURITY_HOLD`] (then a later reload applies it).
    Held {
        dropped: Vec<String>,
    },
}

/// A parsed file that loosens security keys, waiting out [`SECURITY_HOLD`].
struct HeldChange {
    digest: [u8; 32],
    since: Instant,
    dropped: Vec<String>,
}

/// The applied document and its parsed form, swapped as one unit.
struct Snapshot {
    config: Arc<Config>,
    raw: Arc<String>,
    digest: [u8; 32],
}

impl Snapshot {
    fn new(raw: String, config: Config) -> Self {
        Snapshot { digest: sha256(&raw), config: Arc::new(config), raw: Arc::new(raw) }
    }
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Shared as `Arc<ConfigHandle>`.
pub struct ConfigHandle {
    path: Option<PathBuf>,
    current: ArcSwap<Snapshot>,
    updates: watch::Sender<Arc<Config>>,
    last_reload_error: Mutex<Option<ConfigError>>,
    held: Mutex<Option<HeldChange>>,
    /// Serializes reloads and writes so a watcher reload cannot interleave with a write.
    write_lock: Mutex<()>,
    /// Serializes [`edit_yaml`](Self::edit_yaml) calls: each reads, edits and writes as one step.
    edit_lock: Mutex<()>,
}

impl std::fmt::Debug for ConfigHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigHandle").field("path", &self.path).finish_non_exhaustive()
    }
}

impl ConfigHandle {
    fn new(path: Option<PathBuf>, raw: String, config: Config) -> Self {
        let snapshot = Snapshot::new(raw, config);
        let (updates, _) = watch::channel(snapshot.config.clone());
        ConfigHandle {
            path,
            current: ArcSwap::from_pointee(snapshot),
            updates,
            last_reload_error: Mutex::new(None),
            held: Mutex::new(None),
            write_lock: Mutex::new(()),
            edit_lock: Mutex::new(()),
        }
    }

    /// The embedded [`DEFAULT_YAML`], with no file behind it (read-only).
    pub fn embedded() -> Self {
        ConfigHandle::new(None, DEFAULT_YAML.to_owned(), Config::default())
    }

    /// Loads `path`; the warnings are for the caller to log.
    pub fn from_file(path: &Path) -> Result<(Self, Vec<Warning>), ConfigError> {
        let text = read(path)?;
        let loaded = parse(&text)?;
        Ok((ConfigHandle::new(Some(path.to_path_buf()), text, loaded.config), loaded.warnings))
    }

    /// The applied configuration (lock-free).
    pub fn get(&self) -> Arc<Config> {
        self.current.load().config.clone()
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Text of the applied document (the file as last applied, or [`DEFAULT_YAML`]).
    pub fn raw_yaml(&self) -> Arc<String> {
        self.current.load().raw.clone()
    }

    /// Receives every newly applied configuration.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Config>> {
        self.updates.subscribe()
    }

    /// Why the file on disk was last rejected by [`reload`](Self::reload); cleared once the
    /// file loads again (lets the management UI show that edits are not applied).
    pub fn last_reload_error(&self) -> Option<ConfigError> {
        lock(&self.last_reload_error).clone()
    }

    /// The security keys a file on disk loosens while it waits out [`SECURITY_HOLD`] (see
    /// [`reload`](Self::reload)); `None` when no such change is waiting.
    pub fn held_change(&self) -> Option<Vec<String>> {
        lock(&self.held).as_ref().map(|held| held.dropped.clone())
    }

    /// Re-reads the file, until two reads [`STABLE_READ_INTERVAL`] apart agree. Unchanged bytes
    /// are a no-op; a broken or empty document leaves the last good configuration applied and
    /// returns the reason (also logged, with its line). A document that loosens security keys
    /// (`api-keys` emptied, `remote-management.secret-key` removed, ...: [`crate::SECURITY_KEYS`])
    /// is `Held` — the file may be caught half-written — and applied by the first reload after
    /// it stayed the same for [`SECURITY_HOLD`], with a warning naming the keys. No file:
    /// `Unchanged`.
    pub fn reload(&self) -> Result<ReloadOutcome, ConfigError> {
        let Some(path) = &self.path else {
            return Ok(ReloadOutcome::Unchanged);
        };
        let _guard = lock(&self.write_lock);
        let result = self.reload_from(path);
        match &result {
            Ok(_) => *lock(&self.last_reload_error) = None,
            Err(err) => {
                tracing::warn!(
                    path = %path.display(),
                    line = err.line,
                    field = err.field.as_deref(),
                    "config reload rejected, keeping the last good configuration: {}",
                    err.message
                );
                *lock(&self.last_reload_error) = Some(err.clone());
            }
        }
        result
    }

    fn reload_from(&self, path: &Path) -> Result<ReloadOutcome, ConfigError> {
        let text = read_stable(path)?;
        let digest = sha256(&text);
        let mut held = lock(&self.held);
        // Whatever is on disk now replaces a held change, unless it is that change.
        let waiting = held.take().filter(|h| h.digest == digest);
        if digest == self.current.load().digest {
            return Ok(ReloadOutcome::Unchanged);
        }
        // An empty file is far more likely a save in progress than a wish for all defaults.
        if text.trim().is_empty() {
            return Err(ConfigError::message(format!("{} is empty", path.display())));
        }
        let loaded = parse(&text)?;
        let dropped = dropped_security_keys(&self.get(), &loaded.config);
        if !dropped.is_empty() {
            match waiting {
                Some(change) if change.since.elapsed() >= SECURITY_HOLD => tracing::warn!(
                    path = %path.display(),
                    dropped = %dropped.join(", "),
                    "applying a config that loosens security keys: the file stayed so for {} s",
                    SECURITY_HOLD.as_secs()
                ),
                Some(change) => {
                    *held = Some(change);
                    return Ok(ReloadOutcome::Held { dropped });
                }
                None => {
                    tracing::warn!(
                        path = %path.display(),
                        dropped = %dropped.join(", "),
                        "config change loosens security keys: not applied unless the file stays so for {} s",
                        SECURITY_HOLD.as_secs()
                    );
                    *held = Some(HeldChange { digest, since: Instant::now(), dropped: dropped.clone() });
                    return Ok(ReloadOutcome::Held { dropped });
                }
            }
        }
        drop(held);
        log_warnings(path, &loaded.warnings);
        self.apply(text, loaded.config);
        tracing::info!(path = %path.display(), "configuration reloaded");
        Ok(ReloadOutcome::Applied { warnings: loaded.warnings })
    }

    /// Validates `text`, then atomically replaces the file with it and applies it. A rejected
    /// document leaves the file untouched.
    pub fn replace_yaml(&self, text: &str) -> Result<Vec<Warning>, ConfigError> {
        let path = self.path.as_deref().ok_or_else(|| ConfigError::message(NO_FILE))?;
        let loaded = parse(text)?;
        let _guard = lock(&self.write_lock);
        write_atomically(path, text.as_bytes())
            .map_err(|err| ConfigError::message(format!("cannot write {}: {err}", path.display())))?;
        self.apply(text.to_owned(), loaded.config);
        *lock(&self.last_reload_error) = None;
        tracing::info!(path = %path.display(), "configuration replaced");
        Ok(loaded.warnings)
    }

    /// Edits the file's current text with the [`Edit`]s `plan` computes from it (comment-
    /// preserving), then writes the result through [`replace_yaml`](Self::replace_yaml)
    /// (validated, atomic, applied at once). Read, edit and write are one step against other
    /// edits. Blocking file I/O: call it off the async reactor.
    pub fn edit_yaml<E>(&self, plan: impl FnOnce(&str) -> Result<Vec<Edit>, E>) -> Result<Vec<Warning>, E>
    where
        E: From<EditYamlError>,
    {
        let path = self.path.as_deref().ok_or_else(|| EditYamlError::Invalid(ConfigError::message(NO_FILE)))?;
        let _guard = lock(&self.edit_lock);
        let current = read(path).map_err(EditYamlError::Invalid)?;
        let edits = plan(&current)?;
        let edited = edit::apply(&current, &edits).map_err(EditYamlError::Edit)?;
        if edited == current {
            return Ok(Vec::new());
        }
        Ok(self.replace_yaml(&edited).map_err(EditYamlError::Invalid)?)
    }

    fn apply(&self, raw: String, config: Config) {
        // Whatever was held is superseded by what is applied now.
        *lock(&self.held) = None;
        let snapshot = Snapshot::new(raw, config);
        let config = snapshot.config.clone();
        self.current.store(Arc::new(snapshot));
        self.updates.send_replace(config);
    }

    /// Watches the file's directory (editors save by renaming a new file over the old one) and
    /// calls [`reload`](Self::reload) once changes to the file settle for `debounce`. Runs on
    /// notify's own thread, so no async runtime is needed. Stops when the watcher is dropped.
    pub fn watch(self: &Arc<Self>, debounce: Duration) -> Result<ConfigWatcher, ConfigError> {
        let path = self.path.as_deref().ok_or_else(|| ConfigError::message(NO_FILE))?;
        let file_name = path
            .file_name()
            .ok_or_else(|| ConfigError::message(format!("{} does not name a file", path.display())))?
            .to_owned();
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let watch_error = |err: notify::Error| ConfigError::message(format!("cannot watch {}: {err}", dir.display()));

        // Weak: the watcher must not keep the handle alive.
        let handle: Weak<ConfigHandle> = Arc::downgrade(self);
        let mut debouncer = new_debouncer(debounce, None, move |result: DebounceEventResult| {
            let Some(handle) = handle.upgrade() else {
                return;
            };
            match result {
                Ok(events) => {
                    let relevant = events.iter().any(|event| {
                        // Reads (including our own) must not trigger a reload.
                        let is_read = matches!(event.kind, EventKind::Access(kind)
                            if kind != AccessKind::Close(AccessMode::Write));
                        !is_read && event.paths.iter().any(|p| p.file_name() == Some(file_name.as_os_str()))
                    });
                    if relevant {
                        reload_and_follow(handle);
                    }
                }
                Err(errors) => {
                    for err in errors {
                        tracing::warn!(error = %err, "config file watcher error");
                    }
                }
            }
        })
        .map_err(watch_error)?;
        debouncer.watch(dir, RecursiveMode::NonRecursive).map_err(watch_error)?;
        Ok(ConfigWatcher { _debouncer: debouncer })
    }
}

/// Reloads (which logs every outcome itself); a held change is looked at again once its hold
/// has passed, so a deliberate removal is applied without another edit.
fn reload_and_follow(handle: Arc<ConfigHandle>) {
    if let Ok(ReloadOutcome::Held { .. }) = handle.reload() {
        let handle = Arc::downgrade(&handle);
        std::thread::spawn(move || {
            // A little past the hold: the change's clock started before this thread did.
            std::thread::sleep(SECURITY_HOLD + STABLE_READ_INTERVAL);
            if let Some(handle) = handle.upgrade() {
                reload_and_follow(handle);
            }
        });
    }
}

/// Keeps the config file watched; dropping it stops watching.
pub struct ConfigWatcher {
    _debouncer: Debouncer<RecommendedWatcher, RecommendedCache>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded data stays consistent even if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read(path: &Path) -> Result<String, ConfigError> {
    fs::read_to_string(path).map_err(|err| ConfigError::message(format!("cannot read {}: {err}", path.display())))
}

/// The file's text once two reads [`STABLE_READ_INTERVAL`] apart agree.
fn read_stable(path: &Path) -> Result<String, ConfigError> {
    let mut text = read(path)?;
    for _ in 0..STABLE_READ_ATTEMPTS {
        std::thread::sleep(STABLE_READ_INTERVAL);
        let again = read(path)?;
        if again == text {
            return Ok(text);
        }
        text = again;
    }
    Err(ConfigError::message(format!("{} kept changing while being read; waiting for the next change", path.display())))
}

fn log_warnings(path: &Path, warnings: &[Warning]) {
    for warning in warnings {
        tracing::warn!(path = %path.display(), "config: {warning}");
    }
}

/// Temp file in the same directory, fsync, rename over the target, fsync the directory. Keeps
/// the target's permission bits (0600 for a new file) and writes through a symlink.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let target = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new().prefix(".switchyard-config-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&target).map_or(0o600, |m| m.permissions().mode() & 0o7777);
        tmp.as_file().set_permissions(fs::Permissions::from_mode(mode))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(&target).map_err(|err| err.error)?;
    #[cfg(unix)]
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}
