//! OAuth logins end to end through the management API (CPA §2), against loopback mocks that
//! behave like the real authorization servers: start → authorize → callback (the local
//! listener, a pasted URL in every accepted shape, the main-port route) → token exchange →
//! identity → file → status → refresh, for Claude, Codex, Gemini CLI and Antigravity, plus every
//! bad path the issue lists. Waits poll with bounded deadlines; no sleep is an assertion.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Options, TestServer, json, start_with};
use reqwest::header::LOCATION;
use reqwest::{Client, Method, StatusCode, redirect};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchyard_auth::login::{LoginOptions, StartOptions};
use switchyard_testkit::claude::{self as claude_mock, MockClaudeAuth};
use switchyard_testkit::google::{self as google_mock, MockGoogle, TokenFault};
use switchyard_testkit::openai::{self as openai_mock, MockOpenAiAuth};

const CLAUDE_EMAIL: &str = "claude-user@example.com";
const CLAUDE_FILE: &str = "claude-claude-user@example.com.json";
const GOOGLE_EMAIL: &str = "jane.doe@example.com";
const GEMINI_DEFAULT_FILE: &str = "gemini-jane.doe@example.com-gen-lang-client-0123456789.json";
const ANTIGRAVITY_FILE: &str = "antigravity-jane.doe@example.com.json";
/// Bound on every wait: a broken build fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(20);
const SUCCESS_PAGE: &str = "Authentication successful!";

/// `codex-<hash8>-<email>-<plan>.json` for the mock's default account, computed here
/// independently of the provider: hash8 = first 8 hex digits of SHA-256(chatgpt_account_id).
fn codex_file() -> String {
    let hash = hex::encode(Sha256::digest(b"mock-chatgpt-account-0001"));
    format!("codex-{}-codex-user@example.com-plus.json", &hash[..8])
}

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A server pointed at `mock_yaml`; each login in `listeners` gets its callback listener on any
/// free port (`oauth-callback-ports: {<login>: 0}`), so parallel tests never collide.
async fn server(mock_yaml: &str, listeners: &[&str]) -> TestServer {
    let mut yaml = mock_yaml.to_owned();
    if !listeners.is_empty() {
        yaml.push_str("oauth-callback-ports:\n");
        for login in listeners {
            yaml.push_str(&format!("  {login}: 0\n"));
        }
    }
    start_with(Options { extra_yaml: &yaml, ..Default::default() }).await
}

/// A browser: follows the authorize page's redirect wherever it points.
fn browser() -> Client {
    Client::builder().no_proxy().build().unwrap()
}

/// A browser on another machine: the redirect to `localhost` goes nowhere, the user copies it.
fn stopping_browser() -> Client {
    Client::builder().no_proxy().redirect(redirect::Policy::none()).build().unwrap()
}

struct Started {
    url: String,
    state: String,
}

/// `?is_webui=true&<options>`, `?<options>` or nothing.
fn start_query(webui: bool, options: &str) -> String {
    let parts: Vec<&str> =
        [webui.then_some("is_webui=true"), Some(options).filter(|o| !o.is_empty())].into_iter().flatten().collect();
    if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
}

fn param(url: &str, key: &str) -> Option<String> {
    url::Url::parse(url).unwrap().query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned())
}

/// `GET /v0/management/<login>-auth-url<query>` → `{"status":"ok","url","state"}`.
async fn start_login(server: &TestServer, login: &str, query: &str) -> Started {
    let path = format!("/{login}-auth-url{query}");
    let (status, body) = json(server.mgmt(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(body["status"], "ok", "{body}");
    let state = body["state"].as_str().unwrap().to_owned();
    assert_eq!(state.len(), 32, "{state}");
    assert!(state.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')), "{state}");
    let url = body["url"].as_str().unwrap().to_owned();
    assert_eq!(param(&url, "state").as_deref(), Some(state.as_str()), "{url}");
    Started { url, state }
}

/// Opens the authorize URL without following its redirect: the `Location` the browser would
/// show (the callback URL the user pastes).
async fn authorize(url: &str) -> String {
    let response = stopping_browser().get(url).send().await.unwrap();
    let status = response.status();
    let location = response.headers().get(LOCATION).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(status, StatusCode::FOUND, "authorize answered {status}: {}", response.text().await.unwrap());
    location.expect("a redirect has a Location")
}

async fn auth_status(server: &TestServer, state: &str) -> Value {
    let (status, body) =
        json(server.mgmt(Method::GET, &format!("/get-auth-status?state={state}")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls `get-auth-status` until the login is no longer `wait`.
async fn outcome(server: &TestServer, state: &str) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let body = auth_status(server, state).await;
        if body["status"] != "wait" {
            return body;
        }
        assert!(Instant::now() < deadline, "login {state} still waiting after {DEADLINE:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The error message of a login that failed.
async fn failure(server: &TestServer, state: &str) -> String {
    let body = outcome(server, state).await;
    assert_eq!(body["status"], "error", "{body}");
    body["error"].as_str().unwrap().to_owned()
}

fn ok_for(file: &str) -> Value {
    json!({"status": "ok", "file": file})
}

/// `POST /v0/management/oauth-callback` with NO management key.
async fn post_callback(server: &TestServer, body: Value) -> (u16, Value) {
    json(server.client.post(server.url("/v0/management/oauth-callback")).json(&body).send().await.unwrap()).await
}

/// `GET /v0/management/oauth-callback?<query>` with NO management key.
async fn get_callback(server: &TestServer, query: &str) -> (u16, Value) {
    json(server.client.get(server.url(&format!("/v0/management/oauth-callback?{query}"))).send().await.unwrap()).await
}

/// How the callback URL gets back to Switchyard when nothing listens on the provider's port.
#[derive(Clone, Copy, Debug)]
enum Delivery {
    /// `POST /oauth-callback {"redirect_url": <the whole URL>}`.
    PastedUrl,
    /// Same, naming the provider by an alias (`claude` for `anthropic`).
    PastedUrlWithProvider(&'static str),
    /// The parameters in the URL's `#fragment` instead of its query.
    PastedFragment,
    /// Just `code=..&state=..` (no scheme, host or path).
    PastedBareQuery,
    /// `code=<code>#<state>` and nothing else, as Claude's copy-paste page shows the code.
    PastedCodeHashState,
    /// `GET /v0/management/oauth-callback?state=..&code=..` (a redirect target).
    GetCallback,
    /// `GET /<route>/callback?..` on the main port, where a forwarded browser lands.
    MainPort(&'static str),
}

async fn deliver(server: &TestServer, delivery: Delivery, location: &str) {
    let query = url::Url::parse(location).unwrap().query().unwrap_or_default().to_owned();
    let ok = (200, json!({"status": "ok"}));
    match delivery {
        Delivery::PastedUrl => assert_eq!(post_callback(server, json!({"redirect_url": location})).await, ok),
        Delivery::PastedUrlWithProvider(provider) => {
            let body = json!({"provider": provider, "redirect_url": location});
            assert_eq!(post_callback(server, body).await, ok);
        }
        Delivery::PastedFragment => {
            let fragment = location.replacen('?', "#", 1);
            assert_eq!(post_callback(server, json!({"redirect_url": fragment})).await, ok);
        }
        Delivery::PastedBareQuery => assert_eq!(post_callback(server, json!({"redirect_url": query})).await, ok),
        Delivery::PastedCodeHashState => {
            let (code, state) = (param(location, "code").unwrap(), param(location, "state").unwrap());
            let bare = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("code", &format!("{code}#{state}"))
                .finish();
            assert_eq!(post_callback(server, json!({"redirect_url": bare})).await, ok);
        }
        Delivery::GetCallback => assert_eq!(get_callback(server, &query).await, ok),
        Delivery::MainPort(route) => {
            let response = server.client.get(server.url(&format!("/{route}/callback?{query}"))).send().await.unwrap();
            assert_eq!(response.status(), 200);
            let page = response.text().await.unwrap();
            assert!(page.contains(SUCCESS_PAGE), "{page}");
        }
    }
}

/// A login finished by hand: started without `is_webui` (nothing listens), the browser stops at
/// the redirect and the user hands the URL over `delivery`. Returns the final status.
async fn pasted_login(server: &TestServer, login: &str, options: &str, delivery: Delivery) -> Value {
    let started = start_login(server, login, &start_query(false, options)).await;
    let location = authorize(&started.url).await;
    assert_eq!(auth_status(server, &started.state).await, json!({"status": "wait"}));
    deliver(server, delivery, &location).await;
    outcome(server, &started.state).await
}

/// A login through the local listener: started with `is_webui`, the browser follows the
/// authorize redirect to the listener, which shows the success page.
async fn listener_login(server: &TestServer, login: &str, options: &str) -> Value {
    let started = start_login(server, login, &start_query(true, options)).await;
    let redirect = url::Url::parse(&param(&started.url, "redirect_uri").unwrap()).unwrap();
    assert_eq!(redirect.host_str(), Some("localhost"), "{redirect}");
    let port = redirect.port().expect("the redirect URI names the listener's port");
    assert_ne!(port, 0, "port 0 must resolve to the bound port before the URL is built");

    let page = browser().get(&started.url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.url().port(), Some(port), "the browser ended at the listener");
    let text = page.text().await.unwrap();
    assert!(text.contains(SUCCESS_PAGE), "{text}");
    outcome(server, &started.state).await
}

fn file_json(server: &TestServer, name: &str) -> Value {
    serde_json::from_slice(&server.read(name)).unwrap()
}

fn assert_private(server: &TestServer, name: &str) {
    let mode = std::fs::metadata(server.file(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{name} has mode {mode:o}");
}

/// The `.json` files in the auth dir.
fn auth_files(server: &TestServer) -> Vec<String> {
    server.snapshot().into_iter().map(|(name, _)| name).filter(|n| n.ends_with(".json")).collect()
}

async fn listed(server: &TestServer, name: &str) -> Value {
    let (status, body) = json(server.mgmt(Method::GET, "/auth-files").send().await.unwrap()).await;
    assert_eq!(status, 200);
    let files = body["files"].as_array().unwrap();
    files.iter().find(|f| f["name"] == name).cloned().unwrap_or_else(|| panic!("{name} not listed: {body}"))
}

/// Writes an auth file as another program would and lets the store see it.
async fn plant(server: &TestServer, name: &str, content: &Value) -> Vec<u8> {
    let bytes = serde_json::to_vec_pretty(content).unwrap();
    std::fs::create_dir_all(&server.auth_dir).unwrap();
    std::fs::write(server.file(name), &bytes).unwrap();
    std::fs::set_permissions(server.file(name), std::fs::Permissions::from_mode(0o600)).unwrap();
    server.state.store.rescan().await.unwrap();
    bytes
}

async fn refresh(server: &TestServer, name: &str) -> (u16, Value) {
    json(server.mgmt(Method::POST, "/auth-files/refresh").json(&json!({"name": name})).send().await.unwrap()).await
}

/// Gives the fresh file user and unknown fields, forces a refresh, and checks that exactly one
/// refresh grant reached the mock, the access token changed and everything else survived.
async fn refresh_keeps_user_fields(server: &TestServer, name: &str, refresh_calls: &dyn Fn() -> usize) {
    let fields = json!({"name": name, "prefix": "team", "note": "keep me", "priority": 7, "x_custom": {"n": [1, 2]}});
    let (status, reply) =
        json(server.mgmt(Method::PATCH, "/auth-files/fields").json(&fields).send().await.unwrap()).await;
    assert_eq!(status, 200, "{reply}");
    let before = file_json(server, name);
    let calls = refresh_calls();

    let (status, reply) = refresh(server, name).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["status"], "ok", "{reply}");
    assert_eq!(refresh_calls(), calls + 1, "one refresh grant reached the token endpoint");

    let after = file_json(server, name);
    let access = after["access_token"].as_str().unwrap();
    assert!(!access.is_empty());
    assert_ne!(after["access_token"], before["access_token"], "refresh must renew the access token");
    for key in ["prefix", "note", "priority", "x_custom", "email", "type", "disabled"] {
        assert_eq!(after[key], before[key], "`{key}` must survive a refresh");
    }
    assert_private(server, name);
    assert_eq!(listed(server, name).await["status"], "active");
}

fn google_refresh_calls(mock: &MockGoogle) -> usize {
    let refresh =
        |r: &&switchyard_testkit::RecordedRequest| r.form_value("grant_type").as_deref() == Some("refresh_token");
    mock.requests_to(google_mock::TOKEN_PATH).iter().filter(refresh).count()
}

fn token_exchanges(requests: &[switchyard_testkit::RecordedRequest]) -> usize {
    requests
        .iter()
        .filter(|r| {
            let form = r.form_value("grant_type");
            let json = serde_json::from_slice::<Value>(&r.body).ok();
            form.as_deref() == Some("authorization_code")
                || json.is_some_and(|j| j["grant_type"] == "authorization_code")
        })
        .count()
}

/// Waits until nothing accepts connections on `port` any more.
async fn wait_closed(port: u16) {
    let deadline = Instant::now() + DEADLINE;
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
        assert!(Instant::now() < deadline, "listener on {port} still accepting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Happy paths, per provider
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn anthropic_logs_in_through_the_local_listener_then_refreshes() {
    let mock = MockClaudeAuth::start().await;
    let server = server(&mock.upstream_urls_yaml(), &["anthropic"]).await;

    assert_eq!(listener_login(&server, "anthropic", "").await, ok_for(CLAUDE_FILE));
    assert_eq!(auth_files(&server), [CLAUDE_FILE]);
    assert_private(&server, CLAUDE_FILE);
    let file = file_json(&server, CLAUDE_FILE);
    assert_eq!(file["type"], "claude");
    assert_eq!(file["email"], CLAUDE_EMAIL);
    assert_eq!(file["account_uuid"], "mock-account-0001");
    assert_eq!(file["organization_uuid"], "mock-org-0001");
    assert_eq!(file["organization_name"], "Mock Org");
    assert_eq!(file["id_token"], "");
    assert_eq!(file["disabled"], false);
    assert!(file["access_token"].as_str().unwrap().starts_with("mock-claude-at-"), "{file}");
    assert!(file["refresh_token"].as_str().unwrap().starts_with("mock-claude-rt-"), "{file}");
    assert!(file["expired"].is_string() && file["last_refresh"].is_string(), "{file}");
    let device_ids = file["claude_device_ids"].as_array().unwrap();
    assert_eq!(device_ids.len(), 1);
    assert_eq!(device_ids[0].as_str().unwrap().len(), 64);

    // Claude Code's exchange: JSON, PKCE verifier, the listener's redirect URI.
    let exchange = mock.requests_to(claude_mock::TOKEN_PATH)[0].json();
    assert_eq!(exchange["grant_type"], "authorization_code");
    assert_eq!(exchange["code_verifier"].as_str().unwrap().len(), 128);
    assert!(exchange["redirect_uri"].as_str().unwrap().starts_with("http://localhost:"), "{exchange}");

    let entry = listed(&server, CLAUDE_FILE).await;
    assert_eq!((entry["status"].as_str(), entry["email"].as_str()), (Some("active"), Some(CLAUDE_EMAIL)));
    assert_eq!(entry["needs_relogin"], false);

    let before = file_json(&server, CLAUDE_FILE);
    refresh_keeps_user_fields(&server, CLAUDE_FILE, &|| mock.refresh_calls()).await;
    let after = file_json(&server, CLAUDE_FILE);
    assert_ne!(after["refresh_token"], before["refresh_token"], "Claude rotates the refresh token");
}

#[tokio::test]
async fn anthropic_accepts_every_pasted_callback_shape() {
    let mock = MockClaudeAuth::start().await;
    // No port override: the URL carries Claude Code's registered redirect URI, nobody listens.
    let server = server(&mock.upstream_urls_yaml(), &[]).await;
    let started = start_login(&server, "anthropic", "").await;
    assert_eq!(param(&started.url, "redirect_uri").as_deref(), Some("http://localhost:54545/callback"));

    for delivery in [
        Delivery::PastedUrl,
        Delivery::PastedUrlWithProvider("claude"),
        Delivery::PastedFragment,
        Delivery::PastedBareQuery,
        Delivery::PastedCodeHashState,
        Delivery::GetCallback,
        Delivery::MainPort("anthropic"),
    ] {
        assert_eq!(pasted_login(&server, "anthropic", "", delivery).await, ok_for(CLAUDE_FILE), "{delivery:?}");
        assert_eq!(auth_files(&server), [CLAUDE_FILE], "{delivery:?}");
        assert_private(&server, CLAUDE_FILE);
    }
    assert_eq!(token_exchanges(&mock.requests_to(claude_mock::TOKEN_PATH)), 7);
}

#[tokio::test]
async fn anthropic_code_hash_state_from_the_copy_paste_page_is_split() {
    let mock = MockClaudeAuth::start().await;
    mock.set_code_carries_state(true);
    let server = server(&mock.upstream_urls_yaml(), &[]).await;
    let started = start_login(&server, "anthropic", "").await;
    let location = authorize(&started.url).await;
    let code = param(&location, "code").unwrap();
    assert!(code.ends_with(&format!("#{}", started.state)), "the mock hands out <code>#<state>: {code}");

    deliver(&server, Delivery::PastedUrl, &location).await;
    assert_eq!(outcome(&server, &started.state).await, ok_for(CLAUDE_FILE));
    let exchange = mock.requests_to(claude_mock::TOKEN_PATH)[0].json();
    assert!(!exchange["code"].as_str().unwrap().contains('#'), "{exchange}");
    assert_eq!(exchange["state"], started.state.as_str());
}

#[tokio::test]
async fn codex_logs_in_through_the_local_listener_then_refreshes() {
    let mock = MockOpenAiAuth::start().await;
    let server = server(&mock.upstream_urls_yaml(), &["codex"]).await;
    let name = codex_file();

    assert_eq!(listener_login(&server, "codex", "").await, ok_for(&name));
    assert_eq!(auth_files(&server), std::slice::from_ref(&name));
    assert_private(&server, &name);
    let file = file_json(&server, &name);
    assert_eq!(file["type"], "codex");
    assert_eq!(file["email"], "codex-user@example.com");
    assert_eq!(file["account_id"], "mock-chatgpt-account-0001");
    assert_eq!(file["id_token"].as_str().unwrap().split('.').count(), 3, "{file}");
    assert!(file["access_token"].as_str().unwrap().starts_with("mock-openai-at-"), "{file}");
    assert!(file["refresh_token"].as_str().unwrap().starts_with("mock-openai-rt-"), "{file}");
    assert!(file["expired"].is_string() && file["last_refresh"].is_string(), "{file}");
    assert_eq!(file["disabled"], false);

    let exchange = &mock.requests_to(openai_mock::TOKEN_PATH)[0];
    assert_eq!(exchange.form_value("grant_type").as_deref(), Some("authorization_code"));
    assert_eq!(exchange.form_value("code_verifier").map(|v| v.len()), Some(128));

    let entry = listed(&server, &name).await;
    assert_eq!(entry["status"], "active");
    assert_eq!(entry["id_token"]["chatgpt_account_id"], "mock-chatgpt-account-0001");
    assert_eq!(entry["id_token"]["plan_type"], "plus");

    refresh_keeps_user_fields(&server, &name, &|| mock.refresh_calls()).await;
}

#[tokio::test]
async fn codex_pasted_url_and_main_port_route() {
    let mock = MockOpenAiAuth::start().await;
    let server = server(&mock.upstream_urls_yaml(), &[]).await;
    let name = codex_file();
    let started = start_login(&server, "codex", "").await;
    assert_eq!(param(&started.url, "redirect_uri").as_deref(), Some("http://localhost:1455/auth/callback"));

    for delivery in [Delivery::PastedUrl, Delivery::PastedUrlWithProvider("openai"), Delivery::MainPort("codex")] {
        assert_eq!(pasted_login(&server, "codex", "", delivery).await, ok_for(&name), "{delivery:?}");
        assert_eq!(auth_files(&server), std::slice::from_ref(&name));
        assert_private(&server, &name);
    }
    assert_eq!(file_json(&server, &name)["account_id"], "mock-chatgpt-account-0001");
}

#[tokio::test]
async fn gemini_cli_logs_in_through_the_local_listener_then_refreshes() {
    let mock = MockGoogle::start().await;
    // Onboarding is a long-running operation: two `done:false` answers first, polled at once.
    mock.set_onboard_pending_polls(2);
    let server = server(&mock.upstream_urls_yaml(), &["gemini-cli"]).await;

    assert_eq!(listener_login(&server, "gemini-cli", "onboard_poll_ms=0").await, ok_for(GEMINI_DEFAULT_FILE));
    assert_eq!(auth_files(&server), [GEMINI_DEFAULT_FILE]);
    assert_private(&server, GEMINI_DEFAULT_FILE);
    let file = file_json(&server, GEMINI_DEFAULT_FILE);
    assert_eq!(file["type"], "gemini");
    assert_eq!(file["email"], GOOGLE_EMAIL);
    assert_eq!(file["project_id"], "gen-lang-client-0123456789");
    assert_eq!((&file["auto"], &file["checked"]), (&json!(true), &json!(true)));
    let token = &file["token"];
    assert_eq!(token["access_token"], file["access_token"]);
    assert!(token["refresh_token"].as_str().unwrap().starts_with("1//0gmock-"), "{file}");
    assert_eq!(token["client_id"], google_mock::GEMINI_CLI_CLIENT_ID);
    assert_eq!(token["token_uri"], mock.url(google_mock::TOKEN_PATH));
    assert_eq!(mock.count(google_mock::ONBOARD_USER_PATH), 3);
    let enable = format!("{}:enable", google_mock::service_path("gen-lang-client-0123456789"));
    assert_eq!(mock.count(&enable), 1, "the Cloud AI API gets enabled");

    let entry = listed(&server, GEMINI_DEFAULT_FILE).await;
    assert_eq!(entry["status"], "active");
    assert_eq!(entry["project_id"], "gen-lang-client-0123456789");

    refresh_keeps_user_fields(&server, GEMINI_DEFAULT_FILE, &|| google_refresh_calls(&mock)).await;
    let after = file_json(&server, GEMINI_DEFAULT_FILE);
    assert_eq!(after["token"]["access_token"], after["access_token"], "the nested token is renewed too");
    assert_eq!(after["project_id"], "gen-lang-client-0123456789");
}

#[tokio::test]
async fn gemini_cli_with_a_project_id_through_pasted_and_main_port_callbacks() {
    let mock = MockGoogle::start().await;
    let server = server(&mock.upstream_urls_yaml(), &[]).await;
    let name = "gemini-jane.doe@example.com-my-project.json";
    let options = "project_id=my-project&onboard_poll_ms=0";
    let started = start_login(&server, "gemini-cli", &start_query(false, options)).await;
    assert_eq!(param(&started.url, "redirect_uri").as_deref(), Some("http://localhost:8085/oauth2callback"));

    for delivery in [Delivery::MainPort("google"), Delivery::PastedBareQuery] {
        assert_eq!(pasted_login(&server, "gemini-cli", options, delivery).await, ok_for(name), "{delivery:?}");
        assert_eq!(auth_files(&server), [name]);
        assert_private(&server, name);
    }
    let file = file_json(&server, name);
    assert_eq!(file["project_id"], "my-project");
    assert_eq!(file["auto"], false);
    assert_eq!(mock.count(google_mock::PROJECTS_PATH), 0, "a named project needs no listing");
    let load = mock.requests_to(google_mock::LOAD_CODE_ASSIST_PATH)[0].json();
    assert_eq!(load["cloudaicompanionProject"], "my-project");
    assert_eq!(mock.count(&format!("{}:enable", google_mock::service_path("my-project"))), 1);
}

#[tokio::test]
async fn antigravity_logs_in_through_the_local_listener_then_refreshes() {
    let mock = MockGoogle::start().await;
    let server = server(&mock.upstream_urls_yaml(), &["antigravity"]).await;

    assert_eq!(listener_login(&server, "antigravity", "onboard_poll_ms=0").await, ok_for(ANTIGRAVITY_FILE));
    assert_eq!(auth_files(&server), [ANTIGRAVITY_FILE]);
    assert_private(&server, ANTIGRAVITY_FILE);
    let file = file_json(&server, ANTIGRAVITY_FILE);
    assert_eq!(file["type"], "antigravity");
    assert_eq!(file["email"], GOOGLE_EMAIL);
    assert_eq!(file["project_id"], "mock-managed-project", "not set up yet: onboarding assigns one");
    assert_eq!(file["expires_in"], google_mock::EXPIRES_IN);
    assert!(file["timestamp"].is_i64() && file["expired"].is_string(), "{file}");
    assert!(file["access_token"].as_str().unwrap().starts_with("ya29.mock-"), "{file}");
    assert!(file["refresh_token"].as_str().unwrap().starts_with("1//0gmock-"), "{file}");
    assert_eq!(file["disabled"], false);
    let exchange = &mock.requests_to(google_mock::TOKEN_PATH)[0];
    assert_eq!(exchange.form_value("client_id").as_deref(), Some(google_mock::ANTIGRAVITY_CLIENT_ID));
    assert_eq!(listed(&server, ANTIGRAVITY_FILE).await["status"], "active");

    let before = file_json(&server, ANTIGRAVITY_FILE);
    refresh_keeps_user_fields(&server, ANTIGRAVITY_FILE, &|| google_refresh_calls(&mock)).await;
    let after = file_json(&server, ANTIGRAVITY_FILE);
    assert_eq!(after["refresh_token"], before["refresh_token"], "Google keeps the refresh token");
    assert_eq!(after["project_id"], "mock-managed-project");
}

#[tokio::test]
async fn antigravity_get_callback_and_main_port_route() {
    let mock = MockGoogle::start().await;
    mock.set_code_assist_project(Some("existing-project"));
    let server = server(&mock.upstream_urls_yaml(), &[]).await;
    let started = start_login(&server, "antigravity", "").await;
    assert_eq!(param(&started.url, "redirect_uri").as_deref(), Some("http://localhost:51121/oauth-callback"));

    for delivery in [Delivery::GetCallback, Delivery::MainPort("antigravity"), Delivery::PastedUrl] {
        let result = pasted_login(&server, "antigravity", "onboard_poll_ms=0", delivery).await;
        assert_eq!(result, ok_for(ANTIGRAVITY_FILE), "{delivery:?}");
        assert_eq!(auth_files(&server), [ANTIGRAVITY_FILE]);
    }
    assert_eq!(file_json(&server, ANTIGRAVITY_FILE)["project_id"], "existing-project");
    assert_eq!(mock.count(google_mock::ONBOARD_USER_PATH), 0, "an onboarded account is not onboarded again");
}

// ---------------------------------------------------------------------------------------------
// Bad paths
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn consent_denied_through_the_listener_fails_clearly_and_writes_nothing() {
    let mock = MockClaudeAuth::start().await;
    mock.set_fault(claude_mock::Fault::DenyConsent);
    let server = server(&mock.upstream_urls_yaml(), &["anthropic"]).await;
    let started = start_login(&server, "anthropic", "?is_webui=true").await;

    let page = browser().get(&started.url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let text = page.text().await.unwrap();
    assert!(text.contains("Authentication failed: access_denied"), "{text}");
    let error = failure(&server, &started.state).await;
    assert!(error.contains("access_denied"), "{error}");
    assert!(auth_files(&server).is_empty());
    assert!(mock.requests_to(claude_mock::TOKEN_PATH).is_empty(), "a denied login never reaches the token endpoint");

    // The session keeps its error: a late callback is refused with it.
    let (status, body) = post_callback(&server, json!({"state": started.state, "code": "late"})).await;
    assert_eq!((status, body["status"].as_str()), (409, Some("error")));
    assert!(body["error"].as_str().unwrap().contains("access_denied"), "{body}");
}

#[tokio::test]
async fn consent_denied_through_a_pasted_url_fails_clearly_and_writes_nothing() {
    let mock = MockGoogle::start().await;
    mock.deny_consent(true);
    let server = server(&mock.upstream_urls_yaml(), &[]).await;
    let started = start_login(&server, "gemini-cli", "").await;
    let location = authorize(&started.url).await;
    assert_eq!(param(&location, "error").as_deref(), Some("access_denied"));

    assert_eq!(post_callback(&server, json!({"redirect_url": location})).await, (200, json!({"status": "ok"})));
    let error = failure(&server, &started.state).await;
    assert!(error.contains("access_denied"), "{error}");
    assert!(auth_files(&server).is_empty());
    assert_eq!(mock.count(google_mock::TOKEN_PATH), 0);
}

#[tokio::test]
async fn a_wrong_state_is_404_and_the_real_callback_still_completes() {
    let mock = MockClaudeAuth::start().await;
    let server = server(&mock.upstream_urls_yaml(), &[]).await;
    let started = start_login(&server, "anthropic", "").await;
    let location = authorize(&started.url).await;

    let mut altered = started.state.clone();
    let last = if altered.ends_with('0') { "1" } else { "0" };
    altered.replace_range(31.., last);
    let forged = location.replace(&started.state, &altered);
    let (status, body) = post_callback(&server, json!({"redirect_url": forged})).await;
    assert_eq!((status, body), (404, json!({"status": "error", "error": "unknown or expired state"})));
    let (status, _) = get_callback(&server, &format!("state={altered}&code=x")).await;
    assert_eq!(status, 404);
    assert_eq!(auth_status(&server, &started.state).await, json!({"status": "wait"}));
    assert!(auth_files(&server).is_empty());

    // A session of another provider is not this one's.
    let (status, body) = post_callback(&server, json!({"provider": "codex", "redirect_url": location})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("provider does not match state")));
    let (status, body) = post_callback(&server, json!({"provider": "nope", "redirect_url": location})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unsupported provider")));

    assert_eq!(post_callback(&server, json!({"redirect_url": location})).await, (200, json!({"status": "ok"})));
    assert_eq!(outcome(&server, &started.state).await, ok_for(CLAUDE_FILE));
}

#[tokio::test]
async fn a_finished_session_refuses_a_second_callback_with_409() {
    let mock = MockOpenAiAuth::start().await;
    let server = server(&mock.upstream_urls_yaml(), &[]).await;
    let started = start_login(&server, "codex", "").await;
    let location = authorize(&started.url).await;
    deliver(&server, Delivery::PastedUrl, &location).await;
    assert_eq!(outcome(&server, &started.state).await, ok_for(&codex_file()));
    let saved = server.read(&codex_file());

    let (status, body) = post_callback(&server, json!({"redirect_url": location})).await;
    assert_eq!((status, body), (409, json!({"status": "error", "error": "oauth flow is already completed"})));
    let query = url::Url::parse(&location).unwrap().query().unwrap().to_owned();
    assert_eq!(get_callback(&server, &query).await.0, 409);
    let page = server.client.get(server.url(&format!("/codex/callback?{query}"))).send().await.unwrap();
    assert_eq!(page.status(), 409);
    assert!(page.text().await.unwrap().contains("oauth flow is already completed"));
    assert_eq!(server.read(&codex_file()), saved, "nothing rewrote the file");
    assert_eq!(token_exchanges(&mock.requests_to(openai_mock::TOKEN_PATH)), 1);
}

#[tokio::test]
async fn callback_and_status_validation_errors_are_clear() {
    let mock = MockClaudeAuth::start().await;
    let server = server(&mock.upstream_urls_yaml(), &[]).await;
    let started = start_login(&server, "anthropic", "").await;
    let state = started.state.as_str();
    let error = |message: &str| json!({"status": "error", "error": message});

    let cases = [
        (json!({"state": state}), 400, error("code or error is required")),
        (
            json!({"redirect_url": format!("http://localhost:54545/callback?state={state}")}),
            400,
            error("code or error is required"),
        ),
        (json!({"redirect_url": "http://[::bad/callback?code=abc"}), 400, Value::Null),
        (json!({"code": "abc"}), 400, error("state is required")),
        (json!({"state": "bad/state", "code": "abc"}), 400, error("invalid state")),
        (json!({"state": "a..b", "code": "abc"}), 400, error("invalid state")),
        (json!({"state": "x".repeat(129), "code": "abc"}), 400, error("invalid state")),
        (
            json!({"redirect_url": "http://localhost:54545/callback?code=abc&state=%3Cscript%3E"}),
            400,
            error("invalid state"),
        ),
        (json!(["not", "an", "object"]), 400, error("invalid body")),
    ];
    for (body, want_status, want) in cases {
        let (status, reply) = post_callback(&server, body.clone()).await;
        assert_eq!(status, want_status, "{body}: {reply}");
        if want.is_null() {
            assert_eq!(reply["status"], "error");
            assert!(reply["error"].as_str().unwrap().starts_with("invalid redirect_url"), "{body}: {reply}");
        } else {
            assert_eq!(reply, want, "{body}");
        }
    }
    let raw = server.client.post(server.url("/v0/management/oauth-callback")).body("{not json").send().await.unwrap();
    assert_eq!(json(raw).await, (400, error("invalid body")));
    assert_eq!(get_callback(&server, &format!("state={state}")).await, (400, error("code or error is required")));

    // get-auth-status: no state, a bad one, an unknown one; a key is required there.
    let (status, body) = json(server.mgmt(Method::GET, "/get-auth-status").send().await.unwrap()).await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let (status, body) = json(server.mgmt(Method::GET, "/get-auth-status?state=..%2Fx").send().await.unwrap()).await;
    assert_eq!((status, body), (400, error("invalid state")));
    assert_eq!(auth_status(&server, &"f".repeat(32)).await, error("unknown or expired state"));
    let keyless = server.client.get(server.url(&format!("/v0/management/get-auth-status?state={state}")));
    assert_eq!(keyless.send().await.unwrap().status(), 401);
    let keyless = server.client.get(server.url("/v0/management/anthropic-auth-url"));
    assert_eq!(keyless.send().await.unwrap().status(), 401);

    // None of that disturbed the pending login.
    assert_eq!(auth_status(&server, state).await, json!({"status": "wait"}));
    assert!(auth_files(&server).is_empty());
    assert!(mock.requests_to(claude_mock::TOKEN_PATH).is_empty());
}

#[tokio::test]
async fn a_cancelled_session_takes_no_callback_and_saves_nothing() {
    let mock = MockClaudeAuth::start().await;
    let server = server(&mock.upstream_urls_yaml(), &["anthropic"]).await;
    let cancel = |state: &str| server.mgmt(Method::DELETE, &format!("/oauth-session?state={state}"));

    // A pasted-URL login.
    let started = start_login(&server, "anthropic", "").await;
    let location = authorize(&started.url).await;
    assert_eq!(
        json(cancel(&started.state).send().await.unwrap()).await,
        (200, json!({"status": "ok", "cancelled": true}))
    );
    assert_eq!(
        json(cancel(&started.state).send().await.unwrap()).await,
        (200, json!({"status": "ok", "cancelled": false}))
    );
    let (status, body) = post_callback(&server, json!({"redirect_url": location})).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("unknown or expired state")));
    assert_eq!(
        auth_status(&server, &started.state).await,
        json!({"status": "error", "error": "unknown or expired state"})
    );

    // A listener login: cancelling stops the listener too.
    let started = start_login(&server, "anthropic", "?is_webui=true").await;
    let redirect = url::Url::parse(&param(&started.url, "redirect_uri").unwrap()).unwrap();
    let port = redirect.port().unwrap();
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok(), "the listener is up");
    assert_eq!(
        json(cancel(&started.state).send().await.unwrap()).await,
        (200, json!({"status": "ok", "cancelled": true}))
    );
    wait_closed(port).await;

    let (status, body) = json(server.mgmt(Method::DELETE, "/oauth-session").send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("missing state")));
    let (status, body) = json(cancel("bad%2Fstate").send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid state")));

    assert!(auth_files(&server).is_empty());
    assert!(mock.requests_to(claude_mock::TOKEN_PATH).is_empty());
}

/// The management API has no knob for a short-lived session (a panel login waits 10 minutes),
/// so the same engine the API uses is started with a 300 ms wait; status and late callbacks then
/// go through the HTTP API.
#[tokio::test]
async fn an_expired_session_reports_the_timeout_and_refuses_late_callbacks() {
    let mock = MockClaudeAuth::start().await;
    let server = server(&mock.upstream_urls_yaml(), &[]).await;
    let config = server.state.config.get();
    let login = switchyard_providers::Registry::new(&config)
        .login("anthropic", None, &server.state.global_http().await.unwrap())
        .await;
    let Some(switchyard_auth::login::Login::Browser(login)) = login.unwrap() else {
        panic!("anthropic is a browser login")
    };
    let options = StartOptions {
        listen: false,
        callback_port: None,
        timeout: Duration::from_millis(300),
        options: LoginOptions::new(),
    };
    let started = server.state.engine.start(login, options).await.unwrap();

    assert_eq!(failure(&server, &started.state).await, "Timeout waiting for OAuth callback");
    let location = authorize(&started.url).await;
    let (status, body) = post_callback(&server, json!({"redirect_url": location})).await;
    assert_eq!((status, body), (409, json!({"status": "error", "error": "Timeout waiting for OAuth callback"})));
    assert!(auth_files(&server).is_empty());
    assert!(mock.requests_to(claude_mock::TOKEN_PATH).is_empty());
}

#[tokio::test]
async fn token_endpoint_failures_keep_the_existing_claude_file_byte_identical() {
    let mock = MockClaudeAuth::start().await;
    let server = server(&mock.upstream_urls_yaml(), &[]).await;
    let existing = json!({
        "type": "claude", "email": CLAUDE_EMAIL, "access_token": "old-access", "refresh_token": "old-refresh",
        "prefix": "work", "note": "do not touch", "disabled": false,
    });
    let bytes = plant(&server, CLAUDE_FILE, &existing).await;

    for (fault, cause) in
        [(claude_mock::Fault::TokenServerError, "500"), (claude_mock::Fault::MalformedTokenJson, "malformed JSON")]
    {
        mock.set_fault(fault.clone());
        let started = start_login(&server, "anthropic", "").await;
        let location = authorize(&started.url).await;
        deliver(&server, Delivery::PastedUrl, &location).await;
        let error = failure(&server, &started.state).await;
        assert!(error.starts_with("Failed to exchange authorization code for tokens: "), "{fault:?}: {error}");
        assert!(error.contains(cause), "{fault:?}: {error}");
        let code = param(&location, "code").unwrap();
        assert!(!error.contains(&code), "the error must not leak the code: {error}");
        assert_eq!(server.read(CLAUDE_FILE), bytes, "{fault:?}: the existing credential was touched");
        assert_eq!(auth_files(&server), [CLAUDE_FILE]);
    }
}

#[tokio::test]
async fn token_endpoint_failures_keep_existing_codex_and_antigravity_files() {
    let openai = MockOpenAiAuth::start().await;
    openai.set_fault(openai_mock::Fault::MalformedTokenJson);
    let server_codex = server(&openai.upstream_urls_yaml(), &["codex"]).await;
    let name = codex_file();
    let bytes =
        plant(&server_codex, &name, &json!({"type": "codex", "access_token": "old", "refresh_token": "r"})).await;
    // Through the listener this time: the page still says the callback arrived; the status tells.
    let started = start_login(&server_codex, "codex", "?is_webui=true").await;
    let page = browser().get(&started.url).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(SUCCESS_PAGE), "{page}");
    let error = failure(&server_codex, &started.state).await;
    assert!(error.starts_with("Failed to exchange authorization code for tokens"), "{error}");
    assert_eq!(server_codex.read(&name), bytes);

    let google = MockGoogle::start().await;
    let server_google = server(&google.upstream_urls_yaml(), &[]).await;
    let bytes = plant(
        &server_google,
        ANTIGRAVITY_FILE,
        &json!({"type": "antigravity", "email": GOOGLE_EMAIL, "access_token": "old", "refresh_token": "r"}),
    )
    .await;
    for fault in [TokenFault::ServerError, TokenFault::Malformed] {
        google.set_token_fault(Some(fault));
        let started = start_login(&server_google, "antigravity", "").await;
        let location = authorize(&started.url).await;
        deliver(&server_google, Delivery::PastedUrl, &location).await;
        let error = failure(&server_google, &started.state).await;
        assert!(error.starts_with("Failed to exchange authorization code for tokens"), "{fault:?}: {error}");
        assert_eq!(server_google.read(ANTIGRAVITY_FILE), bytes, "{fault:?}");
        assert_eq!(auth_files(&server_google), [ANTIGRAVITY_FILE]);
    }
}

#[tokio::test]
async fn a_taken_callback_port_is_a_409_with_a_clear_message() {
    let mock = MockOpenAiAuth::start().await;
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let yaml = format!("{}oauth-callback-ports:\n  codex: {port}\n", mock.upstream_urls_yaml());
    let server = start_with(Options { extra_yaml: &yaml, ..Default::default() }).await;

    let (status, body) = json(server.mgmt(Method::GET, "/codex-auth-url?is_webui=true").send().await.unwrap()).await;
    assert_eq!(status, 409, "{body}");
    let message = body["error"].as_str().unwrap();
    assert!(message.contains(&format!("callback port {port} is already in use")), "{message}");

    // Without the listener the same login starts fine (the user pastes the URL), on that port.
    let started = start_login(&server, "codex", "").await;
    let expected = format!("http://localhost:{port}/auth/callback");
    assert_eq!(param(&started.url, "redirect_uri"), Some(expected));
    drop(holder);
    assert!(auth_files(&server).is_empty());
}

#[tokio::test]
async fn an_unknown_provider_is_404() {
    let server = common::start().await;
    let (status, body) = json(server.mgmt(Method::GET, "/nope-auth-url").send().await.unwrap()).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].as_str().unwrap().contains("unknown provider"), "{body}");
    let (status, _) = json(server.mgmt(Method::GET, "/-auth-url").send().await.unwrap()).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn relogin_keeps_user_fields_and_replaces_tokens() {
    let mock = MockClaudeAuth::start().await;
    let server = server(&mock.upstream_urls_yaml(), &["anthropic"]).await;
    let existing = json!({
        "type": "claude",
        "email": CLAUDE_EMAIL,
        "access_token": "old-access",
        "refresh_token": "old-refresh",
        "id_token": "old-id",
        "expired": "2020-01-01T00:00:00Z",
        "last_refresh": "2020-01-01T00:00:00Z",
        "prefix": "work",
        "proxy_url": "socks5://127.0.0.1:1080",
        "priority": 5,
        "weight": 3,
        "note": "team seat",
        "headers": {"X-Team": "a"},
        "excluded_models": ["claude-opus-*"],
        "disabled": true,
        "x_custom": {"kept": true},
    });
    plant(&server, CLAUDE_FILE, &existing).await;

    assert_eq!(listener_login(&server, "anthropic", "").await, ok_for(CLAUDE_FILE));
    let file = file_json(&server, CLAUDE_FILE);
    assert!(file["access_token"].as_str().unwrap().starts_with("mock-claude-at-"), "{file}");
    assert!(file["refresh_token"].as_str().unwrap().starts_with("mock-claude-rt-"), "{file}");
    assert_eq!(file["id_token"], "");
    assert_ne!(file["expired"], existing["expired"]);
    assert_ne!(file["last_refresh"], existing["last_refresh"]);
    for key in ["prefix", "proxy_url", "priority", "weight", "note", "headers", "excluded_models", "x_custom"] {
        assert_eq!(file[key], existing[key], "re-login must keep `{key}`");
    }
    assert_eq!(file["disabled"], true, "re-login must not re-enable an account the user disabled");
    assert_eq!(file["account_uuid"], "mock-account-0001");
    assert_private(&server, CLAUDE_FILE);
    assert_eq!(auth_files(&server), [CLAUDE_FILE]);
    assert_eq!(listed(&server, CLAUDE_FILE).await["status"], "disabled");
}

#[tokio::test]
async fn relogin_of_a_gemini_account_keeps_user_fields() {
    let mock = MockGoogle::start().await;
    let server = server(&mock.upstream_urls_yaml(), &[]).await;
    let existing = json!({
        "type": "gemini", "email": GOOGLE_EMAIL, "project_id": "gen-lang-client-0123456789",
        "access_token": "old", "refresh_token": "old-r", "token": {"access_token": "old", "refresh_token": "old-r"},
        "prefix": "g", "priority": 2, "note": "mine", "disabled": true,
    });
    plant(&server, GEMINI_DEFAULT_FILE, &existing).await;
    let result = pasted_login(&server, "gemini-cli", "onboard_poll_ms=0", Delivery::PastedUrl).await;
    assert_eq!(result, ok_for(GEMINI_DEFAULT_FILE));
    let file = file_json(&server, GEMINI_DEFAULT_FILE);
    assert!(file["access_token"].as_str().unwrap().starts_with("ya29.mock-"), "{file}");
    assert_eq!(file["token"]["access_token"], file["access_token"]);
    for key in ["prefix", "priority", "note", "disabled"] {
        assert_eq!(file[key], existing[key], "re-login must keep `{key}`");
    }
}

#[tokio::test]
async fn a_revoked_refresh_token_needs_relogin_and_nothing_is_deleted() {
    let mock = MockClaudeAuth::start().await;
    let server = server(&mock.upstream_urls_yaml(), &["anthropic"]).await;
    assert_eq!(listener_login(&server, "anthropic", "").await, ok_for(CLAUDE_FILE));
    mock.set_fault(claude_mock::Fault::RevokeRefreshTokens);
    let bytes = server.read(CLAUDE_FILE);

    let (status, body) = refresh(&server, CLAUDE_FILE).await;
    assert_eq!(status, 409, "{body}");
    assert!(body["error"].as_str().unwrap().contains("needs re-login"), "{body}");
    assert_eq!(body["needs_relogin"], true);
    assert_eq!(mock.refresh_calls(), 1);
    let entry = listed(&server, CLAUDE_FILE).await;
    assert_eq!(entry["status"], "error", "{entry}");
    let message = entry["status_message"].as_str().unwrap();
    assert!(message.starts_with("needs re-login"), "{message}");
    assert!(message.contains("invalid_grant") || message.contains("revoked"), "the reason is shown: {message}");
    assert_eq!(entry["needs_relogin"], true);
    assert_eq!(server.read(CLAUDE_FILE), bytes, "a dead refresh token must not touch the file");
    assert_eq!(auth_files(&server), [CLAUDE_FILE]);

    // Logging in again clears it.
    mock.set_fault(claude_mock::Fault::None);
    assert_eq!(listener_login(&server, "anthropic", "").await, ok_for(CLAUDE_FILE));
    let entry = listed(&server, CLAUDE_FILE).await;
    assert_eq!((entry["status"].as_str(), &entry["needs_relogin"]), (Some("active"), &json!(false)), "{entry}");
}

#[tokio::test]
async fn revoked_google_and_codex_refresh_tokens_need_relogin() {
    let google = MockGoogle::start().await;
    let server_google = server(&google.upstream_urls_yaml(), &[]).await;
    let result = pasted_login(&server_google, "antigravity", "onboard_poll_ms=0", Delivery::PastedUrl).await;
    assert_eq!(result, ok_for(ANTIGRAVITY_FILE));
    google.revoke_refresh_tokens();
    let bytes = server_google.read(ANTIGRAVITY_FILE);
    let (status, body) = refresh(&server_google, ANTIGRAVITY_FILE).await;
    assert_eq!((status, &body["needs_relogin"]), (409, &json!(true)), "{body}");
    let entry = listed(&server_google, ANTIGRAVITY_FILE).await;
    assert!(entry["status_message"].as_str().unwrap().starts_with("needs re-login"), "{entry}");
    assert_eq!(server_google.read(ANTIGRAVITY_FILE), bytes);

    let openai = MockOpenAiAuth::start().await;
    let server_codex = server(&openai.upstream_urls_yaml(), &[]).await;
    let name = codex_file();
    assert_eq!(pasted_login(&server_codex, "codex", "", Delivery::PastedUrl).await, ok_for(&name));
    openai.set_fault(openai_mock::Fault::RevokeRefreshTokens);
    let bytes = server_codex.read(&name);
    let (status, body) = refresh(&server_codex, &name).await;
    assert_eq!((status, &body["needs_relogin"]), (409, &json!(true)), "{body}");
    let entry = listed(&server_codex, &name).await;
    assert_eq!((entry["status"].as_str(), &entry["needs_relogin"]), (Some("error"), &json!(true)), "{entry}");
    assert_eq!(server_codex.read(&name), bytes);
}
