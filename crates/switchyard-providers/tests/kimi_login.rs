//! Kimi's device login and refresh through the provider traits, against the mock Kimi
//! authorization server (real HTTP on loopback).

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::{Map, Value, json};
use switchyard_auth::Credential;
use switchyard_auth::login::{
    DeviceAuthorization, DeviceLogin, DevicePoll, Login, LoginContext, LoginError, LoginOptions, RefreshError,
    TokenRefresher,
};
use switchyard_providers::kimi::Kimi;
use switchyard_providers::{LoginKind, Provider};
use switchyard_testkit::RecordedRequest;
use switchyard_testkit::kimi::{
    self as mock, CLIENT_ID, DEVICE_GRANT, DEVICE_PATH, DeviceAnswer, Fault, IDENTITY_HEADERS, MockKimi, TOKEN_PATH,
    VERIFICATION_URI,
};

struct Harness {
    mock: MockKimi,
    ctx: LoginContext,
}

impl Harness {
    async fn start() -> Harness {
        let mock = MockKimi::start().await;
        let ctx = common::context(&mock.upstream_urls_yaml());
        Harness { mock, ctx }
    }

    async fn device(&self) -> DeviceAuthorization {
        Kimi.start(&self.ctx, &LoginOptions::new()).await.expect("device authorization")
    }
}

fn header<'a>(request: &'a RecordedRequest, name: &str) -> &'a str {
    request.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} header"))
}

fn kind(poll: Result<DevicePoll, LoginError>) -> String {
    match poll {
        Ok(DevicePoll::Pending) => "pending".into(),
        Ok(DevicePoll::SlowDown) => "slow_down".into(),
        Ok(DevicePoll::Granted(_)) => "granted".into(),
        Err(error) => format!("error: {error}"),
    }
}

fn is_uuid_v4(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.iter().map(|g| g.len()).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
        && text.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
        && groups[2].starts_with('4')
}

fn assert_clean(message: &str, secrets: &[&str]) {
    common::assert_no_leak(message, secrets, &["mock-kimi-"]);
}

#[test]
fn provider_offers_one_device_login_and_names_its_endpoints() {
    let methods = Kimi.login_methods();
    assert_eq!(methods.len(), 1);
    assert_eq!((methods[0].id, methods[0].kind), ("device", LoginKind::Device));
    assert!(methods[0].asks.is_empty());
    let Login::Device(login) = &methods[0].login else { panic!("Kimi logs in with a device code") };
    let spec = login.spec();
    assert_eq!((spec.name, spec.state_prefix, spec.max_wait), ("kimi", "kmi-", Duration::from_secs(15 * 60)));

    let endpoints: Vec<(&str, &str)> = Kimi.endpoints().iter().map(|e| (e.name, e.default)).collect();
    assert_eq!(
        endpoints,
        [
            ("device", "https://auth.kimi.com/api/oauth/device_authorization"),
            ("token", "https://auth.kimi.com/api/oauth/token"),
            ("api", "https://api.kimi.com/coding"),
            ("usage", "https://api.kimi.com/coding/v1/usages"),
        ]
    );
    assert_eq!(Kimi.refresher().unwrap().refresh_lead(), Some(Duration::from_secs(5 * 60)));
    let models: Vec<&str> = Kimi.models().iter().map(|m| m.id).collect();
    for kept in ["kimi-k2", "kimi-k2-thinking", "kimi-k2-0905"] {
        assert!(models.contains(&kept), "{kept} missing from {models:?}");
    }
}

#[tokio::test]
async fn start_requests_a_device_code_with_the_client_and_a_fresh_device_identity() {
    let h = Harness::start().await;
    h.mock.set_device_timing(600, 7);
    let device = h.device().await;

    assert!(device.user_code.starts_with("KM"), "{}", device.user_code);
    assert_eq!(device.verification_uri, VERIFICATION_URI);
    let complete = format!("{VERIFICATION_URI}?user_code={}", device.user_code);
    assert_eq!(device.verification_uri_complete.as_deref(), Some(complete.as_str()));
    assert_eq!((device.expires_in, device.interval), (Duration::from_secs(600), Duration::from_secs(7)));
    let device_id = device.extra["device_id"].as_str().unwrap().to_owned();
    assert!(is_uuid_v4(&device_id), "{device_id}");
    // The device code is a secret: never in Debug output.
    assert!(!format!("{device:?}").contains(&device.device_code));

    let seen = h.mock.requests_to(DEVICE_PATH);
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].form(), [("client_id".to_owned(), CLIENT_ID.to_owned())]);
    assert_eq!(header(&seen[0], "x-msh-platform"), "CLIProxyAPI");
    assert_eq!(header(&seen[0], "x-msh-version"), env!("CARGO_PKG_VERSION"));
    assert!(!header(&seen[0], "x-msh-device-name").is_empty());
    assert!(header(&seen[0], "x-msh-device-model").ends_with(std::env::consts::ARCH));
    assert_eq!(header(&seen[0], "x-msh-device-id"), device_id);

    // Each login is a new device.
    let other = h.device().await;
    assert_ne!(other.extra["device_id"], device.extra["device_id"]);
}

#[tokio::test]
async fn polls_read_kimis_200_with_error_answers_and_carry_the_logins_device_id() {
    let h = Harness::start().await;
    h.mock.set_device_timing(600, 0);
    h.mock.set_answers(&[DeviceAnswer::Pending, DeviceAnswer::SlowDown, DeviceAnswer::Approve]);
    let device = h.device().await;
    assert_eq!(kind(Kimi.poll(&h.ctx, &device).await), "pending");
    assert_eq!(kind(Kimi.poll(&h.ctx, &device).await), "slow_down");
    // The mock now demands 5 s between polls: an immediate poll is told to slow down again.
    assert_eq!(kind(Kimi.poll(&h.ctx, &device).await), "slow_down");

    let polls = h.mock.requests_to(TOKEN_PATH);
    assert_eq!(polls.len(), 3);
    for poll in &polls {
        let form = poll.form();
        assert_eq!(form.len(), 3, "{form:?}");
        assert_eq!(poll.form_value("client_id").as_deref(), Some(CLIENT_ID));
        assert_eq!(poll.form_value("grant_type").as_deref(), Some(DEVICE_GRANT));
        assert_eq!(poll.form_value("device_code").as_deref(), Some(device.device_code.as_str()));
        assert_eq!(header(poll, "x-msh-device-id"), device.extra["device_id"].as_str().unwrap());
        for name in IDENTITY_HEADERS {
            assert!(!header(poll, name).is_empty(), "{name}");
        }
    }
}

#[tokio::test]
async fn an_approved_grant_becomes_the_cpa_kimi_file() {
    let h = Harness::start().await;
    h.mock.set_device_timing(600, 0);
    let device = h.device().await;
    let before = Utc::now().timestamp_millis();
    let Ok(DevicePoll::Granted(grant)) = Kimi.poll(&h.ctx, &device).await else { panic!("approved") };
    let outcome = Kimi.finish(&h.ctx, &device, grant.clone(), &LoginOptions::new()).await.unwrap();
    let after = Utc::now().timestamp_millis();

    let credential = &outcome.credential;
    let keys: Vec<&str> = credential.fields().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "type",
            "access_token",
            "refresh_token",
            "token_type",
            "scope",
            "device_id",
            "expired",
            "timestamp",
            "disabled"
        ]
    );
    let fields = credential.fields();
    assert_eq!(fields["type"], "kimi");
    assert_eq!(fields["access_token"], grant["access_token"]);
    assert_eq!(fields["refresh_token"], grant["refresh_token"]);
    assert_eq!((fields["token_type"].as_str(), fields["scope"].as_str()), (Some("Bearer"), Some(mock::SCOPE)));
    assert_eq!(fields["device_id"], device.extra["device_id"]);
    assert_eq!(fields["disabled"], false);
    let timestamp = fields["timestamp"].as_i64().unwrap();
    assert!((before..=after).contains(&timestamp));
    assert_eq!(outcome.file_name, format!("kimi-{timestamp}.json"));
    let expired = fields["expired"].as_str().unwrap();
    assert!(expired.ends_with('Z'), "expired is UTC: {expired}");
    let left = chrono::DateTime::parse_from_rfc3339(expired).unwrap().with_timezone(&Utc) - Utc::now();
    assert!(left > chrono::Duration::seconds(mock::TOKEN_EXPIRES_IN as i64 - 30), "{expired}");

    // The code is single use.
    let again = kind(Kimi.poll(&h.ctx, &device).await);
    assert!(again.contains("invalid_grant"), "{again}");
    assert_clean(&again, &[&device.device_code]);
}

#[tokio::test]
async fn denied_and_expired_codes_end_the_login_with_their_own_errors() {
    let h = Harness::start().await;
    h.mock.set_device_timing(600, 0);
    h.mock.set_answers(&[DeviceAnswer::Deny]);
    let device = h.device().await;
    let denied = Kimi.poll(&h.ctx, &device).await.err().expect("denied");
    assert!(matches!(denied, LoginError::Denied(_)), "{denied:?}");
    assert_eq!(denied.to_string(), "Authentication failed: the user denied the device login");

    h.mock.set_answers(&[DeviceAnswer::Expire]);
    let device = h.device().await;
    assert_eq!(Kimi.poll(&h.ctx, &device).await.err(), Some(LoginError::DeviceCodeExpired));

    // A code that outlives its `expires_in` is refused by the server too.
    h.mock.set_device_timing(1, 0);
    h.mock.set_answers(&[DeviceAnswer::Pending]);
    let device = h.device().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match Kimi.poll(&h.ctx, &device).await {
            Ok(DevicePoll::Pending) => {}
            Err(LoginError::DeviceCodeExpired) => break,
            other => panic!("unexpected {}", kind(other)),
        }
        assert!(tokio::time::Instant::now() < deadline, "the code never expired");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn provider_failures_are_precise_and_leak_nothing() {
    let h = Harness::start().await;
    h.mock.set_fault(Fault::DeviceEndpointDown);
    let error = Kimi.start(&h.ctx, &LoginOptions::new()).await.expect_err("device endpoint down");
    assert_eq!(
        error.to_string(),
        "Failed to exchange authorization code for tokens: device authorization endpoint answered HTTP 503"
    );

    h.mock.set_fault(Fault::None);
    h.mock.set_device_timing(600, 0);
    let device = h.device().await;
    h.mock.set_fault(Fault::TokenServerError);
    let error = kind(Kimi.poll(&h.ctx, &device).await);
    assert!(error.contains("HTTP 500"), "{error}");
    h.mock.set_fault(Fault::MalformedTokenJson);
    let error = kind(Kimi.poll(&h.ctx, &device).await);
    assert!(error.contains("malformed JSON"), "{error}");
    assert_clean(&error, &[&device.device_code]);

    // Nothing listens: the transport error is reported, not the request.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let ctx = common::context(&format!("upstream-urls:\n  kimi:\n    device: http://127.0.0.1:{closed}/device\n"));
    let error = Kimi.start(&ctx, &LoginOptions::new()).await.err().unwrap().to_string();
    assert!(error.contains("device authorization request failed"), "{error}");
}

fn saved(tokens: &mock::IssuedTokens, device_id: Option<&str>) -> Credential {
    let mut credential = common::saved_credential("kimi", tokens);
    let fields = credential.fields_mut();
    if let Some(device_id) = device_id {
        fields.insert("device_id".into(), device_id.into());
    }
    fields.insert("expired".into(), "2020-01-01T00:00:00Z".into());
    fields.insert("prefix".into(), "work".into());
    credential
}

fn refresher() -> Arc<dyn TokenRefresher> {
    Kimi.refresher().unwrap()
}

#[tokio::test]
async fn refresh_rotates_the_token_and_returns_only_what_changed() {
    let h = Harness::start().await;
    let tokens = h.mock.issue_tokens();
    let credential = saved(&tokens, Some("dev-0001"));
    let fields: Map<String, Value> = refresher().refresh(&h.ctx, &credential).await.unwrap();

    let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    assert_eq!(keys, ["access_token", "refresh_token", "expired", "last_refresh"]);
    assert_ne!(fields["access_token"], json!(tokens.access_token));
    assert_ne!(fields["refresh_token"], json!(tokens.refresh_token));
    assert!(fields["expired"].as_str().unwrap().ends_with('Z'));

    let seen = h.mock.requests_to(TOKEN_PATH);
    assert_eq!(seen.len(), 1);
    let form = seen[0].form();
    assert_eq!(
        form,
        [
            ("client_id".to_owned(), CLIENT_ID.to_owned()),
            ("grant_type".to_owned(), "refresh_token".to_owned()),
            ("refresh_token".to_owned(), tokens.refresh_token.clone()),
        ]
    );
    assert_eq!(header(&seen[0], "x-msh-device-id"), "dev-0001");

    // The old refresh token is spent: using it again is a dead token, not a retry.
    let again = refresher().refresh(&h.ctx, &credential).await.err().unwrap();
    assert!(matches!(again, RefreshError::Revoked(_)), "{again:?}");
    assert_clean(&again.to_string(), &[&tokens.refresh_token]);
}

#[tokio::test]
async fn revoked_refresh_tokens_need_a_relogin_and_other_failures_are_retried() {
    let h = Harness::start().await;
    let tokens = h.mock.issue_tokens();
    let credential = saved(&tokens, None);
    for status in [401, 403] {
        h.mock.set_fault(Fault::RevokeRefreshTokens { status });
        let error = refresher().refresh(&h.ctx, &credential).await.err().unwrap();
        assert!(matches!(error, RefreshError::Revoked(_)), "{status}: {error:?}");
        assert!(error.to_string().contains(&format!("HTTP {status}")), "{error}");
        assert_clean(&error.to_string(), &[&tokens.refresh_token, &tokens.access_token]);
    }
    // A credential without a device id still identifies itself (as a new device).
    let last = h.mock.requests_to(TOKEN_PATH).pop().unwrap();
    assert_eq!(header(&last, "x-msh-device-id").len(), 36);

    h.mock.set_fault(Fault::TokenServerError);
    let error = refresher().refresh(&h.ctx, &credential).await.err().unwrap();
    assert!(matches!(error, RefreshError::Transient(_)), "{error:?}");
    h.mock.set_fault(Fault::MalformedTokenJson);
    let error = refresher().refresh(&h.ctx, &credential).await.err().unwrap();
    assert!(matches!(error, RefreshError::Transient(_)), "{error:?}");
    assert_clean(&error.to_string(), &[&tokens.refresh_token]);
    h.mock.set_fault(Fault::RateLimit { retry_after: 42 });
    let error = refresher().refresh(&h.ctx, &credential).await.err().unwrap();
    assert_eq!(error, RefreshError::RateLimited { retry_after: Some(Duration::from_secs(42)) });

    let mut bare = Credential::new("kimi");
    bare.fields_mut().insert("access_token".into(), "x".into());
    assert_eq!(refresher().refresh(&h.ctx, &bare).await.err(), Some(RefreshError::NoRefreshToken));
}

#[tokio::test]
async fn requests_without_the_identity_headers_are_refused_by_the_mock() {
    // The mock's rule the provider is held to: a bare request names the first missing header.
    let h = Harness::start().await;
    let reply =
        reqwest::Client::new().post(h.mock.url(DEVICE_PATH)).form(&[("client_id", CLIENT_ID)]).send().await.unwrap();
    assert_eq!(reply.status(), 400);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body, json!({"error": "invalid_request", "error_description": "missing header x-msh-platform"}));
}
