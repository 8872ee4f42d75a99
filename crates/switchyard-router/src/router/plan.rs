//! A plan's types: the accounts serving a model as the snapshot keeps them ready for planning,
//! and the ordered attempts a plan hands out.

use std::cmp::Reverse;
use std::fmt;
use std::sync::Arc;

use crate::accounts::{Account, AccountKind};

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
    pub attempts: Attempts,
}

/// One account to try. The strings and the kind are shared with the router's snapshot (`Arc`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub account_id: Arc<str>,
    pub provider: Arc<str>,
    pub kind: Arc<AccountKind>,
    /// The catalogue name behind the requested alias/prefix; pass it back to [`Router::report`].
    pub upstream_model: Arc<str>,
    /// Retry rounds this account joins (its own `request_retry`, else the global one): round
    /// `r` (1 = the first retry round) admits it when `r <= request_retry`.
    pub request_retry: u32,
}

/// A plan's accounts in order, kept as positions in the model's server list (shared with the
/// snapshot): a model served by thousands of accounts costs one small vector per request, and an
/// [`Attempt`] is only built when it is reached — most requests build one.
#[derive(Clone)]
pub struct Attempts {
    pub(super) servers: Arc<[Server]>,
    pub(super) order: Vec<u32>,
    /// The global `request-retry`, for accounts without their own.
    pub(super) request_retry: u32,
}

impl Attempts {
    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn get(&self, index: usize) -> Option<Attempt> {
        self.order.get(index).map(|&i| self.attempt(&self.servers[i as usize]))
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Attempt> + '_ {
        self.order.iter().map(|&i| self.attempt(&self.servers[i as usize]))
    }

    /// The attempts of round `round`: round 0 is every account, retry round `r` only those whose
    /// `request_retry` is at least `r`.
    pub fn for_round(&self, round: u32) -> impl Iterator<Item = Attempt> + '_ {
        self.order
            .iter()
            .map(|&i| &self.servers[i as usize])
            .filter(move |server| round == 0 || self.retry_of(server) >= round)
            .map(|server| self.attempt(server))
    }

    /// Whether any account joins retry round `round`.
    pub fn any_in_round(&self, round: u32) -> bool {
        self.order.iter().any(|&i| self.retry_of(&self.servers[i as usize]) >= round)
    }

    fn retry_of(&self, server: &Server) -> u32 {
        server.account.request_retry.unwrap_or(self.request_retry)
    }

    fn attempt(&self, server: &Server) -> Attempt {
        Attempt {
            account_id: server.account.id.clone(),
            provider: server.account.provider.clone(),
            kind: server.account.kind.clone(),
            upstream_model: server.upstream.clone(),
            request_retry: self.retry_of(server),
        }
    }
}

impl PartialEq for Attempts {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Attempts {}

impl fmt::Debug for Attempts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// The accounts serving one model.
pub(super) struct ModelServers {
    /// In account order.
    pub(super) all: Arc<[Server]>,
    /// Positions in `all` of the enabled accounts, highest priority first (account order within
    /// a priority): the plan whenever nothing is cooling and the strategy is not weighted.
    pub(super) enabled: Vec<u32>,
    /// How many of `enabled` are in the highest priority tier.
    pub(super) first_tier: usize,
}

/// One account serving one model. Small on purpose: a big auth dir has one per account and model
/// (tens of thousands); the account part is shared by all its models, the names by all accounts.
pub(super) struct Server {
    pub(super) account: Arc<Planned>,
    pub(super) upstream: Arc<str>,
    /// `upstream` lower-cased: the key of its cooldowns.
    pub(super) upstream_key: Arc<str>,
}

/// What a plan needs of an account, ready-made (a plan reads only this, not the accounts).
pub(super) struct Planned {
    /// Position in the snapshot's accounts.
    pub(super) index: usize,
    pub(super) id: Arc<str>,
    pub(super) provider: Arc<str>,
    pub(super) kind: Arc<AccountKind>,
    pub(super) priority: i64,
    pub(super) weight: u32,
    pub(super) disabled: bool,
    pub(super) request_retry: Option<u32>,
}

impl ModelServers {
    pub(super) fn new(all: Vec<Server>) -> Self {
        let mut enabled: Vec<u32> = (0..all.len() as u32).filter(|&i| !all[i as usize].account.disabled).collect();
        // Stable: account order within a priority.
        enabled.sort_by_key(|&i| Reverse(all[i as usize].account.priority));
        let first_tier = top_tier_len(&all, &enabled);
        Self { all: all.into(), enabled, first_tier }
    }
}

/// How many of `order` (positions in `all`, highest priority first) share the first one's priority.
pub(super) fn top_tier_len(all: &[Server], order: &[u32]) -> usize {
    let priority = |i: u32| all[i as usize].account.priority;
    order.first().map_or(0, |&top| order.iter().take_while(|&&i| priority(i) == priority(top)).count())
}

impl Planned {
    pub(super) fn new(index: usize, account: &Account) -> Self {
        Self {
            index,
            id: account.id.as_str().into(),
            provider: account.provider.as_str().into(),
            kind: Arc::new(account.kind.clone()),
            priority: account.priority,
            weight: account.weight,
            disabled: account.disabled,
            request_retry: account.request_retry,
        }
    }
}

impl Server {
    /// Planned at all: enabled, and weighted in when the strategy is weighted.
    pub(super) fn servable(&self, weighted: bool) -> bool {
        !self.account.disabled && (!weighted || self.account.weight > 0)
    }
}
