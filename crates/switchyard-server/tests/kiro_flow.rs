//! Kiro end to end through the real server on loopback, against the Kiro mock: the Builder ID
//! device login started from the management API, requests in Anthropic and OpenAI dialects
//! reaching CodeWhisperer with the saved token, a forced refresh that rewrites only the tokens,
//! the social login finished by pasting the `kiro://` URL, a rejected token refreshed
//! mid-request, and usage records carrying the tokens Kiro reported.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::{Options, TestServer, json, start_with};
use reqwest::{Client, Method, StatusCode, redirect};
use serde_json::{Map, Value, json};
use switchyard_testkit::kiro::{Api, ApiFault, CODEWHISPERER_PATH, MockKiro, PROFILE_ARN, PollAnswer, oidc_path};

const DEADLINE: Duration = Duration::from_secs(30);
const EMAIL: &str = "dev@example.com";
const AWS_FILE: &str = "kiro-aws-dev@example.com.json";
const MODEL: &str = "kiro-claude-sonnet-4-5";

async fn server(mock: &MockKiro) -> TestServer {
    start_with(Options { extra_yaml: &mock.upstream_urls_yaml(), ..Default::default() }).await
}

async fn auth_status(server: &TestServer, state: &str) -> Value {
    let (status, body) =
        json(server.mgmt(Method::GET, &format!("/get-auth-status?state={state}")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls `get-auth-status` until the login is no longer waiting (bounded).
async fn outcome(server: &TestServer, state: &str) -> Value {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let body = auth_status(server, state).await;
        if body["status"] != "wait" {
            return body;
        }
        assert!(Instant::now() < deadline, "login {state} still waiting");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn read(server: &TestServer, name: &str) -> Map<String, Value> {
    serde_json::from_slice::<Value>(&server.read(name)).unwrap().as_object().unwrap().clone()
}

/// `GET /kiro-auth-url?method=builder-id`, the user approves, the status turns ok.
async fn builder_id_login(server: &TestServer, mock: &MockKiro) -> String {
    let (status, started) =
        json(server.mgmt(Method::GET, "/kiro-auth-url?method=builder-id").send().await.unwrap()).await;
    assert_eq!(status, 200, "{started}");
    assert_eq!(started["status"], "ok");
    assert_eq!(started["flow"], "device");
    let state = started["state"].as_str().unwrap().to_owned();
    assert!(state.starts_with("kiro-"), "{state}");
    let user_code = started["user_code"].as_str().unwrap().to_owned();
    assert_eq!(started["verification_uri"], "https://device.sso.us-east-1.amazonaws.com/");
    let complete = format!("https://device.sso.us-east-1.amazonaws.com/?user_code={user_code}");
    assert_eq!(started["verification_uri_complete"], complete.as_str());
    assert_eq!(started["url"], complete.as_str());
    assert_eq!((started["expires_in"].as_u64(), started["interval"].as_u64()), (Some(600), Some(1)));
    let pending = auth_status(server, &state).await;
    assert_eq!((pending["status"].as_str(), pending["user_code"].as_str()), (Some("wait"), Some(user_code.as_str())));

    assert!(mock.approve(&user_code));
    let done = outcome(server, &state).await;
    let file = done["file"].as_str().unwrap_or_else(|| panic!("{done}")).to_owned();
    assert_eq!(done, json!({"status": "ok", "file": file}));
    server.state.sync_accounts();
    file
}

fn message_request(stream: bool) -> Value {
    json!({"model": MODEL, "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": "Hi"}]})
}

fn last_bearer(mock: &MockKiro) -> String {
    let sent = mock.requests_to(CODEWHISPERER_PATH);
    sent.last().unwrap().headers["authorization"].to_str().unwrap().to_owned()
}

/// The `data:` payloads of an SSE body, `[DONE]` included as a string.
fn sse_data(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_owned())))
        .collect()
}

#[tokio::test]
async fn builder_id_login_serves_both_dialects_and_a_forced_refresh_rewrites_only_tokens() {
    let mock = MockKiro::start().await;
    mock.set_jwt_email(Some(EMAIL));
    let server = server(&mock).await;
    let file = builder_id_login(&server, &mock).await;
    assert_eq!(file, AWS_FILE);

    let path = server.file(AWS_FILE);
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let saved = read(&server, AWS_FILE);
    for (key, value) in [
        ("type", "kiro"),
        ("auth_method", "builder-id"),
        ("provider", "AWS"),
        ("region", "us-east-1"),
        ("email", EMAIL),
    ] {
        assert_eq!(saved[key], value, "{key}");
    }
    for key in ["access_token", "refresh_token", "expires_at", "client_id", "client_secret", "last_refresh"] {
        assert!(saved[key].as_str().is_some_and(|v| !v.is_empty()), "{key} in {saved:?}");
    }
    let bearer = format!("Bearer {}", saved["access_token"].as_str().unwrap());

    // Anthropic, whole.
    let (status, message) =
        json(server.client.post(server.url("/v1/messages")).json(&message_request(false)).send().await.unwrap()).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(message["content"], json!([{"type": "text", "text": "Hello from Kiro!"}]));
    assert_eq!(message["model"], MODEL);
    assert_eq!(last_bearer(&mock), bearer);
    let sent = mock.requests_to(CODEWHISPERER_PATH).last().unwrap().json();
    assert_eq!(sent["conversationState"]["currentMessage"]["userInputMessage"]["content"], "Hi");
    assert!(sent.get("profileArn").is_none());

    // Anthropic, streamed.
    let response = server.client.post(server.url("/v1/messages")).json(&message_request(true)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let events = sse_data(&response.text().await.unwrap());
    let text: String = events.iter().filter_map(|e| e["delta"]["text"].as_str()).collect();
    assert_eq!(text, "Hello from Kiro!");
    assert_eq!(events.last().unwrap()["type"], "message_stop");

    // OpenAI Chat, translated, whole and streamed.
    let chat = |stream: bool| json!({"model": MODEL, "stream": stream, "messages": [{"role": "system", "content": "Be nice."}, {"role": "user", "content": "Hi"}]});
    let (status, completion) =
        json(server.client.post(server.url("/v1/chat/completions")).json(&chat(false)).send().await.unwrap()).await;
    assert_eq!(status, 200, "{completion}");
    assert_eq!(completion["choices"][0]["message"]["content"], "Hello from Kiro!");
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    let sent = mock.requests_to(CODEWHISPERER_PATH).last().unwrap().json();
    let content = sent["conversationState"]["currentMessage"]["userInputMessage"]["content"].as_str().unwrap();
    assert!(
        content.starts_with("--- SYSTEM PROMPT ---\n")
            && content.ends_with("Be nice.\n--- END SYSTEM PROMPT ---\n\nHi"),
        "{content}"
    );
    let response = server.client.post(server.url("/v1/chat/completions")).json(&chat(true)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let chunks = sse_data(&response.text().await.unwrap());
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "Hello from Kiro!");
    assert_eq!(chunks.last().unwrap(), "[DONE]");
    assert_eq!(last_bearer(&mock), bearer);

    // Forced refresh: new tokens, everything else as it was.
    let (status, body) =
        json(server.mgmt(Method::POST, "/auth-files/refresh").json(&json!({"name": AWS_FILE})).send().await.unwrap())
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mock.count(&oidc_path("us-east-1", "token")), 2, "the device grant, then the refresh");
    let refreshed = read(&server, AWS_FILE);
    assert_ne!(refreshed["access_token"], saved["access_token"]);
    assert_ne!(refreshed["refresh_token"], saved["refresh_token"], "rotated");
    let changed = ["access_token", "refresh_token", "expires_at", "last_refresh"];
    let rest = |fields: &Map<String, Value>| -> Map<String, Value> {
        fields.iter().filter(|(k, _)| !changed.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
    };
    assert_eq!(rest(&refreshed), rest(&saved));
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

    server.client.post(server.url("/v1/messages")).json(&message_request(false)).send().await.unwrap();
    assert_eq!(last_bearer(&mock), format!("Bearer {}", refreshed["access_token"].as_str().unwrap()));
}

#[tokio::test]
async fn a_denied_device_login_reports_why_and_saves_nothing() {
    let mock = MockKiro::start().await;
    let server = server(&mock).await;
    mock.script_polls(&[PollAnswer::Deny]);
    let (_, started) = json(server.mgmt(Method::GET, "/kiro-auth-url?method=aws").send().await.unwrap()).await;
    let state = started["state"].as_str().unwrap();
    let done = outcome(&server, state).await;
    assert_eq!(done, json!({"status": "error", "error": "Authentication failed: the user denied the device login"}));
    assert!(server.snapshot().is_empty(), "{:?}", server.snapshot());

    let (status, body) = json(server.mgmt(Method::GET, "/kiro-auth-url?method=idc").send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(
        body["error"],
        "start_url is required for an IAM Identity Center login (https://<org>.awsapps.com/start)"
    );
}

#[tokio::test]
async fn social_login_is_finished_by_pasting_the_kiro_url() {
    let mock = MockKiro::start().await;
    let server = server(&mock).await;
    let browser = Client::builder().no_proxy().redirect(redirect::Policy::none()).build().unwrap();

    let (status, started) = json(server.mgmt(Method::GET, "/kiro-auth-url?method=google").send().await.unwrap()).await;
    assert_eq!(status, 200, "{started}");
    let state = started["state"].as_str().unwrap().to_owned();
    let url = started["url"].as_str().unwrap();
    assert!(url.starts_with(&mock.url("/social/login?idp=Google&redirect_uri=kiro%3A%2F%2F")), "{url}");
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let pasted = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(pasted.starts_with("kiro://kiro.kiroAgent/authenticate-success?code="), "{pasted}");

    // A kiro:// URL of some other login is refused.
    let stranger = pasted.replace(&state, "0123456789abcdef0123456789abcdef");
    let (status, body) = json(
        server
            .client
            .post(server.url("/v0/management/oauth-callback"))
            .json(&json!({"provider": "kiro", "redirect_url": stranger}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("unknown or expired state")));

    let (status, body) = json(
        server
            .client
            .post(server.url("/v0/management/oauth-callback"))
            .json(&json!({"provider": "kiro", "redirect_url": pasted}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));
    let done = outcome(&server, &state).await;
    assert_eq!(done, json!({"status": "ok", "file": "kiro-google-MOCKPROFILE01.json"}));
    let saved = read(&server, "kiro-google-MOCKPROFILE01.json");
    assert_eq!(saved["auth_method"], "social");
    assert_eq!(saved["provider"], "Google");
    assert_eq!(saved["profile_arn"], PROFILE_ARN);

    // The main-port route takes the same callback (GitHub this time).
    let (_, started) = json(server.mgmt(Method::GET, "/kiro-auth-url?method=github").send().await.unwrap()).await;
    let state = started["state"].as_str().unwrap().to_owned();
    let location = browser.get(started["url"].as_str().unwrap()).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let query = location.split_once('?').unwrap().1;
    let page = server.client.get(server.url(&format!("/kiro/callback?{query}"))).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(outcome(&server, &state).await["status"], "ok");
    server.state.sync_accounts();

    // Social accounts send their profile ARN.
    let (status, _) =
        json(server.client.post(server.url("/v1/messages")).json(&message_request(false)).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(mock.requests_to(CODEWHISPERER_PATH).last().unwrap().json()["profileArn"], PROFILE_ARN);
}

#[tokio::test]
async fn a_rejected_token_is_refreshed_and_the_request_retried_once() {
    let mock = MockKiro::start().await;
    mock.set_jwt_email(Some(EMAIL));
    let server = server(&mock).await;
    builder_id_login(&server, &mock).await;
    let before = read(&server, AWS_FILE);
    mock.push_fault(Api::CodeWhisperer, ApiFault::InvalidToken);
    let (status, message) =
        json(server.client.post(server.url("/v1/messages")).json(&message_request(false)).send().await.unwrap()).await;
    assert_eq!(status, 200, "{message}");
    assert_eq!(mock.refresh_calls(), (1, 0));
    let after = read(&server, AWS_FILE);
    assert_ne!(after["access_token"], before["access_token"]);
    assert_eq!(last_bearer(&mock), format!("Bearer {}", after["access_token"].as_str().unwrap()));
}

/// The Kiro IDE's own token file (`~/.aws/sso/cache/kiro-auth-token.json`, camelCase, no `type`)
/// uploaded through `POST /auth-files` is imported as a Kiro credential, not stored as it came,
/// and the account then serves requests with the IDE's token.
#[tokio::test]
async fn the_kiro_ide_token_file_uploaded_to_auth_files_is_imported_and_serves() {
    let mock = MockKiro::start().await;
    let server = server(&mock).await;
    // As `switchyard serve` does: routing follows the store.
    let _sync = server.state.spawn_account_sync();
    let tokens = mock.issue_social_tokens();
    let ide_file = json!({
        "accessToken": tokens.access_token,
        "refreshToken": tokens.refresh_token,
        "expiresAt": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339(),
        "authMethod": "social",
        "provider": "Google",
        "profileArn": PROFILE_ARN,
    });
    let (status, body) = json(
        server
            .mgmt(Method::POST, "/auth-files?name=kiro-auth-token.json")
            .body(ide_file.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["imported"], true, "{body}");
    let file = body["file"].as_str().unwrap().to_owned();
    assert!(file.starts_with("kiro-google-") && file.ends_with(".json"), "{file}");
    assert!(!server.auth_dir.join("kiro-auth-token.json").exists(), "the IDE file is not stored as it came");
    let saved = read(&server, &file);
    assert_eq!(saved["type"], "kiro");
    assert_eq!(saved["auth_method"], "social");
    assert_eq!(saved["access_token"], tokens.access_token.as_str());
    assert_eq!(saved["profile_arn"], PROFILE_ARN);
    let mode = std::fs::metadata(server.auth_dir.join(&file)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let deadline = Instant::now() + DEADLINE;
    loop {
        let response = server.client.post(server.url("/v1/messages")).json(&message_request(false)).send().await;
        let (status, answer) = json(response.unwrap()).await;
        if status == 200 {
            assert_eq!(answer["type"], "message", "{answer}");
            break;
        }
        // The account appears once the store's change reaches routing.
        assert!(Instant::now() < deadline, "still {status}: {answer}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last_bearer(&mock), format!("Bearer {}", tokens.access_token));
}

#[tokio::test]
async fn usage_records_carry_the_tokens_kiro_reported_in_either_dialect() {
    let mock = MockKiro::start().await;
    mock.set_jwt_email(Some(EMAIL));
    let yaml = format!("{}usage-statistics-enabled: true\n", mock.upstream_urls_yaml());
    let server = start_with(Options { extra_yaml: &yaml, ..Default::default() }).await;
    builder_id_login(&server, &mock).await;
    let records = server.state.usage.take_records().unwrap();
    // The recorded answer reports 42 input and 17 output tokens in its usage event.
    mock.set_frames(switchyard_testkit::kiro::fixture_frames());
    let chat =
        |stream: bool| json!({"model": MODEL, "stream": stream, "messages": [{"role": "user", "content": "Hi"}]});
    for (path, body) in [
        ("/v1/messages", message_request(false)),
        ("/v1/messages", message_request(true)),
        ("/v1/chat/completions", chat(false)),
        ("/v1/chat/completions", chat(true)),
    ] {
        let response = server.client.post(server.url(path)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        response.text().await.unwrap();
        let deadline = Instant::now() + DEADLINE;
        let record = loop {
            if let Ok(record) = records.try_recv() {
                break record;
            }
            assert!(Instant::now() < deadline, "{path}: no usage record");
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let t = &record.tokens;
        assert_eq!((t.input, t.output, t.estimated), (42, 17, false), "{path} {body}: {record:?}");
        assert_eq!((record.provider.as_str(), record.account.as_str()), ("kiro", AWS_FILE));
        assert_eq!(record.dialect_out, "anthropic-messages", "Kiro's executor answers in Anthropic's dialect");
    }
}
