//! Qwen Code: device-code OAuth with PKCE; upstream speaks OpenAI Chat.

use crate::{ModelInfo, Provider, dialect};

pub struct Qwen;

impl Provider for Qwen {
    fn id(&self) -> &'static str {
        "qwen"
    }

    fn label(&self) -> &'static str {
        "Qwen Code"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["qwen"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("qwen3-coder-plus", "Qwen3 Coder Plus"),
    model("qwen3-coder-flash", "Qwen3 Coder Flash"),
    model("vision-model", "Qwen Vision"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "qwen", dialect::OPENAI)
}
