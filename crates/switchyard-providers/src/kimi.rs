//! Kimi Code (Moonshot): device-code OAuth. Upstream accepts OpenAI Chat and Anthropic Messages;
//! OpenAI is the primary route.

use crate::{ModelInfo, Provider, dialect};

pub struct Kimi;

impl Provider for Kimi {
    fn id(&self) -> &'static str {
        "kimi"
    }

    fn label(&self) -> &'static str {
        "Kimi"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["kimi"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("kimi-k2", "Kimi K2"),
    model("kimi-k2-thinking", "Kimi K2 Thinking"),
    model("kimi-k2-0905", "Kimi K2 0905"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "moonshot", dialect::OPENAI)
}
