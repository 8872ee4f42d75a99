//! One `.log` file per request in the log directory, as CPA keeps them: with `request-log: true`
//! every request is written as `<endpoint>-<time>-<request id>.log`; otherwise only failed ones,
//! as `error-<endpoint>-<time>-<request id>.log`, keeping the newest `error-logs-max-files`.
//! `GET /request-log-by-id/{id}` finds a file by its `-<id>.log` suffix. Callers hand in
//! already-redacted headers and scrubbed bodies; files are created 0600 (they hold prompts).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{DateTime, Utc};

/// Bodies are cut at this size in request logs.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// What a request log file holds.
#[derive(Debug, Default)]
pub struct RequestRecord {
    pub request_id: String,
    pub method: String,
    /// The request path, e.g. `/v1/chat/completions`.
    pub endpoint: String,
    pub started: Option<DateTime<Utc>>,
    /// Redacted.
    pub request_headers: Vec<(String, String)>,
    /// Scrubbed, at most [`MAX_BODY_BYTES`].
    pub request_body: Vec<u8>,
    pub status: u16,
    pub provider: String,
    pub auth_index: String,
    pub model: String,
    pub upstream_model: String,
    pub attempts: u32,
    pub latency_ms: u64,
    /// What was relayed to the client (scrubbed), at most [`MAX_BODY_BYTES`].
    pub response_body: Vec<u8>,
    pub error: Option<String>,
}

impl RequestRecord {
    pub fn failed(&self) -> bool {
        self.status >= 400 || self.error.is_some()
    }

    fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let started = self.started.map(|t| t.to_rfc3339()).unwrap_or_default();
        let _ = writeln!(out, "=== REQUEST INFO ===");
        let _ = writeln!(out, "Request ID: {}", self.request_id);
        let _ = writeln!(out, "Time: {started}");
        let _ = writeln!(out, "Method: {}", self.method);
        let _ = writeln!(out, "URL: {}", self.endpoint);
        let _ = writeln!(out, "\n=== REQUEST HEADERS ===");
        for (name, value) in &self.request_headers {
            let _ = writeln!(out, "{name}: {value}");
        }
        let _ = writeln!(out, "\n=== REQUEST BODY ===");
        out.extend_from_slice(&self.request_body);
        let _ = writeln!(out, "\n\n=== UPSTREAM ===");
        let _ = writeln!(out, "Provider: {}", self.provider);
        let _ = writeln!(out, "Auth index: {}", self.auth_index);
        let _ = writeln!(out, "Model: {} -> {}", self.model, self.upstream_model);
        let _ = writeln!(out, "Attempts: {}", self.attempts);
        let _ = writeln!(out, "\n=== RESPONSE ===");
        let _ = writeln!(out, "Status: {}", self.status);
        let _ = writeln!(out, "Latency: {} ms", self.latency_ms);
        if let Some(error) = &self.error {
            let _ = writeln!(out, "Error: {error}");
        }
        let _ = writeln!(out, "\n=== RESPONSE BODY ===");
        out.extend_from_slice(&self.response_body);
        out.push(b'\n');
        out
    }
}

/// Appends to `buffer` what still fits under [`MAX_BODY_BYTES`].
pub fn capped_extend(buffer: &mut Vec<u8>, bytes: &[u8]) {
    let room = MAX_BODY_BYTES.saturating_sub(buffer.len());
    buffer.extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// `/v1/chat/completions` → `v1-chat-completions` (only `[A-Za-z0-9-]`).
fn endpoint_slug(endpoint: &str) -> String {
    let slug: String =
        endpoint.trim_matches('/').chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect();
    let slug = slug.split('-').filter(|s| !s.is_empty()).collect::<Vec<_>>().join("-");
    if slug.is_empty() { "request".into() } else { slug.chars().take(80).collect() }
}

/// A request id is ours (hex) but is checked anyway before it becomes part of a file name.
fn safe_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 128 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Writes the record if the settings ask for it; returns the file's name.
pub fn write(
    dir: &Path,
    record: &RequestRecord,
    request_log: bool,
    error_logs_max_files: usize,
) -> io::Result<Option<String>> {
    let failed = record.failed();
    if !(request_log || (failed && error_logs_max_files > 0)) || !safe_id(&record.request_id) {
        return Ok(None);
    }
    fs::create_dir_all(dir)?;
    let stamp = record.started.unwrap_or_else(Utc::now).format("%Y-%m-%dT%H%M%S");
    let prefix = if request_log { "" } else { "error-" };
    let name = format!("{prefix}{}-{stamp}-{}.log", endpoint_slug(&record.endpoint), record.request_id);
    let mut file = OpenOptions::new().create(true).write(true).truncate(true).mode(0o600).open(dir.join(&name))?;
    file.write_all(&record.render())?;
    if !request_log {
        trim_error_logs(dir, error_logs_max_files)?;
    }
    Ok(Some(name))
}

/// `error-*.log`.
pub fn is_error_log(name: &str) -> bool {
    name.starts_with("error-") && name.ends_with(".log")
}

pub struct ErrorLogFile {
    pub name: String,
    pub size: u64,
    /// Unix seconds.
    pub modified: i64,
}

/// The `error-*.log` files, newest first.
pub fn error_logs(dir: &Path) -> io::Result<Vec<ErrorLogFile>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let meta = entry.metadata()?;
        if !meta.is_file() || !is_error_log(&name) {
            continue;
        }
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let modified = modified.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        files.push(ErrorLogFile { name, size: meta.len(), modified });
    }
    files.sort_by(|a, b| b.modified.cmp(&a.modified).then_with(|| b.name.cmp(&a.name)));
    Ok(files)
}

fn trim_error_logs(dir: &Path, keep: usize) -> io::Result<()> {
    for old in error_logs(dir)?.into_iter().skip(keep) {
        let _ = fs::remove_file(dir.join(old.name));
    }
    Ok(())
}

/// Why a file name from a URL is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum NameError {
    /// Empty, a path separator, `..`, or a control character: 400.
    Invalid,
    /// Not an `error-*.log` name: 404, as CPA answers.
    NotAnErrorLog,
}

/// The path of the error log `name`, which must be a bare `error-*.log` name.
pub fn error_log_path(dir: &Path, name: &str) -> Result<PathBuf, NameError> {
    if name.is_empty() || name.contains(['/', '\\']) || name.contains("..") || name.chars().any(char::is_control) {
        return Err(NameError::Invalid);
    }
    if !is_error_log(name) {
        return Err(NameError::NotAnErrorLog);
    }
    Ok(dir.join(name))
}

/// The request log (or error log) of request `id`, if one was written.
pub fn find_by_id(dir: &Path, id: &str) -> Result<Option<PathBuf>, NameError> {
    if !safe_id(id) {
        return Err(NameError::Invalid);
    }
    let suffix = format!("-{id}.log");
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(_) => return Ok(None),
    };
    Ok(entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|name| name.ends_with(&suffix))
        .map(|name| dir.join(name)))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn record(id: &str, status: u16) -> RequestRecord {
        RequestRecord {
            request_id: id.into(),
            method: "POST".into(),
            endpoint: "/v1/chat/completions".into(),
            status,
            ..Default::default()
        }
    }

    #[test]
    fn failures_are_kept_as_error_logs_up_to_the_limit_and_found_by_id() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(write(dir.path(), &record("ok1", 200), false, 2).unwrap(), None, "successes only with request-log");
        for id in ["e1", "e2", "e3"] {
            let name = write(dir.path(), &record(id, 502), false, 2).unwrap().unwrap();
            assert!(name.starts_with("error-v1-chat-completions-") && name.ends_with(&format!("-{id}.log")), "{name}");
            let mode = fs::metadata(dir.path().join(&name)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<String> = error_logs(dir.path()).unwrap().into_iter().map(|f| f.name).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(find_by_id(dir.path(), "e3").unwrap().is_some());
        assert_eq!(find_by_id(dir.path(), "../x"), Err(NameError::Invalid));

        let all = write(dir.path(), &record("ok2", 200), true, 2).unwrap().unwrap();
        assert!(all.starts_with("v1-chat-completions-"), "{all}");
        assert!(find_by_id(dir.path(), "ok2").unwrap().unwrap().ends_with(&all));
    }

    #[test]
    fn error_log_names_are_checked() {
        let dir = Path::new("/logs");
        assert_eq!(error_log_path(dir, "error-a.log"), Ok(dir.join("error-a.log")));
        for bad in ["", "../error-a.log", "error-a.log/..", "a\\b", "error-..log"] {
            assert_eq!(error_log_path(dir, bad), Err(NameError::Invalid), "{bad}");
        }
        assert_eq!(error_log_path(dir, "main.log"), Err(NameError::NotAnErrorLog));
    }
}
