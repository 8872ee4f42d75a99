//! Codex's device login against the mock OpenAI auth server: through the `DeviceLogin` trait
//! (the usercode request, polls that are pending on 403 and 404, the grant and its exchange with
//! the server-made verifier) and through the engine's poll loop (approval, denial, expiry,
//! cancel). The credential and file must be the browser login's.

mod common;
mod login_engine_support;

use std::sync::Arc;
use std::time::Duration;

use common::{PkceHarness, assert_no_leak, context};
use login_engine_support::{EngineEnv, eventually};
use serde_json::{Value, json};
use switchyard_auth::login::{DeviceLogin, DevicePoll, LoginContext, LoginError, LoginOptions, SessionStatus};
use switchyard_providers::Provider;
use switchyard_providers::codex::Codex;
use switchyard_testkit::openai::{
    CLIENT_ID, DEVICE_REDIRECT_URI, DEVICE_TOKEN_PATH, DEVICE_USERCODE_PATH, DeviceAnswer, DeviceStatus,
    MockOpenAiAuth, TOKEN_PATH,
};

const FILE: &str = "codex-e13f9773-codex-user@example.com-plus.json";

fn device_login() -> Arc<dyn DeviceLogin> {
    let methods = Codex.login_methods();
    let ids: Vec<&str> = methods.iter().map(|m| m.id).collect();
    assert_eq!(ids, ["browser", "device"], "the browser login stays the default");
    match &methods[1].login {
        switchyard_auth::login::Login::Device(login) => login.clone(),
        _ => panic!("the device method is a device login"),
    }
}

struct Harness {
    mock: MockOpenAiAuth,
    ctx: LoginContext,
    login: Arc<dyn DeviceLogin>,
}

impl Harness {
    async fn start() -> Harness {
        let mock = MockOpenAiAuth::start().await;
        let ctx = context(&mock.upstream_urls_yaml());
        Harness { mock, ctx, login: device_login() }
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn kind(answer: &Result<DevicePoll, LoginError>) -> String {
    match answer {
        Ok(DevicePoll::Pending) => "pending".into(),
        Ok(DevicePoll::SlowDown) => "slow_down".into(),
        Ok(DevicePoll::Granted(_)) => "granted".into(),
        Err(error) => format!("error: {error}"),
    }
}

#[tokio::test]
async fn codex_lists_every_endpoint_with_its_default() {
    let endpoints: Vec<(&str, &str)> = Codex.endpoints().iter().map(|e| (e.name, e.default)).collect();
    assert_eq!(
        endpoints,
        [
            ("authorize", "https://auth.openai.com/oauth/authorize"),
            ("token", "https://auth.openai.com/oauth/token"),
            ("api", "https://chatgpt.com/backend-api/codex"),
            ("device", "https://auth.openai.com/api/accounts/deviceauth/usercode"),
            ("device-token", "https://auth.openai.com/api/accounts/deviceauth/token"),
            ("usage", "https://chatgpt.com/backend-api/wham/usage"),
        ]
    );
    let login = device_login();
    let spec = login.spec();
    assert_eq!((spec.name, spec.state_prefix, spec.max_wait), ("codex", "cdx-", Duration::from_secs(15 * 60)));
}

#[tokio::test]
async fn a_confirmed_device_code_yields_the_browser_logins_credential() {
    let h = Harness::start().await;
    let device = h.login.start(&h.ctx, &LoginOptions::new()).await.expect("a device code");
    assert_eq!(device.verification_uri, "https://auth.openai.com/codex/device");
    assert_eq!(device.verification_uri_complete, None);
    assert_eq!(device.interval, Duration::from_secs(5), "the server's \"5\" (a string)");
    assert!(device.expires_in > Duration::from_secs(14 * 60) && device.expires_in <= Duration::from_secs(15 * 60));
    let start = &h.mock.requests_to(DEVICE_USERCODE_PATH)[0];
    assert_eq!(start.json(), json!({"client_id": CLIENT_ID}));

    assert_eq!(kind(&h.login.poll(&h.ctx, &device).await), "pending", "403 while unconfirmed");
    assert!(h.mock.approve_device(&device.user_code));
    let Ok(DevicePoll::Granted(grant)) = h.login.poll(&h.ctx, &device).await else { panic!("granted") };
    let polls = h.mock.requests_to(DEVICE_TOKEN_PATH);
    assert_eq!(polls.len(), 2);
    assert_eq!(polls[1].json(), json!({"device_auth_id": device.device_code, "user_code": device.user_code}));
    assert_eq!(h.mock.device_status(&device.user_code), Some(DeviceStatus::Redeemed));

    let outcome = h.login.finish(&h.ctx, &device, grant.clone(), &LoginOptions::new()).await.expect("exchange works");
    let exchange = &h.mock.requests_to(TOKEN_PATH)[0];
    let expected = pairs(&[
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT_ID),
        ("code", grant["authorization_code"].as_str().unwrap()),
        ("redirect_uri", DEVICE_REDIRECT_URI),
        ("code_verifier", grant["code_verifier"].as_str().unwrap()),
    ]);
    assert_eq!(exchange.form(), expected);

    // The browser login of the same account, for comparison.
    let browser_mock = MockOpenAiAuth::start().await;
    let yaml = browser_mock.upstream_urls_yaml();
    let by_browser = PkceHarness::new(browser_mock, &yaml, &Codex).login().await.expect("browser login");

    assert_eq!(outcome.file_name, FILE);
    assert_eq!(outcome.file_name, by_browser.file_name);
    let keys = |fields: &serde_json::Map<String, Value>| fields.keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(outcome.credential.fields()), keys(by_browser.credential.fields()));
    for same in ["type", "account_id", "email", "disabled"] {
        assert_eq!(outcome.credential.fields()[same], by_browser.credential.fields()[same], "{same}");
    }
}

#[tokio::test]
async fn pending_is_403_or_404_and_older_answers_are_read_too() {
    let h = Harness::start().await;
    h.mock.set_device_pending_status(404);
    h.mock.set_device_answer(DeviceAnswer { user_code_key: "usercode", interval: json!(7), ..DeviceAnswer::default() });
    let device = h.login.start(&h.ctx, &LoginOptions::new()).await.expect("a device code");
    assert!(device.user_code.starts_with("MOCK-"), "read from `usercode`: {}", device.user_code);
    assert_eq!(device.interval, Duration::from_secs(7));
    assert_eq!(kind(&h.login.poll(&h.ctx, &device).await), "pending", "404 while unconfirmed");
    h.mock.set_device_pending_status(403);
    assert_eq!(kind(&h.login.poll(&h.ctx, &device).await), "pending");
}

#[tokio::test]
async fn denied_and_expired_codes_end_the_login_precisely() {
    let h = Harness::start().await;
    let device = h.login.start(&h.ctx, &LoginOptions::new()).await.unwrap();
    h.mock.deny_device(&device.user_code);
    let denied = h.login.poll(&h.ctx, &device).await;
    assert!(matches!(denied, Err(LoginError::Denied(_))), "{}", kind(&denied));

    let device = h.login.start(&h.ctx, &LoginOptions::new()).await.unwrap();
    h.mock.expire_device(&device.user_code);
    assert_eq!(h.login.poll(&h.ctx, &device).await.err(), Some(LoginError::DeviceCodeExpired));
    let error = denied.err().unwrap();
    assert_no_leak(&format!("{error} {error:?}"), &[&device.device_code], &["deviceauth_"]);
}

#[tokio::test]
async fn a_bad_grant_or_a_refused_start_is_a_precise_error() {
    let h = Harness::start().await;
    let mut device = h.login.start(&h.ctx, &LoginOptions::new()).await.unwrap();
    h.mock.approve_device(&device.user_code);
    device.user_code = "MOCK-9999".into();
    let error = h.login.poll(&h.ctx, &device).await.err().expect("a mismatched user code is refused");
    assert!(matches!(&error, LoginError::TokenExchange(r) if r.contains("HTTP 400")), "{error:?}");

    // A verifier that is not the server's fails the exchange, as the real server checks it.
    let device = h.login.start(&h.ctx, &LoginOptions::new()).await.unwrap();
    h.mock.approve_device(&device.user_code);
    let Ok(DevicePoll::Granted(mut grant)) = h.login.poll(&h.ctx, &device).await else { panic!("granted") };
    grant.insert("code_verifier".into(), "not-the-servers-verifier".into());
    let error = h.login.finish(&h.ctx, &device, grant, &LoginOptions::new()).await.err().unwrap();
    assert!(matches!(&error, LoginError::TokenExchange(r) if r.contains("invalid_grant")), "{error:?}");

    let nowhere = context("upstream-urls:\n  codex:\n    device: http://127.0.0.1:9/usercode\n");
    let error = h.login.start(&nowhere, &LoginOptions::new()).await.err().unwrap();
    assert!(
        matches!(&error, LoginError::Provider(r) if r.starts_with("Codex device code request failed")),
        "{error:?}"
    );
}

// --- through the engine's poll loop ------------------------------------------------------------

async fn fast_env() -> (MockOpenAiAuth, EngineEnv) {
    let mock = MockOpenAiAuth::start().await;
    mock.set_device_answer(DeviceAnswer { interval: json!("1"), ..DeviceAnswer::default() });
    let env = EngineEnv::start(&mock.upstream_urls_yaml()).await;
    (mock, env)
}

#[tokio::test]
async fn engine_device_login_saves_the_file_once_approved() {
    let (mock, env) = fast_env().await;
    let started = env.engine.start_device(device_login(), LoginOptions::new()).await.unwrap();
    assert!(started.state.starts_with("cdx-"), "{}", started.state);
    assert_eq!(started.display_uri(), "https://auth.openai.com/codex/device");
    assert_eq!(started.interval, Duration::from_secs(1));
    assert!(matches!(env.engine.sessions().status(&started.state), SessionStatus::Pending));

    eventually("a first poll", || !mock.requests_to(DEVICE_TOKEN_PATH).is_empty()).await;
    assert!(mock.approve_device(&started.user_code));
    assert_eq!(env.completed(&started.state).await, FILE);
    assert_eq!(env.files(), [FILE]);
    assert_eq!(env.mode(FILE), 0o600);
    let saved = env.credential(FILE);
    assert_eq!(saved.provider().as_deref(), Some("codex"));
    assert!(saved.access_token().unwrap().starts_with("mock-openai-at-"));
}

#[tokio::test]
async fn engine_device_login_reports_a_denial() {
    let (mock, env) = fast_env().await;
    let started = env.engine.start_device(device_login(), LoginOptions::new()).await.unwrap();
    mock.deny_device(&started.user_code);
    assert!(matches!(env.outcome(&started.state).await, SessionStatus::Failed(LoginError::Denied(_))));
    assert!(env.files().is_empty());
}

#[tokio::test]
async fn engine_device_login_expires_with_the_code() {
    let (mock, env) = fast_env().await;
    mock.set_device_answer(DeviceAnswer {
        interval: json!("1"),
        lifetime: Duration::from_secs(2),
        ..DeviceAnswer::default()
    });
    let started = env.engine.start_device(device_login(), LoginOptions::new()).await.unwrap();
    assert!(started.expires_in <= Duration::from_secs(2), "{:?}", started.expires_in);
    let outcome = env.outcome(&started.state).await;
    assert!(matches!(outcome, SessionStatus::Failed(LoginError::DeviceCodeExpired)), "{outcome:?}");
    assert!(env.files().is_empty());
}

#[tokio::test]
async fn a_cancelled_device_login_writes_nothing_even_when_approved_later() {
    let (mock, env) = fast_env().await;
    let started = env.engine.start_device(device_login(), LoginOptions::new()).await.unwrap();
    eventually("a first poll", || !mock.requests_to(DEVICE_TOKEN_PATH).is_empty()).await;
    assert!(env.engine.sessions().cancel(&started.state));
    assert!(matches!(env.outcome(&started.state).await, SessionStatus::Unknown));
    let polls = mock.requests_to(DEVICE_TOKEN_PATH).len();

    // The user confirms after all; nobody is polling any more. Watch for a few intervals.
    mock.approve_device(&started.user_code);
    let watch_until = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < watch_until {
        assert!(mock.requests_to(DEVICE_TOKEN_PATH).len() <= polls + 1, "polling went on after the cancel");
        assert_eq!(mock.device_status(&started.user_code), Some(DeviceStatus::Approved), "nobody redeemed it");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(env.files().is_empty());
    assert!(mock.requests_to(TOKEN_PATH).is_empty());
}
