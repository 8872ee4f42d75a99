//! Claude (Anthropic OAuth): `GET api.anthropic.com/api/oauth/usage` with the OAuth beta
//! (providers-extra §8.5) for the windows, the profile for the plan, and the
//! `anthropic-ratelimit-unified-*` headers subscription answers carry.
//!
//! Windows are `{utilization (0–100), resets_at}` objects, `null` when the plan has none.
//! `five_hour`, `seven_day` and `seven_day_oauth_apps` limit the whole account; the Opus / Sonnet
//! windows one model family, `extra_usage` paid usage beyond the plan.

use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, USER_AGENT};
use serde_json::Value;

use super::{
    QuotaCall, QuotaError, QuotaFetcher, QuotaReport, QuotaSource, QuotaWindow, WindowKind, bearer, header,
    header_number, instant, number, send_json,
};

pub(crate) const USAGE_URL: &str = "https://api.anthropic.com/api/oauth/usage";
const PROFILE_URL: &str = "https://api.anthropic.com/api/oauth/profile";
const OAUTH_BETA: &str = "oauth-2025-04-20";
const CLAUDE_USER_AGENT: &str = "claude-cli/2.1.220 (external, cli)";

/// `(field, id, label, kind)` of each window the usage answer may hold.
const WINDOWS: &[(&str, &str, &str, WindowKind)] = &[
    ("five_hour", "5h", "5-hour", WindowKind::Short),
    ("seven_day", "weekly", "7-day", WindowKind::Long),
    ("seven_day_oauth_apps", "weekly-oauth-apps", "7-day OAuth apps", WindowKind::Long),
    ("seven_day_opus", "weekly-opus", "7-day Opus", WindowKind::Feature),
    ("seven_day_sonnet", "weekly-sonnet", "7-day Sonnet", WindowKind::Feature),
    ("seven_day_cowork", "weekly-cowork", "7-day Cowork", WindowKind::Feature),
];

pub(crate) struct ClaudeQuota;

#[async_trait::async_trait]
impl QuotaFetcher for ClaudeQuota {
    async fn fetch(&self, call: QuotaCall<'_>) -> Result<QuotaReport, QuotaError> {
        let get = |url: String| -> Result<reqwest::RequestBuilder, QuotaError> {
            Ok(call
                .ctx
                .http
                .get(url)
                .header(AUTHORIZATION, bearer(call.token)?)
                .header("anthropic-beta", OAUTH_BETA)
                .header(ACCEPT, "application/json")
                .header(USER_AGENT, CLAUDE_USER_AGENT))
        };
        let usage = get(call.ctx.endpoint("claude", "usage", USAGE_URL))?;
        let profile = get(call.ctx.endpoint("claude", "profile", PROFILE_URL))?;
        let (usage, profile) = tokio::join!(send_json(usage), send_json(profile));
        let mut report = parse_usage(&usage?, Utc::now())?;
        // The plan is a nicety: a profile that fails leaves it unknown.
        report.plan = profile.ok().as_ref().and_then(plan);
        Ok(report)
    }

    fn observe(
        &self,
        _status: u16,
        headers: &HeaderMap,
        _body: Option<&[u8]>,
        now: DateTime<Utc>,
    ) -> Option<QuotaReport> {
        from_headers(headers, now)
    }
}

pub(crate) fn parse_usage(answer: &Value, now: DateTime<Utc>) -> Result<QuotaReport, QuotaError> {
    if !answer.is_object() || !WINDOWS.iter().any(|(field, ..)| answer.get(*field).is_some()) {
        return Err(QuotaError::Parse { message: "no usage window in the oauth/usage answer".into() });
    }
    let mut windows: Vec<QuotaWindow> = WINDOWS
        .iter()
        .filter_map(|(field, id, label, kind)| {
            let window = answer.get(*field).filter(|w| w.is_object())?;
            Some(
                QuotaWindow::percent(*id, *label, *kind, number(window.get("utilization")))
                    .resetting_at(instant(window.get("resets_at"))),
            )
        })
        .collect();
    if let Some(extra) =
        answer.get("extra_usage").filter(|e| e.get("is_enabled").and_then(Value::as_bool) == Some(true))
    {
        let window = QuotaWindow::percent(
            "extra-usage",
            "Extra usage (monthly)",
            WindowKind::Feature,
            number(extra.get("utilization")),
        )
        .with_counts(number(extra.get("used_credits")), number(extra.get("monthly_limit")));
        windows.push(window);
    }
    Ok(QuotaReport { plan: None, windows, observed_at: now, source: QuotaSource::ApiQuery })
}

/// `max` / `pro` from the profile's account flags, else the organization's rate-limit tier.
fn plan(profile: &Value) -> Option<String> {
    let account = profile.get("account");
    let flag = |name: &str| account.and_then(|a| a.get(name)).and_then(Value::as_bool) == Some(true);
    if flag("has_claude_max") {
        return Some("max".into());
    }
    if flag("has_claude_pro") {
        return Some("pro".into());
    }
    profile.pointer("/organization/rate_limit_tier").and_then(Value::as_str).map(str::to_owned)
}

/// `anthropic-ratelimit-unified-{5h,7d}-{utilization,reset,status}`: utilization is a fraction
/// (0–1), reset epoch seconds, status `allowed` / `allowed_warning` / `rejected`.
fn from_headers(headers: &HeaderMap, now: DateTime<Utc>) -> Option<QuotaReport> {
    let windows: Vec<QuotaWindow> =
        [("5h", "5h", "5-hour", WindowKind::Short), ("7d", "weekly", "7-day", WindowKind::Long)]
            .iter()
            .filter_map(|(slot, id, label, kind)| {
                let prefix = format!("anthropic-ratelimit-unified-{slot}");
                let share = header_number(headers, &format!("{prefix}-utilization")).map(|f| f * 100.0);
                let status = header(headers, &format!("{prefix}-status"));
                if share.is_none() && status.is_none() {
                    return None;
                }
                let mut window = QuotaWindow::percent(*id, *label, *kind, share)
                    .resetting_at(header_number(headers, &format!("{prefix}-reset")).and_then(super::epoch));
                window.exhausted |= status == Some("rejected");
                Some(window)
            })
            .collect();
    (!windows.is_empty()).then_some(QuotaReport {
        plan: None,
        windows,
        observed_at: now,
        source: QuotaSource::ResponseHeader,
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;
    use serde_json::json;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap()
    }

    #[test]
    fn null_windows_are_absent_and_extra_usage_counts_only_when_enabled() {
        let answer = json!({"five_hour": {"utilization": 12.0, "resets_at": "2026-12-03T13:00:00Z"},
            "seven_day": null, "extra_usage": {"is_enabled": false, "monthly_limit": 100, "used_credits": 0}});
        let report = parse_usage(&answer, now()).unwrap();
        assert_eq!(report.windows.len(), 1);
        assert_eq!(report.windows[0].resets_at, Some(Utc.with_ymd_and_hms(2026, 12, 3, 13, 0, 0).unwrap()));
        assert!(parse_usage(&json!({"type": "error"}), now()).is_err());
    }

    #[test]
    fn unified_headers_are_fractions() {
        let mut headers = HeaderMap::new();
        headers.insert("anthropic-ratelimit-unified-5h-utilization", HeaderValue::from_static("0.25"));
        headers.insert("anthropic-ratelimit-unified-5h-reset", HeaderValue::from_static("1764770400"));
        headers.insert("anthropic-ratelimit-unified-7d-status", HeaderValue::from_static("rejected"));
        let report = ClaudeQuota.observe(429, &headers, None, now()).unwrap();
        assert_eq!(report.windows[0].used_percent, Some(25.0));
        assert!(report.windows[0].resets_at.is_some());
        assert!(report.windows[1].exhausted && report.windows[1].used_percent.is_none());
        assert!(ClaudeQuota.observe(200, &HeaderMap::new(), None, now()).is_none());
    }
}
