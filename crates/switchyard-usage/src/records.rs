//! One record per proxied request (monitoring): what the server hands over when a request ends,
//! and the bounded hand-off to whoever stores them. The request path only ever calls
//! [`Recorder::record`], which never blocks: a full queue drops the record and counts the drop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How many records may wait for the store before new ones are dropped.
pub const DEFAULT_QUEUE_CAPACITY: usize = 16_384;

/// Token counts of one request, from the upstream's usage when it reported one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    /// Input tokens served from the provider's prompt cache.
    pub cached: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_creation: u64,
    pub reasoning: u64,
    /// True when the upstream reported no usage and the counts are a local estimate.
    pub estimated: bool,
}

impl Tokens {
    pub fn total(&self) -> u64 {
        self.input + self.output
    }
}

/// What one proxied request did. Holds no secret: the client key only as a hash and an alias,
/// the failure summary already redacted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// When the request arrived.
    pub timestamp: DateTime<Utc>,
    pub request_id: String,
    /// The client key's alias (`key-<n>`, `none` without client keys).
    pub client_key: String,
    /// A hash of the client key (hex, first 16 chars of SHA-256), empty without one.
    pub client_key_hash: String,
    /// The model the client asked for.
    pub requested_model: String,
    /// The model sent upstream (after aliases and prefixes).
    pub upstream_model: String,
    pub provider: String,
    pub auth_index: String,
    /// The serving account: auth file name or config key id.
    pub account: String,
    /// The request path (`/v1/chat/completions`).
    pub endpoint: String,
    pub dialect_in: String,
    /// The upstream's dialect; empty when no attempt was made.
    pub dialect_out: String,
    pub stream: bool,
    /// Status given to the client (0 when the client went away first).
    pub status: u16,
    pub latency_ms: u64,
    /// Time to the first byte sent to the client; `None` when nothing was sent.
    pub ttfb_ms: Option<u64>,
    pub tokens: Tokens,
    /// Accounts tried.
    pub attempts: u32,
    /// Why the request failed or its stream broke off: redacted, at most 4 KiB.
    pub failure: Option<String>,
}

impl UsageRecord {
    pub fn failed(&self) -> bool {
        self.status == 0 || self.status >= 400 || self.failure.is_some()
    }
}

/// The request path's side of the hand-off.
pub struct Recorder {
    /// Boxed: a bounded channel allocates and touches every slot up front, and 16,384 slots of
    /// a whole record were 6 MB of idle memory; a box is one pointer.
    sender: SyncSender<Box<UsageRecord>>,
    dropped: AtomicU64,
}

/// The store's side: records in arrival order.
pub type RecordReceiver = Receiver<Box<UsageRecord>>;

impl Recorder {
    pub fn channel(capacity: usize) -> (Recorder, RecordReceiver) {
        let (sender, receiver) = sync_channel(capacity);
        (Recorder { sender, dropped: AtomicU64::new(0) }, receiver)
    }

    /// Hands the record over without waiting; a full queue (or no store) drops it and counts it.
    pub fn record(&self, record: UsageRecord) {
        match self.sender.try_send(Box::new(record)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Records dropped since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> UsageRecord {
        UsageRecord {
            timestamp: Utc::now(),
            request_id: id.into(),
            client_key: "key-1".into(),
            client_key_hash: String::new(),
            requested_model: "m".into(),
            upstream_model: "m".into(),
            provider: "claude".into(),
            auth_index: "a".into(),
            account: "claude-a.json".into(),
            endpoint: "/v1/messages".into(),
            dialect_in: "anthropic-messages".into(),
            dialect_out: "anthropic-messages".into(),
            stream: false,
            status: 200,
            latency_ms: 1,
            ttfb_ms: Some(1),
            tokens: Tokens::default(),
            attempts: 1,
            failure: None,
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        let (recorder, receiver) = Recorder::channel(2);
        for id in ["1", "2", "3", "4"] {
            recorder.record(record(id));
        }
        assert_eq!(recorder.dropped(), 2);
        let kept: Vec<_> = receiver.try_iter().map(|r| r.request_id).collect();
        assert_eq!(kept, ["1", "2"]);
    }

    #[test]
    fn without_a_store_every_record_counts_as_dropped() {
        let (recorder, receiver) = Recorder::channel(8);
        drop(receiver);
        recorder.record(record("1"));
        assert_eq!(recorder.dropped(), 1);
    }
}
