//! Vertex AI end to end through the real server: a service-account key imported over the
//! management API (multipart, CPA's `/vertex/import` answer), the saved file, then Gemini,
//! OpenAI and Anthropic clients served through the mock upstream with a token minted at the mock
//! token endpoint (which checks the assertion's signature) — one mint for all of them, the file
//! never touched. Bad imports are 400 with CPA's error words and nothing saved; a raw key
//! uploaded to `/auth-files` is imported instead of stored as is.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Options, TestServer, json, start_with};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Map, Value, json};
use switchyard_testkit::google_sa::{self, MockGoogleSa, access_token};
use switchyard_testkit::upstream::{MockUpstream, RequiredAuth};

const PROJECT: &str = "acme-prod-42";
const EMAIL: &str = "gateway@acme-prod-42.iam.gserviceaccount.com";
const FILE: &str = "vertex-acme-prod-42.json";
const MODEL: &str = "gemini-2.5-pro";

struct Env {
    server: TestServer,
    upstream: MockUpstream,
    google: MockGoogleSa,
}

async fn env() -> Env {
    let upstream = MockUpstream::start().await;
    let google = MockGoogleSa::start().await;
    let yaml = format!("upstream-urls:\n  vertex:\n    api: {}\n    token: {}\n", upstream.base(), google.token_url());
    let server = start_with(Options { extra_yaml: &yaml, ..Default::default() }).await;
    Env { server, upstream, google }
}

fn key_bytes(key: &Map<String, Value>) -> Vec<u8> {
    serde_json::to_vec_pretty(key).unwrap()
}

fn key_form(bytes: Vec<u8>) -> Form {
    Form::new().part("file", Part::bytes(bytes).file_name("acme-prod-42-5f0c9e3a7b2d.json"))
}

async fn import(server: &TestServer, path: &str, form: Form) -> (u16, Value) {
    json(server.mgmt(Method::POST, path).multipart(form).send().await.unwrap()).await
}

#[tokio::test]
async fn an_imported_service_account_serves_gemini_openai_and_anthropic_clients() {
    let Env { server, upstream, google } = env().await;
    let key = google.service_account(PROJECT, EMAIL);
    let (status, answer) = import(&server, "/vertex/import?location=europe-west4", key_form(key_bytes(&key))).await;
    assert_eq!(status, 200, "{answer}");
    let saved_path = server.state.store.dir().join(FILE);
    assert_eq!(
        answer,
        json!({"status": "ok", "auth-file": saved_path.display().to_string(), "file": FILE, "type": "vertex",
               "project_id": PROJECT, "email": EMAIL, "location": "europe-west4",
               "label": format!("{PROJECT} ({EMAIL})")})
    );
    let mode = std::fs::metadata(server.file(FILE)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let saved: Value = serde_json::from_slice(&server.read(FILE)).unwrap();
    assert_eq!(saved["service_account"], Value::Object(key.clone()));
    assert_eq!((saved["type"].as_str(), saved["location"].as_str()), (Some("vertex"), Some("europe-west4")));
    let file_before = server.read(FILE);
    server.state.sync_accounts();

    upstream.require_auth(Some(RequiredAuth::Bearer(access_token(1))));
    let vertex_path = format!("/v1/projects/{PROJECT}/locations/europe-west4/publishers/google/models/{MODEL}");
    let gemini_body = json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]});

    let (status, body) = json(
        server
            .client
            .post(server.url(&format!("/v1beta/models/{MODEL}:generateContent")))
            .json(&gemini_body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let expected: Value =
        serde_json::from_slice(&switchyard_testkit::fixtures::read("gemini/google-text.json")).unwrap();
    assert_eq!(body, expected, "Gemini clients get the upstream answer as it is");
    assert_eq!(upstream.last_request().path, format!("{vertex_path}:generateContent"));

    let chat = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, body) =
        json(server.client.post(server.url("/v1/chat/completions")).json(&chat).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert!(body["choices"][0]["message"]["content"].as_str().is_some_and(|t| !t.is_empty()), "{body}");

    let messages = json!({"model": MODEL, "max_tokens": 64, "stream": true,
                          "messages": [{"role": "user", "content": "Hi"}]});
    let response = server.client.post(server.url("/v1/messages")).json(&messages).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("event: message_start") && text.contains("event: message_stop"), "{text}");
    let seen = upstream.last_request();
    assert_eq!(
        (seen.path.clone(), seen.query.as_deref()),
        (format!("{vertex_path}:streamGenerateContent"), Some("alt=sse"))
    );

    assert_eq!(google.mints(), 1, "one minted token served all three clients");
    for request in upstream.requests() {
        assert_eq!(request.headers["authorization"], format!("Bearer {}", access_token(1)).as_str());
    }
    assert_eq!(server.read(FILE), file_before, "the auth file is byte for byte what the import wrote");
}

#[tokio::test]
async fn form_fields_and_a_prefix_shape_the_import() {
    let Env { server, google, .. } = env().await;
    let key = google.service_account(PROJECT, EMAIL);
    let form = key_form(key_bytes(&key)).text("location", "global").text("prefix", "vx");
    // A form field wins over the query.
    let (status, answer) = import(&server, "/vertex/import?location=us-east5", form).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["file"].as_str(), answer["location"].as_str()),
        (Some("vertex-vx-acme-prod-42.json"), Some("global"))
    );
    assert_eq!(answer["prefix"], "vx");
    let saved: Value = serde_json::from_slice(&server.read("vertex-vx-acme-prod-42.json")).unwrap();
    assert_eq!(saved["prefix"], "vx");

    // `?method=` names the import method (or its alias); others are refused by name.
    let (status, answer) = import(&server, "/vertex/import?method=import", key_form(key_bytes(&key))).await;
    assert_eq!((status, answer["file"].as_str()), (200, Some(FILE)));
    let (status, answer) = import(&server, "/vertex/import?method=browser", key_form(key_bytes(&key))).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"], "unknown import method `browser` for vertex; use: service-account");
}

#[tokio::test]
async fn bad_imports_are_400_with_cpas_words_and_nothing_is_saved() {
    let Env { server, google, .. } = env().await;
    let key = google.service_account(PROJECT, EMAIL);
    let with = |field: &str, value: Value| {
        let mut key = key.clone();
        key.insert(field.into(), value);
        key_bytes(&key)
    };
    let without = |field: &str| {
        let mut key = key.clone();
        key.remove(field);
        key_bytes(&key)
    };
    let cases: Vec<(&str, Form, &str, &str)> = vec![
        (
            "",
            key_form(b"{\"type\": ".to_vec()),
            "invalid json",
            "is not valid JSON (EOF while parsing a value at line 1",
        ),
        ("", key_form(with("type", json!("authorized_user"))), "invalid service account", "user credential"),
        ("", key_form(without("private_key")), "invalid service account", "private_key is missing"),
        ("", key_form(with("private_key", json!(google_sa::EC_PRIVATE_KEY))), "invalid service account", "no RSA key"),
        ("", key_form(without("client_email")), "invalid service account", "client_email is missing"),
        ("", key_form(without("project_id")), "project_id missing", "has no project_id"),
        ("?location=eu%2Fwest", key_form(key_bytes(&key)), "invalid location", "\"eu/west\" is not a region name"),
    ];
    for (query, form, error, message) in cases {
        let (status, answer) = import(&server, &format!("/vertex/import{query}"), form).await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["error"], error, "{answer}");
        let text = answer["message"].as_str().unwrap_or_default();
        assert!(text.contains(message), "{answer}");
        assert!(!text.contains("BEGIN") && !text.contains("MII"), "{answer}");
        assert!(server.snapshot().is_empty(), "{answer}: something was saved");
    }

    let no_file = Form::new().text("location", "us-central1");
    let (status, answer) = import(&server, "/vertex/import", no_file).await;
    assert_eq!((status, answer), (400, json!({"error": "file required"})));
    let response = server.mgmt(Method::POST, "/vertex/import").body(key_bytes(&key)).send().await.unwrap();
    assert_eq!(json(response).await, (400, json!({"error": "file required"})), "no multipart, no file");

    let huge = key_form(vec![b' '; 1024 * 1024 + 1]);
    let (status, _) = import(&server, "/vertex/import", huge).await;
    assert_eq!(status, 413);

    let (status, answer) = import(&server, "/nope/import", key_form(key_bytes(&key))).await;
    assert_eq!((status, answer["error"].as_str()), (404, Some("unknown provider `nope`")));
    let (status, answer) = import(&server, "/anthropic/import", key_form(key_bytes(&key))).await;
    assert_eq!(status, 404);
    assert!(answer["error"].as_str().unwrap().contains("has no import"), "{answer}");
    assert!(server.snapshot().is_empty());

    // Without the management key nothing is imported.
    let response = server.client.post(server.url("/v0/management/vertex/import")).multipart(key_form(key_bytes(&key)));
    assert_eq!(response.send().await.unwrap().status(), 401);
    assert!(server.snapshot().is_empty());
}

#[tokio::test]
async fn a_raw_key_uploaded_to_auth_files_is_imported_instead() {
    let Env { server, google, .. } = env().await;
    let key = google.service_account(PROJECT, EMAIL);
    let form = Form::new().part("file", Part::bytes(key_bytes(&key)).file_name("downloaded-key.json"));
    let (status, answer) = json(server.mgmt(Method::POST, "/auth-files").multipart(form).send().await.unwrap()).await;
    assert_eq!(status, 200, "{answer}");
    let names: Vec<String> = server.snapshot().into_iter().map(|(name, _)| name).collect();
    assert_eq!(names, vec![FILE.to_owned()], "saved as the Vertex account, not as the uploaded name");
    let saved: Value = serde_json::from_slice(&server.read(FILE)).unwrap();
    assert_eq!((saved["type"].as_str(), saved["location"].as_str()), (Some("vertex"), Some("us-central1")));

    // The raw-body upload too; a bad key is refused like an import, and nothing else changes.
    let before = server.snapshot();
    let mut broken = key.clone();
    broken.remove("private_key");
    let response =
        server.mgmt(Method::POST, "/auth-files?name=key.json").body(key_bytes(&broken)).send().await.unwrap();
    let (status, answer) = json(response).await;
    assert_eq!((status, answer["error"].as_str()), (400, Some("invalid service account")), "{answer}");
    assert_eq!(server.snapshot(), before);

    // Auth files that are no import's input are stored as uploaded.
    let claude = json!({"type": "claude", "email": "a@example.com", "access_token": "t", "refresh_token": "r"});
    let response =
        server.mgmt(Method::POST, "/auth-files?name=claude-a.json").body(claude.to_string()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.read("claude-a.json"), claude.to_string().as_bytes());
}
