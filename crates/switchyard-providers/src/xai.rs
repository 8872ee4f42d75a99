//! xAI (Grok CLI): device-code OAuth; upstream speaks the OpenAI Responses API.

use crate::{ModelInfo, Provider, dialect};

pub struct Xai;

impl Provider for Xai {
    fn id(&self) -> &'static str {
        "xai"
    }

    fn label(&self) -> &'static str {
        "xAI Grok"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["xai"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("grok-4", "Grok 4"),
    model("grok-4-fast", "Grok 4 Fast"),
    model("grok-code-fast-1", "Grok Code Fast 1"),
    model("grok-3", "Grok 3"),
    model("grok-3-mini", "Grok 3 Mini"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "xai", dialect::OPENAI)
}
