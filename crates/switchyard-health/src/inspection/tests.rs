use super::*;
use crate::evidence::{Evidence, Signal, Source};
use crate::quota::{QuotaOrigin, QuotaReading};
use crate::state::{Facts, evaluate};

fn window(id: &str, kind: WindowKind, used: f64) -> QuotaWindowReading {
    QuotaWindowReading {
        id: id.into(),
        label: id.into(),
        kind,
        used_percent: Some(used),
        used: None,
        limit: None,
        resets_at: None,
        exhausted: used >= 100.0,
        unlimited: false,
    }
}

fn probe(status: Option<u16>, body: &str, windows: Vec<QuotaWindowReading>) -> QuotaProbe {
    QuotaProbe { auth_index: Some("0123abcd".into()), status, body: body.into(), plan: Some("plus".into()), windows }
}

const ENABLED: AccountFacts = AccountFacts { disabled: false, disabled_by: None };
const BY_INSPECTION: AccountFacts = AccountFacts { disabled: true, disabled_by: Some(Actor::Inspection) };
const BY_HAND: AccountFacts = AccountFacts { disabled: true, disabled_by: Some(Actor::Manual) };

fn decide(probe: &QuotaProbe, account: AccountFacts) -> (Recommendation, bool) {
    let d = decide_quota_probe(probe, account, 100.0);
    (d.action, d.automatic)
}

use Recommendation::{Delete, Disable, Enable, Keep, Reauth};

#[test]
fn row_missing_auth_index_or_status_keeps() {
    let mut no_index = probe(Some(401), "", vec![]);
    no_index.auth_index = None;
    assert_eq!(decide(&no_index, ENABLED), (Keep, false));
    let no_status = probe(None, "", vec![window("weekly", WindowKind::Long, 100.0)]);
    let d = decide_quota_probe(&no_status, ENABLED, 100.0);
    assert_eq!(d.action, Keep);
    assert!(d.reason.contains("logged"), "{}", d.reason);
}

#[test]
fn row_402_deactivated_workspace_deletes() {
    let p = probe(Some(402), r#"{"detail":{"code":"deactivated_workspace"}}"#, vec![]);
    assert_eq!(decide(&p, ENABLED), (Delete, true));
    assert_eq!(decide_quota_probe(&p, ENABLED, 100.0).priority, Priority::High);
}

#[test]
fn row_401_reauths_whatever_the_wording() {
    for (body, why) in [
        (r#"{"error":{"message":"Provided authentication token is expired."}}"#, "expired"),
        (r#"{"error":{"code":"token_invalidated"}}"#, "invalidated"),
        ("", "unauthorized"),
    ] {
        let d = decide_quota_probe(&probe(Some(401), body, vec![]), ENABLED, 100.0);
        assert_eq!((d.action, d.priority), (Reauth, Priority::Critical), "{body}");
        assert!(d.reason.contains(why), "{}", d.reason);
    }
}

#[test]
fn row_long_window_full_disables_or_keeps_when_already_disabled() {
    let p =
        probe(Some(200), "", vec![window("5h", WindowKind::Short, 10.0), window("weekly", WindowKind::Long, 100.0)]);
    assert_eq!(decide(&p, ENABLED), (Disable, true));
    assert_eq!(decide(&p, BY_HAND), (Keep, false));
    // Team plans are judged by their monthly window.
    let mut team = probe(
        Some(200),
        "",
        vec![window("weekly", WindowKind::Long, 20.0), window("monthly", WindowKind::Long, 100.0)],
    );
    team.plan = Some("team".into());
    assert_eq!(decide(&team, ENABLED), (Disable, true));
    team.plan = Some("plus".into());
    assert_eq!(decide(&team, ENABLED), (Keep, false), "weekly decides for plus");
    // The threshold is configurable.
    let p = probe(Some(200), "", vec![window("weekly", WindowKind::Long, 95.0)]);
    assert_eq!(decide_quota_probe(&p, ENABLED, 90.0).action, Disable);
    assert_eq!(decide_quota_probe(&p, ENABLED, 100.0).action, Keep);
}

#[test]
fn row_disabled_with_the_short_window_still_full_stays_disabled() {
    let p =
        probe(Some(200), "", vec![window("5h", WindowKind::Short, 100.0), window("weekly", WindowKind::Long, 30.0)]);
    let d = decide_quota_probe(&p, BY_INSPECTION, 100.0);
    assert_eq!((d.action, d.automatic), (Keep, false));
    assert!(d.reason.contains("stays disabled"), "{}", d.reason);
}

#[test]
fn row_disabled_with_the_long_window_below_enables_automatically_only_for_its_own_disable() {
    let p = probe(Some(200), "", vec![window("5h", WindowKind::Short, 10.0), window("weekly", WindowKind::Long, 30.0)]);
    assert_eq!(decide(&p, BY_INSPECTION), (Enable, true));
    let d = decide_quota_probe(&p, BY_HAND, 100.0);
    assert_eq!((d.action, d.automatic), (Enable, false));
    assert!(d.reason.contains("manual enable only"), "{}", d.reason);
    let by_quota = AccountFacts { disabled: true, disabled_by: Some(Actor::Quota) };
    assert_eq!(decide(&p, by_quota), (Enable, false));
}

#[test]
fn row_short_window_full_with_long_window_fine_keeps() {
    let p =
        probe(Some(200), "", vec![window("5h", WindowKind::Short, 100.0), window("weekly", WindowKind::Long, 50.0)]);
    let d = decide_quota_probe(&p, ENABLED, 100.0);
    assert_eq!((d.action, d.priority), (Keep, Priority::Low));
    assert!(d.reason.contains("recovers"), "{}", d.reason);
}

#[test]
fn row_legacy_without_window_data_disables_on_exhaustion_signs() {
    for (status, body) in [
        (402, ""),
        (429, r#"{"error":{"message":"Quota exhausted for today"}}"#),
        (429, r#"{"error":{"type":"usage_limit_reached","message":"The usage limit has been reached"}}"#),
        (200, r#"{"status":"limit reached"}"#),
        (403, r#"{"error":"payment_required"}"#),
    ] {
        assert_eq!(decide(&probe(Some(status), body, vec![]), ENABLED), (Disable, true), "{status} {body}");
    }
    // A window of another kind at the threshold counts too.
    let credits = probe(Some(200), "", vec![window("credits", WindowKind::Credits, 100.0)]);
    assert_eq!(decide(&credits, ENABLED), (Disable, true));
}

#[test]
fn row_otherwise_keeps() {
    let fine =
        probe(Some(200), "", vec![window("5h", WindowKind::Short, 30.0), window("weekly", WindowKind::Long, 30.0)]);
    assert_eq!(decide(&fine, ENABLED), (Keep, false));
    assert_eq!(decide(&probe(Some(500), "oops", vec![]), ENABLED), (Keep, false));
    assert_eq!(decide(&probe(Some(429), "slow down", vec![]), ENABLED), (Keep, false));
}

#[test]
fn quota_probes_come_from_quota_evidence() {
    let report = QuotaEvidence::Report(QuotaReading {
        plan: Some("pro".into()),
        windows: vec![window("weekly", WindowKind::Long, 100.0)],
        observed_at: chrono::Utc::now(),
        source: QuotaOrigin::ApiQuery,
    });
    let p = QuotaProbe::from_evidence("idx", &report);
    assert_eq!((p.status, p.plan.as_deref(), p.windows.len()), (Some(200), Some("pro"), 1));
    let failed = QuotaEvidence::Failed(QuotaFailure::Upstream { status: 402, body: "deactivated_workspace".into() });
    assert_eq!(decide(&QuotaProbe::from_evidence("idx", &failed), ENABLED), (Delete, true));
    let transport = QuotaEvidence::Failed(QuotaFailure::Transport("timeout".into()));
    assert_eq!(QuotaProbe::from_evidence("idx", &transport).status, None);
    assert_eq!(QuotaProbe::from_evidence("", &report).auth_index, None);
}

fn unknown() -> Health {
    evaluate(&[], &Facts::default(), chrono::Utc::now())
}

fn request(status: Option<u16>, provider: &str, body: &str) -> RequestProbe {
    let failure = status.filter(|s| !(200..300).contains(s)).map(|s| FailureSignal::from_body(provider, s, body));
    RequestProbe { status, failure }
}

fn decide_request(probe: &RequestProbe, account: AccountFacts) -> (Recommendation, bool) {
    let d = decide_request_probe(probe, account, &unknown());
    (d.action, d.automatic)
}

#[test]
fn request_probes_follow_the_classification_table() {
    let stale = request(Some(402), "codex", r#"{"detail":{"code":"deactivated_workspace"}}"#);
    assert_eq!(decide_request(&stale, ENABLED), (Delete, true));
    let gone = request(Some(401), "codex", r#"{"error":{"code":"account_deactivated"}}"#);
    assert_eq!(decide_request(&gone, ENABLED), (Delete, true));
    let revoked = request(Some(401), "codex", r#"{"error":{"code":"token_revoked"}}"#);
    assert_eq!(decide_request(&revoked, ENABLED), (Reauth, true));
    let invalid = request(Some(401), "claude", r#"{"error":"invalid_grant"}"#);
    assert_eq!(decide_request(&invalid, ENABLED), (Reauth, true));
    let xai = request(Some(403), "xai", r#"{"code":"permission_denied","error":"API key blocked"}"#);
    assert_eq!(decide_request(&xai, ENABLED), (Disable, true));
    assert_eq!(decide_request(&xai, BY_HAND), (Keep, false));
    // A medium review never changes the account.
    let bare = request(Some(401), "claude", "");
    let d = decide_request_probe(&bare, ENABLED, &unknown());
    assert_eq!((d.action, d.automatic), (Keep, false));
    assert!(d.reason.contains("review"), "{}", d.reason);
}

#[test]
fn request_probes_keep_on_ambiguous_outcomes_and_enable_what_inspection_disabled() {
    for status in [None, Some(429), Some(500), Some(504), Some(0)] {
        assert_eq!(decide_request(&request(status, "claude", "x"), ENABLED), (Keep, false), "{status:?}");
    }
    assert_eq!(decide_request(&request(Some(200), "claude", ""), ENABLED), (Keep, false));
    assert_eq!(decide_request(&request(Some(200), "claude", ""), BY_INSPECTION), (Enable, true));
    assert_eq!(decide_request(&request(Some(200), "claude", ""), BY_HAND), (Enable, false));
}

#[test]
fn a_refused_refresh_token_in_the_health_makes_a_bare_failure_a_reauth() {
    let revoked = Evidence::new(
        chrono::Utc::now(),
        Source::Refresh,
        Signal::Invalid { action: Action::Reauth },
        "refresh token refused: HTTP 401",
    );
    let health = evaluate(&[revoked], &Facts::default(), chrono::Utc::now());
    let d = decide_request_probe(&request(Some(401), "kimi", "HTTP 401"), ENABLED, &health);
    assert_eq!(d.action, Reauth);
    assert_eq!(d.reason, "Refresh · refresh token refused: HTTP 401");
}

#[test]
fn recommendations_parse_their_names() {
    for r in [Keep, Delete, Reauth, Disable, Enable] {
        assert_eq!(Recommendation::parse(r.as_str()), Some(r));
    }
    assert_eq!(Recommendation::parse("explode"), None);
}
