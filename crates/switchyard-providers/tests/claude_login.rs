//! Claude login and refresh through the provider traits, against the mock Anthropic servers.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use common::{PkceHarness, query_value};
use switchyard_auth::Credential;
use switchyard_auth::login::{LoginContext, LoginError, RefreshError};
use switchyard_providers::claude::Claude;
use switchyard_testkit::claude::{
    self as mock, AUTHORIZE_PATH, Account, CLIENT_ID, Fault, MockClaudeAuth, PROFILE_PATH, TOKEN_PATH,
};
use url::Url;

const SCOPE: &str = "user:profile user:inference user:sessions:claude_code user:mcp_servers user:file_upload";

type Harness = PkceHarness<MockClaudeAuth>;

impl Harness {
    async fn start() -> Harness {
        let mock = MockClaudeAuth::start().await;
        let yaml = mock.upstream_urls_yaml();
        Harness::new(mock, &yaml, &Claude)
    }
}

/// A credential as saved after a login on `mock`, without going through the login.
fn saved_credential(tokens: &mock::IssuedTokens) -> Credential {
    common::saved_credential("claude", tokens)
}

fn assert_no_secrets(message: &str, secrets: &[&str]) {
    common::assert_no_leak(message, secrets, &["mock-claude-"]);
}

#[tokio::test]
async fn login_exchanges_the_code_as_json_and_builds_the_claude_credential() {
    let h = Harness::start().await;
    // The real quirk: the code arrives as `<code>#<state>`.
    h.mock.set_code_carries_state(true);

    let authorize = Url::parse(&h.login.authorize_url(&h.ctx, &h.request()).unwrap()).unwrap();
    assert_eq!(authorize.as_str().split('?').next().unwrap(), h.mock.url(AUTHORIZE_PATH));
    let params: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    let expected = [
        ("code", "true"),
        ("client_id", CLIENT_ID),
        ("response_type", "code"),
        ("redirect_uri", "http://localhost:54545/callback"),
        ("scope", SCOPE),
        ("code_challenge", h.pkce.challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", h.state.as_str()),
    ];
    assert_eq!(params, expected.map(|(k, v)| (k.to_owned(), v.to_owned())));

    let callback = h.consent().await;
    let code = query_value(&callback, "code").unwrap();
    assert_eq!(query_value(&callback, "state").as_deref(), Some(h.state.as_str()));
    let (bare_code, code_state) = code.split_once('#').expect("code carries the state");
    assert_eq!(code_state, h.state);

    let outcome = h.finish(&code).await.expect("login succeeds");
    let account = Account::default();
    assert_eq!(outcome.file_name, format!("claude-{}.json", account.email));

    let credential = &outcome.credential;
    let keys: Vec<&str> = credential.fields().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "type",
            "access_token",
            "refresh_token",
            "id_token",
            "last_refresh",
            "email",
            "account_uuid",
            "organization_uuid",
            "organization_name",
            "claude_device_ids",
            "expired",
            "disabled"
        ]
    );
    assert_eq!(credential.provider().as_deref(), Some("claude"));
    assert!(credential.access_token().unwrap().starts_with("mock-claude-at-"));
    assert!(credential.refresh_token().unwrap().starts_with("mock-claude-rt-"));
    assert_eq!(credential.fields()["id_token"], "");
    assert_eq!(credential.email(), Some(account.email.as_str()));
    assert_eq!(credential.str_field("account_uuid"), Some(account.uuid.as_str()));
    assert_eq!(credential.str_field("organization_uuid"), Some(account.organization_uuid.as_str()));
    assert_eq!(credential.str_field("organization_name"), Some(account.organization_name.as_str()));
    assert!(!credential.disabled());
    let device_ids = credential.fields()["claude_device_ids"].as_array().unwrap();
    assert_eq!(device_ids.len(), 1);
    let device_id = device_ids[0].as_str().unwrap();
    assert!(device_id.len() == 64 && device_id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')), "{device_id}");
    let expiry = credential.expiry().expect("expired is a timestamp");
    let lifetime = expiry - Utc::now();
    assert!(lifetime > chrono::Duration::hours(7) && lifetime <= chrono::Duration::hours(8), "{lifetime}");
    let last_refresh = credential.last_refresh().expect("last_refresh is a timestamp");
    assert!((Utc::now() - last_refresh).num_seconds().abs() < 60);

    let exchanges = h.mock.requests_to(TOKEN_PATH);
    assert_eq!(exchanges.len(), 1);
    let exchange = &exchanges[0];
    let header = |name: &str| exchange.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert_eq!(header("accept").as_deref(), Some("application/json, text/plain, */*"));
    assert_eq!(header("user-agent").as_deref(), Some("axios/1.15.2"));
    let body = exchange.json();
    let body_keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(body_keys, ["grant_type", "code", "redirect_uri", "client_id", "code_verifier", "state"]);
    assert_eq!(body["grant_type"], "authorization_code");
    assert_eq!(body["code"], bare_code, "the `#state` part is not sent as part of the code");
    assert_eq!(body["redirect_uri"], h.redirect_uri);
    assert_eq!(body["client_id"], CLIENT_ID);
    assert_eq!(body["code_verifier"], h.pkce.verifier);
    assert_eq!(body["state"], h.state);

    let profile = h.mock.requests_to(PROFILE_PATH);
    assert_eq!(profile.len(), 1);
    let bearer = format!("Bearer {}", credential.access_token().unwrap());
    assert_eq!(profile[0].headers["authorization"].to_str().unwrap(), bearer);
}

#[tokio::test]
async fn a_plain_code_is_exchanged_with_the_login_state() {
    let h = Harness::start().await;
    h.login().await.expect("login succeeds");
    let body = h.mock.requests_to(TOKEN_PATH)[0].json();
    assert!(body["code"].as_str().unwrap().starts_with("mock-claude-code-"));
    assert_eq!(body["state"], h.state);
}

#[tokio::test]
async fn the_profile_identity_overrides_the_token_response() {
    let h = Harness::start().await;
    h.mock.set_profile_email(Some("renamed@example.com"));
    let outcome = h.login().await.expect("login succeeds");
    assert_eq!(outcome.file_name, "claude-renamed@example.com.json");
    assert_eq!(outcome.credential.email(), Some("renamed@example.com"));
}

#[tokio::test]
async fn a_failed_profile_lookup_falls_back_to_the_token_response() {
    let h = Harness::start().await;
    h.mock.set_fault(Fault::ProfileServerError);
    let outcome = h.login().await.expect("profile failure is advisory");
    let account = Account::default();
    assert_eq!(outcome.file_name, format!("claude-{}.json", account.email));
    assert_eq!(outcome.credential.str_field("organization_name"), Some(account.organization_name.as_str()));
    assert_eq!(h.mock.requests_to(PROFILE_PATH).len(), 1);
}

#[tokio::test]
async fn no_email_anywhere_is_an_identity_error() {
    let h = Harness::start().await;
    h.mock.set_account(Account { email: String::new(), ..Account::default() });
    h.mock.set_fault(Fault::ProfileServerError);
    let err = h.login().await.err().expect("login fails");
    assert!(matches!(err, LoginError::Identity(_)), "{err:?}");
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
async fn refresh_rotates_the_tokens_and_the_old_refresh_token_dies() {
    let h = Harness::start().await;
    let outcome = h.login().await.expect("login succeeds");
    let old = outcome.credential;
    let old_refresh = old.refresh_token().unwrap().to_owned();
    assert_eq!(h.refresher.refresh_lead(), Some(Duration::from_secs(4 * 60 * 60)));

    let fields = h.refresh(&old).await.expect("refresh succeeds");
    let access = fields["access_token"].as_str().unwrap();
    let rotated = fields["refresh_token"].as_str().unwrap();
    assert!(access.starts_with("mock-claude-at-") && access != old.access_token().unwrap());
    assert!(rotated.starts_with("mock-claude-rt-") && rotated != old_refresh);
    assert_eq!(fields["email"], Account::default().email);
    assert_eq!(fields["account_uuid"], Account::default().uuid);
    let mut merged = old.clone();
    merged.fields_mut().extend(fields.clone());
    assert!(merged.expiry().unwrap() > Utc::now() + chrono::Duration::hours(7));
    assert!(merged.last_refresh().is_some());

    let request = &h.mock.requests_to(TOKEN_PATH)[1];
    assert_eq!(request.headers["content-type"], "application/json");
    let body = request.json();
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["client_id", "grant_type", "refresh_token", "scope"]);
    assert_eq!(body["grant_type"], "refresh_token");
    assert_eq!(body["refresh_token"], old_refresh);
    assert_eq!(body["client_id"], CLIENT_ID);
    assert_eq!(body["scope"], SCOPE);

    // The rotated-out token is dead now.
    let err = h.refresh(&old).await.expect_err("old refresh token is rejected");
    let RefreshError::Revoked(reason) = &err else { panic!("{err:?}") };
    assert!(reason.contains("invalid_grant"), "{reason}");
    assert_no_secrets(&err.to_string(), &[&old_refresh, rotated]);
    assert_eq!(h.mock.refresh_calls(), 2);

    merged.fields_mut().insert("refresh_token".into(), rotated.into());
    h.refresh(&merged).await.expect("the rotated token works");
}

#[tokio::test]
async fn revoked_refresh_tokens_need_a_new_login() {
    let h = Harness::start().await;
    let tokens = h.mock.issue_tokens();
    h.mock.set_fault(Fault::RevokeRefreshTokens);
    let err = h.refresh(&saved_credential(&tokens)).await.expect_err("refresh fails");
    assert_eq!(err, RefreshError::Revoked("HTTP 400: invalid_grant (Refresh token revoked)".into()));
    assert_no_secrets(&err.to_string(), &[&tokens.refresh_token]);
}

#[tokio::test]
async fn rate_limits_report_retry_after_within_cpas_clamp() {
    let h = Harness::start().await;
    let credential = saved_credential(&h.mock.issue_tokens());
    for (retry_after, expected) in [(30, 30), (1, 5), (3600, 300)] {
        h.mock.set_fault(Fault::RateLimit { retry_after });
        let err = h.refresh(&credential).await.expect_err("refresh fails");
        assert_eq!(err, RefreshError::RateLimited { retry_after: Some(Duration::from_secs(expected)) });
    }
}

#[tokio::test]
async fn server_errors_malformed_answers_and_network_failures_are_transient() {
    let h = Harness::start().await;
    let tokens = h.mock.issue_tokens();
    let credential = saved_credential(&tokens);
    for fault in [Fault::TokenServerError, Fault::MalformedTokenJson] {
        h.mock.set_fault(fault.clone());
        let err = h.refresh(&credential).await.expect_err("refresh fails");
        assert!(matches!(err, RefreshError::Transient(_)), "{fault:?}: {err:?}");
        assert_no_secrets(&err.to_string(), &[&tokens.refresh_token]);
    }

    let closed = switchyard_config::parse("upstream-urls:\n  claude:\n    token: http://127.0.0.1:1/v1/oauth/token\n")
        .unwrap()
        .config;
    let ctx = LoginContext::new(reqwest::Client::new(), Arc::new(closed));
    let err = h.refresher.refresh(&ctx, &credential).await.expect_err("refresh fails");
    assert!(matches!(err, RefreshError::Transient(_)), "{err:?}");
}

#[tokio::test]
async fn a_credential_without_refresh_token_is_not_sent() {
    let h = Harness::start().await;
    let err = h.refresh(&Credential::new("claude")).await.expect_err("refresh fails");
    assert_eq!(err, RefreshError::NoRefreshToken);
    assert!(h.mock.requests_to(TOKEN_PATH).is_empty());
}

#[tokio::test]
async fn the_mock_behaves_like_the_real_servers() {
    let h = Harness::start().await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    // Declined consent goes back to the app as `error=access_denied`.
    h.mock.set_fault(Fault::DenyConsent);
    let callback = h.consent().await;
    assert_eq!(query_value(&callback, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_value(&callback, "code"), None);
    h.mock.set_fault(Fault::None);

    // Bad authorize parameters get a 400, not a redirect.
    let url = h.login.authorize_url(&h.ctx, &h.request()).unwrap();
    for (from, to) in [
        (CLIENT_ID, "not-the-client"),
        ("code_challenge_method=S256", "code_challenge_method=plain"),
        ("redirect_uri=", "redirect_to="),
        ("%2Fcallback", "%2Fother"),
    ] {
        assert!(url.contains(from), "{from}");
        let response = http.get(url.replace(from, to)).send().await.unwrap();
        assert_eq!(response.status(), 400, "{from} -> {to}");
    }

    // The token endpoint takes JSON only, and a code works once.
    let code = h.code().await;
    let form = [("grant_type", "authorization_code"), ("code", code.as_str())];
    let response = http.post(h.mock.url(TOKEN_PATH)).form(&form).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.json::<serde_json::Value>().await.unwrap()["error"], "invalid_request");
    h.finish(&code).await.expect("first use works");
    let err = h.finish(&code).await.err().expect("second use fails");
    assert!(matches!(err, LoginError::TokenExchange(_)), "{err:?}");

    // The profile wants a currently issued access token.
    let response = http.get(h.mock.url(PROFILE_PATH)).bearer_auth("forged").send().await.unwrap();
    assert_eq!(response.status(), 401);
}
