//! Starting the request-records database: opened at `usage-store.path`, fed by the recorder's
//! queue on a writer thread of its own, and read once to start the `/auth-files` counters from
//! history, so they survive a restart.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use switchyard_usage::counters::{BUCKET_COUNT, BUCKET_SECONDS};
use switchyard_usage::store::{RecordStore, StoreSettings};

use crate::AppState;

impl AppState {
    /// Opens the records database and starts its writer (blocking: call before serving, or off
    /// the reactor). `None` when `usage-store.enabled` is off, the receiver was already taken, or
    /// the database cannot be opened at all (logged; requests are then served unrecorded).
    pub fn start_usage_store(self: &Arc<Self>) -> Option<JoinHandle<()>> {
        let config = self.config.get();
        if !config.usage_store.enabled {
            return None;
        }
        let path = config.usage_store_path();
        let store = match RecordStore::open(&path) {
            Ok(store) => store,
            Err(error) => {
                tracing::warn!(%error, "usage store unavailable; requests are not recorded");
                return None;
            }
        };
        let records = self.usage.take_records()?;
        let since_ms = SystemTime::now()
            .checked_sub(Duration::from_secs(BUCKET_SECONDS as u64 * BUCKET_COUNT as u64))
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_millis() as i64);
        match store.account_history(since_ms) {
            Ok(history) => {
                for (auth_index, totals) in &history.totals {
                    let recent: Vec<(SystemTime, bool)> = history
                        .recent
                        .get(auth_index)
                        .into_iter()
                        .flatten()
                        .map(|(ms, ok)| (UNIX_EPOCH + Duration::from_millis((*ms).max(0) as u64), *ok))
                        .collect();
                    self.usage.counters.seed(auth_index, *totals, &recent);
                }
            }
            Err(error) => tracing::warn!(%error, "could not read request history for the counters"),
        }
        let handle = self.config.clone();
        let writer = store.spawn_writer(records, move || {
            let config = handle.get();
            StoreSettings {
                path: config.usage_store_path(),
                retention_days: config.usage_store.retention_days,
                max_size_mb: config.usage_store.max_size_mb,
            }
        });
        match writer {
            Ok(writer) => {
                let _ = self.usage.store.set(store);
                Some(writer)
            }
            Err(error) => {
                tracing::warn!(%error, "could not start the usage store writer");
                None
            }
        }
    }
}
