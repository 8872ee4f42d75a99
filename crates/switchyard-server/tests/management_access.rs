//! Who may use the management API, and the config endpoints.

mod common;

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use common::{KEY, Options, json, start, start_with};
use reqwest::Method;
use tower::ServiceExt;

#[tokio::test]
async fn every_management_route_is_404_without_a_configured_key() {
    let server = start_with(Options { secret_key: None, with_corpus: true, ..Default::default() }).await;
    let before = server.snapshot();
    for (method, path) in [
        (Method::GET, "/config"),
        (Method::GET, "/config.yaml"),
        (Method::PUT, "/config.yaml"),
        (Method::GET, "/auth-files"),
        (Method::POST, "/auth-files?name=x.json"),
        (Method::DELETE, "/auth-files?all=true"),
        (Method::PATCH, "/auth-files/status"),
        (Method::GET, "/auth-files/download?name=claude-jane.doe@example.com.json"),
        (Method::GET, "/no-such-route"),
    ] {
        let response = server.mgmt(method.clone(), path).body("{}").send().await.unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
    }
    assert_eq!(server.snapshot(), before, "a disabled management API changed files");
    // The public health route is unaffected.
    assert_eq!(server.client.get(server.url("/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn key_is_required_and_checked() {
    let server = start().await;
    let url = server.url("/v0/management/config");

    let (status, body) = json(server.client.get(&url).send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("missing management key")));

    let (status, body) = json(server.client.get(&url).bearer_auth("wrong").send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid management key")));

    assert_eq!(server.client.get(&url).bearer_auth(KEY).send().await.unwrap().status(), 200);
    assert_eq!(server.client.get(&url).header("X-Management-Key", KEY).send().await.unwrap().status(), 200);
    // A non-Bearer Authorization value is taken whole.
    assert_eq!(server.client.get(&url).header("Authorization", KEY).send().await.unwrap().status(), 200);
    let response = server.client.get(&url).bearer_auth(KEY).send().await.unwrap();
    assert!(response.headers().contains_key("x-cpa-version"));
}

#[tokio::test]
async fn five_failures_ban_the_ip_even_for_the_right_key() {
    let server = start().await;
    let url = server.url("/v0/management/auth-files");
    // A success before the ban resets nothing that matters here; failures count from zero.
    for attempt in 1..=5 {
        let response = if attempt == 3 {
            server.client.get(&url).send().await.unwrap() // a missing key counts too
        } else {
            server.client.get(&url).bearer_auth("nope").send().await.unwrap()
        };
        assert_eq!(response.status(), 401, "attempt {attempt}");
    }
    let (status, body) = json(server.client.get(&url).bearer_auth(KEY).send().await.unwrap()).await;
    assert_eq!(status, 403);
    let message = body["error"].as_str().unwrap();
    assert!(message.starts_with("IP banned due to too many failed attempts. Try again in "), "{message}");
    assert!(message.contains("m"), "{message}");
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let server = start().await;
    let url = server.url("/v0/management/config");
    for _ in 0..4 {
        assert_eq!(server.client.get(&url).bearer_auth("nope").send().await.unwrap().status(), 401);
    }
    assert_eq!(server.client.get(&url).bearer_auth(KEY).send().await.unwrap().status(), 200);
    for _ in 0..4 {
        assert_eq!(server.client.get(&url).bearer_auth("nope").send().await.unwrap().status(), 401);
    }
    assert_eq!(server.client.get(&url).bearer_auth(KEY).send().await.unwrap().status(), 200);
}

/// Remote callers are simulated by handing the real router a non-loopback peer address, the way
/// axum's listener would for a connection from another host.
async fn call_from(app: axum::Router, peer: &str, key: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = Request::get("/v0/management/config");
    if let Some(key) = key {
        request = request.header("Authorization", format!("Bearer {key}"));
    }
    let mut request = request.body(Body::empty()).unwrap();
    request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    let response = app.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn remote_callers_are_refused_unless_allowed() {
    let server = start().await;
    let app = switchyard_server::app(server.state.clone());
    let (status, body) = call_from(app.clone(), "203.0.113.7:5000", Some(KEY)).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("remote management disabled")));
    let (status, _) = call_from(app.clone(), "[2001:db8::5]:5000", Some(KEY)).await;
    assert_eq!(status, 403);
    let (status, _) = call_from(app, "127.0.0.1:5000", Some(KEY)).await;
    assert_eq!(status, 200);

    let allowed = start_with(Options { extra_yaml: "  allow-remote: true\n", ..Default::default() }).await;
    let app = switchyard_server::app(allowed.state.clone());
    assert_eq!(call_from(app.clone(), "203.0.113.7:5000", Some(KEY)).await.0, 200);
    assert_eq!(call_from(app, "203.0.113.7:5000", Some("wrong")).await.0, 401);
}

#[tokio::test]
async fn management_password_env_works_and_allows_remote() {
    let server =
        start_with(Options { secret_key: None, management_password: Some("env-pass"), ..Default::default() }).await;
    let app = switchyard_server::app(server.state.clone());
    assert_eq!(call_from(app.clone(), "203.0.113.9:1", Some("env-pass")).await.0, 200);
    assert_eq!(call_from(app, "127.0.0.1:1", Some("other")).await.0, 401);
}

#[tokio::test]
async fn cors_preflight_needs_no_key() {
    let server =
        start_with(Options { extra_yaml: "allowed-origins: [\"http://panel.example\"]\n", ..Default::default() }).await;
    let response = server
        .client
        .request(Method::OPTIONS, server.url("/v0/management/auth-files"))
        .header("Origin", "http://panel.example")
        .header("Access-Control-Request-Method", "PATCH")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    assert_eq!(response.headers()["access-control-allow-origin"], "http://panel.example");
}

#[tokio::test]
async fn healthz_answers_get_and_head() {
    let server = start().await;
    let (status, body) = json(server.client.get(server.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    assert_eq!(server.client.head(server.url("/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn get_config_uses_cpa_keys_and_hides_the_secret() {
    let server = start_with(Options { extra_yaml: "debug: true\napi-keys: [client-1]\n", ..Default::default() }).await;
    let (status, body) = json(server.mgmt(Method::GET, "/config").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(body["port"], 8317);
    assert_eq!(body["debug"], true);
    assert_eq!(body["api-keys"], serde_json::json!(["client-1"]));
    let shown = body["remote-management"]["secret-key"].as_str().unwrap();
    assert!(shown.starts_with("$2"), "secret shown as {shown}");
    assert!(!body.to_string().contains(KEY));
}

#[tokio::test]
async fn config_yaml_round_trip_and_validation() {
    let server = start().await;
    let original = std::fs::read_to_string(&server.config_path).unwrap();
    let response = server.mgmt(Method::GET, "/config.yaml").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().contains("yaml"));
    assert_eq!(response.text().await.unwrap(), original);

    // A bad document is refused with line and field; the file is byte-identical afterwards.
    let bad = original.replace("port: 8317", "port: not-a-port");
    let (status, body) = json(server.mgmt(Method::PUT, "/config.yaml").body(bad).send().await.unwrap()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid config");
    assert_eq!(body["line"], 1, "{body}");
    assert!(body["message"].as_str().unwrap().contains("port"), "{body}");
    assert_eq!(std::fs::read_to_string(&server.config_path).unwrap(), original);

    let (status, _) = json(server.mgmt(Method::PUT, "/config.yaml").body("a: [unclosed\n").send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(std::fs::read_to_string(&server.config_path).unwrap(), original);

    let oversize = format!("# {}\n{original}", "x".repeat(2 * 1024 * 1024));
    let (status, _) = json(server.mgmt(Method::PUT, "/config.yaml").body(oversize).send().await.unwrap()).await;
    assert_eq!(status, 413);
    assert_eq!(std::fs::read_to_string(&server.config_path).unwrap(), original);

    // A good document is written and applied at once.
    let good = format!("{original}debug: true\nrequest-retry: 7\n");
    let (status, body) = json(server.mgmt(Method::PUT, "/config.yaml").body(good.clone()).send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")), "{body}");
    assert_eq!(std::fs::read_to_string(&server.config_path).unwrap(), good);
    let (_, config) = json(server.mgmt(Method::GET, "/config").send().await.unwrap()).await;
    assert_eq!(config["request-retry"], 7);
    assert_eq!(config["debug"], true);
}

#[tokio::test]
async fn unknown_keys_in_a_put_are_warnings_not_errors() {
    let server = start().await;
    let original = std::fs::read_to_string(&server.config_path).unwrap();
    let doc = format!("{original}frobnicate: 1\n");
    let (status, body) = json(server.mgmt(Method::PUT, "/config.yaml").body(doc).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["warnings"].to_string().contains("frobnicate"), "{body}");
}

/// 73 bytes: one past what bcrypt reads.
const LONG_KEY: &str = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-long-keys7";

#[tokio::test]
async fn a_key_longer_than_72_bytes_is_checked_in_full() {
    assert_eq!(LONG_KEY.len(), 73);
    let server = start_with(Options { secret_key: Some(LONG_KEY), ..Default::default() }).await;
    let url = server.url("/v0/management/config");
    let mut changed_tail = LONG_KEY.to_owned();
    changed_tail.pop();
    changed_tail.push('8');
    let (status, body) = json(server.client.get(&url).bearer_auth(&changed_tail).send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid management key")));
    // The first 72 bytes alone are not the key either.
    let first_72 = &LONG_KEY[..72];
    assert_eq!(server.client.get(&url).bearer_auth(first_72).send().await.unwrap().status(), 401);
    assert_eq!(server.client.get(&url).bearer_auth(LONG_KEY).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_bcrypt_hashed_secret_never_matches_a_key_longer_than_72_bytes() {
    let key_72 = &LONG_KEY[..72];
    let hash = bcrypt::hash(key_72, 4).unwrap();
    let server = start_with(Options { secret_key: Some(&hash), ..Default::default() }).await;
    let url = server.url("/v0/management/config");
    // bcrypt would read only the first 72 bytes of this and call it a match.
    assert_eq!(server.client.get(&url).bearer_auth(LONG_KEY).send().await.unwrap().status(), 401);
    assert_eq!(server.client.get(&url).bearer_auth(key_72).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn concurrent_wrong_guesses_cannot_outrun_the_ban() {
    let server = start().await;
    let url = server.url("/v0/management/config");
    let guesses = (0..20).map(|i| {
        let request = server.client.get(&url).bearer_auth(format!("guess-{i}"));
        async move { request.send().await.unwrap().status().as_u16() }
    });
    let statuses = futures::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let banned = statuses.iter().filter(|s| **s == 403).count();
    assert_eq!((checked, banned), (5, 15), "only five guesses are ever checked: {statuses:?}");
    let (status, body) = json(server.client.get(&url).bearer_auth(KEY).send().await.unwrap()).await;
    assert_eq!(status, 403, "the right key is banned too: {body}");
}
