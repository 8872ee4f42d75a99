//! The request records on disk: one embedded SQLite database (WAL mode) that a writer thread
//! fills in batches from the [`Recorder`](crate::Recorder)'s queue and trims by age and size
//! ([`writer`]); filtered lists, aggregates and failure sources ([`query`]); CSV and JSON export
//! ([`export`]). Reads use their own connection, so they never wait for a write batch; callers on
//! an async runtime run them with `spawn_blocking`.

pub mod export;
pub mod query;
mod schema;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rusqlite::Connection;

use crate::records::RecordReceiver;

pub use query::{Aggregate, AggregateBy, FailureSource, Filter, FilterError, Page, StatusFilter, StoredRecord};

/// Where the database lives and how much of it is kept (config `usage-store`).
#[derive(Clone, Debug, PartialEq)]
pub struct StoreSettings {
    pub path: PathBuf,
    /// Records older than this many days are deleted; 0 = kept forever.
    pub retention_days: u32,
    /// The database is trimmed (oldest first) to this many MiB; 0 = no cap.
    pub max_size_mb: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("usage store {path}: {source}")]
    Open { path: String, source: rusqlite::Error },
    #[error("usage store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("usage store: {0}")]
    Io(#[from] std::io::Error),
}

/// Counts the writer keeps, for metrics and tests.
#[derive(Default)]
pub struct WriterStats {
    /// Records committed to the database since start.
    pub written: AtomicU64,
    /// Records lost to a failed write batch.
    pub failed: AtomicU64,
    /// Records deleted by retention since start.
    pub trimmed: AtomicU64,
}

pub struct RecordStore {
    path: PathBuf,
    reader: Mutex<Connection>,
    stats: Arc<WriterStats>,
}

impl RecordStore {
    /// Opens (or creates) the database. A file that is not a readable SQLite database is moved
    /// aside to `<name>.corrupt-<unix seconds>` with a warning and a new one is started: the
    /// gateway never refuses to start over its monitoring history.
    pub fn open(path: &Path) -> Result<Arc<RecordStore>, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)?;
        }
        let writer_check = match schema::open_checked(path) {
            Ok(conn) => conn,
            Err(error) => {
                let aside = path.with_extension(format!(
                    "sqlite.corrupt-{}",
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
                ));
                tracing::warn!(
                    path = %path.display(), aside = %aside.display(), %error,
                    "the usage store is not a readable database; moved it aside and starting a new one"
                );
                std::fs::rename(path, &aside)?;
                for suffix in ["-wal", "-shm"] {
                    let side = PathBuf::from(format!("{}{suffix}", path.display()));
                    let _ = std::fs::remove_file(side);
                }
                schema::open_checked(path)
                    .map_err(|source| StoreError::Open { path: path.display().to_string(), source })?
            }
        };
        drop(writer_check);
        let reader = schema::open_reader(path)
            .map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
        Ok(Arc::new(RecordStore { path: path.to_owned(), reader: Mutex::new(reader), stats: Arc::default() }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// Records committed so far (tests wait on this instead of sleeping).
    pub fn written(&self) -> u64 {
        self.stats.written.load(Ordering::Relaxed)
    }

    /// Starts the writer thread: it stores what `records` delivers until every sender is gone,
    /// then commits what is left and ends.
    pub fn spawn_writer(
        self: &Arc<Self>,
        records: RecordReceiver,
        settings: impl Fn() -> StoreSettings + Send + 'static,
    ) -> Result<JoinHandle<()>, StoreError> {
        let conn = schema::open_checked(&self.path)
            .map_err(|source| StoreError::Open { path: self.path.display().to_string(), source })?;
        let stats = self.stats.clone();
        Ok(std::thread::Builder::new()
            .name("usage-store".into())
            .spawn(move || writer::run(conn, records, stats, settings))?)
    }

    /// Applies retention once, now (the writer does this every minute).
    pub fn trim(&self, settings: &StoreSettings) -> Result<u64, StoreError> {
        trim_now(&self.path, settings)
    }

    /// Runs `read` on the read connection (blocking: call it off the reactor).
    pub(crate) fn read<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let conn = self.reader.lock().unwrap_or_else(|e| e.into_inner());
        Ok(read(&conn)?)
    }
}

/// Applies `settings`' retention to the database at `path` once, on a connection of its own.
pub fn trim_now(path: &Path, settings: &StoreSettings) -> Result<u64, StoreError> {
    let conn =
        schema::open_checked(path).map_err(|source| StoreError::Open { path: path.display().to_string(), source })?;
    Ok(writer::apply_retention(&conn, settings, chrono::Utc::now().timestamp_millis())?)
}
