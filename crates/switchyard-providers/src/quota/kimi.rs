//! Kimi Code: `GET api.kimi.com/coding/v1/usages` (panels §3.5).
//!
//! `usage.{limit,used,remaining,resetTime}` is the weekly pool; `limits[]` holds shorter windows
//! as `{window:{duration,timeUnit}, detail:{limit,used,remaining?,resetTime}}` (a 300-minute
//! one is the 5-hour window). Counts arrive as numbers or as numeric strings, and `used` may be
//! missing when `remaining` is there. The plan is `user.membership.level`.

use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde_json::Value;

use super::{
    QuotaCall, QuotaError, QuotaFetcher, QuotaReport, QuotaSource, QuotaWindow, WindowKind, bearer, instant, number,
    send_json, window_name,
};

pub(crate) const USAGE_URL: &str = "https://api.kimi.com/coding/v1/usages";

pub(crate) struct KimiQuota;

#[async_trait::async_trait]
impl QuotaFetcher for KimiQuota {
    async fn fetch(&self, call: QuotaCall<'_>) -> Result<QuotaReport, QuotaError> {
        let request = call
            .ctx
            .http
            .get(call.ctx.endpoint("kimi", "usage", USAGE_URL))
            .header(AUTHORIZATION, bearer(call.token)?)
            .header(ACCEPT, "application/json");
        parse_usages(&send_json(request).await?, Utc::now())
    }
}

pub(crate) fn parse_usages(answer: &Value, now: DateTime<Utc>) -> Result<QuotaReport, QuotaError> {
    let weekly = answer.get("usage").filter(|u| u.is_object());
    let limits = answer.get("limits").and_then(Value::as_array);
    if weekly.is_none() && limits.is_none() {
        return Err(QuotaError::Parse { message: "neither `usage` nor `limits` in the usages answer".into() });
    }
    let mut windows: Vec<QuotaWindow> = limits
        .into_iter()
        .flatten()
        .filter_map(|limit| {
            let detail = limit.get("detail")?;
            let window = limit.get("window");
            let duration = number(window.and_then(|w| w.get("duration"))).unwrap_or(0.0);
            let unit = window.and_then(|w| w.get("timeUnit")).and_then(Value::as_str).unwrap_or("");
            let seconds = duration * unit_seconds(unit);
            let (id, label, kind) = window_name(seconds, "limit");
            Some(counted(detail, id, label, kind))
        })
        .collect();
    if let Some(weekly) = weekly {
        windows.push(counted(weekly, "weekly".into(), "Weekly".into(), WindowKind::Long));
    }
    let plan = answer
        .pointer("/user/membership/level")
        .and_then(Value::as_str)
        .map(|level| level.strip_prefix("LEVEL_").map_or_else(|| level.to_owned(), str::to_ascii_lowercase));
    Ok(QuotaReport { plan, windows, observed_at: now, source: QuotaSource::ApiQuery })
}

fn unit_seconds(unit: &str) -> f64 {
    match unit {
        "TIME_UNIT_SECOND" => 1.0,
        "TIME_UNIT_MINUTE" => 60.0,
        "TIME_UNIT_HOUR" => 3600.0,
        "TIME_UNIT_DAY" => 86_400.0,
        _ => 0.0,
    }
}

fn counted(detail: &Value, id: String, label: String, kind: WindowKind) -> QuotaWindow {
    let limit = number(detail.get("limit"));
    let used = number(detail.get("used"))
        .or_else(|| Some(limit? - number(detail.get("remaining"))?).filter(|used| *used >= 0.0));
    let reset = ["resetTime", "reset_time", "resetAt"].iter().find_map(|key| instant(detail.get(*key)));
    QuotaWindow::counts(id, label, kind, used, limit).resetting_at(reset)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    #[test]
    fn string_counts_and_a_missing_used() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
        let answer = json!({"user": {"membership": {"level": "LEVEL_INTERMEDIATE"}},
            "usage": {"limit": "1000", "remaining": "250", "resetTime": "2026-12-07T00:00:00Z"},
            "limits": [{"window": {"duration": 300, "timeUnit": "TIME_UNIT_MINUTE"},
                        "detail": {"limit": "100", "used": "100", "resetTime": "2026-12-03T12:00:00.960866Z"}}]});
        let report = parse_usages(&answer, now).unwrap();
        assert_eq!(report.plan.as_deref(), Some("intermediate"));
        let five = &report.windows[0];
        assert_eq!((five.id.as_str(), five.exhausted), ("5h", true));
        let weekly = &report.windows[1];
        assert_eq!((weekly.used, weekly.used_percent), (Some(750.0), Some(75.0)));
        assert!(parse_usages(&json!({"error": "x"}), now).is_err());
    }
}
