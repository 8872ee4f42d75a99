//! Picks up auth files added, changed or removed by other programs (CPA, an editor, `cp`).
//!
//! notify + a debouncer watch the auth dir; each debounced batch names the files to re-read,
//! and the store re-reads them under its disk lock and compares with the index. Our own writes
//! therefore come back as no-op re-reads (same content, no event).

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::sync::{Arc, Weak};
use std::time::Duration;

use notify::event::{AccessKind, AccessMode};
use notify::{EventKind, RecommendedWatcher, RecursiveMode};
use notify_debouncer_full::{DebounceEventResult, Debouncer, NoCache, new_debouncer_opt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::paths::validate_file_name;
use crate::store::{CredentialStore, StoreError};

/// Quiet time before a burst of events (write tmp + rename, editor saves) is handled.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// Keeps the watch running; dropping it stops the watcher and its task.
pub struct StoreWatcher {
    // Dropping it stops notify's thread; the task is aborted in `drop`.
    _debouncer: Debouncer<RecommendedWatcher, NoCache>,
    task: JoinHandle<()>,
}

impl fmt::Debug for StoreWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreWatcher").finish_non_exhaustive()
    }
}

impl Drop for StoreWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CredentialStore {
    /// Starts watching the auth dir. Needs a tokio runtime (the sync work runs as a task there;
    /// notify's own thread only forwards batches). Starts with a rescan of the changed files, so
    /// changes made between [`CredentialStore::open`] and this call are not missed.
    pub fn watch(self: &Arc<Self>) -> Result<StoreWatcher, StoreError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        let (tx, rx) = mpsc::unbounded_channel();
        // The file-id cache only helps platforms without rename cookies; we re-read by name anyway.
        let mut debouncer = new_debouncer_opt::<_, RecommendedWatcher, NoCache>(
            DEBOUNCE,
            None,
            move |batch: DebounceEventResult| {
                let _ = tx.send(batch);
            },
            NoCache,
            notify::Config::default(),
        )
        .map_err(notify_error)?;
        debouncer.watch(self.dir(), RecursiveMode::NonRecursive).map_err(notify_error)?;
        let task = runtime.spawn(run(Arc::downgrade(self), rx));
        Ok(StoreWatcher { _debouncer: debouncer, task })
    }
}

/// Holds only a weak reference between batches, so a watcher never keeps a dropped store alive.
async fn run(weak: Weak<CredentialStore>, mut batches: mpsc::UnboundedReceiver<DebounceEventResult>) {
    if let Some(store) = weak.upgrade() {
        resync(&store, None).await;
    }
    while let Some(batch) = batches.recv().await {
        let Some(store) = weak.upgrade() else { break };
        match batch {
            Ok(events) if !events.iter().any(|e| e.event.need_rescan()) => {
                let names: BTreeSet<String> = events
                    .iter()
                    .filter(|e| changes_content(&e.event.kind))
                    .flat_map(|e| &e.event.paths)
                    .filter(|path| path.parent() == Some(store.dir()))
                    .filter_map(|path| path.file_name()?.to_str())
                    .filter(|name| validate_file_name(name).is_ok())
                    .map(str::to_owned)
                    .collect();
                if !names.is_empty() {
                    resync(&store, Some(names.into_iter().collect())).await;
                }
            }
            // The OS dropped events (queue overflow) or notify failed: re-read everything.
            Ok(_) => resync(&store, None).await,
            Err(errors) => {
                for error in &errors {
                    tracing::warn!(%error, "auth dir watcher error");
                }
                resync(&store, None).await;
            }
        }
    }
}

/// Whether an event can mean a file's content or presence changed. Opening or reading a file
/// (inotify `OPEN`, `ACCESS`, `CLOSE_NOWRITE`) cannot, and our own re-reads cause exactly
/// those: re-reading on them looped forever, every read of the dir causing another.
fn changes_content(kind: &EventKind) -> bool {
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) => false,
        _ => true,
    }
}

/// Re-reads `names`, or the whole dir's changed files when `None`. Failures are logged; the
/// next event retries.
async fn resync(store: &CredentialStore, names: Option<Vec<String>>) {
    let result = match names {
        Some(names) => store.sync_files(names).await,
        None => store.rescan_changed().await,
    };
    if let Err(error) = result {
        tracing::warn!(%error, dir = %store.dir().display(), "auth dir re-read failed");
    }
}

fn notify_error(err: notify::Error) -> StoreError {
    match err.kind {
        notify::ErrorKind::Io(io) => StoreError::Io(io),
        _ => StoreError::Io(io::Error::other(err)),
    }
}
