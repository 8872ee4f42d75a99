//! GitHub Copilot: GitHub device-code OAuth exchanged for a Copilot token; upstream speaks OpenAI
//! Chat for every model.

use crate::{ModelInfo, Provider, dialect};

pub struct GithubCopilot;

impl Provider for GithubCopilot {
    fn id(&self) -> &'static str {
        "github-copilot"
    }

    fn label(&self) -> &'static str {
        "GitHub Copilot"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["github-copilot"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("gpt-4.1", "GPT-4.1"),
    model("gpt-5", "GPT-5"),
    model("gpt-5-mini", "GPT-5 mini"),
    model("gpt-5.1-codex", "GPT-5.1 Codex"),
    model("claude-sonnet-4.5", "Claude Sonnet 4.5"),
    model("claude-opus-4.5", "Claude Opus 4.5"),
    model("gemini-2.5-pro", "Gemini 2.5 Pro"),
    model("grok-code-fast-1", "Grok Code Fast 1"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "github-copilot", dialect::OPENAI)
}
