//! The router: which accounts serve a model and in what order (CPA §4.3, §4.4), and which are
//! cooling down after failures (§4.5). One `Router` per process, shared as `Arc<Router>`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use switchyard_config::{Config, RoutingStrategy};

use crate::accounts::{Account, AccountKind};
use crate::cooldown::{CooldownReason, cooldown_for};

/// The routing part of the configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteSettings {
    pub strategy: RoutingStrategy,
    pub disable_cooling: bool,
    /// `transient-error-cooldown-seconds`: 0 means 60 s, negative means no cooldown.
    pub transient_error_cooldown_seconds: i64,
    /// Most accounts one plan lists; 0 = all.
    pub max_retry_credentials: usize,
    /// Extra rounds over the plan after a round fails with a retryable status.
    pub request_retry: u32,
    /// Longest wait for a cooldown before another round; zero never waits.
    pub max_retry_interval: Duration,
}

impl RouteSettings {
    /// `force-model-prefix` is not here: it shapes the account model lists (`accounts_from`).
    pub fn from_config(config: &Config) -> Self {
        Self {
            strategy: config.routing.strategy,
            disable_cooling: config.disable_cooling,
            transient_error_cooldown_seconds: config.transient_error_cooldown_seconds,
            max_retry_credentials: usize::try_from(config.max_retry_credentials).unwrap_or(0),
            request_retry: u32::try_from(config.request_retry).unwrap_or(0),
            max_retry_interval: Duration::from_secs(u64::try_from(config.max_retry_interval).unwrap_or(0)),
        }
    }
}

impl Default for RouteSettings {
    fn default() -> Self {
        Self::from_config(&Config::default())
    }
}

/// The accounts to try for one request, best first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The requested model without its thinking suffix.
    pub model: String,
    /// `high` from `gpt-5(high)`, `8192` from `gemini-2.5-pro(8192)`; the part in parentheses,
    /// uninterpreted. Only split off when the whole name is not a model itself.
    pub thinking_suffix: Option<String>,
    /// Available accounts: the highest priority tier first, ordered by the strategy, then each
    /// lower tier as further failover. Capped by `max-retry-credentials`.
    pub attempts: Vec<Attempt>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub account_id: String,
    pub provider: String,
    pub kind: AccountKind,
    /// The catalogue name behind the requested alias/prefix; pass it back to [`Router::report`].
    pub upstream_model: String,
    /// Retry rounds this account joins (its own `request_retry`, else the global one): round
    /// `r` (1 = the first retry round) admits it when `r <= request_retry`.
    pub request_retry: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// No account exposes the model (HTTP 400 `model_not_found`).
    UnknownModel { model: String },
    /// Every enabled account for the model is cooling down (HTTP 429 `model_cooldown`).
    AllCooling {
        model: String,
        /// The provider of the cooling accounts, when they share one.
        provider: Option<String>,
        /// Until the first of them recovers.
        retry_after: Duration,
    },
    /// Accounts expose the model but all are disabled (or weightless under weighted
    /// round-robin): `auth_unavailable`.
    NoneAvailable { model: String },
}

impl fmt::Display for RouteError {
    /// CPA's messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownModel { model } => write!(f, "unknown provider for model {model}"),
            Self::AllCooling { model, provider, .. } => {
                write!(f, "All credentials for model {model} are cooling down")?;
                provider.as_ref().map_or(Ok(()), |p| write!(f, " via provider {p}"))
            }
            Self::NoneAvailable { .. } => f.write_str("no auth available"),
        }
    }
}

impl std::error::Error for RouteError {}

/// What happened when an attempt was sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure {
        /// Upstream HTTP status; 0 when there was none (connection error, timeout).
        status: u16,
        /// The upstream's `Retry-After` (or parsed retry delay).
        retry_after: Option<Duration>,
        /// The failure concerns the whole credential, not just this model.
        credential_wide: bool,
        message: String,
    },
}

/// One client-visible model for `/v1/models`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ListedModel {
    pub id: String,
    pub display_name: String,
    pub owned_by: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Providers of the enabled accounts serving it, sorted.
    pub providers: Vec<String>,
}

/// An account's cooldown state, for the auth-files listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountHealth {
    pub status: HealthStatus,
    /// The latest failure's message (its reason when the upstream gave none).
    pub status_message: Option<String>,
    /// No model can be served right now.
    pub unavailable: bool,
    /// Until the account (when unavailable) or its first cooling model recovers.
    pub next_retry_after: Option<Duration>,
    /// The reason of a credential-wide cooldown.
    pub reason: Option<CooldownReason>,
    /// Per-model cooldowns, sorted by (lower-cased) upstream model name.
    pub models: Vec<ModelHealth>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HealthStatus {
    Active,
    /// Some models are cooling down.
    Error,
    /// The whole account is cooling down.
    Cooling,
}

impl HealthStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Error => "error",
            Self::Cooling => "cooling",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelHealth {
    pub model: String,
    pub reason: CooldownReason,
    /// The upstream status that caused it (0: no response).
    pub status: u16,
    pub retry_after: Duration,
}

/// Accounts, their failure state and the strategies' cursors. Reads take a snapshot `Arc`;
/// planning and reporting hold one short mutex.
#[derive(Default)]
pub struct Router {
    snapshot: RwLock<Arc<Snapshot>>,
    state: Mutex<State>,
}

/// The accounts, indexed; rebuilt by [`Router::set_accounts`].
#[derive(Default)]
struct Snapshot {
    /// Sorted by id.
    accounts: Vec<Account>,
    by_id: HashMap<String, usize>,
    /// Lower-cased client model id → `(account, model)` indices, in account order.
    by_model: HashMap<String, Vec<(usize, usize)>>,
    listed: Vec<ListedModel>,
}

#[derive(Default)]
struct State {
    /// By account id.
    health: HashMap<String, Health>,
    /// Round-robin cursor per lower-cased model.
    cursors: HashMap<String, usize>,
    /// Smooth weighted round-robin: current weight per model, per account id.
    wrr: HashMap<String, HashMap<String, i64>>,
}

#[derive(Default)]
struct Health {
    credential: Slot,
    /// By lower-cased upstream model.
    models: HashMap<String, Slot>,
}

#[derive(Default)]
struct Slot {
    cooldown: Option<Cooldown>,
    /// Consecutive 429s without `Retry-After`.
    backoff_level: u32,
}

struct Cooldown {
    since: Instant,
    until: Instant,
    reason: CooldownReason,
    status: u16,
    message: String,
}

impl Slot {
    fn active(&self, now: Instant) -> Option<&Cooldown> {
        self.cooldown.as_ref().filter(|c| c.until > now)
    }
}

impl Health {
    /// When the account can serve `model` again, if it is cooling for it.
    fn blocked_until(&self, model: &str, now: Instant) -> Option<Instant> {
        let model = self.models.get(model).and_then(|s| s.active(now));
        [self.credential.active(now), model].into_iter().flatten().map(|c| c.until).max()
    }
}

impl Router {
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the accounts (after the auth dir or config changed). Failure state of accounts
    /// that still exist is kept, except for an account that was unservable and no longer is
    /// (logged in again): its old cooldowns were about the old credential.
    pub fn set_accounts(&self, mut accounts: Vec<Account>) {
        accounts.sort_by(|a, b| a.id.cmp(&b.id));
        let snapshot = Snapshot::new(accounts);
        let previous = self.current();
        let revived = |id: &str| {
            let was = previous.by_id.get(id).is_some_and(|&i| previous.accounts[i].unservable.is_some());
            let is = snapshot.by_id.get(id).is_some_and(|&i| snapshot.accounts[i].unservable.is_some());
            was && !is
        };
        {
            let mut state = self.state();
            state.health.retain(|id, _| snapshot.by_id.contains_key(id) && !revived(id));
            state.cursors.retain(|model, _| snapshot.by_model.contains_key(model));
            state.wrr.retain(|model, _| snapshot.by_model.contains_key(model));
            for weights in state.wrr.values_mut() {
                weights.retain(|id, _| snapshot.by_id.contains_key(id));
            }
        }
        *self.snapshot.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(snapshot);
    }

    /// The accounts, sorted by id.
    pub fn accounts(&self) -> Vec<Account> {
        self.current().accounts.clone()
    }

    /// Every model an enabled account serves, each id once (case-insensitively), sorted.
    pub fn models(&self) -> Vec<ListedModel> {
        self.current().listed.clone()
    }

    /// The accounts to try for `model`, or why there are none. Advances the strategy's cursor.
    pub fn plan(&self, model: &str, settings: &RouteSettings, now: Instant) -> Result<Plan, RouteError> {
        let snapshot = self.current();
        let Resolved { model: base, thinking_suffix, servers } = snapshot.resolve(model)?;
        let key = base.to_lowercase();
        let weighted = settings.strategy == RoutingStrategy::WeightedRoundRobin;
        let enabled: Vec<(&Account, &str)> = servers
            .iter()
            .map(|&(a, m)| (&snapshot.accounts[a], snapshot.accounts[a].models[m].upstream.as_str()))
            .filter(|(account, _)| !account.disabled && (!weighted || account.weight > 0))
            .collect();
        if enabled.is_empty() {
            return Err(RouteError::NoneAvailable { model: base.to_owned() });
        }

        let mut state = self.state();
        let mut tiers: BTreeMap<Reverse<i64>, Vec<(&Account, &str)>> = BTreeMap::new();
        let mut cooling: Vec<(&Account, Instant)> = Vec::new();
        for (account, upstream) in enabled {
            let health = state.health.get(&account.id);
            match health.and_then(|h| h.blocked_until(&upstream.to_lowercase(), now)) {
                Some(until) => cooling.push((account, until)),
                None => tiers.entry(Reverse(account.priority)).or_default().push((account, upstream)),
            }
        }
        if tiers.is_empty() {
            let first = cooling.iter().map(|(_, until)| *until).min().expect("enabled accounts exist");
            let provider = &cooling[0].0.provider;
            let shared = cooling.iter().all(|(a, _)| &a.provider == provider);
            return Err(RouteError::AllCooling {
                model: base.to_owned(),
                provider: shared.then(|| provider.clone()),
                retry_after: first - now,
            });
        }

        let mut ordered = Vec::new();
        for (i, (_, mut tier)) in tiers.into_iter().enumerate() {
            // Only the tier requests land on first is balanced; lower tiers are fallbacks.
            if i == 0 {
                state.order(&key, &mut tier, settings.strategy);
            } else if weighted {
                tier.sort_by_key(|(a, _)| Reverse(a.weight));
            }
            ordered.extend(tier);
        }
        if settings.max_retry_credentials > 0 {
            ordered.truncate(settings.max_retry_credentials);
        }
        let attempts = ordered
            .into_iter()
            .map(|(account, upstream)| Attempt {
                account_id: account.id.clone(),
                provider: account.provider.clone(),
                kind: account.kind.clone(),
                upstream_model: upstream.to_owned(),
                request_retry: account.request_retry.unwrap_or(settings.request_retry),
            })
            .collect();
        Ok(Plan { model: base.to_owned(), thinking_suffix: thinking_suffix.map(str::to_owned), attempts })
    }

    /// Records how an attempt went. `model` is the attempt's `upstream_model`. Success clears the
    /// model's cooldown and backoff, and any credential-wide cooldown (the credential works).
    /// A failure cools the model (or, `credential_wide`, every model of the account) per
    /// [`cooldown_for`], unless cooling is disabled for the account; a cooldown already running
    /// longer is kept. Reports for unknown accounts are ignored.
    pub fn report(&self, account_id: &str, model: &str, outcome: Outcome, settings: &RouteSettings, now: Instant) {
        let snapshot = self.current();
        let Some(account) = snapshot.by_id.get(account_id).map(|&i| &snapshot.accounts[i]) else {
            return;
        };
        let model = model.to_lowercase();
        let mut state = self.state();
        match outcome {
            Outcome::Success => {
                if let Some(health) = state.health.get_mut(account_id) {
                    health.models.remove(&model);
                    health.credential = Slot::default();
                }
            }
            Outcome::Failure { status, retry_after, credential_wide, message } => {
                if account.disable_cooling.unwrap_or(settings.disable_cooling) {
                    return;
                }
                let health = state.health.entry(account_id.to_owned()).or_default();
                let slot =
                    if credential_wide { &mut health.credential } else { health.models.entry(model).or_default() };
                let Some((duration, reason)) = cooldown_for(
                    status,
                    retry_after,
                    credential_wide,
                    &mut slot.backoff_level,
                    settings.transient_error_cooldown_seconds,
                ) else {
                    return;
                };
                let until = now + duration;
                if slot.active(now).is_none_or(|c| c.until <= until) {
                    slot.cooldown = Some(Cooldown { since: now, until, reason, status, message });
                }
            }
        }
    }

    /// The account's cooldowns as of `now` (expired ones are not shown).
    pub fn health(&self, account_id: &str, now: Instant) -> AccountHealth {
        let snapshot = self.current();
        let state = self.state();
        let Some(health) = state.health.get(account_id) else {
            return AccountHealth::active();
        };
        let credential = health.credential.active(now);
        let mut cooling: Vec<(&String, &Cooldown)> =
            health.models.iter().filter_map(|(model, slot)| Some((model, slot.active(now)?))).collect();
        cooling.sort_by(|a, b| a.0.cmp(b.0));
        let latest = credential.into_iter().chain(cooling.iter().map(|(_, c)| *c)).max_by_key(|c| c.since);
        let Some(latest) = latest else {
            return AccountHealth::active();
        };

        // Unavailable when credential-wide cooling, or when every model the account serves is.
        let served: HashSet<String> = snapshot
            .by_id
            .get(account_id)
            .map(|&i| snapshot.accounts[i].models.iter().map(|m| m.upstream.to_lowercase()).collect())
            .unwrap_or_default();
        let all_models = !served.is_empty() && served.iter().all(|m| cooling.iter().any(|(c, _)| *c == m));
        let first_model = cooling.iter().map(|(_, c)| c.until).min();
        let (status, next) = match credential {
            Some(c) => (HealthStatus::Cooling, Some(c.until)),
            None if all_models => (HealthStatus::Cooling, first_model),
            None => (HealthStatus::Error, first_model),
        };
        let message =
            if latest.message.is_empty() { latest.reason.as_str().to_owned() } else { latest.message.clone() };
        AccountHealth {
            status,
            status_message: Some(message),
            unavailable: status == HealthStatus::Cooling,
            next_retry_after: next.map(|until| until - now),
            reason: credential.map(|c| c.reason),
            models: cooling
                .into_iter()
                .map(|(model, c)| ModelHealth {
                    model: model.clone(),
                    reason: c.reason,
                    status: c.status,
                    retry_after: c.until - now,
                })
                .collect(),
        }
    }

    /// Forgets the account's cooldowns and backoff (management "reset quota").
    pub fn reset(&self, account_id: &str) {
        self.state().health.remove(account_id);
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl AccountHealth {
    fn active() -> Self {
        Self {
            status: HealthStatus::Active,
            status_message: None,
            unavailable: false,
            next_retry_after: None,
            reason: None,
            models: Vec::new(),
        }
    }
}

impl State {
    /// Orders one tier (id-sorted on entry) by the strategy for `model`.
    fn order(&mut self, model: &str, tier: &mut [(&Account, &str)], strategy: RoutingStrategy) {
        match strategy {
            RoutingStrategy::FillFirst => {}
            RoutingStrategy::RoundRobin => {
                let cursor = self.cursors.entry(model.to_owned()).or_default();
                tier.rotate_left(*cursor % tier.len());
                *cursor = cursor.wrapping_add(1);
            }
            RoutingStrategy::WeightedRoundRobin => {
                // Smooth WRR (nginx): everyone gains its weight, the leader pays the total. The
                // rest follow by current weight, i.e. in the order they would be picked next.
                let current = self.wrr.entry(model.to_owned()).or_default();
                let total: i64 = tier.iter().map(|(a, _)| i64::from(a.weight)).sum();
                for (account, _) in tier.iter() {
                    *current.entry(account.id.clone()).or_default() += i64::from(account.weight);
                }
                // Stable sort: ties keep id order.
                tier.sort_by_key(|(a, _)| Reverse(current[&a.id]));
                *current.get_mut(&tier[0].0.id).expect("just added") -= total;
            }
        }
    }
}

impl Snapshot {
    fn new(accounts: Vec<Account>) -> Self {
        let by_id = accounts.iter().enumerate().rev().map(|(i, a)| (a.id.clone(), i)).collect();
        let mut by_model: HashMap<String, Vec<(usize, usize)>> = HashMap::new();
        let mut listed: BTreeMap<String, ListedModel> = BTreeMap::new();
        // An account nothing can be sent with serves no model: it is neither listed nor routed.
        for (a, account) in accounts.iter().enumerate().filter(|(_, a)| a.unservable.is_none()) {
            for (m, model) in account.models.iter().enumerate() {
                let key = model.id.to_lowercase();
                let servers = by_model.entry(key.clone()).or_default();
                // One account may list ids differing only in case; it serves them once.
                if servers.last().is_some_and(|&(last, _)| last == a) {
                    continue;
                }
                servers.push((a, m));
                if account.disabled {
                    continue;
                }
                let entry = listed.entry(key).or_insert_with(|| ListedModel {
                    id: model.id.clone(),
                    display_name: model.display_name.clone(),
                    owned_by: model.owned_by.clone(),
                    kind: model.kind.clone(),
                    providers: Vec::new(),
                });
                if !entry.providers.contains(&account.provider) {
                    entry.providers.push(account.provider.clone());
                    entry.providers.sort();
                }
            }
        }
        Self { accounts, by_id, by_model, listed: listed.into_values().collect() }
    }

    /// The requested model, split from its thinking suffix when the whole name is unknown.
    fn resolve<'m>(&self, model: &'m str) -> Result<Resolved<'_, 'm>, RouteError> {
        let servers = |name: &str| self.by_model.get(&name.to_lowercase()).map(Vec::as_slice);
        if let Some(servers) = servers(model) {
            return Ok(Resolved { model, thinking_suffix: None, servers });
        }
        split_thinking_suffix(model)
            .and_then(|(base, suffix)| {
                Some(Resolved { model: base, thinking_suffix: Some(suffix), servers: servers(base)? })
            })
            .ok_or_else(|| RouteError::UnknownModel { model: model.to_owned() })
    }
}

struct Resolved<'s, 'm> {
    model: &'m str,
    thinking_suffix: Option<&'m str>,
    /// `(account, model)` indices into the snapshot.
    servers: &'s [(usize, usize)],
}

/// `model(<budget|level>)` → `(model, budget|level)`; both parts non-empty.
fn split_thinking_suffix(model: &str) -> Option<(&str, &str)> {
    let (base, suffix) = model.strip_suffix(')')?.rsplit_once('(')?;
    (!base.is_empty() && !suffix.is_empty()).then_some((base, suffix))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExposedModel;

    const MIN: u64 = 60;

    fn exposed(id: &str, upstream: &str) -> ExposedModel {
        ExposedModel {
            id: id.into(),
            upstream: upstream.into(),
            display_name: upstream.to_uppercase(),
            owned_by: "owner".into(),
            kind: "openai".into(),
        }
    }

    /// An account serving `m` and `n` (upstream `m-up`, `n-up`).
    fn account(id: &str, priority: i64, weight: u32) -> Account {
        Account {
            id: id.into(),
            provider: "claude".into(),
            kind: AccountKind::OAuth { file: id.into() },
            priority,
            weight,
            disabled: false,
            disable_cooling: None,
            request_retry: None,
            models: vec![exposed("m", "m-up"), exposed("n", "n-up")],
            unservable: None,
        }
    }

    fn router(accounts: Vec<Account>) -> Router {
        let router = Router::new();
        router.set_accounts(accounts);
        router
    }

    fn settings(strategy: RoutingStrategy) -> RouteSettings {
        RouteSettings { strategy, ..RouteSettings::default() }
    }

    fn rr() -> RouteSettings {
        settings(RoutingStrategy::RoundRobin)
    }

    fn order(router: &Router, model: &str, settings: &RouteSettings, now: Instant) -> Vec<String> {
        let plan = router.plan(model, settings, now).expect("plan");
        plan.attempts.into_iter().map(|a| a.account_id).collect()
    }

    fn first(router: &Router, settings: &RouteSettings, now: Instant) -> String {
        order(router, "m", settings, now).remove(0)
    }

    fn failure(status: u16) -> Outcome {
        Outcome::Failure { status, retry_after: None, credential_wide: false, message: format!("upstream {status}") }
    }

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn round_robin_rotates_over_the_id_sorted_accounts() {
        let router = router(vec![account("c", 0, 1), account("a", 0, 1), account("b", 0, 1)]);
        let now = Instant::now();
        assert_eq!(order(&router, "m", &rr(), now), ["a", "b", "c"]);
        assert_eq!(order(&router, "m", &rr(), now), ["b", "c", "a"]);
        assert_eq!(order(&router, "m", &rr(), now), ["c", "a", "b"]);
        assert_eq!(order(&router, "m", &rr(), now), ["a", "b", "c"]);
        // The cursor is per model.
        assert_eq!(order(&router, "n", &rr(), now), ["a", "b", "c"]);
    }

    #[test]
    fn round_robin_skips_cooling_accounts() {
        let router = router(vec![account("a", 0, 1), account("b", 0, 1), account("c", 0, 1)]);
        let now = Instant::now();
        router.report("b", "m-up", failure(500), &rr(), now);
        let firsts: Vec<String> = (0..4).map(|_| first(&router, &rr(), now)).collect();
        assert_eq!(firsts, ["a", "c", "a", "c"]);
    }

    #[test]
    fn fill_first_sticks_to_the_first_until_it_cools() {
        let ff = settings(RoutingStrategy::FillFirst);
        let router = router(vec![account("b", 0, 1), account("a", 0, 1)]);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(order(&router, "m", &ff, now), ["a", "b"]);
        }
        router.report("a", "m-up", failure(429), &ff, now);
        assert_eq!(order(&router, "m", &ff, now), ["b"]);
        assert_eq!(order(&router, "m", &ff, now + secs(1)), ["a", "b"], "the 1 s backoff is over");
    }

    #[test]
    fn weighted_round_robin_is_smooth_and_exact() {
        let wrr = settings(RoutingStrategy::WeightedRoundRobin);
        let router = router(vec![account("a", 0, 3), account("b", 0, 1)]);
        let now = Instant::now();
        let firsts: Vec<String> = (0..8).map(|_| first(&router, &wrr, now)).collect();
        assert_eq!(firsts, ["a", "a", "b", "a", "a", "a", "b", "a"]);

        let mut counts = HashMap::new();
        for _ in 0..400 {
            *counts.entry(first(&router, &wrr, now)).or_insert(0) += 1;
        }
        assert_eq!((counts["a"], counts["b"]), (300, 100));
        // The full plan still lists the other account as failover.
        assert_eq!(order(&router, "m", &wrr, now).len(), 2);
    }

    #[test]
    fn weightless_accounts_sit_out_weighted_round_robin_only() {
        let router = router(vec![account("a", 0, 0), account("b", 0, 2)]);
        let now = Instant::now();
        assert_eq!(order(&router, "m", &settings(RoutingStrategy::WeightedRoundRobin), now), ["b"]);
        assert_eq!(order(&router, "m", &rr(), now), ["a", "b"]);

        let only_weightless = super::tests::router(vec![account("a", 0, 0)]);
        assert_eq!(
            only_weightless.plan("m", &settings(RoutingStrategy::WeightedRoundRobin), now),
            Err(RouteError::NoneAvailable { model: "m".into() })
        );
    }

    #[test]
    fn higher_priority_tier_first_lower_tier_as_failover() {
        let router = router(vec![account("low", 0, 1), account("hi-1", 10, 1), account("hi-2", 10, 1)]);
        let now = Instant::now();
        assert_eq!(order(&router, "m", &rr(), now), ["hi-1", "hi-2", "low"]);
        assert_eq!(order(&router, "m", &rr(), now), ["hi-2", "hi-1", "low"]);
        // The lower tier leads only once the whole higher tier is cooling.
        router.report("hi-1", "m-up", failure(503), &rr(), now);
        assert_eq!(order(&router, "m", &rr(), now), ["hi-2", "low"]);
        router.report("hi-2", "m-up", failure(503), &rr(), now);
        assert_eq!(order(&router, "m", &rr(), now), ["low"]);
        // Another model of the same accounts is unaffected.
        assert_eq!(order(&router, "n", &rr(), now)[2], "low");
        assert_eq!(order(&router, "m", &rr(), now + secs(MIN))[2], "low");
    }

    #[test]
    fn each_status_cools_for_its_time_and_reason() {
        let cases: &[(u16, u64, CooldownReason)] = &[
            (401, 30 * MIN, CooldownReason::Unauthorized),
            (402, 30 * MIN, CooldownReason::PaymentRequired),
            (403, 30 * MIN, CooldownReason::PaymentRequired),
            (404, 12 * 60 * MIN, CooldownReason::NotFound),
            (429, 1, CooldownReason::Quota),
            (408, MIN, CooldownReason::Transient),
            (500, MIN, CooldownReason::Transient),
            (502, MIN, CooldownReason::Transient),
            (503, MIN, CooldownReason::Transient),
            (504, MIN, CooldownReason::Transient),
            (0, MIN, CooldownReason::Transient),
        ];
        for &(status, seconds, reason) in cases {
            let router = router(vec![account("a", 0, 1), account("b", 0, 1)]);
            let now = Instant::now();
            router.report("a", "m-up", failure(status), &rr(), now);
            let health = router.health("a", now);
            assert_eq!(health.models.len(), 1, "{status}");
            let model = &health.models[0];
            assert_eq!((model.model.as_str(), model.reason, model.status), ("m-up", reason, status));
            assert_eq!(model.retry_after, secs(seconds), "{status}");
            assert_eq!(order(&router, "m", &rr(), now + secs(seconds) - Duration::from_millis(1)), ["b"], "{status}");
            assert_eq!(order(&router, "m", &settings(RoutingStrategy::FillFirst), now + secs(seconds))[0], "a");
        }
    }

    #[test]
    fn client_errors_do_not_cool() {
        let router = router(vec![account("a", 0, 1)]);
        let now = Instant::now();
        for status in [400, 413, 422, 501] {
            router.report("a", "m-up", failure(status), &rr(), now);
        }
        assert_eq!(router.health("a", now).status, HealthStatus::Active);
        assert_eq!(order(&router, "m", &rr(), now), ["a"]);
    }

    #[test]
    fn retry_after_is_honoured() {
        let router = router(vec![account("a", 0, 1)]);
        let now = Instant::now();
        let outcome = Outcome::Failure {
            status: 429,
            retry_after: Some(secs(120)),
            credential_wide: false,
            message: String::new(),
        };
        router.report("a", "m-up", outcome, &rr(), now);
        let health = router.health("a", now);
        assert_eq!((health.models[0].reason, health.models[0].retry_after), (CooldownReason::Quota, secs(120)));
        assert_eq!(health.status_message.as_deref(), Some("quota"), "reason stands in for an empty message");
    }

    #[test]
    fn quota_backoff_doubles_caps_and_resets_on_success() {
        let router = router(vec![account("a", 0, 1)]);
        let mut now = Instant::now();
        let mut seen = Vec::new();
        for _ in 0..14 {
            router.report("a", "m-up", failure(429), &rr(), now);
            let wait = router.health("a", now).models[0].retry_after;
            seen.push(wait.as_secs());
            now += wait;
        }
        assert_eq!(seen, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 1800, 1800, 1800]);

        router.report("a", "m-up", Outcome::Success, &rr(), now);
        assert_eq!(router.health("a", now), AccountHealth::active());
        router.report("a", "m-up", failure(429), &rr(), now);
        assert_eq!(router.health("a", now).models[0].retry_after, secs(1));
    }

    #[test]
    fn success_clears_only_that_models_state() {
        let router = router(vec![account("a", 0, 1)]);
        let now = Instant::now();
        router.report("a", "m-up", failure(500), &rr(), now);
        router.report("a", "n-up", failure(500), &rr(), now);
        router.report("a", "m-up", Outcome::Success, &rr(), now);
        assert_eq!(order(&router, "m", &rr(), now), ["a"]);
        assert!(router.plan("n", &rr(), now).is_err());
    }

    #[test]
    fn transient_cooldown_follows_the_setting() {
        let router = router(vec![account("a", 0, 1)]);
        let now = Instant::now();
        let five = RouteSettings { transient_error_cooldown_seconds: 5, ..rr() };
        router.report("a", "m-up", failure(502), &five, now);
        assert_eq!(router.health("a", now).models[0].retry_after, secs(5));

        let never = RouteSettings { transient_error_cooldown_seconds: -1, ..rr() };
        router.report("a", "n-up", failure(502), &never, now);
        router.report("a", "n-up", failure(0), &never, now);
        assert_eq!(router.health("a", now).models.len(), 1);
        // Other statuses still cool.
        router.report("a", "n-up", failure(401), &never, now);
        assert_eq!(router.health("a", now).models.len(), 2);
    }

    #[test]
    fn credential_wide_quota_cools_every_model() {
        let router = router(vec![account("a", 0, 1), account("b", 0, 1)]);
        let now = Instant::now();
        let outcome = Outcome::Failure {
            status: 429,
            retry_after: Some(secs(90)),
            credential_wide: true,
            message: "weekly".into(),
        };
        router.report("a", "m-up", outcome, &rr(), now);
        assert_eq!(order(&router, "m", &rr(), now), ["b"]);
        assert_eq!(order(&router, "n", &rr(), now), ["b"]);

        let health = router.health("a", now);
        assert_eq!(health.status, HealthStatus::Cooling);
        assert!(health.unavailable);
        assert_eq!(health.reason, Some(CooldownReason::CredentialQuota));
        assert_eq!(health.next_retry_after, Some(secs(90)));
        assert_eq!(health.status_message.as_deref(), Some("weekly"));
        assert!(health.models.is_empty());

        // A success anywhere proves the credential works again.
        router.report("a", "n-up", Outcome::Success, &rr(), now + secs(1));
        assert_eq!(order(&router, "m", &settings(RoutingStrategy::FillFirst), now + secs(1)), ["a", "b"]);
    }

    #[test]
    fn all_cooling_reports_the_earliest_recovery() {
        let router = router(vec![account("a", 0, 1), account("b", 5, 1)]);
        let now = Instant::now();
        router.report("a", "m-up", failure(401), &rr(), now);
        router.report("b", "m-up", failure(503), &rr(), now + secs(10));
        assert_eq!(
            router.plan("m", &rr(), now + secs(20)),
            Err(RouteError::AllCooling { model: "m".into(), provider: Some("claude".into()), retry_after: secs(50) })
        );
        let error = router.plan("m", &rr(), now + secs(20)).unwrap_err();
        assert_eq!(error.to_string(), "All credentials for model m are cooling down via provider claude");

        let mut other = account("c", 0, 1);
        other.provider = "codex".into();
        let mixed = super::tests::router(vec![account("a", 0, 1), other]);
        mixed.report("a", "m-up", failure(503), &rr(), now);
        mixed.report("c", "m-up", failure(503), &rr(), now);
        let Err(RouteError::AllCooling { provider, .. }) = mixed.plan("m", &rr(), now) else { panic!("all cooling") };
        assert_eq!(provider, None);
    }

    #[test]
    fn disable_cooling_globally_or_per_account() {
        let now = Instant::now();
        let no_cooling = RouteSettings { disable_cooling: true, ..rr() };
        let router = router(vec![account("a", 0, 1)]);
        router.report("a", "m-up", failure(429), &no_cooling, now);
        assert_eq!(order(&router, "m", &rr(), now), ["a"]);

        let mut opted_out = account("a", 0, 1);
        opted_out.disable_cooling = Some(true);
        let mut opted_in = account("b", 0, 1);
        opted_in.disable_cooling = Some(false);
        let router = super::tests::router(vec![opted_out, opted_in]);
        router.report("a", "m-up", failure(429), &rr(), now);
        router.report("b", "m-up", failure(429), &no_cooling, now);
        assert_eq!(router.health("a", now).status, HealthStatus::Active);
        assert_eq!(router.health("b", now).models[0].reason, CooldownReason::Quota);
    }

    #[test]
    fn a_longer_running_cooldown_is_kept() {
        let router = router(vec![account("a", 0, 1)]);
        let now = Instant::now();
        router.report("a", "m-up", failure(404), &rr(), now);
        router.report("a", "m-up", failure(500), &rr(), now + secs(1));
        let model = &router.health("a", now + secs(1)).models[0];
        assert_eq!(model.reason, CooldownReason::NotFound);
    }

    #[test]
    fn unknown_model_and_disabled_accounts() {
        let mut off = account("a", 0, 1);
        off.disabled = true;
        let router = router(vec![off]);
        let now = Instant::now();
        assert_eq!(router.plan("zzz", &rr(), now), Err(RouteError::UnknownModel { model: "zzz".into() }));
        assert_eq!(router.plan("zzz", &rr(), now).unwrap_err().to_string(), "unknown provider for model zzz");
        assert_eq!(router.plan("m", &rr(), now), Err(RouteError::NoneAvailable { model: "m".into() }));
        assert!(router.models().is_empty(), "disabled accounts list nothing");
    }

    #[test]
    fn unservable_accounts_are_neither_listed_nor_planned() {
        let mut dead = account("a-dead", 5, 1);
        dead.unservable = Some("needs re-login: HTTP 400: invalid_grant".into());
        dead.models.push(exposed("only-dead", "x"));
        let live = account("b-live", 0, 1);
        let router = router(vec![dead, live]);
        let now = Instant::now();
        let listed: Vec<String> = router.models().into_iter().map(|m| m.id).collect();
        assert_eq!(listed, ["m", "n"], "the unservable account's own model is not listed");
        let plan = router.plan("m", &rr(), now).unwrap();
        let ids: Vec<&str> = plan.attempts.iter().map(|a| a.account_id.as_str()).collect();
        assert_eq!(ids, ["b-live"], "a higher priority does not route to an account nothing can be sent with");
        assert_eq!(router.plan("only-dead", &rr(), now), Err(RouteError::UnknownModel { model: "only-dead".into() }));
        assert_eq!(router.accounts().len(), 2, "still known, for listings");
    }

    #[test]
    fn an_account_that_becomes_servable_again_starts_without_its_old_cooldowns() {
        let settings = rr();
        let now = Instant::now();
        let (a, b) = (account("a", 0, 1), account("b", 0, 1));
        let router = router(vec![a.clone(), b.clone()]);
        let unauthorized =
            Outcome::Failure { status: 401, retry_after: None, credential_wide: true, message: "expired".into() };
        router.report("a", "m-up", unauthorized.clone(), &settings, now);
        router.report("b", "m-up", unauthorized, &settings, now);

        let mut dead = a.clone();
        dead.unservable = Some("needs re-login: HTTP 401".into());
        router.set_accounts(vec![dead, b.clone()]);
        assert_ne!(router.health("a", now).status, HealthStatus::Active, "kept while it needs a re-login");
        router.set_accounts(vec![a, b]);
        assert_eq!(router.health("a", now).status, HealthStatus::Active, "logged in again: a fresh start");
        assert_ne!(router.health("b", now).status, HealthStatus::Active, "other accounts keep theirs");
    }

    #[test]
    fn model_lookup_ignores_case_and_resolves_the_upstream_name() {
        let mut a = account("a", 0, 1);
        a.models.push(exposed("team/Fast", "m-up"));
        let router = router(vec![a]);
        let plan = router.plan("TEAM/fast", &rr(), Instant::now()).unwrap();
        assert_eq!(plan.model, "TEAM/fast");
        assert_eq!(plan.attempts[0].upstream_model, "m-up");
        assert_eq!(plan.attempts[0].kind, AccountKind::OAuth { file: "a".into() });
    }

    #[test]
    fn thinking_suffix_is_split_off_when_the_whole_name_is_no_model() {
        let mut a = account("a", 0, 1);
        a.models.push(exposed("odd(1)", "odd-up"));
        let router = router(vec![a]);
        let now = Instant::now();
        for (requested, model, suffix) in
            [("m(high)", "m", Some("high")), ("m(8192)", "m", Some("8192")), ("odd(1)", "odd(1)", None)]
        {
            let plan = router.plan(requested, &rr(), now).unwrap();
            assert_eq!((plan.model.as_str(), plan.thinking_suffix.as_deref()), (model, suffix), "{requested}");
        }
        for unknown in ["x(high)", "m()", "(high)"] {
            assert_eq!(router.plan(unknown, &rr(), now), Err(RouteError::UnknownModel { model: unknown.into() }));
        }
    }

    #[test]
    fn health_shows_reasons_and_next_retry() {
        let router = router(vec![account("a", 0, 1)]);
        let now = Instant::now();
        assert_eq!(router.health("a", now), AccountHealth::active());

        router.report("a", "n-up", failure(401), &rr(), now);
        let health = router.health("a", now + secs(60));
        assert_eq!(health.status, HealthStatus::Error);
        assert!(!health.unavailable);
        assert_eq!(health.next_retry_after, Some(secs(29 * MIN)));
        assert_eq!(health.status_message.as_deref(), Some("upstream 401"));

        // Every model cooling makes the account unavailable; the latest failure is the message.
        router.report("a", "m-up", failure(503), &rr(), now + secs(60));
        let health = router.health("a", now + secs(60));
        assert_eq!(health.status, HealthStatus::Cooling);
        assert!(health.unavailable);
        assert_eq!(health.next_retry_after, Some(secs(MIN)));
        assert_eq!(health.status_message.as_deref(), Some("upstream 503"));
        let models: Vec<_> = health.models.iter().map(|m| (m.model.as_str(), m.reason, m.retry_after)).collect();
        assert_eq!(
            models,
            [("m-up", CooldownReason::Transient, secs(MIN)), ("n-up", CooldownReason::Unauthorized, secs(29 * MIN))]
        );

        // Expired cooldowns drop out.
        assert_eq!(router.health("a", now + secs(2 * MIN)).models.len(), 1);
        assert_eq!(router.health("a", now + secs(31 * MIN)), AccountHealth::active());
    }

    #[test]
    fn reset_forgets_cooldowns_and_backoff() {
        let router = router(vec![account("a", 0, 1)]);
        let now = Instant::now();
        for _ in 0..3 {
            router.report("a", "m-up", failure(429), &rr(), now);
        }
        router.reset("a");
        assert_eq!(router.health("a", now), AccountHealth::active());
        assert_eq!(order(&router, "m", &rr(), now), ["a"]);
        router.report("a", "m-up", failure(429), &rr(), now);
        assert_eq!(router.health("a", now).models[0].retry_after, secs(1));
    }

    #[test]
    fn set_accounts_keeps_the_health_of_surviving_accounts() {
        let router = router(vec![account("a", 0, 1), account("b", 0, 1)]);
        let now = Instant::now();
        router.report("a", "m-up", failure(500), &rr(), now);
        router.report("b", "m-up", failure(500), &rr(), now);
        router.set_accounts(vec![account("a", 0, 1), account("c", 0, 1)]);
        assert_eq!(router.health("a", now).models.len(), 1);
        assert_eq!(order(&router, "m", &rr(), now), ["c"]);
        // A removed account's state does not come back with it.
        router.set_accounts(vec![account("a", 0, 1), account("b", 0, 1)]);
        assert_eq!(router.health("b", now), AccountHealth::active());
        // Reports for unknown accounts are ignored.
        router.report("zzz", "m-up", failure(500), &rr(), now);
        assert_eq!(router.health("zzz", now), AccountHealth::active());
    }

    #[test]
    fn plan_is_capped_and_carries_retry_rounds() {
        let mut own = account("b", 0, 1);
        own.request_retry = Some(0);
        let router = router(vec![account("a", 0, 1), own, account("c", 0, 1)]);
        let capped =
            RouteSettings { max_retry_credentials: 2, request_retry: 3, ..settings(RoutingStrategy::FillFirst) };
        let plan = router.plan("m", &capped, Instant::now()).unwrap();
        let attempts: Vec<_> = plan.attempts.iter().map(|a| (a.account_id.as_str(), a.request_retry)).collect();
        assert_eq!(attempts, [("a", 3), ("b", 0)]);
    }

    #[test]
    fn models_are_listed_once_with_their_providers() {
        let mut codex = account("z", 0, 1);
        codex.provider = "codex".into();
        codex.models = vec![exposed("M", "m-up"), exposed("only-codex", "o")];
        let router = router(vec![account("b", 0, 1), codex, account("a", 0, 1)]);
        let listed = router.models();
        let ids: Vec<_> = listed.iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["m", "n", "only-codex"]);
        assert_eq!(listed[0].providers, ["claude", "codex"]);
        assert_eq!(listed[0].display_name, "M-UP");
        assert_eq!(
            serde_json::to_value(&listed[2]).unwrap(),
            serde_json::json!({"id": "only-codex", "display_name": "O", "owned_by": "owner", "type": "openai",
                "providers": ["codex"]})
        );
    }

    #[test]
    fn settings_come_from_config() {
        let config = switchyard_config::parse(
            "routing:\n  strategy: wrr\ndisable-cooling: true\ntransient-error-cooldown-seconds: -1\n\
             max-retry-credentials: 2\nrequest-retry: 1\nmax-retry-interval: 0\n",
        )
        .unwrap()
        .config;
        assert_eq!(
            RouteSettings::from_config(&config),
            RouteSettings {
                strategy: RoutingStrategy::WeightedRoundRobin,
                disable_cooling: true,
                transient_error_cooldown_seconds: -1,
                max_retry_credentials: 2,
                request_retry: 1,
                max_retry_interval: Duration::ZERO,
            }
        );
        let defaults = RouteSettings::default();
        assert_eq!((defaults.request_retry, defaults.max_retry_interval), (3, secs(30)));
    }
}
