//! The writer thread: records arrive through the queue and are committed in batches (whatever
//! came within [`BATCH_WINDOW`], at most [`BATCH_MAX`] per transaction), so a burst costs one
//! fsync per batch rather than per request. Every [`RETENTION_EVERY`] it deletes records past the
//! age limit and, oldest first, whatever makes the file exceed its size cap.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

use rusqlite::{Connection, params};

use super::{StoreSettings, WriterStats};
use crate::records::{RecordReceiver, UsageRecord};

const BATCH_WINDOW: Duration = Duration::from_millis(200);
const BATCH_MAX: usize = 1_000;
/// How often a batch being filled takes what arrived.
const POLL_STEP: Duration = Duration::from_millis(20);
const RETENTION_EVERY: Duration = Duration::from_secs(60);

pub fn run(conn: Connection, records: RecordReceiver, stats: Arc<WriterStats>, settings: impl Fn() -> StoreSettings) {
    let mut last_retention: Option<Instant> = None;
    let mut open = true;
    while open {
        let mut batch = Vec::new();
        match records.recv_timeout(RETENTION_EVERY) {
            Ok(first) => batch.push(*first),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => open = false,
        }
        if !batch.is_empty() {
            // Drain what is queued every POLL_STEP instead of blocking on each record: waking this
            // thread once per record cost more CPU than the insert itself (and a request thread's
            // wake-up call each time).
            let deadline = Instant::now() + BATCH_WINDOW;
            'fill: loop {
                while batch.len() < BATCH_MAX {
                    match records.try_recv() {
                        Ok(record) => batch.push(*record),
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => {
                            open = false;
                            break 'fill;
                        }
                    }
                }
                let left = deadline.saturating_duration_since(Instant::now());
                if batch.len() >= BATCH_MAX || left.is_zero() {
                    break;
                }
                std::thread::sleep(left.min(POLL_STEP));
            }
            match insert(&conn, &batch) {
                Ok(()) => stats.written.fetch_add(batch.len() as u64, Ordering::Relaxed),
                Err(error) => {
                    tracing::warn!(%error, records = batch.len(), "could not store usage records");
                    stats.failed.fetch_add(batch.len() as u64, Ordering::Relaxed)
                }
            };
        }
        if last_retention.is_none_or(|at| at.elapsed() >= RETENTION_EVERY) {
            last_retention = Some(Instant::now());
            match apply_retention(&conn, &settings(), chrono::Utc::now().timestamp_millis()) {
                Ok(trimmed) => {
                    stats.trimmed.fetch_add(trimmed, Ordering::Relaxed);
                }
                Err(error) => tracing::warn!(%error, "usage store retention failed"),
            }
        }
    }
}

pub fn insert(conn: &Connection, batch: &[UsageRecord]) -> rusqlite::Result<()> {
    let tx = conn.unchecked_transaction()?;
    {
        let mut statement = tx.prepare_cached(&format!(
            "INSERT INTO requests ({}) VALUES ({})",
            super::schema::COLUMNS.join(", "),
            vec!["?"; super::schema::COLUMNS.len()].join(", ")
        ))?;
        for r in batch {
            statement.execute(params![
                r.timestamp.timestamp_millis(),
                r.request_id,
                r.client_key,
                r.client_key_hash,
                r.requested_model,
                r.upstream_model,
                r.provider,
                r.auth_index,
                r.account,
                r.endpoint,
                r.dialect_in,
                r.dialect_out,
                r.stream,
                r.status,
                r.failed(),
                r.latency_ms as i64,
                r.ttfb_ms.map(|t| t as i64),
                r.tokens.input as i64,
                r.tokens.output as i64,
                r.tokens.cached as i64,
                r.tokens.cache_creation as i64,
                r.tokens.reasoning as i64,
                r.tokens.estimated,
                r.attempts,
                r.failure,
            ])?;
        }
    }
    tx.commit()
}

fn used_bytes(conn: &Connection) -> rusqlite::Result<u64> {
    let pages: i64 = conn.query_row("PRAGMA page_count", [], |row| row.get(0))?;
    let free: i64 = conn.query_row("PRAGMA freelist_count", [], |row| row.get(0))?;
    let size: i64 = conn.query_row("PRAGMA page_size", [], |row| row.get(0))?;
    Ok(((pages - free).max(0) * size) as u64)
}

/// Deletes records older than the age limit, then the oldest tenth at a time while the used
/// pages exceed the size cap; returns how many went.
pub fn apply_retention(conn: &Connection, settings: &StoreSettings, now_ms: i64) -> rusqlite::Result<u64> {
    let mut trimmed = 0u64;
    if settings.retention_days > 0 {
        let cutoff = now_ms - i64::from(settings.retention_days) * 86_400_000;
        trimmed += conn.execute("DELETE FROM requests WHERE ts_ms < ?", [cutoff])? as u64;
    }
    if settings.max_size_mb > 0 {
        let cap = settings.max_size_mb * 1024 * 1024;
        while used_bytes(conn)? > cap {
            let count: i64 = conn.query_row("SELECT COUNT(*) FROM requests", [], |row| row.get(0))?;
            if count == 0 {
                break;
            }
            let chunk = (count / 10).max(1);
            trimmed += conn
                .execute("DELETE FROM requests WHERE id IN (SELECT id FROM requests ORDER BY id LIMIT ?)", [chunk])?
                as u64;
        }
    }
    if trimmed > 0 {
        // Free pages go back to the OS only once the WAL is checkpointed into the file.
        // Each step of this pragma frees some pages: run it to the end.
        let mut vacuum = conn.prepare("PRAGMA incremental_vacuum")?;
        let mut steps = vacuum.query([])?;
        while steps.next()?.is_some() {}
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    }
    Ok(trimmed)
}
