//! What the server records about the requests it proxies, for the management usage and log
//! endpoints: per-account counters (one count per attempt), the usage queue and the request /
//! error log files (one per request, written when its [`RequestLog`](crate::proxy) ends).

pub(crate) mod sink;

use std::path::PathBuf;
use std::time::SystemTime;

use switchyard_usage::{AccountCounters, UsageQueue};

pub(crate) use sink::RequestSink;

pub struct UsageState {
    pub counters: AccountCounters,
    pub queue: UsageQueue,
    /// Where `main.log`, rotated logs and request logs live (see [`switchyard_usage::log_dir`]).
    pub log_dir: PathBuf,
}

impl UsageState {
    pub fn new(log_dir: PathBuf) -> Self {
        Self { counters: AccountCounters::new(), queue: UsageQueue::default(), log_dir }
    }

    /// One finished attempt of the account `auth_index`: answered (`success`) or not.
    pub fn attempt_done(&self, auth_index: &str, success: bool) {
        self.counters.record(auth_index, success, SystemTime::now());
    }
}
