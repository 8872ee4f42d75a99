//! Claude Code: Anthropic account OAuth; upstream speaks Anthropic Messages.

use crate::{ModelInfo, Provider, dialect};

pub struct Claude;

impl Provider for Claude {
    fn id(&self) -> &'static str {
        "claude"
    }

    fn label(&self) -> &'static str {
        "Claude Code"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["claude"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("claude-opus-4-5", "Claude Opus 4.5"),
    model("claude-sonnet-4-5", "Claude Sonnet 4.5"),
    model("claude-haiku-4-5", "Claude Haiku 4.5"),
    model("claude-opus-4-1", "Claude Opus 4.1"),
    model("claude-sonnet-4", "Claude Sonnet 4"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "anthropic", dialect::CLAUDE)
}
