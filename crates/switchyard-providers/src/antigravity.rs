//! Antigravity: Google OAuth for the Antigravity IDE. Every model, Claude ones included, goes
//! upstream in the Gemini envelope, hence one dialect.

use crate::{ModelInfo, Provider, dialect};

pub struct Antigravity;

impl Provider for Antigravity {
    fn id(&self) -> &'static str {
        "antigravity"
    }

    fn label(&self) -> &'static str {
        "Antigravity"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["antigravity"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("gemini-3-pro-preview", "Gemini 3 Pro Preview"),
    model("gemini-3-pro-image-preview", "Gemini 3 Pro Image Preview"),
    model("gemini-2.5-flash", "Gemini 2.5 Flash"),
    model("gemini-2.5-flash-lite", "Gemini 2.5 Flash Lite"),
    model("claude-sonnet-4-5", "Claude Sonnet 4.5"),
    model("claude-sonnet-4-5-thinking", "Claude Sonnet 4.5 Thinking"),
    model("claude-opus-4-5-thinking", "Claude Opus 4.5 Thinking"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "antigravity", dialect::GEMINI)
}
