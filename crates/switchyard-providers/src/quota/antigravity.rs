//! Antigravity: `POST <base>/v1internal:fetchAvailableModels` `{"project"}` (providers-extra
//! §8.3): per model `quotaInfo.{remainingFraction (0–1), resetTime}`.
//!
//! The answer is proto3 JSON, which leaves out fields at their zero value: a model whose
//! `quotaInfo` has a `resetTime` but no `remainingFraction` has none left. A model without
//! `quotaInfo` has no known limit. `upstream-urls.antigravity.quota` names one base; without it
//! the bases are tried as the executor tries them (sandbox daily first, then production) until
//! one answers other than 429 or unreachable.

use chrono::{DateTime, Utc};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, USER_AGENT};
use serde_json::{Value, json};

use super::{
    QuotaCall, QuotaError, QuotaFetcher, QuotaReport, QuotaSource, QuotaWindow, WindowKind, bearer, instant, number,
    send_json,
};
use crate::exec::antigravity::{USER_AGENT as ANTIGRAVITY_USER_AGENT, bases};

pub(crate) struct AntigravityQuota;

#[async_trait::async_trait]
impl QuotaFetcher for AntigravityQuota {
    async fn fetch(&self, call: QuotaCall<'_>) -> Result<QuotaReport, QuotaError> {
        let body = match call.credential.project_id() {
            Some(project) => json!({"project": project}),
            None => json!({}),
        };
        let agent = call.credential.str_field("user_agent").unwrap_or(ANTIGRAVITY_USER_AGENT);
        let mut last = QuotaError::Transport { message: "no antigravity base URL configured".into() };
        let bases = match call.ctx.config.upstream_url("antigravity", "quota") {
            Some(base) => vec![base.to_owned()],
            None => bases(call.ctx, call.credential),
        };
        for base in bases {
            let request = call
                .ctx
                .http
                .post(format!("{}/v1internal:fetchAvailableModels", base.trim_end_matches('/')))
                .header(AUTHORIZATION, bearer(call.token)?)
                .header(CONTENT_TYPE, "application/json")
                .header(ACCEPT, "application/json")
                .header(USER_AGENT, agent)
                .body(body.to_string());
            match send_json(request).await {
                Ok(answer) => return parse_models(&answer, Utc::now()),
                Err(error @ (QuotaError::Transport { .. } | QuotaError::Upstream { status: 429, .. })) => last = error,
                Err(error) => return Err(error),
            }
        }
        Err(last)
    }
}

pub(crate) fn parse_models(answer: &Value, now: DateTime<Utc>) -> Result<QuotaReport, QuotaError> {
    let models = answer
        .get("models")
        .and_then(Value::as_object)
        .ok_or_else(|| QuotaError::Parse { message: "no `models` object in the fetchAvailableModels answer".into() })?;
    let windows = models
        .iter()
        .filter_map(|(name, model)| {
            let quota = model.get("quotaInfo").filter(|q| q.is_object())?;
            let resets_at = instant(quota.get("resetTime"));
            let remaining = number(quota.get("remainingFraction"))
                .or_else(|| resets_at.map(|_| 0.0))
                .map(|fraction| fraction.clamp(0.0, 1.0));
            let label = model.get("displayName").and_then(Value::as_str).unwrap_or(name);
            Some(
                QuotaWindow::percent(
                    format!("model:{name}"),
                    label,
                    WindowKind::Model,
                    remaining.map(|left| (1.0 - left) * 100.0),
                )
                .resetting_at(resets_at),
            )
        })
        .collect();
    Ok(QuotaReport { plan: None, windows, observed_at: now, source: QuotaSource::ApiQuery })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_left_out_fraction_with_a_reset_is_none_left() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 10, 0, 0).unwrap();
        let answer = json!({"models": {
            "gemini-2.5-pro": {"displayName": "Gemini 2.5 Pro", "quotaInfo": {"remainingFraction": 0.75, "resetTime": "2026-12-03T15:00:00Z"}},
            "claude-sonnet-4-5": {"quotaInfo": {"resetTime": "2026-12-04T00:00:00Z"}},
            "chat_20706": {}}});
        let report = parse_models(&answer, now).unwrap();
        assert_eq!(report.windows.len(), 2);
        let pro = report.windows.iter().find(|w| w.id == "model:gemini-2.5-pro").unwrap();
        assert_eq!((pro.used_percent, pro.exhausted, pro.label.as_str()), (Some(25.0), false, "Gemini 2.5 Pro"));
        assert!(report.windows.iter().find(|w| w.id == "model:claude-sonnet-4-5").unwrap().exhausted);
        assert!(parse_models(&json!({}), now).is_err());
    }
}
