//! Browser access (issue 8, deliverable 4): CORS on every route for allowed origins (a loopback
//! panel origin here; issue 12's restrictions are in `browser_safety.rs`) with the headers panels read
//! exposed, `OPTIONS` preflights answered 204 without a key, `/management.html` and its
//! disable flag, and JSON 404s for every unknown management path or method.

mod common;

use common::{KEY, Options, json, start, start_with};
use reqwest::Method;

/// A panel on another loopback port: allowed without configuration.
const PANEL_ORIGIN: &str = "http://127.0.0.1:5173";

fn exposed(response: &reqwest::Response) -> Vec<String> {
    response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .split(',')
        .map(|name| name.trim().to_ascii_lowercase())
        .collect()
}

#[tokio::test]
async fn management_answers_expose_the_version_headers_to_a_loopback_origin() {
    let server = start().await;
    let response = server.mgmt(Method::GET, "/config").header("origin", PANEL_ORIGIN).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], PANEL_ORIGIN);
    assert_eq!(response.headers()["x-cpa-version"], env!("CARGO_PKG_VERSION"));
    let exposed = exposed(&response);
    for name in ["x-cpa-version", "x-cpa-build-date", "x-cpa-support-plugin", "x-server-version", "x-server-build-date"]
    {
        assert!(exposed.contains(&name.to_owned()), "{name} not exposed: {exposed:?}");
    }
    // Errors carry them too: a panel reads the version even from a refused login.
    let refused =
        server.client.get(server.url("/v0/management/config")).header("origin", PANEL_ORIGIN).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["access-control-allow-origin"], PANEL_ORIGIN);
    assert!(refused.headers().contains_key("access-control-expose-headers"));
}

#[tokio::test]
async fn the_public_api_allows_a_loopback_origin_and_exposes_the_same_headers() {
    let server = start_with(Options { extra_yaml: "api-keys:\n  - client-key-1\n", ..Default::default() }).await;
    let response = server
        .client
        .get(server.url("/v1/models"))
        .bearer_auth("client-key-1")
        .header("origin", PANEL_ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["access-control-allow-origin"], PANEL_ORIGIN);
    assert!(exposed(&response).contains(&"x-request-id".to_owned()));
    let (_, body) = json(response).await;
    assert!(body["data"].is_array(), "{body}");
}

#[tokio::test]
async fn preflights_are_answered_204_without_a_key_on_management_and_public_routes() {
    let server = start_with(Options { extra_yaml: "api-keys:\n  - client-key-1\n", ..Default::default() }).await;
    for (path, method) in [
        ("/v0/management/config", "GET"),
        ("/v0/management/auth-files/status", "PATCH"),
        ("/v0/management/api-call", "POST"),
        ("/v0/management/no-such-thing", "DELETE"),
        ("/v1/models", "GET"),
        ("/v1/chat/completions", "POST"),
        ("/v1beta/models/gemini-2.5-pro:generateContent", "POST"),
    ] {
        let response = server
            .client
            .request(Method::OPTIONS, server.url(path))
            .header("origin", PANEL_ORIGIN)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "authorization,content-type")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204, "{path}");
        let headers = response.headers();
        assert_eq!(headers["access-control-allow-origin"], PANEL_ORIGIN, "{path}");
        let methods = headers["access-control-allow-methods"].to_str().unwrap();
        assert!(methods.contains(method), "{path}: {methods}");
        // `*` would not cover Authorization in a browser: the requested headers are allowed by name.
        assert_eq!(headers["access-control-allow-headers"], "authorization,content-type", "{path}");
        assert!(response.text().await.unwrap().is_empty());
    }
    // A preflight is not a management attempt: no failure is counted against the IP.
    let response = server.mgmt(Method::GET, "/config").send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn unknown_management_paths_and_methods_are_json_404s() {
    let server = start().await;
    for method in [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        for path in ["/no-such-endpoint/at/all", "/auth-files/download", "/api-call", "/config.yaml/extra"] {
            // Skip the pairs that exist.
            if (method == Method::GET && path == "/auth-files/download")
                || (method == Method::POST && path == "/api-call")
            {
                continue;
            }
            let response = server.mgmt(method.clone(), path).send().await.unwrap();
            assert_eq!(response.headers()["content-type"], "application/json", "{method} {path}");
            let (status, body) = json(response).await;
            assert_eq!((status, body), (404, serde_json::json!({"error": "not found"})), "{method} {path}");
        }
    }
    // Known paths with a method they lack, even without a key (as CPA's router answers).
    let response = server.client.put(server.url("/v0/management/auth-files/models")).send().await.unwrap();
    assert_eq!(json(response).await, (404, serde_json::json!({"error": "not found"})));
    let response = server.client.delete(server.url("/v0/management/")).send().await.unwrap();
    assert_eq!(json(response).await.0, 404);
}

#[tokio::test]
async fn the_embedded_panel_is_served_with_a_strict_csp_and_the_config_can_turn_it_off() {
    let server = start().await;
    let response = server.client.get(server.url("/management.html")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/html; charset=utf-8");
    let csp = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let page = response.text().await.unwrap();
    assert!(page.starts_with("<!doctype html>"), "{page}");
    assert!(page.contains(r#"<script type="module" src="/panel/js/app.js"></script>"#), "{page}");
    for outside in ["http://", "https://", "<script>"] {
        assert!(!page.contains(outside), "the page loads nothing from outside and runs no inline script: {outside}");
    }
    assert!(!page.contains(KEY));

    // Its scripts and styles, with their types; unknown assets are JSON 404s.
    for (path, kind) in [
        ("/panel/js/app.js", "text/javascript"),
        ("/panel/app.css", "text/css"),
        ("/panel/vendor/qr.js", "text/javascript"),
    ] {
        let response = server.client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        assert!(response.headers().contains_key("content-security-policy"), "{path}");
    }
    let missing = server.client.get(server.url("/panel/js/nope.js")).send().await.unwrap();
    assert_eq!(json(missing).await, (404, serde_json::json!({"error": "not found"})));

    // `/`: the panel for a browser, CPA's JSON banner for API clients.
    let browser =
        server.client.get(server.url("/")).header("accept", "text/html,application/xhtml+xml").send().await.unwrap();
    assert_eq!(browser.headers()["content-type"], "text/html; charset=utf-8");
    let (status, banner) = json(server.client.get(server.url("/")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(banner["message"], "Switchyard API server");

    // Turned off by config, live through the hot reload path: page and assets 404, `/` the banner.
    let yaml = std::fs::read_to_string(&server.config_path).unwrap();
    let disabled = yaml.replace("remote-management:\n", "remote-management:\n  disable-control-panel: true\n");
    let response = server.mgmt(Method::PUT, "/config.yaml").body(disabled).send().await.unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let response = server.client.get(server.url("/management.html")).send().await.unwrap();
    assert_eq!(json(response).await, (404, serde_json::json!({"error": "not found"})));
    let response = server.client.get(server.url("/panel/js/app.js")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let browser = server.client.get(server.url("/")).header("accept", "text/html").send().await.unwrap();
    assert_eq!(json(browser).await.1["message"], "Switchyard API server");
}

#[tokio::test]
async fn a_disabled_control_panel_at_start_is_a_404() {
    let server = start_with(Options {
        secret_key: None,
        extra_yaml: "remote-management:\n  disable-control-panel: true\n",
        ..Default::default()
    })
    .await;
    let response = server.client.get(server.url("/management.html")).send().await.unwrap();
    assert_eq!(response.status(), 404);
}
