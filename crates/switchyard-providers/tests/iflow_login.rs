//! iFlow's browser login against the iFlow mock: through the provider traits (authorize URL,
//! code exchange with form + HTTP Basic, getUserInfo for the API key and identity) and through
//! the login engine (local listener, pasted callback URL), plus every failure path.

mod common;
mod login_engine_support;

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{assert_no_leak, authorize_redirect, context, query_value};
use login_engine_support::EngineEnv;
use switchyard_auth::login::{
    AuthorizeRequest, BrowserLogin, LoginContext, LoginError, LoginOptions, LoginOutcome, SessionStatus, StartOptions,
    new_state, parse_callback_input,
};
use switchyard_providers::Provider;
use switchyard_providers::iflow::Iflow;
use switchyard_testkit::iflow::{
    AUTHORIZE_PATH, Account, CLIENT_ID, CLIENT_SECRET, Fault, MockIflow, TOKEN_PATH, USER_INFO_PATH,
};
use url::Url;

const EMAIL: &str = "iflow-user@example.com";
const PHONE: &str = "13800138000";

struct Harness {
    mock: MockIflow,
    ctx: LoginContext,
    login: Arc<dyn BrowserLogin>,
    state: String,
    redirect_uri: String,
    options: LoginOptions,
}

impl Harness {
    async fn start() -> Harness {
        let mock = MockIflow::start().await;
        let ctx = context(&mock.upstream_urls_yaml());
        let login = Iflow.browser_login().expect("iFlow has a browser login");
        let redirect_uri = login.redirect_uri(login.spec().default_callback_port);
        Harness { mock, ctx, login, state: new_state(), redirect_uri, options: LoginOptions::new() }
    }

    fn request(&self) -> AuthorizeRequest<'_> {
        AuthorizeRequest { state: &self.state, pkce: None, redirect_uri: &self.redirect_uri, options: &self.options }
    }

    fn authorize_url(&self) -> String {
        self.login.authorize_url(&self.ctx, &self.request()).expect("authorize URL")
    }

    async fn code(&self) -> String {
        let callback = Url::parse(&authorize_redirect(&self.authorize_url()).await).unwrap();
        assert_eq!(query_value(&callback, "state").as_deref(), Some(self.state.as_str()));
        query_value(&callback, "code").expect("the callback carries a code")
    }

    async fn finish(&self, code: &str) -> Result<LoginOutcome, LoginError> {
        self.login.finish(&self.ctx, code, &self.request()).await
    }

    async fn login(&self) -> Result<LoginOutcome, LoginError> {
        self.finish(&self.code().await).await
    }

    /// A login that must fail; its error is checked to hold no code or token.
    async fn login_err(&self) -> LoginError {
        let code = self.code().await;
        let error = self.finish(&code).await.err().expect("the login fails");
        assert_no_leak(&error.to_string(), &[&code, CLIENT_SECRET], &["mock-iflow-at-", "mock-iflow-rt-", "sk-"]);
        error
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn login_exchanges_the_code_with_form_and_basic_auth_then_reads_the_api_key() {
    let h = Harness::start().await;
    assert_eq!(h.redirect_uri, "http://localhost:11451/oauth2callback");

    let authorize = Url::parse(&h.authorize_url()).unwrap();
    assert_eq!(authorize.as_str().split('?').next().unwrap(), h.mock.url(AUTHORIZE_PATH));
    let params: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    let expected = pairs(&[
        ("loginMethod", "phone"),
        ("type", "phone"),
        ("redirect", &h.redirect_uri),
        ("state", &h.state),
        ("client_id", CLIENT_ID),
    ]);
    assert_eq!(params, expected, "`redirect`, not `redirect_uri`; no scope, no PKCE");

    let code = h.code().await;
    let outcome = h.finish(&code).await.expect("login succeeds");
    assert_eq!(outcome.file_name, format!("iflow-{EMAIL}.json"));

    let credential = &outcome.credential;
    let keys: Vec<&str> = credential.fields().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "type",
            "access_token",
            "refresh_token",
            "last_refresh",
            "expired",
            "api_key",
            "email",
            "token_type",
            "scope",
            "cookie"
        ]
    );
    let field = |key: &str| credential.str_field(key).unwrap_or_default().to_owned();
    assert_eq!(credential.provider().as_deref(), Some("iflow"));
    assert_eq!(field("api_key"), h.mock.oauth_api_key(), "the API key, not the OAuth token, is what chat uses");
    assert_eq!(field("email"), EMAIL);
    assert_eq!((field("token_type"), field("scope"), field("cookie")), ("bearer".into(), "read".into(), "".into()));
    assert!(field("access_token").starts_with("mock-iflow-at-"));
    assert!(field("refresh_token").starts_with("mock-iflow-rt-"));
    let lifetime = credential.expiry().expect("expired is a timestamp") - chrono::Utc::now();
    assert!(lifetime > chrono::Duration::days(6) && lifetime <= chrono::Duration::days(7), "{lifetime}");
    assert!((chrono::Utc::now() - credential.last_refresh().unwrap()).num_seconds().abs() < 60);

    let exchanges = h.mock.requests_to(TOKEN_PATH);
    assert_eq!(exchanges.len(), 1);
    let exchange = &exchanges[0];
    assert_eq!(exchange.headers["content-type"], "application/x-www-form-urlencoded");
    let basic = format!("Basic {}", STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}")));
    assert_eq!(exchange.headers["authorization"], basic.as_str());
    let expected = pairs(&[
        ("grant_type", "authorization_code"),
        ("code", &code),
        ("redirect_uri", &h.redirect_uri),
        ("client_id", CLIENT_ID),
        ("client_secret", CLIENT_SECRET),
    ]);
    assert_eq!(exchange.form(), expected);

    let lookups = h.mock.requests_to(USER_INFO_PATH);
    assert_eq!(lookups.len(), 1);
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(lookups[0].query.as_deref().unwrap_or_default().as_bytes()).into_owned().collect();
    assert_eq!(query, pairs(&[("accessToken", &field("access_token"))]));
}

#[tokio::test]
async fn identity_falls_back_to_the_phone_number_then_to_the_time() {
    let h = Harness::start().await;
    h.mock.set_account(Account { email: None, phone: Some(PHONE.into()) });
    let outcome = h.login().await.expect("login succeeds");
    assert_eq!(outcome.file_name, format!("iflow-{PHONE}.json"));
    assert_eq!(outcome.credential.email(), Some(PHONE));

    h.mock.set_account(Account { email: Some("  ".into()), phone: None });
    let before = chrono::Utc::now().timestamp_millis();
    let outcome = h.login().await.expect("login succeeds without any identity");
    let millis: i64 = outcome.file_name.strip_prefix("iflow-").unwrap().strip_suffix(".json").unwrap().parse().unwrap();
    assert!(millis >= before && millis <= chrono::Utc::now().timestamp_millis(), "{}", outcome.file_name);
    assert_eq!(outcome.credential.fields()["email"], "");
}

#[tokio::test]
async fn an_empty_api_key_fails_with_a_precise_message() {
    let h = Harness::start().await;
    h.mock.set_fault(Fault::EmptyApiKey);
    let error = h.login_err().await;
    assert_eq!(
        error,
        LoginError::Identity("iFlow returned no API key for this account (empty apiKey in getUserInfo)".into())
    );
}

#[tokio::test]
async fn user_info_failures_are_identity_errors() {
    let h = Harness::start().await;
    h.mock.set_fault(Fault::UserInfoServerError);
    assert_eq!(h.login_err().await, LoginError::Identity("getUserInfo answered HTTP 500".into()));
}

#[tokio::test]
async fn token_endpoint_failures_are_token_exchange_errors() {
    for (fault, expected) in [
        (Fault::TokenServerError, "HTTP 500"),
        (Fault::MalformedTokenJson, "malformed JSON"),
        (Fault::RateLimit { retry_after: 30 }, "HTTP 429: rate_limit_exceeded"),
    ] {
        let h = Harness::start().await;
        let code = h.code().await;
        h.mock.set_fault(fault.clone());
        let error = h.finish(&code).await.err().expect("exchange fails");
        let LoginError::TokenExchange(reason) = &error else { panic!("{fault:?}: {error:?}") };
        assert!(reason.contains(expected), "{fault:?}: {reason}");
        assert_no_leak(&error.to_string(), &[&code, CLIENT_SECRET], &["mock-iflow-at-"]);
    }
}

#[tokio::test]
async fn a_code_works_once_and_only_for_its_redirect() {
    let mut h = Harness::start().await;
    let code = h.code().await;
    h.finish(&code).await.expect("first use works");
    let error = h.finish(&code).await.err().expect("second use fails");
    assert!(matches!(&error, LoginError::TokenExchange(r) if r.contains("invalid_grant")), "{error:?}");

    let code = h.code().await;
    h.redirect_uri = "http://localhost:11452/oauth2callback".into();
    let error = h.finish(&code).await.err().expect("another redirect fails");
    assert!(matches!(&error, LoginError::TokenExchange(r) if r.contains("invalid_grant")), "{error:?}");
}

#[tokio::test]
async fn the_mock_behaves_like_the_real_server() {
    let h = Harness::start().await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let url = h.authorize_url();
    // The page only knows `redirect`, and only this client.
    for (from, to) in [("redirect=", "redirect_uri="), (CLIENT_ID, "10009311002"), ("state=", "s=")] {
        assert!(url.contains(from), "{from}");
        let response = http.get(url.replace(from, to)).send().await.unwrap();
        assert_eq!(response.status(), 400, "{from} -> {to}");
    }
    // Client credentials must come as HTTP Basic too, and the form is the only body it takes.
    let code = h.code().await;
    let form = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", &h.redirect_uri)];
    let without_basic = http
        .post(h.mock.url(TOKEN_PATH))
        .form(&[&form[..], &[("client_id", CLIENT_ID), ("client_secret", CLIENT_SECRET)]].concat())
        .send()
        .await
        .unwrap();
    assert_eq!(without_basic.status(), 401);
    let json = serde_json::json!({"grant_type": "authorization_code", "code": code});
    let response = http.post(h.mock.url(TOKEN_PATH)).json(&json).send().await.unwrap();
    assert_eq!(response.status(), 400);
    // getUserInfo refuses an unknown token with HTTP 200 and `success: false`.
    let response = http.get(h.mock.url(USER_INFO_PATH)).query(&[("accessToken", "nope")]).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["success"], false);

    h.mock.set_fault(Fault::DenyConsent);
    let callback = Url::parse(&authorize_redirect(&h.authorize_url()).await).unwrap();
    assert_eq!(query_value(&callback, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_value(&callback, "code"), None);
}

// --- through the engine, as `switchyard login iflow` and the management API run it ------------

fn engine_options(listen: bool) -> StartOptions {
    StartOptions {
        listen,
        callback_port: Some(0),
        timeout: std::time::Duration::from_secs(30),
        options: LoginOptions::new(),
    }
}

#[tokio::test]
async fn engine_login_through_the_local_listener_saves_the_file() {
    let mock = MockIflow::start().await;
    let env = EngineEnv::start(&mock.upstream_urls_yaml()).await;
    let started = env.engine.start(Iflow.browser_login().unwrap(), engine_options(true)).await.unwrap();
    let port = started.listener_port.expect("a listener was started");
    assert_eq!(started.redirect_uri, format!("http://localhost:{port}/oauth2callback"));
    assert_eq!(query_value(&Url::parse(&started.url).unwrap(), "redirect").as_deref(), Some(&*started.redirect_uri));

    // The browser follows the authorize page's redirect to the listener.
    let page = reqwest::Client::builder().no_proxy().build().unwrap().get(&started.url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let file = env.completed(&started.state).await;
    assert_eq!(file, format!("iflow-{EMAIL}.json"));
    assert_eq!(env.mode(&file), 0o600);
    let saved = env.credential(&file);
    assert_eq!(saved.provider().as_deref(), Some("iflow"));
    assert_eq!(saved.str_field("api_key"), Some(mock.oauth_api_key().as_str()));
}

#[tokio::test]
async fn engine_login_with_a_pasted_callback_url_saves_the_file() {
    let mock = MockIflow::start().await;
    mock.set_account(Account { email: None, phone: Some(PHONE.into()) });
    let env = EngineEnv::start(&mock.upstream_urls_yaml()).await;
    let started = env.engine.start(Iflow.browser_login().unwrap(), engine_options(false)).await.unwrap();
    assert_eq!(started.listener_port, None);

    // A browser elsewhere: the redirect to localhost goes nowhere; the user pastes its URL.
    let location = authorize_redirect(&started.url).await;
    assert!(location.starts_with(&started.redirect_uri), "{location}");
    let params = parse_callback_input(&location).unwrap();
    env.engine.sessions().deliver(&started.state, Some("iflow"), params).unwrap();
    let file = env.completed(&started.state).await;
    assert_eq!(file, format!("iflow-{PHONE}.json"));
    assert_eq!(env.files(), std::slice::from_ref(&file));
    assert_eq!(env.credential(&file).email(), Some(PHONE));
}

#[tokio::test]
async fn engine_login_reports_a_denial_and_saves_nothing() {
    let mock = MockIflow::start().await;
    mock.set_fault(Fault::DenyConsent);
    let env = EngineEnv::start(&mock.upstream_urls_yaml()).await;
    let started = env.engine.start(Iflow.browser_login().unwrap(), engine_options(false)).await.unwrap();
    let params = parse_callback_input(&authorize_redirect(&started.url).await).unwrap();
    env.engine.sessions().deliver(&started.state, Some("iflow"), params).unwrap();
    assert!(matches!(env.outcome(&started.state).await, SessionStatus::Failed(LoginError::Denied(_))));
    assert!(env.files().is_empty());
    assert!(mock.requests_to(TOKEN_PATH).is_empty());
}
