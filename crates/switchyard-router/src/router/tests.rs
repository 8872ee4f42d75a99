//! Unit tests of the router: plans, strategies, cooldowns, health and account replacement.

use super::*;
use crate::{AccountKind, ExposedModel};

const MIN: u64 = 60;

fn exposed(id: &str, upstream: &str) -> ExposedModel {
    ExposedModel {
        id: id.into(),
        upstream: upstream.into(),
        display_name: upstream.to_uppercase(),
        owned_by: "owner".into(),
        kind: "openai".into(),
    }
}

/// An account serving `m` and `n` (upstream `m-up`, `n-up`).
fn account(id: &str, priority: i64, weight: u32) -> Account {
    Account {
        id: id.into(),
        provider: "claude".into(),
        kind: AccountKind::OAuth { file: id.into() },
        priority,
        weight,
        disabled: false,
        disable_cooling: None,
        request_retry: None,
        models: vec![exposed("m", "m-up"), exposed("n", "n-up")].into(),
        unservable: None,
    }
}

fn router(accounts: Vec<Account>) -> Router {
    let router = Router::new();
    router.set_accounts(accounts);
    router
}

fn settings(strategy: RoutingStrategy) -> RouteSettings {
    RouteSettings { strategy, ..RouteSettings::default() }
}

fn rr() -> RouteSettings {
    settings(RoutingStrategy::RoundRobin)
}

fn order(router: &Router, model: &str, settings: &RouteSettings, now: Instant) -> Vec<String> {
    let plan = router.plan(model, settings, now).expect("plan");
    plan.attempts.iter().map(|a| a.account_id.to_string()).collect()
}

fn first(router: &Router, settings: &RouteSettings, now: Instant) -> String {
    order(router, "m", settings, now).remove(0)
}

fn failure(status: u16) -> Outcome {
    Outcome::Failure { status, retry_after: None, credential_wide: false, message: format!("upstream {status}") }
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[test]
fn round_robin_rotates_over_the_id_sorted_accounts() {
    let router = router(vec![account("c", 0, 1), account("a", 0, 1), account("b", 0, 1)]);
    let now = Instant::now();
    assert_eq!(order(&router, "m", &rr(), now), ["a", "b", "c"]);
    assert_eq!(order(&router, "m", &rr(), now), ["b", "c", "a"]);
    assert_eq!(order(&router, "m", &rr(), now), ["c", "a", "b"]);
    assert_eq!(order(&router, "m", &rr(), now), ["a", "b", "c"]);
    // The cursor is per model.
    assert_eq!(order(&router, "n", &rr(), now), ["a", "b", "c"]);
}

#[test]
fn round_robin_skips_cooling_accounts() {
    let router = router(vec![account("a", 0, 1), account("b", 0, 1), account("c", 0, 1)]);
    let now = Instant::now();
    router.report("b", "m-up", failure(500), &rr(), now);
    let firsts: Vec<String> = (0..4).map(|_| first(&router, &rr(), now)).collect();
    assert_eq!(firsts, ["a", "c", "a", "c"]);
}

#[test]
fn fill_first_sticks_to_the_first_until_it_cools() {
    let ff = settings(RoutingStrategy::FillFirst);
    let router = router(vec![account("b", 0, 1), account("a", 0, 1)]);
    let now = Instant::now();
    for _ in 0..3 {
        assert_eq!(order(&router, "m", &ff, now), ["a", "b"]);
    }
    router.report("a", "m-up", failure(429), &ff, now);
    assert_eq!(order(&router, "m", &ff, now), ["b"]);
    assert_eq!(order(&router, "m", &ff, now + secs(1)), ["a", "b"], "the 1 s backoff is over");
}

#[test]
fn weighted_round_robin_is_smooth_and_exact() {
    let wrr = settings(RoutingStrategy::WeightedRoundRobin);
    let router = router(vec![account("a", 0, 3), account("b", 0, 1)]);
    let now = Instant::now();
    let firsts: Vec<String> = (0..8).map(|_| first(&router, &wrr, now)).collect();
    assert_eq!(firsts, ["a", "a", "b", "a", "a", "a", "b", "a"]);

    let mut counts = HashMap::new();
    for _ in 0..400 {
        *counts.entry(first(&router, &wrr, now)).or_insert(0) += 1;
    }
    assert_eq!((counts["a"], counts["b"]), (300, 100));
    // The full plan still lists the other account as failover.
    assert_eq!(order(&router, "m", &wrr, now).len(), 2);
}

#[test]
fn weightless_accounts_sit_out_weighted_round_robin_only() {
    let router = router(vec![account("a", 0, 0), account("b", 0, 2)]);
    let now = Instant::now();
    assert_eq!(order(&router, "m", &settings(RoutingStrategy::WeightedRoundRobin), now), ["b"]);
    assert_eq!(order(&router, "m", &rr(), now), ["a", "b"]);

    let only_weightless = super::tests::router(vec![account("a", 0, 0)]);
    assert_eq!(
        only_weightless.plan("m", &settings(RoutingStrategy::WeightedRoundRobin), now),
        Err(RouteError::NoneAvailable { model: "m".into() })
    );
}

#[test]
fn higher_priority_tier_first_lower_tier_as_failover() {
    let router = router(vec![account("low", 0, 1), account("hi-1", 10, 1), account("hi-2", 10, 1)]);
    let now = Instant::now();
    assert_eq!(order(&router, "m", &rr(), now), ["hi-1", "hi-2", "low"]);
    assert_eq!(order(&router, "m", &rr(), now), ["hi-2", "hi-1", "low"]);
    // The lower tier leads only once the whole higher tier is cooling.
    router.report("hi-1", "m-up", failure(503), &rr(), now);
    assert_eq!(order(&router, "m", &rr(), now), ["hi-2", "low"]);
    router.report("hi-2", "m-up", failure(503), &rr(), now);
    assert_eq!(order(&router, "m", &rr(), now), ["low"]);
    // Another model of the same accounts is unaffected.
    assert_eq!(order(&router, "n", &rr(), now)[2], "low");
    assert_eq!(order(&router, "m", &rr(), now + secs(MIN))[2], "low");
}

#[test]
fn each_status_cools_for_its_time_and_reason() {
    let cases: &[(u16, u64, CooldownReason)] = &[
        (401, 30 * MIN, CooldownReason::Unauthorized),
        (402, 30 * MIN, CooldownReason::PaymentRequired),
        (403, 30 * MIN, CooldownReason::PaymentRequired),
        (404, 12 * 60 * MIN, CooldownReason::NotFound),
        (429, 1, CooldownReason::Quota),
        (408, MIN, CooldownReason::Transient),
        (500, MIN, CooldownReason::Transient),
        (502, MIN, CooldownReason::Transient),
        (503, MIN, CooldownReason::Transient),
        (504, MIN, CooldownReason::Transient),
        (0, MIN, CooldownReason::Transient),
    ];
    for &(status, seconds, reason) in cases {
        let router = router(vec![account("a", 0, 1), account("b", 0, 1)]);
        let now = Instant::now();
        router.report("a", "m-up", failure(status), &rr(), now);
        let health = router.health("a", now);
        assert_eq!(health.models.len(), 1, "{status}");
        let model = &health.models[0];
        assert_eq!((model.model.as_str(), model.reason, model.status), ("m-up", reason, status));
        assert_eq!(model.retry_after, secs(seconds), "{status}");
        assert_eq!(order(&router, "m", &rr(), now + secs(seconds) - Duration::from_millis(1)), ["b"], "{status}");
        assert_eq!(order(&router, "m", &settings(RoutingStrategy::FillFirst), now + secs(seconds))[0], "a");
    }
}

#[test]
fn client_errors_do_not_cool() {
    let router = router(vec![account("a", 0, 1)]);
    let now = Instant::now();
    for status in [400, 413, 422, 501] {
        router.report("a", "m-up", failure(status), &rr(), now);
    }
    assert_eq!(router.health("a", now).status, HealthStatus::Active);
    assert_eq!(order(&router, "m", &rr(), now), ["a"]);
}

#[test]
fn retry_after_is_honoured() {
    let router = router(vec![account("a", 0, 1)]);
    let now = Instant::now();
    let outcome =
        Outcome::Failure { status: 429, retry_after: Some(secs(120)), credential_wide: false, message: String::new() };
    router.report("a", "m-up", outcome, &rr(), now);
    let health = router.health("a", now);
    assert_eq!((health.models[0].reason, health.models[0].retry_after), (CooldownReason::Quota, secs(120)));
    assert_eq!(health.status_message.as_deref(), Some("quota"), "reason stands in for an empty message");
}

#[test]
fn quota_backoff_doubles_caps_and_resets_on_success() {
    let router = router(vec![account("a", 0, 1)]);
    let mut now = Instant::now();
    let mut seen = Vec::new();
    for _ in 0..14 {
        router.report("a", "m-up", failure(429), &rr(), now);
        let wait = router.health("a", now).models[0].retry_after;
        seen.push(wait.as_secs());
        now += wait;
    }
    assert_eq!(seen, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 1800, 1800, 1800]);

    router.report("a", "m-up", Outcome::Success, &rr(), now);
    assert_eq!(router.health("a", now), AccountHealth::active());
    router.report("a", "m-up", failure(429), &rr(), now);
    assert_eq!(router.health("a", now).models[0].retry_after, secs(1));
}

#[test]
fn success_clears_only_that_models_state() {
    let router = router(vec![account("a", 0, 1)]);
    let now = Instant::now();
    router.report("a", "m-up", failure(500), &rr(), now);
    router.report("a", "n-up", failure(500), &rr(), now);
    router.report("a", "m-up", Outcome::Success, &rr(), now);
    assert_eq!(order(&router, "m", &rr(), now), ["a"]);
    assert!(router.plan("n", &rr(), now).is_err());
}

#[test]
fn transient_cooldown_follows_the_setting() {
    let router = router(vec![account("a", 0, 1)]);
    let now = Instant::now();
    let five = RouteSettings { transient_error_cooldown_seconds: 5, ..rr() };
    router.report("a", "m-up", failure(502), &five, now);
    assert_eq!(router.health("a", now).models[0].retry_after, secs(5));

    let never = RouteSettings { transient_error_cooldown_seconds: -1, ..rr() };
    router.report("a", "n-up", failure(502), &never, now);
    router.report("a", "n-up", failure(0), &never, now);
    assert_eq!(router.health("a", now).models.len(), 1);
    // Other statuses still cool.
    router.report("a", "n-up", failure(401), &never, now);
    assert_eq!(router.health("a", now).models.len(), 2);
}

#[test]
fn credential_wide_quota_cools_every_model() {
    let router = router(vec![account("a", 0, 1), account("b", 0, 1)]);
    let now = Instant::now();
    let outcome =
        Outcome::Failure { status: 429, retry_after: Some(secs(90)), credential_wide: true, message: "weekly".into() };
    router.report("a", "m-up", outcome, &rr(), now);
    assert_eq!(order(&router, "m", &rr(), now), ["b"]);
    assert_eq!(order(&router, "n", &rr(), now), ["b"]);

    let health = router.health("a", now);
    assert_eq!(health.status, HealthStatus::Cooling);
    assert!(health.unavailable);
    assert_eq!(health.reason, Some(CooldownReason::CredentialQuota));
    assert_eq!(health.next_retry_after, Some(secs(90)));
    assert_eq!(health.status_message.as_deref(), Some("weekly"));
    assert!(health.models.is_empty());

    // A success anywhere proves the credential works again.
    router.report("a", "n-up", Outcome::Success, &rr(), now + secs(1));
    assert_eq!(order(&router, "m", &settings(RoutingStrategy::FillFirst), now + secs(1)), ["a", "b"]);
}

#[test]
fn all_cooling_reports_the_earliest_recovery() {
    let router = router(vec![account("a", 0, 1), account("b", 5, 1)]);
    let now = Instant::now();
    router.report("a", "m-up", failure(401), &rr(), now);
    router.report("b", "m-up", failure(503), &rr(), now + secs(10));
    assert_eq!(
        router.plan("m", &rr(), now + secs(20)),
        Err(RouteError::AllCooling { model: "m".into(), provider: Some("claude".into()), retry_after: secs(50) })
    );
    let error = router.plan("m", &rr(), now + secs(20)).unwrap_err();
    assert_eq!(error.to_string(), "All credentials for model m are cooling down via provider claude");

    let mut other = account("c", 0, 1);
    other.provider = "codex".into();
    let mixed = super::tests::router(vec![account("a", 0, 1), other]);
    mixed.report("a", "m-up", failure(503), &rr(), now);
    mixed.report("c", "m-up", failure(503), &rr(), now);
    let Err(RouteError::AllCooling { provider, .. }) = mixed.plan("m", &rr(), now) else { panic!("all cooling") };
    assert_eq!(provider, None);
}

#[test]
fn soonest_recovery_is_the_first_cooling_account_and_moves_no_cursor() {
    let router = router(vec![account("a", 0, 1), account("b", 0, 1)]);
    let now = Instant::now();
    assert_eq!(router.soonest_recovery("m", &rr(), now), None, "nothing cooling");
    router.report("a", "m-up", failure(503), &rr(), now);
    // One account cooling while another is available still answers when that one recovers.
    assert_eq!(router.soonest_recovery("m", &rr(), now + secs(10)), Some(secs(50)));
    router.report("b", "m-up", failure(401), &rr(), now);
    assert_eq!(router.soonest_recovery("m", &rr(), now + secs(10)), Some(secs(50)));
    assert_eq!(router.soonest_recovery("n", &rr(), now), None, "cooldowns are per model");
    assert_eq!(router.soonest_recovery("unknown", &rr(), now), None);
    // Round-robin order is untouched by the query.
    let fresh = super::tests::router(vec![account("a", 0, 1), account("b", 0, 1)]);
    for _ in 0..3 {
        fresh.soonest_recovery("m", &rr(), now);
    }
    assert_eq!(order(&fresh, "m", &rr(), now), ["a", "b"]);
}

#[test]
fn disable_cooling_globally_or_per_account() {
    let now = Instant::now();
    let no_cooling = RouteSettings { disable_cooling: true, ..rr() };
    let router = router(vec![account("a", 0, 1)]);
    router.report("a", "m-up", failure(429), &no_cooling, now);
    assert_eq!(order(&router, "m", &rr(), now), ["a"]);

    let mut opted_out = account("a", 0, 1);
    opted_out.disable_cooling = Some(true);
    let mut opted_in = account("b", 0, 1);
    opted_in.disable_cooling = Some(false);
    let router = super::tests::router(vec![opted_out, opted_in]);
    router.report("a", "m-up", failure(429), &rr(), now);
    router.report("b", "m-up", failure(429), &no_cooling, now);
    assert_eq!(router.health("a", now).status, HealthStatus::Active);
    assert_eq!(router.health("b", now).models[0].reason, CooldownReason::Quota);
}

#[test]
fn a_longer_running_cooldown_is_kept() {
    let router = router(vec![account("a", 0, 1)]);
    let now = Instant::now();
    router.report("a", "m-up", failure(404), &rr(), now);
    router.report("a", "m-up", failure(500), &rr(), now + secs(1));
    let model = &router.health("a", now + secs(1)).models[0];
    assert_eq!(model.reason, CooldownReason::NotFound);
}

#[test]
fn unknown_model_and_disabled_accounts() {
    let mut off = account("a", 0, 1);
    off.disabled = true;
    let router = router(vec![off]);
    let now = Instant::now();
    assert_eq!(router.plan("zzz", &rr(), now), Err(RouteError::UnknownModel { model: "zzz".into() }));
    assert_eq!(router.plan("zzz", &rr(), now).unwrap_err().to_string(), "unknown provider for model zzz");
    assert_eq!(router.plan("m", &rr(), now), Err(RouteError::NoneAvailable { model: "m".into() }));
    assert!(router.models().is_empty(), "disabled accounts list nothing");
}

#[test]
fn unservable_accounts_are_neither_listed_nor_planned() {
    let mut dead = account("a-dead", 5, 1);
    dead.unservable = Some("needs re-login: HTTP 400: invalid_grant".into());
    dead.models = dead.models.iter().cloned().chain([exposed("only-dead", "x")]).collect();
    let live = account("b-live", 0, 1);
    let router = router(vec![dead, live]);
    let now = Instant::now();
    let listed: Vec<String> = router.models().into_iter().map(|m| m.id).collect();
    assert_eq!(listed, ["m", "n"], "the unservable account's own model is not listed");
    let plan = router.plan("m", &rr(), now).unwrap();
    let ids: Vec<String> = plan.attempts.iter().map(|a| a.account_id.to_string()).collect();
    assert_eq!(ids, ["b-live"], "a higher priority does not route to an account nothing can be sent with");
    assert_eq!(router.plan("only-dead", &rr(), now), Err(RouteError::UnknownModel { model: "only-dead".into() }));
    assert_eq!(router.accounts().len(), 2, "still known, for listings");
}

#[test]
fn an_account_that_becomes_servable_again_starts_without_its_old_cooldowns() {
    let settings = rr();
    let now = Instant::now();
    let (a, b) = (account("a", 0, 1), account("b", 0, 1));
    let router = router(vec![a.clone(), b.clone()]);
    let unauthorized =
        Outcome::Failure { status: 401, retry_after: None, credential_wide: true, message: "expired".into() };
    router.report("a", "m-up", unauthorized.clone(), &settings, now);
    router.report("b", "m-up", unauthorized, &settings, now);

    let mut dead = a.clone();
    dead.unservable = Some("needs re-login: HTTP 401".into());
    router.set_accounts(vec![dead, b.clone()]);
    assert_ne!(router.health("a", now).status, HealthStatus::Active, "kept while it needs a re-login");
    router.set_accounts(vec![a, b]);
    assert_eq!(router.health("a", now).status, HealthStatus::Active, "logged in again: a fresh start");
    assert_ne!(router.health("b", now).status, HealthStatus::Active, "other accounts keep theirs");
}

#[test]
fn model_lookup_ignores_case_and_resolves_the_upstream_name() {
    let mut a = account("a", 0, 1);
    a.models = a.models.iter().cloned().chain([exposed("team/Fast", "m-up")]).collect();
    let router = router(vec![a]);
    let plan = router.plan("TEAM/fast", &rr(), Instant::now()).unwrap();
    assert_eq!(plan.model, "TEAM/fast");
    let first = plan.attempts.get(0).expect("one attempt");
    assert_eq!(&*first.upstream_model, "m-up");
    assert_eq!(*first.kind, AccountKind::OAuth { file: "a".into() });
}

#[test]
fn thinking_suffix_is_split_off_when_the_whole_name_is_no_model() {
    let mut a = account("a", 0, 1);
    a.models = a.models.iter().cloned().chain([exposed("odd(1)", "odd-up")]).collect();
    let router = router(vec![a]);
    let now = Instant::now();
    for (requested, model, suffix) in
        [("m(high)", "m", Some("high")), ("m(8192)", "m", Some("8192")), ("odd(1)", "odd(1)", None)]
    {
        let plan = router.plan(requested, &rr(), now).unwrap();
        assert_eq!((plan.model.as_str(), plan.thinking_suffix.as_deref()), (model, suffix), "{requested}");
    }
    for unknown in ["x(high)", "m()", "(high)"] {
        assert_eq!(router.plan(unknown, &rr(), now), Err(RouteError::UnknownModel { model: unknown.into() }));
    }
}

#[test]
fn health_shows_reasons_and_next_retry() {
    let router = router(vec![account("a", 0, 1)]);
    let now = Instant::now();
    assert_eq!(router.health("a", now), AccountHealth::active());

    router.report("a", "n-up", failure(401), &rr(), now);
    let health = router.health("a", now + secs(60));
    assert_eq!(health.status, HealthStatus::Error);
    assert!(!health.unavailable);
    assert_eq!(health.next_retry_after, Some(secs(29 * MIN)));
    assert_eq!(health.status_message.as_deref(), Some("upstream 401"));

    // Every model cooling makes the account unavailable; the latest failure is the message.
    router.report("a", "m-up", failure(503), &rr(), now + secs(60));
    let health = router.health("a", now + secs(60));
    assert_eq!(health.status, HealthStatus::Cooling);
    assert!(health.unavailable);
    assert_eq!(health.next_retry_after, Some(secs(MIN)));
    assert_eq!(health.status_message.as_deref(), Some("upstream 503"));
    let models: Vec<_> = health.models.iter().map(|m| (m.model.as_str(), m.reason, m.retry_after)).collect();
    assert_eq!(
        models,
        [("m-up", CooldownReason::Transient, secs(MIN)), ("n-up", CooldownReason::Unauthorized, secs(29 * MIN))]
    );

    // Expired cooldowns drop out.
    assert_eq!(router.health("a", now + secs(2 * MIN)).models.len(), 1);
    assert_eq!(router.health("a", now + secs(31 * MIN)), AccountHealth::active());
}

#[test]
fn reset_forgets_cooldowns_and_backoff() {
    let router = router(vec![account("a", 0, 1)]);
    let now = Instant::now();
    for _ in 0..3 {
        router.report("a", "m-up", failure(429), &rr(), now);
    }
    router.reset("a");
    assert_eq!(router.health("a", now), AccountHealth::active());
    assert_eq!(order(&router, "m", &rr(), now), ["a"]);
    router.report("a", "m-up", failure(429), &rr(), now);
    assert_eq!(router.health("a", now).models[0].retry_after, secs(1));
}

#[test]
fn set_accounts_keeps_the_health_of_surviving_accounts() {
    let router = router(vec![account("a", 0, 1), account("b", 0, 1)]);
    let now = Instant::now();
    router.report("a", "m-up", failure(500), &rr(), now);
    router.report("b", "m-up", failure(500), &rr(), now);
    router.set_accounts(vec![account("a", 0, 1), account("c", 0, 1)]);
    assert_eq!(router.health("a", now).models.len(), 1);
    assert_eq!(order(&router, "m", &rr(), now), ["c"]);
    // A removed account's state does not come back with it.
    router.set_accounts(vec![account("a", 0, 1), account("b", 0, 1)]);
    assert_eq!(router.health("b", now), AccountHealth::active());
    // Reports for unknown accounts are ignored.
    router.report("zzz", "m-up", failure(500), &rr(), now);
    assert_eq!(router.health("zzz", now), AccountHealth::active());
}

#[test]
fn plan_is_capped_and_carries_retry_rounds() {
    let mut own = account("b", 0, 1);
    own.request_retry = Some(0);
    let router = router(vec![account("a", 0, 1), own, account("c", 0, 1)]);
    let capped = RouteSettings { max_retry_credentials: 2, request_retry: 3, ..settings(RoutingStrategy::FillFirst) };
    let plan = router.plan("m", &capped, Instant::now()).unwrap();
    let attempts: Vec<_> = plan.attempts.iter().map(|a| (a.account_id.to_string(), a.request_retry)).collect();
    assert_eq!(attempts, [("a".to_owned(), 3), ("b".to_owned(), 0)]);
}

#[test]
fn models_are_listed_once_with_their_providers() {
    let mut codex = account("z", 0, 1);
    codex.provider = "codex".into();
    codex.models = vec![exposed("M", "m-up"), exposed("only-codex", "o")].into();
    let router = router(vec![account("b", 0, 1), codex, account("a", 0, 1)]);
    let listed = router.models();
    let ids: Vec<_> = listed.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m", "n", "only-codex"]);
    assert_eq!(listed[0].providers, ["claude", "codex"]);
    assert_eq!(listed[0].display_name, "M-UP");
    assert_eq!(
        serde_json::to_value(&listed[2]).unwrap(),
        serde_json::json!({"id": "only-codex", "display_name": "O", "owned_by": "owner", "type": "openai",
            "providers": ["codex"]})
    );
}

#[test]
fn settings_come_from_config() {
    let config = switchyard_config::parse(
        "routing:\n  strategy: wrr\ndisable-cooling: true\ntransient-error-cooldown-seconds: -1\n\
         max-retry-credentials: 2\nrequest-retry: 1\nmax-retry-interval: 0\n",
    )
    .unwrap()
    .config;
    assert_eq!(
        RouteSettings::from_config(&config),
        RouteSettings {
            strategy: RoutingStrategy::WeightedRoundRobin,
            disable_cooling: true,
            transient_error_cooldown_seconds: -1,
            max_retry_credentials: 2,
            request_retry: 1,
            max_retry_interval: Duration::ZERO,
        }
    );
    let defaults = RouteSettings::default();
    assert_eq!((defaults.request_retry, defaults.max_retry_interval), (3, secs(30)));
}

#[test]
fn a_pinned_plan_is_one_attempt_on_that_account_whatever_its_cooldowns() {
    let router = router(vec![account("a", 5, 1), account("b", 0, 1)]);
    let now = Instant::now();
    router.report("b", "m-up", failure(429), &rr(), now);
    let plan = router.plan_for("b", "M", false).unwrap();
    assert_eq!(plan.model, "M");
    let attempts: Vec<(String, String, u32)> = plan
        .attempts
        .iter()
        .map(|a| (a.account_id.to_string(), a.upstream_model.to_string(), a.request_retry))
        .collect();
    assert_eq!(attempts, [("b".to_owned(), "m-up".to_owned(), 0)], "no failover, no retry rounds");
    // Thinking suffixes split as in normal plans.
    let plan = router.plan_for("a", "n(high)", false).unwrap();
    assert_eq!((plan.model.as_str(), plan.thinking_suffix.as_deref()), ("n", Some("high")));
    // Pinning moves no strategy cursor.
    assert_eq!(order(&router, "m", &rr(), now), ["a"]);
    assert_eq!(order(&router, "m", &rr(), now), ["a"]);
}

#[test]
fn a_pinned_plan_says_why_it_cannot_be_made() {
    let mut off = account("off", 0, 1);
    off.disabled = true;
    let mut dead = account("dead", 0, 1);
    dead.unservable = Some("needs re-login: invalid_grant".into());
    let router = router(vec![account("a", 0, 1), off, dead]);
    assert_eq!(router.plan_for("nope", "m", false), Err(PinError::UnknownAccount));
    assert_eq!(router.plan_for("off", "m", false), Err(PinError::Disabled));
    assert_eq!(router.plan_for("off", "m", true).map(|p| p.attempts.len()), Ok(1), "probes may include it");
    assert_eq!(router.plan_for("dead", "m", true), Err(PinError::Unservable("needs re-login: invalid_grant".into())));
    assert_eq!(router.plan_for("a", "other", false), Err(PinError::ModelNotServed { model: "other".into() }));
    assert_eq!(router.account("a").map(|a| a.id), Some("a".to_owned()));
    assert_eq!(router.account("nope"), None);
}

/// The plan of every model against a plain scan of the accounts (what the index stands in for):
/// the accounts serving it, enabled and servable, in id order with fill-first, and the upstream
/// name each one sends.
fn assert_index_matches_a_scan(router: &Router, models: &[&str], now: Instant) {
    let fill = settings(RoutingStrategy::FillFirst);
    for model in models {
        let mut scanned: Vec<(String, String)> = router
            .accounts()
            .into_iter()
            .filter(|a| !a.disabled && a.unservable.is_none())
            .filter_map(|a| {
                let served = a.models.iter().find(|m| m.id.eq_ignore_ascii_case(model))?;
                Some((a.id.clone(), served.upstream.clone()))
            })
            .collect();
        scanned.sort();
        let planned: Vec<(String, String)> = match router.plan(model, &fill, now) {
            Ok(plan) => {
                plan.attempts.iter().map(|a| (a.account_id.to_string(), a.upstream_model.to_string())).collect()
            }
            Err(_) => Vec::new(),
        };
        assert_eq!(planned, scanned, "model {model}");
    }
}

#[test]
fn the_model_index_follows_added_removed_disabled_and_re_ruled_accounts() {
    let now = Instant::now();
    let models = ["m", "n", "o", "alias"];
    let mut accounts: Vec<Account> = (0..6).map(|i| account(&format!("a{i}"), 0, 1)).collect();
    let router = router(accounts.clone());
    assert_index_matches_a_scan(&router, &models, now);

    // Added, and one removed.
    accounts.push(Account { models: vec![exposed("o", "o-up")].into(), ..account("b0", 0, 1) });
    accounts.remove(2);
    router.set_accounts(accounts.clone());
    assert_index_matches_a_scan(&router, &models, now);
    assert!(router.plan("m", &rr(), now).unwrap().attempts.iter().all(|a| &*a.account_id != "a2"));

    // Disabled and unservable.
    accounts[0].disabled = true;
    accounts[1].unservable = Some("needs re-login".into());
    router.set_accounts(accounts.clone());
    assert_index_matches_a_scan(&router, &models, now);

    // Model rules changed: an exclusion drops `n`, an alias renames `m` for one account.
    accounts[3].models = accounts[3].models.iter().filter(|m| m.id != "n").cloned().collect();
    accounts[4].models = vec![exposed("alias", "m-up")].into();
    router.set_accounts(accounts.clone());
    assert_index_matches_a_scan(&router, &models, now);
    let alias = router.plan("alias", &rr(), now).unwrap();
    assert_eq!(alias.attempts.len(), 1);
    let first = alias.attempts.get(0).expect("one attempt");
    assert_eq!((&*first.account_id, &*first.upstream_model), ("a5", "m-up"));

    // Everything gone: every model unknown again.
    router.set_accounts(Vec::new());
    for model in models {
        assert_eq!(router.plan(model, &rr(), now), Err(RouteError::UnknownModel { model: model.into() }));
    }
}

#[test]
fn accounts_where_selects_without_changing_the_order() {
    let router = router(vec![account("c", 0, 1), account("a", 0, 1), account("b", 0, 1)]);
    let ids: Vec<String> = router.accounts_where(|a| a.id != "b").into_iter().map(|a| a.id).collect();
    assert_eq!(ids, ["a", "c"]);
}

/// With nothing cooling, a plan is the ready-made order turned by the cursor; once anything cools
/// it is built account by account. Both must give the same order, call after call.
#[test]
fn plans_without_cooldowns_match_plans_built_account_by_account() {
    let now = Instant::now();
    let accounts = || {
        let mut accounts: Vec<Account> = ["e", "b", "d", "a", "c", "f", "g"]
            .iter()
            .zip([2, 2, 1, 2, 1, 0, 2])
            .map(|(id, priority)| account(id, priority, 1))
            .collect();
        accounts[6].disabled = true;
        accounts.push(Account { request_retry: Some(4), ..account("h", 1, 1) });
        accounts
    };
    for strategy in [RoutingStrategy::RoundRobin, RoutingStrategy::FillFirst] {
        let settings = RouteSettings { request_retry: 2, ..settings(strategy) };
        let quiet = router(accounts());
        // A cooldown on another model of another account: no effect on `m`, but plans for `m`
        // now take the account-by-account path.
        let cooling = router(accounts());
        cooling.report("f", "n-up", failure(429), &settings, now);
        assert!(cooling.plan("n", &settings, now).unwrap().attempts.iter().all(|a| &*a.account_id != "f"));
        for call in 0..9 {
            let (fast, slow) = (quiet.plan("m", &settings, now).unwrap(), cooling.plan("m", &settings, now).unwrap());
            assert_eq!(fast, slow, "{strategy:?}, call {call}");
            let retries: Vec<(String, u32)> =
                fast.attempts.iter().map(|a| (a.account_id.to_string(), a.request_retry)).collect();
            assert_eq!(retries.len(), 7, "the disabled account is left out");
            assert!(retries.contains(&("h".to_owned(), 4)) && retries.contains(&("a".to_owned(), 2)), "{retries:?}");
            let tiers: Vec<&str> = retries[..3].iter().map(|(id, _)| id.as_str()).collect();
            let mut top = tiers.clone();
            top.sort();
            assert_eq!(top, ["a", "b", "e"], "the top tier first: {retries:?}");
            let rest: Vec<&str> = retries[3..].iter().map(|(id, _)| id.as_str()).collect();
            assert_eq!(rest, ["c", "d", "h", "f"], "lower tiers in account order");
            if strategy == RoutingStrategy::RoundRobin {
                assert_eq!(tiers[0], ["a", "b", "e"][call % 3], "the cursor turns the top tier");
            } else {
                assert_eq!(tiers, ["a", "b", "e"]);
            }
            // Retry rounds admit by each account's own `request_retry`, else the global one.
            let round3: Vec<String> = fast.attempts.for_round(3).map(|a| a.account_id.to_string()).collect();
            assert_eq!(round3, ["h"]);
            assert!(fast.attempts.any_in_round(4) && !fast.attempts.any_in_round(5));
        }
    }
}

/// Accounts cooling for the model are left out of the ready-made order, from either side of the
/// lookup (few accounts with failure state, or as many as serve the model).
#[test]
fn cooling_accounts_leave_the_ready_made_order_and_the_next_tier_leads_when_a_tier_is_all_cooling() {
    let now = Instant::now();
    let settings = RouteSettings { request_retry: 0, ..settings(RoutingStrategy::FillFirst) };
    let accounts: Vec<Account> =
        ["a", "b", "c", "d", "e"].iter().zip([2, 2, 1, 1, 0]).map(|(id, priority)| account(id, priority, 1)).collect();
    let router = router(accounts);
    router.report("b", "m-up", failure(429), &settings, now);
    assert_eq!(order(&router, "m", &settings, now), ["a", "c", "d", "e"]);
    router.report("a", "m-up", failure(429), &settings, now);
    assert_eq!(order(&router, "m", &settings, now), ["c", "d", "e"], "the next tier leads");
    // More accounts with failure state than serve `n`: the lookup goes server by server.
    for id in ["c", "d", "e"] {
        router.report(id, "n-up", failure(500), &settings, now);
    }
    assert_eq!(order(&router, "m", &settings, now), ["c", "d", "e"]);
    assert_eq!(order(&router, "n", &settings, now), ["a", "b"]);
    for id in ["c", "d", "e"] {
        router.report(id, "m-up", failure(429), &settings, now);
    }
    match router.plan("m", &settings, now) {
        Err(RouteError::AllCooling { provider, .. }) => assert_eq!(provider.as_deref(), Some("claude")),
        other => panic!("{other:?}"),
    }
}

/// The order kept while accounts cool holds only until the first cooldown in it ends, and any
/// report works it out again.
#[test]
fn the_kept_order_follows_cooldowns_ending_and_new_reports() {
    let now = Instant::now();
    let settings = settings(RoutingStrategy::FillFirst);
    let router = router(vec![account("a", 0, 1), account("b", 0, 1), account("c", 0, 1)]);
    router.report("a", "m-up", failure(500), &settings, now);
    assert_eq!(order(&router, "m", &settings, now), ["b", "c"]);
    assert_eq!(order(&router, "m", &settings, now + Duration::from_secs(2 * MIN)), ["a", "b", "c"], "recovered");
    assert_eq!(order(&router, "m", &settings, now), ["b", "c"], "an earlier instant is worked out again");
    router.report("c", "m-up", failure(500), &settings, now);
    assert_eq!(order(&router, "m", &settings, now), ["b"]);
    router.report("a", "m-up", Outcome::Success, &settings, now);
    assert_eq!(order(&router, "m", &settings, now), ["a", "b"]);
    assert!(router.reset_health("c"));
    assert_eq!(order(&router, "m", &settings, now), ["a", "b", "c"]);
}

#[test]
fn equal_accounts_keep_the_snapshot_and_a_change_replaces_it() {
    let accounts = vec![account("a", 0, 1), account("b", 0, 1)];
    let router = router(accounts.clone());
    let before = router.current();
    // The same accounts in another order: what a token refresh's account sync hands over.
    router.set_accounts(accounts.iter().rev().cloned().collect());
    assert!(Arc::ptr_eq(&before, &router.current()), "an unchanged account list rebuilt the snapshot");
    let mut changed = accounts;
    changed[1].priority = 5;
    router.set_accounts(changed);
    assert!(!Arc::ptr_eq(&before, &router.current()));
    assert_eq!(router.current().accounts[1].priority, 5);
}
