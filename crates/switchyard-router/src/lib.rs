//! Routing: which client-visible models an account exposes (later also selection strategies,
//! cooldowns and the retry plan).

mod model_rules;

pub use model_rules::{AccountModelRules, ExposedModel, ModelAlias, account_models, pattern_matches};
