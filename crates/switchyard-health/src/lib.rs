//! Account health (panels spec §4.3–4.6), as pure functions over evidence so every rule can be
//! tested without a server:
//!
//! - [`evidence`]: what was observed about an account (a request's outcome, a refresh, a quota
//!   reading, a cooldown, an inspection, a manual switch), when, and from which source.
//! - [`evaluate`]: an account's evidence → its [`HealthState`] with a reason `"Source · detail"`.
//! - [`classify`]: a failure signal → action (delete / reauth / review), reason code, confidence
//!   and whether it may disable the account automatically (§4.5).
//! - [`quota`]: the quota evidence the health model takes (a 1:1 mirror of the providers' quota
//!   report), and what it says about the account.
//! - [`inspection`]: the recommendation for one probed account (§4.6 for Codex/xAI quota
//!   probes; classification for request probes).
//! - [`ownership`]: who disabled an account, and who may enable it again.
//! - [`HealthBook`]: a bounded recent-evidence ring per account, in memory, that drops evidence
//!   of a credential that was replaced (re-login).
//!
//! Nothing here does I/O; the server feeds the book and acts on the answers.

pub mod book;
pub mod classify;
pub mod evidence;
pub mod inspection;
pub mod ownership;
pub mod quota;
mod state;

pub use book::HealthBook;
pub use classify::{Classification, Confidence, FailureSignal, classify};
pub use evidence::{Action, Evidence, Signal, Source};
pub use ownership::{Actor, DISABLED_BY_KEY, DISABLED_CREDENTIAL_KEY, DISABLED_REASON_KEY, may_enable};
pub use state::{Facts, Health, HealthState, evaluate};
