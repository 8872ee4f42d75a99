//! Kiro token refresh against the mock: Builder ID / IdC at SSO-OIDC (per region, with the
//! login's own client), social and imported files at the Kiro auth service, camelCase IDE files,
//! rotation, dead tokens.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{assert_no_leak, context, rfc3339};
use serde_json::{Value, json};
use switchyard_auth::Credential;
use switchyard_auth::login::{LoginContext, RefreshError, TokenRefresher};
use switchyard_providers::Provider;
use switchyard_providers::kiro::Kiro;
use switchyard_testkit::kiro::{MockKiro, PROFILE_ARN, TOKEN_MARK, oidc_path};

fn refresher() -> std::sync::Arc<dyn TokenRefresher> {
    Kiro.refresher().expect("Kiro refreshes")
}

fn credential(fields: Value) -> Credential {
    Credential::from_json(fields.to_string().as_bytes()).unwrap()
}

fn keys(fields: &serde_json::Map<String, Value>) -> Vec<&str> {
    fields.keys().map(String::as_str).collect()
}

async fn setup() -> (MockKiro, LoginContext) {
    let mock = MockKiro::start().await;
    let ctx = context(&mock.upstream_urls_yaml());
    (mock, ctx)
}

#[test]
fn refresh_lead_is_twenty_minutes() {
    assert_eq!(refresher().refresh_lead(), Some(Duration::from_secs(20 * 60)));
}

#[tokio::test]
async fn builder_id_refreshes_at_sso_oidc_with_its_client_and_rotates() {
    let (mock, ctx) = setup().await;
    let tokens = mock.issue_oidc_tokens("us-east-1", "cid-1", "csecret-1");
    let saved = credential(json!({
        "type": "kiro", "access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
        "expires_at": "2020-01-01T00:00:00Z", "auth_method": "builder-id", "provider": "AWS",
        "client_id": "cid-1", "client_secret": "csecret-1", "region": "us-east-1", "email": "dev@example.com",
        "prefix": "team", "note": "mine",
    }));
    let fields = refresher().refresh(&ctx, &saved).await.expect("refreshed");
    assert_eq!(keys(&fields), ["access_token", "refresh_token", "expires_at", "last_refresh"], "only token fields");
    assert_ne!(fields["access_token"], tokens.access_token.as_str());
    assert_ne!(fields["refresh_token"], tokens.refresh_token.as_str(), "rotated");
    let lifetime = rfc3339(&fields["expires_at"]) - Utc::now();
    assert!(lifetime > chrono::Duration::minutes(59), "{lifetime}");
    assert!((Utc::now() - rfc3339(&fields["last_refresh"])).num_seconds().abs() < 60);

    let sent = mock.requests_to(&oidc_path("us-east-1", "token"));
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].json(),
        json!({"clientId": "cid-1", "clientSecret": "csecret-1", "refreshToken": tokens.refresh_token, "grantType": "refresh_token"})
    );
    assert_eq!(mock.refresh_calls(), (1, 0));

    // The rotated-out refresh token is dead: needs a re-login.
    let error = refresher().refresh(&ctx, &saved).await.unwrap_err();
    assert_eq!(error, RefreshError::Revoked("HTTP 400: invalid_grant (Invalid refresh token provided)".into()));
    assert_no_leak(&error.to_string(), &[&tokens.refresh_token], &[TOKEN_MARK]);
}

#[tokio::test]
async fn idc_refreshes_in_its_own_region() {
    let (mock, ctx) = setup().await;
    let tokens = mock.issue_oidc_tokens("eu-central-1", "cid-eu", "csecret-eu");
    let saved = credential(json!({
        "type": "kiro", "access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
        "auth_method": "idc", "client_id": "cid-eu", "client_secret": "csecret-eu", "region": "eu-central-1",
        "start_url": "https://acme.awsapps.com/start",
    }));
    refresher().refresh(&ctx, &saved).await.expect("refreshed");
    assert_eq!(mock.count(&oidc_path("eu-central-1", "token")), 1);
    assert_eq!(mock.count(&oidc_path("us-east-1", "token")), 0);
}

#[tokio::test]
async fn social_refreshes_at_the_kiro_auth_service_and_returns_the_profile() {
    let (mock, ctx) = setup().await;
    let tokens = mock.issue_social_tokens();
    let saved = credential(json!({
        "type": "kiro", "access_token": tokens.access_token, "refresh_token": tokens.refresh_token,
        "profile_arn": "arn:old", "auth_method": "social", "provider": "Google",
    }));
    let fields = refresher().refresh(&ctx, &saved).await.expect("refreshed");
    assert_eq!(keys(&fields), ["access_token", "refresh_token", "expires_at", "last_refresh", "profile_arn"]);
    assert_eq!(fields["profile_arn"], PROFILE_ARN);
    let sent = mock.requests_to("/social/refreshToken");
    assert_eq!(sent[0].json(), json!({"refreshToken": tokens.refresh_token}));
    assert_eq!(sent[0].headers["user-agent"], "cli-proxy-api/1.0.0");
    assert_eq!(mock.refresh_calls(), (0, 1));
}

#[tokio::test]
async fn revoked_refresh_tokens_are_revoked_for_both_kinds() {
    let (mock, ctx) = setup().await;
    let oidc = mock.issue_oidc_tokens("us-east-1", "cid-1", "csecret-1");
    let social = mock.issue_social_tokens();
    mock.revoke_refresh_tokens(true);
    let builder = credential(json!({
        "type": "kiro", "refresh_token": oidc.refresh_token, "auth_method": "builder-id",
        "client_id": "cid-1", "client_secret": "csecret-1",
    }));
    let error = refresher().refresh(&ctx, &builder).await.unwrap_err();
    assert!(matches!(error, RefreshError::Revoked(_)), "{error:?}");
    let social = credential(json!({"type": "kiro", "refresh_token": social.refresh_token, "auth_method": "social"}));
    let error = refresher().refresh(&ctx, &social).await.unwrap_err();
    assert_eq!(error, RefreshError::Revoked("HTTP 401 (Invalid refresh token)".into()));
}

#[tokio::test]
async fn camel_case_ide_files_refresh_too() {
    let (mock, ctx) = setup().await;
    let social = mock.issue_social_tokens();
    let ide = credential(json!({
        "type": "kiro", "accessToken": social.access_token, "refreshToken": social.refresh_token,
        "authMethod": "social", "provider": "Github", "profileArn": PROFILE_ARN,
    }));
    let fields = refresher().refresh(&ctx, &ide).await.expect("social IDE file refreshed");
    assert!(fields["access_token"].is_string());
    assert_eq!(mock.refresh_calls(), (0, 1));

    let oidc = mock.issue_oidc_tokens("us-west-2", "cid-w", "csecret-w");
    let ide = credential(json!({
        "type": "kiro", "accessToken": oidc.access_token, "refreshToken": oidc.refresh_token,
        "authMethod": "IdC", "clientId": "cid-w", "clientSecret": "csecret-w", "region": "us-west-2",
    }));
    refresher().refresh(&ctx, &ide).await.expect("IdC IDE file refreshed");
    assert_eq!(mock.count(&oidc_path("us-west-2", "token")), 1);
}

#[tokio::test]
async fn credentials_that_cannot_refresh_say_why() {
    let (_mock, ctx) = setup().await;
    let no_token = credential(json!({"type": "kiro", "access_token": "x", "auth_method": "social"}));
    assert_eq!(refresher().refresh(&ctx, &no_token).await.unwrap_err(), RefreshError::NoRefreshToken);
    let no_client = credential(json!({"type": "kiro", "refresh_token": "r", "auth_method": "builder-id"}));
    assert_eq!(
        refresher().refresh(&ctx, &no_client).await.unwrap_err(),
        RefreshError::Revoked(
            "this Builder ID / IdC credential has no client_id and client_secret to refresh with; log in again".into()
        )
    );
    let bad_region = credential(json!({
        "type": "kiro", "refresh_token": "r", "auth_method": "idc", "client_id": "c", "client_secret": "s",
        "region": "evil.example/",
    }));
    assert!(matches!(refresher().refresh(&ctx, &bad_region).await.unwrap_err(), RefreshError::Revoked(_)));
}

#[tokio::test]
async fn a_typeless_ide_file_in_the_auth_dir_is_found_and_refreshed() {
    let (mock, ctx) = setup().await;
    let social = mock.issue_social_tokens();
    let ide = credential(json!({
        "accessToken": social.access_token, "refreshToken": social.refresh_token,
        "expiresAt": "2020-01-01T00:00:00.000Z", "authMethod": "social", "provider": "Google", "profileArn": PROFILE_ARN,
    }));
    let registry = switchyard_providers::Registry::new(&switchyard_config::Config::default());
    let found = registry.refresher_for(&ide).expect("the IDE file is a Kiro credential");
    let fields = found.refresh(&ctx, &ide).await.expect("refreshed");
    assert_eq!(keys(&fields), ["access_token", "refresh_token", "expires_at", "last_refresh", "profile_arn"]);
}
