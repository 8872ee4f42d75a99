use chrono::{Duration, TimeZone};

use super::*;

fn t(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 6, 1, 12, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn ev(minutes: i64, source: Source, signal: Signal, detail: &str) -> Evidence {
    Evidence::new(t(minutes), source, signal, detail)
}

fn ok(minutes: i64) -> Evidence {
    ev(minutes, Source::Request, Signal::Ok, "HTTP 200")
}

fn health(evidence: &[Evidence], now: i64) -> Health {
    evaluate(evidence, &Facts::default(), t(now))
}

#[test]
fn no_evidence_is_unknown_never_healthy() {
    let h = health(&[], 0);
    assert_eq!(h.state, HealthState::Unknown);
    assert_eq!(h.reason(), "no evidence yet");
    // Evidence that says nothing about health (a manual enable) is no evidence either.
    let enabled = ev(0, Source::Manual, Signal::Enabled { by: Actor::Manual }, "enabled");
    assert_eq!(health(&[enabled], 1).state, HealthState::Unknown);
}

#[test]
fn a_success_is_healthy_with_its_reason() {
    let h = health(&[ok(0)], 1);
    assert_eq!(h.state, HealthState::Healthy);
    assert_eq!(h.reason(), "Request · HTTP 200");
    assert_eq!(h.at, Some(t(0)));
}

#[test]
fn a_revoked_token_needs_relogin_and_wins_over_older_successes() {
    let revoked =
        ev(5, Source::Refresh, Signal::Invalid { action: Action::Reauth }, "refresh token refused: invalid_grant");
    let h = health(&[ok(0), revoked], 6);
    assert_eq!(h.state, HealthState::NeedsRelogin);
    assert_eq!(h.reason(), "Refresh · refresh token refused: invalid_grant");
    assert_eq!(h.action, Some(Action::Reauth));
    // Transient trouble after it does not hide it.
    let later = ev(7, Source::Request, Signal::Trouble, "HTTP 502");
    assert_eq!(
        health(&[ok(0), ev(5, Source::Refresh, Signal::Invalid { action: Action::Reauth }, "x"), later], 8).state,
        HealthState::NeedsRelogin
    );
}

#[test]
fn newer_healthy_evidence_supersedes_an_older_reauth() {
    let revoked = ev(0, Source::Request, Signal::Invalid { action: Action::Reauth }, "token_revoked");
    assert_eq!(health(&[revoked.clone(), ok(5)], 6).state, HealthState::Healthy);
    // A refresh that worked proves the credential too, but says nothing about quota.
    let refreshed = ev(5, Source::Refresh, Signal::AuthOk, "access token refreshed");
    let h = health(&[revoked, refreshed], 6);
    assert_eq!((h.state, h.reason()), (HealthState::Healthy, "Refresh · access token refreshed".to_owned()));
}

#[test]
fn a_429_with_a_reset_time_cools_down_until_then() {
    let failed = ev(0, Source::Request, Signal::Trouble, "HTTP 429: rate limited");
    let cooling = ev(0, Source::Cooldown, Signal::Cooling { until: t(30) }, "429 quota, retry after 30m");
    let h = health(&[ok(-10), failed.clone(), cooling.clone()], 1);
    assert_eq!(h.state, HealthState::CoolingDown { until: t(30) });
    assert_eq!(h.state.until(), Some(t(30)));
    assert_eq!(h.reason(), "Cooldown · 429 quota, retry after 30m");
    // Once the time passed, the cooldown no longer holds; the 429 itself is still a warning.
    let h = health(&[ok(-10), failed, cooling], 31);
    assert_eq!((h.state, h.reason()), (HealthState::Warning, "Request · HTTP 429: rate limited".to_owned()));
}

#[test]
fn quota_exhausted_until_reset_then_recovery_with_newer_healthy_evidence() {
    let exhausted = ev(0, Source::Quota, Signal::Exhausted { until: Some(t(600)) }, "Weekly window 100 % used");
    let h = health(&[ok(-5), exhausted.clone()], 10);
    assert_eq!(h.state, HealthState::QuotaExhausted { until: Some(t(600)) });
    assert_eq!(h.reason(), "Quota · Weekly window 100 % used");
    // Transient failures after it do not end it.
    let blip = ev(20, Source::Request, Signal::Trouble, "HTTP 503");
    assert_eq!(
        health(&[ok(-5), exhausted.clone(), blip.clone()], 30).state,
        HealthState::QuotaExhausted { until: Some(t(600)) }
    );
    // A newer success does.
    let h = health(&[ok(-5), exhausted.clone(), blip, ok(40)], 41);
    assert_eq!(h.state, HealthState::Healthy);
    // Without a reset time it holds until healthy evidence arrives.
    let open = ev(0, Source::Quota, Signal::Exhausted { until: None }, "credits exhausted");
    assert_eq!(health(std::slice::from_ref(&open), 100_000).state, HealthState::QuotaExhausted { until: None });
    assert_eq!(health(&[open, ok(1)], 2).state, HealthState::Healthy);
}

#[test]
fn a_newer_exhaustion_wins_over_older_success() {
    let exhausted = ev(5, Source::Quota, Signal::Exhausted { until: Some(t(60)) }, "5-hour window full");
    assert_eq!(health(&[ok(0), exhausted], 6).state, HealthState::QuotaExhausted { until: Some(t(60)) });
}

#[test]
fn a_passed_limit_proves_the_credential_so_older_reauth_no_longer_counts() {
    let revoked = ev(0, Source::Request, Signal::Invalid { action: Action::Reauth }, "invalid_token");
    let cooling = ev(5, Source::Cooldown, Signal::Cooling { until: t(10) }, "429");
    assert_eq!(health(&[revoked.clone(), cooling.clone()], 6).state, HealthState::CoolingDown { until: t(10) });
    let h = health(&[revoked, cooling], 11);
    assert_eq!((h.state, h.detail.as_str()), (HealthState::Healthy, "429 (over)"));
}

#[test]
fn a_short_cooldown_over_a_long_exhaustion_falls_back_to_it() {
    let weekly = ev(0, Source::Quota, Signal::Exhausted { until: Some(t(10_000)) }, "Weekly full");
    let cooling = ev(5, Source::Cooldown, Signal::Cooling { until: t(10) }, "429");
    assert_eq!(health(&[weekly.clone(), cooling.clone()], 6).state, HealthState::CoolingDown { until: t(10) });
    assert_eq!(health(&[weekly, cooling], 11).state, HealthState::QuotaExhausted { until: Some(t(10_000)) });
}

#[test]
fn a_manual_reset_ends_older_limits_but_not_credential_failures() {
    let cooling = ev(0, Source::Cooldown, Signal::Cooling { until: t(30) }, "429");
    let reset = ev(1, Source::Manual, Signal::Reset, "cooldowns reset");
    assert_eq!(health(&[ok(-1), cooling.clone(), reset.clone()], 2).state, HealthState::Healthy);
    let revoked = ev(0, Source::Request, Signal::Invalid { action: Action::Reauth }, "token_revoked");
    assert_eq!(health(&[revoked, reset], 2).state, HealthState::NeedsRelogin);
}

#[test]
fn weak_trouble_warns_over_a_success_only() {
    let blip = ev(5, Source::Request, Signal::Trouble, "HTTP 502: bad gateway");
    let h = health(&[ok(0), blip.clone()], 6);
    assert_eq!((h.state, h.reason()), (HealthState::Warning, "Request · HTTP 502: bad gateway".to_owned()));
    // Trouble alone is a warning too (something is known, and it is not good).
    assert_eq!(health(std::slice::from_ref(&blip), 6).state, HealthState::Warning);
    // A success after it clears it.
    assert_eq!(health(&[blip, ok(7)], 8).state, HealthState::Healthy);
}

#[test]
fn stale_workspaces_are_warnings_with_the_delete_action() {
    let stale = ev(0, Source::Request, Signal::Invalid { action: Action::Delete }, "workspace_deactivated");
    let h = health(&[ok(-1), stale], 1);
    assert_eq!((h.state, h.action), (HealthState::Warning, Some(Action::Delete)));
}

#[test]
fn manual_disable_is_disabled_whatever_the_evidence() {
    let disabled = ev(3, Source::Manual, Signal::Disabled { by: Actor::Manual }, "disabled via management API");
    let facts = Facts { disabled: true, disabled_by: Some(Actor::Manual), credential_since: None };
    let h = evaluate(&[ok(0), disabled, ok(5)], &facts, t(6));
    assert_eq!((h.state, h.reason()), (HealthState::Disabled, "Manual · disabled via management API".to_owned()));
    // Without evidence the recorded owner explains it.
    let facts = Facts { disabled: true, disabled_by: Some(Actor::Quota), credential_since: None };
    assert_eq!(evaluate(&[], &facts, t(0)).reason(), "Quota · disabled while its quota is exhausted");
    let facts = Facts { disabled: true, ..Facts::default() };
    assert_eq!(evaluate(&[], &facts, t(0)).reason(), "Manual · disabled in the auth file");
    // Enabled again: the disable evidence no longer decides anything.
    let back = [
        ev(0, Source::Manual, Signal::Disabled { by: Actor::Manual }, "off"),
        ev(1, Source::Manual, Signal::Enabled { by: Actor::Manual }, "on"),
    ];
    assert_eq!(health(&back, 2).state, HealthState::Unknown);
}

#[test]
fn evidence_from_before_a_relogin_never_reattaches() {
    let revoked = ev(0, Source::Refresh, Signal::Invalid { action: Action::Reauth }, "invalid_grant");
    let facts = Facts { credential_since: Some(t(10)), ..Facts::default() };
    assert_eq!(evaluate(std::slice::from_ref(&revoked), &facts, t(11)).state, HealthState::Unknown);
    assert_eq!(evaluate(&[revoked, ok(12)], &facts, t(13)).state, HealthState::Healthy);
}

#[test]
fn evidence_is_read_by_time_not_by_arrival_and_ties_go_to_the_later_record() {
    // Recorded out of order: the success is older.
    let revoked = ev(5, Source::Request, Signal::Invalid { action: Action::Reauth }, "token_revoked");
    assert_eq!(health(&[revoked.clone(), ok(1)], 6).state, HealthState::NeedsRelogin);
    // Same instant: the one recorded last counts as newer.
    let same_time_ok = ev(5, Source::Request, Signal::Ok, "HTTP 200");
    assert_eq!(health(&[revoked.clone(), same_time_ok.clone()], 6).state, HealthState::Healthy);
    assert_eq!(health(&[same_time_ok, revoked], 6).state, HealthState::NeedsRelogin);
}

#[test]
fn states_serialize_with_their_name_and_until() {
    let h = health(&[ev(0, Source::Cooldown, Signal::Cooling { until: t(30) }, "429")], 1);
    let value = serde_json::to_value(&h).unwrap();
    assert_eq!(value["state"], "cooling_down");
    assert_eq!(value["until"], "2025-06-01T12:30:00Z");
    assert_eq!(value["source"], "cooldown");
    assert_eq!(HealthState::NeedsRelogin.name(), "needs_relogin");
}
