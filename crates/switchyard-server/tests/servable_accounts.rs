//! Only servable accounts are advertised: an account whose provider has no executor, or that
//! needs a re-login, is in no `/v1/models` listing (any dialect) and is never routed to, and
//! `/auth-files` says why. A re-login mark set by the refresher (no file changes) reaches
//! routing through the account sync; logging in again brings the account back.

mod common;

use std::time::Duration;

use common::{Options, TestServer, json, start_with};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_auth::Credential;
use switchyard_testkit::kimi::{Fault, MockKimi};
use tokio::time::Instant;

const DEADLINE: Duration = Duration::from_secs(30);
const KIMI: &str = "kimi-1755853200000.json";

/// A configured provider whose dialect no executor speaks: a stable "no executor" case.
const GEMINI_DIALECT_PROVIDER: &str = "oauth-providers:\n  - name: gem\n    client-id: gem-client\n    issuer: https://id.gem.example\n    dialect: gemini\n    models: [gem-pro]\n";

fn credential(value: Value) -> Credential {
    Credential::from_json(value.to_string().as_bytes()).unwrap()
}

/// A Kimi file as a login writes it.
fn kimi_file(access_token: &str, refresh_token: &str, expired: &str) -> Credential {
    credential(json!({
        "type": "kimi", "access_token": access_token, "refresh_token": refresh_token, "token_type": "Bearer",
        "scope": "kimi-code", "device_id": "6f1d2c3b-4a59-4e7d-8c9b-0a1b2c3d4e5f", "expired": expired,
        "timestamp": 1_755_853_200_000_i64, "disabled": false,
    }))
}

fn far_future() -> String {
    (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()
}

async fn gateway(mock: &MockKimi, extra: &str) -> TestServer {
    let yaml = format!("{}{extra}", mock.upstream_urls_yaml());
    let server = start_with(Options { extra_yaml: &yaml, ..Default::default() }).await;
    // The server binary runs this; the test harness does not. Detached: it lives as long as
    // the test's runtime.
    drop(server.state.spawn_account_sync());
    server
}

async fn save(server: &TestServer, name: &str, credential: &Credential) {
    server.state.store.save(name, credential).await.unwrap();
}

/// Model ids of `GET /v1/models` in the OpenAI shape, the Anthropic shape and of
/// `GET /v1beta/models` (Gemini), which must agree.
async fn listed(server: &TestServer) -> Vec<String> {
    let get = |path: &str| server.client.get(server.url(path));
    let (_, openai) = json(get("/v1/models").send().await.unwrap()).await;
    let (_, anthropic) = json(get("/v1/models").header("anthropic-version", "2023-06-01").send().await.unwrap()).await;
    let (_, gemini) = json(get("/v1beta/models").send().await.unwrap()).await;
    let ids = |value: &Value, list: &str, key: &str| -> Vec<String> {
        value[list]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m[key].as_str().unwrap().trim_start_matches("models/").to_owned())
            .collect()
    };
    let openai_ids = ids(&openai, "data", "id");
    assert_eq!(openai_ids, ids(&anthropic, "data", "id"), "Anthropic listing");
    assert_eq!(openai_ids, ids(&gemini, "models", "name"), "Gemini listing");
    openai_ids
}

/// Waits on the OpenAI listing alone (the three listings are three requests, and the account set
/// may change between them while the sync runs), then checks that all three agree.
async fn until_listed(server: &TestServer, model: &str, present: bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (_, openai) = json(server.client.get(server.url("/v1/models")).send().await.unwrap()).await;
        let mut ids = openai["data"].as_array().unwrap().iter().filter_map(|m| m["id"].as_str());
        if ids.any(|m| m == model) == present {
            break;
        }
        assert!(Instant::now() < deadline, "{model} never became {}", if present { "listed" } else { "unlisted" });
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(listed(server).await.iter().any(|m| m == model), present);
}

async fn auth_file(server: &TestServer, name: &str) -> Value {
    let (status, body) =
        json(server.mgmt(Method::GET, &format!("/auth-files?name={name}")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    body["files"].as_array().unwrap().first().cloned().unwrap_or_else(|| panic!("{name} is not listed"))
}

async fn chat(server: &TestServer, model: &str) -> (u16, Value) {
    let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    json(server.client.post(server.url("/v1/chat/completions")).json(&body).send().await.unwrap()).await
}

#[tokio::test]
async fn accounts_without_an_executor_are_not_advertised_nor_routed_and_say_why() {
    let mock = MockKimi::start().await;
    let server = gateway(&mock, GEMINI_DIALECT_PROVIDER).await;
    let tokens = mock.issue_tokens();
    save(&server, KIMI, &kimi_file(&tokens.access_token, &tokens.refresh_token, &far_future())).await;
    save(&server, "gem-a.json", &credential(json!({"type": "gem", "access_token": "t"}))).await;
    save(&server, "gem-off.json", &credential(json!({"type": "gem", "access_token": "t", "disabled": true}))).await;
    save(&server, "mystery.json", &credential(json!({"type": "mystery", "access_token": "t"}))).await;
    // Any built-in provider without an executor yet.
    let unserved: Vec<_> = switchyard_providers::all().iter().filter(|p| p.executor().is_none()).collect();
    for provider in &unserved {
        let file = format!("{}-x.json", provider.id());
        save(&server, &file, &credential(json!({"type": provider.file_types()[0], "access_token": "t"}))).await;
    }
    until_listed(&server, "kimi-k2", true).await;

    let models = listed(&server).await;
    assert!(!models.iter().any(|m| m == "gem-pro"), "{models:?}");
    let served: Vec<&str> = switchyard_providers::all()
        .iter()
        .filter(|p| p.executor().is_some())
        .flat_map(|p| p.models().iter().map(|m| m.id))
        .collect();
    for provider in &unserved {
        for model in provider.models().iter().filter(|m| !served.contains(&m.id)) {
            assert!(!models.iter().any(|m| m == model.id), "{} of {} is listed", model.id, provider.id());
        }
    }
    let (status, body) = chat(&server, "gem-pro").await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["message"], "unknown provider for model gem-pro");

    let gem = auth_file(&server, "gem-a.json").await;
    assert_eq!(gem["status"], "error");
    assert_eq!(gem["status_message"], "cannot be served: Switchyard has no executor for the `gemini` dialect of gem");
    assert_eq!(gem["unavailable"], true);
    assert_eq!(auth_file(&server, "gem-off.json").await["status"], "disabled", "the user's switch wins");
    let mystery = auth_file(&server, "mystery.json").await;
    assert_eq!(mystery["status_message"], "cannot be served: no provider handles type `mystery`");
    for provider in &unserved {
        let entry = auth_file(&server, &format!("{}-x.json", provider.id())).await;
        let expected = format!("cannot be served: Switchyard has no executor for {}", provider.id());
        assert_eq!((entry["status"].as_str(), entry["status_message"].as_str()), (Some("error"), Some(&*expected)));
    }
    let kimi = auth_file(&server, KIMI).await;
    assert_eq!((kimi["status"].as_str(), kimi["status_message"].as_str()), (Some("active"), Some("")));
    assert_eq!(kimi["unavailable"], false);
}

#[tokio::test]
async fn api_key_sections_without_an_executor_are_listed_as_unservable() {
    use switchyard_providers::exec::api_key_executor;
    let sections = ["claude-api-key", "codex-api-key", "gemini-api-key", "vertex-api-key", "xai-api-key"];
    let Some(section) = sections.into_iter().find(|s| api_key_executor(s).is_none()) else {
        // Every section has an executor: the unservable case does not exist for keys.
        return;
    };
    let mock = MockKimi::start().await;
    let server = gateway(&mock, &format!("{section}:\n  - api-key: sk-unserved-0001\n")).await;
    let (_, body) = json(server.mgmt(Method::GET, "/auth-files").send().await.unwrap()).await;
    let entry = body["files"].as_array().unwrap().iter().find(|f| f["name"] == format!("{section}[0]")).cloned();
    let entry = entry.unwrap_or_else(|| panic!("{section}[0] is not listed: {body}"));
    assert_eq!(entry["status"], "error");
    assert_eq!(entry["status_message"], format!("cannot be served: Switchyard has no executor for {section}"));
    assert!(listed(&server).await.is_empty(), "its models are not advertised");
}

#[tokio::test]
async fn a_refused_refresh_token_takes_the_account_out_until_it_is_logged_in_again() {
    let mock = MockKimi::start().await;
    let server = gateway(&mock, "").await;
    let stale = mock.issue_tokens();
    save(&server, KIMI, &kimi_file(&stale.access_token, &stale.refresh_token, "2020-01-01T00:00:00Z")).await;
    until_listed(&server, "kimi-k2", true).await;
    let on_disk = server.read(KIMI);

    // The access token has expired and the refresh token is refused: the request fails, the
    // refresher marks the account, and the mark alone (no file changes) unlists it.
    mock.set_fault(Fault::RevokeRefreshTokens { status: 401 });
    let (status, body) = chat(&server, "kimi-k2").await;
    assert_ne!(status, 200, "{body}");
    assert_eq!(mock.refresh_calls(), 1);
    until_listed(&server, "kimi-k2", false).await;
    assert_eq!(server.read(KIMI), on_disk, "the file is never rewritten for a re-login mark");

    let entry = auth_file(&server, KIMI).await;
    assert_eq!(entry["status"], "error");
    let message = entry["status_message"].as_str().unwrap();
    assert!(message.starts_with("needs re-login: HTTP 401"), "{message}");
    assert!(!message.contains(&stale.refresh_token), "{message}");
    assert_eq!((entry["unavailable"].as_bool(), entry["needs_relogin"].as_bool()), (Some(true), Some(true)));

    // Not routed: the model is unknown now, and nothing reaches Kimi.
    let (status, body) = chat(&server, "kimi-k2").await;
    assert_eq!(status, 400, "{body}");
    let messages = json!({"model": "kimi-k2", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]});
    let response = server.client.post(server.url("/v1/messages")).json(&messages).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(mock.refresh_calls(), 1, "no further refresh attempt");
    assert!(mock.api().requests().is_empty(), "no request reached the coding API");

    // Logging in again writes new tokens: the account is back, without the old cooldown.
    mock.set_fault(Fault::None);
    let fresh = mock.issue_tokens();
    save(&server, KIMI, &kimi_file(&fresh.access_token, &fresh.refresh_token, &far_future())).await;
    until_listed(&server, "kimi-k2", true).await;
    let (status, body) = chat(&server, "kimi-k2").await;
    assert_eq!(status, 200, "{body}");
    let seen = mock.api().last_request();
    assert_eq!(seen.path, "/coding/v1/chat/completions");
    assert_eq!(seen.headers["authorization"], format!("Bearer {}", fresh.access_token));
    assert_eq!(auth_file(&server, KIMI).await["status"], "active");
}

/// A saved file whose account changed (here its excluded models) changes routing at once; one
/// whose tokens alone changed (what a refresh saves) leaves the account as it was, and requests
/// use the new token.
#[tokio::test]
async fn a_saved_file_changes_routing_only_when_its_account_changes() {
    let mock = MockKimi::start().await;
    let server = gateway(&mock, "").await;
    let first = mock.issue_tokens();
    save(&server, KIMI, &kimi_file(&first.access_token, &first.refresh_token, &far_future())).await;
    until_listed(&server, "kimi-k2", true).await;

    let fresh = mock.issue_tokens();
    save(&server, KIMI, &kimi_file(&fresh.access_token, &fresh.refresh_token, &far_future())).await;
    let (status, body) = chat(&server, "kimi-k2").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(mock.api().last_request().headers["authorization"], format!("Bearer {}", fresh.access_token));
    assert!(listed(&server).await.iter().any(|m| m == "kimi-k2"));

    let mut excluding = kimi_file(&fresh.access_token, &fresh.refresh_token, &far_future());
    excluding.fields_mut().insert("excluded_models".into(), json!(["kimi-k2"]));
    save(&server, KIMI, &excluding).await;
    until_listed(&server, "kimi-k2", false).await;
    let (status, body) = chat(&server, "kimi-k2").await;
    assert_eq!(status, 400, "an excluded model is not routed: {body}");
}
