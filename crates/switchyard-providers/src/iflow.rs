//! iFlow: OAuth or browser-cookie login yielding an API key; upstream speaks OpenAI Chat.

use crate::{ModelInfo, Provider, dialect};

pub struct Iflow;

impl Provider for Iflow {
    fn id(&self) -> &'static str {
        "iflow"
    }

    fn label(&self) -> &'static str {
        "iFlow"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["iflow"]
    }

    fn models(&self) -> &'static [ModelInfo] {
        MODELS
    }
}

// Static until the live model-list refresh lands.
const MODELS: &[ModelInfo] = &[
    model("qwen3-coder-plus", "Qwen3 Coder Plus"),
    model("qwen3-max", "Qwen3 Max"),
    model("kimi-k2", "Kimi K2"),
    model("glm-4.6", "GLM 4.6"),
    model("deepseek-v3.2", "DeepSeek V3.2"),
    model("minimax-m2", "MiniMax M2"),
];

const fn model(id: &'static str, display_name: &'static str) -> ModelInfo {
    ModelInfo::new(id, display_name, "iflow", dialect::OPENAI)
}
