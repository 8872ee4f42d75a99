//! Account health from evidence, end to end: a revoked refresh token shows as "needs re-login"
//! with its reason in `/auth-files` and `/health` until a re-login replaces the credential; a
//! 429 with a reset time cools the account down until then; `health.auto-disable` is opt-in,
//! records who disabled an account in its file, and only that actor (or a person) enables it.

mod common;
mod health_support;
mod proxy_support;

use common::{Options, json, start_with};
use health_support::{auth_file, bearers, chat, gateway, health_of, on_disk, post, until};
use proxy_support::{MODEL, claude_file};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_auth::Credential;
use switchyard_health::quota::{QuotaEvidence, QuotaOrigin, QuotaReading, QuotaWindowReading, WindowKind};
use switchyard_testkit::kimi::{Fault as KimiFault, MockKimi};
use switchyard_testkit::upstream::{Fault, MockUpstream};

const KIMI: &str = "kimi-1755853200000.json";

fn kimi_file(access_token: &str, refresh_token: &str, expired: &str) -> Credential {
    let value = json!({
        "type": "kimi", "access_token": access_token, "refresh_token": refresh_token, "token_type": "Bearer",
        "scope": "kimi-code", "device_id": "6f1d2c3b-4a59-4e7d-8c9b-0a1b2c3d4e5f", "expired": expired,
        "timestamp": 1_755_853_200_000_i64, "disabled": false,
    });
    Credential::from_json(value.to_string().as_bytes()).unwrap()
}

fn in_an_hour() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()
}

#[tokio::test]
async fn a_revoked_refresh_token_needs_relogin_with_its_reason_until_a_relogin_replaces_it() {
    let mock = MockKimi::start().await;
    let server = start_with(Options { extra_yaml: &mock.upstream_urls_yaml(), ..Default::default() }).await;
    drop(server.state.spawn_account_sync());
    let stale = mock.issue_tokens();
    server
        .state
        .store
        .save(KIMI, &kimi_file(&stale.access_token, &stale.refresh_token, "2020-01-01T00:00:00Z"))
        .await
        .unwrap();
    server.state.sync_accounts();
    let index = auth_file(&server, KIMI).await["auth_index"].as_str().unwrap().to_owned();
    // Nothing is known yet: never "healthy" without evidence.
    assert_eq!(health_of(&server, &index).await["health"], "unknown");

    mock.set_fault(KimiFault::RevokeRefreshTokens { status: 401 });
    let (status, body) = chat(&server, "kimi-k2").await;
    assert_ne!(status, 200, "{body}");

    let entry = auth_file(&server, KIMI).await;
    assert_eq!(entry["health"], "needs_relogin", "{entry}");
    let reason = entry["health_reason"].as_str().unwrap();
    assert!(reason.starts_with("Refresh · refresh token refused: HTTP 401"), "{reason}");
    assert!(!reason.contains(&stale.refresh_token), "{reason}");
    assert_eq!(entry["health_action"], "reauth");
    // CPA's fields are as they were.
    assert_eq!(entry["status"], "error");
    assert!(entry["status_message"].as_str().unwrap().starts_with("needs re-login: HTTP 401"));

    let health = health_of(&server, &index).await;
    assert_eq!((health["health"].as_str(), health["health_reason"].as_str()), (Some("needs_relogin"), Some(reason)));
    assert_eq!((health["source"].as_str(), health["name"].as_str()), (Some("refresh"), Some(KIMI)));
    let evidence = health["evidence"].as_array().unwrap();
    assert!(
        evidence
            .iter()
            .any(|e| e["source"] == "refresh" && e["signal"]["kind"] == "invalid" && e["signal"]["action"] == "reauth"),
        "{health}"
    );
    assert!(evidence.iter().any(|e| e["source"] == "request"), "the failed attempt is evidence too: {health}");
    let (status, _) = json(server.mgmt(Method::GET, "/health?auth_index=nope").send().await.unwrap()).await;
    assert_eq!(status, 404);

    // A re-login replaces the credential: the old evidence never comes back.
    mock.set_fault(KimiFault::None);
    let fresh = mock.issue_tokens();
    server.state.store.save(KIMI, &kimi_file(&fresh.access_token, &fresh.refresh_token, &in_an_hour())).await.unwrap();
    assert_eq!(health_of(&server, &index).await["health"], "unknown");
    until("the account is routed again", || async { chat(&server, "kimi-k2").await.0 == 200 }).await;
    let health = health_of(&server, &index).await;
    assert_eq!(health["health"], "healthy", "{health}");
    assert!(health["evidence"].as_array().unwrap().iter().all(|e| e["source"] != "refresh"), "{health}");
}

#[tokio::test]
async fn a_429_with_a_reset_time_cools_the_account_down_until_then() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("a", "tok-a", json!({}))], "").await;
    let name = "claude-a@example.com.json";
    let index = auth_file(&server, name).await["auth_index"].as_str().unwrap().to_owned();
    assert_eq!(chat(&server, MODEL).await.0, 200);
    assert_eq!(health_of(&server, &index).await["health"], "healthy");

    upstream.push_fault(Fault::status(429).retry_after(600));
    let before = chrono::Utc::now();
    assert_eq!(chat(&server, MODEL).await.0, 429);
    let entry = auth_file(&server, name).await;
    assert_eq!(entry["health"], "cooling_down", "{entry}");
    let until = chrono::DateTime::parse_from_rfc3339(entry["health_until"].as_str().unwrap()).unwrap();
    let wait = until.to_utc() - before;
    assert!(wait > chrono::Duration::seconds(590) && wait <= chrono::Duration::seconds(601), "{wait}");
    assert!(entry["health_reason"].as_str().unwrap().starts_with("Cooldown · 429"), "{entry}");

    // Resetting the cooldowns by hand ends it; the 429 itself remains a warning.
    let (status, body) = post(&server, "/reset-quota", json!({"auth_index": index})).await;
    assert_eq!(status, 200, "{body}");
    let entry = auth_file(&server, name).await;
    assert_eq!(entry["health"], "warning", "{entry}");
    assert!(entry.get("health_until").is_none());
    assert_eq!(chat(&server, MODEL).await.0, 200);
    assert_eq!(auth_file(&server, name).await["health"], "healthy");
}

const REVOKED_BODY: &str = r#"{"type":"error","error":{"type":"authentication_error","code":"token_revoked","message":"OAuth token revoked"}}"#;

#[tokio::test]
async fn without_the_opt_in_nothing_is_disabled_but_the_health_says_reauth() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("a", "tok-a", json!({}))], "").await;
    let name = "claude-a@example.com.json";
    let before = server.read(name);
    upstream.push_fault(Fault::status(401).body(REVOKED_BODY));
    assert_eq!(chat(&server, MODEL).await.0, 401);
    assert_eq!(server.read(name), before, "the file is untouched");
    let entry = auth_file(&server, name).await;
    assert_eq!(
        (entry["disabled"].as_bool(), entry["health"].as_str()),
        (Some(false), Some("needs_relogin")),
        "{entry}"
    );
    assert_eq!(entry["health_reason"], "Request · HTTP 401: token_revoked");
}

fn quota(windows: Vec<(&str, WindowKind, f64)>) -> QuotaEvidence {
    QuotaEvidence::Report(QuotaReading {
        plan: Some("plus".into()),
        windows: windows
            .into_iter()
            .map(|(id, kind, used)| QuotaWindowReading {
                id: id.into(),
                label: id.into(),
                kind,
                used_percent: Some(used),
                used: None,
                limit: None,
                resets_at: Some(chrono::Utc::now() + chrono::Duration::days(2)),
                exhausted: used >= 100.0,
                unlimited: false,
            })
            .collect(),
        observed_at: chrono::Utc::now(),
        source: QuotaOrigin::ApiQuery,
    })
}

#[tokio::test]
async fn auto_disable_records_its_owner_and_only_that_owner_or_a_person_enables() {
    let upstream = MockUpstream::start().await;
    let files =
        [claude_file("a", "tok-a", json!({"note": "keep me"})), claude_file("b", "tok-b", json!({"note": "keep me"}))];
    let server = gateway(&upstream, &files, "health:\n  auto-disable: true\n").await;
    let _tasks = server.state.spawn_health_tasks();

    // A revoked token: the account that got it is disabled by the auth issue; the request
    // itself fails over to the other account.
    upstream.push_fault(Fault::status(401).body(REVOKED_BODY));
    let (status, body) = chat(&server, MODEL).await;
    assert_eq!(status, 200, "{body}");
    let revoked_token = bearers(&upstream)[0].clone();
    let (name, other) = if revoked_token == "tok-a" {
        ("claude-a@example.com.json", "claude-b@example.com.json")
    } else {
        ("claude-b@example.com.json", "claude-a@example.com.json")
    };
    let file = on_disk(&server, name);
    assert_eq!(file["disabled"], true);
    assert_eq!(file["switchyard_disabled_by"], "auth-issue");
    assert_eq!(file["switchyard_disabled_reason"], "token_revoked");
    assert_eq!(file["note"], "keep me", "other fields are kept");
    assert_eq!(file["access_token"], revoked_token);
    assert_eq!(file["switchyard_disabled_credential"].as_str().map(str::len), Some(16));
    let entry = auth_file(&server, name).await;
    assert_eq!(
        (entry["status"].as_str(), entry["disabled_by"].as_str()),
        (Some("disabled"), Some("auth-issue")),
        "{entry}"
    );
    assert_eq!(
        (entry["health"].as_str(), entry["health_reason"].as_str()),
        (Some("disabled"), Some("Request · disabled automatically: token_revoked"))
    );
    assert_ne!(on_disk(&server, other)["disabled"], true);

    // A bare 401 never disables anything.
    upstream.push_fault(Fault::status(401));
    assert_eq!(chat(&server, MODEL).await.0, 401);
    assert_ne!(on_disk(&server, other)["disabled"], true);
    assert_eq!(auth_file(&server, other).await["health"], "warning");

    // An inspection finds the disabled account answering again, but it did not disable it:
    // it recommends an enable only a person may carry out.
    let index = auth_file(&server, name).await["auth_index"].as_str().unwrap().to_owned();
    let (status, run) = post(&server, &format!("/inspection?wait=true&auth_index={index}"), json!({})).await;
    assert_eq!(status, 200, "{run}");
    let result = &run["results"][0];
    assert_eq!((result["action"].as_str(), result["automatic"].as_bool()), (Some("enable"), Some(false)), "{run}");
    let (status, applied) = post(&server, "/inspection/apply", json!({"auth_index": index})).await;
    assert_eq!(status, 200, "{applied}");
    assert_eq!(applied["results"][0]["status"], "failed", "{applied}");
    assert!(applied["results"][0]["message"].as_str().unwrap().contains("disabled by auth-issue"), "{applied}");
    assert_eq!(on_disk(&server, name)["disabled"], true);
    // Nor may the quota.
    server.state.record_quota(name, quota(vec![("weekly", WindowKind::Long, 10.0)])).await;
    assert_eq!(on_disk(&server, name)["disabled"], true);

    // Logging in again (new tokens, the user's fields carried over) is what the auth issue was
    // waiting for: it enables the account, and the old evidence is gone.
    let mut relogin = on_disk(&server, name);
    relogin["access_token"] = json!("tok-new");
    relogin["refresh_token"] = json!("rt-new-0123456789");
    std::fs::write(server.file(name), serde_json::to_vec(&relogin).unwrap()).unwrap();
    server.state.store.rescan().await.unwrap();
    until("the re-login enables the account", || async { on_disk(&server, name)["disabled"] == false }).await;
    let file = on_disk(&server, name);
    assert!(file.get("switchyard_disabled_by").is_none() && file.get("switchyard_disabled_reason").is_none(), "{file}");
    assert_eq!(file["note"], "keep me");
    assert!(auth_file(&server, name).await.get("disabled_by").is_none());

    // A person's disable is theirs: the quota cannot undo it, the person can.
    let set = |disabled: bool| {
        server.mgmt(Method::PATCH, "/auth-files/status").json(&json!({"name": name, "disabled": disabled}))
    };
    let (status, body) = json(set(true).send().await.unwrap()).await;
    assert_eq!((status, body["disabled"].as_bool()), (200, Some(true)), "{body}");
    assert_eq!(on_disk(&server, name)["switchyard_disabled_by"], "manual");
    assert_eq!(auth_file(&server, name).await["health_reason"], "Manual · disabled via management API");
    server.state.record_quota(name, quota(vec![("weekly", WindowKind::Long, 10.0)])).await;
    assert_eq!(on_disk(&server, name)["disabled"], true);
    assert_eq!(json(set(false).send().await.unwrap()).await.0, 200);
    let file = on_disk(&server, name);
    assert_eq!((file["disabled"].as_bool(), file.get("switchyard_disabled_by")), (Some(false), None));

    // An exhausted quota disables (owner `quota`); room again enables what the quota disabled.
    let recorded = server
        .state
        .record_quota(name, quota(vec![("5h", WindowKind::Short, 40.0), ("weekly", WindowKind::Long, 100.0)]))
        .await;
    assert!(matches!(recorded.map(|e| e.signal), Some(switchyard_health::Signal::Exhausted { .. })));
    let file = on_disk(&server, name);
    assert_eq!((file["disabled"].as_bool(), file["switchyard_disabled_by"].as_str()), (Some(true), Some("quota")));
    assert_eq!(auth_file(&server, name).await["disabled_by"], "quota");
    server
        .state
        .record_quota(name, quota(vec![("5h", WindowKind::Short, 40.0), ("weekly", WindowKind::Long, 5.0)]))
        .await;
    let file = on_disk(&server, name);
    assert_eq!((file["disabled"].as_bool(), file.get("switchyard_disabled_by")), (Some(false), None));
    let entry = auth_file(&server, name).await;
    assert_eq!(
        (entry["health"].as_str(), entry["health_reason"].as_str()),
        (Some("healthy"), Some("Quota · 5h 40 %, weekly 5 %"))
    );
}

#[tokio::test]
async fn config_keys_show_their_health_too() {
    let upstream = MockUpstream::start().await;
    let extra = format!("claude-api-key:\n  - api-key: sk-ant-health-0001\n    base-url: {}\n", upstream.base());
    let server = gateway(&upstream, &[], &extra).await;
    assert_eq!(chat(&server, MODEL).await.0, 200);
    let (_, body) = json(server.mgmt(Method::GET, "/auth-files").send().await.unwrap()).await;
    let entry: &Value = body["files"].as_array().unwrap().iter().find(|f| f["name"] == "claude-api-key[0]").unwrap();
    assert_eq!(entry["health"], "healthy", "{entry}");
    let index = entry["auth_index"].as_str().unwrap();
    let health = health_of(&server, index).await;
    assert_eq!(health["health"], "healthy");
    assert!(!health.to_string().contains("sk-ant-health-0001"), "{health}");
}
