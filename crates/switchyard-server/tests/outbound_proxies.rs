//! Outbound proxies end to end: a real gateway on loopback, the testkit's real HTTP and SOCKS5
//! proxies between it and the mock upstream / authorization server, and `proxy-url` set
//! globally, per key entry, per openai-compatibility key and per auth file.

mod common;

use std::time::{Duration, Instant};

use common::{Options, TestServer, json, start_with};
use serde_json::{Value, json};
use switchyard_testkit::claude::{MockClaudeAuth, PROFILE_PATH, TOKEN_PATH};
use switchyard_testkit::proxy::{MockProxy, ProxiedRequest, SocksAddress, Via};
use switchyard_testkit::upstream::MockUpstream;

const MODEL: &str = "claude-sonnet-4-5";
const USER: (&str, &str) = ("proxy-user", "proxy-pass");

/// `host:port` of a loopback base URL.
fn host_port(base: &str) -> String {
    url::Url::parse(base).unwrap().socket_addrs(|| None).unwrap()[0].to_string()
}

fn claude_file(name: &str, token: &str, expires_in: chrono::Duration) -> Value {
    json!({"type": "claude", "email": format!("{name}@example.com"), "access_token": token,
           "refresh_token": format!("rt-{name}"), "expired": (chrono::Utc::now() + expires_in).to_rfc3339()})
}

async fn gateway(yaml: &str, files: &[(&str, Value)]) -> TestServer {
    let server = start_with(Options { extra_yaml: yaml, ..Default::default() }).await;
    for (name, body) in files {
        std::fs::write(server.file(name), serde_json::to_vec(body).unwrap()).unwrap();
    }
    server.state.store.rescan().await.unwrap();
    server.state.sync_accounts();
    server
}

async fn messages(server: &TestServer, model: &str) -> (u16, Value) {
    let request = json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]});
    json(server.client.post(server.url("/v1/messages")).json(&request).send().await.unwrap()).await
}

fn credentials() -> Option<(String, String)> {
    Some((USER.0.to_owned(), USER.1.to_owned()))
}

#[tokio::test]
async fn api_calls_go_through_a_global_http_proxy_with_credentials_on_one_pooled_client() {
    let upstream = MockUpstream::start().await;
    let proxy = MockProxy::http(Some(USER)).await;
    let yaml = format!("{}proxy-url: {}\n", upstream.upstream_urls_yaml(), proxy.url_as("http", Some(USER)));
    let server =
        gateway(&yaml, &[("claude-a@example.com.json", claude_file("a", "tok-a", chrono::Duration::days(1)))]).await;

    for _ in 0..3 {
        let (status, body) = messages(&server, MODEL).await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(upstream.requests().len(), 3);
    let seen = proxy.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for request in &seen {
        assert_eq!(request.target, host_port(upstream.base()));
        let expected = format!("{}/v1/messages", upstream.base());
        assert!(
            matches!(&request.via, Via::Forward { method, uri } if method == "POST" && uri.starts_with(&expected)),
            "{request:?}"
        );
        assert_eq!((request.credentials.clone(), request.accepted), (credentials(), true));
    }
    assert!(
        upstream.last_request().headers.get("proxy-authorization").is_none(),
        "the proxy's credentials never reach the upstream"
    );
    assert_eq!(server.state.http_clients.built(), 1, "three requests, one client");
}

#[tokio::test]
async fn api_calls_go_through_socks5_and_socks5h_with_credentials() {
    let upstream = MockUpstream::start().await;
    let proxy = MockProxy::socks5(Some(USER)).await;
    let file = ("claude-a@example.com.json", claude_file("a", "tok-a", chrono::Duration::days(1)));

    let yaml = format!("{}proxy-url: {}\n", upstream.upstream_urls_yaml(), proxy.url_as("socks5", Some(USER)));
    let server = gateway(&yaml, std::slice::from_ref(&file)).await;
    let (status, body) = messages(&server, MODEL).await;
    assert_eq!(status, 200, "{body}");

    // socks5h leaves the name to the proxy: point the upstream URLs at `localhost`.
    let by_name = upstream.upstream_urls_yaml().replace("127.0.0.1", "localhost");
    let yaml = format!("{by_name}proxy-url: {}\n", proxy.url_as("socks5h", Some(USER)));
    let server = gateway(&yaml, &[file]).await;
    let (status, body) = messages(&server, MODEL).await;
    assert_eq!(status, 200, "{body}");

    let port = url::Url::parse(upstream.base()).unwrap().port().unwrap();
    assert_eq!(
        proxy.seen(),
        [
            ProxiedRequest {
                target: format!("127.0.0.1:{port}"),
                via: Via::Socks(SocksAddress::Ipv4),
                credentials: credentials(),
                accepted: true,
            },
            ProxiedRequest {
                target: format!("localhost:{port}"),
                via: Via::Socks(SocksAddress::Domain),
                credentials: credentials(),
                accepted: true,
            },
        ]
    );
    assert_eq!(upstream.requests().len(), 2);
}

#[tokio::test]
async fn a_key_entrys_proxy_beats_the_global_one_and_direct_bypasses_it() {
    let upstream = MockUpstream::start().await;
    let global = MockProxy::http(None).await;
    let own = MockProxy::socks5(Some(USER)).await;
    let own_url = own.url_as("socks5", Some(USER));
    let b = upstream.base();
    let yaml = format!(
        "{urls}proxy-url: {global}\n\
         claude-api-key:\n\
         \x20 - {{api-key: sk-global, prefix: g}}\n\
         \x20 - {{api-key: sk-own, prefix: o, proxy-url: \"{own_url}\"}}\n\
         \x20 - {{api-key: sk-direct, prefix: d, proxy-url: direct}}\n\
         openai-compatibility:\n\
         \x20 - name: local\n\
         \x20   base-url: {b}/v1\n\
         \x20   api-key-entries:\n\
         \x20     - {{api-key: sk-compat, proxy-url: \"{own_url}\"}}\n\
         \x20   models:\n\
         \x20     - {{name: gpt-4o-mini, alias: compat-model}}\n",
        urls = upstream.upstream_urls_yaml(),
        global = global.url(),
    );
    let server = gateway(&yaml, &[]).await;

    let (status, body) = messages(&server, &format!("g/{MODEL}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((global.seen().len(), own.seen().len()), (1, 0), "no own proxy: the global one");

    let (status, body) = messages(&server, &format!("o/{MODEL}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((global.seen().len(), own.seen().len()), (1, 1), "the key's own proxy wins");
    assert_eq!(own.seen()[0].credentials, credentials());

    let (status, body) = messages(&server, &format!("d/{MODEL}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((global.seen().len(), own.seen().len()), (1, 1), "direct bypasses both");

    let request = json!({"model": "compat-model", "messages": [{"role": "user", "content": "Hi"}]});
    let (status, body) =
        json(server.client.post(server.url("/v1/chat/completions")).json(&request).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((global.seen().len(), own.seen().len()), (1, 2), "an openai-compatibility key's proxy");

    let keys: Vec<String> = upstream
        .requests()
        .iter()
        .map(|r| {
            let header = r.headers.get("x-api-key").or_else(|| r.headers.get("authorization")).unwrap();
            header.to_str().unwrap().trim_start_matches("Bearer ").to_owned()
        })
        .collect();
    assert_eq!(keys, ["sk-global", "sk-own", "sk-direct", "sk-compat"]);
}

#[tokio::test]
async fn an_auth_files_proxy_url_carries_its_refresh_and_its_api_calls() {
    let auth = MockClaudeAuth::start().await;
    let tokens = auth.issue_tokens();
    let upstream = MockUpstream::start().await;
    let own = MockProxy::http(Some(USER)).await;
    let global = MockProxy::http(None).await;
    let mut file = claude_file("r", &tokens.access_token, chrono::Duration::seconds(5));
    file["refresh_token"] = json!(tokens.refresh_token);
    // The legacy hyphenated key: CPA canonicalises it to `proxy_url`.
    file["proxy-url"] = json!(own.url_as("http", Some(USER)));
    let yaml = format!(
        "upstream-urls:\n  claude:\n    api: {}\n    token: {}\n    profile: {}\nproxy-url: {}\n",
        upstream.base(),
        auth.url(TOKEN_PATH),
        auth.url(PROFILE_PATH),
        global.url()
    );
    let server = gateway(&yaml, &[("claude-r@example.com.json", file)]).await;

    let (status, body) = messages(&server, MODEL).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(auth.refresh_calls(), 1, "the expiring token was refreshed first");
    let targets: Vec<String> = own.seen().iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets, [host_port(&auth.url("/")), host_port(upstream.base())], "refresh, then the API call");
    assert!(own.seen().iter().all(|r| r.credentials == credentials() && r.accepted));
    assert!(global.seen().is_empty(), "the file's proxy beats the global one");
}

#[tokio::test]
async fn a_logins_token_exchange_goes_through_the_global_proxy() {
    let auth = MockClaudeAuth::start().await;
    let proxy = MockProxy::socks5(Some(USER)).await;
    let yaml = format!("{}proxy-url: {}\n", auth.upstream_urls_yaml(), proxy.url_as("socks5h", Some(USER)));
    let server = gateway(&yaml, &[]).await;

    let (status, started) = json(server.mgmt(reqwest::Method::GET, "/anthropic-auth-url").send().await.unwrap()).await;
    assert_eq!(status, 200, "{started}");
    let state = started["state"].as_str().unwrap().to_owned();
    // The user's browser reaches the authorize page directly, and stops at the redirect.
    let browser = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let page = browser.get(started["url"].as_str().unwrap()).send().await.unwrap();
    let location = page.headers()["location"].to_str().unwrap().to_owned();
    let pasted = server
        .client
        .post(server.url("/v0/management/oauth-callback"))
        .json(&json!({"redirect_url": location}))
        .send()
        .await
        .unwrap();
    assert_eq!(pasted.status(), 200);

    let deadline = Instant::now() + Duration::from_secs(10);
    let outcome = loop {
        let (_, body) =
            json(server.mgmt(reqwest::Method::GET, &format!("/get-auth-status?state={state}")).send().await.unwrap())
                .await;
        if body["status"] != "wait" {
            break body;
        }
        assert!(Instant::now() < deadline, "login still waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(outcome["status"], "ok", "{outcome}");
    assert_eq!(auth.requests_to(TOKEN_PATH).len(), 1);
    let seen = proxy.seen();
    assert!(!seen.is_empty(), "the exchange went through the proxy");
    let auth_target = host_port(&auth.url("/"));
    assert!(seen.iter().all(|r| r.target == auth_target && r.credentials == credentials()), "{seen:?}");
}

#[tokio::test]
async fn a_dead_proxy_fails_the_attempt_over_to_the_next_account_instead_of_hanging() {
    let upstream = MockUpstream::start().await;
    let silent = MockProxy::silent("socks5").await;
    // A port nobody listens on: bound, then released.
    let refused = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let yaml = format!(
        "{urls}timeouts:\n  upstream-connect: 1\n\
         claude-api-key:\n\
         \x20 - {{api-key: sk-hung, priority: 10, proxy-url: \"{silent}\"}}\n\
         \x20 - {{api-key: sk-refused, priority: 5, proxy-url: \"http://{refused}\"}}\n\
         \x20 - {{api-key: sk-direct, priority: 0}}\n",
        urls = upstream.upstream_urls_yaml(),
        silent = silent.url(),
    );
    let server = gateway(&yaml, &[]).await;

    let started = Instant::now();
    let (status, body) = messages(&server, MODEL).await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < Duration::from_secs(10), "the connect timeout ended the hung attempt");
    assert_eq!(silent.connections(), 1, "the first account's proxy was tried");
    let keys: Vec<String> =
        upstream.requests().iter().map(|r| r.headers["x-api-key"].to_str().unwrap().to_owned()).collect();
    assert_eq!(keys, ["sk-direct"], "only the direct account reached the upstream");
}

#[tokio::test]
async fn an_unusable_auth_file_proxy_is_a_clear_attempt_error_not_a_panic() {
    let upstream = MockUpstream::start().await;
    let mut file = claude_file("b", "tok-b", chrono::Duration::days(1));
    file["proxy_url"] = json!("ftp://user:hunter2@proxy.invalid:2121");
    let server = gateway(&upstream.upstream_urls_yaml(), &[("claude-b@example.com.json", file)]).await;
    let (status, body) = messages(&server, MODEL).await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("proxy ftp://proxy.invalid:2121 is unusable"), "{message}");
    assert!(!body.to_string().contains("hunter2"), "{body}");
    assert!(upstream.requests().is_empty());
}
