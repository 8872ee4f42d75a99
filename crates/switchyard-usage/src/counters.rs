//! Per-account `success` / `failed` counters since process start, and a ring of 20 ten-minute
//! buckets (`recent_requests`), keyed by CPA's `auth_index`. Buckets are aligned to wall-clock
//! ten-minute windows (unix time / 600) and labelled `HH:MM-HH:MM` in local time, as CPA shows them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Local};
use serde::Serialize;

pub const BUCKET_COUNT: usize = 20;
pub const BUCKET_SECONDS: i64 = 600;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Bucket {
    pub time: String,
    pub success: u64,
    pub failed: u64,
}

/// One account's counts as the panels read them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CounterSnapshot {
    pub success: u64,
    pub failed: u64,
    /// Oldest first, the current window last.
    pub recent_requests: Vec<Bucket>,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    window: i64,
    success: u64,
    failed: u64,
}

#[derive(Default)]
struct Ring {
    success: u64,
    failed: u64,
    slots: [Slot; BUCKET_COUNT],
}

impl Ring {
    fn count_in_window(&mut self, window: i64, success: bool) {
        let slot = &mut self.slots[window.rem_euclid(BUCKET_COUNT as i64) as usize];
        if slot.window != window {
            if slot.window > window {
                // An older outcome whose slot a newer window already holds: it has aged out.
                return;
            }
            *slot = Slot { window, success: 0, failed: 0 };
        }
        if success {
            slot.success += 1;
        } else {
            slot.failed += 1;
        }
    }
}

#[derive(Default)]
pub struct AccountCounters {
    accounts: Mutex<HashMap<String, Ring>>,
    /// The 20 labels of the windows up to the current one: the same for every account, and a
    /// listing of thousands of accounts spent its time formatting local times otherwise.
    labels: Mutex<Option<(i64, Arc<Vec<String>>)>>,
}

fn window_of(time: SystemTime) -> i64 {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    seconds / BUCKET_SECONDS
}

fn label(window: i64) -> String {
    let start = DateTime::from_timestamp(window * BUCKET_SECONDS, 0).unwrap_or_default().with_timezone(&Local);
    let end = start + chrono::Duration::seconds(BUCKET_SECONDS);
    format!("{}-{}", start.format("%H:%M"), end.format("%H:%M"))
}

impl AccountCounters {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one finished attempt of the account `auth_index` (blank ids are not counted).
    pub fn record(&self, auth_index: &str, success: bool, now: SystemTime) {
        if auth_index.is_empty() {
            return;
        }
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let ring = accounts.entry(auth_index.to_owned()).or_default();
        ring.count_in_window(window_of(now), success);
        if success {
            ring.success += 1;
        } else {
            ring.failed += 1;
        }
    }

    /// Starts an account from its history (after a restart): all-time totals, and the outcomes
    /// of recent requests, oldest first, for the ten-minute windows.
    pub fn seed(&self, auth_index: &str, totals: (u64, u64), recent: &[(SystemTime, bool)]) {
        if auth_index.is_empty() {
            return;
        }
        let mut accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let ring = accounts.entry(auth_index.to_owned()).or_default();
        ring.success += totals.0;
        ring.failed += totals.1;
        for (time, success) in recent {
            ring.count_in_window(window_of(*time), *success);
        }
    }

    /// Labels of the [`BUCKET_COUNT`] windows ending with `current`, oldest first.
    fn labels(&self, current: i64) -> Arc<Vec<String>> {
        let mut cached = self.labels.lock().unwrap_or_else(|e| e.into_inner());
        match &*cached {
            Some((window, labels)) if *window == current => labels.clone(),
            _ => {
                let labels: Arc<Vec<String>> =
                    Arc::new((0..BUCKET_COUNT as i64).rev().map(|back| label(current - back)).collect());
                *cached = Some((current, labels.clone()));
                labels
            }
        }
    }

    /// The account's counts, with zeros for an account that served nothing yet.
    pub fn snapshot(&self, auth_index: &str, now: SystemTime) -> CounterSnapshot {
        let current = window_of(now);
        let labels = self.labels(current);
        let accounts = self.accounts.lock().unwrap_or_else(|e| e.into_inner());
        let ring = accounts.get(auth_index);
        let recent_requests = (0..BUCKET_COUNT as i64)
            .rev()
            .zip(labels.iter())
            .map(|(back, time)| {
                let window = current - back;
                let slot = ring
                    .map(|r| r.slots[window.rem_euclid(BUCKET_COUNT as i64) as usize])
                    .filter(|s| s.window == window)
                    .unwrap_or_default();
                Bucket { time: time.clone(), success: slot.success, failed: slot.failed }
            })
            .collect();
        CounterSnapshot {
            success: ring.map_or(0, |r| r.success),
            failed: ring.map_or(0, |r| r.failed),
            recent_requests,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn cached_labels_follow_the_current_window() {
        let counters = AccountCounters::new();
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000 / 600 * 600);
        for now in [start, start + Duration::from_secs(599), start + Duration::from_secs(600), start] {
            let labels: Vec<String> = counters.snapshot("a", now).recent_requests.into_iter().map(|b| b.time).collect();
            let current = window_of(now);
            let expected: Vec<String> = (0..BUCKET_COUNT as i64).rev().map(|back| label(current - back)).collect();
            assert_eq!(labels, expected, "at {now:?}");
        }
    }

    #[test]
    fn counts_land_in_their_ten_minute_window_and_age_out_after_twenty() {
        let counters = AccountCounters::new();
        let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000 / 600 * 600);
        counters.record("a", true, start);
        counters.record("a", false, start + Duration::from_secs(599));
        counters.record("a", true, start + Duration::from_secs(600));
        counters.record("", true, start);

        let now = start + Duration::from_secs(600);
        let snap = counters.snapshot("a", now);
        assert_eq!((snap.success, snap.failed), (2, 1));
        assert_eq!(snap.recent_requests.len(), BUCKET_COUNT);
        let last = &snap.recent_requests[19];
        let before = &snap.recent_requests[18];
        assert_eq!((last.success, last.failed), (1, 0));
        assert_eq!((before.success, before.failed), (1, 1));
        assert_eq!(last.time, label(window_of(now)));
        assert_eq!(last.time.len(), "HH:MM-HH:MM".len());

        // Twenty windows later the first window has left the ring; the totals stay.
        let later = start + Duration::from_secs(600 * 20);
        let snap = counters.snapshot("a", later);
        assert_eq!(snap.recent_requests.iter().map(|b| b.success + b.failed).sum::<u64>(), 1);
        assert_eq!((snap.success, snap.failed), (2, 1));
        // A slot reused by a newer window starts from zero.
        counters.record("a", false, later);
        let snap = counters.snapshot("a", later);
        assert_eq!((snap.recent_requests[19].success, snap.recent_requests[19].failed), (0, 1));

        let none = counters.snapshot("unknown", now);
        assert_eq!((none.success, none.failed), (0, 0));

        // Seeding after a restart: totals as given, recent outcomes in their windows.
        let seeded = AccountCounters::new();
        seeded.seed("b", (40, 2), &[(start, true), (start + Duration::from_secs(600), false)]);
        let snap = seeded.snapshot("b", now);
        assert_eq!((snap.success, snap.failed), (40, 2));
        assert_eq!((snap.recent_requests[18].success, snap.recent_requests[19].failed), (1, 1));
        assert_eq!((none.success, none.failed), (0, 0));
        assert!(none.recent_requests.iter().all(|b| b.success == 0 && b.failed == 0));
    }
}
