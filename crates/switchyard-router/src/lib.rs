//! Routing (CPA §4.3–4.5): the accounts behind the gateway and the models each exposes
//! ([`accounts_from`], built on the model rules), and the [`Router`] that orders accounts for a
//! request by priority and strategy and cools them down after upstream failures.

mod accounts;
mod cooldown;
mod model_rules;
mod router;

pub use accounts::{Account, AccountKind, ConfigKey, accounts_from, cannot_serve, file_account};
pub use cooldown::CooldownReason;
pub use model_rules::{
    AccountModelRules, CatalogModel, ExposedModel, ModelAlias, account_models, configured_models, pattern_matches,
};
pub use router::{
    AccountHealth, Attempt, Attempts, HealthStatus, ListedModel, ModelHealth, Outcome, PinError, Plan, RouteError,
    RouteSettings, Router,
};
