//! xAI (Grok CLI accounts): `GET cli-chat-proxy.grok.com/v1/billing?format=credits` for the
//! plan's credit window, and `GET …/v1/billing` for the monthly figures (panels §3.5), with the
//! Grok CLI's headers.
//!
//! Both answer `{"config": {...}}`. With `format=credits`: `creditUsagePercent` and
//! `currentPeriod.{type,start,end}` (`USAGE_PERIOD_TYPE_WEEKLY` for weekly plans); without it:
//! `used.val` and `monthlyLimit.val` (cents, as strings or numbers). Either answer alone is a
//! reading; a percentage left out of the credits answer stays unknown.

use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, USER_AGENT};
use serde_json::Value;

use super::{
    QuotaCall, QuotaError, QuotaFetcher, QuotaReport, QuotaSource, QuotaWindow, WindowKind, bearer, instant, number,
    send_json,
};

pub(crate) const BILLING_URL: &str = "https://cli-chat-proxy.grok.com/v1/billing";
const CLIENT_VERSION: &str = "0.2.120";
const GROK_USER_AGENT: &str = "xai-grok-workspace/0.2.120";

pub(crate) struct XaiQuota;

#[async_trait::async_trait]
impl QuotaFetcher for XaiQuota {
    async fn fetch(&self, call: QuotaCall<'_>) -> Result<QuotaReport, QuotaError> {
        let url = call.ctx.endpoint("xai", "billing", BILLING_URL);
        let get = |query: &'static [(&'static str, &'static str)]| -> Result<reqwest::RequestBuilder, QuotaError> {
            let mut request = call
                .ctx
                .http
                .get(&url)
                .query(query)
                .header(AUTHORIZATION, bearer(call.token)?)
                .header(ACCEPT, "application/json")
                .header(USER_AGENT, GROK_USER_AGENT)
                .header("x-xai-token-auth", "xai-grok-cli")
                .header("x-grok-client-version", CLIENT_VERSION);
            if let Some(user) = call.credential.str_field("sub").filter(|s| !s.is_empty()) {
                request = request.header("x-userid", user);
            }
            Ok(request)
        };
        let (credits, monthly) = tokio::join!(send_json(get(&[("format", "credits")])?), send_json(get(&[])?));
        match (credits, monthly) {
            (Err(error), Err(_)) => Err(error),
            (credits, monthly) => parse_billing(credits.ok().as_ref(), monthly.ok().as_ref(), Utc::now()),
        }
    }
}

pub(crate) fn parse_billing(
    credits: Option<&Value>,
    monthly: Option<&Value>,
    now: DateTime<Utc>,
) -> Result<QuotaReport, QuotaError> {
    let (credits, monthly) = (config_of(credits), config_of(monthly));
    if credits.is_none() && monthly.is_none() {
        return Err(QuotaError::Parse { message: "no `config` in the billing answers".into() });
    }
    let mut windows = Vec::new();
    if let Some(credits) = credits {
        let period = credits.get("currentPeriod");
        let weekly = period.and_then(|p| p.get("type")).and_then(Value::as_str) == Some("USAGE_PERIOD_TYPE_WEEKLY");
        let (id, label) = if weekly { ("weekly", "Weekly credits") } else { ("credits", "Credits") };
        windows.push(
            QuotaWindow::percent(id, label, WindowKind::Credits, number(credits.get("creditUsagePercent")))
                .resetting_at(instant(period.and_then(|p| p.get("end")))),
        );
    }
    if let Some(monthly) = monthly {
        let val = |key: &str| number(monthly.get(key).map(|v| v.get("val").unwrap_or(v)));
        let (used, limit) = (val("used"), val("monthlyLimit"));
        if used.is_some() || limit.is_some() {
            let reset =
                instant(monthly.pointer("/currentPeriod/end")).or_else(|| instant(monthly.get("billingPeriodEnd")));
            windows.push(
                QuotaWindow::counts("monthly", "Monthly credits", WindowKind::Credits, used, limit).resetting_at(reset),
            );
        }
    }
    Ok(QuotaReport { plan: None, windows, observed_at: now, source: QuotaSource::ApiQuery })
}

/// The `config` object of an answer (or the answer itself, when the caller already unwrapped it).
fn config_of(answer: Option<&Value>) -> Option<&Value> {
    answer.map(|a| a.get("config").unwrap_or(a)).filter(|c| c.is_object())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    #[test]
    fn either_answer_alone_is_a_reading() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
        let credits = json!({"config": {"creditUsagePercent": 40,
            "currentPeriod": {"type": "USAGE_PERIOD_TYPE_WEEKLY", "start": "2026-11-30T00:00:00Z", "end": "2026-12-07T00:00:00Z"}}});
        let monthly = json!({"config": {"used": {"val": "3000"}, "monthlyLimit": {"val": "15000"}}});
        let both = parse_billing(Some(&credits), Some(&monthly), now).unwrap();
        assert_eq!(
            both.windows.iter().map(|w| (w.id.as_str(), w.used_percent)).collect::<Vec<_>>(),
            vec![("weekly", Some(40.0)), ("monthly", Some(20.0))]
        );
        let unknown = parse_billing(Some(&json!({"config": {}})), None, now).unwrap();
        assert_eq!(unknown.windows[0].used_percent, None);
        assert!(!unknown.windows[0].unlimited);
        assert!(parse_billing(None, Some(&json!([1])), now).is_err());
    }
}
