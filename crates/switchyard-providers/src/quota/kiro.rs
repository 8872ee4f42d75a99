//! Kiro: `GetUsageLimits` on the CodeWhisperer API (providers-extra §2.8), an AWS JSON call:
//! `POST <api>` with `x-amz-target: AmazonCodeWhispererService.GetUsageLimits` and
//! `{"origin":"AI_EDITOR","profileArn","resourceType":"AGENTIC_REQUEST"}`.
//!
//! The answer names the plan (`subscriptionInfo.subscriptionTitle`, e.g. "KIRO FREE"), the
//! credit pool (`usageBreakdownList[0].{currentUsageWithPrecision,usageLimitWithPrecision}`) and
//! the next reset (`nextDateReset`, epoch seconds). The URL is `upstream-urls.kiro.quota`, else
//! the API's own (`upstream-urls.kiro.api`).

use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use serde_json::{Value, json};

use super::{
    QuotaCall, QuotaError, QuotaFetcher, QuotaReport, QuotaSource, QuotaWindow, WindowKind, bearer, instant, number,
    send_json,
};
use crate::exec::kiro::{AMZ_USER_AGENT, USER_AGENT as KIRO_USER_AGENT};
use crate::kiro::{API_URL, ID, KiroAccount};

const TARGET: &str = "AmazonCodeWhispererService.GetUsageLimits";

pub(crate) struct KiroQuota;

#[async_trait::async_trait]
impl QuotaFetcher for KiroQuota {
    async fn fetch(&self, call: QuotaCall<'_>) -> Result<QuotaReport, QuotaError> {
        let account = KiroAccount::new(call.credential);
        let config = &call.ctx.config;
        let base = config.upstream_url(ID, "quota").or_else(|| config.upstream_url(ID, "api")).unwrap_or(API_URL);
        let url = base.replace("{region}", account.region());
        let mut body = json!({"origin": "AI_EDITOR", "resourceType": "AGENTIC_REQUEST"});
        // Builder ID and IdC tokens belong to no profile; naming one fails the call.
        if let Some(arn) = account.profile_arn().filter(|_| !account.uses_oidc()) {
            body["profileArn"] = json!(arn);
        }
        let request = call
            .ctx
            .http
            .post(url)
            .header(AUTHORIZATION, bearer(call.token)?)
            .header(CONTENT_TYPE, "application/x-amz-json-1.0")
            .header(ACCEPT, "application/json")
            .header("x-amz-target", TARGET)
            .header(USER_AGENT, KIRO_USER_AGENT)
            .header("x-amz-user-agent", AMZ_USER_AGENT)
            .body(body.to_string());
        parse_limits(&send_json(request).await?, Utc::now())
    }
}

pub(crate) fn parse_limits(answer: &Value, now: DateTime<Utc>) -> Result<QuotaReport, QuotaError> {
    let breakdown = answer
        .get("usageBreakdownList")
        .and_then(Value::as_array)
        .ok_or_else(|| QuotaError::Parse { message: "no `usageBreakdownList` in the GetUsageLimits answer".into() })?;
    let resets_at = instant(answer.get("nextDateReset"));
    let windows = breakdown
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let kind = item.get("resourceType").and_then(Value::as_str).unwrap_or("CREDIT");
            let id = if index == 0 { "credits".to_owned() } else { format!("credits:{}", kind.to_ascii_lowercase()) };
            let label = item.get("displayName").and_then(Value::as_str).unwrap_or("Credits (monthly)");
            let used = number(item.get("currentUsageWithPrecision")).or_else(|| number(item.get("currentUsage")));
            let limit = number(item.get("usageLimitWithPrecision")).or_else(|| number(item.get("usageLimit")));
            QuotaWindow::counts(id, label, WindowKind::Credits, used, limit).resetting_at(resets_at)
        })
        .collect();
    let plan = answer.pointer("/subscriptionInfo/subscriptionTitle").and_then(Value::as_str).map(str::to_owned);
    Ok(QuotaReport { plan, windows, observed_at: now, source: QuotaSource::ApiQuery })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn credits_with_their_reset_and_an_unknown_shape() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
        let answer = json!({"subscriptionInfo": {"subscriptionTitle": "KIRO FREE"}, "nextDateReset": 1798761600.0,
            "usageBreakdownList": [{"currentUsageWithPrecision": 50.0, "usageLimitWithPrecision": 50.0, "resourceType": "CREDIT"}]});
        let report = parse_limits(&answer, now).unwrap();
        assert_eq!(report.plan.as_deref(), Some("KIRO FREE"));
        assert!(report.windows[0].exhausted);
        assert_eq!(report.windows[0].resets_at, Some(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap()));
        assert!(parse_limits(&json!({"message": "x"}), now).is_err());
    }
}
