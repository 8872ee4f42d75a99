//! How much an account may still use: one [`QuotaFetcher`] per provider that has a quota source
//! (providers-extra §8, panels §3.4–§3.5), all answering one [`QuotaReport`] shape.
//!
//! A fetch is an explicit call (on demand or on a schedule the user turns on), never made
//! passively per request. What upstreams tell on their own — Codex's `x-codex-*` headers,
//! Claude's `anthropic-ratelimit-unified-*` headers, a 429's "usage limit reached" body — is read
//! by [`QuotaFetcher::observe`] from answers the gateway relays anyway.
//!
//! Missing numbers stay `None` ("unknown"); only an upstream that says so makes a window
//! `unlimited`.

mod antigravity;
pub(crate) mod claude;
pub(crate) mod codex;
pub(crate) mod copilot;
pub(crate) mod kimi;
mod kiro;
pub(crate) mod xai;

pub(crate) use antigravity::AntigravityQuota;
pub(crate) use claude::ClaudeQuota;
pub(crate) use codex::CodexQuota;
pub(crate) use copilot::CopilotQuota;
pub(crate) use kimi::KimiQuota;
pub(crate) use kiro::KiroQuota;
pub(crate) use xai::XaiQuota;

use chrono::{DateTime, TimeZone, Utc};
use reqwest::header::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde_json::Value;
use switchyard_auth::Credential;

use crate::executor::ExecContext;

/// What one reading says.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QuotaReport {
    /// The plan the upstream names (`plus`, `pro`, `KIRO FREE`, ...), when it does.
    pub plan: Option<String>,
    pub windows: Vec<QuotaWindow>,
    pub observed_at: DateTime<Utc>,
    pub source: QuotaSource,
}

/// Where a reading came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaSource {
    /// The provider's quota endpoint, asked on purpose.
    ApiQuery,
    /// Headers of an answer the gateway relayed.
    ResponseHeader,
    /// The body of a relayed error (a 429 naming its reset).
    ResponseBody,
}

/// What a window limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowKind {
    /// 5-hour / session windows.
    Short,
    /// Weekly, monthly.
    Long,
    /// One model's own window (`model:<name>`); full, it blocks only that model.
    Model,
    /// One feature's or model family's window (code review, premium requests, Opus, paid extra
    /// usage); full, it blocks only that part.
    Feature,
    /// A pool of credits the account draws on for everything.
    Credits,
    /// An account-wide limit of unknown length.
    Other,
}

/// One limit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct QuotaWindow {
    /// Stable: `5h`, `weekly`, `monthly`, `model:<name>`, `credits`, ...
    pub id: String,
    pub label: String,
    pub kind: WindowKind,
    /// 0..=100; `None` = unknown.
    pub used_percent: Option<f64>,
    pub used: Option<f64>,
    pub limit: Option<f64>,
    pub resets_at: Option<DateTime<Utc>>,
    pub exhausted: bool,
    pub unlimited: bool,
}

impl QuotaWindow {
    /// A window known by its used share (0..=100, clamped).
    pub fn percent(
        id: impl Into<String>,
        label: impl Into<String>,
        kind: WindowKind,
        used_percent: Option<f64>,
    ) -> Self {
        let used_percent = used_percent.filter(|p| p.is_finite()).map(|p| p.clamp(0.0, 100.0));
        QuotaWindow {
            id: id.into(),
            label: label.into(),
            kind,
            used_percent,
            used: None,
            limit: None,
            resets_at: None,
            exhausted: used_percent.is_some_and(|p| p >= 100.0),
            unlimited: false,
        }
    }

    /// A window known by counts; the share follows when the limit is positive.
    pub fn counts(
        id: impl Into<String>,
        label: impl Into<String>,
        kind: WindowKind,
        used: Option<f64>,
        limit: Option<f64>,
    ) -> Self {
        Self::percent(id, label, kind, None).with_counts(used, limit)
    }

    /// Adds the counts; they give the share when it is not known yet.
    pub fn with_counts(mut self, used: Option<f64>, limit: Option<f64>) -> Self {
        self.used = used;
        self.limit = limit;
        if self.used_percent.is_none()
            && let (Some(used), Some(limit)) = (used, limit)
            && limit > 0.0
        {
            let share = (used / limit * 100.0).clamp(0.0, 100.0);
            self.used_percent = Some(share);
            self.exhausted |= share >= 100.0;
        }
        self
    }

    pub fn resetting_at(mut self, at: Option<DateTime<Utc>>) -> Self {
        self.resets_at = at;
        self
    }
}

/// Why there is no reading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum QuotaError {
    /// 401/403: the token is not (or no longer) accepted. `body` is redacted and capped.
    #[error("quota endpoint refused the credential (HTTP {status})")]
    Unauthorized { status: u16, body: String },
    /// Another non-2xx answer.
    #[error("quota endpoint answered HTTP {status}")]
    Upstream { status: u16, body: String },
    #[error("quota endpoint unreachable: {message}")]
    Transport { message: String },
    /// The account lacks what the endpoint needs (a Kiro profile, ...).
    #[error("{message}")]
    Credential { message: String },
    /// The answer was not the shape the provider documents.
    #[error("quota answer not understood: {message}")]
    Parse { message: String },
}

/// What a fetch works with: the account's HTTP client and config, and a fresh token.
pub struct QuotaCall<'a> {
    pub ctx: &'a ExecContext,
    /// The account's access token (refreshed by the caller when it was about to expire).
    pub token: &'a str,
    pub credential: &'a Credential,
}

#[async_trait::async_trait]
pub trait QuotaFetcher: Send + Sync {
    /// Asks the provider's quota endpoint.
    async fn fetch(&self, call: QuotaCall<'_>) -> Result<QuotaReport, QuotaError>;

    /// Quota an answer of the provider's API tells by itself (headers; the body of a 4xx, when
    /// given), read at `now`. `None` when it tells nothing; never a network call.
    fn observe(
        &self,
        _status: u16,
        _headers: &HeaderMap,
        _body: Option<&[u8]>,
        _now: DateTime<Utc>,
    ) -> Option<QuotaReport> {
        None
    }
}

/// Longest error body kept in a [`QuotaError`].
const MAX_ERROR_BODY: usize = 4096;
/// Longest answer a quota endpoint may send.
const MAX_ANSWER: usize = 1 << 20;

/// Sends a quota request and reads its JSON answer, mapping every failure onto [`QuotaError`].
pub(crate) async fn send_json(request: reqwest::RequestBuilder) -> Result<Value, QuotaError> {
    let response = request.send().await.map_err(|error| QuotaError::Transport { message: describe(&error) })?;
    let status = response.status().as_u16();
    let bytes = read_capped(response).await?;
    if !(200..300).contains(&status) {
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ERROR_BODY)]);
        let body = switchyard_redact::text(&text);
        return Err(if status == 401 || status == 403 {
            QuotaError::Unauthorized { status, body }
        } else {
            QuotaError::Upstream { status, body }
        });
    }
    serde_json::from_slice(&bytes).map_err(|error| QuotaError::Parse { message: format!("not JSON: {error}") })
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, QuotaError> {
    let mut bytes = Vec::new();
    while let Some(chunk) =
        response.chunk().await.map_err(|error| QuotaError::Transport { message: describe(&error) })?
    {
        if bytes.len() + chunk.len() > MAX_ANSWER {
            return Err(QuotaError::Parse { message: format!("answer larger than {MAX_ANSWER} bytes") });
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The kind of failure and its causes; not the URL (quota URLs may carry account ids).
fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else if error.is_body() || error.is_decode() {
        "the answer broke off"
    } else {
        "request failed"
    }
    .to_owned();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    switchyard_redact::text(&text)
}

/// A bearer header value, marked sensitive so no debug output shows it.
pub(crate) fn bearer(token: &str) -> Result<HeaderValue, QuotaError> {
    secret_header(&format!("Bearer {token}"))
}

pub(crate) fn secret_header(value: &str) -> Result<HeaderValue, QuotaError> {
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| QuotaError::Credential { message: "the account's token is not valid header text".into() })?;
    value.set_sensitive(true);
    Ok(value)
}

/// A number the upstream may send as a JSON number or as a numeric string.
pub(crate) fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n: &f64| n.is_finite())
}

/// An instant sent as RFC 3339 text, epoch seconds or epoch milliseconds.
pub(crate) fn instant(value: Option<&Value>) -> Option<DateTime<Utc>> {
    match value? {
        Value::String(text) => DateTime::parse_from_rfc3339(text.trim())
            .map(|t| t.with_timezone(&Utc))
            .ok()
            .or_else(|| epoch(text.trim().parse().ok()?)),
        value => epoch(number(Some(value))?),
    }
}

/// Epoch seconds, or milliseconds when the number is too large to be seconds.
pub(crate) fn epoch(value: f64) -> Option<DateTime<Utc>> {
    let millis = if value > 1e11 { value } else { value * 1000.0 };
    Utc.timestamp_millis_opt(millis as i64).single()
}

/// `now` plus `seconds`, when given.
pub(crate) fn after(now: DateTime<Utc>, seconds: Option<f64>) -> Option<DateTime<Utc>> {
    let seconds = seconds.filter(|s| *s >= 0.0 && *s < 1e10)?;
    Some(now + chrono::Duration::milliseconds((seconds * 1000.0) as i64))
}

/// A header's value as text.
pub(crate) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok().map(str::trim).filter(|v| !v.is_empty())
}

/// A header's value as a number.
pub(crate) fn header_number(headers: &HeaderMap, name: &str) -> Option<f64> {
    header(headers, name)?.parse().ok().filter(|n: &f64| n.is_finite())
}

/// `(id, label, kind)` of a window that lasts `seconds`.
pub(crate) fn window_name(seconds: f64, fallback: &str) -> (String, String, WindowKind) {
    let hours = seconds / 3600.0;
    let near = |target: f64| (hours - target).abs() <= target * 0.05;
    if near(5.0) {
        ("5h".into(), "5-hour".into(), WindowKind::Short)
    } else if near(24.0 * 7.0) {
        ("weekly".into(), "Weekly".into(), WindowKind::Long)
    } else if (28.0 * 24.0..=31.0 * 24.0).contains(&hours) {
        ("monthly".into(), "Monthly".into(), WindowKind::Long)
    } else if hours > 0.0 && hours < 24.0 {
        (format!("{}h", hours.round()), format!("{}-hour", hours.round()), WindowKind::Short)
    } else if hours >= 24.0 {
        (format!("{}d", (hours / 24.0).round()), format!("{}-day", (hours / 24.0).round()), WindowKind::Long)
    } else {
        (fallback.into(), fallback.into(), WindowKind::Other)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn numbers_and_instants_take_every_upstream_spelling() {
        assert_eq!(number(Some(&json!("12.5"))), Some(12.5));
        assert_eq!(number(Some(&json!(3))), Some(3.0));
        assert_eq!(number(Some(&json!("n/a"))), None);
        assert_eq!(number(Some(&json!(null))), None);
        let at = Utc.with_ymd_and_hms(2026, 8, 4, 9, 14, 42).unwrap();
        assert_eq!(instant(Some(&json!("2026-08-04T09:14:42Z"))), Some(at));
        assert_eq!(instant(Some(&json!(at.timestamp()))), Some(at));
        assert_eq!(instant(Some(&json!(at.timestamp_millis()))), Some(at));
        assert_eq!(instant(Some(&json!(at.timestamp().to_string()))), Some(at));
        assert_eq!(instant(Some(&json!("soon"))), None);
    }

    #[test]
    fn counts_give_a_share_only_with_a_positive_limit() {
        let w = QuotaWindow::counts("credits", "Credits", WindowKind::Credits, Some(25.0), Some(50.0));
        assert_eq!((w.used_percent, w.exhausted), (Some(50.0), false));
        let full = QuotaWindow::counts("credits", "Credits", WindowKind::Credits, Some(60.0), Some(50.0));
        assert_eq!((full.used_percent, full.exhausted), (Some(100.0), true));
        let unknown = QuotaWindow::counts("credits", "Credits", WindowKind::Credits, Some(5.0), Some(0.0));
        assert_eq!((unknown.used_percent, unknown.exhausted, unknown.unlimited), (None, false, false));
    }

    #[test]
    fn windows_are_named_by_their_length() {
        assert_eq!(window_name(18_000.0, "primary").0, "5h");
        assert_eq!(window_name(604_800.0, "secondary").0, "weekly");
        assert_eq!(window_name(2_592_000.0, "secondary").0, "monthly");
        assert_eq!(window_name(3_600.0, "x").0, "1h");
        assert_eq!(window_name(0.0, "primary"), ("primary".into(), "primary".into(), WindowKind::Other));
    }
}
