//! Quota evidence: what the health model takes from a quota fetch. The types mirror the
//! providers' quota report (`QuotaReport`, `QuotaWindow`, `WindowKind`, `QuotaError`) field for
//! field, so an adapter maps one onto the other 1:1 without this crate depending on providers.
//!
//! What a reading says: an account-wide window that is exhausted is a limit until its reset; a
//! window nearly used up is a warning; a reading below every limit is healthy; missing numbers
//! stay unknown (never "unlimited"). A 401/403 is classified like any credential failure; an
//! ambiguous failure (transport, parse, 5xx, no quota source) says nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::classify::{FailureSignal, classify};
use crate::evidence::{Evidence, Signal, Source};

/// A window this full (percent) makes the account "low on quota".
pub const LOW_QUOTA_PERCENT: f64 = 90.0;

/// Mirrors `QuotaSource`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaOrigin {
    ApiQuery,
    ResponseHeader,
    ResponseBody,
}

/// Mirrors `WindowKind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// 5-hour / session windows.
    Short,
    /// Weekly, monthly.
    Long,
    /// One model's own window (`model:<name>`).
    Model,
    /// One feature's or model family's window (code review, premium requests, paid extras).
    Feature,
    Credits,
    Other,
}

/// Mirrors `QuotaWindow`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuotaWindowReading {
    /// Stable: `5h`, `weekly`, `monthly`, `model:<name>`, `credits`, ...
    pub id: String,
    pub label: String,
    pub kind: WindowKind,
    /// 0..=100; `None` = unknown.
    pub used_percent: Option<f64>,
    pub used: Option<f64>,
    pub limit: Option<f64>,
    pub resets_at: Option<DateTime<Utc>>,
    pub exhausted: bool,
    pub unlimited: bool,
}

impl QuotaWindowReading {
    /// Full by the provider's word or by the numbers.
    pub fn is_full(&self, threshold_percent: f64) -> bool {
        !self.unlimited && (self.exhausted || self.used_percent.is_some_and(|used| used >= threshold_percent))
    }
}

/// Mirrors `QuotaReport`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuotaReading {
    pub plan: Option<String>,
    pub windows: Vec<QuotaWindowReading>,
    pub observed_at: DateTime<Utc>,
    pub source: QuotaOrigin,
}

/// Mirrors `QuotaError`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaFailure {
    /// 401/403; the body already redacted.
    Unauthorized {
        status: u16,
        body: String,
    },
    /// Another non-2xx (402 `deactivated_workspace`, 429, ...).
    Upstream {
        status: u16,
        body: String,
    },
    Transport(String),
    Unsupported,
    Parse(String),
}

/// One quota fetch's result: `Result<QuotaReport, QuotaError>` mapped over.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaEvidence {
    Report(QuotaReading),
    Failed(QuotaFailure),
}

impl QuotaEvidence {
    /// What the fetch says about the account of `provider`, observed at `at` (the report's own
    /// time wins); `None` when it says nothing.
    pub fn to_evidence(&self, provider: &str, at: DateTime<Utc>) -> Option<Evidence> {
        match self {
            QuotaEvidence::Report(report) => Some(reading_evidence(report)),
            QuotaEvidence::Failed(QuotaFailure::Unauthorized { status, body })
            | QuotaEvidence::Failed(QuotaFailure::Upstream { status, body }) => {
                let (signal, detail) = match classify(&FailureSignal::from_body(provider, *status, body)) {
                    Some(class) => (class.signal(), format!("quota fetch HTTP {status}: {}", class.reason_code)),
                    // A quota endpoint's 429 is about the endpoint, not the account's quota.
                    None if *status == 429 || *status >= 500 => return None,
                    None => (Signal::Trouble, format!("quota fetch HTTP {status}")),
                };
                Some(Evidence::new(at, Source::Quota, signal, detail))
            }
            QuotaEvidence::Failed(_) => None,
        }
    }

    /// Whether the report shows an account-wide window full (per-model and per-feature windows
    /// do not count).
    pub fn account_exhausted(&self, threshold_percent: f64) -> Option<bool> {
        match self {
            QuotaEvidence::Report(report) => {
                Some(account_windows(report).any(|window| window.is_full(threshold_percent)))
            }
            QuotaEvidence::Failed(_) => None,
        }
    }
}

/// Windows whose exhaustion stops the whole account.
fn account_windows(report: &QuotaReading) -> impl Iterator<Item = &QuotaWindowReading> {
    report.windows.iter().filter(|w| !matches!(w.kind, WindowKind::Model | WindowKind::Feature))
}

fn percent(used: Option<f64>) -> String {
    used.map_or_else(|| "?".to_owned(), |used| format!("{} %", used.round()))
}

fn reading_evidence(report: &QuotaReading) -> Evidence {
    let at = report.observed_at;
    let full: Vec<&QuotaWindowReading> = account_windows(report).filter(|w| w.is_full(100.0)).collect();
    if !full.is_empty() {
        // Usable again once every full window has reset; unknown if any reset time is.
        let until = full.iter().map(|w| w.resets_at).collect::<Option<Vec<_>>>().and_then(|t| t.into_iter().max());
        let names: Vec<&str> = full.iter().map(|w| w.label.as_str()).collect();
        let detail = format!("{} exhausted", names.join(", "));
        return Evidence::new(at, Source::Quota, Signal::Exhausted { until }, detail);
    }
    let low: Vec<String> = report
        .windows
        .iter()
        // Account-wide windows are below 100 % here; a full per-model or feature window lands here too.
        .filter(|w| w.is_full(LOW_QUOTA_PERCENT))
        .map(|w| {
            if w.exhausted {
                format!("{} exhausted", w.label)
            } else {
                format!("{} {} used", w.label, percent(w.used_percent))
            }
        })
        .collect();
    if !low.is_empty() {
        return Evidence::new(at, Source::Quota, Signal::Trouble, format!("low quota: {}", low.join(", ")));
    }
    let known: Vec<String> = report
        .windows
        .iter()
        .filter(|w| w.used_percent.is_some())
        .map(|w| format!("{} {}", w.label, percent(w.used_percent)))
        .collect();
    let detail = if known.is_empty() { "quota read; usage unknown".to_owned() } else { known.join(", ") };
    Evidence::new(at, Source::Quota, Signal::Ok, detail)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::evidence::Action;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap()
    }

    pub(crate) fn window(id: &str, kind: WindowKind, used: Option<f64>) -> QuotaWindowReading {
        QuotaWindowReading {
            id: id.into(),
            label: id.into(),
            kind,
            used_percent: used,
            used: None,
            limit: None,
            resets_at: None,
            exhausted: used.is_some_and(|u| u >= 100.0),
            unlimited: false,
        }
    }

    fn report(windows: Vec<QuotaWindowReading>) -> QuotaEvidence {
        QuotaEvidence::Report(QuotaReading {
            plan: Some("plus".into()),
            windows,
            observed_at: now(),
            source: QuotaOrigin::ApiQuery,
        })
    }

    fn signal(evidence: &QuotaEvidence) -> Option<Signal> {
        evidence.to_evidence("codex", now()).map(|e| e.signal)
    }

    #[test]
    fn an_exhausted_window_is_a_limit_until_its_reset() {
        let mut weekly = window("weekly", WindowKind::Long, Some(100.0));
        weekly.resets_at = Some(now() + chrono::Duration::days(3));
        let evidence =
            report(vec![window("5h", WindowKind::Short, Some(20.0)), weekly]).to_evidence("codex", now()).unwrap();
        assert_eq!(evidence.signal, Signal::Exhausted { until: Some(now() + chrono::Duration::days(3)) });
        assert_eq!(evidence.reason(), "Quota · weekly exhausted");
        // Exhausted by the provider's word, reset unknown.
        let mut credits = window("credits", WindowKind::Credits, None);
        credits.exhausted = true;
        assert_eq!(signal(&report(vec![credits])), Some(Signal::Exhausted { until: None }));
    }

    #[test]
    fn low_windows_and_full_model_windows_are_warnings() {
        assert_eq!(signal(&report(vec![window("5h", WindowKind::Short, Some(95.0))])), Some(Signal::Trouble));
        let model = report(vec![window("model:gemini-2.5-pro", WindowKind::Model, Some(100.0))]);
        assert_eq!(signal(&model), Some(Signal::Trouble));
        assert_eq!(model.account_exhausted(100.0), Some(false));
        let premium = report(vec![window("premium", WindowKind::Feature, Some(100.0))]);
        assert_eq!(signal(&premium), Some(Signal::Trouble));
        assert_eq!(premium.account_exhausted(100.0), Some(false));
    }

    #[test]
    fn a_reading_below_every_limit_is_healthy_and_unknown_stays_unknown() {
        let e =
            report(vec![window("5h", WindowKind::Short, Some(12.0)), window("weekly", WindowKind::Long, Some(40.0))])
                .to_evidence("codex", now())
                .unwrap();
        assert_eq!((e.signal, e.detail.as_str()), (Signal::Ok, "5h 12 %, weekly 40 %"));
        let e = report(vec![window("weekly", WindowKind::Long, None)]).to_evidence("codex", now()).unwrap();
        assert_eq!(e.detail, "quota read; usage unknown");
        // Unlimited only when said so: an unlimited window is never full.
        let mut unlimited = window("weekly", WindowKind::Long, Some(100.0));
        unlimited.unlimited = true;
        assert_eq!(signal(&report(vec![unlimited])), Some(Signal::Ok));
    }

    #[test]
    fn failures_are_classified_and_ambiguous_ones_say_nothing() {
        let revoked = QuotaEvidence::Failed(QuotaFailure::Unauthorized {
            status: 401,
            body: r#"{"error":{"code":"token_revoked"}}"#.into(),
        });
        assert_eq!(signal(&revoked), Some(Signal::Invalid { action: Action::Reauth }));
        let bare = QuotaEvidence::Failed(QuotaFailure::Unauthorized { status: 401, body: String::new() });
        assert_eq!(signal(&bare), Some(Signal::Trouble));
        let stale = QuotaEvidence::Failed(QuotaFailure::Upstream {
            status: 402,
            body: r#"{"detail":{"code":"deactivated_workspace"}}"#.into(),
        });
        assert_eq!(signal(&stale), Some(Signal::Invalid { action: Action::Delete }));
        for quiet in [
            QuotaFailure::Upstream { status: 429, body: String::new() },
            QuotaFailure::Upstream { status: 503, body: String::new() },
            QuotaFailure::Transport("timeout".into()),
            QuotaFailure::Unsupported,
            QuotaFailure::Parse("shape changed".into()),
        ] {
            assert_eq!(signal(&QuotaEvidence::Failed(quiet.clone())), None, "{quiet:?}");
        }
    }
}
