//! Keeps an attempt's credential out of everything relayed to the client. Upstreams echo keys
//! and tokens in error bodies ("invalid api key sk-..."), and occasionally in stream events, so
//! every relayed byte goes through the [`Scrubber`] of the attempt that produced it.
//!
//! Two levels: the attempt's own secrets (exact strings, a SIMD substring search each) are masked in
//! everything, answers included; anything else that merely *looks* like a credential
//! ([`switchyard_redact::text`]) is masked in error bodies and error events only, because
//! applying those heuristics to model output would corrupt legitimate answers.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::sync::Arc;

use axum::body::Bytes;
use memchr::memmem::Finder;
use serde_json::Value;
use switchyard_auth::Credential;
use switchyard_dialects::ir::ErrorInfo;

/// Shorter values are not masked: they would hit ordinary text (`Bearer`, `true`, a port).
pub const MIN_SECRET_LEN: usize = 8;

/// The attempt's secrets, each with its substring searcher. One searcher per secret rather than one
/// multi-pattern automaton: an attempt has a handful of secrets, a searcher costs nothing to set
/// up, while an automaton took tens of microseconds to build — per attempt, since a big auth dir
/// rotates through more secret sets than any cache of them keeps.
#[derive(Clone, Default)]
pub struct Scrubber {
    finders: Arc<[Finder<'static>]>,
    /// Length of the longest secret: how much of a stream's tail may hold a secret's start.
    longest: usize,
}

impl Scrubber {
    /// A scrubber for `secrets`; short and empty ones are dropped.
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut patterns: Vec<String> =
            secrets.into_iter().map(|s| s.as_ref().trim().to_owned()).filter(|s| s.len() >= MIN_SECRET_LEN).collect();
        patterns.sort();
        patterns.dedup();
        let longest = patterns.iter().map(String::len).max().unwrap_or(0);
        let finders = patterns.iter().map(|p| Finder::new(p.as_bytes()).into_owned()).collect();
        Self { finders, longest }
    }

    /// Where the secrets are in `bytes`, leftmost-longest: from left to
    /// right, at each position the longest secret found there, the search resuming after it (a
    /// refresh token that contains the access token is masked whole).
    fn find(&self, bytes: &[u8]) -> Vec<(usize, usize)> {
        let mut found: Vec<(usize, usize)> = Vec::new();
        for finder in self.finders.iter() {
            let len = finder.needle().len();
            let mut from = 0;
            // Overlapping occurrences too: one may start inside another secret's shorter match.
            while let Some(at) = finder.find(&bytes[from..]) {
                found.push((from + at, from + at + len));
                from += at + 1;
            }
        }
        if found.len() > 1 {
            found.sort_unstable_by_key(|&(start, end)| (start, Reverse(end)));
            let mut end = 0;
            found.retain(|&(start, stop)| {
                let keep = start >= end;
                if keep {
                    end = stop;
                }
                keep
            });
        }
        found
    }

    /// Every string in a credential file under a credential-ish key (tokens, keys, cookies,
    /// secrets: see [`switchyard_redact::is_sensitive_name`]), nested objects included.
    pub fn credential_secrets(credential: &Credential, out: &mut Vec<String>) {
        fn walk(value: &Value, sensitive: bool, out: &mut Vec<String>) {
            match value {
                Value::String(s) if sensitive => out.push(s.clone()),
                Value::Object(map) => {
                    for (key, inner) in map {
                        walk(inner, sensitive || switchyard_redact::is_sensitive_name(key), out);
                    }
                }
                Value::Array(items) => items.iter().for_each(|item| walk(item, sensitive, out)),
                _ => {}
            }
        }
        for (key, value) in credential.fields() {
            walk(value, switchyard_redact::is_sensitive_name(key), out);
        }
    }

    /// `bytes` with every secret replaced by its mask (borrowed when there is none, which is
    /// the common case and costs one linear scan).
    pub fn credentials<'a>(&self, bytes: &'a [u8]) -> Cow<'a, [u8]> {
        if self.finders.is_empty() {
            return Cow::Borrowed(bytes);
        }
        let matches = self.find(bytes);
        if matches.is_empty() {
            return Cow::Borrowed(bytes);
        }
        let mut out = Vec::with_capacity(bytes.len());
        let mut at = 0;
        for (start, end) in matches {
            out.extend_from_slice(&bytes[at..start]);
            out.extend_from_slice(mask(end - start).as_bytes());
            at = end;
        }
        out.extend_from_slice(&bytes[at..]);
        Cow::Owned(out)
    }

    pub fn credentials_bytes(&self, bytes: Bytes) -> Bytes {
        match self.credentials(&bytes) {
            Cow::Borrowed(_) => bytes,
            Cow::Owned(owned) => Bytes::from(owned),
        }
    }

    pub fn credentials_text(&self, text: &str) -> String {
        String::from_utf8_lossy(&self.credentials(text.as_bytes())).into_owned()
    }

    /// Error text: the attempt's secrets and anything credential-shaped masked.
    pub fn error_text(&self, text: &str) -> String {
        switchyard_redact::text(&self.credentials_text(text))
    }

    pub fn error_info(&self, error: &ErrorInfo) -> ErrorInfo {
        ErrorInfo { status: error.status, kind: error.kind.clone(), message: self.error_text(&error.message) }
    }

    /// Where a stream's pending bytes may be cut so that no secret straddles the cut: before the
    /// last `longest - 1` bytes (which may hold a secret's beginning), and before any secret
    /// that crosses that point.
    fn safe_cut(&self, bytes: &[u8]) -> usize {
        if self.finders.is_empty() {
            return bytes.len();
        }
        let mut cut = bytes.len().saturating_sub(self.longest.saturating_sub(1));
        for (start, end) in self.find(bytes) {
            if start < cut && end > cut {
                cut = start;
            }
        }
        cut
    }
}

/// What a masked secret looks like to the client: its length only.
fn mask(len: usize) -> String {
    format!("[redacted {len} chars]")
}

/// A streamed event is an error event (worth the heuristic redaction too).
fn looks_like_error(bytes: &[u8]) -> bool {
    memchr::memmem::find(bytes, b"\"error\":").is_some() || memchr::memmem::find(bytes, b"event: error").is_some()
}

/// Scrubs a pass-through SSE stream chunk by chunk without buffering it: complete events go out
/// as soon as their blank line arrives; the unfinished rest is held back (so a secret split over
/// two chunks is still seen whole). An event that grows past [`MAX_HELD`] without ending is let
/// out early, minus a tail that could hold the start of a secret.
pub struct StreamScrubber {
    scrubber: Scrubber,
    held: Vec<u8>,
}

/// Most bytes held back waiting for an event's end.
const MAX_HELD: usize = 64 * 1024;

impl StreamScrubber {
    pub fn new(scrubber: Scrubber) -> Self {
        Self { scrubber, held: Vec::new() }
    }

    /// The scrubbed bytes that may leave now (possibly empty).
    pub fn feed(&mut self, chunk: Bytes) -> Bytes {
        // The usual case: nothing held and the chunk ends on an event boundary (upstreams flush
        // whole events). Its bytes leave as they came, uncopied, unless a secret is in them.
        if self.held.is_empty() {
            match last_event_end(&chunk) {
                Some(end) if end == chunk.len() => return self.scrub_bytes(chunk),
                Some(end) => {
                    self.held.extend_from_slice(&chunk[end..]);
                    return self.scrub_bytes(chunk.slice(..end));
                }
                None if chunk.len() <= MAX_HELD => {
                    self.held.extend_from_slice(&chunk);
                    return Bytes::new();
                }
                None => {}
            }
        }
        self.held.extend_from_slice(&chunk);
        let cut = match last_event_end(&self.held) {
            Some(end) => end,
            None if self.held.len() > MAX_HELD => self.scrubber.safe_cut(&self.held),
            None => return Bytes::new(),
        };
        let ready: Vec<u8> = self.held.drain(..cut).collect();
        self.scrub(&ready)
    }

    /// What is left at the end of the stream.
    pub fn finish(&mut self) -> Bytes {
        let rest = std::mem::take(&mut self.held);
        self.scrub(&rest)
    }

    fn scrub_bytes(&self, bytes: Bytes) -> Bytes {
        match self.scrubber.credentials(&bytes) {
            Cow::Borrowed(_) if !looks_like_error(&bytes) => bytes,
            _ => self.scrub(&bytes),
        }
    }

    fn scrub(&self, bytes: &[u8]) -> Bytes {
        let masked = self.scrubber.credentials(bytes);
        if looks_like_error(&masked) {
            return Bytes::from(switchyard_redact::text(&String::from_utf8_lossy(&masked)));
        }
        Bytes::from(masked.into_owned())
    }
}

/// The end (exclusive) of the last complete SSE event in `bytes`: after its blank line.
pub(super) fn last_event_end(bytes: &[u8]) -> Option<usize> {
    let lf = memchr::memmem::rfind(bytes, b"\n\n").map(|at| at + 2);
    let crlf = memchr::memmem::rfind(bytes, b"\r\n\r\n").map(|at| at + 4);
    lf.max(crlf)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "tok-0123456789abcdef";

    #[test]
    fn secrets_are_masked_and_short_values_are_not() {
        let scrubber = Scrubber::new([TOKEN, "short", ""]);
        let text = format!("invalid token {TOKEN}, short is fine");
        let out = scrubber.credentials_text(&text);
        assert!(!out.contains(TOKEN), "{out}");
        assert!(out.contains("[redacted 20 chars]"), "{out}");
        assert!(out.contains("short is fine"));
        assert!(matches!(scrubber.credentials(b"nothing here"), Cow::Borrowed(_)));
        assert!(matches!(Scrubber::default().credentials(TOKEN.as_bytes()), Cow::Borrowed(_)));
    }

    #[test]
    fn the_longest_overlapping_secret_wins() {
        let scrubber = Scrubber::new(["abcdefgh", "abcdefghijkl"]);
        assert_eq!(scrubber.credentials_text("xabcdefghijkly"), "x[redacted 12 chars]y");
    }

    #[test]
    fn credential_files_give_their_tokens_keys_and_cookies() {
        let credential = Credential::from_json(
            br#"{"type":"claude","email":"someone@example.com","access_token":"at-0123456789",
                "refresh_token":"rt-0123456789","token":{"id_token":"idt-0123456789"},
                "cookie":"session=0123456789","api_key":"key-0123456789","project_id":"project-123456"}"#,
        )
        .unwrap();
        let mut secrets = Vec::new();
        Scrubber::credential_secrets(&credential, &mut secrets);
        secrets.sort();
        assert_eq!(
            secrets,
            ["at-0123456789", "idt-0123456789", "key-0123456789", "rt-0123456789", "session=0123456789"]
        );
    }

    #[test]
    fn errors_also_lose_what_looks_like_a_credential() {
        let scrubber = Scrubber::new([TOKEN]);
        let out = scrubber.error_text(&format!("{TOKEN} and Bearer other-secret-value"));
        assert!(!out.contains(TOKEN) && !out.contains("other-secret-value"), "{out}");
    }

    #[test]
    fn a_secret_split_over_chunks_is_still_masked() {
        let mut stream = StreamScrubber::new(Scrubber::new([TOKEN]));
        let event = format!("event: delta\ndata: {{\"text\":\"{TOKEN}\"}}\n\n");
        let mut out = Vec::new();
        for piece in event.as_bytes().chunks(3) {
            out.extend_from_slice(&stream.feed(Bytes::copy_from_slice(piece)));
        }
        out.extend_from_slice(&stream.finish());
        let out = String::from_utf8(out).unwrap();
        assert!(!out.contains(TOKEN), "{out}");
        assert_eq!(out, "event: delta\ndata: {\"text\":\"[redacted 20 chars]\"}\n\n");
    }

    #[test]
    fn whole_events_leave_uncopied_unless_a_secret_is_in_them() {
        let mut stream = StreamScrubber::new(Scrubber::new([TOKEN]));
        let clean = Bytes::from_static(b"data: {\"text\":\"hi\"}\n\n");
        let out = stream.feed(clean.clone());
        assert_eq!(out.as_ptr(), clean.as_ptr(), "a clean whole event is passed on as is");
        let out = stream.feed(Bytes::from(format!("data: {{\"text\":\"{TOKEN}\"}}\n\n")));
        assert_eq!(&out[..], "data: {\"text\":\"[redacted 20 chars]\"}\n\n".as_bytes());
        // Event end inside the chunk: the rest is held until its own end arrives.
        let out = stream.feed(Bytes::from(format!("data: 1\n\ndata: {}", &TOKEN[..4])));
        assert_eq!(&out[..], b"data: 1\n\n");
        let out = stream.feed(Bytes::from(format!("{}\n\n", &TOKEN[4..])));
        assert_eq!(&out[..], b"data: [redacted 20 chars]\n\n");
    }

    #[test]
    fn every_occurrence_of_every_secret_is_masked_the_longest_first() {
        let scrubber = Scrubber::new(["access-0123456789", "refresh-access-0123456789-tail", "ababababab"]);
        let text = "a access-0123456789 b refresh-access-0123456789-tail c access-0123456789 d";
        assert_eq!(
            scrubber.credentials_text(text),
            "a [redacted 17 chars] b [redacted 30 chars] c [redacted 17 chars] d"
        );
        // Overlapping occurrences of one secret: masked from the leftmost, resuming after it.
        assert_eq!(scrubber.credentials_text("xabababababab"), "x[redacted 10 chars]ab");
        // A shorter secret starting inside a longer one's match is not masked twice.
        let nested = Scrubber::new(["0123456789", "abc0123456789xyz"]);
        assert_eq!(nested.credentials_text("abc0123456789xyz 0123456789"), "[redacted 16 chars] [redacted 10 chars]");
    }

    #[test]
    fn complete_events_leave_at_once() {
        let mut stream = StreamScrubber::new(Scrubber::new([TOKEN]));
        assert_eq!(&stream.feed(Bytes::from_static(b"data: 1\n\ndata: 2"))[..], b"data: 1\n\n");
        assert_eq!(&stream.feed(Bytes::from_static(b"\n\n"))[..], b"data: 2\n\n");
        assert!(stream.finish().is_empty());
    }

    #[test]
    fn an_endless_event_is_let_out_without_cutting_a_secret() {
        let mut stream = StreamScrubber::new(Scrubber::new([TOKEN]));
        let mut sent = Vec::new();
        let filler = "x".repeat(MAX_HELD);
        sent.extend_from_slice(&stream.feed(Bytes::from(format!("data: {filler}{}", &TOKEN[..5]))));
        assert!(!sent.is_empty(), "an oversized event must not be held whole");
        sent.extend_from_slice(&stream.feed(Bytes::from_static(&TOKEN.as_bytes()[5..])));
        sent.extend_from_slice(&stream.finish());
        let text = String::from_utf8(sent).unwrap();
        assert!(!text.contains(TOKEN) && text.ends_with("[redacted 20 chars]"), "{}", &text[text.len() - 40..]);
    }

    #[test]
    fn stream_error_events_get_the_heuristic_redaction() {
        let mut stream = StreamScrubber::new(Scrubber::default());
        let out = stream
            .feed(Bytes::from_static(b"event: error\ndata: {\"error\":{\"message\":\"Bearer abcdefghijklmnop\"}}\n\n"));
        assert!(!String::from_utf8_lossy(&out).contains("abcdefghijklmnop"), "{out:?}");
        let normal = stream.feed(Bytes::from_static(b"data: {\"text\":\"Bearer abcdefghijklmnop\"}\n\n"));
        assert!(String::from_utf8_lossy(&normal).contains("abcdefghijklmnop"), "answers are not rewritten");
    }
}
