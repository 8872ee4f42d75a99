//! Vertex AI: imported Google service account; upstream speaks Gemini.

use crate::{ModelInfo, Provider, dialect};

pub struct Vertex;

impl Provider for Vertex {
    fn id(&self) -> &'static str {
        "vertex"
    }

    fn label(&self) -> &'static str {
        "Vertex AI"
    }

    fn file_types(&self) -> &'static [&'static str] {
        &["vertex"]
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
