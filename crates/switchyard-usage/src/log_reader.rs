//! `GET /logs` pages over the log files (CPA's semantics): without a cursor, the last `limit`
//! lines (or, with `after`, the lines stamped later than that unix time); with the `next-cursor`
//! of an earlier page, the complete lines written since. A cursor names a file, a byte offset
//! and a fingerprint of the bytes before it, so it survives rotation (the rotated file still
//! matches) and is answered with `cursor-reset` and a fresh tail when the logs were cleared.

use std::collections::VecDeque;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::log_writer::{MAIN_LOG, rotation_key};

/// However many lines were asked for, one page holds at most this many.
pub const MAX_LINES: usize = 100_000;
const FINGERPRINT_BYTES: u64 = 4096;

#[derive(Debug, Default, PartialEq, Serialize)]
pub struct LogPage {
    pub lines: Vec<String>,
    #[serde(rename = "line-count")]
    pub line_count: usize,
    /// Unix seconds of the newest stamped line seen (or the request's `after`).
    #[serde(rename = "latest-timestamp")]
    pub latest_timestamp: i64,
    #[serde(rename = "next-cursor")]
    pub next_cursor: String,
    #[serde(rename = "cursor-reset", skip_serializing_if = "std::ops::Not::not")]
    pub cursor_reset: bool,
}

#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    v: u32,
    file: String,
    offset: u64,
    latest: i64,
    fp: String,
}

/// `main-*.log` oldest first, then `main.log`.
pub fn log_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut rotated = Vec::new();
    let mut main = None;
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name == MAIN_LOG {
            main = Some(dir.join(&name));
        } else if let Some(key) = rotation_key(&name) {
            rotated.push((key, dir.join(&name)));
        }
    }
    rotated.sort();
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, path)| path).collect();
    files.extend(main);
    Ok(files)
}

/// Unix seconds of a line's stamp: a JSON line's `timestamp`, a leading RFC 3339 stamp (our text
/// format), or CPA's `[YYYY-MM-DD HH:MM:SS]` in local time.
pub fn line_timestamp(line: &str) -> Option<i64> {
    if line.starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        let stamp = value.get("timestamp")?.as_str()?;
        return chrono::DateTime::parse_from_rfc3339(stamp).ok().map(|t| t.timestamp());
    }
    let first = line.split_whitespace().next()?;
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(first) {
        return Some(t.timestamp());
    }
    let bracketed = line.strip_prefix('[')?.get(..19)?;
    let naive = chrono::NaiveDateTime::parse_from_str(bracketed, "%Y-%m-%d %H:%M:%S").ok()?;
    naive.and_local_timezone(chrono::Local).single().map(|t| t.timestamp())
}

/// Where the last complete line of `path` ends.
fn complete_end(path: &Path) -> io::Result<u64> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut pos = size;
    let mut buf = vec![0u8; 32 * 1024];
    while pos > 0 {
        let chunk = (buf.len() as u64).min(pos);
        pos -= chunk;
        file.seek(SeekFrom::Start(pos))?;
        file.read_exact(&mut buf[..chunk as usize])?;
        if let Some(i) = buf[..chunk as usize].iter().rposition(|b| *b == b'\n') {
            return Ok(pos + i as u64 + 1);
        }
    }
    Ok(0)
}

fn fingerprint(path: &Path, offset: u64) -> io::Result<String> {
    let mut file = File::open(path)?;
    if file.metadata()?.len() < offset {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "file shorter than the cursor"));
    }
    let mut hash = Sha256::new();
    hash.update(offset.to_le_bytes());
    let head = offset.min(FINGERPRINT_BYTES);
    let mut buf = vec![0u8; head as usize];
    file.read_exact(&mut buf)?;
    hash.update(&buf);
    let tail_start = offset - offset.min(FINGERPRINT_BYTES);
    file.seek(SeekFrom::Start(tail_start))?;
    let mut buf = vec![0u8; (offset - tail_start) as usize];
    file.read_exact(&mut buf)?;
    hash.update(&buf);
    Ok(hex::encode(&hash.finalize()[..12]))
}

fn encode_cursor(path: &Path, offset: u64, latest: i64) -> io::Result<String> {
    let file = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let cursor = Cursor { v: 1, file, offset, latest, fp: fingerprint(path, offset)? };
    Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&cursor).unwrap_or_default()))
}

fn decode_cursor(raw: &str) -> Option<Cursor> {
    let bytes = URL_SAFE_NO_PAD.decode(raw.trim().trim_end_matches('=')).ok()?;
    let cursor: Cursor = serde_json::from_slice(&bytes).ok()?;
    let allowed = cursor.file == MAIN_LOG || rotation_key(&cursor.file).is_some();
    (cursor.v == 1 && allowed).then_some(cursor)
}

/// Complete lines of `path` from `offset`, at most `limit`; returns them and the end offset.
fn lines_from(path: &Path, offset: u64, limit: usize) -> io::Result<(Vec<String>, u64)> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::new(file);
    let mut lines = Vec::new();
    let mut end = offset;
    let mut raw = Vec::new();
    while lines.len() < limit {
        raw.clear();
        let n = reader.read_until(b'\n', &mut raw)?;
        if n == 0 || raw.last() != Some(&b'\n') {
            break; // end of file, or a line still being written
        }
        end += n as u64;
        let text = String::from_utf8_lossy(&raw);
        lines.push(text.trim_end_matches(['\n', '\r']).to_owned());
    }
    Ok((lines, end))
}

/// Calls `each` with every complete line of `path`, streaming (memory stays one line).
fn for_each_line(path: &Path, mut each: impl FnMut(String)) -> io::Result<()> {
    // A file rotated away or deleted by the size cap since the listing has no lines now.
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error),
    };
    let mut reader = BufReader::new(file);
    let mut raw = Vec::new();
    loop {
        raw.clear();
        if reader.read_until(b'\n', &mut raw)? == 0 || raw.last() != Some(&b'\n') {
            return Ok(());
        }
        each(String::from_utf8_lossy(&raw).trim_end_matches(['\n', '\r']).to_owned());
    }
}

/// Keeps the last `limit` lines pushed.
fn keep_last(lines: &mut VecDeque<String>, line: String, limit: usize) {
    lines.push_back(line);
    if lines.len() > limit {
        lines.pop_front();
    }
}

fn latest_of(lines: &[String], floor: i64) -> i64 {
    lines.iter().filter_map(|l| line_timestamp(l)).fold(floor, i64::max)
}

/// The cursor for "everything up to now": the end of the newest file's complete lines.
fn end_cursor(files: &[PathBuf], latest: i64) -> io::Result<String> {
    let Some(path) = files.last() else { return Ok(String::new()) };
    match complete_end(path).and_then(|end| encode_cursor(path, end, latest)) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        other => other,
    }
}

/// One page. `limit` 0 = no limit (up to [`MAX_LINES`]); `after` 0 = no cut-off.
pub fn read_page(dir: &Path, limit: usize, after: i64, cursor: Option<&str>) -> io::Result<LogPage> {
    let limit = if limit == 0 { MAX_LINES } else { limit.min(MAX_LINES) };
    let files = match log_files(dir) {
        Ok(files) => files,
        Err(error) if error.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error),
    };
    if let Some(raw) = cursor.filter(|c| !c.trim().is_empty()) {
        return match decode_cursor(raw).and_then(|c| locate(&files, &c).map(|i| (c, i))) {
            Some((cursor, index)) => follow(&files, &cursor, index, limit),
            None => {
                let mut page = tail(&files, limit, after)?;
                page.cursor_reset = true;
                Ok(page)
            }
        };
    }
    if after == 0 {
        return tail(&files, limit, 0);
    }
    // Lines stamped after `after`; an unstamped line goes with the stamped line before it.
    let mut lines = VecDeque::new();
    let mut total = 0;
    let mut latest = after;
    let mut include = false;
    for path in &files {
        for_each_line(path, |line| {
            total += 1;
            if let Some(stamp) = line_timestamp(&line) {
                latest = latest.max(stamp);
                include = stamp > after;
            }
            if include {
                keep_last(&mut lines, line, limit);
            }
        })?;
    }
    Ok(LogPage {
        lines: Vec::from(lines),
        line_count: total,
        latest_timestamp: latest,
        next_cursor: end_cursor(&files, latest)?,
        cursor_reset: false,
    })
}

fn tail(files: &[PathBuf], limit: usize, floor: i64) -> io::Result<LogPage> {
    let mut kept = VecDeque::new();
    let mut total = 0;
    for path in files {
        for_each_line(path, |line| {
            total += 1;
            keep_last(&mut kept, line, limit);
        })?;
    }
    let lines = Vec::from(kept);
    let latest = latest_of(&lines, floor);
    Ok(LogPage {
        lines,
        line_count: total,
        latest_timestamp: latest,
        next_cursor: end_cursor(files, latest)?,
        cursor_reset: false,
    })
}

/// The file the cursor points into: its own file if the bytes before the offset are unchanged,
/// else (after a rotation of `main.log`) the rotated file holding those bytes.
fn locate(files: &[PathBuf], cursor: &Cursor) -> Option<usize> {
    let matches = |path: &Path| fingerprint(path, cursor.offset).is_ok_and(|fp| fp == cursor.fp);
    let named = files.iter().position(|p| p.file_name().is_some_and(|n| n.to_string_lossy() == cursor.file));
    if let Some(i) = named.filter(|i| matches(&files[*i])) {
        return Some(i);
    }
    if cursor.file != MAIN_LOG || cursor.offset == 0 {
        return None;
    }
    files.iter().position(|p| p.file_name().is_some_and(|n| n != MAIN_LOG) && matches(p))
}

fn follow(files: &[PathBuf], cursor: &Cursor, start: usize, limit: usize) -> io::Result<LogPage> {
    let mut lines = Vec::new();
    let mut at = (start, cursor.offset);
    for (i, path) in files.iter().enumerate().skip(start) {
        if lines.len() >= limit {
            break;
        }
        let offset = if i == start { cursor.offset } else { 0 };
        let (mut read, end) = lines_from(path, offset, limit - lines.len())?;
        if !read.is_empty() || i == start {
            at = (i, end);
        }
        lines.append(&mut read);
    }
    let latest = latest_of(&lines, cursor.latest);
    let next_cursor = encode_cursor(&files[at.0], at.1, latest)?;
    Ok(LogPage { line_count: lines.len(), lines, latest_timestamp: latest, next_cursor, cursor_reset: false })
}

/// `DELETE /logs`: truncates `main.log` (the writer keeps appending to it) and deletes the
/// rotated files. Returns how many were deleted.
pub fn clear(dir: &Path) -> io::Result<usize> {
    let files = match log_files(dir) {
        Ok(files) => files,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error),
    };
    let mut removed = 0;
    for path in files {
        if path.file_name().is_some_and(|n| n == MAIN_LOG) {
            File::options().write(true).open(&path)?.set_len(0)?;
        } else {
            fs::remove_file(&path)?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn line(n: usize) -> String {
        format!("{{\"timestamp\":\"2026-12-02T06:00:{:02}Z\",\"level\":\"INFO\",\"message\":\"line {n}\"}}\n", n % 60)
    }

    fn append(path: &Path, text: &str) {
        File::options().create(true).append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn tail_then_cursor_follows_new_lines_across_a_rotation_and_resets_after_clear() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join(MAIN_LOG);
        for n in 0..5 {
            append(&main, &line(n));
        }
        append(&main, "partial line without newline");
        let page = read_page(dir.path(), 2, 0, None).unwrap();
        assert_eq!(page.lines.len(), 2);
        assert!(page.lines[1].contains("line 4"), "{:?}", page.lines);
        assert_eq!(page.line_count, 5);
        assert_eq!(
            page.latest_timestamp,
            chrono::DateTime::parse_from_rfc3339("2026-12-02T06:00:04Z").unwrap().timestamp()
        );
        assert!(!page.cursor_reset);

        // Nothing new yet: same position, no lines. Then the partial line completes.
        let same = read_page(dir.path(), 10, 0, Some(&page.next_cursor)).unwrap();
        assert!(same.lines.is_empty());
        append(&main, " done\n");
        append(&main, &line(5));
        let next = read_page(dir.path(), 10, 0, Some(&same.next_cursor)).unwrap();
        assert_eq!(next.lines, vec!["partial line without newline done".to_owned(), line(5).trim_end().to_owned()]);

        // main.log is rotated and a new one started: the cursor still finds its place.
        fs::rename(&main, dir.path().join("main-2026-12-02T06-00-10.log")).unwrap();
        append(&main, &line(6));
        let after_rotation = read_page(dir.path(), 10, 0, Some(&next.next_cursor)).unwrap();
        assert_eq!(after_rotation.lines, vec![line(6).trim_end().to_owned()]);
        assert!(!after_rotation.cursor_reset);

        // `after` keeps only lines stamped later.
        let cut = chrono::DateTime::parse_from_rfc3339("2026-12-02T06:00:04Z").unwrap().timestamp();
        let later = read_page(dir.path(), 0, cut, None).unwrap();
        assert!(later.lines.first().unwrap().contains("line 5"), "{:?}", later.lines);
        assert_eq!(later.lines.len(), 2, "line 5 and line 6 (the unstamped line went with line 4): {:?}", later.lines);

        assert_eq!(clear(dir.path()).unwrap(), 1);
        append(&main, &line(7));
        let reset = read_page(dir.path(), 10, 0, Some(&after_rotation.next_cursor)).unwrap();
        assert!(reset.cursor_reset);
        assert_eq!(reset.lines, vec![line(7).trim_end().to_owned()]);
        let garbage = read_page(dir.path(), 10, 0, Some("not-a-cursor")).unwrap();
        assert!(garbage.cursor_reset);
        let forged = URL_SAFE_NO_PAD.encode(br#"{"v":1,"file":"../../etc/passwd","offset":0,"latest":0,"fp":"x"}"#);
        assert!(read_page(dir.path(), 10, 0, Some(&forged)).unwrap().cursor_reset);
    }

    #[test]
    fn stamps_are_read_from_json_text_and_cpa_lines() {
        assert_eq!(line_timestamp(r#"{"timestamp":"1970-01-01T00:01:00Z"}"#), Some(60));
        assert_eq!(line_timestamp("1970-01-01T00:01:00.5Z  INFO started"), Some(60));
        assert!(line_timestamp("[2026-12-02 06:00:00] [info] x").is_some());
        assert_eq!(line_timestamp("no stamp"), None);
    }
}
