//! The Gemini CLI login and refresh, driven through the provider traits against the Google mock.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{GoogleHarness, assert_clean, field, google_options as options, query_value as query, rfc3339};
use serde_json::json;
use switchyard_auth::Credential;
use switchyard_auth::login::{LoginError, LoginSpec, RefreshError};
use switchyard_testkit::google::{
    self, GEMINI_CLI_CLIENT_ID, GEMINI_CLI_CLIENT_SECRET, LOAD_CODE_ASSIST_PATH, MockGoogle, ONBOARD_USER_PATH,
    PROJECTS_PATH, TOKEN_PATH, TokenFault,
};

const STATE: &str = "gem-1700000000000000000";
const EMAIL: &str = "jane.doe@example.com";
const SCOPES: [&str; 3] = [
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
];

async fn harness() -> GoogleHarness {
    GoogleHarness::start("gemini-cli", STATE).await
}

fn onboarded_projects(google: &MockGoogle) -> Vec<String> {
    google.requests_to(ONBOARD_USER_PATH).iter().map(|r| r.json()["cloudaicompanionProject"].to_string()).collect()
}

#[tokio::test]
async fn login_metadata_and_authorize_url() {
    let h = harness().await;
    let spec = LoginSpec {
        name: "gemini-cli",
        aliases: &["gemini", "google"],
        callback_route: "google",
        default_callback_port: 8085,
        callback_path: "/oauth2callback",
        pkce: false,
    };
    assert_eq!(h.login.spec(), spec);
    assert_eq!(h.redirect_uri(), "http://localhost:8085/oauth2callback");

    let url = h.authorize_url(&options(&[]));
    assert_eq!(url.path(), google::AUTHORIZE_V1_PATH);
    let params: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    let scope = SCOPES.join(" ");
    let expected = [
        ("client_id", GEMINI_CLI_CLIENT_ID),
        ("redirect_uri", "http://localhost:8085/oauth2callback"),
        ("response_type", "code"),
        ("scope", scope.as_str()),
        ("state", STATE),
        ("access_type", "offline"),
        ("prompt", "consent"),
    ];
    assert_eq!(params, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));

    // Google answers with a redirect to the callback: state first, then code, then scope.
    let location = h.consent(&options(&[])).await;
    assert!(location.as_str().starts_with("http://localhost:8085/oauth2callback?"), "{location}");
    let keys: Vec<String> = location.query_pairs().map(|(k, _)| k.into_owned()).collect();
    assert_eq!(keys[..3], ["state", "code", "scope"]);
    assert_eq!(query(&location, "state").as_deref(), Some(STATE));
}

#[tokio::test]
async fn login_onboards_the_first_listed_project() {
    let h = harness().await;
    h.google.set_projects(&["alpha-project", "beta-project"]);
    h.google.set_onboard_pending_polls(2);
    let (code, outcome) = h.login(&options(&[])).await;
    let outcome = outcome.expect("login succeeds");

    assert_eq!(outcome.file_name, format!("gemini-{EMAIL}-alpha-project.json"));
    let credential = &outcome.credential;
    assert_eq!(credential.file_type(), Some("gemini"));
    assert_eq!(credential.provider().as_deref(), Some("gemini-cli"));
    assert_eq!(field(credential, "email"), EMAIL);
    assert_eq!(field(credential, "project_id"), "alpha-project");
    assert_eq!(field(credential, "auto"), true);
    assert_eq!(field(credential, "checked"), true);

    let token = field(credential, "token");
    let access_token = token["access_token"].as_str().expect("access token");
    let refresh_token = token["refresh_token"].as_str().expect("refresh token");
    assert!(access_token.starts_with("ya29.") && refresh_token.starts_with("1//"));
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], google::EXPIRES_IN);
    let expiry = rfc3339(&token["expiry"]);
    assert!(expiry > Utc::now() + chrono::Duration::minutes(55) && expiry <= Utc::now() + chrono::Duration::hours(1));
    assert_eq!(token["token_uri"], h.google.url(TOKEN_PATH));
    assert_eq!(token["client_id"], GEMINI_CLI_CLIENT_ID);
    assert_eq!(token["client_secret"], GEMINI_CLI_CLIENT_SECRET);
    assert_eq!(token["scopes"], json!(SCOPES));
    assert_eq!(token["universe_domain"], "googleapis.com");
    // Top-level mirrors of the nested token.
    for key in ["access_token", "token_type", "refresh_token", "expiry"] {
        assert_eq!(field(credential, key), &token[key], "{key}");
    }
    assert_eq!(credential.expiry(), Some(expiry));

    // The code exchange: a form with the client secret and no PKCE.
    let exchange = &h.google.requests_to(TOKEN_PATH)[0];
    assert_eq!(exchange.form_value("grant_type").as_deref(), Some("authorization_code"));
    assert_eq!(exchange.form_value("code"), Some(code));
    assert_eq!(exchange.form_value("client_id").as_deref(), Some(GEMINI_CLI_CLIENT_ID));
    assert_eq!(exchange.form_value("client_secret").as_deref(), Some(GEMINI_CLI_CLIENT_SECRET));
    assert_eq!(exchange.form_value("redirect_uri").as_deref(), Some("http://localhost:8085/oauth2callback"));
    assert_eq!(exchange.form_value("code_verifier"), None);

    // Code Assist: load with the chosen project and the Gemini CLI's headers, then onboard until done.
    let load = &h.google.requests_to(LOAD_CODE_ASSIST_PATH)[0];
    let metadata = json!({"ideType": "IDE_UNSPECIFIED", "platform": "PLATFORM_UNSPECIFIED", "pluginType": "GEMINI"});
    assert_eq!(load.json(), json!({"metadata": metadata, "cloudaicompanionProject": "alpha-project"}));
    assert_eq!(load.headers["user-agent"], "google-api-nodejs-client/9.15.1");
    assert_eq!(load.headers["x-goog-api-client"], "gl-node/22.17.0");
    assert_eq!(
        load.headers["client-metadata"],
        "ideType=IDE_UNSPECIFIED,platform=PLATFORM_UNSPECIFIED,pluginType=GEMINI"
    );
    assert_eq!(load.headers["authorization"], format!("Bearer {access_token}"));
    let onboards = h.google.requests_to(ONBOARD_USER_PATH);
    assert_eq!(onboards.len(), 3, "two pending answers, then done");
    assert_eq!(
        onboards[0].json(),
        json!({"tierId": "free-tier", "metadata": metadata, "cloudaicompanionProject": "alpha-project"})
    );

    // The API was disabled, so it was enabled.
    let service = google::service_path("alpha-project");
    assert_eq!(h.google.count(&service), 1);
    assert_eq!(h.google.count(&format!("{service}:enable")), 1);
}

#[tokio::test]
async fn explicit_project_is_kept_and_an_enabled_api_left_alone() {
    let h = harness().await;
    h.google.set_api_enabled(true);
    h.google.set_default_tier(None);
    let outcome = h.login_ok(&options(&[("project_id", " my-explicit-project ")])).await;

    assert_eq!(outcome.file_name, format!("gemini-{EMAIL}-my-explicit-project.json"));
    assert_eq!(field(&outcome.credential, "project_id"), "my-explicit-project");
    assert_eq!(field(&outcome.credential, "auto"), false);
    assert_eq!(h.google.count(PROJECTS_PATH), 0, "an explicit project needs no listing");
    let onboard = &h.google.requests_to(ONBOARD_USER_PATH)[0];
    assert_eq!(onboard.json()["tierId"], "legacy-tier", "no default tier falls back to legacy-tier");
    let service = google::service_path("my-explicit-project");
    assert_eq!(h.google.count(&service), 1);
    assert_eq!(h.google.count(&format!("{service}:enable")), 0);
}

#[tokio::test]
async fn all_onboards_every_listed_project_into_one_file() {
    let h = harness().await;
    h.google.set_projects(&["p-one", "p-two", "p-three"]);
    h.google.set_onboard_pending_polls(1);
    let outcome = h.login_ok(&options(&[("project_id", "ALL")])).await;

    assert_eq!(outcome.file_name, format!("gemini-{EMAIL}-all.json"));
    assert_eq!(field(&outcome.credential, "project_id"), "p-one,p-two,p-three");
    assert_eq!(field(&outcome.credential, "auto"), false);
    assert_eq!(field(&outcome.credential, "checked"), true);
    assert_eq!(
        onboarded_projects(&h.google),
        ["p-one", "p-one", "p-two", "p-two", "p-three", "p-three"].map(|p| format!("\"{p}\""))
    );
    for project in ["p-one", "p-two", "p-three"] {
        assert_eq!(h.google.count(&format!("{}:enable", google::service_path(project))), 1, "{project}");
    }
}

#[tokio::test]
async fn without_cloud_projects_the_code_assist_project_is_used() {
    let h = harness().await;
    h.google.set_projects(&[]);
    h.google.set_code_assist_project(Some("assist-managed-42"));
    let outcome = h.login_ok(&options(&[])).await;
    assert_eq!(outcome.file_name, format!("gemini-{EMAIL}-assist-managed-42.json"));
    assert_eq!(field(&outcome.credential, "auto"), true);
    assert_eq!(onboarded_projects(&h.google), ["\"assist-managed-42\""]);

    // Neither a Cloud project nor a Code Assist one: nothing to onboard.
    h.google.set_code_assist_project(None);
    let error = h.login_err(&options(&[])).await;
    assert!(error.to_string().starts_with("Failed to resolve project ID"), "{error}");
}

#[tokio::test]
async fn refresh_updates_the_nested_token_and_the_mirrors() {
    let h = harness().await;
    assert_eq!(h.refresher.refresh_lead(), None, "Gemini CLI refreshes on use only");
    let mut credential = h.login_ok(&options(&[])).await.credential;
    let token = credential.fields_mut()["token"].as_object_mut().unwrap();
    token.insert("custom".into(), json!("kept"));
    let old_access = credential.access_token().unwrap().to_owned();
    let old_refresh = credential.refresh_token().unwrap().to_owned();

    let update = h.refresher.refresh(&h.ctx, &credential).await.expect("refresh succeeds");

    let refresh = h.google.requests_to(TOKEN_PATH).pop().unwrap();
    assert_eq!(refresh.form_value("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(refresh.form_value("refresh_token").as_deref(), Some(old_refresh.as_str()));
    assert_eq!(refresh.form_value("client_id").as_deref(), Some(GEMINI_CLI_CLIENT_ID));
    assert_eq!(refresh.form_value("client_secret").as_deref(), Some(GEMINI_CLI_CLIENT_SECRET));

    let token = update["token"].as_object().expect("whole token object returned");
    let new_access = token["access_token"].as_str().unwrap().to_owned();
    assert_ne!(new_access, old_access);
    assert_eq!(token["refresh_token"], old_refresh, "Google does not rotate refresh tokens");
    assert_eq!(token["custom"], "kept", "unknown nested keys survive");
    assert_eq!(token["client_id"], GEMINI_CLI_CLIENT_ID);
    assert!(rfc3339(&token["expiry"]) > Utc::now() + chrono::Duration::minutes(55));
    for key in ["access_token", "token_type", "refresh_token", "expiry"] {
        assert_eq!(update[key], token[key], "{key} mirror");
    }
    assert!(rfc3339(&update["last_refresh"]) <= Utc::now());

    // The refresher merges shallowly; the result reads back as the new token.
    credential.fields_mut().extend(update);
    assert_eq!(credential.access_token(), Some(new_access.as_str()));
    assert_eq!(credential.refresh_token(), Some(old_refresh.as_str()));
    assert_eq!(field(&credential, "project_id"), "gen-lang-client-0123456789");
}

#[tokio::test]
async fn refresh_failures_are_classified() {
    let h = harness().await;
    let credential = h.login_ok(&options(&[])).await.credential;
    let refresh_token = credential.refresh_token().unwrap().to_owned();

    h.google.set_token_fault(Some(TokenFault::RateLimited { retry_after: 7 }));
    let error = h.refresher.refresh(&h.ctx, &credential).await.unwrap_err();
    assert_eq!(error, RefreshError::RateLimited { retry_after: Some(Duration::from_secs(7)) });

    h.google.set_token_fault(Some(TokenFault::ServerError));
    let error = h.refresher.refresh(&h.ctx, &credential).await.unwrap_err();
    assert!(matches!(&error, RefreshError::Transient(m) if m.contains("500")), "{error}");

    h.google.set_token_fault(Some(TokenFault::Malformed));
    let error = h.refresher.refresh(&h.ctx, &credential).await.unwrap_err();
    assert!(matches!(error, RefreshError::Transient(_)), "{error}");

    h.google.set_token_fault(None);
    h.google.revoke_refresh_tokens();
    let error = h.refresher.refresh(&h.ctx, &credential).await.unwrap_err();
    assert!(matches!(&error, RefreshError::Revoked(m) if m.contains("invalid_grant")), "{error}");
    assert_clean(&error.to_string(), &refresh_token);

    let mut bare = Credential::new("gemini");
    bare.fields_mut().insert("email".into(), json!(EMAIL));
    assert_eq!(h.refresher.refresh(&h.ctx, &bare).await.unwrap_err(), RefreshError::NoRefreshToken);
}

#[tokio::test]
async fn denied_consent_redirects_with_the_error() {
    let h = harness().await;
    h.google.deny_consent(true);
    let location = h.consent(&options(&[])).await;
    assert!(location.as_str().starts_with(&h.redirect_uri()));
    assert_eq!(query(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(query(&location, "state").as_deref(), Some(STATE));
    assert_eq!(query(&location, "code"), None);
}

#[tokio::test]
async fn token_endpoint_failures_fail_the_login() {
    let h = harness().await;
    let opts = options(&[]);
    for (fault, expected) in [(TokenFault::ServerError, "HTTP 500"), (TokenFault::Malformed, "malformed")] {
        let code = query(&h.consent(&opts).await, "code").unwrap();
        h.google.set_token_fault(Some(fault));
        let Err(error) = h.finish(&code, &opts).await else { panic!("login succeeded despite {fault:?}") };
        assert!(matches!(error, LoginError::TokenExchange(_)), "{error}");
        assert!(error.to_string().contains(expected), "{error}");
        assert_clean(&error.to_string(), &code);
    }

    // Codes are single-use.
    h.google.set_token_fault(None);
    let code = query(&h.consent(&opts).await, "code").unwrap();
    assert!(h.finish(&code, &opts).await.is_ok());
    let Err(error) = h.finish(&code, &opts).await else { panic!("a reused code worked") };
    assert!(matches!(&error, LoginError::TokenExchange(m) if m.contains("invalid_grant")), "{error}");
    assert_clean(&error.to_string(), &code);
}

#[tokio::test]
async fn onboarding_that_never_finishes_fails_clearly() {
    let h = harness().await;
    h.google.set_onboard_pending_polls(u32::MAX);
    let error = h.login_err(&options(&[])).await;
    assert!(error.to_string().starts_with("Failed to complete Gemini CLI onboarding"), "{error}");
    assert_eq!(h.google.count(ONBOARD_USER_PATH), 12, "polling is bounded");
}

#[tokio::test]
async fn code_assist_refusal_fails_onboarding() {
    let h = harness().await;
    h.google.deny_code_assist(true);
    let error = h.login_err(&options(&[])).await;
    let message = error.to_string();
    assert!(message.starts_with("Failed to complete Gemini CLI onboarding: loadCodeAssist"), "{message}");
    assert!(message.contains("The caller does not have permission"), "{message}");
}

#[tokio::test]
async fn refused_api_enable_fails_clearly() {
    let h = harness().await;
    h.google.refuse_api_enable(true);
    let error = h.login_err(&options(&[])).await;
    let message = error.to_string();
    assert!(message.starts_with("Cloud AI API not enabled for project gen-lang-client-0123456789"), "{message}");
    assert!(message.contains("Permission denied to enable service"), "{message}");
}

#[tokio::test]
async fn userinfo_without_email_is_an_identity_error() {
    let h = harness().await;
    h.google.set_email(None);
    let error = h.login_err(&options(&[])).await;
    assert!(matches!(error, LoginError::Identity(_)), "{error}");
    assert_eq!(h.google.count(LOAD_CODE_ASSIST_PATH), 0, "nothing is onboarded for an unknown account");
}
