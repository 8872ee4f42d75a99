//! What the server records about the requests it proxies: per-account counters (one count per
//! attempt), the usage queue and the request / error log files for the management endpoints,
//! one [`UsageRecord`](switchyard_usage::UsageRecord) per request for the store, and the
//! Prometheus metrics — all written when the request's [`RequestLog`](crate::proxy) ends.

pub(crate) mod record;
pub(crate) mod sink;
mod store;

use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use switchyard_usage::records::DEFAULT_QUEUE_CAPACITY;
use switchyard_usage::store::RecordStore;
use switchyard_usage::{AccountCounters, Metrics, RecordReceiver, Recorder, UsageQueue};

pub(crate) use record::TokenTally;
pub(crate) use sink::RequestSink;

pub struct UsageState {
    pub counters: AccountCounters,
    pub queue: UsageQueue,
    /// Where `main.log`, rotated logs and request logs live (see [`switchyard_usage::log_dir`]).
    pub log_dir: PathBuf,
    /// Per-request records on their way to the store (never blocks the request path).
    pub recorder: Recorder,
    /// The records' receiving end until the store takes it ([`UsageState::take_records`]).
    records: Mutex<Option<RecordReceiver>>,
    /// The records database, once [`AppState::start_usage_store`](crate::AppState) opened it.
    pub store: OnceLock<Arc<RecordStore>>,
    /// Request counts, latencies, tokens and active streams for `/metrics`.
    pub metrics: Metrics,
}

impl UsageState {
    pub fn new(log_dir: PathBuf) -> Self {
        let (recorder, records) = Recorder::channel(DEFAULT_QUEUE_CAPACITY);
        Self {
            counters: AccountCounters::new(),
            queue: UsageQueue::default(),
            log_dir,
            recorder,
            records: Mutex::new(Some(records)),
            store: OnceLock::new(),
            metrics: Metrics::new(),
        }
    }

    /// The receiving end of [`UsageState::recorder`], once: for the store (or a test).
    pub fn take_records(&self) -> Option<RecordReceiver> {
        self.records.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// One finished attempt of the account `auth_index`: answered (`success`) or not.
    pub fn attempt_done(&self, auth_index: &str, success: bool) {
        self.counters.record(auth_index, success, SystemTime::now());
    }
}
