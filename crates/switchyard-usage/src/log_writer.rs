//! The process log in files: `main.log` in the log directory, rotated to
//! `main-<YYYY-MM-DDTHH-MM-SS>[.<n>].log` when it reaches [`MAX_FILE_BYTES`], with the directory's
//! total size capped by `logs-max-total-size-mb` (oldest files deleted first; `main.log` is
//! never deleted, only truncated by `DELETE /logs`).
//!
//! Log calls must never wait on the disk: each line goes through a bounded channel to one writer
//! thread; when the channel is full the line is dropped (and counted) instead of blocking.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, OnceLock};

use chrono::Local;

pub const MAIN_LOG: &str = "main.log";
/// `main.log` is rotated once it holds this much.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Lines waiting for the writer thread; more are dropped.
const CHANNEL_LINES: usize = 8192;

/// What can change while running (config hot reload): whether lines are written at all, and the cap.
#[derive(Default)]
pub struct FileLogSettings {
    enabled: AtomicBool,
    max_total_bytes: AtomicU64,
}

impl FileLogSettings {
    /// `logging-to-file` and `logs-max-total-size-mb` (0 = no cap).
    pub fn apply(&self, enabled: bool, max_total_mb: i64) {
        self.enabled.store(enabled, Ordering::Relaxed);
        self.max_total_bytes.store((max_total_mb.max(0) as u64).saturating_mul(1024 * 1024), Ordering::Relaxed);
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn max_total_bytes(&self) -> u64 {
        self.max_total_bytes.load(Ordering::Relaxed)
    }
}

/// The sending side; cheap to share. `line()` gives a writer for one log line.
pub struct LogFileWriter {
    sender: SyncSender<Vec<u8>>,
    settings: Arc<FileLogSettings>,
    dropped: AtomicU64,
}

impl LogFileWriter {
    /// Starts the writer thread for `dir` (created on the first line).
    pub fn spawn(dir: PathBuf, settings: Arc<FileLogSettings>, max_file_bytes: u64) -> io::Result<Arc<Self>> {
        let (sender, receiver) = sync_channel(CHANNEL_LINES);
        let thread_settings = settings.clone();
        std::thread::Builder::new()
            .name("switchyard-log-files".into())
            .spawn(move || write_loop(dir, receiver, thread_settings, max_file_bytes))?;
        Ok(Arc::new(Self { sender, settings, dropped: AtomicU64::new(0) }))
    }

    /// A writer for one formatted line; it sends what it collected when dropped.
    pub fn line(self: &Arc<Self>) -> LineWriter {
        LineWriter { owner: self.settings.enabled().then(|| self.clone()), buffer: Vec::new() }
    }

    /// Lines lost because the writer thread could not keep up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

pub struct LineWriter {
    owner: Option<Arc<LogFileWriter>>,
    buffer: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.owner.is_some() {
            self.buffer.extend_from_slice(bytes);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let Some(owner) = self.owner.take() else { return };
        if self.buffer.is_empty() {
            return;
        }
        match owner.sender.try_send(std::mem::take(&mut self.buffer)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                owner.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

fn open_main(dir: &Path) -> io::Result<File> {
    fs::create_dir_all(dir)?;
    OpenOptions::new().create(true).append(true).open(dir.join(MAIN_LOG))
}

fn write_loop(dir: PathBuf, lines: Receiver<Vec<u8>>, settings: Arc<FileLogSettings>, max_file_bytes: u64) {
    let mut file: Option<File> = None;
    let mut since_cap_check = 0u32;
    // Errors cannot be logged (that would loop back here); report each kind once on stderr.
    static REPORTED: OnceLock<()> = OnceLock::new();
    let report = |error: &io::Error| {
        if REPORTED.set(()).is_ok() {
            eprintln!("switchyard: cannot write log files in {}: {error}", dir.display());
        }
    };
    while let Ok(line) = lines.recv() {
        if file.is_none() {
            match open_main(&dir) {
                Ok(opened) => file = Some(opened),
                Err(error) => {
                    report(&error);
                    continue;
                }
            }
        }
        let Some(open) = file.as_mut() else { continue };
        if let Err(error) = open.write_all(&line) {
            report(&error);
            file = None;
            continue;
        }
        // The size is read back (not counted) because `DELETE /logs` truncates the file under us.
        let size = open.metadata().map(|m| m.len()).unwrap_or(0);
        since_cap_check = since_cap_check.saturating_add(1);
        let mut rotated = false;
        if size >= max_file_bytes {
            file = None;
            match rotate(&dir) {
                Ok(()) => rotated = true,
                Err(error) => report(&error),
            }
        }
        let cap = settings.max_total_bytes();
        if cap > 0 && (rotated || since_cap_check >= 256) {
            since_cap_check = 0;
            let _ = enforce_total_cap(&dir, cap);
        }
    }
}

/// Renames `main.log` to `main-<local time>[.<n>].log`.
fn rotate(dir: &Path) -> io::Result<()> {
    let stamp = Local::now().format("%Y-%m-%dT%H-%M-%S").to_string();
    let mut target = dir.join(format!("main-{stamp}.log"));
    let mut n = 1;
    while target.exists() {
        target = dir.join(format!("main-{stamp}.{n}.log"));
        n += 1;
    }
    fs::rename(dir.join(MAIN_LOG), target)
}

/// `main-<stamp>[.<n>].log` → its place in rotation order (older first).
pub fn rotation_key(name: &str) -> Option<(String, u32)> {
    let rest = name.strip_prefix("main-")?.strip_suffix(".log")?;
    let (stamp, n) = match rest.split_once('.') {
        Some((stamp, n)) => (stamp, n.parse().ok()?),
        None => (rest, 0),
    };
    chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%dT%H-%M-%S").ok()?;
    Some((stamp.to_owned(), n))
}

/// Deletes the oldest `*.log` files (by modification time; never `main.log`) until the directory's
/// `*.log` files total at most `cap` bytes. Returns how many were deleted.
pub fn enforce_total_cap(dir: &Path, cap: u64) -> io::Result<usize> {
    let mut files = Vec::new();
    let mut total = 0u64;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() || !name.ends_with(".log") {
            continue;
        }
        total += meta.len();
        if name != MAIN_LOG {
            files.push((meta.modified().ok(), name, meta.len()));
        }
    }
    files.sort();
    let mut deleted = 0;
    for (_, name, size) in files {
        if total <= cap {
            break;
        }
        if fs::remove_file(dir.join(&name)).is_ok() {
            total = total.saturating_sub(size);
            deleted += 1;
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_names_sort_by_stamp_then_number() {
        assert_eq!(rotation_key("main-2026-12-02T06-55-01.log"), Some(("2026-12-02T06-55-01".into(), 0)));
        assert_eq!(rotation_key("main-2026-12-02T06-55-01.2.log"), Some(("2026-12-02T06-55-01".into(), 2)));
        assert_eq!(rotation_key("main.log"), None);
        assert_eq!(rotation_key("main-garbage.log"), None);
        assert_eq!(rotation_key("error-v1-x.log"), None);
    }

    #[test]
    fn the_cap_deletes_the_oldest_files_but_never_main_log() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(MAIN_LOG), vec![b'x'; 400]).unwrap();
        for (i, name) in
            ["main-2026-01-01T00-00-00.log", "error-a.log", "main-2026-01-02T00-00-00.log"].iter().enumerate()
        {
            let path = dir.path().join(name);
            fs::write(&path, vec![b'y'; 300]).unwrap();
            let when = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000 + i as u64);
            File::options().write(true).open(&path).unwrap().set_modified(when).unwrap();
        }
        fs::write(dir.path().join("notes.txt"), vec![b'z'; 5000]).unwrap();
        assert_eq!(enforce_total_cap(dir.path(), 700).unwrap(), 2);
        let mut left: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, vec!["main-2026-01-02T00-00-00.log", "main.log", "notes.txt"]);
        // Even a cap below main.log's size keeps main.log.
        enforce_total_cap(dir.path(), 1).unwrap();
        assert!(dir.path().join(MAIN_LOG).exists());
    }

    #[test]
    fn lines_reach_main_log_and_a_full_file_is_rotated() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Arc::new(FileLogSettings::default());
        let writer = LogFileWriter::spawn(dir.path().join("logs"), settings.clone(), 64).unwrap();
        writer.line().write_all(b"dropped while disabled\n").unwrap();
        settings.apply(true, 0);
        for i in 0..5 {
            let mut line = writer.line();
            line.write_all(format!("line number {i:02} with some padding\n").as_bytes()).unwrap();
        }
        // Wait for the writer thread: five 31-byte lines at 64 bytes per file = two rotations.
        let logs = dir.path().join("logs");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let all = crate::log_reader::log_files(&logs).unwrap_or_default();
            let text: String = all.iter().map(|p| fs::read_to_string(p).unwrap_or_default()).collect();
            if text.contains("line number 04") {
                assert!(!text.contains("dropped while disabled"));
                assert_eq!(all.len(), 3, "{all:?}");
                assert!(all.last().unwrap().ends_with(MAIN_LOG));
                let order: Vec<usize> = (0..5).map(|i| text.find(&format!("number {i:02}")).unwrap()).collect();
                assert!(order.windows(2).all(|w| w[0] < w[1]), "files are listed oldest first");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "writer thread did not write");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
