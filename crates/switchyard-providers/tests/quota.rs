//! Every provider's quota fetcher against the quota mock serving recorded-shape answers
//! (`switchyard-testkit/fixtures/quota/`): the windows each reads, the headers each sends, and
//! how refusals, odd answers and dead endpoints come back.

mod exec_support;

use std::sync::Arc;

use exec_support::{SECRET, context, credential};
use serde_json::json;
use switchyard_providers::by_id;
use switchyard_providers::quota::{QuotaCall, QuotaError, QuotaFetcher, QuotaReport, QuotaSource, WindowKind};
use switchyard_testkit::quota::{self, MockQuota};

fn fetcher(provider: &str) -> Arc<dyn QuotaFetcher> {
    by_id(provider).and_then(|p| p.quota()).unwrap_or_else(|| panic!("{provider} has a quota fetcher"))
}

async fn fetch(mock: &MockQuota, provider: &str, fields: &[(&str, &str)]) -> Result<QuotaReport, QuotaError> {
    let ctx = context(&mock.upstream_urls_yaml());
    let credential = credential(provider, fields);
    fetcher(provider).fetch(QuotaCall { ctx: &ctx, token: SECRET, credential: &credential }).await
}

/// `(id, used_percent, exhausted)` of each window, for compact assertions.
fn summary(report: &QuotaReport) -> Vec<(&str, Option<f64>, bool)> {
    report.windows.iter().map(|w| (w.id.as_str(), w.used_percent.map(|p| p.round()), w.exhausted)).collect()
}

fn header<'a>(request: &'a switchyard_testkit::RecordedRequest, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

#[test]
fn only_providers_with_a_quota_source_have_a_fetcher() {
    let with: Vec<&str> = switchyard_providers::all().iter().filter(|p| p.quota().is_some()).map(|p| p.id()).collect();
    assert_eq!(with, ["claude", "codex", "antigravity", "kimi", "xai", "github-copilot", "kiro"]);
}

#[tokio::test]
async fn codex_reads_five_hour_weekly_feature_and_model_windows() {
    let mock = MockQuota::start().await;
    mock.require_token(Some(SECRET));
    let report = fetch(&mock, "codex", &[("account_id", "acct-0001")]).await.unwrap();
    assert_eq!(report.plan.as_deref(), Some("plus"));
    assert_eq!(report.source, QuotaSource::ApiQuery);
    assert_eq!(
        summary(&report),
        vec![
            ("5h", Some(23.0), false),
            ("weekly", Some(61.0), false),
            ("code-review:weekly", Some(0.0), false),
            ("model:GPT-5.3-Codex-Spark:5h", Some(4.0), false),
        ]
    );
    assert_eq!(report.windows[0].resets_at.map(|t| t.timestamp()), Some(1_796_000_000));
    assert_eq!(report.windows[2].kind, WindowKind::Feature);
    assert_eq!(report.windows[3].kind, WindowKind::Model);
    let seen = mock.requests_to(quota::CODEX_PATH);
    assert_eq!(header(&seen[0], "chatgpt-account-id"), Some("acct-0001"));
    assert!(header(&seen[0], "user-agent").unwrap().starts_with("codex_cli_rs/"));
}

#[tokio::test]
async fn claude_reads_its_windows_and_the_plan_from_the_profile() {
    let mock = MockQuota::start().await;
    mock.require_token(Some(SECRET));
    let report = fetch(&mock, "claude", &[]).await.unwrap();
    assert_eq!(report.plan.as_deref(), Some("max"));
    assert_eq!(
        summary(&report),
        vec![
            ("5h", Some(38.0), false),
            ("weekly", Some(71.0), false),
            ("weekly-opus", Some(12.0), false),
            ("extra-usage", Some(25.0), false),
        ]
    );
    let extra = report.windows.iter().find(|w| w.id == "extra-usage").unwrap();
    assert_eq!((extra.used, extra.limit, extra.kind), (Some(1250.0), Some(5000.0), WindowKind::Feature));
    assert_eq!(header(&mock.requests_to(quota::CLAUDE_USAGE_PATH)[0], "anthropic-beta"), Some("oauth-2025-04-20"));

    // A profile that fails leaves the plan unknown; the windows still count.
    mock.set_answer("claude-profile.json", json!({"account": {}}));
    assert_eq!(fetch(&mock, "claude", &[]).await.unwrap().plan, None);
}

#[tokio::test]
async fn copilot_sends_the_github_token_and_reads_snapshots() {
    let mock = MockQuota::start().await;
    mock.require_token(Some(SECRET));
    let report = fetch(&mock, "github-copilot", &[]).await.unwrap();
    assert_eq!(report.plan.as_deref(), Some("free"));
    // Premium requests with an entitlement of 0 are used up, but only they are.
    assert_eq!(
        summary(&report),
        vec![("chat", Some(76.0), false), ("completions", Some(25.0), false), ("premium", Some(100.0), true),]
    );
    assert_eq!(report.windows[2].kind, WindowKind::Feature);
    assert_eq!(report.windows[0].resets_at.map(|t| t.to_rfc3339()), Some("2027-01-01T00:00:00+00:00".into()));
    let seen = mock.requests_to(quota::COPILOT_PATH);
    assert_eq!(header(&seen[0], "authorization"), Some(format!("token {SECRET}").as_str()));
    assert_eq!(header(&seen[0], "x-github-api-version"), Some("2025-04-01"));
}

#[tokio::test]
async fn antigravity_reads_per_model_windows_with_the_project() {
    let mock = MockQuota::start().await;
    let report = fetch(&mock, "antigravity", &[("project_id", "proj-42")]).await.unwrap();
    assert_eq!(
        summary(&report),
        vec![
            ("model:gemini-3-pro-high", Some(40.0), false),
            ("model:gemini-2.5-flash", Some(0.0), false),
            ("model:claude-sonnet-4-5", Some(100.0), true),
        ]
    );
    assert!(report.windows.iter().all(|w| w.kind == WindowKind::Model));
    assert_eq!(mock.requests_to(quota::ANTIGRAVITY_PATH)[0].json(), json!({"project": "proj-42"}));
}

#[tokio::test]
async fn kiro_reads_credits_and_names_its_profile() {
    let mock = MockQuota::start().await;
    mock.require_token(Some(SECRET));
    let arn = "arn:aws:codewhisperer:us-east-1:123456789012:profile/ABC";
    let report = fetch(&mock, "kiro", &[("profile_arn", arn), ("auth_method", "social")]).await.unwrap();
    assert_eq!(report.plan.as_deref(), Some("KIRO FREE"));
    assert_eq!(summary(&report), vec![("credits", Some(25.0), false)]);
    let credits = &report.windows[0];
    assert_eq!((credits.used, credits.limit, credits.kind), (Some(12.47), Some(50.0), WindowKind::Credits));
    let seen = &mock.requests_to(quota::KIRO_PATH)[0];
    assert_eq!(header(seen, "x-amz-target"), Some("AmazonCodeWhispererService.GetUsageLimits"));
    assert_eq!(seen.json(), json!({"origin": "AI_EDITOR", "resourceType": "AGENTIC_REQUEST", "profileArn": arn}));

    // Builder ID tokens belong to no profile.
    fetch(&mock, "kiro", &[("profile_arn", arn), ("auth_method", "builder-id")]).await.unwrap();
    assert!(mock.requests_to(quota::KIRO_PATH)[1].json().get("profileArn").is_none());
}

#[tokio::test]
async fn kimi_reads_string_counts_and_derives_a_missing_used() {
    let mock = MockQuota::start().await;
    let report = fetch(&mock, "kimi", &[]).await.unwrap();
    assert_eq!(report.plan.as_deref(), Some("intermediate"));
    assert_eq!(summary(&report), vec![("5h", Some(17.0), false), ("weekly", Some(42.0), false)]);
    assert_eq!(report.windows[1].used, Some(42.0));
}

#[tokio::test]
async fn xai_reads_weekly_and_monthly_credits_and_either_alone() {
    let mock = MockQuota::start().await;
    let report = fetch(&mock, "xai", &[("sub", "user-0001")]).await.unwrap();
    assert_eq!(summary(&report), vec![("weekly", Some(35.0), false), ("monthly", Some(28.0), false)]);
    let seen = mock.requests_to(quota::XAI_PATH);
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|r| header(r, "x-xai-token-auth") == Some("xai-grok-cli")));
    assert!(seen.iter().all(|r| header(r, "x-userid") == Some("user-0001")));
    assert!(seen.iter().any(|r| r.query.as_deref() == Some("format=credits")));
}

#[tokio::test]
async fn refusals_are_unauthorized_with_the_redacted_body() {
    let mock = MockQuota::start().await;
    mock.require_token(Some("another-token"));
    for provider in quota::PROVIDERS {
        match fetch(&mock, provider, &[]).await {
            Err(QuotaError::Unauthorized { status, body }) => {
                assert!(status == 401 || status == 403, "{provider}: {status}");
                assert!(!body.is_empty(), "{provider}");
            }
            other => panic!("{provider}: {other:?}"),
        }
    }
    // A body that echoes the token does not carry it on.
    mock.clear();
    mock.fail("codex", 401, Some(json!({"error": {"message": format!("token {SECRET} expired")}})));
    let Err(QuotaError::Unauthorized { body, .. }) = fetch(&mock, "codex", &[]).await else { panic!("401") };
    assert!(!body.contains(SECRET), "{body}");
}

#[tokio::test]
async fn other_failures_are_upstream_parse_or_transport_errors() {
    let mock = MockQuota::start().await;
    mock.fail("kimi", 503, None);
    assert!(matches!(fetch(&mock, "kimi", &[]).await, Err(QuotaError::Upstream { status: 503, .. })));
    mock.clear();
    mock.set_answer("codex.json", json!({"detail": "changed shape"}));
    assert!(matches!(fetch(&mock, "codex", &[]).await, Err(QuotaError::Parse { .. })));

    // Nothing listens: a transport error, never "unlimited".
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let ctx = context(&format!("upstream-urls:\n  kimi:\n    usage: http://{closed}/coding/v1/usages\n"));
    let credential = credential("kimi", &[]);
    let error = fetcher("kimi").fetch(QuotaCall { ctx: &ctx, token: SECRET, credential: &credential }).await;
    assert!(matches!(error, Err(QuotaError::Transport { .. })), "{error:?}");
}
