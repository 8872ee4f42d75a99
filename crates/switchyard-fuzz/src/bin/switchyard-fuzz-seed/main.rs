//! `switchyard-fuzz-seed [FIXTURES] [CORPUS]`: fills `CORPUS/<target>/` (default `fuzz/corpus`)
//! from the recorded upstream traffic in `FIXTURES` (default `../shared/fixtures`), the Kiro
//! event-stream capture of switchyard-testkit, the embedded default config and hand-written
//! edge cases. Run through `fuzz/seed`. Files are named after what they came from, so seeding
//! again overwrites the same files instead of adding copies.

mod seeds;

use std::fs;
use std::path::{Path, PathBuf};

use switchyard_fuzz::support::DIALECTS;

use seeds::Corpus;

const WORKSPACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

fn main() {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let fixtures = args.next().unwrap_or_else(|| Path::new(WORKSPACE).join("../shared/fixtures"));
    let corpus_dir = args.next().unwrap_or_else(|| Path::new(WORKSPACE).join("fuzz/corpus"));
    let upstream = fixtures.join("upstream");
    if !upstream.is_dir() {
        eprintln!(
            "error: {} is not a directory (pass the fixtures directory as the first argument)",
            upstream.display()
        );
        std::process::exit(2);
    }
    let mut corpus = Corpus::default();
    for (selector, dir) in ["openai-chat", "openai-responses", "anthropic-messages", "gemini"].iter().enumerate() {
        let selector = u8::try_from(selector).expect("four dialects");
        assert_eq!(switchyard_fuzz::support::dialect_of(selector), DIALECTS[usize::from(selector)]);
        seed_dialect_dir(&mut corpus, selector, &upstream.join(dir));
    }
    let kiro_capture = Path::new(WORKSPACE).join("crates/switchyard-testkit/fixtures/kiro/text.eventstream");
    match fs::read(&kiro_capture) {
        Ok(bytes) => corpus.add("kiro_event_stream", "testkit-text.eventstream", bytes),
        Err(error) => eprintln!("warning: {}: {error}", kiro_capture.display()),
    }
    seeds::hand_written(&mut corpus);
    match corpus.write(&corpus_dir) {
        Ok(counts) => {
            for (target, count) in counts {
                println!("{target:<20} {count} seed files");
            }
        }
        Err(error) => {
            eprintln!("error: writing {}: {error}", corpus_dir.display());
            std::process::exit(1);
        }
    }
}

/// One dialect's fixture directory: `*.json` bodies become response and error seeds,
/// `*.chunks.txt` payload lists become SSE wire text (for the SSE parser and the decoder).
fn seed_dialect_dir(corpus: &mut Corpus, selector: u8, dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        eprintln!("warning: {} is missing", dir.display());
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        let Ok(bytes) = fs::read(&path) else { continue };
        if let Some(stem) = name.strip_suffix(".chunks.txt") {
            let wire = sse_wire(selector, &String::from_utf8_lossy(&bytes));
            corpus.add("sse_parser", &format!("{stem}.sse"), wire.clone().into_bytes());
            corpus.add("sse_parser", &format!("{stem}.crlf.sse"), wire.replace('\n', "\r\n").into_bytes());
            corpus.add("stream_decoder", &format!("{stem}.sse"), prefixed(&[selector], wire.as_bytes()));
        } else if let Some(stem) = name.strip_suffix(".json") {
            corpus.add("dialect_response", &format!("{stem}.json"), prefixed(&[selector], &bytes));
            let status: u16 = if name.contains("429") { 429 } else { 400 };
            corpus.add(
                "dialect_error",
                &format!("{stem}.json"),
                prefixed(&[selector, (status >> 8) as u8, status as u8], &bytes),
            );
        }
    }
}

/// A `*.chunks.txt` (one payload per line) as the wire stream it was: `data: <line>` frames,
/// with Anthropic's `event:` names rebuilt from `type` and OpenAI Chat's final `[DONE]`.
fn sse_wire(selector: u8, chunks: &str) -> String {
    let mut wire = String::new();
    for line in chunks.lines().filter(|l| !l.trim().is_empty()) {
        if DIALECTS[usize::from(selector)] == switchyard_dialects::Dialect::AnthropicMessages {
            let kind = serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned));
            if let Some(kind) = kind {
                wire.push_str(&format!("event: {kind}\n"));
            }
        }
        wire.push_str(&format!("data: {line}\n\n"));
    }
    if DIALECTS[usize::from(selector)] == switchyard_dialects::Dialect::OpenAiChat {
        wire.push_str("data: [DONE]\n\n");
    }
    wire
}

fn prefixed(prefix: &[u8], bytes: &[u8]) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.extend_from_slice(bytes);
    out
}
