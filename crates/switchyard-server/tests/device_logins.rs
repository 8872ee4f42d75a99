//! The management OAuth API for device logins (CPA §2), with Kimi against the mock Kimi server:
//! the start answer's shape, `get-auth-status` (`wait` with the code again, then `ok` with the
//! file or `error` with the message), `DELETE /oauth-session`, refused callbacks, and the
//! errors of a bad method, an unknown provider and a provider that is down.

mod common;

use std::time::Duration;

use common::{Options, TestServer, json, start_with};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_testkit::kimi::{DeviceAnswer, Fault, MockKimi, VERIFICATION_URI};
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(30);

async fn server(mock: &MockKimi) -> TestServer {
    start_with(Options { extra_yaml: &mock.upstream_urls_yaml(), ..Default::default() }).await
}

async fn start(server: &TestServer, query: &str) -> (u16, Value) {
    json(server.mgmt(Method::GET, &format!("/kimi-auth-url{query}")).send().await.unwrap()).await
}

async fn status(server: &TestServer, state: &str) -> Value {
    let (code, body) =
        json(server.mgmt(Method::GET, &format!("/get-auth-status?state={state}")).send().await.unwrap()).await;
    assert_eq!(code, 200, "{body}");
    body
}

/// Polls `get-auth-status` (as panels do) until it is no longer `wait`.
async fn settled(server: &TestServer, state: &str) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let body = status(server, state).await;
        if body["status"] != "wait" {
            return body;
        }
        assert!(Instant::now() < deadline, "the login never settled: {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn auth_files(server: &TestServer) -> Vec<String> {
    server.snapshot().into_iter().map(|(name, _)| name).filter(|n| n.ends_with(".json")).collect()
}

#[tokio::test]
async fn start_answers_cpas_device_shape_and_status_shows_the_code_until_the_file_is_saved() {
    let mock = MockKimi::start().await;
    mock.set_device_timing(600, 1);
    mock.set_answers(&[DeviceAnswer::Pending, DeviceAnswer::Pending, DeviceAnswer::Approve]);
    let server = server(&mock).await;
    let (code, body) = start(&server, "").await;
    assert_eq!(code, 200, "{body}");
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "status",
            "url",
            "state",
            "flow",
            "user_code",
            "verification_uri",
            "verification_uri_complete",
            "expires_in",
            "interval"
        ]
    );
    let user_code = body["user_code"].as_str().unwrap().to_owned();
    let complete = format!("{VERIFICATION_URI}?user_code={user_code}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["flow"], "device");
    assert_eq!(body["url"], complete, "url is the complete verification URI");
    assert_eq!(body["verification_uri"], VERIFICATION_URI);
    assert_eq!(body["verification_uri_complete"], complete);
    assert_eq!((body["expires_in"].as_u64(), body["interval"].as_u64()), (Some(600), Some(1)));
    let state = body["state"].as_str().unwrap().to_owned();
    assert!(state.starts_with("kmi-"), "{state}");
    assert!(!body.to_string().contains("mock-kimi-dc-"), "the device code is never shown: {body}");

    // A panel that reloads gets the code again, with the time left.
    let waiting = status(&server, &state).await;
    assert_eq!(waiting["status"], "wait", "{waiting}");
    assert_eq!(waiting["flow"], "device");
    assert_eq!(waiting["user_code"], user_code.as_str());
    assert_eq!(waiting["verification_uri"], VERIFICATION_URI);
    assert_eq!(waiting["verification_uri_complete"], complete);
    let left = waiting["expires_in"].as_i64().unwrap();
    assert!((590..=600).contains(&left), "{left}");

    let done = settled(&server, &state).await;
    let file = done["file"].as_str().unwrap_or_else(|| panic!("no file: {done}")).to_owned();
    assert_eq!(done, json!({"status": "ok", "file": file}));
    assert!(file.starts_with("kimi-"), "{file}");
    assert_eq!(auth_files(&server), [file]);
    assert_eq!(mock.polls(), 3);
}

#[tokio::test]
async fn denied_and_expired_codes_are_reported_with_their_message() {
    let mock = MockKimi::start().await;
    mock.set_device_timing(600, 1);
    let server = server(&mock).await;

    mock.set_answers(&[DeviceAnswer::Deny]);
    let (_, body) = start(&server, "").await;
    let failed = settled(&server, body["state"].as_str().unwrap()).await;
    assert_eq!(failed, json!({"status": "error", "error": "Authentication failed: the user denied the device login"}));

    mock.set_answers(&[DeviceAnswer::Expire]);
    let (_, body) = start(&server, "").await;
    let failed = settled(&server, body["state"].as_str().unwrap()).await;
    assert_eq!(
        failed,
        json!({"status": "error", "error": "device code expired before the login was confirmed; start the login again"})
    );
    assert!(auth_files(&server).is_empty());
}

#[tokio::test]
async fn delete_oauth_session_cancels_a_device_login_and_nothing_is_saved() {
    let mock = MockKimi::start().await;
    mock.set_device_timing(600, 1);
    mock.set_answers(&[DeviceAnswer::Approve]);
    mock.hold_polls(true);
    let server = server(&mock).await;
    let (_, body) = start(&server, "").await;
    let state = body["state"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + DEADLINE;
    while mock.polls() == 0 {
        assert!(Instant::now() < deadline, "no poll reached the mock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let (code, cancelled) =
        json(server.mgmt(Method::DELETE, &format!("/oauth-session?state={state}")).send().await.unwrap()).await;
    assert_eq!((code, cancelled), (200, json!({"status": "ok", "cancelled": true})));
    assert_eq!(status(&server, &state).await, json!({"status": "error", "error": "unknown or expired state"}));
    let (_, again) =
        json(server.mgmt(Method::DELETE, &format!("/oauth-session?state={state}")).send().await.unwrap()).await;
    assert_eq!(again["cancelled"], false, "only a pending session is cancelled");

    // The user approves after all: the held poll is answered, but the login is gone.
    mock.hold_polls(false);
    let (_, next) = start(&server, "").await;
    let done = settled(&server, next["state"].as_str().unwrap()).await;
    assert_eq!(done["status"], "ok", "{done}");
    assert_eq!(auth_files(&server), [done["file"].as_str().unwrap()], "only the second login saved a file");
}

#[tokio::test]
async fn callbacks_for_a_device_session_are_refused_with_409() {
    let mock = MockKimi::start().await;
    mock.set_device_timing(600, 1);
    mock.set_answers(&[DeviceAnswer::Pending]);
    let server = server(&mock).await;
    let (_, body) = start(&server, "").await;
    let state = body["state"].as_str().unwrap().to_owned();

    let (code, refused) = json(
        server
            .client
            .post(server.url("/v0/management/oauth-callback"))
            .json(&json!({"provider": "kimi", "state": state, "code": "injected"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(code, 409, "{refused}");
    assert_eq!(refused, json!({"status": "error", "error": "oauth flow is no longer waiting for a callback"}));
    assert_eq!(status(&server, &state).await["status"], "wait", "the login goes on");
}

#[tokio::test]
async fn bad_methods_unknown_providers_and_a_provider_that_is_down_are_clear_errors() {
    let mock = MockKimi::start().await;
    let server = server(&mock).await;

    let (code, body) = start(&server, "?method=browser").await;
    assert_eq!((code, body), (400, json!({"error": "unknown login method `browser` for kimi; use: device"})));
    let (code, body) = start(&server, "?method=device").await;
    assert_eq!((code, body["flow"].as_str()), (200, Some("device")));

    let (code, body) = json(server.mgmt(Method::GET, "/nope-auth-url").send().await.unwrap()).await;
    assert_eq!((code, body), (404, json!({"error": "unknown provider `nope`"})));

    mock.set_fault(Fault::DeviceEndpointDown);
    let polls_before = mock.polls();
    let (code, body) = start(&server, "").await;
    assert_eq!(code, 502, "{body}");
    assert_eq!(
        body,
        json!({"error": "Failed to exchange authorization code for tokens: device authorization endpoint answered HTTP 503"})
    );
    assert_eq!(mock.polls(), polls_before, "no session polls for a code it never got");
}
