//! Classification of a credential failure signal (§4.5): what to do about it, the reason code,
//! how sure we are, and whether it may disable the account without a person.
//!
//! The table is matched in order over the error code, error type and message together
//! (case-insensitively). Only explicit wording counts: a bare 401/403 is at most "review", and
//! never disables anything by itself; region and model-permission refusals are review-only.

use serde::Serialize;
use serde_json::Value;

use crate::evidence::{Action, Signal};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    High,
    Medium,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Classification {
    pub action: Action,
    /// `workspace_deactivated`, `account_deactivated`, `token_revoked`, `invalid_credentials`,
    /// `credential_permission_denied`, `authentication_review`.
    pub reason_code: &'static str,
    pub confidence: Confidence,
    /// May disable the account automatically (when the operator opted in).
    pub auto_disable: bool,
}

impl Classification {
    /// What it says about the account's health: a review of medium confidence is only a warning.
    pub fn signal(&self) -> Signal {
        if self.action == Action::Review && self.confidence == Confidence::Medium {
            Signal::Trouble
        } else {
            Signal::Invalid { action: self.action }
        }
    }
}

/// One failure, as the classifier reads it. Texts are redacted before they get here.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FailureSignal {
    /// Provider id (`codex`, `xai`, ...).
    pub provider: String,
    /// HTTP status; 0 when there was no answer.
    pub status: u16,
    /// Machine-readable error code (`token_revoked`, `deactivated_workspace`, ...).
    pub code: Option<String>,
    /// Error type (`authentication_error`, `permission_denied`, ...).
    pub kind: Option<String>,
    pub message: String,
    /// The upstream's own "should retry" hint, when it gives one.
    pub should_retry: Option<bool>,
}

impl FailureSignal {
    /// Reads code, type and message out of an error body: the shapes of OpenAI/Codex
    /// (`error.code`/`error.type`/`error.message`, `detail.code`), Anthropic (`error.type`),
    /// Google (`error.status`), OAuth (`error` + `error_description`) and xAI (`code`/`error`
    /// strings). A body that is not JSON is the message.
    pub fn from_body(provider: &str, status: u16, body: &str) -> Self {
        let mut signal = FailureSignal { provider: provider.to_owned(), status, ..Default::default() };
        let Ok(Value::Object(root)) = serde_json::from_str::<Value>(body.trim()) else {
            signal.message = body.trim().to_owned();
            return signal;
        };
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned).filter(|s| !s.is_empty());
        let error = root.get("error");
        let nested = error.and_then(Value::as_object);
        let detail = root.get("detail").and_then(Value::as_object);
        signal.code = text(nested.and_then(|e| e.get("code")))
            .or_else(|| text(detail.and_then(|d| d.get("code"))))
            .or_else(|| text(root.get("code")))
            .or_else(|| nested.and_then(|e| e.get("code")).and_then(Value::as_i64).map(|c| c.to_string()));
        signal.kind = text(nested.and_then(|e| e.get("type")))
            .or_else(|| text(nested.and_then(|e| e.get("status"))))
            .or_else(|| text(root.get("type")))
            // OAuth: `{"error": "invalid_grant", "error_description": "..."}`.
            .or_else(|| text(error));
        signal.message = text(nested.and_then(|e| e.get("message")))
            .or_else(|| text(root.get("error_description")))
            .or_else(|| text(detail.and_then(|d| d.get("message"))))
            .or_else(|| text(root.get("message")))
            .or_else(|| text(root.get("detail")))
            .unwrap_or_else(|| body.trim().to_owned());
        signal.should_retry =
            root.get("should_retry").or_else(|| nested.and_then(|e| e.get("should_retry"))).and_then(Value::as_bool);
        signal
    }

    /// Code, type and message, lower-cased, for wording checks.
    fn haystack(&self) -> String {
        let parts = [self.code.as_deref().unwrap_or(""), self.kind.as_deref().unwrap_or(""), &self.message];
        parts.join(" \n ").to_lowercase()
    }
}

const REVOKED: &[&str] =
    &["token_revoked", "token_invalidated", "invalidated oauth token", "token has been invalidated"];
const INVALID_CREDENTIALS: &[&str] = &[
    "invalid_token",
    "invalid or expired credentials",
    "token is expired",
    "no auth context",
    "invalid_grant",
    "auth_unavailable",
    "requires reauthorization",
];
/// What makes an xAI permission refusal about the credential itself.
const CREDENTIAL_WORDING: &[&str] = &["credential", "api key", "api_key", "access token", "oauth", "token"];
/// Refusals about where or what, not who: never more than a review.
const SCOPE_WORDING: &[&str] = &["region", "country", "location", "model"];
const AUTH_REVIEW: &[&str] = &["authentication_error", "unauthorized", "forbidden", "permission_denied"];

fn any(haystack: &str, needles: &[&str]) -> bool {
    needles.iter().any(|needle| haystack.contains(needle))
}

fn class(action: Action, reason_code: &'static str, confidence: Confidence, auto_disable: bool) -> Classification {
    Classification { action, reason_code, confidence, auto_disable }
}

/// The §4.5 table, first match wins; `None` when the signal is not a credential failure.
pub fn classify(signal: &FailureSignal) -> Option<Classification> {
    use Action::{Delete, Reauth, Review};
    use Confidence::{High, Medium};
    let text = signal.haystack();
    if signal.status == 402 && text.contains("deactivated_workspace") {
        return Some(class(Delete, "workspace_deactivated", High, true));
    }
    if text.contains("account_deactivated") {
        return Some(class(Delete, "account_deactivated", High, true));
    }
    if any(&text, REVOKED) {
        return Some(class(Reauth, "token_revoked", High, true));
    }
    if any(&text, INVALID_CREDENTIALS) {
        return Some(class(Reauth, "invalid_credentials", High, true));
    }
    let permission_denied = text.contains("permission_denied");
    if signal.provider == "xai"
        && permission_denied
        && any(&signal.message.to_lowercase(), CREDENTIAL_WORDING)
        && !any(&text, SCOPE_WORDING)
        && signal.should_retry != Some(true)
    {
        return Some(class(Review, "credential_permission_denied", High, true));
    }
    if any(&text, AUTH_REVIEW) || matches!(signal.status, 401 | 403) {
        return Some(class(Review, "authentication_review", Medium, false));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(provider: &str, status: u16, body: &str) -> FailureSignal {
        FailureSignal::from_body(provider, status, body)
    }

    fn classified(provider: &str, status: u16, body: &str) -> Option<(Action, &'static str, Confidence, bool)> {
        classify(&signal(provider, status, body)).map(|c| (c.action, c.reason_code, c.confidence, c.auto_disable))
    }

    use Action::{Delete, Reauth, Review};
    use Confidence::{High, Medium};

    #[test]
    fn row_402_deactivated_workspace_deletes() {
        let body = r#"{"detail":{"code":"deactivated_workspace"}}"#;
        assert_eq!(classified("codex", 402, body), Some((Delete, "workspace_deactivated", High, true)));
        // Only with 402: the same words on another status are not this row.
        assert_ne!(classified("codex", 400, body).map(|c| c.1), Some("workspace_deactivated"));
    }

    #[test]
    fn row_account_deactivated_deletes() {
        let body = r#"{"error":{"message":"This account has been deactivated.","type":"invalid_request_error","code":"account_deactivated"}}"#;
        assert_eq!(classified("codex", 401, body), Some((Delete, "account_deactivated", High, true)));
    }

    #[test]
    fn row_revoked_tokens_reauth() {
        for body in [
            r#"{"error":{"code":"token_revoked","message":"revoked"}}"#,
            r#"{"error":{"code":"token_invalidated"}}"#,
            "Encountered invalidated oauth token for user",
            r#"{"error":{"message":"Your authentication token has been invalidated. Please try signing in again."}}"#,
        ] {
            assert_eq!(classified("codex", 401, body), Some((Reauth, "token_revoked", High, true)), "{body}");
        }
    }

    #[test]
    fn row_invalid_credentials_reauth() {
        for body in [
            r#"{"error":{"type":"authentication_error","code":"invalid_token"}}"#,
            r#"{"error":{"message":"Invalid or expired credentials"}}"#,
            "the token is expired",
            "no auth context",
            r#"{"error":"invalid_grant","error_description":"Refresh token revoked"}"#,
            r#"{"error":{"code":"auth_unavailable","message":"no auth available"}}"#,
            "This account requires reauthorization",
        ] {
            assert_eq!(classified("claude", 401, body), Some((Reauth, "invalid_credentials", High, true)), "{body}");
        }
    }

    #[test]
    fn row_xai_credential_permission_denied_is_a_high_review() {
        let body =
            r#"{"code":"permission_denied","error":"The API key does not have permission to call this endpoint"}"#;
        assert_eq!(classified("xai", 403, body), Some((Review, "credential_permission_denied", High, true)));
        let no_retry = r#"{"code":"permission_denied","error":"Credential is blocked","should_retry":false}"#;
        assert_eq!(classified("xai", 403, no_retry), Some((Review, "credential_permission_denied", High, true)));
        // The upstream saying "retry" weakens it to an ordinary review.
        let retry = r#"{"code":"permission_denied","error":"Credential check failed","should_retry":true}"#;
        assert_eq!(classified("xai", 403, retry), Some((Review, "authentication_review", Medium, false)));
        // Other providers' permission refusals are never this row.
        assert_eq!(classified("codex", 403, body), Some((Review, "authentication_review", Medium, false)));
    }

    #[test]
    fn region_and_model_permission_refusals_are_review_only() {
        for body in [
            r#"{"code":"permission_denied","error":"This API key is not available in your region"}"#,
            r#"{"code":"permission_denied","error":"The API key does not have access to model grok-4"}"#,
        ] {
            assert_eq!(classified("xai", 403, body), Some((Review, "authentication_review", Medium, false)), "{body}");
        }
    }

    #[test]
    fn row_generic_authentication_failures_are_medium_reviews() {
        for (status, body) in [
            (401, r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#),
            (401, r#"{"error":"Unauthorized"}"#),
            (403, "Forbidden"),
            (403, r#"{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED"}}"#),
        ] {
            assert_eq!(
                classified("claude", status, body),
                Some((Review, "authentication_review", Medium, false)),
                "{body}"
            );
        }
    }

    #[test]
    fn never_auto_disable_on_a_bare_401_or_403() {
        for status in [401, 403] {
            for body in ["", "{}", "<html>nope</html>", r#"{"error":{"message":"Request failed"}}"#] {
                let c = classify(&signal("codex", status, body)).expect("a 401/403 is at least a review");
                assert_eq!((c.action, c.auto_disable, c.confidence), (Review, false, Medium), "{status} {body}");
                assert_eq!(c.signal(), Signal::Trouble, "a bare 401/403 is only a warning");
            }
        }
    }

    #[test]
    fn other_failures_are_not_credential_failures() {
        assert_eq!(classified("claude", 429, r#"{"error":{"type":"rate_limit_error"}}"#), None);
        assert_eq!(classified("claude", 500, "upstream exploded"), None);
        assert_eq!(classified("claude", 0, "connection refused"), None);
    }

    #[test]
    fn bodies_are_read_in_every_shape() {
        let s = signal("x", 401, r#"{"error":{"message":"m","type":"t","code":"c"},"should_retry":false}"#);
        assert_eq!(
            (s.code.as_deref(), s.kind.as_deref(), s.message.as_str(), s.should_retry),
            (Some("c"), Some("t"), "m", Some(false))
        );
        let s = signal("x", 400, r#"{"error":"invalid_grant","error_description":"gone"}"#);
        assert_eq!((s.kind.as_deref(), s.message.as_str()), (Some("invalid_grant"), "gone"));
        let s = signal("x", 402, r#"{"detail":{"code":"deactivated_workspace"}}"#);
        assert_eq!(s.code.as_deref(), Some("deactivated_workspace"));
        let s = signal("x", 500, "plain text");
        assert_eq!((s.code, s.message.as_str()), (None, "plain text"));
    }

    #[test]
    fn signals_follow_the_confidence() {
        let reauth = classify(&signal("codex", 401, "token_revoked")).unwrap();
        assert_eq!(reauth.signal(), Signal::Invalid { action: Reauth });
        let xai = classify(&signal("xai", 403, r#"{"code":"permission_denied","error":"api key blocked"}"#)).unwrap();
        assert_eq!(xai.signal(), Signal::Invalid { action: Review });
    }
}
