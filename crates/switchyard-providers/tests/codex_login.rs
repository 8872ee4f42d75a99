//! Codex login and refresh through the provider traits, against the mock OpenAI auth server.

mod common;

use std::time::Duration;

use chrono::Utc;
use common::{PkceHarness, query_value};
use sha2::{Digest, Sha256};
use switchyard_auth::Credential;
use switchyard_auth::login::{LoginError, RefreshError};
use switchyard_providers::codex::{Codex, codex_file_name};
use switchyard_testkit::openai::{self as mock, AUTHORIZE_PATH, Account, CLIENT_ID, Fault, MockOpenAiAuth, TOKEN_PATH};
use url::Url;

type Harness = PkceHarness<MockOpenAiAuth>;

impl Harness {
    async fn start() -> Harness {
        let mock = MockOpenAiAuth::start().await;
        let yaml = mock.upstream_urls_yaml();
        Harness::new(mock, &yaml, &Codex)
    }
}

fn hash8(account_id: &str) -> String {
    hex::encode(Sha256::digest(account_id.as_bytes()))[..8].to_owned()
}

fn saved_credential(tokens: &mock::IssuedTokens) -> Credential {
    common::saved_credential("codex", tokens)
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn assert_no_secrets(message: &str, secrets: &[&str]) {
    common::assert_no_leak(message, secrets, &["mock-openai-"]);
}

#[tokio::test]
async fn login_exchanges_the_code_as_a_form_and_names_the_file_after_account_and_plan() {
    let h = Harness::start().await;

    let authorize = Url::parse(&h.login.authorize_url(&h.ctx, &h.request()).unwrap()).unwrap();
    assert_eq!(authorize.as_str().split('?').next().unwrap(), h.mock.url(AUTHORIZE_PATH));
    let params: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    let expected = pairs(&[
        ("client_id", CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", "http://localhost:1455/auth/callback"),
        ("scope", "openid email profile offline_access"),
        ("state", &h.state),
        ("code_challenge", &h.pkce.challenge),
        ("code_challenge_method", "S256"),
        ("prompt", "login"),
        ("id_token_add_organizations", "true"),
        ("codex_cli_simplified_flow", "true"),
    ]);
    assert_eq!(params, expected);

    let callback = h.consent().await;
    assert_eq!(query_value(&callback, "state").as_deref(), Some(h.state.as_str()));
    let code = query_value(&callback, "code").unwrap();
    let outcome = h.finish(&code).await.expect("login succeeds");

    let account = Account::default();
    let email = account.email.as_deref().unwrap();
    let account_id = account.chatgpt_account_id.as_deref().unwrap();
    assert_eq!(outcome.file_name, format!("codex-{}-{email}-plus.json", hash8(account_id)));
    assert_eq!(outcome.file_name, "codex-e13f9773-codex-user@example.com-plus.json");

    let credential = &outcome.credential;
    let keys: Vec<&str> = credential.fields().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "type",
            "id_token",
            "access_token",
            "refresh_token",
            "account_id",
            "email",
            "last_refresh",
            "expired",
            "disabled"
        ]
    );
    assert_eq!(credential.provider().as_deref(), Some("codex"));
    assert_eq!(credential.str_field("id_token").unwrap().split('.').count(), 3);
    assert!(credential.access_token().unwrap().starts_with("mock-openai-at-"));
    assert!(credential.refresh_token().unwrap().starts_with("mock-openai-rt-"));
    assert_eq!(credential.str_field("account_id"), Some(account_id));
    assert_eq!(credential.email(), Some(email));
    assert!(!credential.disabled());
    let lifetime = credential.expiry().expect("expired is a timestamp") - Utc::now();
    assert!(lifetime > chrono::Duration::days(9) && lifetime <= chrono::Duration::days(10), "{lifetime}");
    assert!((Utc::now() - credential.last_refresh().unwrap()).num_seconds().abs() < 60);

    let exchanges = h.mock.requests_to(TOKEN_PATH);
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0].headers["content-type"], "application/x-www-form-urlencoded");
    let expected = pairs(&[
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT_ID),
        ("code", &code),
        ("redirect_uri", &h.redirect_uri),
        ("code_verifier", &h.pkce.verifier),
    ]);
    assert_eq!(exchanges[0].form(), expected);
}

#[tokio::test]
async fn file_name_falls_back_when_the_id_token_lacks_account_or_plan() {
    let h = Harness::start().await;
    h.mock.set_account(Account {
        email: Some("team@example.com".into()),
        chatgpt_account_id: None,
        chatgpt_plan_type: Some("Team Plan".into()),
    });
    let outcome = h.login().await.expect("login succeeds");
    assert_eq!(outcome.file_name, "codex-team@example.com-team-plan.json");
    assert_eq!(outcome.file_name, codex_file_name("team@example.com", None, Some("Team Plan")));
    assert_eq!(outcome.credential.fields()["account_id"], "");

    h.mock.set_account(Account { chatgpt_plan_type: None, ..Account::default() });
    let outcome = h.login().await.expect("login succeeds");
    let id = Account::default().chatgpt_account_id.unwrap();
    assert_eq!(outcome.file_name, format!("codex-{}-codex-user@example.com.json", hash8(&id)));
}

#[tokio::test]
async fn an_unreadable_id_token_or_missing_email_is_an_identity_error() {
    let h = Harness::start().await;
    h.mock.set_fault(Fault::MalformedIdToken);
    let err = h.login().await.err().expect("login fails");
    assert!(matches!(err, LoginError::Identity(_)), "{err:?}");
    assert_no_secrets(&err.to_string(), &["mock-id-token-not-a-jwt"]);

    h.mock.set_fault(Fault::None);
    h.mock.set_account(Account { email: None, ..Account::default() });
    let err = h.login().await.err().expect("login fails");
    assert_eq!(err, LoginError::Identity("id_token has no email".into()));
}

#[tokio::test]
async fn a_tampered_verifier_is_a_token_exchange_error() {
    let mut h = Harness::start().await;
    let code = h.code().await;
    h.pkce.verifier.push('x');
    let err = h.finish(&code).await.err().expect("exchange fails");
    let LoginError::TokenExchange(reason) = &err else { panic!("{err:?}") };
    assert!(reason.contains("400") && reason.contains("invalid_grant"), "{reason}");
    assert_no_secrets(&err.to_string(), &[&code, &h.pkce.verifier]);
}

#[tokio::test]
async fn token_endpoint_failures_are_token_exchange_errors() {
    for (fault, expected) in [(Fault::TokenServerError, "500"), (Fault::MalformedTokenJson, "malformed JSON")] {
        let h = Harness::start().await;
        let code = h.code().await;
        h.mock.set_fault(fault.clone());
        let err = h.finish(&code).await.err().expect("exchange fails");
        let LoginError::TokenExchange(reason) = &err else { panic!("{fault:?}: {err:?}") };
        assert!(reason.contains(expected), "{fault:?}: {reason}");
        assert_no_secrets(&err.to_string(), &[&code, &h.pkce.verifier]);
    }
}

#[tokio::test]
async fn refresh_rotates_the_tokens_and_reusing_the_old_one_is_revoked() {
    let h = Harness::start().await;
    let old = h.login().await.expect("login succeeds").credential;
    let old_refresh = old.refresh_token().unwrap().to_owned();
    assert_eq!(h.refresher.refresh_lead(), Some(Duration::from_secs(5 * 24 * 60 * 60)));

    // The account moved to another plan and workspace since the login.
    let moved = Account { chatgpt_account_id: Some("mock-chatgpt-account-0002".into()), ..Account::default() };
    h.mock.set_account(moved);
    let fields = h.refresh(&old).await.expect("refresh succeeds");
    let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    assert_eq!(keys, ["access_token", "refresh_token", "id_token", "account_id", "email", "expired", "last_refresh"]);
    let rotated = fields["refresh_token"].as_str().unwrap();
    assert!(rotated.starts_with("mock-openai-rt-") && rotated != old_refresh);
    assert_ne!(fields["access_token"], old.fields()["access_token"]);
    assert_ne!(fields["id_token"], old.fields()["id_token"]);
    assert_eq!(fields["account_id"], "mock-chatgpt-account-0002");
    assert_eq!(fields["email"], "codex-user@example.com");

    let request = &h.mock.requests_to(TOKEN_PATH)[1];
    assert_eq!(request.headers["content-type"], "application/x-www-form-urlencoded");
    let expected = pairs(&[
        ("client_id", CLIENT_ID),
        ("grant_type", "refresh_token"),
        ("refresh_token", &old_refresh),
        ("scope", "openid profile email"),
    ]);
    assert_eq!(request.form(), expected);

    let err = h.refresh(&old).await.expect_err("a spent refresh token is rejected");
    let RefreshError::Revoked(reason) = &err else { panic!("{err:?}") };
    assert!(reason.starts_with("HTTP 401: refresh_token_reused"), "{reason}");
    assert_no_secrets(&err.to_string(), &[&old_refresh, rotated]);
    assert_eq!(h.mock.refresh_calls(), 2);
}

#[tokio::test]
async fn revoked_refresh_tokens_need_a_new_login() {
    let h = Harness::start().await;
    let tokens = h.mock.issue_tokens();
    h.mock.set_fault(Fault::RevokeRefreshTokens);
    let err = h.refresh(&saved_credential(&tokens)).await.expect_err("refresh fails");
    assert_eq!(err, RefreshError::Revoked("HTTP 400: invalid_grant (Refresh token revoked)".into()));
}

#[tokio::test]
async fn rate_limits_report_retry_after_unclamped() {
    let h = Harness::start().await;
    h.mock.set_fault(Fault::RateLimit { retry_after: 600 });
    let err = h.refresh(&saved_credential(&h.mock.issue_tokens())).await.expect_err("refresh fails");
    assert_eq!(err, RefreshError::RateLimited { retry_after: Some(Duration::from_secs(600)) });
}

#[tokio::test]
async fn server_errors_and_malformed_answers_are_transient() {
    let h = Harness::start().await;
    let tokens = h.mock.issue_tokens();
    for fault in [Fault::TokenServerError, Fault::MalformedTokenJson] {
        h.mock.set_fault(fault.clone());
        let err = h.refresh(&saved_credential(&tokens)).await.expect_err("refresh fails");
        assert!(matches!(err, RefreshError::Transient(_)), "{fault:?}: {err:?}");
        assert_no_secrets(&err.to_string(), &[&tokens.refresh_token]);
    }
}

#[tokio::test]
async fn an_unreadable_id_token_on_refresh_keeps_the_new_tokens() {
    let h = Harness::start().await;
    let tokens = h.mock.issue_tokens();
    h.mock.set_fault(Fault::MalformedIdToken);
    let fields = h.refresh(&saved_credential(&tokens)).await.expect("refresh succeeds");
    assert!(fields.contains_key("refresh_token") && fields.contains_key("access_token"));
    assert!(!fields.contains_key("email") && !fields.contains_key("account_id"));
}

#[tokio::test]
async fn the_mock_behaves_like_the_real_server() {
    let h = Harness::start().await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    h.mock.set_fault(Fault::DenyConsent);
    let callback = h.consent().await;
    assert_eq!(query_value(&callback, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_value(&callback, "code"), None);
    h.mock.set_fault(Fault::None);

    let url = h.login.authorize_url(&h.ctx, &h.request()).unwrap();
    for (from, to) in [
        (CLIENT_ID, "not-the-client"),
        ("code_challenge_method=S256", "code_challenge_method=plain"),
        ("redirect_uri=", "redirect_to="),
        ("%2Fauth%2Fcallback", "%2Fother"),
    ] {
        assert!(url.contains(from), "{from}");
        let response = http.get(url.replace(from, to)).send().await.unwrap();
        assert_eq!(response.status(), 400, "{from} -> {to}");
    }

    // The token endpoint takes forms only, and a code works once.
    let code = h.code().await;
    let json = serde_json::json!({"grant_type": "authorization_code", "code": code});
    let response = http.post(h.mock.url(TOKEN_PATH)).json(&json).send().await.unwrap();
    assert_eq!(response.status(), 400);
    h.finish(&code).await.expect("first use works");
    let err = h.finish(&code).await.err().expect("second use fails");
    assert!(matches!(err, LoginError::TokenExchange(_)), "{err:?}");
}
