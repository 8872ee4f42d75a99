//! What an inspection recommends for one probed account.
//!
//! Two kinds of probe: a quota probe (Codex `wham/usage`, xAI billing), decided by the §4.6
//! table over its status, body and windows; and a request probe (one tiny real request through
//! the account), decided by the §4.5 classification. Ambiguous outcomes (transport errors, 5xx,
//! rate limits) always keep the account as it is.

use serde::Serialize;

use crate::classify::{Confidence, FailureSignal, classify};
use crate::evidence::Action;
use crate::ownership::Actor;
use crate::quota::{QuotaEvidence, QuotaFailure, QuotaWindowReading, WindowKind};
use crate::state::{Health, HealthState};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recommendation {
    Keep,
    Delete,
    Reauth,
    Disable,
    Enable,
}

impl Recommendation {
    pub fn as_str(self) -> &'static str {
        match self {
            Recommendation::Keep => "keep",
            Recommendation::Delete => "delete",
            Recommendation::Reauth => "reauth",
            Recommendation::Disable => "disable",
            Recommendation::Enable => "enable",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Keep, Self::Delete, Self::Reauth, Self::Disable, Self::Enable].into_iter().find(|r| r.as_str() == text)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Critical,
    High,
    Medium,
    Low,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub action: Recommendation,
    pub reason: String,
    pub priority: Priority,
    /// May run without a person (a scheduled run with auto-actions on). An enable is automatic
    /// only when the inspection itself disabled the account.
    pub automatic: bool,
}

fn decision(action: Recommendation, reason: impl Into<String>, automatic: bool) -> Decision {
    let priority = match action {
        Recommendation::Reauth => Priority::Critical,
        Recommendation::Delete | Recommendation::Disable => Priority::High,
        Recommendation::Enable => Priority::Medium,
        Recommendation::Keep => Priority::Low,
    };
    Decision { action, reason: reason.into(), priority, automatic }
}

/// The account as the inspection finds it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccountFacts {
    pub disabled: bool,
    pub disabled_by: Option<Actor>,
}

impl AccountFacts {
    fn inspection_owns_disable(&self) -> bool {
        self.disabled && self.disabled_by == Some(Actor::Inspection)
    }
}

/// A quota probe's outcome (§4.6): the `/api-call` answer's status and body, and the windows
/// read from it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QuotaProbe {
    pub auth_index: Option<String>,
    /// `None`: the call produced no status (transport failure, no quota source).
    pub status: Option<u16>,
    /// Error body (redacted) when the status is not 2xx.
    pub body: String,
    pub plan: Option<String>,
    pub windows: Vec<QuotaWindowReading>,
}

impl QuotaProbe {
    /// From one quota fetch's evidence.
    pub fn from_evidence(auth_index: &str, evidence: &QuotaEvidence) -> Self {
        let auth_index = Some(auth_index.to_owned()).filter(|i| !i.is_empty());
        match evidence {
            QuotaEvidence::Report(report) => QuotaProbe {
                auth_index,
                status: Some(200),
                body: String::new(),
                plan: report.plan.clone(),
                windows: report.windows.clone(),
            },
            QuotaEvidence::Failed(
                QuotaFailure::Unauthorized { status, body } | QuotaFailure::Upstream { status, body },
            ) => QuotaProbe { auth_index, status: Some(*status), body: body.clone(), ..Default::default() },
            QuotaEvidence::Failed(_) => QuotaProbe { auth_index, ..Default::default() },
        }
    }

    /// The long window: monthly for team plans (when there is one), else weekly, else any long one.
    fn long_window(&self) -> Option<&QuotaWindowReading> {
        let long = || self.windows.iter().filter(|w| w.kind == WindowKind::Long);
        let named = |names: &[&str]| long().find(|w| names.iter().any(|n| w.id.eq_ignore_ascii_case(n)));
        let team = self.plan.as_deref().is_some_and(|p| p.to_lowercase().contains("team"));
        let monthly = || named(&["monthly", "30d", "month"]);
        let weekly = || named(&["weekly", "7d", "week"]);
        (if team { monthly().or_else(weekly) } else { weekly().or_else(monthly) }).or_else(|| long().next())
    }

    fn short_window(&self) -> Option<&QuotaWindowReading> {
        self.windows.iter().find(|w| w.kind == WindowKind::Short)
    }
}

fn used(window: &QuotaWindowReading) -> String {
    match window.used_percent {
        Some(used) => format!("{} {} % used", window.label, used.round()),
        None if window.exhausted => format!("{} exhausted", window.label),
        None => format!("{} usage unknown", window.label),
    }
}

const LEGACY_EXHAUSTED_WORDING: &[&str] = &["quota exhausted", "limit reached", "payment_required", "limit_reached"];

/// The §4.6 decision table, first match wins. `threshold` is the quota percent that counts as
/// full (default 100).
pub fn decide_quota_probe(probe: &QuotaProbe, account: AccountFacts, threshold: f64) -> Decision {
    use Recommendation::{Delete, Disable, Enable, Keep, Reauth};
    let Some(status) = probe.status.filter(|_| probe.auth_index.is_some()) else {
        return decision(Keep, "probe gave no status code; nothing changed (logged)", false);
    };
    let body = probe.body.to_lowercase();
    if status == 402 && body.contains("deactivated_workspace") {
        return decision(Delete, "workspace deactivated (402 deactivated_workspace): the file is stale", true);
    }
    if status == 401 {
        let why = if body.contains("expired") {
            "token expired"
        } else if body.contains("invalidated") || body.contains("revoked") {
            "token invalidated"
        } else {
            "unauthorized"
        };
        return decision(Reauth, format!("401 {why}: sign in again"), true);
    }
    let long = probe.long_window();
    let short = probe.short_window();
    if let Some(long) = long.filter(|w| w.is_full(threshold)) {
        return if account.disabled {
            decision(Keep, format!("{}; already disabled", used(long)), false)
        } else {
            decision(Disable, format!("{}: at the limit", used(long)), true)
        };
    }
    if account.disabled
        && let Some(short) = short.filter(|w| w.is_full(threshold))
    {
        return decision(Keep, format!("{} still at the limit; stays disabled", used(short)), false);
    }
    if account.disabled
        && let Some(long) = long.filter(|w| w.used_percent.is_some() || w.exhausted)
    {
        return if account.inspection_owns_disable() {
            decision(Enable, format!("{}: below the limit again", used(long)), true)
        } else {
            decision(Enable, format!("{}: below the limit again (manual enable only)", used(long)), false)
        };
    }
    if let Some(short) = short.filter(|w| w.is_full(threshold)) {
        return decision(Keep, format!("{} at the limit, long window fine; recovers by itself", used(short)), false);
    }
    if long.is_none() && short.is_none() {
        let legacy_full = status == 402
            || LEGACY_EXHAUSTED_WORDING.iter().any(|w| body.contains(w))
            || probe.windows.iter().any(|w| w.is_full(threshold));
        if legacy_full {
            return if account.disabled {
                decision(Keep, "quota exhausted (no window data); already disabled", false)
            } else {
                decision(Disable, format!("quota exhausted (HTTP {status}, no window data)"), true)
            };
        }
    }
    decision(Keep, format!("HTTP {status}; quota fine"), false)
}

/// A request probe's outcome: the status the pinned request ended with, and its error.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestProbe {
    /// `None`: the probe did not finish (timed out, or could not be sent).
    pub status: Option<u16>,
    /// The error, when the status is not 2xx.
    pub failure: Option<FailureSignal>,
}

/// The recommendation after a request probe. `health` is the account's health with the probe's
/// evidence in: a refused refresh token shows there even when the probe's own error is bare.
pub fn decide_request_probe(probe: &RequestProbe, account: AccountFacts, health: &Health) -> Decision {
    use Recommendation::{Delete, Disable, Enable, Keep, Reauth};
    let Some(status) = probe.status else {
        return decision(Keep, "probe did not finish; nothing changed", false);
    };
    if (200..300).contains(&status) {
        if !account.disabled {
            return decision(Keep, format!("probe answered HTTP {status}"), false);
        }
        return if account.inspection_owns_disable() {
            decision(Enable, format!("probe answered HTTP {status}"), true)
        } else {
            decision(Enable, format!("probe answered HTTP {status} (manual enable only)"), false)
        };
    }
    let classified = probe.failure.as_ref().and_then(classify);
    match classified {
        Some(class) if class.action == Action::Delete => {
            return decision(Delete, format!("HTTP {status}: {}", class.reason_code), class.auto_disable);
        }
        Some(class) if class.action == Action::Reauth => {
            return decision(Reauth, format!("HTTP {status}: {}", class.reason_code), class.auto_disable);
        }
        Some(class) if class.confidence == Confidence::High => {
            let reason = format!("HTTP {status}: {}", class.reason_code);
            return if account.disabled {
                decision(Keep, format!("{reason}; already disabled"), false)
            } else {
                decision(Disable, reason, class.auto_disable)
            };
        }
        _ => {}
    }
    if health.state == HealthState::NeedsRelogin {
        return decision(Reauth, health.reason(), true);
    }
    let reason = match classified {
        Some(class) => format!("HTTP {status}: {} — review manually", class.reason_code),
        None => format!("HTTP {status}: ambiguous; nothing changed"),
    };
    decision(Keep, reason, false)
}

#[cfg(test)]
mod tests;
