//! The Antigravity login and refresh, driven through the provider traits against the Google mock.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{GoogleHarness, assert_clean, field, google_options, query_value as query, rfc3339};
use serde_json::json;
use switchyard_auth::login::{LoginError, LoginOptions, LoginSpec, RefreshError};
use switchyard_testkit::google::{
    self, ANTIGRAVITY_CLIENT_ID, ANTIGRAVITY_CLIENT_SECRET, LOAD_CODE_ASSIST_PATH, ONBOARD_USER_PATH, TOKEN_PATH,
    TokenFault, USERINFO_V2_PATH,
};

const STATE: &str = "0123456789abcdef0123456789abcdef";
const EMAIL: &str = "jane.doe@example.com";
const SCOPES: [&str; 5] = [
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
    "https://www.googleapis.com/auth/cclog",
    "https://www.googleapis.com/auth/experimentsandconfigs",
];

async fn harness() -> GoogleHarness {
    GoogleHarness::start("antigravity", STATE).await
}

/// Onboarding polls are not slowed down.
fn options() -> LoginOptions {
    google_options(&[])
}

#[tokio::test]
async fn login_metadata_and_authorize_url() {
    let h = harness().await;
    let spec = LoginSpec {
        name: "antigravity",
        aliases: &["anti-gravity"],
        callback_route: "antigravity",
        default_callback_port: 51121,
        callback_path: "/oauth-callback",
        pkce: false,
    };
    assert_eq!(h.login.spec(), spec);
    assert_eq!(h.redirect_uri(), "http://localhost:51121/oauth-callback");

    let url = h.authorize_url(&options());
    assert_eq!(url.path(), google::AUTHORIZE_V2_PATH);
    assert_eq!(query(&url, "client_id").as_deref(), Some(ANTIGRAVITY_CLIENT_ID));
    assert_eq!(query(&url, "redirect_uri").as_deref(), Some("http://localhost:51121/oauth-callback"));
    assert_eq!(query(&url, "response_type").as_deref(), Some("code"));
    assert_eq!(query(&url, "scope"), Some(SCOPES.join(" ")));
    assert_eq!(query(&url, "state").as_deref(), Some(STATE));
    assert_eq!(query(&url, "access_type").as_deref(), Some("offline"));
    assert_eq!(query(&url, "prompt").as_deref(), Some("consent"));
    assert_eq!(query(&url, "code_challenge"), None);

    let location = h.consent(&options()).await;
    assert!(location.as_str().starts_with("http://localhost:51121/oauth-callback?state="), "{location}");
    assert!(query(&location, "code").is_some());
}

#[tokio::test]
async fn login_takes_the_project_code_assist_reports() {
    let h = harness().await;
    h.google.set_code_assist_project(Some("ag-project-7"));
    let before = Utc::now().timestamp_millis();
    let outcome = h.login_ok(&options()).await;

    assert_eq!(outcome.file_name, format!("antigravity-{EMAIL}.json"));
    let credential = &outcome.credential;
    assert_eq!(credential.file_type(), Some("antigravity"));
    assert_eq!(field(credential, "email"), EMAIL);
    assert_eq!(field(credential, "project_id"), "ag-project-7");
    assert_eq!(field(credential, "disabled"), false);
    assert!(field(credential, "access_token").as_str().unwrap().starts_with("ya29."));
    assert!(field(credential, "refresh_token").as_str().unwrap().starts_with("1//"));
    assert_eq!(field(credential, "expires_in"), google::EXPIRES_IN);
    let timestamp = field(credential, "timestamp").as_i64().expect("unix millis");
    assert!(timestamp >= before && timestamp <= Utc::now().timestamp_millis());
    let expired = rfc3339(field(credential, "expired"));
    assert!(expired > Utc::now() + chrono::Duration::minutes(55));
    assert_eq!(credential.expiry(), Some(expired));

    let exchange = &h.google.requests_to(TOKEN_PATH)[0];
    assert_eq!(exchange.form_value("client_id").as_deref(), Some(ANTIGRAVITY_CLIENT_ID));
    assert_eq!(exchange.form_value("client_secret").as_deref(), Some(ANTIGRAVITY_CLIENT_SECRET));
    assert_eq!(exchange.form_value("redirect_uri").as_deref(), Some("http://localhost:51121/oauth-callback"));
    assert_eq!(h.google.count(USERINFO_V2_PATH), 1);
    let load = &h.google.requests_to(LOAD_CODE_ASSIST_PATH)[0];
    assert_eq!(load.json(), json!({"metadata": {"ideType": "ANTIGRAVITY"}}));
    assert!(load.headers["user-agent"].to_str().unwrap().starts_with("antigravity/"));
    assert_eq!(h.google.count(ONBOARD_USER_PATH), 0, "a reported project needs no onboarding");
}

#[tokio::test]
async fn login_onboards_when_code_assist_has_no_project() {
    let h = harness().await;
    h.google.set_onboard_pending_polls(2);
    h.google.set_managed_project("managed-ag-1");
    let outcome = h.login_ok(&options()).await;

    assert_eq!(field(&outcome.credential, "project_id"), "managed-ag-1");
    let onboards = h.google.requests_to(ONBOARD_USER_PATH);
    assert_eq!(onboards.len(), 3, "two pending answers, then done");
    let body = onboards[0].json();
    assert_eq!(body["tier_id"], "free-tier");
    assert_eq!(body["metadata"]["ide_type"], "ANTIGRAVITY");
    assert_eq!(body["metadata"]["ide_name"], "antigravity");
    assert_eq!(onboards[0].headers["x-goog-api-client"], "gl-node/22.21.1");
}

#[tokio::test]
async fn project_failures_still_save_the_login() {
    let h = harness().await;
    h.google.set_onboard_pending_polls(u32::MAX);
    let outcome = h.login_ok(&options()).await;
    assert_eq!(outcome.file_name, format!("antigravity-{EMAIL}.json"));
    assert!(outcome.credential.project_id().is_none());
    assert!(outcome.credential.access_token().is_some());
    assert_eq!(h.google.count(ONBOARD_USER_PATH), 5, "onboarding is polled at most five times");

    h.google.deny_code_assist(true);
    let outcome = h.login_ok(&options()).await;
    assert!(outcome.credential.project_id().is_none());
}

#[tokio::test]
async fn login_without_email_fails() {
    let h = harness().await;
    h.google.set_email(None);
    let code = query(&h.consent(&options()).await, "code").unwrap();
    let Err(error) = h.finish(&code, &options()).await else { panic!("login without email succeeded") };
    assert!(matches!(error, LoginError::Identity(_)), "{error}");
    assert_clean(&error.to_string(), &code);
}

#[tokio::test]
async fn refresh_merges_the_new_access_token_and_keeps_the_refresh_token() {
    let h = harness().await;
    assert_eq!(h.refresher.refresh_lead(), Some(Duration::from_secs(300)));
    let mut credential = h.login_ok(&options()).await.credential;
    let old_access = credential.access_token().unwrap().to_owned();
    let old_refresh = credential.refresh_token().unwrap().to_owned();

    let update = h.refresher.refresh(&h.ctx, &credential).await.expect("refresh succeeds");
    let refresh = h.google.requests_to(TOKEN_PATH).pop().unwrap();
    assert_eq!(refresh.form_value("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(refresh.form_value("refresh_token").as_deref(), Some(old_refresh.as_str()));
    assert_eq!(refresh.form_value("client_secret").as_deref(), Some(ANTIGRAVITY_CLIENT_SECRET));

    let mut keys: Vec<&str> = update.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["access_token", "expired", "expires_in", "last_refresh", "timestamp"]);
    assert_ne!(update["access_token"], old_access);
    assert!(rfc3339(&update["expired"]) > Utc::now() + chrono::Duration::minutes(55));

    credential.fields_mut().extend(update);
    assert_ne!(credential.access_token(), Some(old_access.as_str()));
    assert_eq!(credential.refresh_token(), Some(old_refresh.as_str()), "Google does not rotate refresh tokens");
    assert_eq!(field(&credential, "email"), EMAIL);
}

#[tokio::test]
async fn refresh_failures_are_classified() {
    let h = harness().await;
    let credential = h.login_ok(&options()).await.credential;
    let refresh_token = credential.refresh_token().unwrap().to_owned();

    h.google.set_token_fault(Some(TokenFault::ServerError));
    let error = h.refresher.refresh(&h.ctx, &credential).await.unwrap_err();
    assert!(matches!(error, RefreshError::Transient(_)), "{error}");

    h.google.set_token_fault(None);
    h.google.revoke_refresh_tokens();
    let error = h.refresher.refresh(&h.ctx, &credential).await.unwrap_err();
    assert_eq!(error, RefreshError::Revoked("HTTP 400: invalid_grant: Token has been expired or revoked.".into()));
    assert_clean(&error.to_string(), &refresh_token);
}

#[tokio::test]
async fn consent_and_token_failures() {
    let h = harness().await;
    h.google.deny_consent(true);
    let location = h.consent(&options()).await;
    assert_eq!(query(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&location, "code"), None);

    h.google.deny_consent(false);
    for fault in [TokenFault::ServerError, TokenFault::Malformed] {
        let code = query(&h.consent(&options()).await, "code").unwrap();
        h.google.set_token_fault(Some(fault));
        let Err(error) = h.finish(&code, &options()).await else { panic!("login succeeded despite {fault:?}") };
        assert!(matches!(error, LoginError::TokenExchange(_)), "{error}");
        assert_clean(&error.to_string(), &code);
        h.google.set_token_fault(None);
    }
}
