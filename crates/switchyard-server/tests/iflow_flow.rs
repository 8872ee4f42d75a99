//! iFlow end to end through a real server on loopback, against the iFlow mock: the browser
//! login via the management API (local listener and the main-port `/iflow/callback` route), the
//! cookie login via `POST /v0/management/iflow-auth-url` (saved, duplicate, refusals), requests
//! through `/v1/chat/completions` and `/v1/messages` that reach the mock signed with the
//! account's API key, and forced refreshes on both paths. Waits poll with bounded deadlines.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Options, TestServer, json, start_with};
use reqwest::header::LOCATION;
use reqwest::{Client, Method, redirect};
use serde_json::{Value, json};
use switchyard_auth::Credential;
use switchyard_testkit::iflow::{CHAT_PATH, Fault, MockIflow, TOKEN_PATH, expected_signature};

const EMAIL: &str = "iflow-user@example.com";
const OAUTH_FILE: &str = "iflow-iflow-user@example.com.json";
const DEADLINE: Duration = Duration::from_secs(20);

async fn server(mock: &MockIflow) -> TestServer {
    let yaml = format!("{}oauth-callback-ports:\n  iflow: 0\n", mock.upstream_urls_yaml());
    start_with(Options { extra_yaml: &yaml, ..Default::default() }).await
}

async fn get_json(server: &TestServer, path: &str) -> (u16, Value) {
    json(server.mgmt(Method::GET, path).send().await.unwrap()).await
}

async fn post_cookie(server: &TestServer, body: &str) -> (u16, Value) {
    let request = server.mgmt(Method::POST, "/iflow-auth-url").header("content-type", "application/json");
    json(request.body(body.to_owned()).send().await.unwrap()).await
}

/// Polls `get-auth-status` until the login is no longer `wait`.
async fn outcome(server: &TestServer, state: &str) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (status, body) = get_json(server, &format!("/get-auth-status?state={state}")).await;
        assert_eq!(status, 200, "{body}");
        if body["status"] != "wait" {
            return body;
        }
        assert!(Instant::now() < deadline, "login {state} still waiting");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn saved(server: &TestServer, file: &str) -> Credential {
    Credential::from_json(&server.read(file)).unwrap()
}

fn mode(server: &TestServer, file: &str) -> u32 {
    std::fs::metadata(server.file(file)).unwrap().permissions().mode() & 0o777
}

/// A chat request through the public API; the mock's 200 means key and signature were right.
async fn chat(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    server.state.sync_accounts();
    json(server.client.post(server.url(path)).json(&body).send().await.unwrap()).await
}

fn openai_chat() -> Value {
    json!({"model": "qwen3-max", "messages": [{"role": "user", "content": "Hi"}]})
}

fn anthropic_messages() -> Value {
    json!({"model": "qwen3-max", "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]})
}

/// The key the last chat request reached the mock with, after checking its signature here.
fn last_chat_key(mock: &MockIflow) -> String {
    let seen = mock.requests_to(CHAT_PATH).pop().expect("a chat request reached the mock");
    let header = |name: &str| seen.headers[name].to_str().unwrap().to_owned();
    let key = header("authorization").strip_prefix("Bearer ").unwrap().to_owned();
    let expected = expected_signature(&key, &header("user-agent"), &header("session-id"), &header("x-iflow-timestamp"));
    assert_eq!(header("x-iflow-signature"), expected);
    assert_eq!(header("user-agent"), "iFlow-Cli");
    key
}

#[tokio::test]
async fn browser_login_via_management_then_chat_with_the_api_key_and_a_forced_refresh() {
    let mock = MockIflow::start().await;
    let server = server(&mock).await;

    let (status, started) = get_json(&server, "/iflow-auth-url?is_webui=true").await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["status"], "ok");
    let state = started["state"].as_str().unwrap().to_owned();
    let url = url::Url::parse(started["url"].as_str().unwrap()).unwrap();
    let param = |key: &str| url.query_pairs().find(|(k, _)| k == key).map(|(_, v)| v.into_owned());
    assert_eq!(param("state").as_deref(), Some(state.as_str()));
    assert_eq!(param("client_id").as_deref(), Some("10009311001"));
    let redirect = param("redirect").expect("iFlow's `redirect` parameter");
    assert!(redirect.starts_with("http://localhost:") && redirect.ends_with("/oauth2callback"), "{redirect}");

    // The browser follows the authorize page to the local listener.
    let page = Client::builder().no_proxy().build().unwrap().get(url.as_str()).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(outcome(&server, &state).await, json!({"status": "ok", "file": OAUTH_FILE}));
    assert_eq!(mode(&server, OAUTH_FILE), 0o600);
    let file = saved(&server, OAUTH_FILE);
    let api_key = mock.oauth_api_key();
    assert_eq!(file.str_field("api_key"), Some(api_key.as_str()));
    assert_eq!(file.email(), Some(EMAIL));
    assert_eq!(file.provider().as_deref(), Some("iflow"));

    let (status, body) = chat(&server, "/v1/chat/completions", openai_chat()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(last_chat_key(&mock), api_key, "the API key, not the OAuth token");

    let (status, body) = chat(&server, "/v1/messages", anthropic_messages()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["type"], "message");
    let seen = mock.requests_to(CHAT_PATH).pop().unwrap().json();
    assert_eq!(seen["model"], "qwen3-max");
    assert_eq!(seen["messages"][0]["role"], "user", "translated to OpenAI Chat: {seen}");
    assert_eq!(last_chat_key(&mock), api_key);

    // A user setting survives the forced refresh; the tokens rotate.
    let mut edited = file.clone();
    edited.fields_mut().insert("note".into(), "team account".into());
    server.state.store.save(OAUTH_FILE, &edited).await.unwrap();
    let (status, body) =
        json(server.mgmt(Method::POST, "/auth-files/refresh").json(&json!({"name": OAUTH_FILE})).send().await.unwrap())
            .await;
    assert_eq!(status, 200, "{body}");
    let refreshed = saved(&server, OAUTH_FILE);
    assert_ne!(refreshed.refresh_token(), file.refresh_token());
    assert_ne!(refreshed.access_token(), file.access_token());
    assert_eq!(refreshed.str_field("note"), Some("team account"));
    assert_eq!(refreshed.str_field("api_key"), Some(api_key.as_str()));
    assert_eq!(mock.refresh_calls(), 1);
}

#[tokio::test]
async fn browser_login_completes_through_the_main_port_callback_route() {
    let mock = MockIflow::start().await;
    let server = server(&mock).await;
    let (status, started) = get_json(&server, "/iflow-auth-url").await;
    assert_eq!(status, 200, "{started}");
    let state = started["state"].as_str().unwrap();

    // The browser is redirected to the callback port (nothing listens there: no `is_webui`); the
    // forwarded request lands on the server's `/iflow/callback`.
    let browser = Client::builder().no_proxy().redirect(redirect::Policy::none()).build().unwrap();
    let response = browser.get(started["url"].as_str().unwrap()).send().await.unwrap();
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    let path = url::Url::parse(&location).unwrap();
    assert_eq!((path.host_str(), path.path()), (Some("localhost"), "/oauth2callback"), "{location}");
    let query = location.split_once('?').unwrap().1;
    let page = server.client.get(server.url(&format!("/iflow/callback?{query}"))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(outcome(&server, state).await, json!({"status": "ok", "file": OAUTH_FILE}));
}

#[tokio::test]
async fn a_revoked_refresh_token_needs_a_new_login_and_leaves_the_file_alone() {
    let mock = MockIflow::start().await;
    let server = server(&mock).await;
    let (_, started) = get_json(&server, "/iflow-auth-url?is_webui=true").await;
    Client::builder().no_proxy().build().unwrap().get(started["url"].as_str().unwrap()).send().await.unwrap();
    outcome(&server, started["state"].as_str().unwrap()).await;
    let before = server.read(OAUTH_FILE);

    mock.set_fault(Fault::RevokeRefreshTokens);
    let (status, body) =
        json(server.mgmt(Method::POST, "/auth-files/refresh").json(&json!({"name": OAUTH_FILE})).send().await.unwrap())
            .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["needs_relogin"], true);
    assert!(!body.to_string().contains("mock-iflow-rt-"), "{body}");
    assert_eq!(server.read(OAUTH_FILE), before);
    assert_eq!(mock.requests_to(TOKEN_PATH).len(), 2);
}

#[tokio::test]
async fn cookie_login_via_management_saves_and_refuses_duplicates() {
    let mock = MockIflow::start().await;
    mock.set_key_lifetime(chrono::Duration::hours(20));
    let server = server(&mock).await;
    let bxauth = mock.add_cookie_account("138****8000");

    let cookie = format!("_ga=1; BXAuth={bxauth}; tfstk=2");
    let (status, body) = post_cookie(&server, &json!({ "cookie": cookie }).to_string()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["type"], "iflow");
    assert_eq!(body["email"], "138****8000");
    assert_eq!(body["expired"], mock.cookie_expire_time(&bxauth).unwrap().as_str());
    let saved_path = std::path::PathBuf::from(body["saved_path"].as_str().unwrap());
    assert!(saved_path.is_absolute() && saved_path.starts_with(&server.auth_dir), "{saved_path:?}");
    let file = saved_path.file_name().unwrap().to_str().unwrap().to_owned();
    assert!(file.starts_with("iflow-138xxxx8000-") && file.ends_with(".json"), "{file}");
    assert_eq!(mode(&server, &file), 0o600);
    let credential = saved(&server, &file);
    assert_eq!(credential.str_field("cookie"), Some(format!("BXAuth={bxauth};").as_str()));
    assert!(!body.to_string().contains(&bxauth), "the answer never echoes the cookie");

    let (status, body) = post_cookie(&server, &json!({ "cookie": format!("BXAuth={bxauth}") }).to_string()).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body, json!({"status": "error", "error": "duplicate BXAuth found", "existing_file": file}));

    // The account serves chat with the key the cookie login fetched.
    let key = credential.str_field("api_key").unwrap().to_owned();
    let (status, body) = chat(&server, "/v1/chat/completions", openai_chat()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(last_chat_key(&mock), key);

    // Its key expires within 48 h, so a forced refresh renews it; the old key is dead upstream.
    let (status, body) =
        json(server.mgmt(Method::POST, "/auth-files/refresh").json(&json!({"name": file})).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    let renewed = saved(&server, &file).str_field("api_key").unwrap().to_owned();
    assert_ne!(renewed, key);
    assert!(!mock.key_is_live(&key));
    let (status, body) = chat(&server, "/v1/messages", anthropic_messages()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(last_chat_key(&mock), renewed);
}

#[tokio::test]
async fn cookie_login_refusals_are_precise_and_save_nothing() {
    let mock = MockIflow::start().await;
    let server = server(&mock).await;
    let dead = mock.add_cookie_account("gone@example.com");
    mock.kill_cookie(&dead);

    let dead_cookie = json!({ "cookie": format!("BXAuth={dead}") }).to_string();
    let cases: Vec<(String, u16, &str)> = vec![
        (json!({}).to_string(), 400, "cookie is required"),
        (json!({"cookie": "   "}).to_string(), 400, "cookie is required"),
        (json!({"cookie": "_ga=1; tfstk=2"}).to_string(), 400, "cookie missing BXAuth field"),
        ("{not json".into(), 400, "invalid body: expected a JSON object"),
        ("[1]".into(), 400, "invalid body: expected a JSON object"),
        (dead_cookie, 400, "iFlow platform refused the cookie: 登录已失效，请重新登录 (not logged in)"),
    ];
    for (body, expected_status, expected_error) in cases {
        let (status, answer) = post_cookie(&server, &body).await;
        assert_eq!(
            (status, answer["status"].as_str(), answer["error"].as_str()),
            (expected_status, Some("error"), Some(expected_error)),
            "{body}: {answer}"
        );
        assert!(!answer.to_string().contains(&dead), "{answer}");
    }
    assert!(server.snapshot().is_empty(), "nothing saved: {:?}", server.snapshot());

    // Only providers with a cookie method have the route; the name is never special-cased.
    let cookie = json!({"cookie": "BXAuth=x"}).to_string();
    let codex = server.mgmt(Method::POST, "/codex-auth-url").header("content-type", "application/json");
    let (status, body) = json(codex.body(cookie.clone()).send().await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("codex has no cookie login")), "{body}");
    let unknown = server.mgmt(Method::POST, "/nope-auth-url").header("content-type", "application/json");
    let (status, _) = json(unknown.body(cookie.clone()).send().await.unwrap()).await;
    assert_eq!(status, 404);
    // The management key is required, as for every management route.
    let anonymous = server.client.post(server.url("/v0/management/iflow-auth-url")).body(cookie);
    assert_eq!(anonymous.send().await.unwrap().status(), 401);
}
