//! `POST /v0/management/auth-files` checks uploads against the provider registry: a known (or
//! file-name-derived) `type` and the fields that provider needs; a rejected upload writes nothing.

mod common;

use common::{TestServer, json, start};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

async fn upload_raw(server: &TestServer, name: &str, body: &Value) -> (u16, Value) {
    json(server.mgmt(Method::POST, &format!("/auth-files?name={name}")).json(body).send().await.unwrap()).await
}

async fn listed(server: &TestServer, name: &str) -> Option<Value> {
    let (_, body) = json(server.mgmt(Method::GET, "/auth-files").send().await.unwrap()).await;
    body["files"].as_array().unwrap().iter().find(|f| f["name"] == name).cloned()
}

#[tokio::test]
async fn uploads_without_a_usable_type_or_token_are_refused_with_the_field() {
    let server = start().await;
    for (name, body, field, starts) in [
        ("claude-a.json", json!({"access_token": "t"}), "type", None),
        ("notype.json", json!({"access_token": "t"}), "type", Some("invalid auth file: missing field `type`")),
        (
            "num.json",
            json!({"type": 42, "access_token": "t"}),
            "type",
            Some("invalid auth file: field `type` must be a string, not a number"),
        ),
        (
            "unk.json",
            json!({"type": "frobnicator", "access_token": "t"}),
            "type",
            Some("invalid auth file: unknown type `frobnicator`; valid types: "),
        ),
        (
            "claude-b.json",
            json!({"type": "claude", "email": "b@example.com"}),
            "access_token or refresh_token",
            Some("invalid auth file: missing field `access_token or refresh_token`: a claude auth file needs it"),
        ),
    ] {
        // `claude-a.json` has no type but a derivable one: it is the only one accepted here.
        let (status, reply) = upload_raw(&server, name, &body).await;
        if name == "claude-a.json" {
            assert_eq!(status, 200, "{reply}");
            continue;
        }
        assert_eq!(status, 400, "{name}: {reply}");
        assert_eq!(reply["field"], field, "{reply}");
        assert!(reply["error"].as_str().unwrap().starts_with(starts.unwrap()), "{reply}");
        let types: Vec<&str> = reply["valid_types"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        assert!(types.contains(&"claude") && types.contains(&"github-copilot"), "{reply}");
        assert!(!server.file(name).exists(), "a rejected upload wrote {name}");
    }
    let names: Vec<String> =
        std::fs::read_dir(&server.auth_dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert_eq!(names, ["claude-a.json"], "only the accepted upload is on disk (no temp files either)");
}

#[tokio::test]
async fn a_type_derived_from_the_file_name_is_written_into_the_file() {
    let server = start().await;
    let body = json!({"refresh_token": "r", "email": "me@example.com", "x_planted": [1]});
    let (status, reply) = upload_raw(&server, "github-copilot-me.json", &json!({"access_token": "gho"})).await;
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = upload_raw(&server, "kimi-123.json", &body).await;
    assert_eq!(status, 200, "{reply}");

    let stored: Value = serde_json::from_slice(&server.read("kimi-123.json")).unwrap();
    assert_eq!(stored["type"], "kimi");
    assert_eq!(stored["x_planted"], json!([1]), "unknown fields are kept");
    assert_eq!(listed(&server, "kimi-123.json").await.unwrap()["type"], "kimi");
    let copilot: Value = serde_json::from_slice(&server.read("github-copilot-me.json")).unwrap();
    assert_eq!(copilot["type"], "github-copilot", "the longest matching type wins over a shorter prefix");
}

#[tokio::test]
async fn a_valid_upload_is_stored_byte_for_byte_and_multipart_reports_each_file() {
    let server = start().await;
    let bytes = br#"{"type":"codex","access_token":"a","refresh_token":"r","x_planted":true}"#;
    let (status, reply) =
        json(server.mgmt(Method::POST, "/auth-files?name=codex-a.json").body(bytes.to_vec()).send().await.unwrap())
            .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(server.read("codex-a.json"), bytes);

    let form = Form::new()
        .part("ok", Part::bytes(br#"{"type":"xai","refresh_token":"r"}"#.to_vec()).file_name("xai-ok.json"))
        .part("bad", Part::bytes(br#"{"type":"xai"}"#.to_vec()).file_name("xai-bad.json"));
    let (status, reply) = json(server.mgmt(Method::POST, "/auth-files").multipart(form).send().await.unwrap()).await;
    assert_eq!(status, 207, "{reply}");
    assert_eq!(reply["files"], json!(["xai-ok.json"]));
    assert_eq!(reply["failed"][0]["name"], "xai-bad.json");
    assert!(reply["failed"][0]["error"].as_str().unwrap().contains("missing field `access_token or refresh_token`"));
    assert!(!server.file("xai-bad.json").exists());
}
