//! Inspection runs: probe every account (or a filtered few) with bounded concurrency and a
//! per-probe timeout, recommend reauth / disable / enable / delete / keep for each, and apply
//! chosen recommendations under the ownership rules. Codex and xAI accounts are judged by
//! their quota (the §4.6 table) when a quota reading is at hand; every other account gets one
//! tiny real request through the pipeline, classified by §4.5. One run at a time; the last run
//! is kept in memory.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};
use switchyard_health::inspection::{
    AccountFacts, Decision, Priority, QuotaProbe, Recommendation, RequestProbe, decide_quota_probe,
    decide_request_probe,
};
use switchyard_health::{Action, Actor, Evidence, FailureSignal, HealthState, Signal, Source};
use switchyard_router::{Account, AccountKind};

use super::{actions, fingerprint_of, probe, standing};
use crate::AppState;

/// Providers whose accounts are judged by their quota windows when a reading is available.
const QUOTA_PROVIDERS: &[&str] = &["codex", "xai"];
const ENDPOINT: &str = "/v0/management/inspection";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum RunState {
    Running,
    Completed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Trigger {
    Manual,
    Schedule,
}

/// Which accounts a run covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Filter {
    pub auth_index: Option<String>,
    pub provider: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub(crate) struct Counts {
    pub total: usize,
    pub probed: usize,
    pub keep: usize,
    pub delete: usize,
    pub disable: usize,
    pub enable: usize,
    pub reauth: usize,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct ProbeSummary {
    /// `request` (a real request), `quota` (a quota reading) or `none` (not probed).
    pub kind: &'static str,
    pub status: Option<u16>,
    pub latency_ms: Option<u64>,
    pub model: Option<String>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct Applied {
    pub action: Recommendation,
    /// `executed`, `skipped` or `failed`.
    pub status: &'static str,
    pub message: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct AccountResult {
    pub auth_index: String,
    pub name: String,
    pub provider: String,
    pub probe: ProbeSummary,
    /// What was recorded about the account while it was inspected.
    pub evidence: Vec<Value>,
    pub health: &'static str,
    pub health_reason: String,
    pub action: Recommendation,
    pub reason: String,
    pub priority: Priority,
    /// May run without a person (scheduled runs with `health.auto-disable`).
    pub automatic: bool,
    pub applied: Option<Applied>,
}

#[derive(Clone, Debug, Serialize)]
pub(crate) struct InspectionRun {
    pub id: u64,
    pub state: RunState,
    pub trigger: Trigger,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub filter: Filter,
    pub counts: Counts,
    pub results: Vec<AccountResult>,
}

/// The last run, and whether one is running.
#[derive(Default)]
pub(crate) struct Runs {
    inner: Mutex<RunsInner>,
}

#[derive(Default)]
struct RunsInner {
    next_id: u64,
    last: Option<InspectionRun>,
}

impl Runs {
    pub fn last(&self) -> Option<InspectionRun> {
        self.lock().last.clone()
    }

    /// Registers a new run; `None` while another is running.
    fn begin(&self, filter: Filter, trigger: Trigger) -> Option<u64> {
        let mut inner = self.lock();
        if inner.last.as_ref().is_some_and(|run| run.state == RunState::Running) {
            return None;
        }
        inner.next_id += 1;
        let id = inner.next_id;
        inner.last = Some(InspectionRun {
            id,
            state: RunState::Running,
            trigger,
            started_at: Utc::now(),
            finished_at: None,
            filter,
            counts: Counts::default(),
            results: Vec::new(),
        });
        Some(id)
    }

    fn finish(&self, run: InspectionRun) {
        self.lock().last = Some(run);
    }

    fn mark_applied(&self, auth_index: &str, applied: Applied) {
        if let Some(run) = self.lock().last.as_mut()
            && let Some(result) = run.results.iter_mut().find(|r| r.auth_index == auth_index)
        {
            result.applied = Some(applied);
        }
    }

    fn lock(&self) -> MutexGuard<'_, RunsInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Starts a run in the background; `None` when one is already running.
pub(crate) fn start(
    state: Arc<AppState>,
    filter: Filter,
    trigger: Trigger,
) -> Option<(u64, tokio::task::JoinHandle<InspectionRun>)> {
    let id = state.health.runs.begin(filter.clone(), trigger)?;
    let handle = tokio::spawn(async move {
        let run = run(&state, id, filter, trigger).await;
        state.health.runs.finish(run.clone());
        if trigger == Trigger::Schedule && state.config.get().health.auto_disable {
            apply_automatic(&state, &run).await;
        }
        run
    });
    Some((id, handle))
}

/// Runs an inspection every `health.inspection-interval-minutes` (0 = never; followed live).
pub(crate) fn spawn_schedule(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    const TICK: Duration = Duration::from_secs(30);
    tokio::spawn(async move {
        let mut last = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(TICK).await;
            let minutes = state.config.get().health.inspection_interval_minutes;
            if minutes == 0 || last.elapsed() < Duration::from_secs(minutes.saturating_mul(60)) {
                continue;
            }
            last = tokio::time::Instant::now();
            if let Some((_, handle)) = start(state.clone(), Filter::default(), Trigger::Schedule) {
                let _ = handle.await;
            }
        }
    })
}

/// One account to inspect.
struct Target {
    account: Account,
    auth_index: String,
}

fn targets(state: &AppState, filter: &Filter) -> Vec<Target> {
    let config = state.config.get();
    state
        .router
        .accounts()
        .into_iter()
        .filter_map(|account| {
            let auth_index = crate::management::account_auth_index(state, &config, &account.kind)?;
            Some(Target { account, auth_index })
        })
        .filter(|t| filter.auth_index.as_deref().is_none_or(|i| i == t.auth_index))
        .filter(|t| filter.provider.as_deref().is_none_or(|p| p.eq_ignore_ascii_case(&t.account.provider)))
        .collect()
}

async fn run(state: &AppState, id: u64, filter: Filter, trigger: Trigger) -> InspectionRun {
    let started_at = Utc::now();
    let config = state.config.get();
    let workers = usize::try_from(config.health.inspection_workers).unwrap_or(1).max(1);
    let timeout = Duration::from_secs(config.health.inspection_timeout_seconds.max(1));
    let threshold = config.health.inspection_quota_threshold;
    let targets = targets(state, &filter);
    let mut results: Vec<AccountResult> = futures::stream::iter(targets)
        .map(|target| inspect(state, target, timeout, threshold))
        .buffer_unordered(workers)
        .collect()
        .await;
    results.sort_by(|a, b| a.priority.cmp(&b.priority).then_with(|| a.name.cmp(&b.name)));
    let mut counts = Counts { total: results.len(), ..Counts::default() };
    for result in &results {
        counts.probed += usize::from(result.probe.kind != "none");
        *match result.action {
            Recommendation::Keep => &mut counts.keep,
            Recommendation::Delete => &mut counts.delete,
            Recommendation::Disable => &mut counts.disable,
            Recommendation::Enable => &mut counts.enable,
            Recommendation::Reauth => &mut counts.reauth,
        } += 1;
    }
    tracing::info!(
        run = id,
        total = counts.total,
        reauth = counts.reauth,
        disable = counts.disable,
        "inspection finished"
    );
    InspectionRun {
        id,
        state: RunState::Completed,
        trigger,
        started_at,
        finished_at: Some(Utc::now()),
        filter,
        counts,
        results,
    }
}

fn not_probed() -> ProbeSummary {
    ProbeSummary { kind: "none", status: None, latency_ms: None, model: None, error: None }
}

async fn inspect(state: &AppState, target: Target, timeout: Duration, threshold: f64) -> AccountResult {
    let started = Utc::now();
    let config = state.config.get();
    let id = target.account.id.clone();
    let before = standing(state, &config, &id);
    let facts =
        before.as_ref().map(|s| AccountFacts { disabled: s.disabled, disabled_by: s.disabled_by }).unwrap_or_default();
    let (probe, decision) = match tokio::time::timeout(timeout, probe_and_decide(state, &target, facts, threshold))
        .await
    {
        Ok(decided) => decided,
        Err(_) => {
            let probe =
                ProbeSummary { error: Some(format!("probe timed out after {}s", timeout.as_secs())), ..not_probed() };
            let decision = decide_request_probe(
                &RequestProbe::default(),
                facts,
                &before.as_ref().map_or_else(unknown, |s| s.health.clone()),
            );
            (probe, decision)
        }
    };
    if let Some(signal) = inspection_signal(&decision, probe.kind) {
        let fingerprint = fingerprint_of(state, &config, &target.account);
        let evidence = Evidence::new(Utc::now(), Source::Inspection, signal, decision.reason.clone());
        state.health.book.record(&id, fingerprint.as_deref(), evidence);
    }
    let after = standing(state, &config, &id);
    let health = after.as_ref().map_or_else(unknown, |s| s.health.clone());
    let evidence =
        state.health.book.evidence(&id).iter().filter(|e| e.at >= started).rev().map(super::evidence_json).collect();
    AccountResult {
        auth_index: target.auth_index,
        name: id,
        provider: target.account.provider,
        probe,
        evidence,
        health: health.state.name(),
        health_reason: health.reason(),
        action: decision.action,
        reason: decision.reason,
        priority: decision.priority,
        automatic: decision.automatic,
        applied: None,
    }
}

fn unknown() -> switchyard_health::Health {
    switchyard_health::evaluate(&[], &Default::default(), Utc::now())
}

/// What an inspection adds to the evidence beyond what its probe already recorded.
fn inspection_signal(decision: &Decision, probe_kind: &str) -> Option<Signal> {
    match decision.action {
        Recommendation::Reauth => Some(Signal::Invalid { action: Action::Reauth }),
        Recommendation::Delete => Some(Signal::Invalid { action: Action::Delete }),
        // A quota disable is already in the quota evidence; a request one is a credential review.
        Recommendation::Disable if probe_kind == "request" => Some(Signal::Invalid { action: Action::Review }),
        _ => None,
    }
}

async fn probe_and_decide(
    state: &AppState,
    target: &Target,
    facts: AccountFacts,
    threshold: f64,
) -> (ProbeSummary, Decision) {
    let account = &target.account;
    let config = state.config.get();
    if let Some(reason) = &account.unservable {
        let health = standing(state, &config, &account.id).map_or_else(unknown, |s| s.health);
        let probe = RequestProbe { status: None, failure: None };
        let mut decision = decide_request_probe(&probe, facts, &health);
        if health.state == HealthState::NeedsRelogin || reason.starts_with("needs re-login") {
            decision = Decision { action: Recommendation::Reauth, reason: reason.clone(), ..decision };
            decision.priority = Priority::Critical;
            decision.automatic = true;
        } else {
            decision.reason = reason.clone();
        }
        return (not_probed(), decision);
    }
    if QUOTA_PROVIDERS.contains(&account.provider.as_str())
        && let Some(quota) = quota_reading(state, target).await
    {
        let probe = QuotaProbe::from_evidence(&target.auth_index, &quota);
        let summary = ProbeSummary { kind: "quota", status: probe.status, latency_ms: None, model: None, error: None };
        return (summary, decide_quota_probe(&probe, facts, threshold));
    }
    let Some(model) = account.models.first().map(|m| m.id.clone()) else {
        let decision = decide_request_probe(&RequestProbe::default(), facts, &unknown());
        return (not_probed(), Decision { reason: "the account serves no model".into(), ..decision });
    };
    let outcome = probe::send(state, &account.id, &model, true, ENDPOINT).await;
    let failure = (!(200..300).contains(&outcome.status)).then(|| {
        outcome.failure.clone().unwrap_or_else(|| {
            FailureSignal::from_body(&account.provider, outcome.status, outcome.error.as_deref().unwrap_or(""))
        })
    });
    let health = standing(state, &config, &account.id).map_or_else(unknown, |s| s.health);
    let decision = decide_request_probe(&RequestProbe { status: Some(outcome.status), failure }, facts, &health);
    let summary = ProbeSummary {
        kind: "request",
        status: Some(outcome.status),
        latency_ms: Some(outcome.latency_ms),
        model: Some(outcome.model),
        error: outcome.error,
    };
    (summary, decision)
}

/// A fresh reading from the provider's quota endpoint; one that says nothing (unreachable, an
/// odd answer) leaves the last recorded reading standing.
async fn quota_reading(state: &AppState, target: &Target) -> Option<switchyard_health::quota::QuotaEvidence> {
    // `fetch_account` records what the reading says as evidence.
    let _ = crate::quota::fetch_account(state, &target.account.id).await;
    state.health.book.latest_quota(&target.account.id).map(|(_, quota)| quota)
}

/// One chosen recommendation.
#[derive(Clone, Debug)]
pub(crate) struct Choice {
    pub auth_index: String,
    /// `None`: the run's recommendation.
    pub action: Option<Recommendation>,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ApplyError {
    NoRun,
    Running,
}

/// Applies `choices` against the last completed run: delete removes the file, disable/enable
/// switch it as the inspection (ownership rules apply), reauth only marks the account.
pub(crate) async fn apply(state: &AppState, choices: Vec<Choice>) -> Result<Vec<Value>, ApplyError> {
    let run = state.health.runs.last().ok_or(ApplyError::NoRun)?;
    if run.state == RunState::Running {
        return Err(ApplyError::Running);
    }
    let mut outcomes = Vec::new();
    for choice in choices {
        let Some(result) = run.results.iter().find(|r| r.auth_index == choice.auth_index) else {
            outcomes.push(json!({"auth_index": choice.auth_index, "status": "failed", "message": "not in the last inspection run"}));
            continue;
        };
        let action = choice.action.unwrap_or(result.action);
        let applied = apply_one(state, result, action).await;
        outcomes.push(json!({"auth_index": result.auth_index, "name": result.name, "action": action, "status": applied.status, "message": applied.message}));
        state.health.runs.mark_applied(&result.auth_index, applied);
    }
    Ok(outcomes)
}

async fn apply_automatic(state: &AppState, run: &InspectionRun) {
    for result in run.results.iter().filter(|r| r.automatic) {
        // Deleting a file is always a person's decision.
        if matches!(result.action, Recommendation::Disable | Recommendation::Enable | Recommendation::Reauth) {
            let applied = apply_one(state, result, result.action).await;
            state.health.runs.mark_applied(&result.auth_index, applied);
        }
    }
}

async fn apply_one(state: &AppState, result: &AccountResult, action: Recommendation) -> Applied {
    let done = |status: &'static str, message: String| Applied { action, status, message, at: Utc::now() };
    let file = state.router.account(&result.name).and_then(|account| match account.kind {
        AccountKind::OAuth { file } => Some(file),
        _ => None,
    });
    let book = &state.health.book;
    match (action, file) {
        (Recommendation::Keep, _) => done("skipped", "nothing to do".into()),
        (Recommendation::Reauth, _) => {
            let config = state.config.get();
            if let Some(account) = state.router.account(&result.name) {
                let fingerprint = fingerprint_of(state, &config, &account);
                let detail = format!("marked for re-login: {}", result.reason);
                let signal = Signal::Invalid { action: Action::Reauth };
                book.record(
                    &result.name,
                    fingerprint.as_deref(),
                    Evidence::new(Utc::now(), Source::Inspection, signal, detail),
                );
            }
            done("executed", "marked for re-login; sign in again to replace the credential".into())
        }
        (_, None) => done("failed", "config API keys are switched in config.yaml (PATCH /auth-files/status)".into()),
        (Recommendation::Delete, Some(file)) => match state.store.delete(&file).await {
            Ok(()) => {
                tracing::info!(file = %file, "auth file deleted by inspection");
                done("executed", "auth file deleted".into())
            }
            Err(error) => done("failed", switchyard_redact::text(&error.to_string())),
        },
        (Recommendation::Disable | Recommendation::Enable, Some(file)) => {
            let disable = action == Recommendation::Disable;
            let reason = format!("inspection: {}", result.reason);
            match actions::set_disabled(&state.store, book, &file, disable, Actor::Inspection, &reason).await {
                Ok(actions::Toggle::Changed) => done("executed", if disable { "disabled" } else { "enabled" }.into()),
                Ok(actions::Toggle::Unchanged) => {
                    done("skipped", if disable { "already disabled" } else { "already enabled" }.into())
                }
                Ok(actions::Toggle::Refused(why)) => done("failed", why),
                Err(error) => done("failed", switchyard_redact::text(&error.to_string())),
            }
        }
    }
}
