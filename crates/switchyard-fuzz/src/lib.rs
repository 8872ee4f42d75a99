//! The fuzz entry points: one `pub fn <target>(data: &[u8])` per parser or translator that reads
//! bytes from outside (clients, upstreams, users, files). Each feeds the bytes to the real code
//! and checks properties (a panic means a finding): chunk-split invariance for the incremental
//! parsers, valid JSON / valid SSE for everything the translators write, save-and-reload equality
//! for auth files, a line on every config error.
//!
//! `fuzz/` (cargo-fuzz, nightly only) wraps each function in a libFuzzer target, and
//! `tests/replay_corpus.rs` replays the committed corpora through them on stable, so CI catches a
//! regression without a fuzzing job. [`TARGETS`] is the list both use.

mod auth;
mod config;
mod dialects;
mod kiro;
mod sse;
mod streams;
pub mod support;

pub use auth::{SESSION_STATE, auth_file, pasted_callback};
pub use config::config;
pub use dialects::{dialect_error, dialect_request, dialect_response};
pub use kiro::kiro_event_stream;
pub use sse::sse_parser;
pub use streams::{stream_decoder, stream_encoder};

/// A fuzz entry point: bytes in, a panic when a property breaks.
pub type Target = fn(&[u8]);

/// Every target by name (the name of its `fuzz/fuzz_targets/<name>.rs` and corpus directory).
pub const TARGETS: &[(&str, Target)] = &[
    ("sse_parser", sse_parser),
    ("dialect_request", dialect_request),
    ("dialect_response", dialect_response),
    ("dialect_error", dialect_error),
    ("stream_decoder", stream_decoder),
    ("stream_encoder", stream_encoder),
    ("kiro_event_stream", kiro_event_stream),
    ("pasted_callback", pasted_callback),
    ("auth_file", auth_file),
    ("config", config),
];
