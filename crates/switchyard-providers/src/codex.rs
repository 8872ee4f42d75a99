//! Codex: ChatGPT account OAuth; upstream speaks the OpenAI Responses API.

use crate::{ModelInfo, Provider, dialect};

pub struct Codex;

impl Provider for Codex {
    fn id(&self) -> &'static str {
        "codex"
    }

    fn label(&self) -> &'static str {
        "Codex"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["codex"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("gpt-5", "GPT-5"),
    model("gpt-5-codex", "GPT-5 Codex"),
    model("gpt-5-codex-mini", "GPT-5 Codex Mini"),
    model("gpt-5.1", "GPT-5.1"),
    model("gpt-5.1-codex", "GPT-5.1 Codex"),
    model("gpt-5.1-codex-mini", "GPT-5.1 Codex Mini"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "openai", dialect::OPENAI)
}
