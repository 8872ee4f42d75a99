//! Qwen Code login (device flow with PKCE) and refresh through the provider traits, the login
//! engine and the refresher, against the Qwen mock (HTTP 400 with `error` while pending,
//! `resource_url` in token answers, rotating refresh tokens).

mod common;
mod device_engine;

use std::sync::Arc;
use std::time::Duration;

use common::{assert_no_leak, context, field, rfc3339};
use device_engine::{Engine, device_login, wait_until};
use serde_json::{Value, json};
use switchyard_auth::Credential;
use switchyard_auth::login::{
    DevicePoll, LoginError, LoginOptions, RefreshError, Refresher, TokenRefresher, s256_challenge,
};
use switchyard_providers::qwen::Qwen;
use switchyard_providers::{ConfigLookup, Provider};
use switchyard_testkit::qwen::{
    CLIENT_ID, DEFAULT_RESOURCE_URL, DEVICE_CODE_PATH, DEVICE_GRANT, Fault, MockQwen, PollAnswer, SCOPE, TOKEN_MARK,
    TOKEN_PATH, VERIFICATION_URI,
};

const ALIAS: &str = "me@example.com";
const FILE: &str = "qwen-me@example.com.json";

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn with_alias(alias: &str) -> LoginOptions {
    LoginOptions::from([("alias".to_owned(), alias.to_owned())])
}

fn assert_clean(message: &str) {
    assert_no_leak(message, &[], &[TOKEN_MARK]);
}

async fn engine(qwen: &MockQwen) -> Engine {
    Engine::start(&qwen.upstream_urls_yaml()).await
}

async fn start(engine: &Engine, options: LoginOptions) -> String {
    let started = engine.start_device(device_login(&Qwen), options).await.expect("device code");
    assert!(started.state.starts_with("qwen-"), "{}", started.state);
    started.state
}

async fn failed_login(qwen: &MockQwen) -> LoginError {
    let engine = engine(qwen).await;
    let state = start(&engine, with_alias(ALIAS)).await;
    let error = engine.outcome(&state).await.expect_err("the login fails");
    assert_clean(&error.to_string());
    assert!(engine.files().is_empty(), "nothing is written: {:?}", engine.files());
    error
}

#[tokio::test]
async fn device_flow_sends_the_pkce_challenge_then_its_verifier_and_builds_the_file() {
    let qwen = MockQwen::start().await;
    let ctx = context(&qwen.upstream_urls_yaml());
    let login = device_login(&Qwen);

    let device = login.start(&ctx, &with_alias(ALIAS)).await.expect("device code");
    let verifier = device.extra["code_verifier"].as_str().expect("the verifier travels in extra").to_owned();
    assert_eq!(verifier.len(), 43, "32 random bytes, base64url");
    assert!(device.display_uri().starts_with(&format!("{VERIFICATION_URI}?user_code=")), "{}", device.display_uri());
    assert!(!format!("{device:?}").contains(&verifier), "Debug hides extra");
    let asked = &qwen.requests_to(DEVICE_CODE_PATH)[0];
    let challenge = s256_challenge(&verifier);
    let expected = pairs(&[
        ("client_id", CLIENT_ID),
        ("scope", SCOPE),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    assert_eq!(asked.form(), expected);

    // Pending comes as HTTP 400 with an `error` member.
    assert!(matches!(login.poll(&ctx, &device).await, Ok(DevicePoll::Pending)));
    qwen.approve();
    let Ok(DevicePoll::Granted(grant)) = login.poll(&ctx, &device).await else { panic!("granted") };
    let polls = qwen.requests_to(TOKEN_PATH);
    let expected = pairs(&[
        ("grant_type", DEVICE_GRANT),
        ("client_id", CLIENT_ID),
        ("device_code", &device.device_code),
        ("code_verifier", &verifier),
    ]);
    assert_eq!(polls[0].form(), expected);
    assert_eq!(polls[1].form(), expected);

    let outcome = login.finish(&ctx, &device, grant, &with_alias(ALIAS)).await.expect("finished");
    assert_eq!(outcome.file_name, FILE);
    let credential = &outcome.credential;
    let keys: Vec<&str> = credential.fields().keys().map(String::as_str).collect();
    assert_eq!(keys, ["type", "access_token", "refresh_token", "last_refresh", "resource_url", "email", "expired"]);
    assert_eq!(credential.provider().as_deref(), Some("qwen"));
    assert_eq!(credential.access_token(), qwen.last_access_token().as_deref());
    assert!(credential.refresh_token().unwrap().starts_with(TOKEN_MARK));
    assert_eq!(credential.str_field("resource_url"), Some(DEFAULT_RESOURCE_URL));
    assert_eq!(credential.email(), Some(ALIAS));
    let lifetime = rfc3339(field(credential, "expired")) - chrono::Utc::now();
    assert!(lifetime > chrono::Duration::hours(5) && lifetime <= chrono::Duration::hours(6), "{lifetime}");
    assert!((chrono::Utc::now() - rfc3339(field(credential, "last_refresh"))).num_seconds().abs() < 60);
}

#[tokio::test]
async fn a_wrong_verifier_is_refused_by_the_server_and_named_without_secrets() {
    let qwen = MockQwen::start().await;
    let ctx = context(&qwen.upstream_urls_yaml());
    let login = device_login(&Qwen);
    let mut device = login.start(&ctx, &LoginOptions::new()).await.unwrap();
    device.extra.insert("code_verifier".into(), "a-verifier-that-does-not-match-the-challenge".into());
    let error = login.poll(&ctx, &device).await.err().expect("refused");
    let text = error.to_string();
    assert!(text.contains("invalid_grant"), "{text}");
    assert!(!text.contains(&device.device_code) && !text.contains("does-not-match-the"), "{text}");
}

#[tokio::test]
async fn pending_then_slow_down_then_success_saves_a_0600_file_and_slows_polling() {
    let qwen = MockQwen::start().await;
    qwen.script_polls(&[PollAnswer::Pending, PollAnswer::SlowDown]);
    qwen.approve();
    let engine = engine(&qwen).await;
    let state = start(&engine, with_alias(ALIAS)).await;
    assert_eq!(engine.outcome(&state).await, Ok(FILE.to_owned()));

    let polls = qwen.polls();
    let answers: Vec<PollAnswer> = polls.iter().map(|(_, a)| *a).collect();
    assert_eq!(answers, [PollAnswer::Pending, PollAnswer::SlowDown, PollAnswer::Approve]);
    assert!(polls[2].0 - polls[1].0 >= Duration::from_secs(6), "slow_down adds 5 s to the 1 s interval");
    assert_eq!(engine.files(), [FILE]);
    assert_eq!(engine.mode(FILE), 0o600);
    let saved = engine.read(FILE);
    assert_eq!(saved["type"], "qwen");
    assert_eq!(saved["email"], ALIAS);
}

#[tokio::test]
async fn without_an_alias_the_file_is_named_after_the_login_time() {
    let qwen = MockQwen::start().await;
    qwen.approve();
    let engine = engine(&qwen).await;
    let before = chrono::Utc::now().timestamp_millis();
    let state = start(&engine, LoginOptions::new()).await;
    let file = engine.outcome(&state).await.expect("saved");
    let millis: i64 = file.strip_prefix("qwen-").and_then(|f| f.strip_suffix(".json")).unwrap().parse().unwrap();
    assert!(millis >= before && millis <= chrono::Utc::now().timestamp_millis(), "{file}");
    assert_eq!(engine.read(&file)["email"], file.trim_end_matches(".json"), "the stem is the label");
}

#[tokio::test]
async fn a_bad_alias_is_refused_before_anything_is_asked() {
    let qwen = MockQwen::start().await;
    let engine = engine(&qwen).await;
    let error = engine.start_device(device_login(&Qwen), with_alias("../../etc/passwd")).await.expect_err("refused");
    assert!(matches!(&error, LoginError::InvalidInput(text) if text.contains("alias may contain only")), "{error:?}");
    assert!(qwen.requests().is_empty());
}

#[tokio::test]
async fn an_expired_device_code_fails_and_writes_nothing() {
    let qwen = MockQwen::start().await;
    qwen.script_polls(&[PollAnswer::Expire]);
    assert_eq!(failed_login(&qwen).await, LoginError::DeviceCodeExpired);
}

#[tokio::test]
async fn a_denied_login_fails_and_writes_nothing() {
    let qwen = MockQwen::start().await;
    qwen.script_polls(&[PollAnswer::Pending, PollAnswer::Deny]);
    let error = failed_login(&qwen).await;
    assert!(matches!(error, LoginError::Denied(_)), "{error:?}");
}

#[tokio::test]
async fn cancel_mid_poll_stops_polling_and_writes_nothing() {
    let qwen = MockQwen::start().await;
    let engine = engine(&qwen).await;
    let state = start(&engine, with_alias(ALIAS)).await;
    wait_until("the first poll", || !qwen.polls().is_empty()).await;
    assert!(engine.engine.sessions().cancel(&state));
    assert_eq!(engine.outcome(&state).await, Err(LoginError::Cancelled));
    let polls = qwen.polls().len();
    qwen.approve();
    // Watch for three poll intervals: no poll may follow the cancel.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(qwen.polls().len(), polls);
    assert!(engine.files().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Refresh
// ---------------------------------------------------------------------------------------------

fn saved(refresh_token: &str) -> Credential {
    let mut credential = Credential::new("qwen");
    let fields = credential.fields_mut();
    for (key, value) in [
        ("access_token", "old-access-token"),
        ("refresh_token", refresh_token),
        ("last_refresh", "2025-01-01T00:00:00Z"),
        ("resource_url", "old.example"),
        ("email", ALIAS),
        ("expired", "2025-01-01T06:00:00Z"),
    ] {
        fields.insert(key.into(), value.into());
    }
    credential
}

fn refresher() -> Arc<dyn TokenRefresher> {
    Qwen.refresher().expect("Qwen has a refresher")
}

#[tokio::test]
async fn refresh_sends_the_form_and_returns_rotated_tokens_and_the_new_resource_url() {
    let qwen = MockQwen::start().await;
    let ctx = context(&qwen.upstream_urls_yaml());
    let tokens = qwen.issue_tokens();
    let fields = refresher().refresh(&ctx, &saved(&tokens.refresh_token)).await.expect("refreshed");
    let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    assert_eq!(keys, ["access_token", "refresh_token", "resource_url", "expired", "last_refresh"]);
    assert_eq!(fields["access_token"], qwen.last_access_token().unwrap().as_str());
    assert_ne!(fields["refresh_token"], tokens.refresh_token.as_str(), "rotated");
    assert_eq!(fields["resource_url"], DEFAULT_RESOURCE_URL);
    let sent = &qwen.requests_to(TOKEN_PATH)[0];
    let expected =
        pairs(&[("grant_type", "refresh_token"), ("refresh_token", &tokens.refresh_token), ("client_id", CLIENT_ID)]);
    assert_eq!(sent.form(), expected);
    assert_eq!(refresher().refresh_lead(), Some(Duration::from_secs(20 * 60)));

    // The rotated-out token is spent: using it again means the account needs a re-login.
    let error = refresher().refresh(&ctx, &saved(&tokens.refresh_token)).await.unwrap_err();
    assert!(matches!(&error, RefreshError::Revoked(text) if text.contains("invalid_grant")), "{error:?}");
    assert_clean(&error.to_string());
}

#[tokio::test]
async fn refresh_without_rotation_or_resource_url_returns_only_what_changed() {
    let qwen = MockQwen::start().await;
    qwen.set_rotation(false);
    qwen.set_resource_url(None);
    let ctx = context(&qwen.upstream_urls_yaml());
    let tokens = qwen.issue_tokens();
    let fields = refresher().refresh(&ctx, &saved(&tokens.refresh_token)).await.expect("refreshed");
    let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    assert_eq!(keys, ["access_token", "expired", "last_refresh"]);
}

#[tokio::test]
async fn refresh_failures_are_revoked_or_transient() {
    let qwen = MockQwen::start().await;
    let ctx = context(&qwen.upstream_urls_yaml());
    let tokens = qwen.issue_tokens();
    qwen.set_fault(Fault::TokenServerError);
    let error = refresher().refresh(&ctx, &saved(&tokens.refresh_token)).await.unwrap_err();
    assert!(matches!(error, RefreshError::Transient(_)), "{error:?}");
    qwen.set_fault(Fault::RevokeRefreshTokens);
    let error = refresher().refresh(&ctx, &saved(&tokens.refresh_token)).await.unwrap_err();
    assert!(matches!(error, RefreshError::Revoked(_)), "{error:?}");
    let mut none = saved("x");
    none.fields_mut().remove("refresh_token");
    assert_eq!(refresher().refresh(&ctx, &none).await, Err(RefreshError::NoRefreshToken));
}

#[tokio::test]
async fn a_forced_refresh_rewrites_only_the_token_fields_and_a_revoked_one_leaves_the_file_alone() {
    let qwen = MockQwen::start().await;
    let engine = engine(&qwen).await;
    let tokens = qwen.issue_tokens();
    let mut document: Value = serde_json::from_slice(&saved(&tokens.refresh_token).to_json_pretty()).unwrap();
    document["prefix"] = json!("team");
    document["note"] = json!("kept");
    engine.write(FILE, &document);
    engine.store.rescan().await.unwrap();
    let refresher = Refresher::new(
        engine.store.clone(),
        Arc::new(ConfigLookup(engine.config.clone())),
        engine.config.clone(),
        Arc::new(switchyard_http::HttpClients::new()),
    );

    refresher.force_refresh(FILE).await.expect("refreshed");
    let after = engine.read(FILE);
    let changed: Vec<&str> =
        ["type", "access_token", "refresh_token", "last_refresh", "resource_url", "email", "expired", "prefix", "note"]
            .into_iter()
            .filter(|key| after[*key] != document[*key])
            .collect();
    assert_eq!(changed, ["access_token", "refresh_token", "last_refresh", "resource_url", "expired"]);
    assert_eq!(after.as_object().unwrap().len(), document.as_object().unwrap().len(), "no key added or lost");
    assert_eq!(engine.mode(FILE), 0o600);

    qwen.set_fault(Fault::RevokeRefreshTokens);
    let before = engine.bytes(FILE);
    assert!(matches!(refresher.force_refresh(FILE).await, Err(RefreshError::Revoked(_))));
    assert_eq!(engine.bytes(FILE), before, "a revoked token leaves the file byte for byte");
    assert!(refresher.state(FILE).unwrap().needs_relogin.is_some());
}

#[test]
fn the_provider_declares_its_device_login_alias_ask_and_endpoints() {
    let methods = Qwen.login_methods();
    assert_eq!(methods.len(), 1);
    assert_eq!((methods[0].id, methods[0].login.name()), ("device", "qwen"));
    assert_eq!(methods[0].asks.iter().map(|a| (a.name, a.required)).collect::<Vec<_>>(), [("alias", false)]);
    let endpoints: Vec<(&str, &str)> = Qwen.endpoints().iter().map(|e| (e.name, e.default)).collect();
    assert_eq!(
        endpoints,
        [
            ("device", "https://chat.qwen.ai/api/v1/oauth2/device/code"),
            ("token", "https://chat.qwen.ai/api/v1/oauth2/token"),
            ("api", "https://portal.qwen.ai/v1"),
        ]
    );
}
