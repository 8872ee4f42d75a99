//! The recent evidence of every account, in memory: a bounded ring per account (the newest
//! [`HealthBook::CAPACITY`] items), plus its latest quota reading.
//!
//! Each account's evidence belongs to one credential, named by a fingerprint the caller
//! computes (a hash of the refresh token, say; never the token). When the fingerprint changes
//! the credential was replaced — a re-login — and the old evidence is dropped, so it never
//! re-attaches. A refresh that rotates the token is the same credential: [`HealthBook::adopt`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};

use chrono::{DateTime, Utc};

use crate::evidence::Evidence;
use crate::quota::QuotaEvidence;
use crate::state::{Facts, Health, evaluate};

#[derive(Default)]
struct Ring {
    fingerprint: Option<String>,
    /// When the current credential was first seen replacing another one.
    since: Option<DateTime<Utc>>,
    items: VecDeque<Evidence>,
    quota: Option<(DateTime<Utc>, QuotaEvidence)>,
}

impl Ring {
    /// Starts over when `fingerprint` names another credential; `true` when it did.
    fn check(&mut self, fingerprint: Option<&str>, now: DateTime<Utc>) -> bool {
        let Some(fingerprint) = fingerprint else { return false };
        match &self.fingerprint {
            Some(known) if known == fingerprint => false,
            Some(_) => {
                self.items.clear();
                self.quota = None;
                self.since = Some(now);
                self.fingerprint = Some(fingerprint.to_owned());
                true
            }
            None => {
                self.fingerprint = Some(fingerprint.to_owned());
                false
            }
        }
    }
}

/// Share as `Arc<HealthBook>`; every call holds one short lock.
#[derive(Default)]
pub struct HealthBook {
    accounts: Mutex<HashMap<String, Ring>>,
}

impl HealthBook {
    /// Items kept per account.
    pub const CAPACITY: usize = 32;

    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `evidence` for `account`, whose credential is `fingerprint` (`None`: not checked).
    pub fn record(&self, account: &str, fingerprint: Option<&str>, evidence: Evidence) {
        let mut accounts = self.lock();
        let ring = accounts.entry(account.to_owned()).or_default();
        ring.check(fingerprint, evidence.at);
        if ring.items.len() == Self::CAPACITY {
            ring.items.pop_front();
        }
        ring.items.push_back(evidence);
    }

    /// Keeps a quota reading (the latest one wins) and records what it says, if anything.
    pub fn record_quota(
        &self,
        account: &str,
        fingerprint: Option<&str>,
        provider: &str,
        quota: QuotaEvidence,
        at: DateTime<Utc>,
    ) -> Option<Evidence> {
        let evidence = quota.to_evidence(provider, at);
        {
            let mut accounts = self.lock();
            let ring = accounts.entry(account.to_owned()).or_default();
            ring.check(fingerprint, at);
            ring.quota = Some((at, quota));
        }
        if let Some(evidence) = &evidence {
            self.record(account, fingerprint, evidence.clone());
        }
        evidence
    }

    /// The credential changed without a re-login (a refresh rotated the token): keep the
    /// evidence, follow the new fingerprint.
    pub fn adopt(&self, account: &str, fingerprint: &str) {
        self.lock().entry(account.to_owned()).or_default().fingerprint = Some(fingerprint.to_owned());
    }

    /// Checks the account's current credential; `true` when it replaced the one the evidence
    /// was about (which is then dropped).
    pub fn observe_credential(&self, account: &str, fingerprint: &str, now: DateTime<Utc>) -> bool {
        self.lock().entry(account.to_owned()).or_default().check(Some(fingerprint), now)
    }

    /// The account's evidence, oldest first (empty for an account never seen).
    pub fn evidence(&self, account: &str) -> Vec<Evidence> {
        self.lock().get(account).map(|ring| ring.items.iter().cloned().collect()).unwrap_or_default()
    }

    /// The latest quota reading of the account's current credential, with when it was read.
    pub fn latest_quota(&self, account: &str) -> Option<(DateTime<Utc>, QuotaEvidence)> {
        self.lock().get(account).and_then(|ring| ring.quota.clone())
    }

    /// The account's health: its evidence (after checking `fingerprint`) under `facts`.
    pub fn health(&self, account: &str, fingerprint: Option<&str>, facts: &Facts, now: DateTime<Utc>) -> Health {
        let mut accounts = self.lock();
        let Some(ring) = accounts.get_mut(account) else {
            return evaluate(&[], facts, now);
        };
        ring.check(fingerprint, now);
        let facts = Facts { credential_since: ring.since.max(facts.credential_since), ..facts.clone() };
        evaluate(ring.items.make_contiguous(), &facts, now)
    }

    /// Forgets accounts `keep` says are gone.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.lock().retain(|account, _| keep(account));
    }

    // Every update is a few pushes and field writes on one entry: a poisoned map is consistent.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Ring>> {
        self.accounts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::evidence::{Action, Signal, Source};
    use crate::state::HealthState;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-06-01T12:00:00Z").unwrap().to_utc() + Duration::minutes(minutes)
    }

    fn revoked(minutes: i64) -> Evidence {
        Evidence::new(at(minutes), Source::Refresh, Signal::Invalid { action: Action::Reauth }, "invalid_grant")
    }

    #[test]
    fn the_ring_keeps_the_newest_items() {
        let book = HealthBook::new();
        for i in 0..(HealthBook::CAPACITY as i64 + 5) {
            book.record("a", None, Evidence::new(at(i), Source::Request, Signal::Ok, format!("#{i}")));
        }
        let kept = book.evidence("a");
        assert_eq!(kept.len(), HealthBook::CAPACITY);
        assert_eq!(kept[0].detail, "#5");
        assert!(book.evidence("never-seen").is_empty());
    }

    #[test]
    fn a_relogin_clears_old_evidence_and_it_never_reattaches() {
        let book = HealthBook::new();
        book.record("a", Some("fp-1"), revoked(0));
        let facts = Facts::default();
        assert_eq!(book.health("a", Some("fp-1"), &facts, at(1)).state, HealthState::NeedsRelogin);
        // Logged in again: another credential.
        assert_eq!(book.health("a", Some("fp-2"), &facts, at(2)).state, HealthState::Unknown);
        assert!(book.evidence("a").is_empty());
        // Evidence dated before the re-login (a late report about the old credential) is ignored.
        book.record("a", Some("fp-2"), revoked(1));
        assert_eq!(book.health("a", Some("fp-2"), &facts, at(3)).state, HealthState::Unknown);
        book.record("a", Some("fp-2"), Evidence::new(at(4), Source::Request, Signal::Ok, "HTTP 200"));
        assert_eq!(book.health("a", Some("fp-2"), &facts, at(5)).state, HealthState::Healthy);
        assert!(!book.observe_credential("a", "fp-2", at(6)));
        assert!(book.observe_credential("a", "fp-3", at(6)));
    }

    #[test]
    fn a_rotated_token_is_adopted_without_losing_evidence() {
        let book = HealthBook::new();
        let exhausted = Evidence::new(at(0), Source::Quota, Signal::Exhausted { until: Some(at(60)) }, "weekly full");
        book.record("a", Some("rt-1"), exhausted);
        book.adopt("a", "rt-2");
        let health = book.health("a", Some("rt-2"), &Facts::default(), at(1));
        assert_eq!(health.state, HealthState::QuotaExhausted { until: Some(at(60)) });
    }

    #[test]
    fn quota_readings_are_kept_and_recorded() {
        use crate::quota::{QuotaFailure, QuotaOrigin, QuotaReading};
        let book = HealthBook::new();
        let reading = QuotaEvidence::Report(QuotaReading {
            plan: None,
            windows: vec![],
            observed_at: at(0),
            source: QuotaOrigin::ApiQuery,
        });
        let recorded = book.record_quota("a", Some("fp"), "codex", reading.clone(), at(0)).unwrap();
        assert_eq!(recorded.signal, Signal::Ok);
        assert_eq!(book.latest_quota("a"), Some((at(0), reading)));
        let quiet = QuotaEvidence::Failed(QuotaFailure::Transport("timeout".into()));
        assert_eq!(book.record_quota("a", Some("fp"), "codex", quiet, at(1)), None);
        assert_eq!(book.evidence("a").len(), 1);
        // A re-login forgets the reading too.
        book.observe_credential("a", "fp-new", at(2));
        assert_eq!(book.latest_quota("a"), None);
    }

    #[test]
    fn retain_forgets_removed_accounts() {
        let book = HealthBook::new();
        book.record("a", None, revoked(0));
        book.record("b", None, revoked(0));
        book.retain(|account| account == "b");
        assert!(book.evidence("a").is_empty());
        assert_eq!(book.evidence("b").len(), 1);
    }
}
