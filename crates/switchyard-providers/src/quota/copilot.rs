//! GitHub Copilot: `GET api.github.com/copilot_internal/user` with the account's GitHub token
//! (providers-extra §8.1).
//!
//! `quota_snapshots.{chat,completions,premium_interactions}` each give `entitlement`,
//! `remaining`, `percent_remaining` and `unlimited`; they reset together on `quota_reset_date`
//! (a date, midnight UTC). Chat and completions limit the account (free plans); premium requests
//! only the premium models, and not at all while `overage_permitted`.

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, USER_AGENT};
use serde_json::Value;

use super::{
    QuotaCall, QuotaError, QuotaFetcher, QuotaReport, QuotaSource, QuotaWindow, WindowKind, number, secret_header,
    send_json,
};
use crate::exec::copilot::{
    EDITOR_PLUGIN_VERSION, EDITOR_VERSION, GITHUB_API_VERSION, USER_AGENT as COPILOT_USER_AGENT,
};

pub(crate) const QUOTA_URL: &str = "https://api.github.com/copilot_internal/user";

const SNAPSHOTS: &[(&str, &str, &str, WindowKind)] = &[
    ("chat", "chat", "Chat (monthly)", WindowKind::Long),
    ("completions", "completions", "Completions (monthly)", WindowKind::Long),
    ("premium_interactions", "premium", "Premium requests (monthly)", WindowKind::Feature),
];

pub(crate) struct CopilotQuota;

#[async_trait::async_trait]
impl QuotaFetcher for CopilotQuota {
    async fn fetch(&self, call: QuotaCall<'_>) -> Result<QuotaReport, QuotaError> {
        let request = call
            .ctx
            .http
            .get(call.ctx.endpoint("github-copilot", "quota", QUOTA_URL))
            .header(AUTHORIZATION, secret_header(&format!("token {}", call.token))?)
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, COPILOT_USER_AGENT)
            .header("editor-version", EDITOR_VERSION)
            .header("editor-plugin-version", EDITOR_PLUGIN_VERSION)
            .header("x-github-api-version", GITHUB_API_VERSION);
        parse_user(&send_json(request).await?, Utc::now())
    }
}

pub(crate) fn parse_user(answer: &Value, now: DateTime<Utc>) -> Result<QuotaReport, QuotaError> {
    let snapshots = answer.get("quota_snapshots").filter(|s| s.is_object());
    let plan = answer.get("copilot_plan").and_then(Value::as_str).map(str::to_owned);
    if snapshots.is_none() && plan.is_none() {
        return Err(QuotaError::Parse { message: "no `quota_snapshots` in the copilot_internal/user answer".into() });
    }
    let resets_at = answer
        .get("quota_reset_date")
        .and_then(Value::as_str)
        .and_then(|date| NaiveDate::parse_from_str(date.get(..10)?, "%Y-%m-%d").ok())
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc());
    let windows = SNAPSHOTS
        .iter()
        .filter_map(|(field, id, label, kind)| {
            let snapshot = snapshots?.get(*field).filter(|s| s.is_object())?;
            Some(window(snapshot, id, label, *kind, resets_at))
        })
        .collect();
    Ok(QuotaReport { plan, windows, observed_at: now, source: QuotaSource::ApiQuery })
}

fn window(snapshot: &Value, id: &str, label: &str, kind: WindowKind, resets_at: Option<DateTime<Utc>>) -> QuotaWindow {
    let flag = |name: &str| snapshot.get(name).and_then(Value::as_bool) == Some(true);
    let entitlement = number(snapshot.get("entitlement"));
    let remaining = number(snapshot.get("remaining")).or_else(|| number(snapshot.get("quota_remaining")));
    let share = number(snapshot.get("percent_remaining")).map(|left| 100.0 - left);
    let used = match (entitlement, remaining) {
        (Some(total), Some(left)) => Some((total - left).max(0.0)),
        _ => None,
    };
    let mut window =
        QuotaWindow::percent(id, label, kind, share).with_counts(used, entitlement).resetting_at(resets_at);
    if flag("unlimited") {
        window.unlimited = true;
        window.exhausted = false;
    } else if flag("overage_permitted") {
        // Past the entitlement requests go on, billed as overage.
        window.exhausted = false;
    } else if remaining.is_some_and(|left| left <= 0.0) {
        window.exhausted = true;
    }
    window
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    #[test]
    fn unlimited_overage_and_empty_snapshots() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
        let answer = json!({"copilot_plan": "free", "quota_reset_date": "2027-01-01", "quota_snapshots": {
            "chat": {"entitlement": 50, "remaining": 0, "percent_remaining": 0.0, "unlimited": false},
            "completions": {"unlimited": true, "entitlement": 0, "remaining": 0, "percent_remaining": 100.0},
            "premium_interactions": {"entitlement": 50, "remaining": 0, "percent_remaining": 0.0, "overage_permitted": true}}});
        let report = parse_user(&answer, now).unwrap();
        let by_id = |id: &str| report.windows.iter().find(|w| w.id == id).unwrap().clone();
        assert!(by_id("chat").exhausted);
        assert_eq!(by_id("chat").resets_at, Some(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()));
        assert!(by_id("completions").unlimited && !by_id("completions").exhausted);
        assert!(!by_id("premium").exhausted);
        assert_eq!(by_id("premium").used, Some(50.0));
        assert!(parse_user(&json!({"message": "Not Found"}), now).is_err());
    }
}
