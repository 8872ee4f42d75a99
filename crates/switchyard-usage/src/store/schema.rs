//! The database layout and its versions (`PRAGMA user_version`); [`migrate`] brings any older
//! file up to the newest step by step.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// The columns of `requests` after `id`, in insert order (export and rows read them by name).
pub const COLUMNS: &[&str] = &[
    "ts_ms",
    "request_id",
    "client_key",
    "client_key_hash",
    "requested_model",
    "upstream_model",
    "provider",
    "auth_index",
    "account",
    "endpoint",
    "dialect_in",
    "dialect_out",
    "stream",
    "status",
    "failed",
    "latency_ms",
    "ttfb_ms",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cache_creation_tokens",
    "reasoning_tokens",
    "tokens_estimated",
    "attempts",
    "failure",
];

const V1: &str = "
CREATE TABLE requests (
    id INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    client_key TEXT NOT NULL,
    client_key_hash TEXT NOT NULL,
    requested_model TEXT NOT NULL,
    upstream_model TEXT NOT NULL,
    provider TEXT NOT NULL,
    auth_index TEXT NOT NULL,
    account TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    dialect_in TEXT NOT NULL,
    dialect_out TEXT NOT NULL,
    stream INTEGER NOT NULL,
    status INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    latency_ms INTEGER NOT NULL,
    ttfb_ms INTEGER,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cache_creation_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    tokens_estimated INTEGER NOT NULL,
    attempts INTEGER NOT NULL,
    failure TEXT
);
CREATE INDEX requests_ts ON requests (ts_ms);
CREATE INDEX requests_account ON requests (auth_index, ts_ms);
CREATE INDEX requests_provider ON requests (provider, ts_ms);
CREATE INDEX requests_model ON requests (requested_model, ts_ms);
CREATE INDEX requests_client_key ON requests (client_key_hash, ts_ms);
CREATE INDEX requests_status ON requests (status, ts_ms);
";

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

/// Opens the file read-write, checks it is a healthy database and brings its schema up to date.
pub fn open_checked(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // Only takes effect on a new, empty file: lets retention give pages back to the OS.
    conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    configure(&conn)?;
    let check: String = conn.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    if check != "ok" {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
            Some(check),
        ));
    }
    migrate(&conn)?;
    Ok(conn)
}

pub fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    Ok(conn)
}

/// Applies every step after the file's `user_version`. A file from a newer Switchyard is left
/// alone (its extra columns do not disturb ours).
pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if version < 1 {
        conn.execute_batch(&format!("BEGIN; {V1} PRAGMA user_version = 1; COMMIT;"))?;
    }
    Ok(())
}
