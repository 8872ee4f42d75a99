//! Gemini CLI: Google OAuth against Cloud Code Assist. CPA wrote its files as `type: "gemini"`, so
//! both types are ours.

use crate::{ModelInfo, Provider, dialect};

pub struct GeminiCli;

impl Provider for GeminiCli {
    fn id(&self) -> &'static str {
        "gemini-cli"
    }

    fn label(&self) -> &'static str {
        "Gemini CLI"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["gemini", "gemini-cli"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("gemini-2.5-pro", "Gemini 2.5 Pro"),
    model("gemini-2.5-flash", "Gemini 2.5 Flash"),
    model("gemini-2.5-flash-lite", "Gemini 2.5 Flash Lite"),
    model("gemini-3-pro-preview", "Gemini 3 Pro Preview"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "google", dialect::GEMINI)
}
