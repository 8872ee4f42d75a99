//! Quota in the server: the last reading of every account (asked of the provider's quota
//! endpoint on demand or on the `quota.refresh-interval-seconds` schedule, or seen in the
//! headers and 429 bodies of relayed answers), kept with when and how it was observed, fed into
//! account health, and shown by `GET /v0/management/quota`.
//!
//! A reading belongs to the credential it was read with: after a re-login the old one is not
//! shown for the new token. A failed fetch keeps the last good reading beside the error.

mod fetch;
mod view;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use switchyard_health::quota::{
    QuotaEvidence, QuotaFailure, QuotaOrigin, QuotaReading, QuotaWindowReading, WindowKind as HealthKind,
};
use switchyard_providers::quota::{QuotaError, QuotaFetcher, QuotaReport, QuotaSource, WindowKind};

pub(crate) use fetch::{Unfetchable, fetch_account, observe, refresh, spawn_schedule};
pub(crate) use view::{accounts, aggregate_json};

/// How often quota seen in relayed answers is passed on to health when nothing changed.
const OBSERVED_HEALTH_EVERY: chrono::Duration = chrono::Duration::seconds(60);

/// One account's readings.
#[derive(Clone, Debug)]
pub(crate) struct QuotaEntry {
    /// The credential the readings belong to ([`crate::account_health::credential_fingerprint`]).
    pub fingerprint: Option<String>,
    /// The last good reading.
    pub report: Option<QuotaReport>,
    /// The last fetch's failure, when it came after the last good reading.
    pub error: Option<(QuotaError, DateTime<Utc>)>,
    /// When health last heard of a reading seen in a relayed answer.
    told_health: Option<(DateTime<Utc>, bool)>,
}

/// Shared through [`crate::AppState::quota`].
pub struct QuotaService {
    fetchers: HashMap<&'static str, Arc<dyn QuotaFetcher>>,
    entries: Mutex<HashMap<String, QuotaEntry>>,
}

impl Default for QuotaService {
    fn default() -> Self {
        let fetchers =
            switchyard_providers::all().iter().filter_map(|p| p.quota().map(|fetcher| (p.id(), fetcher))).collect();
        Self { fetchers, entries: Mutex::new(HashMap::new()) }
    }
}

impl QuotaService {
    /// The quota fetcher of `provider`, if it has a quota source.
    pub(crate) fn fetcher(&self, provider: &str) -> Option<&Arc<dyn QuotaFetcher>> {
        self.fetchers.get(provider)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, QuotaEntry>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The readings of `account_id` that belong to the credential `fingerprint`.
    pub(crate) fn entry(&self, account_id: &str, fingerprint: Option<&str>) -> Option<QuotaEntry> {
        self.lock().get(account_id).filter(|e| e.fingerprint.as_deref() == fingerprint).cloned()
    }

    /// Keeps a fetch's outcome: a reading replaces the last one and clears the error; a
    /// failure is kept beside the last good reading.
    pub(crate) fn record(
        &self,
        account_id: &str,
        fingerprint: Option<&str>,
        outcome: &Result<QuotaReport, QuotaError>,
        at: DateTime<Utc>,
    ) {
        let mut entries = self.lock();
        let entry = entries.entry(account_id.to_owned()).or_insert_with(|| empty(fingerprint));
        if entry.fingerprint.as_deref() != fingerprint {
            *entry = empty(fingerprint);
        }
        match outcome {
            Ok(report) => {
                entry.report = Some(report.clone());
                entry.error = None;
            }
            Err(error) => entry.error = Some((error.clone(), at)),
        }
    }

    /// Keeps a reading seen in a relayed answer; answers whether health should hear of it
    /// (the first one, an exhaustion that came or went, else once a minute).
    pub(crate) fn record_observed(&self, account_id: &str, fingerprint: Option<&str>, report: &QuotaReport) -> bool {
        self.record(account_id, fingerprint, &Ok(report.clone()), report.observed_at);
        let exhausted = report_exhausted(report);
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(account_id) else { return false };
        let tell = match entry.told_health {
            Some((at, was)) => was != exhausted || report.observed_at - at >= OBSERVED_HEALTH_EVERY,
            None => true,
        };
        if tell {
            entry.told_health = Some((report.observed_at, exhausted));
        }
        tell
    }

    /// Forgets the readings of accounts that no longer exist.
    pub(crate) fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.lock().retain(|id, _| keep(id));
    }
}

fn empty(fingerprint: Option<&str>) -> QuotaEntry {
    QuotaEntry { fingerprint: fingerprint.map(str::to_owned), report: None, error: None, told_health: None }
}

/// Whether a window that limits the whole account is full.
pub(crate) fn report_exhausted(report: &QuotaReport) -> bool {
    report.windows.iter().any(|w| account_wide(w.kind) && w.exhausted && !w.unlimited)
}

pub(crate) fn account_wide(kind: WindowKind) -> bool {
    !matches!(kind, WindowKind::Model | WindowKind::Feature)
}

/// A fetch's outcome as health evidence (1:1 onto the health crate's mirror types); `None` for
/// failures that say nothing about the account (its token could not even be had).
pub(crate) fn evidence(outcome: &Result<QuotaReport, QuotaError>) -> Option<QuotaEvidence> {
    Some(match outcome {
        Ok(report) => QuotaEvidence::Report(QuotaReading {
            plan: report.plan.clone(),
            windows: report.windows.iter().map(window_reading).collect(),
            observed_at: report.observed_at,
            source: match report.source {
                QuotaSource::ApiQuery => QuotaOrigin::ApiQuery,
                QuotaSource::ResponseHeader => QuotaOrigin::ResponseHeader,
                QuotaSource::ResponseBody => QuotaOrigin::ResponseBody,
            },
        }),
        Err(QuotaError::Unauthorized { status, body }) => {
            QuotaEvidence::Failed(QuotaFailure::Unauthorized { status: *status, body: body.clone() })
        }
        Err(QuotaError::Upstream { status, body }) => {
            QuotaEvidence::Failed(QuotaFailure::Upstream { status: *status, body: body.clone() })
        }
        Err(QuotaError::Transport { message }) => QuotaEvidence::Failed(QuotaFailure::Transport(message.clone())),
        Err(QuotaError::Parse { message }) => QuotaEvidence::Failed(QuotaFailure::Parse(message.clone())),
        Err(QuotaError::Credential { .. }) => return None,
    })
}

fn window_reading(window: &switchyard_providers::quota::QuotaWindow) -> QuotaWindowReading {
    QuotaWindowReading {
        id: window.id.clone(),
        label: window.label.clone(),
        kind: match window.kind {
            WindowKind::Short => HealthKind::Short,
            WindowKind::Long => HealthKind::Long,
            WindowKind::Model => HealthKind::Model,
            WindowKind::Feature => HealthKind::Feature,
            WindowKind::Credits => HealthKind::Credits,
            WindowKind::Other => HealthKind::Other,
        },
        used_percent: window.used_percent,
        used: window.used,
        limit: window.limit,
        resets_at: window.resets_at,
        exhausted: window.exhausted,
        unlimited: window.unlimited,
    }
}
