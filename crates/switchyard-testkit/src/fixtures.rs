//! The recorded upstream bodies and streams in `shared/fixtures/upstream` (see its README): one
//! place that knows where they live and how a `.chunks.txt` file is read.

use std::path::PathBuf;

/// `shared/fixtures/upstream`, beside the workspace (`/work/main` next to `/work/shared`; CI
/// clones the two side by side too).
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/fixtures/upstream"))
}

/// A fixture's bytes, e.g. `read("gemini/google-text.json")`. Panics with the path when missing
/// (a test set-up error).
pub fn read(file: &str) -> Vec<u8> {
    let path = fixtures_dir().join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// True for a `.chunks.txt` that holds raw SSE (`data: ` lines) instead of one JSON per line.
pub fn is_raw_sse(bytes: &[u8]) -> bool {
    bytes.starts_with(b"data:")
}

/// The JSON payloads of a reduced `.chunks.txt`, in order: one per non-blank line, verbatim.
/// For the raw-SSE fixture, the `data:` payloads of its events.
pub fn chunks(file: &str) -> Vec<String> {
    let bytes = read(file);
    let text = String::from_utf8(bytes).unwrap_or_else(|_| panic!("fixture {file} is not UTF-8"));
    if is_raw_sse(text.as_bytes()) {
        return raw_events(&text).into_iter().map(|event| data_of(&event)).collect();
    }
    text.lines().filter(|line| !line.trim().is_empty()).map(str::to_owned).collect()
}

/// The events of a raw SSE body, each with its own trailing blank line, so that concatenating
/// them gives the body back byte for byte.
pub fn raw_events(text: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let end = ["\r\n\r\n", "\n\n"]
            .iter()
            .filter_map(|sep| rest.find(sep).map(|at| at + sep.len()))
            .min()
            .unwrap_or(rest.len());
        events.push(rest[..end].to_owned());
        rest = &rest[end..];
    }
    events
}

/// The `data:` lines of one event joined with `\n` (SSE rules: one optional space is dropped).
fn data_of(event: &str) -> String {
    event
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|value| value.strip_prefix(' ').unwrap_or(value))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_are_found_and_read() {
        assert!(fixtures_dir().join("README.md").is_file(), "{}", fixtures_dir().display());
        let lines = chunks("anthropic-messages/anthropic-text.chunks.txt");
        assert!(lines.first().is_some_and(|l| l.contains("message_start")));
    }

    #[test]
    fn raw_sse_fixture_splits_into_events_that_rebuild_it() {
        let file = "gemini/google-stream-gemini-3.7-flash-2026-09-16.chunks.txt";
        let text = String::from_utf8(read(file)).unwrap();
        let events = raw_events(&text);
        assert_eq!(events.len(), 2);
        assert_eq!(events.concat(), text);
        let data = chunks(file);
        assert!(data.iter().all(|d| serde_json::from_str::<serde_json::Value>(d).is_ok()));
    }
}
