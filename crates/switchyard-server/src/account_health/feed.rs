//! Turning what happens into evidence: each attempt's outcome (classified), the router's 429
//! cooldowns, the refresher's results, quota readings. High-confidence credential failures
//! disable the account when `health.auto-disable` is on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use switchyard_auth::CredentialStore;
use switchyard_auth::login::{RefreshError, RefreshObserver};
use switchyard_config::ConfigHandle;
use switchyard_health::quota::QuotaEvidence;
use switchyard_health::{Actor, Confidence, Evidence, FailureSignal, HealthBook, Signal, Source, classify};
use switchyard_router::{AccountKind, Attempt, CooldownReason};

use super::{actions, credential_fingerprint, disabled_by, fingerprint_of};
use crate::AppState;

/// Details shown in health reasons stay short.
const MAX_DETAIL_CHARS: usize = 160;

fn short(text: &str) -> String {
    let text = switchyard_redact::text(text.trim());
    match text.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The attempt answered.
pub(crate) fn attempt_succeeded(state: &AppState, attempt: &Attempt) {
    let config = state.config.get();
    let Some(account) = state.router.account(&attempt.account_id) else { return };
    let fingerprint = fingerprint_of(state, &config, &account);
    let detail = format!("answered ({})", attempt.upstream_model);
    let evidence = Evidence::new(Utc::now(), Source::Request, Signal::Ok, detail);
    state.health.book.record(&attempt.account_id, fingerprint.as_deref(), evidence);
}

/// The attempt failed with `status` (0: no answer) and `message` (redacted upstream text, or
/// why there was no answer); `read` is the upstream error as the attempt read it, if it got
/// one. Returns the failure as read, for probes that want to classify it themselves.
pub(crate) async fn attempt_failed(
    state: &AppState,
    attempt: &Attempt,
    status: u16,
    message: &str,
    read: Option<FailureSignal>,
) -> FailureSignal {
    let failure = read.unwrap_or_else(|| FailureSignal::from_body(&attempt.provider, status, message));
    let Some(account) = state.router.account(&attempt.account_id) else { return failure };
    let config = state.config.get();
    let fingerprint = fingerprint_of(state, &config, &account);
    let class = classify(&failure);
    let signal = class.map_or(Signal::Trouble, |class| class.signal());
    let detail = match (class, status) {
        (Some(class), _) => format!("HTTP {status}: {}", class.reason_code),
        (None, 0) => format!("no answer: {}", short(message)),
        (None, _) if failure.message.is_empty() => format!("HTTP {status}"),
        // The message is the raw upstream text: shown only after redaction.
        (None, _) => format!("HTTP {status}: {}", short(&failure.message)),
    };
    let now = Utc::now();
    let book = &state.health.book;
    book.record(&attempt.account_id, fingerprint.as_deref(), Evidence::new(now, Source::Request, signal, detail));

    // The router's 429 cooldown, with its reset time.
    if status == 429 {
        let health = state.router.health(&attempt.account_id, Instant::now());
        let model = attempt.upstream_model.to_lowercase();
        let wait = health
            .models
            .iter()
            .find(|m| m.model == model && matches!(m.reason, CooldownReason::Quota | CooldownReason::CredentialQuota))
            .map(|m| m.retry_after)
            .or_else(|| {
                matches!(health.reason, Some(CooldownReason::Quota | CooldownReason::CredentialQuota))
                    .then_some(health.next_retry_after)
                    .flatten()
            });
        if let Some(wait) = wait {
            let until = now + chrono::Duration::from_std(wait).unwrap_or_default();
            let detail = format!("429 {}: {} cooling for {}", attempt.upstream_model, account.provider, seconds(wait));
            book.record(
                &attempt.account_id,
                fingerprint.as_deref(),
                Evidence::new(now, Source::Cooldown, Signal::Cooling { until }, detail),
            );
        }
    }

    if let (Some(class), AccountKind::OAuth { file }) = (class, &account.kind)
        && class.auto_disable
        && class.confidence == Confidence::High
    {
        actions::auto_disable(&state.config, &state.store, book, file, Actor::AuthIssue, class.reason_code).await;
    }
    failure
}

fn seconds(wait: Duration) -> String {
    match wait.as_secs() {
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// `/reset-quota`: older cooldowns and limits no longer hold.
pub(crate) fn limits_reset(state: &AppState, account_id: &str) {
    let config = state.config.get();
    let Some(account) = state.router.account(account_id) else { return };
    let fingerprint = fingerprint_of(state, &config, &account);
    let evidence = Evidence::new(Utc::now(), Source::Manual, Signal::Reset, "cooldowns reset via management API");
    state.health.book.record(account_id, fingerprint.as_deref(), evidence);
}

/// Refresh results as evidence. A refused refresh token needs a re-login (and disables the
/// account with `health.auto-disable`); a refresh that worked proves the credential and may
/// have rotated its token (same credential: the evidence follows it).
pub(crate) struct RefreshFeed {
    pub store: Arc<CredentialStore>,
    pub book: Arc<HealthBook>,
    pub config: Arc<ConfigHandle>,
}

impl RefreshObserver for RefreshFeed {
    fn refreshed(&self, name: &str, result: &Result<(), RefreshError>) {
        let fingerprint = self.store.get(name).and_then(|s| s.credential().and_then(credential_fingerprint));
        let (signal, detail) = match result {
            Ok(()) => {
                if let Some(fingerprint) = &fingerprint {
                    self.book.adopt(name, fingerprint);
                }
                (Signal::AuthOk, "access token refreshed".to_owned())
            }
            Err(RefreshError::Revoked(reason)) => {
                let (store, book, config, file) =
                    (self.store.clone(), self.book.clone(), self.config.clone(), name.to_owned());
                tokio::spawn(async move {
                    actions::auto_disable(&config, &store, &book, &file, Actor::AuthIssue, "invalid_credentials").await;
                });
                (
                    Signal::Invalid { action: switchyard_health::Action::Reauth },
                    format!("refresh token refused: {}", short(reason)),
                )
            }
            Err(RefreshError::NoRefreshToken) => (
                Signal::Invalid { action: switchyard_health::Action::Reauth },
                "token expired and there is no refresh token".to_owned(),
            ),
            Err(RefreshError::RateLimited { .. }) => {
                (Signal::Trouble, "token endpoint rate limited the refresh".to_owned())
            }
            Err(RefreshError::Transient(message)) => (Signal::Trouble, format!("refresh failed: {}", short(message))),
            Err(RefreshError::Unavailable(_)) => return,
        };
        self.book.record(name, fingerprint.as_deref(), Evidence::new(Utc::now(), Source::Refresh, signal, detail));
    }
}

impl AppState {
    /// Feeds one quota reading of `account_id` (router id: auth file name or config key id)
    /// into its health. With `health.auto-disable` an exhausted account-wide window disables an
    /// auth file (owner `quota`); a reading with room again enables a file the quota had
    /// disabled (whatever the setting: it undoes its own action). Returns the evidence it
    /// recorded, if the reading said anything.
    pub async fn record_quota(&self, account_id: &str, quota: QuotaEvidence) -> Option<Evidence> {
        let (evidence, follow_up) = self.note_quota(account_id, quota);
        if let Some(follow_up) = follow_up {
            follow_up.run().await;
        }
        evidence
    }

    /// The in-memory half of [`AppState::record_quota`]: the evidence, and the file switch it
    /// calls for (to run where waiting is fine — request paths spawn it).
    pub(crate) fn note_quota(
        &self,
        account_id: &str,
        quota: QuotaEvidence,
    ) -> (Option<Evidence>, Option<QuotaFollowUp>) {
        let config = self.config.get();
        let Some(account) = self.router.account(account_id) else { return (None, None) };
        let fingerprint = fingerprint_of(self, &config, &account);
        let exhausted = quota.account_exhausted(100.0);
        let evidence =
            self.health.book.record_quota(account_id, fingerprint.as_deref(), &account.provider, quota, Utc::now());
        let AccountKind::OAuth { file } = &account.kind else { return (evidence, None) };
        let quota_disabled = || {
            self.store
                .get(file)
                .and_then(|s| s.credential().map(|c| c.disabled() && disabled_by(c) == Some(Actor::Quota)))
                .unwrap_or(false)
        };
        let follow_up = match exhausted {
            Some(true) if config.health.auto_disable => Some(true),
            Some(false) if quota_disabled() => Some(false),
            _ => None,
        }
        .map(|exhausted| QuotaFollowUp {
            config: self.config.clone(),
            store: self.store.clone(),
            book: self.health.book.clone(),
            file: file.clone(),
            exhausted,
        });
        (evidence, follow_up)
    }
}

/// The auth-file switch a quota reading calls for.
pub(crate) struct QuotaFollowUp {
    config: Arc<ConfigHandle>,
    store: Arc<CredentialStore>,
    book: Arc<HealthBook>,
    file: String,
    /// Disable (exhausted) or enable again (room again).
    exhausted: bool,
}

impl QuotaFollowUp {
    pub(crate) async fn run(self) {
        let Self { config, store, book, file, exhausted } = self;
        if exhausted {
            actions::auto_disable(&config, &store, &book, &file, Actor::Quota, "quota_exhausted").await;
        } else if let Err(error) =
            actions::set_disabled(&store, &book, &file, false, Actor::Quota, "quota available again").await
        {
            tracing::warn!(file, error = %switchyard_redact::text(&error.to_string()), "re-enable after quota reset failed");
        }
    }
}
