//! Asking the quota endpoints (one account, all of them, on a schedule) and reading quota out
//! of relayed answers.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use reqwest::header::HeaderMap;
use switchyard_auth::login::RefreshError;
use switchyard_providers::executor::ExecContext;
use switchyard_providers::quota::{QuotaCall, QuotaError, QuotaReport};
use switchyard_router::AccountKind;

use super::evidence;
use crate::AppState;
use crate::account_health::credential_fingerprint;

/// A token handed to a quota endpoint must stay valid this long.
const TOKEN_SKEW: Duration = Duration::from_secs(60);
/// One fetch (both calls of a two-call provider) may take this long.
const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Accounts asked at once by a refresh of many.
const PARALLEL_FETCHES: usize = 4;

/// Why an account cannot be asked at all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Unfetchable {
    NotFound,
    /// Config keys and providers without a quota endpoint.
    NoSource {
        provider: String,
    },
}

/// Asks the quota endpoint of `account_id` (router id), keeps the outcome and feeds it into
/// health. A refused token is refreshed once and the call retried, as the request path does.
pub(crate) async fn fetch_account(
    state: &AppState,
    account_id: &str,
) -> Result<Result<QuotaReport, QuotaError>, Unfetchable> {
    let account = state.router.account(account_id).ok_or(Unfetchable::NotFound)?;
    let no_source = || Unfetchable::NoSource { provider: account.provider.clone() };
    let AccountKind::OAuth { file } = &account.kind else { return Err(no_source()) };
    let fetcher = state.quota.fetcher(&account.provider).ok_or_else(no_source)?.clone();
    let stored = state.store.get(file).ok_or(Unfetchable::NotFound)?;
    let fingerprint = stored.credential().and_then(credential_fingerprint);
    let mut outcome = ask(state, file, fetcher.as_ref()).await;
    if matches!(outcome, Err(QuotaError::Unauthorized { .. }))
        && stored.credential().is_some_and(|c| c.refresh_token().is_some())
        && state.refresher.force_refresh(file).await.is_ok()
    {
        outcome = ask(state, file, fetcher.as_ref()).await;
    }
    state.quota.record(account_id, fingerprint.as_deref(), &outcome, Utc::now());
    if let Some(quota) = evidence(&outcome) {
        state.record_quota(account_id, quota).await;
    }
    Ok(outcome)
}

async fn ask(
    state: &AppState,
    file: &str,
    fetcher: &dyn switchyard_providers::quota::QuotaFetcher,
) -> Result<QuotaReport, QuotaError> {
    let credential_error = |message: &str| QuotaError::Credential { message: message.to_owned() };
    let stored = state.store.get(file).ok_or_else(|| credential_error("the auth file is gone"))?;
    let credential = stored.credential().ok_or_else(|| credential_error("the auth file cannot be parsed"))?;
    let token = if credential.access_token().is_some() || credential.refresh_token().is_some() {
        state.refresher.fresh_access_token(file, TOKEN_SKEW).await.map_err(|error| match error {
            RefreshError::Revoked(reason) => credential_error(&format!("needs re-login: {reason}")),
            other => QuotaError::Transport {
                message: format!("could not refresh the token: {}", switchyard_redact::text(&other.to_string())),
            },
        })?
    } else {
        ["api_key", "token", "cookie"]
            .iter()
            .find_map(|field| credential.str_field(field).filter(|v| !v.is_empty()))
            .ok_or_else(|| credential_error("the auth file holds no token"))?
            .to_owned()
    };
    let config = state.config.get();
    let http = state
        .http_clients
        .for_account(&config, credential.proxy_url())
        .await
        .map_err(|error| QuotaError::Transport { message: error.to_string() })?;
    let ctx = ExecContext { http, config };
    let call = QuotaCall { ctx: &ctx, token: &token, credential };
    match tokio::time::timeout(FETCH_TIMEOUT, fetcher.fetch(call)).await {
        Ok(outcome) => outcome,
        Err(_) => Err(QuotaError::Transport { message: format!("no answer within {} s", FETCH_TIMEOUT.as_secs()) }),
    }
}

/// Asks every account that has a quota source (or just `only`), a few at a time.
pub(crate) async fn refresh(state: &AppState, only: Option<&str>) -> Vec<(String, Result<QuotaReport, QuotaError>)> {
    let ids: Vec<String> = state
        .router
        .accounts()
        .into_iter()
        .filter(|a| matches!(a.kind, AccountKind::OAuth { .. }) && state.quota.fetcher(&a.provider).is_some())
        .map(|a| a.id)
        .filter(|id| only.is_none_or(|only| only == id))
        .collect();
    futures::stream::iter(ids)
        .map(|id| async move {
            let outcome = fetch_account(state, &id).await.ok()?;
            Some((id, outcome))
        })
        .buffer_unordered(PARALLEL_FETCHES)
        .filter_map(futures::future::ready)
        .collect()
        .await
}

/// Reads every account's quota each `quota.refresh-interval-seconds` (0 = never; followed live),
/// the first time as soon as it is on.
pub(crate) fn spawn_schedule(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    const TICK: Duration = Duration::from_secs(15);
    tokio::spawn(async move {
        let mut last: Option<tokio::time::Instant> = None;
        loop {
            let seconds = state.config.get().quota.refresh_interval_seconds;
            if seconds != 0 && last.is_none_or(|at| at.elapsed() >= Duration::from_secs(seconds)) {
                last = Some(tokio::time::Instant::now());
                let read = refresh(&state, None).await;
                tracing::debug!(accounts = read.len(), "scheduled quota refresh");
                state.quota.retain(|id| state.router.account(id).is_some());
            }
            tokio::time::sleep(TICK).await;
        }
    })
}

/// Quota a relayed answer of an auth-file account tells by itself (`x-codex-*` headers, a 429
/// naming its reset): kept, and passed on to health now and then. No network, no waiting: a
/// file switch it calls for runs in its own task. Answers how long the account is out when the
/// answer said its limit is reached until a known time (the 429's own cooldown).
pub(crate) fn observe(
    state: &AppState,
    account_id: &str,
    provider: &str,
    status: u16,
    headers: &HeaderMap,
    body: Option<&[u8]>,
) -> Option<Duration> {
    let fetcher = state.quota.fetcher(provider)?;
    let now = Utc::now();
    let report = fetcher.observe(status, headers, body, now)?;
    let out_until = super::report_exhausted(&report)
        .then(|| {
            report
                .windows
                .iter()
                .filter(|w| super::account_wide(w.kind) && w.exhausted)
                .filter_map(|w| w.resets_at)
                .min()
        })
        .flatten();
    let wait = out_until.and_then(|until| (until - now).to_std().ok());
    let fingerprint = state.store.get(account_id).and_then(|s| s.credential().and_then(credential_fingerprint));
    if state.quota.record_observed(account_id, fingerprint.as_deref(), &report)
        && let Some(quota) = evidence(&Ok(report))
    {
        let (_, follow_up) = state.note_quota(account_id, quota);
        if let Some(follow_up) = follow_up {
            tokio::spawn(follow_up.run());
        }
    }
    wait
}
