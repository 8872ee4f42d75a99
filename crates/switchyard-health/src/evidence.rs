//! One observation about an account: when, from where, what it says, and a short human detail.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ownership::Actor;

/// Where an observation came from; the first half of a reason `"Source · detail"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// An API request's attempt on this account (client traffic, test requests, probes).
    Request,
    /// The token refresher.
    Refresh,
    /// A quota reading (API query, response header or body).
    Quota,
    /// The router cooled the account down.
    Cooldown,
    /// An inspection run.
    Inspection,
    /// A person, through the management API.
    Manual,
}

impl Source {
    /// As shown in reasons.
    pub fn label(self) -> &'static str {
        match self {
            Source::Request => "Request",
            Source::Refresh => "Refresh",
            Source::Quota => "Quota",
            Source::Cooldown => "Cooldown",
            Source::Inspection => "Inspection",
            Source::Manual => "Manual",
        }
    }
}

/// What to do about a failing credential (§4.5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The file is stale (its workspace or account is gone): delete it.
    Delete,
    /// The tokens are dead: sign in again.
    Reauth,
    /// Someone should look at it.
    Review,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Delete => "delete",
            Action::Reauth => "reauth",
            Action::Review => "review",
        }
    }
}

/// What an observation says about the account.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signal {
    /// The account served: a successful request, a quota reading below every limit, a probe
    /// that answered. Supersedes older failures, limits and cooldowns.
    Ok,
    /// The credential is accepted (a refresh worked), which says nothing about quota:
    /// supersedes older credential failures only.
    AuthOk,
    /// Something went wrong that does not make the account unusable on its own: a transient
    /// upstream error, an ambiguous authentication failure, a quota window running low.
    Trouble,
    /// The credential is refused for good until someone acts; `action` says what. A reauth is
    /// the state "needs re-login".
    Invalid { action: Action },
    /// A quota limit is reached, until its window resets (`None`: unknown).
    Exhausted { until: Option<DateTime<Utc>> },
    /// The router keeps the account away until then (429 with a reset time).
    Cooling { until: DateTime<Utc> },
    /// Cooldowns and quota marks were reset by hand (`/reset-quota`): older limits no longer hold.
    Reset,
    /// The account was disabled by `by`.
    Disabled { by: Actor },
    /// The account was enabled by `by`.
    Enabled { by: Actor },
}

impl Signal {
    /// The signal's name, for listings.
    pub fn name(&self) -> &'static str {
        match self {
            Signal::Ok => "ok",
            Signal::AuthOk => "auth_ok",
            Signal::Trouble => "trouble",
            Signal::Invalid { .. } => "invalid",
            Signal::Exhausted { .. } => "exhausted",
            Signal::Cooling { .. } => "cooling",
            Signal::Reset => "reset",
            Signal::Disabled { .. } => "disabled",
            Signal::Enabled { .. } => "enabled",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub at: DateTime<Utc>,
    pub source: Source,
    pub signal: Signal,
    /// Short and human, never a secret: the caller passes redacted text only.
    pub detail: String,
}

impl Evidence {
    pub fn new(at: DateTime<Utc>, source: Source, signal: Signal, detail: impl Into<String>) -> Self {
        Self { at, source, signal, detail: detail.into() }
    }

    /// `"Source · detail"`.
    pub fn reason(&self) -> String {
        format!("{} · {}", self.source.label(), self.detail)
    }
}
