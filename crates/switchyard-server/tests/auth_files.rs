//! `/v0/management/auth-files...` end to end over HTTP, against a copy of the auth-file corpus.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{Options, TestServer, json, start, start_with};
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

const CLAUDE: &str = "claude-jane.doe@example.com.json";
const CODEX: &str = "codex-1a2b3c4d-sam@example.org-team-plan.json";
const GEMINI: &str = "gemini-lee@example.com-my-project-123.json";

async fn with_corpus() -> TestServer {
    start_with(Options { with_corpus: true, ..Default::default() }).await
}

async fn list(server: &TestServer, query: &str) -> Vec<Value> {
    let response = server.mgmt(Method::GET, &format!("/auth-files{query}")).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "application/json");
    let (status, body) = json(response).await;
    assert_eq!(status, 200);
    body["files"].as_array().unwrap().clone()
}

fn entry<'a>(files: &'a [Value], name: &str) -> &'a Value {
    files.iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("{name} not listed"))
}

fn file_json(server: &TestServer, name: &str) -> Value {
    serde_json::from_slice(&server.read(name)).unwrap()
}

#[tokio::test]
async fn lists_every_corpus_file_with_cpa_fields() {
    let server = with_corpus().await;
    let files = list(&server, "").await;
    let corpus_count = std::fs::read_dir(common::corpus_dir()).unwrap().count();
    assert_eq!(files.len(), corpus_count);

    let names: Vec<&str> = files.iter().map(|f| f["name"].as_str().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort_by_key(|n| n.to_lowercase());
    assert_eq!(names, sorted, "listing must be sorted by name");

    for file in &files {
        for key in [
            "id",
            "auth_index",
            "name",
            "type",
            "provider",
            "label",
            "status",
            "status_message",
            "disabled",
            "unavailable",
            "runtime_only",
            "source",
            "size",
            "success",
            "failed",
            "recent_requests",
            "path",
            "modtime",
            "updated_at",
            "created_at",
            "account_type",
        ] {
            assert!(file.get(key).is_some(), "{} lacks {key}", file["name"]);
        }
        assert_eq!(file["auth_index"].as_str().unwrap().len(), 16);
        assert_eq!(file["recent_requests"].as_array().unwrap().len(), 20);
        assert_eq!(file["source"], "file");
        let size = std::fs::metadata(server.file(file["name"].as_str().unwrap())).unwrap().len();
        assert_eq!(file["size"], size);
        // Listing never exposes tokens.
        let text = file.to_string();
        assert!(!text.contains("FAKE"), "token leaked in listing: {text}");
    }

    // The corpus has a file of every provider: those Switchyard cannot send requests with say
    // so (and are not served); the others are active; disabled ones say only that.
    for file in &files {
        let provider = file["provider"].as_str().unwrap();
        let builtin = switchyard_providers::for_file_type(provider).or_else(|| switchyard_providers::by_id(provider));
        let builtin = builtin.unwrap_or_else(|| panic!("corpus file of unknown provider {provider}"));
        let (status, message) = (file["status"].as_str().unwrap(), file["status_message"].as_str().unwrap());
        if file["disabled"] == true {
            assert_eq!((status, message), ("disabled", ""), "{}: the user's switch wins", file["name"]);
        } else if builtin.executor().is_some() {
            assert_eq!((status, message), ("active", ""), "{}", file["name"]);
        } else {
            let expected = format!("cannot be served: Switchyard has no executor for {}", builtin.id());
            assert_eq!((status, message), ("error", expected.as_str()), "{}", file["name"]);
            assert_eq!(file["unavailable"], true);
        }
    }

    let claude = entry(&files, CLAUDE);
    assert_eq!(claude["type"], "claude");
    assert_eq!(claude["provider"], "claude");
    assert_eq!(claude["email"], "jane.doe@example.com");
    assert_eq!(claude["account"], "jane.doe@example.com");
    assert_eq!(claude["status"], "active");
    assert_eq!(claude["prefix"], "work");
    assert_eq!(claude["priority"], 10);
    assert_eq!(entry(&files, GEMINI)["type"], "gemini-cli");
    assert_eq!(entry(&files, GEMINI)["project_id"], "my-project-123");
    let codex = entry(&files, CODEX);
    assert_eq!(codex["id_token"]["plan_type"], "team", "codex id_token claims: {codex}");
    assert_eq!(codex["id_token"]["chatgpt_account_id"], "c0ffee00-1111-2222-3333-444455556666");
}

#[tokio::test]
async fn list_filters_by_name_and_auth_index() {
    let server = with_corpus().await;
    let all = list(&server, "").await;
    let index = entry(&all, CLAUDE)["auth_index"].as_str().unwrap().to_owned();
    let by_name = list(&server, &format!("?name={CLAUDE}")).await;
    assert_eq!(by_name.len(), 1);
    let by_index = list(&server, &format!("?auth_index={index}")).await;
    assert_eq!(by_index.len(), 1);
    assert_eq!(by_index[0]["name"], CLAUDE);
    assert!(list(&server, "?auth_index=0000000000000000").await.is_empty());
}

#[tokio::test]
async fn corrupt_files_are_listed_as_errors_and_never_touched() {
    let server = with_corpus().await;
    std::fs::write(server.file("claude-broken.json"), b"{\"type\": \"claude\", ").unwrap();
    std::fs::write(server.file("codex-array.json"), b"[1, 2]").unwrap();
    server.state.store.rescan().await.unwrap();
    let before = server.snapshot();

    let files = list(&server, "").await;
    let broken = entry(&files, "claude-broken.json");
    assert_eq!(broken["status"], "error");
    assert_eq!(broken["unavailable"], true);
    assert!(!broken["status_message"].as_str().unwrap().is_empty());
    assert_eq!(entry(&files, "codex-array.json")["status"], "error");
    // What a corrupt file cannot have is left out, not `null`; a readable file has it.
    for key in ["needs_relogin", "health", "email", "account_type", "refused", "cooldowns", "next_retry_after"] {
        assert!(broken.get(key).is_none(), "corrupt entry has {key}: {broken}");
    }
    assert_eq!(entry(&files, CLAUDE)["needs_relogin"], false);
    assert!(files.iter().flat_map(|f| f.as_object().unwrap().values()).all(|v| !v.is_null()), "a null field");

    // Status and field edits are refused with a clear error; nothing on disk changes.
    let (status, body) = json(
        server
            .mgmt(Method::PATCH, "/auth-files/status")
            .json(&json!({"name": "claude-broken.json", "disabled": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (status, _) = json(
        server
            .mgmt(Method::PATCH, "/auth-files/fields")
            .json(&json!({"name": "codex-array.json", "note": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 409);
    // An invalid upload over a corrupt file does not replace it either.
    let (status, _) = json(
        server.mgmt(Method::POST, "/auth-files?name=claude-broken.json").body("still not json").send().await.unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(server.snapshot(), before);

    // It can be downloaded for repair.
    let response = server.mgmt(Method::GET, "/auth-files/download?name=claude-broken.json").send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"{\"type\": \"claude\", ");
}

#[tokio::test]
async fn download_returns_exact_bytes_and_rejects_bad_names() {
    let server = with_corpus().await;
    let response = server.mgmt(Method::GET, &format!("/auth-files/download?name={CLAUDE}")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-disposition"].to_str().unwrap(),
        format!("attachment; filename=\"{CLAUDE}\"")
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), server.read(CLAUDE).as_slice());

    for (query, expected) in [
        ("?name=..%2Fconfig.yaml", 400),
        ("?name=../x.json", 400),
        ("?name=sub/x.json", 400),
        ("?name=..%5Cx.json", 400),
        ("?name=x.txt", 400),
        ("", 400),
        ("?name=missing.json", 404),
    ] {
        let (status, body) =
            json(server.mgmt(Method::GET, &format!("/auth-files/download{query}")).send().await.unwrap()).await;
        assert_eq!(status, expected, "{query}: {body}");
        assert!(body["error"].is_string());
    }
}

#[tokio::test]
async fn raw_upload_validates_before_writing() {
    let server = with_corpus().await;
    let body = json!({"type": "claude", "email": "new@example.com", "access_token": "t", "x_unknown": {"k": 1}});
    let (status, reply) = json(
        server.mgmt(Method::POST, "/auth-files?name=claude-new@example.com.json").json(&body).send().await.unwrap(),
    )
    .await;
    assert_eq!((status, reply["status"].as_str()), (200, Some("ok")));
    let path = server.file("claude-new@example.com.json");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(file_json(&server, "claude-new@example.com.json"), body);
    assert!(list(&server, "").await.iter().any(|f| f["name"] == "claude-new@example.com.json"));

    let before = server.snapshot();
    for (query, payload, expected) in [
        (format!("?name={CLAUDE}"), b"not json".to_vec(), 400),
        (format!("?name={CLAUDE}"), b"[1,2,3]".to_vec(), 400),
        (format!("?name={CLAUDE}"), br#"{"type":"claude","weight":"heavy"}"#.to_vec(), 400),
        ("?name=claude-x.txt".to_owned(), br#"{"type":"claude"}"#.to_vec(), 400),
        ("?name=../escape.json".to_owned(), br#"{"type":"claude"}"#.to_vec(), 400),
        ("?name=..%2Fescape.json".to_owned(), br#"{"type":"claude"}"#.to_vec(), 400),
        ("".to_owned(), br#"{"type":"claude"}"#.to_vec(), 400),
        (format!("?name={CLAUDE}"), vec![b' '; 2 * 1024 * 1024], 413),
    ] {
        let (status, reply) =
            json(server.mgmt(Method::POST, &format!("/auth-files{query}")).body(payload).send().await.unwrap()).await;
        assert_eq!(status, expected, "{query}: {reply}");
        assert!(reply["error"].is_string(), "{reply}");
    }
    assert_eq!(server.snapshot(), before, "a rejected upload changed the auth dir");
    assert!(!server.auth_dir.parent().unwrap().join("escape.json").exists());
}

fn part(name: &str, bytes: impl Into<Vec<u8>>) -> Part {
    Part::bytes(bytes.into()).file_name(name.to_owned())
}

#[tokio::test]
async fn multipart_upload_single_batch_and_partial() {
    let server = with_corpus().await;
    let form = Form::new().part("file", part("kimi-1.json", br#"{"type":"kimi","access_token":"a"}"#.to_vec()));
    let (status, reply) = json(server.mgmt(Method::POST, "/auth-files").multipart(form).send().await.unwrap()).await;
    assert_eq!((status, reply), (200, json!({"status": "ok"})));

    let form = Form::new()
        .part("a", part("xai-a.json", br#"{"type":"xai","refresh_token":"r"}"#.to_vec()))
        .part("b", part("xai-b.json", br#"{"type":"xai","access_token":"a"}"#.to_vec()))
        .text("note", "form fields without files are ignored");
    let (status, reply) = json(server.mgmt(Method::POST, "/auth-files").multipart(form).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(reply["uploaded"], 2);
    assert_eq!(reply["files"], json!(["xai-a.json", "xai-b.json"]));

    // One good file, one invalid JSON aimed at an existing file, one bad name, one too big.
    let claude_before = server.read(CLAUDE);
    let form = Form::new()
        .part("f1", part("qwen-ok.json", br#"{"type":"qwen","refresh_token":"r"}"#.to_vec()))
        .part("f2", part(CLAUDE, b"{broken".to_vec()))
        .part("f3", part("../evil.json", br#"{"type":"qwen"}"#.to_vec()))
        .part("f4", part("big.json", vec![b' '; 1024 * 1024 + 1]));
    let (status, reply) = json(server.mgmt(Method::POST, "/auth-files").multipart(form).send().await.unwrap()).await;
    assert_eq!(status, 207, "{reply}");
    assert_eq!(reply["status"], "partial");
    assert_eq!(reply["uploaded"], 1);
    assert_eq!(reply["files"], json!(["qwen-ok.json"]));
    let failed: Vec<&str> = reply["failed"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(failed, vec![CLAUDE, "../evil.json", "big.json"]);
    assert_eq!(server.read(CLAUDE), claude_before, "invalid upload overwrote an existing file");
    assert!(!server.file("big.json").exists());
    assert!(!server.auth_dir.parent().unwrap().join("evil.json").exists());

    // No files at all.
    let form = Form::new().text("only", "text");
    let (status, reply) = json(server.mgmt(Method::POST, "/auth-files").multipart(form).send().await.unwrap()).await;
    assert_eq!(status, 400, "{reply}");

    // A single bad file answers with its own error.
    let form = Form::new().part("file", part("notes.txt", b"{}".to_vec()));
    let (status, reply) = json(server.mgmt(Method::POST, "/auth-files").multipart(form).send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert!(reply["error"].as_str().unwrap().contains("invalid name"), "{reply}");
}

#[tokio::test]
async fn delete_single_batch_partial_and_all() {
    let server = with_corpus().await;
    let (status, reply) =
        json(server.mgmt(Method::DELETE, &format!("/auth-files?name={CLAUDE}")).send().await.unwrap()).await;
    assert_eq!((status, reply), (200, json!({"status": "ok"})));
    assert!(!server.file(CLAUDE).exists());
    assert!(list(&server, &format!("?name={CLAUDE}")).await.is_empty());

    let (status, reply) =
        json(server.mgmt(Method::DELETE, &format!("/auth-files?name={CLAUDE}")).send().await.unwrap()).await;
    assert_eq!(status, 404, "{reply}");

    let before = server.snapshot();
    for query in ["?name=../config.yaml", "?name=..%2Fconfig.yaml", "?name=x.txt"] {
        let (status, _) = json(server.mgmt(Method::DELETE, &format!("/auth-files{query}")).send().await.unwrap()).await;
        assert_eq!(status, 400, "{query}");
    }
    let (status, _) = json(server.mgmt(Method::DELETE, "/auth-files").body("not json").send().await.unwrap()).await;
    assert_eq!(status, 400);
    let (status, _) = json(server.mgmt(Method::DELETE, "/auth-files").send().await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(server.snapshot(), before);

    // Repeated names.
    let (status, reply) = json(
        server
            .mgmt(Method::DELETE, "/auth-files?name=kimi-1755853200000.json&name=qwen-wu@example.cn.json")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply["deleted"], 2);
    // Body forms, with a missing file: partial.
    let (status, reply) = json(
        server
            .mgmt(Method::DELETE, "/auth-files")
            .json(&json!({"names": ["xai-max@example.com.json", "gone.json"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 207, "{reply}");
    assert_eq!(reply["deleted"], 1);
    assert_eq!(reply["failed"][0]["name"], "gone.json");
    let (status, _) =
        json(server.mgmt(Method::DELETE, "/auth-files").json(&json!([GEMINI])).send().await.unwrap()).await;
    assert_eq!(status, 200);

    // Everything; non-JSON files in the dir stay.
    std::fs::write(server.file("keep.txt"), b"not an auth file").unwrap();
    let remaining = list(&server, "").await.len();
    let (status, reply) = json(server.mgmt(Method::DELETE, "/auth-files?all=true").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(reply["deleted"], remaining);
    assert!(list(&server, "").await.is_empty());
    assert!(server.file("keep.txt").exists());
}

#[tokio::test]
async fn status_toggle_persists_and_keeps_unknown_fields() {
    let server = with_corpus().await;
    let before = file_json(&server, CLAUDE);
    let (status, reply) = json(
        server
            .mgmt(Method::PATCH, "/auth-files/status")
            .json(&json!({"name": CLAUDE, "disabled": true}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, reply), (200, json!({"status": "ok", "disabled": true})));
    let after = file_json(&server, CLAUDE);
    assert_eq!(after["disabled"], true);
    let mut expected = before.clone();
    expected["disabled"] = json!(true);
    // Who disabled it goes along, under a key CPA keeps without knowing it.
    expected["switchyard_disabled_by"] = json!("manual");
    assert_eq!(after, expected, "only `disabled` and its owner may change");
    assert_eq!(entry(&list(&server, "").await, CLAUDE)["status"], "disabled");
    assert_eq!(std::fs::metadata(server.file(CLAUDE)).unwrap().permissions().mode() & 0o777, 0o600);

    let index = entry(&list(&server, "").await, CLAUDE)["auth_index"].as_str().unwrap().to_owned();
    let (status, _) = json(
        server
            .mgmt(Method::PATCH, "/auth-files/status")
            .json(&json!({"name": CLAUDE, "auth_index": index, "disabled": false}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let mut expected = before.clone();
    expected["disabled"] = json!(false);
    assert_eq!(file_json(&server, CLAUDE), expected, "enabled again, the owner is gone");

    let snapshot = server.snapshot();
    for (body, expected) in [
        ("not json".to_owned(), 400),
        (json!({"disabled": true}).to_string(), 400),
        (json!({"name": CLAUDE}).to_string(), 400),
        (json!({"name": CLAUDE, "disabled": "yes"}).to_string(), 400),
        (json!({"name": "missing.json", "disabled": true}).to_string(), 404),
        (json!({"name": "../x.json", "disabled": true}).to_string(), 400),
        (json!({"name": CLAUDE, "auth_index": "ffffffffffffffff", "disabled": true}).to_string(), 404),
    ] {
        let (status, reply) =
            json(server.mgmt(Method::PATCH, "/auth-files/status").body(body.clone()).send().await.unwrap()).await;
        assert_eq!(status, expected, "{body}: {reply}");
        assert!(reply["error"].is_string());
    }
    assert_eq!(server.snapshot(), snapshot);
}

#[tokio::test]
async fn patch_fields_sets_merges_and_validates() {
    let server = with_corpus().await;
    let before = file_json(&server, CLAUDE);
    let (status, reply) = json(
        server
            .mgmt(Method::PATCH, "/auth-files/fields")
            .json(&json!({
                "name": CLAUDE,
                "note": "moved to team B",
                "proxy-url": "http://127.0.0.1:3128",
                "cloak.mode": "always",
                "headers": {"X-Team": "", "X-New": "1"},
                "request_retry": -1,
                "weight": 7
            }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, reply), (200, json!({"status": "ok"})));
    let after = file_json(&server, CLAUDE);
    assert_eq!(after["note"], "moved to team B");
    assert_eq!(after["proxy_url"], "http://127.0.0.1:3128", "legacy key canonicalised");
    assert!(after.get("proxy-url").is_none());
    assert_eq!(after["cloak"], json!({"mode": "always"}));
    assert_eq!(after["headers"], json!({"User-Agent": "$User-Agent", "X-New": "1"}));
    assert!(after.get("request_retry").is_none());
    assert_eq!(after["weight"], 7);
    // Everything else is as it was.
    for (key, value) in before.as_object().unwrap() {
        if !["note", "proxy_url", "headers", "weight"].contains(&key.as_str()) {
            assert_eq!(&after[key], value, "{key} changed");
        }
    }

    let snapshot = server.snapshot();
    for body in [
        json!({"name": CLAUDE}),
        json!({"name": CLAUDE, "weight": "heavy"}),
        json!({"name": CLAUDE, "weight": 1.5}),
        json!({"name": CLAUDE, "request_retry": "x"}),
        json!({"name": CLAUDE, "headers": "x"}),
        json!({"name": CLAUDE, "proxy-url": "a", "proxy_url": "b"}),
        json!({"name": CLAUDE, "type": "codex"}),
        json!({"note": "no name"}),
        json!({"name": CLAUDE, "weight": 2_000_000}),
    ] {
        let (status, reply) =
            json(server.mgmt(Method::PATCH, "/auth-files/fields").json(&body).send().await.unwrap()).await;
        assert_eq!(status, 400, "{body}: {reply}");
    }
    let (status, _) = json(
        server
            .mgmt(Method::PATCH, "/auth-files/fields")
            .json(&json!({"name": "missing.json", "note": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(server.snapshot(), snapshot);
}

#[tokio::test]
async fn models_follow_exclusions_aliases_and_prefix() {
    let server = start_with(Options {
        with_corpus: true,
        extra_yaml: "oauth-excluded-models:\n  claude:\n    - '*haiku*'\noauth-model-alias:\n  claude:\n    - name: claude-opus-4-5\n      alias: opus\n",
        ..Default::default()
    })
    .await;
    let (status, reply) =
        json(server.mgmt(Method::GET, &format!("/auth-files/models?name={CLAUDE}")).send().await.unwrap()).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = reply["models"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"work/opus"), "{ids:?}");
    assert!(ids.contains(&"opus"), "{ids:?}");
    assert!(!ids.iter().any(|id| id.contains("haiku")), "{ids:?}");
    assert!(!ids.contains(&"claude-opus-4-5"), "alias should replace the upstream name: {ids:?}");
    let first = &reply["models"][0];
    assert!(first["display_name"].is_string() && first["owned_by"].is_string() && first["type"].is_string());

    let (status, _) = json(server.mgmt(Method::GET, "/auth-files/models").send().await.unwrap()).await;
    assert_eq!(status, 400);
    let (status, _) =
        json(server.mgmt(Method::GET, "/auth-files/models?name=missing.json").send().await.unwrap()).await;
    assert_eq!(status, 404);

    // The account's own exclusions apply too.
    server
        .mgmt(Method::PATCH, "/auth-files/fields")
        .json(&json!({"name": CLAUDE, "excluded_models": ["claude-sonnet-*"]}))
        .send()
        .await
        .unwrap();
    let (_, reply) =
        json(server.mgmt(Method::GET, &format!("/auth-files/models?name={CLAUDE}")).send().await.unwrap()).await;
    assert!(!reply.to_string().contains("claude-sonnet"), "{reply}");
}

#[tokio::test]
async fn files_added_by_other_programs_show_up_after_a_rescan() {
    let server = start().await;
    assert!(list(&server, "").await.is_empty());
    std::fs::write(server.file("claude-late@example.com.json"), br#"{"type":"claude","email":"late@example.com"}"#)
        .unwrap();
    server.state.store.rescan().await.unwrap();
    assert_eq!(entry(&list(&server, "").await, "claude-late@example.com.json")["email"], "late@example.com");
}
