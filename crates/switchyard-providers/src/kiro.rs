//! Kiro (AWS CodeWhisperer / Amazon Q): requests are built from the Claude Messages shape.
//! `-agentic` twins add the chunked-write system prompt.

use crate::{ModelInfo, Provider, dialect};

pub struct Kiro;

impl Provider for Kiro {
    fn id(&self) -> &'static str {
        "kiro"
    }

    fn label(&self) -> &'static str {
        "Kiro"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["kiro"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("kiro-claude-opus-4-5", "Kiro Claude Opus 4.5"),
    model("kiro-claude-sonnet-4-5", "Kiro Claude Sonnet 4.5"),
    model("kiro-claude-sonnet-4", "Kiro Claude Sonnet 4"),
    model("kiro-claude-haiku-4-5", "Kiro Claude Haiku 4.5"),
    model("kiro-claude-opus-4-5-agentic", "Kiro Claude Opus 4.5 (Agentic)"),
    model("kiro-claude-sonnet-4-5-agentic", "Kiro Claude Sonnet 4.5 (Agentic)"),
    model("kiro-claude-sonnet-4-agentic", "Kiro Claude Sonnet 4 (Agentic)"),
    model("kiro-claude-haiku-4-5-agentic", "Kiro Claude Haiku 4.5 (Agentic)"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "aws", dialect::CLAUDE)
}
