//! The refresher: the one place access tokens get renewed, on demand (executors) and ahead of
//! expiry (background loop), spec §0.2.
//!
//! - Single flight per refresh token: callers for the same token queue on one async mutex and
//!   share the result of the attempt that ran while they waited, so N concurrent callers make
//!   one upstream call.
//! - The provider's fields are merged into the file with [`CredentialStore::update`] (other keys
//!   kept, atomic 0600 write).
//! - A dead refresh token marks the credential "needs re-login" (never deleting or rewriting the
//!   file) and stops automatic attempts until the file's content changes; transient failures
//!   back off from 1 min doubling to 30 min; rate limits wait as told (5 s..5 min).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use switchyard_config::ConfigHandle;
use switchyard_http::HttpClients;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::{LoginContext, RefreshError, TokenRefresher};
use crate::{Credential, CredentialStore, StoreError, StoredAuth};

const FIRST_BACKOFF: Duration = Duration::from_secs(60);
const MAX_BACKOFF: Duration = Duration::from_secs(30 * 60);
const MIN_RETRY_AFTER: Duration = Duration::from_secs(5);
const MAX_RETRY_AFTER: Duration = Duration::from_secs(5 * 60);
/// A refresh that "succeeded" but left the credential still due is not retried sooner than
/// this (CPA's stale-token throttle), so a provider reporting a short expiry cannot spin us.
const STALE_THROTTLE: Duration = Duration::from_secs(30);
const MAX_WORKERS: i64 = 1024;
/// Per-file override of the refresh schedule (seconds, or a Go duration like `30m`).
const INTERVAL_KEYS: &[&str] =
    &["refresh_interval_seconds", "refreshIntervalSeconds", "refresh_interval", "refreshInterval"];

/// Finds who renews a credential's tokens; the provider registry implements it.
pub trait RefresherLookup: Send + Sync {
    fn refresher_for(&self, credential: &Credential) -> Option<Arc<dyn TokenRefresher>>;
}

/// Told about every finished refresh attempt (after its result is saved and booked), e.g. to
/// keep account health. Called on the attempt's task: keep it short and non-blocking.
pub trait RefreshObserver: Send + Sync {
    fn refreshed(&self, name: &str, result: &Result<(), RefreshError>);
}

/// What the refresher knows about one auth file, for listings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefreshState {
    /// Why the account needs a re-login (its refresh token was refused); cleared when the file
    /// changes.
    pub needs_relogin: Option<String>,
    pub last_error: Option<String>,
    /// No automatic attempt before this (backoff or rate limit).
    pub next_attempt_after: Option<DateTime<Utc>>,
    pub refreshing: bool,
    /// Our last successful refresh, else the file's `last_refresh`.
    pub last_refreshed: Option<DateTime<Utc>>,
}

/// Finished refresh attempts by outcome, since start (for metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefreshCounts {
    pub ok: u64,
    /// The refresh token was refused (or missing): the account needs a re-login.
    pub needs_relogin: u64,
    pub rate_limited: u64,
    /// Network errors, 5xx, malformed answers, failed saves.
    pub failed: u64,
    /// Nothing to refresh: the file is gone or corrupt, or no refresher handles it.
    pub unavailable: u64,
}

impl RefreshCounts {
    /// `(outcome, count)` pairs, in a fixed order.
    pub fn by_outcome(&self) -> [(&'static str, u64); 5] {
        [
            ("ok", self.ok),
            ("needs_relogin", self.needs_relogin),
            ("rate_limited", self.rate_limited),
            ("failed", self.failed),
            ("unavailable", self.unavailable),
        ]
    }
}

/// The atomics behind [`RefreshCounts`], in [`RefreshCounts::by_outcome`] order.
#[derive(Default)]
struct Outcomes([AtomicU64; 5]);

impl Outcomes {
    fn count(&self, result: &Result<(), RefreshError>) {
        let slot = match result {
            Ok(()) => 0,
            Err(RefreshError::Revoked(_) | RefreshError::NoRefreshToken) => 1,
            Err(RefreshError::RateLimited { .. }) => 2,
            Err(RefreshError::Transient(_)) => 3,
            Err(RefreshError::Unavailable(_)) => 4,
        };
        self.0[slot].fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> RefreshCounts {
        let [ok, needs_relogin, rate_limited, failed, unavailable] =
            self.0.each_ref().map(|c| c.load(Ordering::Relaxed));
        RefreshCounts { ok, needs_relogin, rate_limited, failed, unavailable }
    }
}

#[derive(Clone, Copy)]
enum Mode {
    /// An executor needs a token valid for more than `skew`.
    OnDemand { skew: Duration },
    /// The background loop found the credential due.
    Background,
    /// "Refresh now": ignores schedule and backoff.
    Force,
}

struct Backoff {
    until: DateTime<Utc>,
    rate_limited: bool,
}

#[derive(Default)]
struct Tracker {
    /// `Revoked` or `NoRefreshToken`: automatic attempts stop until the file changes.
    relogin: Option<RefreshError>,
    backoff: Option<Backoff>,
    last_error: Option<String>,
    /// Consecutive failures, for the backoff.
    failures: u32,
    /// Hash of the file content the recorded failure happened with; other content clears it.
    failed_content: Option<[u8; 32]>,
    /// Attempts running or queued (the background loop counts a queued one).
    in_flight: u32,
    last_refreshed: Option<DateTime<Utc>>,
    /// Bumped by every finished attempt; `last_outcome` is that attempt's result.
    attempts: u64,
    last_outcome: Option<Result<(), RefreshError>>,
}

impl Tracker {
    /// `content` is the file's [`content_hash`] now, computed only when a failure is on record:
    /// the listing and the background pass look at every file, and hashing each (a
    /// serialization and a SHA-256) was most of their cost for a note almost none have.
    fn forget_failure_if_changed(&mut self, content: impl FnOnce() -> [u8; 32]) {
        if self.failed_content.is_some_and(|failed| failed != content()) {
            self.relogin = None;
            self.backoff = None;
            self.last_error = None;
            self.failures = 0;
            self.failed_content = None;
        }
    }

    /// Needs re-login, or backing off.
    fn blocked(&self, now: DateTime<Utc>) -> bool {
        self.relogin.is_some() || self.backoff.as_ref().is_some_and(|b| b.until > now)
    }

    fn relogin_reason(&self) -> Option<String> {
        self.relogin.as_ref().map(|err| match err {
            RefreshError::Revoked(reason) => reason.clone(),
            other => other.to_string(),
        })
    }
}

/// Per-file bookkeeping, shared with the attempt tasks.
#[derive(Clone)]
struct Trackers {
    map: Arc<Mutex<HashMap<String, Tracker>>>,
    /// Bumped whenever a file's needs-re-login mark is set or cleared.
    relogin_generation: Arc<watch::Sender<u64>>,
    observer: Arc<OnceLock<Arc<dyn RefreshObserver>>>,
    outcomes: Arc<Outcomes>,
}

impl Default for Trackers {
    fn default() -> Self {
        Trackers {
            map: Arc::default(),
            relogin_generation: Arc::new(watch::Sender::new(0)),
            observer: Arc::default(),
            outcomes: Arc::default(),
        }
    }
}

impl Trackers {
    fn with<R>(&self, name: &str, f: impl FnOnce(&mut Tracker) -> R) -> R {
        let mut map = self.lock();
        self.observed(map.entry(name.to_owned()).or_default(), f)
    }

    /// Like [`with`](Self::with) for a file that already has a tracker; `None` otherwise.
    fn existing<R>(&self, name: &str, f: impl FnOnce(&mut Tracker) -> R) -> Option<R> {
        let mut map = self.lock();
        map.get_mut(name).map(|tracker| self.observed(tracker, f))
    }

    /// Runs `f` on `tracker` and announces a change of its re-login mark.
    fn observed<R>(&self, tracker: &mut Tracker, f: impl FnOnce(&mut Tracker) -> R) -> R {
        let before = tracker.relogin_reason();
        let result = f(tracker);
        if tracker.relogin_reason() != before {
            self.relogin_generation.send_modify(|generation| *generation += 1);
        }
        result
    }

    // Every update is a few field writes on one entry, so a poisoned map is still consistent.
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Tracker>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an attempt as running until the returned guard is dropped (also on panic or
    /// when the caller goes away).
    fn in_flight(&self, name: &str) -> InFlight {
        self.with(name, |t| t.in_flight += 1);
        InFlight { trackers: self.clone(), name: name.to_owned() }
    }

    /// Books one finished attempt: success clears every failure; a dead token marks re-login;
    /// transient failures and rate limits set the next allowed attempt.
    fn record(&self, name: &str, content: &[u8; 32], result: &Result<(), RefreshError>, still_due: bool) {
        self.outcomes.count(result);
        let now = Utc::now();
        self.with(name, |t| {
            t.attempts += 1;
            t.last_outcome = Some(result.clone());
            let Err(err) = result else {
                t.relogin = None;
                t.last_error = None;
                t.failures = 0;
                t.failed_content = None;
                t.last_refreshed = Some(now);
                t.backoff = still_due.then(|| Backoff { until: now + STALE_THROTTLE, rate_limited: false });
                tracing::debug!(file = name, "access token refreshed");
                return;
            };
            t.last_error = Some(err.to_string());
            t.failed_content = Some(*content);
            match err {
                RefreshError::Revoked(_) | RefreshError::NoRefreshToken => {
                    t.relogin = Some(err.clone());
                    t.backoff = None;
                    tracing::warn!(file = name, reason = %err, "refresh token refused; the account needs a re-login");
                }
                RefreshError::RateLimited { retry_after } => {
                    t.failures += 1;
                    let wait =
                        retry_after.map_or_else(|| backoff(t.failures), |d| d.clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER));
                    t.backoff = Some(Backoff { until: now + wait, rate_limited: true });
                    tracing::warn!(
                        file = name,
                        retry_in_secs = wait.as_secs(),
                        "token endpoint rate limited the refresh"
                    );
                }
                RefreshError::Transient(_) => {
                    t.failures += 1;
                    let wait = backoff(t.failures);
                    t.backoff = Some(Backoff { until: now + wait, rate_limited: false });
                    tracing::warn!(file = name, error = %err, retry_in_secs = wait.as_secs(), "token refresh failed");
                }
                RefreshError::Unavailable(_) => {}
            }
        });
        if let Some(observer) = self.observer.get() {
            observer.refreshed(name, result);
        }
    }
}

struct InFlight {
    trackers: Trackers,
    name: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.trackers.with(&self.name, |t| t.in_flight = t.in_flight.saturating_sub(1));
    }
}

/// Keeps credentials fresh. Share as `Arc<Refresher>`.
pub struct Refresher {
    store: Arc<CredentialStore>,
    lookup: Arc<dyn RefresherLookup>,
    config: Arc<ConfigHandle>,
    /// A refresh goes through the credential's effective proxy (its `proxy_url`, else the
    /// global `proxy-url`), like its API calls.
    http: Arc<HttpClients>,
    /// Keyed by file name.
    trackers: Trackers,
    /// Single-flight locks keyed by (a hash of) the refresh token; entries die with their
    /// last user.
    flights: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    /// Background worker pool, resized when `auth-auto-refresh-workers` changes.
    workers: Mutex<(usize, Arc<Semaphore>)>,
}

impl Refresher {
    pub fn new(
        store: Arc<CredentialStore>,
        lookup: Arc<dyn RefresherLookup>,
        config: Arc<ConfigHandle>,
        http: Arc<HttpClients>,
    ) -> Arc<Self> {
        Arc::new(Refresher {
            store,
            lookup,
            config,
            http,
            trackers: Trackers::default(),
            flights: Mutex::default(),
            workers: Mutex::new((0, Arc::new(Semaphore::new(0)))),
        })
    }

    /// Checks every credential each `interval` (CPA: 5 s) and refreshes the due ones with at
    /// most `auth-auto-refresh-workers` refreshes at a time. Abort the handle to stop it.
    pub fn spawn_background(self: &Arc<Self>, interval: Duration) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                this.background_pass();
            }
        })
    }

    /// The access token of `name`, refreshed first unless it stays valid for more than `skew`
    /// (a token without a known expiry counts as valid). Concurrent callers share one refresh.
    pub async fn fresh_access_token(&self, name: &str, skew: Duration) -> Result<String, RefreshError> {
        let credential = self.credential(name)?;
        if let Some(token) = valid_token(&credential, skew) {
            return Ok(token.to_owned());
        }
        self.refresh(name, &credential, Mode::OnDemand { skew }).await?;
        let credential = self.credential(name)?;
        credential
            .access_token()
            .map(str::to_owned)
            .ok_or_else(|| RefreshError::Transient("the refreshed credential has no access token".into()))
    }

    /// Refreshes `name` now, whatever its expiry, backoff or re-login mark (a refresh already
    /// running for the same token is joined instead of repeated).
    pub async fn force_refresh(&self, name: &str) -> Result<(), RefreshError> {
        let credential = self.credential(name)?;
        self.refresh(name, &credential, Mode::Force).await
    }

    /// What is known about `name`; `None` when it is not a valid auth file.
    pub fn state(&self, name: &str) -> Option<RefreshState> {
        let stored = self.store.get(name)?;
        let credential = stored.credential()?;
        let known = self.trackers.existing(name, |tracker| {
            tracker.forget_failure_if_changed(|| content_hash(credential));
            RefreshState {
                needs_relogin: tracker.relogin_reason(),
                last_error: tracker.last_error.clone(),
                next_attempt_after: tracker.backoff.as_ref().map(|b| b.until),
                refreshing: tracker.in_flight > 0,
                last_refreshed: tracker.last_refreshed.or_else(|| credential.last_refresh()),
            }
        });
        Some(known.unwrap_or_else(|| RefreshState { last_refreshed: credential.last_refresh(), ..Default::default() }))
    }

    /// Sets who hears about every finished refresh attempt; only the first call counts.
    pub fn set_observer(&self, observer: Arc<dyn RefreshObserver>) {
        let _ = self.trackers.observer.set(observer);
    }

    /// A generation number bumped whenever an auth file's needs-re-login mark is set (its
    /// refresh token was refused) or cleared (a refresh worked, or the file changed). The mark
    /// changes no file, so whoever routes by it (the account sync) must follow this instead.
    /// A mark that clears because the file changed is noticed lazily, by the next look at
    /// the file ([`Refresher::state`] or the background pass).
    pub fn relogin_changes(&self) -> watch::Receiver<u64> {
        self.trackers.relogin_generation.subscribe()
    }

    /// Finished refresh attempts by outcome since start (a joined single flight counts once).
    pub fn outcome_counts(&self) -> RefreshCounts {
        self.trackers.outcomes.snapshot()
    }

    fn background_pass(self: &Arc<Self>) {
        let auths = self.store.list();
        self.forget_removed(&auths);
        let workers = self.workers();
        let now = Utc::now();
        for auth in auths {
            // Corrupt and disabled files are left alone.
            let Some(credential) = auth.credential().filter(|c| !c.disabled()) else { continue };
            let Some(refresher) = self.lookup.refresher_for(credential) else { continue };
            let Some(queued) = self.claim_if_due(&auth.name, credential, refresher.as_ref(), now) else {
                continue;
            };
            let (this, workers, credential) = (self.clone(), workers.clone(), credential.clone());
            tokio::spawn(async move {
                let _queued = queued;
                // The pool is never closed, so acquiring only waits.
                let _permit = workers.acquire_owned().await;
                // Failures are logged and recorded where they happen.
                let _ = this.refresh(&auth.name, &credential, Mode::Background).await;
            });
        }
    }

    /// When the background loop should refresh `name` now, marks it queued (until the guard
    /// drops) so later passes do not queue it again.
    fn claim_if_due(
        &self,
        name: &str,
        credential: &Credential,
        refresher: &dyn TokenRefresher,
        now: DateTime<Utc>,
    ) -> Option<InFlight> {
        let claimed = self.trackers.with(name, |tracker| {
            tracker.forget_failure_if_changed(|| content_hash(credential));
            let due = tracker.in_flight == 0
                && !tracker.blocked(now)
                && is_due(credential, refresher.refresh_lead(), tracker.last_refreshed, now);
            if due {
                tracker.in_flight += 1;
            }
            due
        });
        claimed.then(|| InFlight { trackers: self.trackers.clone(), name: name.to_owned() })
    }

    async fn refresh(&self, name: &str, seen: &Credential, mode: Mode) -> Result<(), RefreshError> {
        let ticket = self.trackers.with(name, |t| t.attempts);
        let flight = self.flight(&flight_key(name, seen)).lock_owned().await;

        // An attempt that finished while we queued answers for us too.
        if let Some(outcome) = self.trackers.with(name, |t| (t.attempts != ticket).then(|| t.last_outcome.clone())) {
            return outcome.unwrap_or(Ok(()));
        }
        let credential = self.credential(name)?;
        let refresher = self
            .lookup
            .refresher_for(&credential)
            .ok_or_else(|| RefreshError::Unavailable("no token refresher for this credential's provider".into()))?;
        // Needed for the outcome's booking anyway.
        let content = content_hash(&credential);
        let now = Utc::now();
        let go = self.trackers.with(name, |tracker| {
            tracker.forget_failure_if_changed(|| content);
            match mode {
                Mode::OnDemand { skew } => {
                    if valid_token(&credential, skew).is_some() {
                        return Err(None);
                    }
                    if let Some(relogin) = &tracker.relogin {
                        return Err(Some(relogin.clone()));
                    }
                    // Transient backoff does not hold back a request that needs a token now;
                    // a rate limit does.
                    match &tracker.backoff {
                        Some(b) if b.rate_limited && b.until > now => {
                            let retry_after = (b.until - now).to_std().ok();
                            Err(Some(RefreshError::RateLimited { retry_after }))
                        }
                        _ => Ok(()),
                    }
                }
                Mode::Background => {
                    let due = !tracker.blocked(now)
                        && is_due(&credential, refresher.refresh_lead(), tracker.last_refreshed, now);
                    if due { Ok(()) } else { Err(None) }
                }
                Mode::Force => Ok(()),
            }
        });
        match go {
            Ok(()) => {}
            Err(None) => return Ok(()),
            Err(Some(err)) => return Err(err),
        }

        // The attempt runs in its own task holding the flight lock: a caller that goes away
        // (a dropped request) must not abort it after the upstream has rotated the refresh
        // token but before the new one is saved.
        let config = self.config.get();
        let http = match self.http.for_account(&config, credential.proxy_url()).await {
            Ok(http) => http,
            Err(error) => {
                let result = Err(RefreshError::Transient(error.to_string()));
                self.trackers.record(name, &content, &result, false);
                return result;
            }
        };
        let in_flight = self.trackers.in_flight(name);
        let ctx = LoginContext::new(http, config);
        let (store, trackers, name) = (self.store.clone(), self.trackers.clone(), name.to_owned());
        let attempt = tokio::spawn(async move {
            let _flight = flight;
            let _in_flight = in_flight;
            let result = match refresher.refresh(&ctx, &credential).await {
                Ok(fields) => merge(&store, &name, fields).await,
                Err(err) => Err(err),
            };
            let lead = refresher.refresh_lead();
            let still_due = result.as_ref().is_ok_and(|updated| {
                updated.credential().is_some_and(|c| is_due(c, lead, Some(Utc::now()), Utc::now()))
            });
            let result = result.map(|_| ());
            trackers.record(&name, &content, &result, still_due);
            result
        });
        attempt.await.unwrap_or_else(|err| Err(RefreshError::Transient(format!("refresh task failed: {err}"))))
    }

    fn credential(&self, name: &str) -> Result<Credential, RefreshError> {
        let stored =
            self.store.get(name).ok_or_else(|| RefreshError::Unavailable(format!("auth file {name} not found")))?;
        stored.credential().cloned().ok_or_else(|| RefreshError::Unavailable(format!("auth file {name} is corrupt")))
    }

    fn flight(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(flight) = flights.get(key).and_then(Weak::upgrade) {
            return flight;
        }
        flights.retain(|_, flight| flight.strong_count() > 0);
        let flight = Arc::new(tokio::sync::Mutex::new(()));
        flights.insert(key.to_owned(), Arc::downgrade(&flight));
        flight
    }

    fn workers(&self) -> Arc<Semaphore> {
        let wanted = self.config.get().auth_auto_refresh_workers.clamp(1, MAX_WORKERS) as usize;
        let mut workers = self.workers.lock().unwrap_or_else(PoisonError::into_inner);
        if workers.0 != wanted {
            *workers = (wanted, Arc::new(Semaphore::new(wanted)));
        }
        workers.1.clone()
    }

    /// Drops what we knew about files that are gone.
    fn forget_removed(&self, auths: &[Arc<StoredAuth>]) {
        self.trackers.lock().retain(|name, t| t.in_flight > 0 || auths.iter().any(|a| &a.name == name));
    }
}

/// Merges the refresher's fields into the file (every other key kept).
async fn merge(
    store: &CredentialStore,
    name: &str,
    fields: Map<String, Value>,
) -> Result<Arc<StoredAuth>, RefreshError> {
    let merged = store
        .update(name, move |credential| {
            credential.fields_mut().extend(fields);
            Ok(())
        })
        .await;
    merged.map_err(|err| {
        tracing::error!(file = name, error = %err, "refreshed tokens could not be saved");
        match err {
            StoreError::NotFound(_) => RefreshError::Unavailable(format!("auth file {name} was removed")),
            other => RefreshError::Transient(format!("cannot save refreshed tokens: {other}")),
        }
    })
}

/// The access token, if it is valid for more than `skew` (or has no known expiry).
fn valid_token(credential: &Credential, skew: Duration) -> Option<&str> {
    let token = credential.access_token()?;
    let skew = chrono::Duration::from_std(skew).unwrap_or(chrono::Duration::MAX);
    match credential.expiry() {
        Some(expiry) if expiry - Utc::now() <= skew => None,
        _ => Some(token),
    }
}

/// CPA's schedule: a per-file `refresh_interval_seconds` first, else the provider's lead —
/// due when the expiry is within it; without an expiry, when the last refresh is at least
/// that old; with neither, now. No interval and no lead: never (refreshed on use only).
fn is_due(
    credential: &Credential,
    lead: Option<Duration>,
    our_last_refresh: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    let expiry = credential.expiry();
    let last_refresh = credential.last_refresh().into_iter().chain(our_last_refresh).max();
    let within = |window: chrono::Duration| {
        let expiring = expiry.is_some_and(|e| e - now <= window);
        let old = last_refresh.is_some_and(|l| now - l >= window);
        (expiring, old)
    };
    if let Some(interval) = refresh_interval(credential) {
        let (expiring, old) = within(interval);
        return expiring || old || (expiry.is_none() && last_refresh.is_none());
    }
    let Some(lead) = lead.and_then(|l| chrono::Duration::from_std(l).ok()) else {
        return false;
    };
    let (expiring, old) = within(lead);
    match expiry {
        Some(_) => expiring,
        None => old || last_refresh.is_none(),
    }
}

fn refresh_interval(credential: &Credential) -> Option<chrono::Duration> {
    let value = INTERVAL_KEYS.iter().find_map(|key| credential.fields().get(*key))?;
    let seconds = match value {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => {
            let s = s.trim();
            s.parse::<f64>().ok().or_else(|| parse_go_duration(s))?
        }
        _ => return None,
    };
    let interval = Duration::try_from_secs_f64(seconds).ok().filter(|d| !d.is_zero())?;
    chrono::Duration::from_std(interval).ok()
}

/// Seconds in a Go duration string such as `90s`, `30m`, `1h30m`, `1.5h`, `500ms`.
fn parse_go_duration(text: &str) -> Option<f64> {
    let mut rest = text;
    let mut total = 0.0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += number * unit;
    }
    (!text.is_empty()).then_some(total)
}

/// 1 min after the first failure, doubling, at most 30 min.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_BACKOFF.saturating_mul(1 << doublings).min(MAX_BACKOFF)
}

/// Same refresh token ⇒ same flight, even across files. Hashed so the map holds no secrets.
fn flight_key(name: &str, credential: &Credential) -> String {
    match credential.refresh_token() {
        Some(token) => format!("token:{}", hex::encode(Sha256::digest(token.as_bytes()).as_slice())),
        None => format!("file:{name}"),
    }
}

fn content_hash(credential: &Credential) -> [u8; 32] {
    Sha256::digest(credential.to_json_pretty()).into()
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;
    use serde_json::json;

    use super::*;

    fn cred(value: Value) -> Credential {
        Credential::from_json(value.to_string().as_bytes()).unwrap()
    }

    fn at(now: DateTime<Utc>, secs: i64) -> String {
        (now + TimeDelta::seconds(secs)).to_rfc3339()
    }

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn lead_schedule() {
        let now = Utc::now();
        let expiring = cred(json!({"type": "x", "expired": at(now, 1800)}));
        let far = cred(json!({"type": "x", "expired": at(now, 7200)}));
        assert!(is_due(&expiring, Some(HOUR), None, now));
        assert!(!is_due(&far, Some(HOUR), None, now));
        assert!(!is_due(&expiring, None, None, now), "no lead: only refreshed on use");

        let refreshed_long_ago = cred(json!({"type": "x", "last_refresh": at(now, -7200)}));
        let refreshed_recently = cred(json!({"type": "x", "last_refresh": at(now, -60)}));
        assert!(is_due(&refreshed_long_ago, Some(HOUR), None, now));
        assert!(!is_due(&refreshed_recently, Some(HOUR), None, now));
        let bare = cred(json!({"type": "x"}));
        assert!(is_due(&bare, Some(HOUR), None, now));
        assert!(!is_due(&bare, Some(HOUR), Some(now), now), "our own refresh counts as the last one");
    }

    #[test]
    fn interval_overrides_the_lead() {
        let now = Utc::now();
        let far = cred(json!({"type": "x", "expired": at(now, 7200), "refresh_interval_seconds": 10_800}));
        assert!(is_due(&far, None, None, now));
        let far = cred(json!({"type": "x", "expired": at(now, 7200), "refresh_interval": "30m"}));
        assert!(!is_due(&far, Some(3 * HOUR), None, now));
        let old = cred(
            json!({"type": "x", "expired": at(now, 7200), "last_refresh": at(now, -700), "refreshInterval": "10m"}),
        );
        assert!(is_due(&old, None, None, now));
    }

    #[test]
    fn parses_intervals() {
        let seconds = |v: Value| {
            refresh_interval(&cred(json!({"type": "x", "refresh_interval_seconds": v}))).map(|d| d.num_seconds())
        };
        assert_eq!(seconds(json!(90)), Some(90));
        assert_eq!(seconds(json!("120")), Some(120));
        assert_eq!(seconds(json!("1h30m")), Some(5400));
        assert_eq!(seconds(json!("1.5h")), Some(5400));
        assert_eq!(seconds(json!("45s")), Some(45));
        assert_eq!(seconds(json!(0)), None);
        assert_eq!(seconds(json!(-5)), None);
        assert_eq!(seconds(json!("soon")), None);
        assert_eq!(seconds(json!("5d")), None);
        assert_eq!(seconds(json!("")), None);
        assert_eq!(seconds(json!(true)), None);
    }

    #[test]
    fn backoff_doubles_to_the_cap() {
        let mins = |n| backoff(n).as_secs() / 60;
        assert_eq!([mins(1), mins(2), mins(3), mins(5), mins(6), mins(50)], [1, 2, 4, 16, 30, 30]);
    }

    #[test]
    fn token_validity_uses_the_skew() {
        let now = Utc::now();
        let c = cred(json!({"type": "x", "access_token": "t", "expired": at(now, 120)}));
        assert_eq!(valid_token(&c, Duration::from_secs(60)), Some("t"));
        assert_eq!(valid_token(&c, Duration::from_secs(300)), None);
        assert_eq!(valid_token(&cred(json!({"type": "x", "access_token": "t"})), HOUR), Some("t"));
        assert_eq!(valid_token(&cred(json!({"type": "x", "expired": at(now, 7200)})), HOUR), None);
    }

    #[test]
    fn flight_keys_follow_the_refresh_token() {
        let a = cred(json!({"type": "x", "refresh_token": "rt"}));
        assert_eq!(flight_key("a.json", &a), flight_key("b.json", &a));
        assert!(!flight_key("a.json", &a).contains("rt"));
        let none = cred(json!({"type": "x"}));
        assert_ne!(flight_key("a.json", &none), flight_key("b.json", &none));
    }
}
