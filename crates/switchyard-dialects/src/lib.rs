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
pub mod usage;
mod wire;

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

/// Each dialect's translators, chosen at run time.
impl Dialect {
    /// A client request → neutral. `model` is used where the dialect carries the model outside
    /// the body (Gemini's URL); body-carried models win elsewhere.
    pub fn request_to_ir(self, body: &[u8], model: &str) -> Result<ir::ChatRequest, TranslateError> {
        match self {
            Self::OpenAiChat => openai_chat::request_to_ir(body),
            Self::OpenAiResponses => openai_responses::request_to_ir(body),
            Self::AnthropicMessages => anthropic::request_to_ir(body),
            Self::Gemini => gemini::request_to_ir(body, model),
        }
    }

    pub fn request_from_ir(self, request: &ir::ChatRequest) -> Result<serde_json::Value, TranslateError> {
        match self {
            Self::OpenAiChat => openai_chat::request_from_ir(request),
            Self::OpenAiResponses => openai_responses::request_from_ir(request),
            Self::AnthropicMessages => anthropic::request_from_ir(request),
            Self::Gemini => gemini::request_from_ir(request),
        }
    }

    pub fn response_to_ir(self, body: &[u8]) -> Result<ir::ChatResponse, TranslateError> {
        match self {
            Self::OpenAiChat => openai_chat::response_to_ir(body),
            Self::OpenAiResponses => openai_responses::response_to_ir(body),
            Self::AnthropicMessages => anthropic::response_to_ir(body),
            Self::Gemini => gemini::response_to_ir(body),
        }
    }

    pub fn response_from_ir(self, response: &ir::ChatResponse) -> serde_json::Value {
        match self {
            Self::OpenAiChat => openai_chat::response_from_ir(response),
            Self::OpenAiResponses => openai_responses::response_from_ir(response),
            Self::AnthropicMessages => anthropic::response_from_ir(response),
            Self::Gemini => gemini::response_from_ir(response),
        }
    }

    pub fn error_to_ir(self, status: u16, body: &[u8]) -> ir::ErrorInfo {
        match self {
            Self::OpenAiChat => openai_chat::error_to_ir(status, body),
            Self::OpenAiResponses => openai_responses::error_to_ir(status, body),
            Self::AnthropicMessages => anthropic::error_to_ir(status, body),
            Self::Gemini => gemini::error_to_ir(status, body),
        }
    }

    pub fn error_from_ir(self, error: &ir::ErrorInfo) -> serde_json::Value {
        match self {
            Self::OpenAiChat => openai_chat::error_from_ir(error),
            Self::OpenAiResponses => openai_responses::error_from_ir(error),
            Self::AnthropicMessages => anthropic::error_from_ir(error),
            Self::Gemini => gemini::error_from_ir(error),
        }
    }

    /// A mid-stream failure as this dialect's SSE frame(s).
    pub fn stream_error_frame(self, error: &ir::ErrorInfo) -> String {
        match self {
            Self::OpenAiChat => openai_chat::stream_error_frame(error),
            Self::OpenAiResponses => openai_responses::stream_error_frame(error),
            Self::AnthropicMessages => anthropic::stream_error_frame(error),
            Self::Gemini => gemini::stream_error_frame(error),
        }
    }

    pub fn decoder(self) -> Box<dyn ir::StreamDecoder> {
        match self {
            Self::OpenAiChat => Box::new(openai_chat::Decoder::new()),
            Self::OpenAiResponses => Box::new(openai_responses::Decoder::new()),
            Self::AnthropicMessages => Box::new(anthropic::Decoder::new()),
            Self::Gemini => Box::new(gemini::Decoder::new()),
        }
    }

    pub fn encoder(self) -> Box<dyn ir::StreamEncoder> {
        match self {
            Self::OpenAiChat => Box::new(openai_chat::Encoder::new()),
            Self::OpenAiResponses => Box::new(openai_responses::Encoder::new()),
            Self::AnthropicMessages => Box::new(anthropic::Encoder::new()),
            Self::Gemini => Box::new(gemini::Encoder::new()),
        }
    }
}
