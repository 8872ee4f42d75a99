//! Codex (ChatGPT): `GET …/backend-api/wham/usage` (providers-extra §8.4), the `x-codex-*`
//! headers of relayed answers, and the 429 `usage_limit_reached` body.
//!
//! `rate_limit.primary_window` is the 5-hour window and `secondary_window` the weekly one (a
//! monthly one for some team plans): each window is named by its `limit_window_seconds`, not by
//! its slot. `code_review_rate_limit` and `additional_rate_limits[]` limit one feature or model.

use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, USER_AGENT};
use serde_json::Value;

use super::{
    QuotaCall, QuotaError, QuotaFetcher, QuotaReport, QuotaSource, QuotaWindow, WindowKind, after, bearer, header,
    header_number, instant, number, send_json, window_name,
};

pub(crate) const USAGE_URL: &str = "https://chatgpt.com/backend-api/wham/usage";
const CODEX_USER_AGENT: &str = "codex_cli_rs/0.146.0 (Mac OS 26.5.0; arm64) iTerm.app/3.6.10";

pub(crate) struct CodexQuota;

#[async_trait::async_trait]
impl QuotaFetcher for CodexQuota {
    async fn fetch(&self, call: QuotaCall<'_>) -> Result<QuotaReport, QuotaError> {
        let url = call.ctx.endpoint("codex", "usage", USAGE_URL);
        let mut request = call
            .ctx
            .http
            .get(url)
            .header(AUTHORIZATION, bearer(call.token)?)
            .header(ACCEPT, "application/json")
            .header(USER_AGENT, CODEX_USER_AGENT);
        if let Some(account) = call.credential.str_field("account_id") {
            request = request.header("chatgpt-account-id", account);
        }
        let answer = send_json(request).await?;
        parse_usage(&answer, Utc::now())
    }

    fn observe(
        &self,
        status: u16,
        headers: &HeaderMap,
        body: Option<&[u8]>,
        now: DateTime<Utc>,
    ) -> Option<QuotaReport> {
        if status == 429
            && let Some(report) = body.and_then(|b| limit_reached(b, now))
        {
            return Some(report);
        }
        from_headers(headers, now)
    }
}

/// The `wham/usage` answer.
pub(crate) fn parse_usage(answer: &Value, now: DateTime<Utc>) -> Result<QuotaReport, QuotaError> {
    let limits = answer
        .get("rate_limit")
        .filter(|v| v.is_object())
        .ok_or_else(|| QuotaError::Parse { message: "no `rate_limit` object in the wham/usage answer".into() })?;
    let mut windows = rate_limit_windows(limits, now, None);
    if let Some(review) = answer.get("code_review_rate_limit").filter(|v| v.is_object()) {
        windows.extend(rate_limit_windows(review, now, Some(("code-review", "Code review"))));
    }
    for extra in answer.get("additional_rate_limits").and_then(Value::as_array).into_iter().flatten() {
        let name = extra.get("limit_name").or_else(|| extra.get("metered_feature")).and_then(Value::as_str);
        if let (Some(name), Some(limits)) = (name, extra.get("rate_limit")) {
            let id = format!("model:{name}");
            windows.extend(rate_limit_windows(limits, now, Some((&id, name))));
        }
    }
    let plan = answer.get("plan_type").and_then(Value::as_str).map(str::to_owned);
    Ok(QuotaReport { plan, windows, observed_at: now, source: QuotaSource::ApiQuery })
}

/// The windows of one `rate_limit` object; `scope` names a feature's or model's limit.
fn rate_limit_windows(limits: &Value, now: DateTime<Utc>, scope: Option<(&str, &str)>) -> Vec<QuotaWindow> {
    let reached = limits.get("limit_reached").and_then(Value::as_bool).unwrap_or(false)
        || limits.get("allowed").and_then(Value::as_bool) == Some(false);
    let slots = [("primary_window", "primary"), ("secondary_window", "secondary")];
    let mut windows: Vec<QuotaWindow> = slots
        .iter()
        .filter_map(|(key, fallback)| {
            let window = limits.get(*key).filter(|w| w.is_object())?;
            let seconds = number(window.get("limit_window_seconds")).unwrap_or(0.0);
            let (id, label, kind) = window_name(seconds, fallback);
            let resets_at =
                instant(window.get("reset_at")).or_else(|| after(now, number(window.get("reset_after_seconds"))));
            let (id, label, kind) = match scope {
                Some((scope_id, scope_label)) => (format!("{scope_id}:{id}"), format!("{scope_label} {label}"), {
                    if scope_id.starts_with("model:") { WindowKind::Model } else { WindowKind::Feature }
                }),
                None => (id, label, kind),
            };
            Some(QuotaWindow::percent(id, label, kind, number(window.get("used_percent"))).resetting_at(resets_at))
        })
        .collect();
    // `limit_reached` without a window at 100 %: the fullest one is the one that ran out.
    if reached
        && !windows.iter().any(|w| w.exhausted)
        && let Some(fullest) = windows
            .iter_mut()
            .max_by(|a, b| a.used_percent.partial_cmp(&b.used_percent).unwrap_or(std::cmp::Ordering::Equal))
    {
        fullest.exhausted = true;
    }
    windows
}

/// `x-codex-{primary,secondary}-{used-percent,window-minutes,reset-after-seconds,reset-at}`
/// and `x-codex-plan-type` of a relayed answer.
fn from_headers(headers: &HeaderMap, now: DateTime<Utc>) -> Option<QuotaReport> {
    let windows: Vec<QuotaWindow> = ["primary", "secondary"]
        .iter()
        .filter_map(|slot| {
            let used = header_number(headers, &format!("x-codex-{slot}-used-percent"))?;
            let minutes = header_number(headers, &format!("x-codex-{slot}-window-minutes")).unwrap_or(0.0);
            let (id, label, kind) = window_name(minutes * 60.0, slot);
            let resets_at = header(headers, &format!("x-codex-{slot}-reset-at"))
                .and_then(|v| instant(Some(&Value::String(v.to_owned()))))
                .or_else(|| after(now, header_number(headers, &format!("x-codex-{slot}-reset-after-seconds"))));
            Some(QuotaWindow::percent(id, label, kind, Some(used)).resetting_at(resets_at))
        })
        .collect();
    if windows.is_empty() {
        return None;
    }
    let plan = header(headers, "x-codex-plan-type").map(str::to_owned);
    Some(QuotaReport { plan, windows, observed_at: now, source: QuotaSource::ResponseHeader })
}

/// A 429 `{"error":{"type":"usage_limit_reached","resets_at"|"resets_in_seconds",…}}`: the
/// account's limit, exhausted until then (which window ran out the body does not say).
fn limit_reached(body: &[u8], now: DateTime<Utc>) -> Option<QuotaReport> {
    let answer: Value = serde_json::from_slice(body).ok()?;
    let error = answer.get("error")?;
    if error.get("type").and_then(Value::as_str) != Some("usage_limit_reached") {
        return None;
    }
    let resets_at = instant(error.get("resets_at")).or_else(|| after(now, number(error.get("resets_in_seconds"))));
    let mut window =
        QuotaWindow::percent("usage-limit", "Usage limit", WindowKind::Other, None).resetting_at(resets_at);
    window.exhausted = true;
    let plan = error.get("plan_type").and_then(Value::as_str).map(str::to_owned);
    Some(QuotaReport { plan, windows: vec![window], observed_at: now, source: QuotaSource::ResponseBody })
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
    fn limit_reached_marks_the_fullest_window() {
        let answer = json!({"plan_type": "plus", "rate_limit": {"allowed": false, "limit_reached": true,
            "primary_window": {"used_percent": 40, "limit_window_seconds": 18000, "reset_after_seconds": 60},
            "secondary_window": {"used_percent": 99, "limit_window_seconds": 604800, "reset_at": 1765000000}}});
        let report = parse_usage(&answer, now()).unwrap();
        let weekly = report.windows.iter().find(|w| w.id == "weekly").unwrap();
        assert!(weekly.exhausted);
        assert!(!report.windows.iter().find(|w| w.id == "5h").unwrap().exhausted);
        assert_eq!(report.windows[0].resets_at, Some(now() + chrono::Duration::seconds(60)));
    }

    #[test]
    fn an_answer_without_rate_limit_is_a_parse_error() {
        assert!(matches!(parse_usage(&json!({"detail": "x"}), now()), Err(QuotaError::Parse { .. })));
    }

    #[test]
    fn headers_and_429_bodies_are_readings() {
        let mut headers = HeaderMap::new();
        headers.insert("x-codex-primary-used-percent", HeaderValue::from_static("42.5"));
        headers.insert("x-codex-primary-window-minutes", HeaderValue::from_static("300"));
        headers.insert("x-codex-primary-reset-after-seconds", HeaderValue::from_static("120"));
        headers.insert("x-codex-secondary-used-percent", HeaderValue::from_static("7"));
        headers.insert("x-codex-secondary-window-minutes", HeaderValue::from_static("10080"));
        let report = CodexQuota.observe(200, &headers, None, now()).unwrap();
        assert_eq!(report.source, QuotaSource::ResponseHeader);
        assert_eq!(
            report.windows.iter().map(|w| (w.id.as_str(), w.used_percent)).collect::<Vec<_>>(),
            vec![("5h", Some(42.5)), ("weekly", Some(7.0))]
        );
        assert!(CodexQuota.observe(200, &HeaderMap::new(), None, now()).is_none());

        let body = br#"{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached","plan_type":"plus","resets_in_seconds":3600}}"#;
        let report = CodexQuota.observe(429, &HeaderMap::new(), Some(body), now()).unwrap();
        assert_eq!(report.source, QuotaSource::ResponseBody);
        assert!(report.windows[0].exhausted);
        assert_eq!(report.windows[0].resets_at, Some(now() + chrono::Duration::hours(1)));
        let other = br#"{"error":{"type":"rate_limit_exceeded"}}"#;
        assert!(CodexQuota.observe(429, &HeaderMap::new(), Some(other), now()).is_none());
    }
}
