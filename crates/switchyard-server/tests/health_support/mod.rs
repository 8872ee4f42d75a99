//! Shared set-up of the account-health suites: Claude OAuth accounts against a mock upstream
//! (whose token endpoint answers 404, so an in-request refresh fails fast and stays local), and
//! the management calls the suites read.

#![allow(dead_code)] // each test binary uses a different part

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use switchyard_testkit::upstream::MockUpstream;
use tokio::time::Instant;

use crate::common::{Options, TestServer, json, start_with};

pub const DEADLINE: Duration = Duration::from_secs(30);

/// A gateway whose Claude accounts call `upstream`, with `files` in its auth dir.
pub async fn gateway(upstream: &MockUpstream, files: &[(String, Value)], extra: &str) -> TestServer {
    gateway_with_urls(upstream, files, extra, |urls| urls).await
}

/// [`gateway`], with its `upstream-urls` block passed through `urls` first (to add entries).
pub async fn gateway_with_urls(
    upstream: &MockUpstream,
    files: &[(String, Value)],
    extra: &str,
    urls: impl FnOnce(String) -> String,
) -> TestServer {
    let claude = format!("  claude:\n    api: {}\n", upstream.base());
    let with_token = format!("{claude}    token: {}\n", upstream.url("/v1/oauth/token"));
    let yaml = format!("{}{extra}", urls(upstream.upstream_urls_yaml().replacen(&claude, &with_token, 1)));
    let server = start_with(Options { extra_yaml: &yaml, ..Default::default() }).await;
    crate::proxy_support::add_files(&server, files).await;
    server
}

pub async fn auth_file(server: &TestServer, name: &str) -> Value {
    let (status, body) =
        json(server.mgmt(Method::GET, &format!("/auth-files?name={name}")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    body["files"].as_array().unwrap().first().cloned().unwrap_or_else(|| panic!("{name} is not listed"))
}

/// `GET /health?auth_index=` → the one account.
pub async fn health_of(server: &TestServer, auth_index: &str) -> Value {
    let (status, body) =
        json(server.mgmt(Method::GET, &format!("/health?auth_index={auth_index}")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let accounts = body["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1, "{body}");
    accounts[0].clone()
}

pub async fn chat(server: &TestServer, model: &str) -> (u16, Value) {
    let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    json(server.client.post(server.url("/v1/chat/completions")).json(&body).send().await.unwrap()).await
}

pub async fn post(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    json(server.mgmt(Method::POST, path).json(&body).send().await.unwrap()).await
}

/// The file as it is on disk.
pub fn on_disk(server: &TestServer, name: &str) -> Value {
    serde_json::from_slice(&server.read(name)).unwrap()
}

/// Bounded wait for something a background task does.
pub async fn until<F: std::future::Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
    let deadline = Instant::now() + DEADLINE;
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[allow(unused_imports)] // not every suite reads bearers
pub use crate::proxy_support::bearers;
