//! What `GET /v0/management/quota` shows: each account's last reading (or why there is none)
//! and an aggregate per provider and window across accounts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use switchyard_providers::quota::{QuotaError, QuotaWindow};
use switchyard_router::{Account, AccountKind};

use super::{QuotaEntry, account_wide, report_exhausted};
use crate::AppState;
use crate::account_health::fingerprint_of;

/// One account in the listing.
pub(crate) struct Listed {
    pub account: Account,
    pub json: Value,
    entry: Option<QuotaEntry>,
}

/// Every routed account (or the one with `auth_index`) with its readings, in router order.
pub(crate) fn accounts(state: &AppState, auth_index: Option<&str>) -> Vec<Listed> {
    let config = state.config.get();
    state
        .router
        .accounts()
        .into_iter()
        .filter_map(|account| {
            let auth_index = crate::management::account_auth_index(state, &config, &account.kind)?;
            let label = match &account.kind {
                AccountKind::OAuth { file } => {
                    state.store.get(file).and_then(|s| s.credential().and_then(|c| c.label()))
                }
                _ => None,
            };
            Some((account, auth_index, label))
        })
        .filter(|(_, index, _)| auth_index.is_none_or(|wanted| wanted == index))
        .map(|(account, auth_index, label)| {
            let supported =
                matches!(account.kind, AccountKind::OAuth { .. }) && state.quota.fetcher(&account.provider).is_some();
            let fingerprint = fingerprint_of(state, &config, &account);
            let entry = supported.then(|| state.quota.entry(&account.id, fingerprint.as_deref())).flatten();
            let json = account_json(&account, &auth_index, label, supported, entry.as_ref());
            Listed { account, json, entry }
        })
        .collect()
}

/// `state`: `ok` (a reading, no newer failure), `error` (the last fetch failed; the last good
/// reading, if any, is still shown), `unknown` (never read), `unsupported` (no quota source).
pub(crate) fn account_json(
    account: &Account,
    auth_index: &str,
    label: Option<String>,
    supported: bool,
    entry: Option<&QuotaEntry>,
) -> Value {
    let report = entry.and_then(|e| e.report.as_ref());
    let error = entry.and_then(|e| e.error.as_ref());
    let state = match (supported, report, error) {
        (false, ..) => "unsupported",
        (true, _, Some(_)) => "error",
        (true, Some(_), None) => "ok",
        (true, None, None) => "unknown",
    };
    let mut value = json!({
        "auth_index": auth_index,
        "name": account.id,
        "provider": account.provider,
        "account": label,
        "disabled": account.disabled,
        "supported": supported,
        "state": state,
        "plan": report.and_then(|r| r.plan.clone()),
        "windows": report.map(|r| r.windows.clone()).unwrap_or_default(),
        "observed_at": report.map(|r| r.observed_at),
        "source": report.map(|r| r.source),
        "exhausted": report.map(report_exhausted),
        "resets_at": report.and_then(|r| soonest(r.windows.iter().filter(|w| account_wide(w.kind) && w.exhausted))),
        "error": error.map(|(e, at)| error_json(e, *at)),
    });
    if !supported {
        value["reason"] = json!(match account.kind {
            AccountKind::OAuth { .. } => format!("{} accounts have no quota endpoint", account.provider),
            _ => "config keys have no quota endpoint".to_owned(),
        });
    }
    value
}

fn error_json(error: &QuotaError, at: DateTime<Utc>) -> Value {
    let mut value = serde_json::to_value(error).unwrap_or_default();
    value["message"] = json!(error.to_string());
    value["at"] = json!(at);
    value
}

fn soonest<'a>(windows: impl Iterator<Item = &'a QuotaWindow>) -> Option<DateTime<Utc>> {
    windows.filter_map(|w| w.resets_at).min()
}

/// Per provider and window id, across the accounts that have a reading of it: how many, how
/// many are full, the average used share (of those whose share is known), the soonest reset,
/// and summed counts where every account gave them.
pub(crate) fn aggregate_json(listed: &[Listed]) -> Value {
    #[derive(Default)]
    struct Sum {
        label: String,
        kind: Option<switchyard_providers::quota::WindowKind>,
        accounts: u64,
        exhausted: u64,
        shares: Vec<f64>,
        used: Option<f64>,
        limit: Option<f64>,
        counted: bool,
        resets_at: Option<DateTime<Utc>>,
    }
    let mut sums: BTreeMap<(String, String), Sum> = BTreeMap::new();
    for item in listed {
        let Some(report) = item.entry.as_ref().and_then(|e| e.report.as_ref()) else { continue };
        for window in &report.windows {
            let sum = sums
                .entry((item.account.provider.clone(), window.id.clone()))
                .or_insert_with(|| Sum { counted: true, ..Sum::default() });
            sum.label.clone_from(&window.label);
            sum.kind = Some(window.kind);
            sum.accounts += 1;
            sum.exhausted += u64::from(window.exhausted && !window.unlimited);
            sum.shares.extend(window.used_percent);
            match (window.used, window.limit) {
                (Some(used), Some(limit)) if sum.counted => {
                    sum.used = Some(sum.used.unwrap_or(0.0) + used);
                    sum.limit = Some(sum.limit.unwrap_or(0.0) + limit);
                }
                _ => sum.counted = false,
            }
            sum.resets_at = [sum.resets_at, window.resets_at].into_iter().flatten().min();
        }
    }
    let windows: Vec<Value> = sums
        .into_iter()
        .map(|((provider, window), sum)| {
            let average = (!sum.shares.is_empty()).then(|| sum.shares.iter().sum::<f64>() / sum.shares.len() as f64);
            json!({
                "provider": provider,
                "window": window,
                "label": sum.label,
                "kind": sum.kind,
                "accounts": sum.accounts,
                "exhausted": sum.exhausted,
                "average_used_percent": average,
                "used": sum.used.filter(|_| sum.counted),
                "limit": sum.limit.filter(|_| sum.counted),
                "soonest_reset": sum.resets_at,
            })
        })
        .collect();
    let count = |state: &str| listed.iter().filter(|l| l.json["state"] == state).count();
    json!({
        "accounts": listed.len(),
        "supported": listed.iter().filter(|l| l.json["supported"] == true).count(),
        "read": count("ok"),
        "failed": count("error"),
        "exhausted": listed.iter().filter(|l| l.json["exhausted"] == true).count(),
        "windows": windows,
    })
}
