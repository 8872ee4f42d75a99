//! The health function: an account's evidence → its state, with the reason that decided it
//! (§4.3 evidence rules).
//!
//! Evidence is read newest first. A success decides at once (newer healthy evidence supersedes
//! older failures, limits and cooldowns); a credential failure or a limit still in force decides
//! too (a newer 401/revocation or explicit exhaustion wins). Weak evidence (transient errors,
//! ambiguous auth failures, low quota) only turns an otherwise healthy account into a warning.
//! A limit that ran out, or was reset by hand, proves the credential was accepted, so credential
//! failures older than it no longer count. Evidence from before the credential was replaced
//! never counts. No evidence at all is `Unknown`, never "healthy".

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::evidence::{Action, Evidence, Signal, Source};
use crate::ownership::Actor;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HealthState {
    Healthy,
    Warning,
    NeedsRelogin,
    QuotaExhausted { until: Option<DateTime<Utc>> },
    CoolingDown { until: DateTime<Utc> },
    Disabled,
    Unknown,
}

impl HealthState {
    pub fn name(&self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Warning => "warning",
            HealthState::NeedsRelogin => "needs_relogin",
            HealthState::QuotaExhausted { .. } => "quota_exhausted",
            HealthState::CoolingDown { .. } => "cooling_down",
            HealthState::Disabled => "disabled",
            HealthState::Unknown => "unknown",
        }
    }

    /// When a limit ends, for the states that have one.
    pub fn until(&self) -> Option<DateTime<Utc>> {
        match self {
            HealthState::QuotaExhausted { until } => *until,
            HealthState::CoolingDown { until } => Some(*until),
            _ => None,
        }
    }
}

/// An account's health and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Health {
    #[serde(flatten)]
    pub state: HealthState,
    /// The source of the deciding evidence (`None` when nothing decided: unknown).
    pub source: Option<Source>,
    pub detail: String,
    /// When the deciding evidence was observed.
    pub at: Option<DateTime<Utc>>,
    /// What to do about it, when the deciding evidence says (a classified credential failure).
    pub action: Option<Action>,
}

impl Health {
    /// `"Source · detail"`, or the bare detail when no evidence decided.
    pub fn reason(&self) -> String {
        match self.source {
            Some(source) => format!("{} · {}", source.label(), self.detail),
            None => self.detail.clone(),
        }
    }

    fn from(state: HealthState, evidence: &Evidence) -> Self {
        let action = match evidence.signal {
            Signal::Invalid { action } => Some(action),
            _ => None,
        };
        Self { state, source: Some(evidence.source), detail: evidence.detail.clone(), at: Some(evidence.at), action }
    }
}

/// What is known about the account besides its evidence.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The auth file's (or config key's) `disabled` switch: the truth about being disabled.
    pub disabled: bool,
    /// Who disabled it, as recorded in the file.
    pub disabled_by: Option<Actor>,
    /// When the current credential was first seen; older evidence is about a replaced one.
    pub credential_since: Option<DateTime<Utc>>,
}

/// The account's health as of `now`. `evidence` is in recording order (oldest first); items
/// with equal times count as recorded.
pub fn evaluate(evidence: &[Evidence], facts: &Facts, now: DateTime<Utc>) -> Health {
    let mut newest_first: Vec<&Evidence> =
        evidence.iter().rev().filter(|e| facts.credential_since.is_none_or(|since| e.at >= since)).collect();
    // Stable: equal times keep "later recorded first".
    newest_first.sort_by_key(|e| std::cmp::Reverse(e.at));

    if facts.disabled {
        return disabled(&newest_first, facts.disabled_by);
    }

    let mut warning: Option<&Evidence> = None;
    let mut accepted: Option<&Evidence> = None;
    let mut limits_reset = false;
    for evidence in newest_first {
        match &evidence.signal {
            Signal::Ok => {
                return match warning {
                    Some(warning) => Health::from(HealthState::Warning, warning),
                    None => Health::from(HealthState::Healthy, evidence),
                };
            }
            Signal::AuthOk => {
                accepted.get_or_insert(evidence);
            }
            Signal::Trouble => {
                warning.get_or_insert(evidence);
            }
            Signal::Invalid { action } => {
                if accepted.is_some() {
                    continue;
                }
                let state = if *action == Action::Reauth { HealthState::NeedsRelogin } else { HealthState::Warning };
                return Health::from(state, evidence);
            }
            Signal::Exhausted { until } => {
                if !limits_reset && until.is_none_or(|until| until > now) {
                    return Health::from(HealthState::QuotaExhausted { until: *until }, evidence);
                }
                // The quota answered, so the credential worked then.
                accepted.get_or_insert(evidence);
            }
            Signal::Cooling { until } => {
                if !limits_reset && *until > now {
                    return Health::from(HealthState::CoolingDown { until: *until }, evidence);
                }
                accepted.get_or_insert(evidence);
            }
            Signal::Reset => limits_reset = true,
            Signal::Disabled { .. } | Signal::Enabled { .. } => {}
        }
    }
    match (warning, accepted) {
        (Some(warning), _) => Health::from(HealthState::Warning, warning),
        // Only a refresh, or limits that have passed: the credential is accepted.
        (None, Some(accepted)) if matches!(accepted.signal, Signal::AuthOk) => {
            Health::from(HealthState::Healthy, accepted)
        }
        (None, Some(passed)) => Health {
            state: HealthState::Healthy,
            source: Some(passed.source),
            detail: format!("{} (over)", passed.detail),
            at: Some(passed.at),
            action: None,
        },
        (None, None) => Health {
            state: HealthState::Unknown,
            source: None,
            detail: "no evidence yet".into(),
            at: None,
            action: None,
        },
    }
}

/// Disabled, with the reason of the newest disable evidence, else the owner the file records.
fn disabled(newest_first: &[&Evidence], owner: Option<Actor>) -> Health {
    let newest_disable = newest_first.iter().find(|e| matches!(e.signal, Signal::Disabled { .. }));
    if let Some(evidence) = newest_disable {
        return Health::from(HealthState::Disabled, evidence);
    }
    let (source, detail) = match owner {
        Some(Actor::Manual) | None => (Source::Manual, "disabled in the auth file".to_owned()),
        Some(Actor::Inspection) => (Source::Inspection, "disabled by an inspection".to_owned()),
        Some(Actor::Quota) => (Source::Quota, "disabled while its quota is exhausted".to_owned()),
        Some(Actor::AuthIssue) => (Source::Request, "disabled after a credential failure".to_owned()),
    };
    Health { state: HealthState::Disabled, source: Some(source), detail, at: None, action: None }
}

#[cfg(test)]
mod tests;
