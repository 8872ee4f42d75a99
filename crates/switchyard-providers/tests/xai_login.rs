//! xAI device login and refresh through the provider traits and the login engine, against the
//! mock auth.x.ai (OpenID discovery, RFC 8628 device authorization, rotating refresh tokens).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Value, json};
use switchyard_auth::login::{
    DeviceAuthorization, DeviceLogin, DevicePoll, Login, LoginContext, LoginEngine, LoginError, LoginOptions,
    LoginOutcome, RefreshError,
};
use switchyard_auth::{Credential, CredentialStore};
use switchyard_config::ConfigHandle;
use switchyard_providers::xai::{self, Xai};
use switchyard_providers::{LoginKind, Provider, Registry};
use switchyard_testkit::xai::{
    Account, CLIENT_ID, DEVICE_GRANT, DEVICE_PATH, DISCOVERY_PATH, Fault, MockXai, PollAnswer, TOKEN_MARK, TOKEN_PATH,
};
use tempfile::TempDir;

const SCOPE: &str = "openid profile email offline_access grok-cli:access api:access";
/// Bound on every wait: a broken build fails instead of hanging.
const WAIT: Duration = Duration::from_secs(30);

fn ctx(yaml: &str) -> LoginContext {
    common::context(yaml)
}

fn login() -> Arc<dyn DeviceLogin> {
    match Xai.login_methods().into_iter().next().map(|m| m.login) {
        Some(Login::Device(login)) => login,
        _ => panic!("xAI's default login is a device login"),
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn assert_no_secret(text: &str) {
    assert!(!text.contains(TOKEN_MARK), "{text:?} leaks a token or code of the mock");
}

/// Polls until the grant (the user is expected to have approved already).
async fn poll_until_granted(ctx: &LoginContext, device: &DeviceAuthorization) -> serde_json::Map<String, Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match login().poll(ctx, device).await.expect("poll succeeds") {
            DevicePoll::Granted(grant) => return grant,
            DevicePoll::Pending | DevicePoll::SlowDown => {
                assert!(tokio::time::Instant::now() < deadline, "no grant within {WAIT:?}");
            }
        }
    }
}

/// A whole login through the traits: start, approve, poll, finish.
async fn login_outcome(mock: &MockXai) -> LoginOutcome {
    let ctx = ctx(&mock.upstream_urls_yaml());
    let device = login().start(&ctx, &LoginOptions::new()).await.expect("device authorization");
    assert!(mock.approve(&device.user_code));
    let grant = poll_until_granted(&ctx, &device).await;
    login().finish(&ctx, &device, grant, &LoginOptions::new()).await.expect("login finishes")
}

// ---------------------------------------------------------------------------------------------
// The provider's surface
// ---------------------------------------------------------------------------------------------

#[test]
fn provider_offers_one_device_login_and_names_every_endpoint() {
    let methods = Xai.login_methods();
    assert_eq!(methods.len(), 1);
    assert_eq!((methods[0].id, methods[0].kind), ("device", LoginKind::Device));
    let login = login();
    let spec = login.spec();
    assert_eq!(spec.name, "xai");
    assert_eq!(spec.state_prefix, "xai-");
    assert_eq!(spec.max_wait, Duration::from_secs(30 * 60));
    for alias in ["grok", "x-ai", "XAI"] {
        assert!(spec.answers_to(alias), "{alias}");
    }

    let endpoints: Vec<(&str, &str)> = Xai.endpoints().iter().map(|e| (e.name, e.default)).collect();
    assert_eq!(
        endpoints,
        [
            ("issuer", "https://auth.x.ai"),
            ("device", "https://auth.x.ai/.well-known/openid-configuration#device_authorization_endpoint"),
            ("token", "https://auth.x.ai/.well-known/openid-configuration#token_endpoint"),
            ("api", "https://cli-chat-proxy.grok.com/v1"),
            ("billing", "https://cli-chat-proxy.grok.com/v1/billing"),
        ]
    );
    assert_eq!(xai::API_BASE, "https://api.x.ai/v1");
    assert_eq!(Xai.refresher().unwrap().refresh_lead(), Some(Duration::from_secs(5 * 60)));
    assert!(Xai.executor().is_some());
}

#[tokio::test]
async fn the_registry_finds_the_login_by_every_name() {
    let registry = Registry::new(&switchyard_config::Config::default());
    for name in ["xai", "grok", "x-ai"] {
        let found = registry.login(name, None, &reqwest::Client::new()).await.unwrap();
        assert!(matches!(&found, Some(Login::Device(l)) if l.spec().name == "xai"), "{name}");
    }
    let error = registry.login("xai", Some("browser"), &reqwest::Client::new()).await.err().unwrap();
    assert_eq!(error.to_string(), "unknown login method `browser` for xai; use: device");
}

// ---------------------------------------------------------------------------------------------
// Discovery and endpoint precedence
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn device_login_discovers_endpoints_and_saves_the_cpa_fields() {
    let mock = MockXai::start().await;
    let ctx = ctx(&mock.upstream_urls_yaml());
    let device = login().start(&ctx, &LoginOptions::new()).await.unwrap();

    assert_eq!(mock.count(DISCOVERY_PATH), 1, "one discovery request for both endpoints");
    let asked = mock.requests_to(DEVICE_PATH);
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].headers["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(asked[0].form(), pairs(&[("client_id", CLIENT_ID), ("scope", SCOPE)]));
    assert!(device.user_code.starts_with("XAI-"), "{}", device.user_code);
    assert_eq!(device.verification_uri, mock.url("/device"));
    assert_eq!(device.display_uri(), format!("{}?user_code={}", mock.url("/device"), device.user_code));
    assert_eq!((device.expires_in, device.interval), (Duration::from_secs(600), Duration::from_secs(1)));
    assert!(!format!("{device:?}").contains(&device.device_code), "Debug shows no device code");

    // Before the user confirms: pending, read from a 400 answer.
    assert!(matches!(login().poll(&ctx, &device).await.unwrap(), DevicePoll::Pending));
    assert!(mock.approve(&device.user_code));
    let grant = poll_until_granted(&ctx, &device).await;
    let polls = mock.requests_to(TOKEN_PATH);
    assert_eq!(
        polls[0].form(),
        pairs(&[("grant_type", DEVICE_GRANT), ("device_code", &device.device_code), ("client_id", CLIENT_ID)])
    );
    let outcome = login().finish(&ctx, &device, grant, &LoginOptions::new()).await.unwrap();

    assert_eq!(outcome.file_name, "xai-grok-user@example.com.json");
    let credential = &outcome.credential;
    let keys: Vec<&str> = credential.fields().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "type",
            "access_token",
            "refresh_token",
            "id_token",
            "token_type",
            "expires_in",
            "expired",
            "last_refresh",
            "email",
            "sub",
            "base_url",
            "token_endpoint",
            "auth_kind",
            "disabled"
        ]
    );
    let field = |key: &str| credential.fields()[key].clone();
    assert_eq!(field("type"), "xai");
    assert!(credential.access_token().unwrap().starts_with("mock-xai-at-"));
    assert!(credential.refresh_token().unwrap().starts_with("mock-xai-rt-"));
    assert_eq!(credential.str_field("id_token").unwrap().split('.').count(), 3);
    assert_eq!(field("token_type"), "Bearer");
    assert_eq!(field("expires_in"), 3600);
    let lifetime = credential.expiry().unwrap() - Utc::now();
    assert!(lifetime > chrono::Duration::seconds(3500) && lifetime <= chrono::Duration::seconds(3600), "{lifetime}");
    assert!((Utc::now() - credential.last_refresh().unwrap()).num_seconds().abs() < 60);
    assert_eq!(field("email"), "grok-user@example.com");
    assert_eq!(field("sub"), "mock-xai-subject-0001");
    assert_eq!(field("base_url"), "https://api.x.ai/v1");
    assert_eq!(field("token_endpoint"), mock.url(TOKEN_PATH));
    assert_eq!(field("auth_kind"), "oauth");
    assert_eq!(field("disabled"), false);

    // The device code works once.
    let again = login().poll(&ctx, &device).await.err().unwrap();
    assert!(again.to_string().contains("invalid_grant"), "{again}");
    assert_no_secret(&again.to_string());
}

#[tokio::test]
async fn configured_device_and_token_win_over_discovery() {
    let mock = MockXai::start().await;
    // Discovery would send everything to a port where nothing listens.
    let dead = format!("http://127.0.0.1:{}", closed_port().await);
    mock.set_discovery_member("device_authorization_endpoint", Some(json!(format!("{dead}/device"))));
    mock.set_discovery_member("token_endpoint", Some(json!(format!("{dead}/token"))));

    let both = format!(
        "{}    device: {}\n    token: {}\n",
        mock.upstream_urls_yaml(),
        mock.url(DEVICE_PATH),
        mock.url(TOKEN_PATH)
    );
    let ctx = ctx(&both);
    let device = login().start(&ctx, &LoginOptions::new()).await.unwrap();
    assert_eq!(mock.count(DISCOVERY_PATH), 0, "no discovery when both endpoints are configured");
    assert!(mock.approve(&device.user_code));
    let grant = poll_until_granted(&ctx, &device).await;
    let outcome = login().finish(&ctx, &device, grant, &LoginOptions::new()).await.unwrap();
    assert_eq!(outcome.credential.str_field("token_endpoint"), Some(mock.url(TOKEN_PATH).as_str()));

    // Only `token` configured: the device endpoint is discovered, polls go to the configured one.
    mock.set_discovery_member("device_authorization_endpoint", Some(json!(mock.url(DEVICE_PATH))));
    let token_only = format!("{}    token: {}\n", mock.upstream_urls_yaml(), mock.url(TOKEN_PATH));
    let ctx = self::ctx(&token_only);
    let device = login().start(&ctx, &LoginOptions::new()).await.unwrap();
    assert_eq!(mock.count(DISCOVERY_PATH), 1);
    assert!(mock.approve(&device.user_code));
    poll_until_granted(&ctx, &device).await;
}

#[tokio::test]
async fn discovery_failures_are_precise() {
    let mock = MockXai::start().await;
    let ctx = ctx(&mock.upstream_urls_yaml());
    let discovery_url = mock.url(DISCOVERY_PATH);

    mock.set_fault(Fault::DiscoveryUnavailable);
    let error = login().start(&ctx, &LoginOptions::new()).await.err().unwrap();
    assert_eq!(error, LoginError::Provider(format!("xAI OpenID discovery at {discovery_url} answered HTTP 503")));

    mock.set_fault(Fault::None);
    mock.set_discovery_member("token_endpoint", None);
    let error = login().start(&ctx, &LoginOptions::new()).await.err().unwrap();
    assert_eq!(
        error,
        LoginError::Provider(format!("xAI OpenID discovery at {discovery_url}: the document has no token_endpoint"))
    );

    mock.set_discovery_member("token_endpoint", Some(json!("no url at all")));
    let error = login().start(&ctx, &LoginOptions::new()).await.err().unwrap();
    assert!(error.to_string().contains(r#"token_endpoint "no url at all" is not a URL"#), "{error}");
    assert_eq!(mock.count(DEVICE_PATH), 0, "nothing is sent before both endpoints are known");

    let unreachable = format!("upstream-urls:\n  xai:\n    issuer: http://127.0.0.1:{}\n", closed_port().await);
    let error = login().start(&self::ctx(&unreachable), &LoginOptions::new()).await.err().unwrap();
    assert!(error.to_string().starts_with("xAI OpenID discovery at http://127.0.0.1:"), "{error}");
    assert!(error.to_string().contains("failed"), "{error}");
}

#[tokio::test]
async fn a_configured_issuer_may_name_plain_http_loopback_endpoints() {
    // The default issuer's endpoints must be https on x.ai (unit tests in the module); a
    // configured issuer is trusted with whatever it names.
    let mock = MockXai::start().await;
    let outcome = login_outcome(&mock).await;
    assert!(outcome.credential.str_field("token_endpoint").unwrap().starts_with("http://127.0.0.1:"));
}

#[tokio::test]
async fn device_authorization_errors_are_clear() {
    let mock = MockXai::start().await;
    let ctx = ctx(&mock.upstream_urls_yaml());
    mock.set_fault(Fault::DeviceServerError);
    let error = login().start(&ctx, &LoginOptions::new()).await.err().unwrap();
    assert_eq!(
        error.to_string(),
        "Failed to exchange authorization code for tokens: device authorization endpoint answered HTTP 500"
    );
}

#[tokio::test]
async fn a_missing_expires_in_means_thirty_minutes() {
    let mock = MockXai::start().await;
    mock.set_device_expires_in(None);
    let device = login().start(&ctx(&mock.upstream_urls_yaml()), &LoginOptions::new()).await.unwrap();
    assert_eq!(device.expires_in, Duration::from_secs(1800));
}

// ---------------------------------------------------------------------------------------------
// Identity and file names
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn file_is_named_after_email_else_sub_else_the_time() {
    let mock = MockXai::start().await;
    mock.set_account(Account { email: None, sub: Some("google-oauth2|1234 5".into()) });
    let outcome = login_outcome(&mock).await;
    assert_eq!(outcome.file_name, "xai-google-oauth2-1234-5.json");
    assert_eq!(outcome.credential.str_field("sub"), Some("google-oauth2|1234 5"));
    assert_eq!(outcome.credential.fields()["email"], "");

    mock.set_account(Account { email: None, sub: None });
    let before = Utc::now().timestamp_millis();
    let outcome = login_outcome(&mock).await;
    let after = Utc::now().timestamp_millis();
    let millis: i64 = outcome.file_name.strip_prefix("xai-").unwrap().strip_suffix(".json").unwrap().parse().unwrap();
    assert!((before..=after).contains(&millis), "{} not within [{before}, {after}]", outcome.file_name);
}

#[tokio::test]
async fn an_unreadable_id_token_fails_the_login_without_echoing_it() {
    let mock = MockXai::start().await;
    mock.set_fault(Fault::MalformedIdToken);
    let ctx = ctx(&mock.upstream_urls_yaml());
    let device = login().start(&ctx, &LoginOptions::new()).await.unwrap();
    assert!(mock.approve(&device.user_code));
    let grant = poll_until_granted(&ctx, &device).await;
    let error = login().finish(&ctx, &device, grant, &LoginOptions::new()).await.err().unwrap();
    assert_eq!(error, LoginError::Identity("xAI id_token: not a JWT (expected three dot-separated parts)".into()));
}

#[tokio::test]
async fn token_endpoint_failures_while_polling_are_named() {
    let mock = MockXai::start().await;
    let ctx = ctx(&mock.upstream_urls_yaml());
    let device = login().start(&ctx, &LoginOptions::new()).await.unwrap();
    mock.set_fault(Fault::TokenServerError);
    let error = login().poll(&ctx, &device).await.err().unwrap();
    assert_eq!(error.to_string(), "Failed to exchange authorization code for tokens: token endpoint answered HTTP 500");
    mock.script_polls([PollAnswer::Error("invalid_client".into())]);
    mock.set_fault(Fault::None);
    let error = login().poll(&ctx, &device).await.err().unwrap();
    assert!(
        error.to_string().ends_with("token endpoint answered HTTP 400: invalid_client (Scripted error)"),
        "{error}"
    );
    assert_no_secret(&error.to_string());
}

// ---------------------------------------------------------------------------------------------
// Through the login engine (poll loop, deadline, cancel, save)
// ---------------------------------------------------------------------------------------------

struct Engine {
    engine: Arc<LoginEngine>,
    store: Arc<CredentialStore>,
    auth_dir: std::path::PathBuf,
    _dir: TempDir,
}

impl Engine {
    async fn start(mock: &MockXai) -> Engine {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.yaml");
        std::fs::write(&config_path, mock.upstream_urls_yaml()).unwrap();
        let (config, _) = ConfigHandle::from_file(&config_path).unwrap();
        let auth_dir = dir.path().join("auths");
        let store = CredentialStore::open(auth_dir.clone()).await.unwrap();
        let engine = LoginEngine::new(store.clone(), Arc::new(config), Arc::new(switchyard_http::HttpClients::new()));
        Engine { engine, store, auth_dir, _dir: dir }
    }

    async fn outcome(&self, state: &str) -> Result<String, LoginError> {
        tokio::time::timeout(WAIT, self.engine.wait(state)).await.expect("the login ends in time")
    }

    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.auth_dir)
            .map(|entries| entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

#[tokio::test]
async fn engine_polls_until_approved_and_saves_the_file_private() {
    let mock = MockXai::start().await;
    let h = Engine::start(&mock).await;
    let started = h.engine.start_device(login(), LoginOptions::new()).await.unwrap();
    assert!(started.state.starts_with("xai-"), "{}", started.state);
    assert_eq!(started.expires_in, Duration::from_secs(600));
    assert_eq!(started.display_uri(), format!("{}?user_code={}", mock.url("/device"), started.user_code));
    mock.script_polls([PollAnswer::Pending]);
    assert!(mock.approve(&started.user_code));

    assert_eq!(h.outcome(&started.state).await, Ok("xai-grok-user@example.com.json".into()));
    assert!(mock.device_polls() >= 2, "a pending answer was polled through");
    let path = h.auth_dir.join("xai-grok-user@example.com.json");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let saved = Credential::from_json(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(saved.provider().as_deref(), Some("xai"));
    assert_eq!(saved.str_field("auth_kind"), Some("oauth"));
    assert!(h.store.get("xai-grok-user@example.com.json").is_some());
}

#[tokio::test]
async fn slow_down_is_honoured_and_the_login_still_completes() {
    let mock = MockXai::start().await;
    let h = Engine::start(&mock).await;
    let started = h.engine.start_device(login(), LoginOptions::new()).await.unwrap();
    mock.script_polls([PollAnswer::SlowDown]);
    assert!(mock.approve(&started.user_code));
    assert_eq!(h.outcome(&started.state).await, Ok("xai-grok-user@example.com.json".into()));
    assert_eq!(mock.device_polls(), 2, "slow_down, then the grant");
}

#[tokio::test]
async fn the_device_code_deadline_ends_the_login_and_writes_nothing() {
    let mock = MockXai::start().await;
    mock.set_device_expires_in(Some(2));
    let h = Engine::start(&mock).await;
    let started = h.engine.start_device(login(), LoginOptions::new()).await.unwrap();
    assert_eq!(started.expires_in, Duration::from_secs(2));
    assert_eq!(h.outcome(&started.state).await, Err(LoginError::DeviceCodeExpired));
    assert!(h.files().is_empty(), "{:?}", h.files());
}

#[tokio::test]
async fn an_expired_token_answer_and_a_denial_end_the_login_clearly() {
    let mock = MockXai::start().await;
    let h = Engine::start(&mock).await;

    let started = h.engine.start_device(login(), LoginOptions::new()).await.unwrap();
    mock.script_polls([PollAnswer::Expired]);
    let error = h.outcome(&started.state).await.err().unwrap();
    assert_eq!(error.to_string(), "device code expired before the login was confirmed; start the login again");

    let started = h.engine.start_device(login(), LoginOptions::new()).await.unwrap();
    assert!(mock.deny(&started.user_code));
    let error = h.outcome(&started.state).await.err().unwrap();
    assert_eq!(error.to_string(), "Authentication failed: the user denied the device login");
    assert!(h.files().is_empty(), "{:?}", h.files());
}

#[tokio::test]
async fn a_cancelled_login_stops_polling_and_saves_nothing() {
    let mock = MockXai::start().await;
    let h = Engine::start(&mock).await;
    mock.set_account(Account { email: Some("cancelled@example.com".into()), sub: None });
    let cancelled = h.engine.start_device(login(), LoginOptions::new()).await.unwrap();
    assert!(h.engine.sessions().cancel(&cancelled.state));
    assert_eq!(h.outcome(&cancelled.state).await, Err(LoginError::Cancelled));
    // The user confirms the abandoned code anyway; a second login runs its own poll loop to
    // the end, which takes longer than the first one's interval.
    assert!(mock.approve(&cancelled.user_code));
    mock.set_account(Account { email: Some("second@example.com".into()), sub: None });
    let second = h.engine.start_device(login(), LoginOptions::new()).await.unwrap();
    assert!(mock.approve(&second.user_code));
    assert_eq!(h.outcome(&second.state).await, Ok("xai-second@example.com.json".into()));
    assert_eq!(h.files(), ["xai-second@example.com.json"]);
    assert_eq!(mock.device_polls(), 1, "only the second login polled");
}

// ---------------------------------------------------------------------------------------------
// Refresh
// ---------------------------------------------------------------------------------------------

fn stored(tokens: &switchyard_testkit::xai::IssuedTokens, token_endpoint: Option<&str>) -> Credential {
    let mut credential = common::saved_credential("xai", tokens);
    let fields = credential.fields_mut();
    fields.insert("email".into(), "grok-user@example.com".into());
    fields.insert("note".into(), "keep me".into());
    if let Some(url) = token_endpoint {
        fields.insert("token_endpoint".into(), url.into());
    }
    credential
}

async fn refresh(ctx: &LoginContext, credential: &Credential) -> Result<serde_json::Map<String, Value>, RefreshError> {
    Xai.refresher().unwrap().refresh(ctx, credential).await
}

#[tokio::test]
async fn refresh_uses_the_stored_token_endpoint_rotates_and_returns_only_token_fields() {
    let mock = MockXai::start().await;
    let ctx = ctx(&mock.upstream_urls_yaml());
    let tokens = mock.issue_tokens();
    let fields = refresh(&ctx, &stored(&tokens, Some(&mock.url(TOKEN_PATH)))).await.unwrap();

    assert_eq!(mock.count(DISCOVERY_PATH), 0, "the stored token_endpoint is used as is");
    let sent = mock.requests_to(TOKEN_PATH);
    assert_eq!(
        sent[0].form(),
        pairs(&[("grant_type", "refresh_token"), ("client_id", CLIENT_ID), ("refresh_token", &tokens.refresh_token)])
    );
    let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["access_token", "refresh_token", "id_token", "token_type", "expires_in", "expired", "last_refresh"]
    );
    assert_ne!(fields["access_token"], tokens.access_token.as_str());
    assert_ne!(fields["refresh_token"], tokens.refresh_token.as_str(), "the mock rotates refresh tokens");

    // The spent refresh token is dead: needs a re-login.
    let error = refresh(&ctx, &stored(&tokens, Some(&mock.url(TOKEN_PATH)))).await.err().unwrap();
    assert_eq!(error, RefreshError::Revoked("HTTP 400: invalid_grant (Refresh token has already been used)".into()));
}

#[tokio::test]
async fn refresh_endpoint_precedence_configured_then_stored_then_discovered() {
    let mock = MockXai::start().await;
    let dead = format!("http://127.0.0.1:{}/token", closed_port().await);

    let configured = format!("{}    token: {}\n", mock.upstream_urls_yaml(), mock.url(TOKEN_PATH));
    refresh(&ctx(&configured), &stored(&mock.issue_tokens(), Some(&dead))).await.expect("configured token wins");

    refresh(&ctx(&mock.upstream_urls_yaml()), &stored(&mock.issue_tokens(), None)).await.expect("rediscovered");
    assert_eq!(mock.count(DISCOVERY_PATH), 1);
    assert_eq!(mock.refresh_calls(), 2);
}

#[tokio::test]
async fn without_a_configured_issuer_a_stored_endpoint_off_x_ai_is_refused_unsent() {
    let mock = MockXai::start().await;
    let credential = stored(&mock.issue_tokens(), Some(&mock.url(TOKEN_PATH)));
    let error = refresh(&ctx(""), &credential).await.err().unwrap();
    let RefreshError::Transient(text) = &error else { panic!("{error:?}") };
    assert_eq!(
        text,
        &format!(
            "the auth file's token_endpoint \"{}\" is not an https URL on x.ai or *.x.ai; refusing to use it",
            mock.url(TOKEN_PATH)
        )
    );
    assert!(mock.requests().is_empty(), "the refresh token went nowhere");
}

#[tokio::test]
async fn refresh_failures_are_classified() {
    let mock = MockXai::start().await;
    let ctx = ctx(&mock.upstream_urls_yaml());
    let url = mock.url(TOKEN_PATH);

    mock.set_fault(Fault::RevokeRefreshTokens);
    let tokens = mock.issue_tokens();
    let error = refresh(&ctx, &stored(&tokens, Some(&url))).await.err().unwrap();
    assert_eq!(error, RefreshError::Revoked("HTTP 400: invalid_grant (Refresh token has been revoked)".into()));
    assert!(!error.to_string().contains(&tokens.refresh_token));

    mock.set_fault(Fault::TokenServerError);
    assert!(matches!(refresh(&ctx, &stored(&tokens, Some(&url))).await, Err(RefreshError::Transient(_))));
    mock.set_fault(Fault::MalformedTokenJson);
    let error = refresh(&ctx, &stored(&tokens, Some(&url))).await.err().unwrap();
    assert_eq!(error, RefreshError::Transient("token endpoint answered HTTP 200 with malformed JSON".into()));
    mock.set_fault(Fault::RateLimit { retry_after: 30 });
    let error = refresh(&ctx, &stored(&tokens, Some(&url))).await.err().unwrap();
    assert_eq!(error, RefreshError::RateLimited { retry_after: Some(Duration::from_secs(30)) });

    let mut no_refresh = stored(&tokens, Some(&url));
    no_refresh.fields_mut().remove("refresh_token");
    assert_eq!(refresh(&ctx, &no_refresh).await.err(), Some(RefreshError::NoRefreshToken));
}

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}
