//! Browser safety (issue 12, deliverable 4): without `api-keys` the public API serves only pages
//! of allowed origins (loopback, `allowed-origins`); every route refuses a foreign `Host` (DNS
//! rebinding); CORS names only allowed origins, never `*`; preflights of other origins get a 403
//! without CORS headers; and foreign pages cannot get the user's own IP banned from management.

mod common;
mod proxy_support;

use common::{KEY, Options, TestServer, json, start_with};
use proxy_support::{claude_file, dialect_calls, gateway};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_testkit::upstream::MockUpstream;

const FOREIGN: &str = "https://evil.example";
const LISTED: &str = "https://panel.example.com";

/// A gateway with one Claude account on `upstream`, and `extra` config.
async fn served_gateway(upstream: &MockUpstream, extra: &str) -> TestServer {
    gateway(upstream, &[claude_file("a", "tok-a", json!({}))], extra).await
}

/// The body as a form-like cross-site POST sends it: `text/plain`, so no preflight is needed.
fn text_plain(server: &TestServer, path: &str, body: &Value, origin: Option<&str>) -> reqwest::RequestBuilder {
    let mut request = server.client.post(server.url(path)).header("content-type", "text/plain").body(body.to_string());
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request
}

fn cors_headers(response: &reqwest::Response) -> Vec<String> {
    response.headers().keys().map(|k| k.as_str().to_owned()).filter(|k| k.starts_with("access-control-")).collect()
}

fn varies_by_origin(response: &reqwest::Response) -> bool {
    response.headers().get_all("vary").iter().any(|v| v.to_str().unwrap().contains("Origin"))
}

#[tokio::test]
async fn a_cross_site_text_plain_post_without_api_keys_is_refused_in_each_dialect() {
    let upstream = MockUpstream::start().await;
    let server = served_gateway(&upstream, "").await;
    for (dialect, path, body) in dialect_calls(false) {
        let response = text_plain(&server, &path, &body, Some(FOREIGN)).send().await.unwrap();
        assert!(cors_headers(&response).is_empty(), "{dialect}: {:?}", cors_headers(&response));
        let (status, error) = json(response).await;
        assert_eq!(status, 403, "{dialect}: {error}");
        match dialect {
            "anthropic" => {
                assert_eq!(error["type"], "error", "{error}");
                assert_eq!(error["error"]["type"], "permission_error", "{error}");
            }
            "gemini" => {
                assert_eq!(error["error"]["code"], 403, "{error}");
                assert_eq!(error["error"]["status"], "PERMISSION_DENIED", "{error}");
            }
            // The Responses API's own shape for a 403.
            "openai-responses" => assert_eq!(error["error"]["code"], "permission_denied", "{error}"),
            _ => assert_eq!(error["error"]["type"], "permission_error", "{dialect}: {error}"),
        }
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("allowed-origins"), "{dialect}: {error}");
    }
    // `null` (sandboxed frames, file pages) is no loopback origin either.
    let (_, path, body) = &dialect_calls(false)[0];
    assert_eq!(text_plain(&server, path, body, Some("null")).send().await.unwrap().status(), 403);
    assert!(upstream.requests().is_empty(), "nothing reached the upstream");
}

#[tokio::test]
async fn loopback_and_listed_origins_are_served_with_their_origin_reflected() {
    let upstream = MockUpstream::start().await;
    let server = served_gateway(&upstream, &format!("allowed-origins: [\"{LISTED}\"]\n")).await;
    let (_, path, body) = &dialect_calls(false)[0];
    for origin in ["http://localhost:3000", "http://127.0.0.1:5173", "http://[::1]:8080", LISTED] {
        let response = text_plain(&server, path, body, Some(origin)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{origin}");
        assert_eq!(response.headers()["access-control-allow-origin"], origin);
        assert!(varies_by_origin(&response), "{origin}");
    }
    // No Origin (SDKs, curl): served, and no CORS headers to give.
    let response = text_plain(&server, path, body, None).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(cors_headers(&response).is_empty());
    assert!(varies_by_origin(&response));
    assert_eq!(upstream.requests().len(), 5);
}

#[tokio::test]
async fn with_api_keys_the_public_api_serves_any_origin_that_has_a_key_but_names_none() {
    let upstream = MockUpstream::start().await;
    let server = served_gateway(&upstream, "api-keys: [client-key-1]\n").await;
    let (_, path, body) = &dialect_calls(false)[0];
    let keyless = text_plain(&server, path, body, Some(FOREIGN)).send().await.unwrap();
    assert_eq!(keyless.status(), 401, "the key is what protects it");
    let keyed = text_plain(&server, path, body, Some(FOREIGN)).bearer_auth("client-key-1").send().await.unwrap();
    assert_eq!(keyed.status(), 200);
    assert!(cors_headers(&keyed).is_empty(), "the foreign page still cannot read it");
}

#[tokio::test]
async fn a_foreign_host_is_refused_and_loopback_and_configured_hosts_are_served() {
    let server = start_with(Options { extra_yaml: "allowed-hosts: [gateway.lan]\n", ..Default::default() }).await;
    let port = server.base.rsplit(':').next().unwrap().to_owned();
    let get = |path: &str, host: &str| server.client.get(server.url(path)).header("host", host.to_owned());

    for host in ["evil.example", &format!("evil.example:{port}"), "localhost.evil.example", "192.168.1.7"] {
        let (status, body) = json(get("/v1/models", host).send().await.unwrap()).await;
        assert_eq!(status, 403, "{host}: {body}");
        assert!(body["error"].as_str().unwrap().contains("allowed-hosts"), "{body}");
        // Management too, even with the right key; and the panel page.
        let response = get("/v0/management/config", host).bearer_auth(KEY).send().await.unwrap();
        assert_eq!(response.status(), 403, "{host}");
        assert_eq!(get("/management.html", host).send().await.unwrap().status(), 403, "{host}");
    }
    for host in
        [format!("localhost:{port}"), format!("127.0.0.1:{port}"), "[::1]:9".to_owned(), "Gateway.lan:8317".into()]
    {
        assert_eq!(get("/v1/models", &host).send().await.unwrap().status(), 200, "{host}");
        let response = get("/v0/management/config", &host).bearer_auth(KEY).send().await.unwrap();
        assert_eq!(response.status(), 200, "{host}");
    }
    // Liveness probes address the server by whatever name they have.
    assert_eq!(get("/healthz", "evil.example").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn allowed_hosts_and_origins_follow_hot_reload() {
    let server = start_with(Options::default()).await;
    let models = |host: &str, origin: &str| {
        server.client.get(server.url("/v1/models")).header("host", host.to_owned()).header("origin", origin.to_owned())
    };
    assert_eq!(models("gateway.lan", "http://gateway.lan").send().await.unwrap().status(), 403);
    let listed = models("127.0.0.1", LISTED).send().await.unwrap();
    assert_eq!(listed.status(), 403, "an unlisted origin without api-keys");

    let yaml = std::fs::read_to_string(&server.config_path).unwrap();
    let extended = format!("{yaml}allowed-hosts: [gateway.lan]\nallowed-origins: [\"{LISTED}\"]\n");
    let response = server.mgmt(Method::PUT, "/config.yaml").body(extended).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());

    // Its own page reached by the listed name is same-origin.
    assert_eq!(models("gateway.lan", "http://gateway.lan").send().await.unwrap().status(), 200);
    let listed = models("127.0.0.1", LISTED).send().await.unwrap();
    assert_eq!(listed.status(), 200);
    assert_eq!(listed.headers()["access-control-allow-origin"], LISTED);
}

#[tokio::test]
async fn management_cors_names_loopback_and_listed_origins_only() {
    let server =
        start_with(Options { extra_yaml: &format!("allowed-origins: [\"{LISTED}\"]\n"), ..Default::default() }).await;
    for origin in ["http://localhost:5173", LISTED] {
        let response = server.mgmt(Method::GET, "/config").header("origin", origin).send().await.unwrap();
        assert_eq!(response.status(), 200, "{origin}");
        assert_eq!(response.headers()["access-control-allow-origin"], origin);
        assert!(varies_by_origin(&response));
        // Every requested header is allowed by name, for that origin only.
        let preflight = server
            .client
            .request(Method::OPTIONS, server.url("/v0/management/config"))
            .header("origin", origin)
            .header("access-control-request-method", "PUT")
            .header("access-control-request-headers", "authorization")
            .send()
            .await
            .unwrap();
        assert_eq!(preflight.status(), 204, "{origin}");
        assert_eq!(preflight.headers()["access-control-allow-origin"], origin);
        assert_eq!(preflight.headers()["access-control-allow-headers"], "authorization");
    }
    let response = server.mgmt(Method::GET, "/config").header("origin", FOREIGN).send().await.unwrap();
    assert!(cors_headers(&response).is_empty(), "{:?}", cors_headers(&response));
    let (status, body) = json(response).await;
    assert_eq!((status, body), (403, json!({"error": "origin not allowed: add it to allowed-origins"})));
}

#[tokio::test]
async fn a_preflight_from_an_unlisted_origin_gets_403_and_no_cors_headers() {
    let server = start_with(Options { extra_yaml: "api-keys: [client-key-1]\n", ..Default::default() }).await;
    for path in ["/v0/management/config", "/v1/chat/completions", "/v1beta/models/m:generateContent", "/nowhere"] {
        let response = server
            .client
            .request(Method::OPTIONS, server.url(path))
            .header("origin", FOREIGN)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization,content-type")
            .send()
            .await
            .unwrap();
        assert!(cors_headers(&response).is_empty(), "{path}: {:?}", cors_headers(&response));
        assert!(varies_by_origin(&response), "{path}");
        let (status, body) = json(response).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().contains("allowed-origins"), "{body}");
    }
}

#[tokio::test]
async fn keyless_requests_of_a_foreign_page_do_not_get_the_local_ip_banned() {
    let server = start_with(Options::default()).await;
    for _ in 0..10 {
        let response =
            server.client.get(server.url("/v0/management/config")).header("origin", FOREIGN).send().await.unwrap();
        assert_eq!(response.status(), 403);
    }
    let (status, body) = json(server.mgmt(Method::GET, "/config").send().await.unwrap()).await;
    assert_eq!(status, 200, "the user's own calls still work: {body}");
}

/// The same app served on every interface (`0.0.0.0`), reached through loopback.
async fn every_interface(server: &TestServer) -> String {
    let listener = tokio::net::TcpListener::bind("0.0.0.0:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = switchyard_server::app(server.state.clone());
    let config = server.state.config.clone();
    tokio::spawn(async move {
        switchyard_server::serve(listener, app, config, std::future::pending()).await.unwrap();
    });
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn an_every_interface_bind_serves_lan_names_only_when_listed_or_keyed() {
    let server = start_with(Options::default()).await;
    let base = every_interface(&server).await;
    let status = |host: &'static str, key: Option<&'static str>| {
        let mut request = server.client.get(format!("{base}/v1/models")).header("host", host);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status("gateway.lan:8317", None).await, 403, "no keys, no list: loopback names only");
    assert_eq!(status("localhost:8317", None).await, 200);

    let yaml = std::fs::read_to_string(&server.config_path).unwrap();
    server.state.config.replace_yaml(&format!("{yaml}api-keys: [client-key-1]\n")).unwrap();
    assert_eq!(status("gateway.lan:8317", Some("client-key-1")).await, 200, "keys set: any name");

    server.state.config.replace_yaml(&format!("{yaml}allowed-hosts: [gateway.lan]\n")).unwrap();
    assert_eq!(status("gateway.lan:8317", None).await, 200);
    assert_eq!(status("other.lan:8317", None).await, 403);
}
