//! The config editing endpoints against the real router with a commented config.yaml on disk:
//! after each write the file is compared byte for byte (comments and untouched lines identical)
//! and `GET /config` shows the change; bad input leaves the file byte-identical.

mod common;

use std::sync::Arc;

use common::{Options, TestServer, json};
use reqwest::Method;
use serde_json::{Value, json};

const COMMENTED: &str = r#"# Switchyard under test: comments must survive every edit.
debug: false   # verbose logs
proxy-url: ""  # none
request-retry: 3

# client keys
api-keys:
  - "client-one"   # the first
  # a comment between items
  - client-two

routing:
  strategy: round-robin # default
claude-api-key:
  # the main account
  - api-key: "sk-claude-1"   # inline
    base-url: https://claude.example
    priority: 1
  - api-key: sk-claude-2
openai-compatibility:
  - name: local   # a local server
    base-url: http://127.0.0.1:9
    api-key-entries:
      - api-key: compat-1
oauth-excluded-models:
  gemini-cli: [old-*]   # flow list
oauth-model-alias:
  claude:
    - name: claude-x
      alias: cx
# end of file
"#;

async fn start() -> TestServer {
    common::start_with(Options { extra_yaml: COMMENTED, ..Options::default() }).await
}

fn disk(server: &TestServer) -> String {
    std::fs::read_to_string(&server.config_path).unwrap()
}

async fn call(server: &TestServer, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = server.mgmt(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    json(request.send().await.unwrap()).await
}

/// A write that must succeed with `{"status":"ok"}` and leave exactly `expected` on disk.
async fn write_ok(server: &TestServer, method: Method, path: &str, body: Option<Value>, expected: &str) {
    let (status, answer) = call(server, method.clone(), path, body).await;
    assert_eq!((status, &answer), (200, &json!({"status": "ok"})), "{method} {path}");
    assert_eq!(disk(server), expected, "{method} {path}");
}

/// A write that must fail with `status`, name `field`, and leave the file as it was.
async fn write_refused(server: &TestServer, method: Method, path: &str, body: Option<Value>, status: u16, field: &str) {
    let before = disk(server);
    let (got, answer) = call(server, method.clone(), path, body).await;
    assert_eq!(got, status, "{method} {path}: {answer}");
    assert!(answer["error"].as_str().is_some_and(|e| !e.is_empty()), "{answer}");
    assert_eq!(answer["field"], field, "{method} {path}: {answer}");
    assert_eq!(disk(server), before, "{method} {path} changed the file");
}

async fn config(server: &TestServer) -> Value {
    call(server, Method::GET, "/config", None).await.1
}

fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in\n{text}");
    text.replacen(from, to, 1)
}

#[tokio::test]
async fn every_scalar_toggle_reads_and_writes_in_place() {
    let server = start().await;
    let mut expected = disk(&server);
    // (route, GET key, value written, what changes in the file)
    let steps: &[(&str, &str, Value, (&str, &str))] = &[
        ("/debug", "debug", json!(true), ("debug: false   #", "debug: true   #")),
        (
            "/proxy-url",
            "proxy-url",
            json!("http://proxy.example:3128"),
            ("proxy-url: \"\"", "proxy-url: http://proxy.example:3128"),
        ),
        ("/request-retry", "request-retry", json!(5), ("request-retry: 3", "request-retry: 5")),
        ("/routing/strategy", "strategy", json!("ff"), ("strategy: round-robin #", "strategy: fill-first #")),
    ];
    for (route, key, value, (from, to)) in steps {
        expected = replaced(&expected, from, to);
        write_ok(&server, Method::PUT, route, Some(json!({"value": value})), &expected).await;
        let (_, got) = call(&server, Method::GET, route, None).await;
        let shown = if *key == "strategy" { json!("fill-first") } else { value.clone() };
        assert_eq!(got, json!({ *key: shown.clone() }), "{route}");
    }
    // Keys the file does not have yet are added at its end; PATCH works like PUT.
    let added: &[(&str, &str, Value, &str)] = &[
        ("/logging-to-file", "logging-to-file", json!(true), "logging-to-file: true\n"),
        ("/usage-statistics-enabled", "usage-statistics-enabled", json!(true), "usage-statistics-enabled: true\n"),
        ("/max-retry-interval", "max-retry-interval", json!(10), "max-retry-interval: 10\n"),
        ("/max-retry-credentials", "max-retry-credentials", json!(2), "max-retry-credentials: 2\n"),
        ("/force-model-prefix", "force-model-prefix", json!(true), "force-model-prefix: true\n"),
        ("/ws-auth", "ws-auth", json!(false), "ws-auth: false\n"),
        ("/request-log", "request-log", json!(true), "request-log: true\n"),
        ("/logs-max-total-size-mb", "logs-max-total-size-mb", json!(100), "logs-max-total-size-mb: 100\n"),
        (
            "/quota-exceeded/switch-project",
            "switch-project",
            json!(false),
            "quota-exceeded:\n  switch-project: false\n",
        ),
        (
            "/quota-exceeded/switch-preview-model",
            "switch-preview-model",
            json!(false),
            "  switch-preview-model: false\n",
        ),
        ("/quota-exceeded/antigravity-credits", "antigravity-credits", json!(false), "  antigravity-credits: false\n"),
    ];
    for (route, key, value, lines) in added {
        expected.push_str(lines);
        write_ok(&server, Method::PATCH, route, Some(json!({"value": value})), &expected).await;
        assert_eq!(call(&server, Method::GET, route, None).await.1, json!({ *key: value.clone() }), "{route}");
    }
    // DELETE clears the proxy.
    expected = replaced(&expected, "proxy-url: http://proxy.example:3128", "proxy-url: \"\"");
    write_ok(&server, Method::DELETE, "/proxy-url", None, &expected).await;

    // Live at once: GET /config shows every change.
    let config = config(&server).await;
    for (key, value) in [
        ("debug", json!(true)),
        ("proxy-url", json!("")),
        ("request-retry", json!(5)),
        ("logging-to-file", json!(true)),
        ("ws-auth", json!(false)),
        ("logs-max-total-size-mb", json!(100)),
        ("max-retry-credentials", json!(2)),
    ] {
        assert_eq!(config[key], value, "{key}");
    }
    assert_eq!(config["routing"]["strategy"], "fill-first");
    assert_eq!(
        config["quota-exceeded"],
        json!({"switch-project": false, "switch-preview-model": false, "antigravity-credits": false})
    );
    assert_eq!(server.state.config.get().request_retry, 5);
}

#[tokio::test]
async fn bad_scalar_values_are_refused_naming_the_field() {
    let server = start().await;
    write_refused(&server, Method::PUT, "/debug", Some(json!({"value": "yes"})), 400, "debug").await;
    write_refused(&server, Method::PUT, "/request-retry", Some(json!({"value": 1.5})), 400, "request-retry").await;
    write_refused(&server, Method::PUT, "/proxy-url", Some(json!({"value": 7})), 400, "proxy-url").await;
    write_refused(&server, Method::PUT, "/routing/strategy", Some(json!({"value": "random"})), 400, "routing.strategy")
        .await;
    write_refused(&server, Method::PUT, "/debug", Some(json!({"on": true})), 400, "value").await;
    // Values the config validation rejects get PUT /config.yaml's answer.
    write_refused(&server, Method::PUT, "/request-retry", Some(json!({"value": -1})), 400, "request-retry").await;
    write_refused(&server, Method::PUT, "/proxy-url", Some(json!({"value": "ftp://nope"})), 400, "proxy-url").await;
    let (_, answer) = call(&server, Method::PUT, "/max-retry-interval", Some(json!({"value": -3}))).await;
    assert_eq!(answer["error"], "invalid config");
    assert!(answer["message"].as_str().unwrap().contains("max-retry-interval"), "{answer}");
    assert_eq!(disk(&server).matches("# ").count(), COMMENTED.matches("# ").count());
}

#[tokio::test]
async fn client_api_keys_by_index_and_value() {
    let server = start().await;
    let mut expected = disk(&server);
    assert_eq!(
        call(&server, Method::GET, "/api-keys", None).await.1,
        json!({"api-keys": ["client-one", "client-two"]})
    );

    expected = replaced(&expected, "  - client-two\n", "  - client-2b\n");
    write_ok(&server, Method::PATCH, "/api-keys", Some(json!({"old": "client-two", "new": "client-2b"})), &expected)
        .await;
    expected = replaced(&expected, "\"client-one\"   #", "client-1b   #");
    write_ok(&server, Method::PATCH, "/api-keys", Some(json!({"index": 0, "value": "client-1b"})), &expected).await;
    // PUT with one more key appends it; the others are untouched.
    expected = replaced(&expected, "  - client-2b\n", "  - client-2b\n  - client-3\n");
    write_ok(&server, Method::PUT, "/api-keys", Some(json!(["client-1b", "client-2b", "client-3"])), &expected).await;
    expected = replaced(&expected, "  - client-3\n", "");
    write_ok(&server, Method::DELETE, "/api-keys?value=client-3", None, &expected).await;
    expected = replaced(&expected, "  - client-2b\n", "");
    write_ok(&server, Method::DELETE, "/api-keys?index=1", None, &expected).await;
    assert_eq!(config(&server).await["api-keys"], json!(["client-1b"]));

    write_refused(&server, Method::DELETE, "/api-keys?index=4", None, 404, "index").await;
    write_refused(&server, Method::PATCH, "/api-keys", Some(json!({"old": "nope", "new": "x"})), 404, "old").await;
    write_refused(&server, Method::PUT, "/api-keys", Some(json!(["a", "a"])), 400, "api-keys[1]").await;
    write_refused(&server, Method::PUT, "/api-keys", Some(json!({"items": ["a", 5]})), 400, "api-keys[1]").await;
    write_refused(&server, Method::PUT, "/api-keys", Some(json!("a")), 400, "items").await;
}

#[tokio::test]
async fn claude_keys_edit_in_place_and_carry_the_auth_index() {
    let server = start().await;
    let mut expected = disk(&server);
    let (_, listed) = call(&server, Method::GET, "/claude-api-key", None).await;
    let entries = listed["claude-api-key"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["api-key"], "sk-claude-1");
    // The same id /auth-files shows for that config key.
    let (_, files) = call(&server, Method::GET, "/auth-files", None).await;
    let indices: Vec<&Value> = files["files"].as_array().unwrap().iter().map(|f| &f["auth_index"]).collect();
    for entry in &entries {
        let index = entry["auth-index"].as_str().unwrap();
        assert_eq!(index.len(), 16);
        assert!(indices.contains(&&json!(index)), "{index} not in {indices:?}");
    }

    // What the panel does: PUT the list from GET /config with one entry edited.
    let mut echoed = config(&server).await["claude-api-key"].as_array().unwrap().clone();
    echoed[1]["priority"] = json!(7);
    echoed[1]["auth-index"] = entries[1]["auth-index"].clone();
    expected = replaced(&expected, "  - api-key: sk-claude-2\n", "  - api-key: sk-claude-2\n    priority: 7\n");
    write_ok(&server, Method::PUT, "/claude-api-key", Some(json!(echoed)), &expected).await;

    // PATCH by api-key + base-url, with a partial value merged in.
    expected = replaced(&expected, "    priority: 1\n", "    priority: 3\n");
    let body = json!({"api-key": "sk-claude-1", "base-url": "https://claude.example", "value": {"priority": 3}});
    write_ok(&server, Method::PATCH, "/claude-api-key", Some(body), &expected).await;
    expected = replaced(&expected, "    priority: 7\n", "    priority: 7\n    prefix: team\n");
    write_ok(
        &server,
        Method::PATCH,
        "/claude-api-key",
        Some(json!({"index": 1, "value": {"prefix": "team"}})),
        &expected,
    )
    .await;
    let live = server.state.config.get();
    assert_eq!((live.claude_api_key[0].priority, live.claude_api_key[1].prefix.as_str()), (3, "team"));

    write_refused(
        &server,
        Method::PATCH,
        "/claude-api-key",
        Some(json!({"api-key": "nope", "value": {}})),
        404,
        "api-key",
    )
    .await;
    write_refused(&server, Method::PATCH, "/claude-api-key", Some(json!({"index": 9, "value": {}})), 404, "index")
        .await;
    write_refused(
        &server,
        Method::PATCH,
        "/claude-api-key",
        Some(json!({"index": 1, "value": {"api-key": "sk-claude-1", "base-url": "https://claude.example"}})),
        400,
        "claude-api-key[1].api-key",
    )
    .await;
    write_refused(
        &server,
        Method::PATCH,
        "/claude-api-key",
        Some(json!({"index": 0, "value": {"base-url": "ftp://x"}})),
        400,
        "claude-api-key[0].base-url",
    )
    .await;
    write_refused(
        &server,
        Method::PATCH,
        "/claude-api-key",
        Some(json!({"index": 0, "value": {"priority": "high"}})),
        400,
        "claude-api-key[0].priority",
    )
    .await;
    write_refused(
        &server,
        Method::PUT,
        "/claude-api-key",
        Some(json!([{"api-key": "k"}, {"api-key": "k"}])),
        400,
        "claude-api-key[1].api-key",
    )
    .await;
    write_refused(
        &server,
        Method::PUT,
        "/claude-api-key",
        Some(json!([{"base-url": "https://x"}])),
        400,
        "claude-api-key[0].api-key",
    )
    .await;
    write_refused(&server, Method::DELETE, "/claude-api-key?api-key=nope", None, 404, "api-key").await;

    expected = replaced(&expected, "  - api-key: sk-claude-2\n    priority: 7\n    prefix: team\n", "");
    write_ok(&server, Method::DELETE, "/claude-api-key?api-key=sk-claude-2", None, &expected).await;
    assert_eq!(config(&server).await["claude-api-key"].as_array().unwrap().len(), 1);
}

/// Routing sees a written key as soon as the write answers: its account is listed and gone.
#[tokio::test]
async fn written_keys_become_accounts_at_once() {
    let server = start().await;
    let auth_indices = || async {
        let (_, files) = call(&server, Method::GET, "/auth-files", None).await;
        files["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["auth_index"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let body = json!([{"api-key": "sk-codex-live", "base-url": "https://codex.example"}]);
    let (status, _) = call(&server, Method::PUT, "/codex-api-key", Some(body)).await;
    assert_eq!(status, 200);
    let (_, listed) = call(&server, Method::GET, "/codex-api-key", None).await;
    let index = listed["codex-api-key"][0]["auth-index"].as_str().unwrap().to_owned();
    assert!(auth_indices().await.contains(&index), "the new key is an account");
    let (status, _) = call(&server, Method::DELETE, "/codex-api-key?api-key=sk-codex-live", None).await;
    assert_eq!(status, 200);
    assert!(!auth_indices().await.contains(&index), "the deleted key is no account");
}

#[tokio::test]
async fn every_other_key_section_is_created_listed_and_deleted() {
    let server = start().await;
    let mut expected = disk(&server);
    for section in ["gemini-api-key", "codex-api-key", "xai-api-key", "vertex-api-key", "interactions-api-key"] {
        let key = format!("k-{section}");
        expected.push_str(&format!("{section}:\n  - api-key: {key}\n    base-url: https://{section}.example\n"));
        let body = json!({"items": [{"api-key": key, "base-url": format!("https://{section}.example"), "priority": 0, "headers": {}}]});
        write_ok(&server, Method::PUT, &format!("/{section}"), Some(body), &expected).await;
        let (_, listed) = call(&server, Method::GET, &format!("/{section}"), None).await;
        assert_eq!(listed[section][0]["api-key"], key.as_str(), "{section}");
        assert_eq!(listed[section][0]["auth-index"].as_str().map(str::len), Some(16), "{section}");
        assert_eq!(config(&server).await[section][0]["api-key"], key.as_str());
    }
    for section in ["gemini-api-key", "codex-api-key", "xai-api-key", "vertex-api-key", "interactions-api-key"] {
        let from = format!("{section}:\n  - api-key: k-{section}\n    base-url: https://{section}.example\n");
        expected = replaced(&expected, &from, &format!("{section}: []\n"));
        let path = format!("/{section}?api-key=k-{section}&base-url=https://{section}.example");
        write_ok(&server, Method::DELETE, &path, None, &expected).await;
        assert_eq!(call(&server, Method::GET, &format!("/{section}"), None).await.1, json!({ section: [] }));
    }
}

#[tokio::test]
async fn openai_compatibility_by_index_and_name() {
    let server = start().await;
    let mut expected = disk(&server);
    let (_, listed) = call(&server, Method::GET, "/openai-compatibility", None).await;
    let local = &listed["openai-compatibility"][0];
    assert_eq!(local["name"], "local");
    let key_index = local["api-key-entries"][0]["auth-index"].as_str().unwrap();
    assert_eq!(local["auth-index"], key_index);

    // The panel's save: the list from GET /config (defaults and auth-index included) with one
    // field changed. Only that field reaches the file.
    let mut echoed = listed["openai-compatibility"].clone();
    echoed[0]["disabled"] = json!(true);
    expected = replaced(&expected, "      - api-key: compat-1\n", "      - api-key: compat-1\n    disabled: true\n");
    write_ok(&server, Method::PUT, "/openai-compatibility", Some(echoed), &expected).await;
    assert_eq!(config(&server).await["openai-compatibility"][0]["disabled"], true);
    expected = replaced(&expected, "    disabled: true\n", "    disabled: false\n");
    write_ok(
        &server,
        Method::PATCH,
        "/openai-compatibility",
        Some(json!({"index": 0, "value": {"disabled": false}})),
        &expected,
    )
    .await;
    expected = replaced(&expected, "    base-url: http://127.0.0.1:9\n", "    base-url: http://127.0.0.1:10\n");
    write_ok(
        &server,
        Method::PATCH,
        "/openai-compatibility",
        Some(json!({"name": "local", "value": {"base-url": "http://127.0.0.1:10"}})),
        &expected,
    )
    .await;

    write_refused(
        &server,
        Method::PATCH,
        "/openai-compatibility",
        Some(json!({"index": 0, "value": {"base-url": ""}})),
        400,
        "openai-compatibility[0].base-url",
    )
    .await;
    write_refused(
        &server,
        Method::PUT,
        "/openai-compatibility",
        Some(json!([{"name": "a", "base-url": "http://x"}, {"name": "a", "base-url": "http://y"}])),
        400,
        "openai-compatibility[1].name",
    )
    .await;
    write_refused(&server, Method::DELETE, "/openai-compatibility?index=3", None, 404, "index").await;
    write_refused(&server, Method::DELETE, "/openai-compatibility?name=other", None, 404, "name").await;

    expected = replaced(
        &expected,
        "  - name: local   # a local server\n    base-url: http://127.0.0.1:10\n    api-key-entries:\n      - api-key: compat-1\n    disabled: false\n",
        "",
    )
    .replace("openai-compatibility:\n", "openai-compatibility: []\n");
    write_ok(&server, Method::DELETE, "/openai-compatibility?name=local", None, &expected).await;
    assert_eq!(server.state.config.get().openai_compatibility.len(), 0);
}

#[tokio::test]
async fn oauth_channel_maps_edit_one_channel_at_a_time() {
    let server = start().await;
    let mut expected = disk(&server);
    assert_eq!(
        call(&server, Method::GET, "/oauth-excluded-models", None).await.1,
        json!({"oauth-excluded-models": {"gemini-cli": ["old-*"]}})
    );
    expected = replaced(
        &expected,
        "  gemini-cli: [old-*]   # flow list\n",
        "  gemini-cli: [old-*]   # flow list\n  claude:\n    - \"*-thinking\"\n",
    );
    write_ok(
        &server,
        Method::PATCH,
        "/oauth-excluded-models",
        Some(json!({"provider": "Claude", "models": ["*-thinking"]})),
        &expected,
    )
    .await;
    expected = replaced(&expected, "[old-*]   #", "[new-*]   #");
    write_ok(
        &server,
        Method::PATCH,
        "/oauth-excluded-models",
        Some(json!({"provider": "gemini-cli", "models": ["new-*"]})),
        &expected,
    )
    .await;
    expected = replaced(&expected, "  claude:\n    - \"*-thinking\"\n", "");
    write_ok(&server, Method::DELETE, "/oauth-excluded-models?provider=claude", None, &expected).await;
    // PUT replaces the map: unchanged channels keep their bytes.
    expected = replaced(
        &expected,
        "  gemini-cli: [new-*]   # flow list\n",
        "  gemini-cli: [new-*]   # flow list\n  codex:\n    - gpt-old\n",
    );
    write_ok(
        &server,
        Method::PUT,
        "/oauth-excluded-models",
        Some(json!({"gemini-cli": ["new-*"], "codex": ["gpt-old"]})),
        &expected,
    )
    .await;
    assert_eq!(config(&server).await["oauth-excluded-models"]["codex"], json!(["gpt-old"]));
    write_refused(
        &server,
        Method::PATCH,
        "/oauth-excluded-models",
        Some(json!({"provider": "x", "models": "a"})),
        400,
        "models",
    )
    .await;
    write_refused(&server, Method::PATCH, "/oauth-excluded-models", Some(json!({"models": ["a"]})), 400, "provider")
        .await;
    write_refused(
        &server,
        Method::DELETE,
        "/oauth-excluded-models?provider=nope",
        None,
        404,
        "oauth-excluded-models.nope",
    )
    .await;

    // Aliases: PATCH sets a channel, an empty list deletes it.
    expected = replaced(
        &expected,
        "      alias: cx\n",
        "      alias: cx\n  codex:\n    - name: gpt-5\n      alias: g5\n      fork: true\n",
    );
    let aliases = json!({"channel": "codex", "aliases": [{"name": "gpt-5", "alias": "g5", "fork": true}]});
    write_ok(&server, Method::PATCH, "/oauth-model-alias", Some(aliases), &expected).await;
    assert_eq!(config(&server).await["oauth-model-alias"]["codex"][0]["alias"], "g5");
    expected = replaced(&expected, "  claude:\n    - name: claude-x\n      alias: cx\n", "");
    write_ok(
        &server,
        Method::PATCH,
        "/oauth-model-alias",
        Some(json!({"channel": "claude", "aliases": []})),
        &expected,
    )
    .await;
    expected = replaced(
        &expected,
        "oauth-model-alias:\n  codex:\n    - name: gpt-5\n      alias: g5\n      fork: true\n",
        "oauth-model-alias: {}\n",
    );
    write_ok(&server, Method::DELETE, "/oauth-model-alias?channel=codex", None, &expected).await;
    write_refused(
        &server,
        Method::PATCH,
        "/oauth-model-alias",
        Some(json!({"channel": "x", "aliases": [{"name": "a"}]})),
        400,
        "aliases[0]",
    )
    .await;

    // Request-scoped error rules are kept verbatim.
    expected.push_str("oauth-request-scoped-errors:\n  codex:\n    - status: 429\n      scope: request\n");
    let rules = json!({"codex": [{"status": 429, "scope": "request"}]});
    write_ok(&server, Method::PUT, "/oauth-request-scoped-errors", Some(rules.clone()), &expected).await;
    assert_eq!(
        call(&server, Method::GET, "/oauth-request-scoped-errors", None).await.1,
        json!({"oauth-request-scoped-errors": rules})
    );
}

#[tokio::test]
async fn the_embedded_default_cannot_be_edited() {
    let dir = tempfile::tempdir().unwrap();
    let store = switchyard_auth::CredentialStore::open(dir.path().join("auths")).await.unwrap();
    let handle = Arc::new(switchyard_config::ConfigHandle::embedded());
    let state = switchyard_server::AppState::new(handle, store, Some(common::KEY.to_owned()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = switchyard_server::app(state.clone());
    tokio::spawn(switchyard_server::serve(listener, app, state.config.clone(), std::future::pending()));
    let client = reqwest::Client::new();
    for (method, path, body) in [
        (Method::PUT, "/debug", json!({"value": true})),
        (Method::PUT, "/api-keys", json!(["k"])),
        (Method::PATCH, "/oauth-model-alias", json!({"channel": "c", "aliases": []})),
    ] {
        let response = client
            .request(method.clone(), format!("{base}/v0/management{path}"))
            .bearer_auth(common::KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, answer) = json(response).await;
        assert_eq!(status, 409, "{method} {path}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains("--config"), "{answer}");
    }
    let response = client.get(format!("{base}/v0/management/debug")).bearer_auth(common::KEY).send().await.unwrap();
    assert_eq!(json(response).await, (200, json!({"debug": false})));
}

/// `PATCH /auth-files/status` on a config key: CPA adds or removes `"*"` in that key's
/// `excluded-models`, in place; the entry in `/auth-files` shows it disabled, then active again.
#[tokio::test]
async fn a_config_keys_status_toggles_its_excluded_models_star_in_place() {
    let server = start().await;
    let original = disk(&server);
    let listed = |files: &Value| {
        files["files"].as_array().unwrap().iter().find(|f| f["name"] == "claude-api-key[1]").cloned().unwrap()
    };
    let (_, files) = call(&server, Method::GET, "/auth-files", None).await;
    let entry = listed(&files);
    assert_eq!(entry["disabled"], false);
    let auth_index = entry["auth_index"].as_str().unwrap().to_owned();

    let body = json!({"name": "claude-api-key[1]", "auth_index": auth_index, "disabled": true});
    let (status, answer) = call(&server, Method::PATCH, "/auth-files/status", Some(body)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer,
        json!({"status": "ok", "disabled": true, "via": "config:excluded-models", "excluded_pattern": "*"})
    );
    let disabled = original
        .replace("  - api-key: sk-claude-2\n", "  - api-key: sk-claude-2\n    excluded-models:\n      - \"*\"\n");
    assert_ne!(disabled, original, "the replacement found the entry");
    assert_eq!(disk(&server), disabled);
    let (_, files) = call(&server, Method::GET, "/auth-files", None).await;
    assert_eq!(listed(&files)["disabled"], true);

    let body = json!({"name": "claude-api-key[1]", "disabled": false});
    let (status, _) = call(&server, Method::PATCH, "/auth-files/status", Some(body)).await;
    assert_eq!(status, 200);
    assert_eq!(disk(&server), original, "enabling again restores the file byte for byte");
    let (_, files) = call(&server, Method::GET, "/auth-files", None).await;
    assert_eq!(listed(&files)["disabled"], false);

    // A wrong auth_index names no credential: 404, file untouched.
    let body = json!({"name": "claude-api-key[1]", "auth_index": "0000000000000000", "disabled": true});
    let (status, _) = call(&server, Method::PATCH, "/auth-files/status", Some(body)).await;
    assert_eq!(status, 404);
    assert_eq!(disk(&server), original);
}
