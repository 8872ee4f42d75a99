//! iFlow refresh on both paths against the mock: OAuth files (refresh grant with form + Basic,
//! then getUserInfo for the key) and cookie files (the platform key renewed when it expires
//! within 48 h), plus dead refresh tokens and cookies (re-login, file untouched) through the
//! refresher the server runs.

mod common;
mod login_engine_support;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{assert_no_leak, context};
use login_engine_support::EngineEnv;
use serde_json::{Map, Value};
use switchyard_auth::Credential;
use switchyard_auth::login::{LoginContext, LoginOptions, RefreshError, TokenRefresher};
use switchyard_providers::Provider;
use switchyard_providers::iflow::{Iflow, IflowCookie};
use switchyard_testkit::iflow::{API_KEY_PATH, CLIENT_ID, CLIENT_SECRET, Fault, MockIflow, TOKEN_PATH, USER_INFO_PATH};

fn refresher() -> std::sync::Arc<dyn TokenRefresher> {
    Iflow.refresher().expect("iFlow has a refresher")
}

/// An OAuth file as a login leaves it, for tokens the mock issued.
fn oauth_file(mock: &MockIflow) -> Credential {
    let tokens = mock.issue_tokens();
    let mut credential = Credential::new("iflow");
    let fields = credential.fields_mut();
    fields.insert("access_token".into(), tokens.access_token.into());
    fields.insert("refresh_token".into(), tokens.refresh_token.into());
    fields.insert("expired".into(), (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339().into());
    fields.insert("api_key".into(), "sk-old-key-0000000000000000000000".into());
    fields.insert("email".into(), "iflow-user@example.com".into());
    fields.insert("cookie".into(), "".into());
    credential
}

fn keys(fields: &Map<String, Value>) -> Vec<&str> {
    fields.keys().map(String::as_str).collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn refresh(ctx: &LoginContext, credential: &Credential) -> Result<Map<String, Value>, RefreshError> {
    refresher().refresh(ctx, credential).await
}

#[tokio::test]
async fn oauth_refresh_rotates_the_tokens_and_reads_the_key_again() {
    let mock = MockIflow::start().await;
    let ctx = context(&mock.upstream_urls_yaml());
    let file = oauth_file(&mock);
    assert_eq!(refresher().refresh_lead(), Some(Duration::from_secs(24 * 60 * 60)));

    let fields = refresh(&ctx, &file).await.expect("refresh succeeds");
    assert_eq!(keys(&fields), ["access_token", "refresh_token", "api_key", "expired", "last_refresh"]);
    let old_refresh = file.refresh_token().unwrap();
    let rotated = fields["refresh_token"].as_str().unwrap();
    assert!(rotated.starts_with("mock-iflow-rt-") && rotated != old_refresh);
    assert_ne!(fields["access_token"], file.fields()["access_token"]);
    assert_eq!(fields["api_key"], mock.oauth_api_key().as_str());

    let request = &mock.requests_to(TOKEN_PATH)[0];
    let basic = format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    assert_eq!(request.headers["authorization"], basic.as_str());
    let expected = pairs(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", old_refresh),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ]);
    assert_eq!(request.form(), expected);
    // getUserInfo is asked with the new access token.
    let lookup = &mock.requests_to(USER_INFO_PATH)[0];
    let token = fields["access_token"].as_str().unwrap();
    assert_eq!(lookup.query.as_deref(), Some(format!("accessToken={token}").as_str()));

    // The spent refresh token is dead now; the server echoes it, the error does not.
    let error = refresh(&ctx, &file).await.expect_err("a spent refresh token is refused");
    let RefreshError::Revoked(reason) = &error else { panic!("{error:?}") };
    assert!(reason.starts_with("HTTP 400: invalid_grant"), "{reason}");
    assert_no_leak(&format!("{error} {error:?}"), &[old_refresh, rotated], &["mock-iflow-rt-"]);
}

#[tokio::test]
async fn a_failed_key_lookup_after_the_refresh_keeps_the_new_tokens() {
    let mock = MockIflow::start().await;
    let ctx = context(&mock.upstream_urls_yaml());
    for fault in [Fault::UserInfoServerError, Fault::EmptyApiKey] {
        mock.set_fault(fault.clone());
        let fields = refresh(&ctx, &oauth_file(&mock)).await.expect("refresh succeeds");
        assert_eq!(keys(&fields), ["access_token", "refresh_token", "expired", "last_refresh"], "{fault:?}");
    }
}

#[tokio::test]
async fn oauth_refresh_failures_are_classified() {
    let mock = MockIflow::start().await;
    let ctx = context(&mock.upstream_urls_yaml());
    let file = oauth_file(&mock);
    mock.set_fault(Fault::RevokeRefreshTokens);
    let error = refresh(&ctx, &file).await.unwrap_err();
    assert!(matches!(&error, RefreshError::Revoked(r) if r.contains("Invalid refresh token: [redacted ")), "{error:?}");
    assert_no_leak(&error.to_string(), &[file.refresh_token().unwrap()], &["mock-iflow-rt-"]);

    mock.set_fault(Fault::RateLimit { retry_after: 90 });
    let error = refresh(&ctx, &file).await.unwrap_err();
    assert_eq!(error, RefreshError::RateLimited { retry_after: Some(Duration::from_secs(90)) });

    for fault in [Fault::TokenServerError, Fault::MalformedTokenJson] {
        mock.set_fault(fault.clone());
        let error = refresh(&ctx, &file).await.unwrap_err();
        assert!(matches!(error, RefreshError::Transient(_)), "{fault:?}: {error:?}");
    }

    let mut no_token = file.clone();
    no_token.fields_mut().insert("refresh_token".into(), "".into());
    assert_eq!(refresh(&ctx, &no_token).await.unwrap_err(), RefreshError::NoRefreshToken);
}

/// A cookie file saved by the cookie login, for an account whose key lives `key_lifetime`.
async fn cookie_file(mock: &MockIflow, env: &EngineEnv, key_lifetime: chrono::Duration) -> (String, String) {
    mock.set_key_lifetime(key_lifetime);
    let bxauth = mock.add_cookie_account("138****8000");
    let options = LoginOptions::from([("cookie".to_owned(), format!("BXAuth={bxauth}"))]);
    let imported = env.engine.import(&IflowCookie, None, &options).await.expect("cookie login");
    (imported.file_name, bxauth)
}

#[tokio::test]
async fn cookie_files_renew_their_key_when_it_expires_within_48_hours() {
    let mock = MockIflow::start().await;
    let env = EngineEnv::start(&mock.upstream_urls_yaml()).await;
    let ctx = context(&mock.upstream_urls_yaml());
    let (file, bxauth) = cookie_file(&mock, &env, chrono::Duration::hours(40)).await;
    let saved = env.credential(&file);
    let old_key = saved.str_field("api_key").unwrap().to_owned();
    let calls = mock.requests_to(API_KEY_PATH).len();

    mock.set_key_lifetime(chrono::Duration::days(30));
    let fields = refresh(&ctx, &saved).await.expect("renewal succeeds");
    assert_eq!(keys(&fields), ["api_key", "expired", "last_refresh"]);
    let new_key = fields["api_key"].as_str().unwrap();
    assert_ne!(new_key, old_key);
    assert!(mock.key_is_live(new_key) && !mock.key_is_live(&old_key));
    assert_eq!(fields["expired"], mock.cookie_expire_time(&bxauth).unwrap().as_str());

    let renewals = &mock.requests_to(API_KEY_PATH)[calls..];
    assert_eq!(renewals.len(), 1, "one POST, no GET: the file knows the account name");
    assert_eq!(renewals[0].method, "POST");
    assert_eq!(renewals[0].headers["cookie"], format!("BXAuth={bxauth};").as_str(), "the stored pair only");
    assert_eq!(renewals[0].json(), serde_json::json!({"name": "138****8000"}));
}

#[tokio::test]
async fn cookie_files_far_from_expiry_are_left_alone() {
    let mock = MockIflow::start().await;
    let env = EngineEnv::start(&mock.upstream_urls_yaml()).await;
    let ctx = context(&mock.upstream_urls_yaml());
    let (file, _) = cookie_file(&mock, &env, chrono::Duration::days(30)).await;
    let calls = mock.requests().len();
    let fields = refresh(&ctx, &env.credential(&file)).await.expect("nothing to do is no failure");
    assert!(fields.is_empty(), "{fields:?}");
    assert_eq!(mock.requests().len(), calls, "no call to the platform");
}

#[tokio::test]
async fn a_dead_cookie_needs_a_new_login_and_the_file_stays_as_it_was() {
    let mock = MockIflow::start().await;
    let env = EngineEnv::start(&mock.upstream_urls_yaml()).await;
    let (file, bxauth) = cookie_file(&mock, &env, chrono::Duration::hours(1)).await;
    mock.kill_cookie(&bxauth);
    let before = env.read(&file);

    let refresher = env.refresher();
    let error = refresher.force_refresh(&file).await.unwrap_err();
    let RefreshError::Revoked(reason) = &error else { panic!("{error:?}") };
    assert!(reason.starts_with("iFlow platform refused the cookie: "), "{reason}");
    assert!(!reason.contains(&bxauth));
    assert_eq!(env.read(&file), before, "the file is not touched");
    assert_eq!(refresher.state(&file).and_then(|s| s.needs_relogin), Some(reason.clone()));
}

#[tokio::test]
async fn a_forced_refresh_of_an_oauth_file_merges_only_the_changed_fields() {
    let mock = MockIflow::start().await;
    let env = EngineEnv::start(&mock.upstream_urls_yaml()).await;
    let mut file = oauth_file(&mock);
    file.fields_mut().insert("note".into(), "work account".into());
    file.fields_mut().insert("priority".into(), 3.into());
    env.store.save("iflow-iflow-user@example.com.json", &file).await.unwrap();

    env.refresher().force_refresh("iflow-iflow-user@example.com.json").await.expect("refresh succeeds");
    let saved = env.credential("iflow-iflow-user@example.com.json");
    assert_ne!(saved.refresh_token(), file.refresh_token());
    assert_eq!(saved.str_field("api_key"), Some(mock.oauth_api_key().as_str()));
    for kept in ["note", "priority", "email", "cookie", "type"] {
        assert_eq!(saved.fields()[kept], file.fields()[kept], "{kept}");
    }
    assert_eq!(env.mode("iflow-iflow-user@example.com.json"), 0o600);
}
