//! What Switchyard remembers about the requests it served, in CLIProxyAPI's shapes (spec §6):
//! per-account counters with 20 ten-minute buckets ([`counters`]), the per-request records
//! handed to the store without blocking ([`records`]), the in-memory usage queue a
//! collector pops ([`queue`]), and the log directory: the process log written to rotated files
//! ([`log_writer`]) and read back page by page ([`log_reader`]), and one file per request
//! ([`request_files`]), and the Prometheus metrics of the request path ([`metrics`]). Nothing
//! here knows about HTTP; the server and the binary wire it in.

pub mod counters;
pub mod log_reader;
pub mod log_writer;
pub mod metrics;
pub mod queue;
pub mod records;
pub mod request_files;
pub mod store;

use std::path::PathBuf;

use switchyard_config::ConfigHandle;

pub use counters::{AccountCounters, Bucket, CounterSnapshot};
pub use metrics::Metrics;
pub use queue::UsageQueue;
pub use records::{RecordReceiver, Recorder, Tokens, UsageRecord};

/// The log directory: `logs/` next to the config file (CPA: `logs/` in its working directory,
/// which is where its config lives), or `<auth-dir>/logs` when running on the embedded default.
pub fn log_dir(config: &ConfigHandle) -> PathBuf {
    match config.path().and_then(|p| p.parent()) {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join("logs"),
        Some(_) => PathBuf::from("logs"),
        None => config.get().auth_dir_path().join("logs"),
    }
}
