//! The usage queue (CPA's `usage` list): one JSON record per finished request, waiting for a
//! collector to pop it (`GET /usage-queue?count=N`). In memory, bounded (the oldest record goes
//! when full), and a record expires after `redis-usage-queue-retention-seconds`.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Records held at most; a collector that stops polling costs at most this much memory.
pub const DEFAULT_CAPACITY: usize = 10_000;

pub struct UsageQueue {
    items: Mutex<VecDeque<(Instant, Value)>>,
    capacity: usize,
}

impl Default for UsageQueue {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl UsageQueue {
    pub fn with_capacity(capacity: usize) -> Self {
        Self { items: Mutex::new(VecDeque::new()), capacity: capacity.max(1) }
    }

    pub fn push(&self, record: Value, now: Instant) {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        while items.len() >= self.capacity {
            items.pop_front();
        }
        items.push_back((now, record));
    }

    /// Removes and returns up to `count` of the oldest records still within `retention`.
    pub fn pop(&self, count: usize, retention: Duration, now: Instant) -> Vec<Value> {
        let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
        while items.front().is_some_and(|(at, _)| now.saturating_duration_since(*at) > retention) {
            items.pop_front();
        }
        let n = count.min(items.len());
        items.drain(..n).map(|(_, record)| record).collect()
    }

    pub fn clear(&self) {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    pub fn len(&self) -> usize {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn pops_oldest_first_drops_the_oldest_when_full_and_expires_old_records() {
        let queue = UsageQueue::with_capacity(3);
        let t0 = Instant::now();
        for i in 0..4 {
            queue.push(json!({"n": i}), t0 + Duration::from_secs(i));
        }
        assert_eq!(queue.len(), 3, "the first record made room");
        let retention = Duration::from_secs(60);
        assert_eq!(queue.pop(2, retention, t0 + Duration::from_secs(4)), vec![json!({"n": 1}), json!({"n": 2})]);
        assert_eq!(queue.pop(5, retention, t0 + Duration::from_secs(4)), vec![json!({"n": 3})]);
        assert!(queue.pop(1, retention, t0).is_empty());

        queue.push(json!({"n": "old"}), t0);
        queue.push(json!({"n": "new"}), t0 + Duration::from_secs(50));
        // 61 s after the first push only the second record is within the 60 s retention.
        assert_eq!(queue.pop(10, retention, t0 + Duration::from_secs(61)), vec![json!({"n": "new"})]);
    }
}
