//! The router: which accounts serve a model and in what order (CPA §4.3, §4.4), and which are
//! cooling down after failures (§4.5). One `Router` per process, shared as `Arc<Router>`.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use switchyard_config::{Config, RoutingStrategy};

use crate::accounts::Account;
use crate::cooldown::{CooldownReason, cooldown_for};

mod plan;

pub use plan::{Attempt, Attempts, Plan};
use plan::{ModelServers, Planned, Server, top_tier_len};

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

/// Why a plan pinned to one account cannot be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PinError {
    UnknownAccount,
    Disabled,
    /// Nothing can be sent with it (no executor, needs a re-login): the account's reason.
    Unservable(String),
    /// The account does not serve this model.
    ModelNotServed {
        model: String,
    },
}

impl fmt::Display for PinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownAccount => f.write_str("no such account"),
            Self::Disabled => f.write_str("the account is disabled"),
            Self::Unservable(reason) => f.write_str(reason),
            Self::ModelNotServed { model } => write!(f, "the account does not serve model {model}"),
        }
    }
}

impl std::error::Error for PinError {}

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
    /// Lower-cased client model id → the accounts serving it.
    by_model: HashMap<String, ModelServers>,
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
    /// Per lower-cased model: the ready-made order less the accounts cooling for it, kept until
    /// the failure state changes (every change of `health` clears it) or a cooldown in it ends,
    /// so that with many failing accounts a plan does not look each one up again.
    available: HashMap<String, Available>,
}

/// Enabled accounts cooling for a model, with when each recovers.
type Cooling<'s> = Vec<(&'s Server, Instant)>;

struct Available {
    /// When it was worked out; valid from then until the first of `cooling` recovers.
    since: Instant,
    until: Option<Instant>,
    order: Vec<u32>,
    first_tier: usize,
    /// `(position, until)` of the enabled accounts cooling for the model, by position.
    cooling: Vec<(u32, Instant)>,
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
        let previous = self.current();
        // A token refresh saves its file but changes no account: a refresh wave would rebuild
        // every model's index once per saved file, for nothing.
        if previous.accounts == accounts {
            return;
        }
        let snapshot = Snapshot::new(accounts);
        let revived = |id: &str| {
            let was = previous.by_id.get(id).is_some_and(|&i| previous.accounts[i].unservable.is_some());
            let is = snapshot.by_id.get(id).is_some_and(|&i| snapshot.accounts[i].unservable.is_some());
            was && !is
        };
        {
            let mut state = self.state();
            state.health.retain(|id, _| snapshot.by_id.contains_key(id) && !revived(id));
            // Positions in the old snapshot.
            state.available.clear();
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

    /// The accounts `keep` selects, sorted by id (without copying the others).
    pub fn accounts_where(&self, keep: impl Fn(&Account) -> bool) -> Vec<Account> {
        self.current().accounts.iter().filter(|a| keep(a)).cloned().collect()
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
        let mut state = self.state();

        let all_cooling = |cooling: &[(&Server, Instant)]| {
            let first = cooling.iter().map(|(_, until)| *until).min().expect("enabled accounts exist");
            let provider = &cooling[0].0.account.provider;
            let shared = cooling.iter().all(|(s, _)| &s.account.provider == provider);
            RouteError::AllCooling {
                model: base.to_owned(),
                provider: shared.then(|| provider.to_string()),
                retry_after: first - now,
            }
        };
        let mut order = if weighted {
            state.order_weighted(&key, servers, now).map_err(|cooling| match cooling {
                None => RouteError::NoneAvailable { model: base.to_owned() },
                Some(cooling) => all_cooling(&cooling),
            })?
        } else {
            // The ready-made order, less the accounts cooling for this model, its first tier
            // turned by the cursor.
            if servers.enabled.is_empty() {
                return Err(RouteError::NoneAvailable { model: base.to_owned() });
            }
            let (mut order, first_tier) = if state.health.is_empty() {
                (servers.enabled.clone(), servers.first_tier)
            } else {
                let available = state.available(&key, &snapshot, servers, now);
                if available.order.is_empty() {
                    let cooling: Vec<_> =
                        available.cooling.iter().map(|&(i, until)| (&servers.all[i as usize], until)).collect();
                    return Err(all_cooling(&cooling));
                }
                (available.order.clone(), available.first_tier)
            };
            state.order(&key, &servers.all, &mut order[..first_tier], settings.strategy);
            order
        };
        if settings.max_retry_credentials > 0 {
            order.truncate(settings.max_retry_credentials);
        }
        let attempts = Attempts { servers: servers.all.clone(), order, request_retry: settings.request_retry };
        Ok(Plan { model: base.to_owned(), thinking_suffix: thinking_suffix.map(str::to_owned), attempts })
    }

    /// One account by id.
    pub fn account(&self, account_id: &str) -> Option<Account> {
        let snapshot = self.current();
        snapshot.by_id.get(account_id).map(|&i| snapshot.accounts[i].clone())
    }

    /// A plan of exactly one attempt on `account_id` for `model` (test requests, inspection
    /// probes): no failover, no retry rounds, no strategy cursor moves, and its cooldowns do not
    /// hold it back (the caller asked for this account explicitly). A disabled account is only
    /// planned with `include_disabled`.
    pub fn plan_for(&self, account_id: &str, model: &str, include_disabled: bool) -> Result<Plan, PinError> {
        let snapshot = self.current();
        let account = snapshot.by_id.get(account_id).map(|&i| &snapshot.accounts[i]).ok_or(PinError::UnknownAccount)?;
        if account.disabled && !include_disabled {
            return Err(PinError::Disabled);
        }
        if let Some(reason) = &account.unservable {
            return Err(PinError::Unservable(reason.clone()));
        }
        let find = |name: &str| account.models.iter().find(|m| m.id.eq_ignore_ascii_case(name));
        let (served, base, suffix) = match find(model) {
            Some(served) => (served, model, None),
            None => split_thinking_suffix(model)
                .and_then(|(base, suffix)| Some((find(base)?, base, Some(suffix))))
                .ok_or_else(|| PinError::ModelNotServed { model: model.to_owned() })?,
        };
        // No retry rounds, whatever the account's own `request_retry`.
        let planned = Planned { request_retry: Some(0), ..Planned::new(0, account) };
        let server = Server {
            account: Arc::new(planned),
            upstream: served.upstream.as_str().into(),
            upstream_key: served.upstream.to_lowercase().into(),
        };
        Ok(Plan {
            model: base.to_owned(),
            thinking_suffix: suffix.map(str::to_owned),
            attempts: Attempts { servers: Arc::new([server]), order: vec![0], request_retry: 0 },
        })
    }

    /// Forgets every cooldown and 429 backoff of the account (`POST /reset-quota`), so it is
    /// planned again at once. `false` when no account has this id.
    pub fn reset_health(&self, account_id: &str) -> bool {
        if !self.current().by_id.contains_key(account_id) {
            return false;
        }
        self.state().forget(account_id);
        true
    }

    /// How long until the first cooling account serving `model` recovers, without planning (no
    /// strategy cursor moves). `None` when none of its enabled accounts is cooling. For retry
    /// rounds (how long to wait) and a final 429's `Retry-After`.
    pub fn soonest_recovery(&self, model: &str, settings: &RouteSettings, now: Instant) -> Option<Duration> {
        let snapshot = self.current();
        let Resolved { servers, .. } = snapshot.resolve(model).ok()?;
        let weighted = settings.strategy == RoutingStrategy::WeightedRoundRobin;
        let state = self.state();
        servers
            .all
            .iter()
            .filter(|server| server.servable(weighted))
            .filter_map(|server| state.health.get(&*server.account.id)?.blocked_until(&server.upstream_key, now))
            .min()
            .map(|until| until - now)
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
                    let model_slot = health.models.remove(&model);
                    let credential = std::mem::take(&mut health.credential);
                    let lifted = model_slot.is_some_and(|s| s.cooldown.is_some()) || credential.cooldown.is_some();
                    if health.models.is_empty() {
                        state.health.remove(account_id);
                    }
                    // The kept orders change only when a cooldown goes; a success on an account
                    // cooling for another model is frequent and changes nothing.
                    if lifted {
                        state.available.clear();
                    }
                }
            }
            Outcome::Failure { status, retry_after, credential_wide, message } => {
                if account.disable_cooling.unwrap_or(settings.disable_cooling) {
                    return;
                }
                state.available.clear();
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
        self.state().forget(account_id);
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
    /// Orders one tier (positions in `servers`, in account order on entry) by the strategy.
    fn order(&mut self, model: &str, servers: &[Server], tier: &mut [u32], strategy: RoutingStrategy) {
        if tier.is_empty() {
            return;
        }
        match strategy {
            RoutingStrategy::FillFirst => {}
            RoutingStrategy::RoundRobin => {
                let cursor = match self.cursors.get_mut(model) {
                    Some(cursor) => cursor,
                    None => self.cursors.entry(model.to_owned()).or_default(),
                };
                tier.rotate_left(*cursor % tier.len());
                *cursor = cursor.wrapping_add(1);
            }
            RoutingStrategy::WeightedRoundRobin => {
                // Smooth WRR (nginx): everyone gains its weight, the leader pays the total. The
                // rest follow by current weight, i.e. in the order they would be picked next.
                let current = self.wrr.entry(model.to_owned()).or_default();
                let account = |i: &u32| &*servers[*i as usize].account;
                let total: i64 = tier.iter().map(|i| i64::from(account(i).weight)).sum();
                for i in tier.iter() {
                    let account = account(i);
                    *current.entry(account.id.to_string()).or_default() += i64::from(account.weight);
                }
                // Stable sort: ties keep account order.
                tier.sort_by_key(|i| Reverse(current[&*account(i).id]));
                *current.get_mut(&*account(&tier[0]).id).expect("just added") -= total;
            }
        }
    }

    fn forget(&mut self, account_id: &str) {
        if self.health.remove(account_id).is_some() {
            self.available.clear();
        }
    }

    /// [`Available`] for `model`, worked out again when the kept one no longer holds.
    fn available(&mut self, model: &str, snapshot: &Snapshot, servers: &ModelServers, now: Instant) -> &Available {
        let holds = |a: &Available| a.since <= now && a.until.is_none_or(|until| now < until);
        if !self.available.get(model).is_some_and(holds) {
            let cooling = self.cooling(snapshot, servers, now);
            let order: Vec<u32> =
                servers.enabled.iter().copied().filter(|i| cooling.binary_search_by_key(i, |c| c.0).is_err()).collect();
            let first_tier = top_tier_len(&servers.all, &order);
            let until = cooling.iter().map(|c| c.1).min();
            self.available.insert(model.to_owned(), Available { since: now, until, order, first_tier, cooling });
        }
        &self.available[model]
    }

    /// The enabled accounts serving the model that are cooling for it: (position in
    /// `servers.all`, until), by position. Looked up from whichever side is smaller: the accounts
    /// with failure state are usually a few next to a big auth dir.
    fn cooling(&self, snapshot: &Snapshot, servers: &ModelServers, now: Instant) -> Vec<(u32, Instant)> {
        let blocked = |server: &Server| {
            let health = self.health.get(&*server.account.id)?;
            health.blocked_until(&server.upstream_key, now).filter(|_| server.servable(false))
        };
        let mut cooling: Vec<(u32, Instant)> = if self.health.len() < servers.all.len() {
            self.health
                .keys()
                .filter_map(|id| {
                    let index = *snapshot.by_id.get(id)?;
                    // `all` is in account order.
                    let at = servers.all.binary_search_by_key(&index, |s| s.account.index).ok()?;
                    Some((at as u32, blocked(&servers.all[at])?))
                })
                .collect()
        } else {
            (0..servers.all.len() as u32).filter_map(|i| Some((i, blocked(&servers.all[i as usize])?))).collect()
        };
        cooling.sort_unstable_by_key(|c| c.0);
        cooling
    }

    /// The weighted round-robin order: the available accounts by tier, the first by current
    /// weight, the others by weight. `Err(None)`: no account is enabled and weighted in;
    /// `Err(Some(cooling))`: all that are are cooling.
    fn order_weighted<'s>(
        &mut self,
        model: &str,
        servers: &'s ModelServers,
        now: Instant,
    ) -> Result<Vec<u32>, Option<Cooling<'s>>> {
        let mut tiers: BTreeMap<Reverse<i64>, Vec<u32>> = BTreeMap::new();
        let mut cooling: Cooling<'s> = Vec::new();
        let mut any_enabled = false;
        for (i, server) in servers.all.iter().enumerate().filter(|(_, s)| s.servable(true)) {
            any_enabled = true;
            let health = if self.health.is_empty() { None } else { self.health.get(&*server.account.id) };
            match health.and_then(|h| h.blocked_until(&server.upstream_key, now)) {
                Some(until) => cooling.push((server, until)),
                None => tiers.entry(Reverse(server.account.priority)).or_default().push(i as u32),
            }
        }
        if !any_enabled {
            return Err(None);
        }
        if tiers.is_empty() {
            return Err(Some(cooling));
        }
        let mut ordered = Vec::new();
        for (i, (_, mut tier)) in tiers.into_iter().enumerate() {
            // Only the tier requests land on first is balanced; lower tiers are fallbacks.
            if i == 0 {
                self.order(model, &servers.all, &mut tier, RoutingStrategy::WeightedRoundRobin);
            } else {
                tier.sort_by_key(|&i| Reverse(servers.all[i as usize].account.weight));
            }
            ordered.extend(tier);
        }
        Ok(ordered)
    }
}

impl Snapshot {
    fn new(accounts: Vec<Account>) -> Self {
        let by_id = accounts.iter().enumerate().rev().map(|(i, a)| (a.id.clone(), i)).collect();
        let mut by_model: HashMap<String, Vec<Server>> = HashMap::new();
        let mut listed: BTreeMap<String, ListedModel> = BTreeMap::new();
        // Upstream names (and their lower-cased keys) are few, each shared by many accounts.
        let mut names: HashMap<&str, (Arc<str>, Arc<str>)> = HashMap::new();
        // An account nothing can be sent with serves no model: it is neither listed nor routed.
        for (a, account) in accounts.iter().enumerate().filter(|(_, a)| a.unservable.is_none()) {
            let planned = Arc::new(Planned::new(a, account));
            for model in account.models.iter() {
                let key = model.id.to_lowercase();
                let servers = by_model.entry(key.clone()).or_default();
                // One account may list ids differing only in case; it serves them once.
                if servers.last().is_some_and(|last| last.account.index == a) {
                    continue;
                }
                let (upstream, upstream_key) = names
                    .entry(model.upstream.as_str())
                    .or_insert_with(|| (model.upstream.as_str().into(), model.upstream.to_lowercase().into()))
                    .clone();
                servers.push(Server { account: planned.clone(), upstream, upstream_key });
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
        let by_model = by_model.into_iter().map(|(key, servers)| (key, ModelServers::new(servers))).collect();
        Self { accounts, by_id, by_model, listed: listed.into_values().collect() }
    }

    /// The requested model, split from its thinking suffix when the whole name is unknown.
    fn resolve<'m>(&self, model: &'m str) -> Result<Resolved<'_, 'm>, RouteError> {
        let servers = |name: &str| self.by_model.get(&name.to_lowercase());
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
    servers: &'s ModelServers,
}

/// `model(<budget|level>)` → `(model, budget|level)`; both parts non-empty.
fn split_thinking_suffix(model: &str) -> Option<(&str, &str)> {
    let (base, suffix) = model.strip_suffix(')')?.rsplit_once('(')?;
    (!base.is_empty() && !suffix.is_empty()).then_some((base, suffix))
}

#[cfg(test)]
mod tests;
