//! API dialects and the translators between them.
//!
//! Every dialect converts to and from one neutral form ([`ir`]) — requests, whole responses and
//! stream events — so N dialects need 2·N translators instead of N². Same-dialect traffic never
//! comes here: it is passed through as bytes.
//!
//! Translators are pure: typed input in, typed output (or a [`TranslateError`]) out, no I/O.
//! Stream translation is a small state machine per direction ([`ir::StreamDecoder`],
//! [`ir::StreamEncoder`]) fed one upstream event at a time.

pub mod anthropic;
pub mod gemini;
pub mod ir;
pub mod openai_chat;
pub mod openai_responses;
pub mod sse;

pub use ir::TranslateError;

/// The wire dialect a client or an upstream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// `POST /v1/chat/completions`.
    OpenAiChat,
    /// `POST /v1/responses` (also the ChatGPT Codex backend).
    OpenAiResponses,
    /// `POST /v1/messages`.
    AnthropicMessages,
    /// `POST /v1beta/models/{model}:generateContent` and friends.
    Gemini,
}
