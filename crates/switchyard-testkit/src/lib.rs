//! Test doubles for the outside world: loopback HTTP servers that behave like the real
//! authorization servers and provider APIs, quirks included, with knobs to inject faults.
//! Used by tests and benches only; never by Switchyard itself.

// Mock handlers return an axum `Response` as their error: it is the answer, not an error to pass up.
#![allow(clippy::result_large_err)]

pub mod claude;
pub mod fixtures;
pub mod github;
pub mod google;
pub mod google_sa;
pub mod iflow;
pub mod kimi;
pub mod kiro;
pub mod oauth;
pub mod openai;
pub mod proxy;
pub mod quota;
pub mod qwen;
mod server;
pub mod upstream;
pub mod xai;

pub use server::{MockServer, RecordedRequest, serve};
