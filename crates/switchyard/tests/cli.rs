//! The real `switchyard` binary, started as a user would start it.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

const BIN: &str = env!("CARGO_BIN_EXE_switchyard");
const STARTUP: Duration = Duration::from_secs(30);
const CHANGE_SEEN: Duration = Duration::from_secs(15);

/// A running binary with its HOME, config and log file in a temp dir; killed on drop.
struct Gateway {
    child: Child,
    base: String,
    dir: TempDir,
    log: PathBuf,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn spawn(dir: TempDir, args: &[&str], port: u16, rust_log: Option<&str>) -> Gateway {
    let log = dir.path().join("switchyard.log");
    let mut command = Command::new(BIN);
    command
        .args(args)
        .env("HOME", dir.path())
        .env_remove("MANAGEMENT_PASSWORD")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    match rust_log {
        Some(filter) => command.env("RUST_LOG", filter),
        None => command.env_remove("RUST_LOG"),
    };
    let child = command.spawn().unwrap();
    Gateway { child, base: format!("http://127.0.0.1:{port}"), dir, log }
}

fn write_config(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let path = dir.join("config.yaml");
    let yaml = format!("port: {port}\nauth-dir: {}\n{extra}", dir.join("auths").display());
    std::fs::write(&path, yaml).unwrap();
    path
}

impl Gateway {
    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("switchyard exited early with {status}: {}", self.log_text());
            }
            if let Ok(response) = reqwest::get(format!("{}/healthz", self.base)).await
                && response.status() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "switchyard not ready: {}", self.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn mgmt(&self, method: reqwest::Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        reqwest::Client::new().request(method, format!("{}/v0/management{path}", self.base)).bearer_auth(key)
    }

    fn auth_dir(&self) -> PathBuf {
        self.dir.path().join("auths")
    }
}

/// Polls `check` until it holds or `limit` passes; the bound keeps a broken build from hanging.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn status_of(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.map(|r| r.status().as_u16()).unwrap_or(0)
}

#[test]
fn help_documents_every_command() {
    let output = Command::new(BIN).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for needle in ["serve", "check-config", "default-config", "--config", "--help", "--version"] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

#[test]
fn default_config_prints_the_embedded_yaml_and_it_checks_clean() {
    let output = Command::new(BIN).arg("default-config").output().unwrap();
    assert!(output.status.success());
    let yaml = String::from_utf8(output.stdout).unwrap();
    assert!(yaml.contains("8317"), "{yaml}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, &yaml).unwrap();
    let check = Command::new(BIN).args(["--config", path.to_str().unwrap(), "check-config"]).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let report = String::from_utf8(check.stdout).unwrap();
    assert!(!report.contains("warning"), "{report}");
}

#[test]
fn invalid_config_is_refused_with_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, "host: 127.0.0.1\nport: 8317\nrouting:\n  strategy: sideways\n").unwrap();
    for args in [vec!["--config", path.to_str().unwrap()], vec!["--config", path.to_str().unwrap(), "check-config"]] {
        let output = Command::new(BIN).args(&args).env("HOME", dir.path()).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.contains("line 4"), "{stderr}");
        assert!(stderr.contains("routing.strategy"), "{stderr}");
    }
    let missing = Command::new(BIN).args(["--config", "/nonexistent/config.yaml"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/config.yaml"));
}

#[test]
fn check_config_names_unknown_keys() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), 8317, "remote-management:\n  alow-remote: true\nfrobnicate: 1\n");
    let output = Command::new(BIN).args(["--config", path.to_str().unwrap(), "check-config"]).output().unwrap();
    assert!(output.status.success());
    let report = String::from_utf8(output.stdout).unwrap();
    assert!(report.contains("remote-management.alow-remote"), "{report}");
    assert!(report.contains("frobnicate"), "{report}");
}

#[test]
fn check_config_reports_keys_switchyard_does_not_support() {
    let dir = tempfile::tempdir().unwrap();
    let path =
        write_config(dir.path(), 8317, "ws-auth: false\npprof:\n  enable: true\nrouting:\n  session-affinity: false\n");
    let output = Command::new(BIN).args(["--config", path.to_str().unwrap(), "check-config"]).output().unwrap();
    assert!(output.status.success());
    let report = String::from_utf8(output.stdout).unwrap();
    let warnings: Vec<&str> = report.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 2, "{report}");
    assert!(warnings[0].ends_with("key `ws-auth`: parsed but not supported by switchyard"), "{report}");
    assert!(warnings[1].ends_with("key `pprof`: parsed but not supported by switchyard"), "{report}");
}

#[tokio::test]
async fn no_arguments_serves_on_8317_with_the_embedded_config() {
    let probe = std::net::TcpListener::bind("127.0.0.1:8317");
    assert!(probe.is_ok(), "port 8317 is taken on this machine; this test needs it free");
    drop(probe);
    let home = tempfile::tempdir().unwrap();
    let mut gateway = spawn(home, &[], 8317, None);
    gateway.wait_ready().await;

    let auth_dir = gateway.dir.path().join(".cli-proxy-api");
    let mode = std::fs::metadata(&auth_dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "auth dir mode");
    // No secret in the embedded config: management does not exist.
    let response = reqwest::get(format!("{}/v0/management/config", gateway.base)).await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(gateway.log_text().contains("switchyard is serving"), "{}", gateway.log_text());
}

#[tokio::test]
async fn config_edits_apply_live_and_a_broken_edit_keeps_the_last_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = write_config(dir.path(), port, "remote-management:\n  secret-key: first-key\n");
    let mut gateway = spawn(dir, &["--config", path.to_str().unwrap()], port, None);
    gateway.wait_ready().await;
    assert_eq!(status_of(gateway.mgmt(reqwest::Method::GET, "/config", "first-key")).await, 200);

    // Replace the file the way editors do: write elsewhere, then rename over it.
    let staged = path.with_extension("tmp");
    std::fs::write(
        &staged,
        format!(
            "port: {port}\nauth-dir: {}\nrequest-retry: 9\nremote-management:\n  secret-key: second-key\n",
            gateway.auth_dir().display()
        ),
    )
    .unwrap();
    std::fs::rename(&staged, &path).unwrap();
    eventually(CHANGE_SEEN, "new key accepted", || async {
        status_of(gateway.mgmt(reqwest::Method::GET, "/config", "second-key")).await == 200
    })
    .await;
    let config: Value =
        gateway.mgmt(reqwest::Method::GET, "/config", "second-key").send().await.unwrap().json().await.unwrap();
    assert_eq!(config["request-retry"], 9);

    std::fs::write(&path, format!("port: {port}\nrequest-retry: [oops\n")).unwrap();
    eventually(CHANGE_SEEN, "reload failure logged", || async {
        gateway.log_text().contains("keeping the last good configuration")
    })
    .await;
    assert_eq!(status_of(gateway.mgmt(reqwest::Method::GET, "/config", "second-key")).await, 200);
    let config: Value =
        gateway.mgmt(reqwest::Method::GET, "/config", "second-key").send().await.unwrap().json().await.unwrap();
    assert_eq!(config["request-retry"], 9, "broken edit must not replace the running config");
}

#[tokio::test]
async fn auth_files_changed_by_other_programs_are_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let path = write_config(dir.path(), port, "remote-management:\n  secret-key: k\n");
    let mut gateway = spawn(dir, &["--config", path.to_str().unwrap()], port, None);
    gateway.wait_ready().await;
    let file = gateway.auth_dir().join("claude-other@example.com.json");
    let listed_email = |gateway: &Gateway| {
        let request = gateway.mgmt(reqwest::Method::GET, "/auth-files?name=claude-other@example.com.json", "k");
        async move {
            let body: Value = request.send().await.unwrap().json().await.unwrap();
            body["files"].as_array().unwrap().first().map(|f| f["email"].clone())
        }
    };

    std::fs::write(&file, br#"{"type":"claude","email":"one@example.com"}"#).unwrap();
    eventually(CHANGE_SEEN, "file added", || async { listed_email(&gateway).await == Some(json!("one@example.com")) })
        .await;
    std::fs::write(&file, br#"{"type":"claude","email":"two@example.com"}"#).unwrap();
    eventually(CHANGE_SEEN, "file changed", || async {
        listed_email(&gateway).await == Some(json!("two@example.com"))
    })
    .await;
    std::fs::remove_file(&file).unwrap();
    eventually(CHANGE_SEEN, "file removed", || async { listed_email(&gateway).await.is_none() }).await;
}

/// Plants secrets everywhere a careless log line could pick them up, drives the management API
/// through all of them at the most verbose log level, then greps the whole log.
#[tokio::test]
async fn planted_secrets_never_reach_the_logs() {
    const SECRETS: &[&str] = &[
        "PLANTED-mgmt-key-7f3a",
        "PLANTED-client-key-91c2",
        "PLANTED-access-token-55aa",
        "PLANTED-refresh-token-66bb",
        "PLANTED-cookie-77cc",
        "PLANTED-api-key-88dd",
        "PLANTED-wrong-key-99ee",
        "PLANTED-query-key-aa11",
        "PLANTED-oauth-code-bb22",
        "PLANTED-new-mgmt-key-cc33",
        "PLANTED-id-token-dd44",
    ];
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // A real login and refresh run too: every code and token the mock issues starts with `mock-`.
    let claude = switchyard_testkit::claude::MockClaudeAuth::start().await;
    let path = write_config(
        dir.path(),
        port,
        &format!(
            "debug: true\napi-keys: [PLANTED-client-key-91c2]\nremote-management:\n  secret-key: PLANTED-mgmt-key-7f3a\n{}",
            claude.upstream_urls_yaml()
        ),
    );
    let mut gateway = spawn(dir, &["--config", path.to_str().unwrap()], port, Some("trace"));
    gateway.wait_ready().await;
    let key = "PLANTED-mgmt-key-7f3a";
    use reqwest::Method;

    let auth = json!({
        "type": "claude", "email": "p@example.com",
        "access_token": "PLANTED-access-token-55aa", "refresh_token": "PLANTED-refresh-token-66bb",
        "id_token": "PLANTED-id-token-dd44", "cookie": "PLANTED-cookie-77cc"
    });
    assert_eq!(
        status_of(gateway.mgmt(Method::POST, "/auth-files?name=claude-p@example.com.json", key).json(&auth)).await,
        200
    );
    assert_eq!(
        status_of(
            gateway
                .mgmt(Method::POST, "/auth-files?name=claude-bad.json", key)
                .body("{\"access_token\": \"PLANTED-access-token-55aa\"")
        )
        .await,
        400
    );
    assert_eq!(status_of(gateway.mgmt(Method::GET, "/auth-files", key)).await, 200);
    assert_eq!(
        status_of(gateway.mgmt(Method::GET, "/auth-files/download?name=claude-p@example.com.json", key)).await,
        200
    );
    let fields = json!({"name": "claude-p@example.com.json", "api_key": "PLANTED-api-key-88dd", "headers": {"Authorization": "Bearer PLANTED-api-key-88dd"}});
    assert_eq!(status_of(gateway.mgmt(Method::PATCH, "/auth-files/fields", key).json(&fields)).await, 200);
    assert_eq!(
        status_of(gateway.mgmt(Method::GET, "/config?key=PLANTED-query-key-aa11&code=PLANTED-oauth-code-bb22", key))
            .await,
        200
    );
    assert_eq!(status_of(gateway.mgmt(Method::GET, "/config", "PLANTED-wrong-key-99ee")).await, 401);
    assert_eq!(
        status_of(
            reqwest::Client::new()
                .get(format!("{}/healthz?auth_token=PLANTED-query-key-aa11", gateway.base))
                .header("X-Api-Key", "PLANTED-client-key-91c2")
                .header("Cookie", "session=PLANTED-cookie-77cc")
        )
        .await,
        200
    );
    // OAuth login (pasted-URL path) and a forced refresh, at trace level.
    let started: Value =
        gateway.mgmt(Method::GET, "/anthropic-auth-url", key).send().await.unwrap().json().await.unwrap();
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let authorized = no_redirects.get(started["url"].as_str().unwrap()).send().await.unwrap();
    let callback = authorized.headers()["location"].to_str().unwrap().to_owned();
    let pasted = reqwest::Client::new()
        .post(format!("{}/v0/management/oauth-callback", gateway.base))
        .json(&json!({"redirect_url": callback}));
    assert_eq!(status_of(pasted).await, 200);
    let state = started["state"].as_str().unwrap().to_owned();
    let status_url = format!("/get-auth-status?state={state}");
    eventually(CHANGE_SEEN, "login completes", || {
        let request = gateway.mgmt(Method::GET, &status_url, key);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap()["status"] == "ok" }
    })
    .await;
    let status: Value = gateway.mgmt(Method::GET, &status_url, key).send().await.unwrap().json().await.unwrap();
    let saved = status["file"].as_str().unwrap().to_owned();
    let refresh = gateway.mgmt(Method::POST, "/auth-files/refresh", key).json(&json!({"name": saved}));
    assert_eq!(status_of(refresh).await, 200);

    let yaml = std::fs::read_to_string(&path).unwrap().replace("PLANTED-mgmt-key-7f3a", "PLANTED-new-mgmt-key-cc33");
    assert_eq!(status_of(gateway.mgmt(Method::PUT, "/config.yaml", key).body(yaml.clone())).await, 200);
    let broken = format!("{yaml}port: [\n");
    assert_eq!(
        status_of(gateway.mgmt(Method::PUT, "/config.yaml", "PLANTED-new-mgmt-key-cc33").body(broken)).await,
        400
    );
    assert_eq!(
        status_of(gateway.mgmt(
            Method::DELETE,
            "/auth-files?name=claude-p@example.com.json",
            "PLANTED-new-mgmt-key-cc33"
        ))
        .await,
        200
    );

    let log = gateway.log_text();
    assert!(log.contains("request"), "expected access log lines at trace level:\n{log}");
    for secret in SECRETS.iter().copied().chain(["mock-"]) {
        assert!(!log.contains(secret), "{secret} appeared in the log:\n{log}");
    }
    assert!(!log.contains(&state), "the login state appeared in the log");
}

/// The gateway's JSON request line for `request_id`, once it has been written (a stream's is
/// written when its body ends).
async fn logged_request_line(gateway: &Gateway, request_id: &str) -> Value {
    let find = |log: &str| {
        log.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|line| line["target"] == "switchyard::request" && line["request_id"] == request_id)
    };
    eventually(CHANGE_SEEN, "the request line is logged", || {
        let found = find(&gateway.log_text()).is_some();
        async move { found }
    })
    .await;
    find(&gateway.log_text()).unwrap()
}

/// `--log-format json`: one JSON line per proxied request that names the account that served it
/// (its `auth_index`), the attempts a failover took and the request id the client got back, and
/// never the client key.
#[tokio::test]
async fn each_request_logs_one_json_line_naming_the_serving_account() {
    use switchyard_testkit::upstream::{Fault, MockUpstream};
    const CLIENT_KEY: &str = "client-key-4c1d-never-logged";
    const MGMT_KEY: &str = "mgmt-key-for-the-log-test";
    let upstream = MockUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let auths = dir.path().join("auths");
    std::fs::create_dir_all(&auths).unwrap();
    let expired = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    for name in ["a", "b"] {
        let file = json!({"type": "claude", "email": format!("{name}@example.com"), "access_token": format!("tok-{name}"),
                          "refresh_token": format!("rt-{name}"), "expired": expired});
        let path = auths.join(format!("claude-{name}@example.com.json"));
        std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let extra = format!(
        "api-keys: [{CLIENT_KEY}]\nremote-management:\n  secret-key: {MGMT_KEY}\nrouting:\n  strategy: fill-first\n{}",
        upstream.upstream_urls_yaml()
    );
    let path = write_config(dir.path(), port, &extra);
    let mut gateway = spawn(dir, &["--log-format", "json", "--config", path.to_str().unwrap()], port, None);
    gateway.wait_ready().await;

    upstream.push_fault(Fault::status(500));
    let request = json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]});
    let response = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gateway.base))
        .bearer_auth(CLIENT_KEY)
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(request_id.len(), 32, "{request_id}");
    assert!(response.text().await.unwrap().contains("chat.completion"));

    // A refused client key gets an id too.
    let refused = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", gateway.base))
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().contains_key("x-request-id"));

    let listing: Value =
        gateway.mgmt(reqwest::Method::GET, "/auth-files", MGMT_KEY).send().await.unwrap().json().await.unwrap();
    let served_by =
        listing["files"].as_array().unwrap().iter().find(|f| f["name"] == "claude-b@example.com.json").unwrap();
    let auth_index = served_by["auth_index"].as_str().unwrap().to_owned();

    let line = logged_request_line(&gateway, &request_id).await;
    assert_eq!(line["level"], "INFO", "{line}");
    assert_eq!(line["auth_index"], auth_index.as_str(), "{line}");
    assert_eq!(line["attempts"], 2, "{line}");
    assert_eq!(line["status"], 200, "{line}");
    assert_eq!(line["client_key"], "key-1", "{line}");
    assert_eq!(line["provider"], "claude", "{line}");
    assert_eq!(line["model"], "claude-sonnet-4-5", "{line}");
    assert_eq!(line["upstream_model"], "claude-sonnet-4-5", "{line}");
    assert_eq!(line["dialect_in"], "openai-chat", "{line}");
    assert_eq!(line["dialect_out"], "anthropic-messages", "{line}");
    assert!(line["latency_ms"].is_u64() && line["ttfb_ms"].is_u64(), "{line}");
    assert!(line["bytes_out"].as_u64().unwrap() > 0, "{line}");

    // A stream's line is written when its body has ended, with what went out.
    let streamed = reqwest::Client::new()
        .post(format!("{}/v1/messages", gateway.base))
        .header("x-api-key", CLIENT_KEY)
        .json(&json!({"model": "claude-sonnet-4-5", "stream": true, "max_tokens": 16,
                      "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    let stream_id = streamed.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(stream_id, request_id);
    let streamed_bytes = streamed.bytes().await.unwrap().len() as u64;
    let line = logged_request_line(&gateway, &stream_id).await;
    assert_eq!((line["stream"].as_bool(), line["status"].as_u64()), (Some(true), Some(200)), "{line}");
    assert_eq!(line["bytes_out"], streamed_bytes, "{line}");
    assert_eq!(line["dialect_out"], "anthropic-messages", "{line}");
    assert!(line["ttfb_ms"].as_u64() <= line["latency_ms"].as_u64(), "{line}");
    // Model lists carry an id too.
    let models =
        reqwest::Client::new().get(format!("{}/v1/models", gateway.base)).bearer_auth(CLIENT_KEY).send().await.unwrap();
    assert!(models.headers().contains_key("x-request-id"));

    let log = gateway.log_text();
    // Every line is JSON, and the client key is in none of them.
    for text in log.lines().filter(|l| !l.trim().is_empty()) {
        assert!(serde_json::from_str::<Value>(text).is_ok(), "not a JSON line: {text}");
    }
    assert!(!log.contains(CLIENT_KEY), "the client key reached the log:\n{log}");
}

/// `logging-to-file: true`: the process's own lines (JSON) land in `logs/main.log` next to the
/// config, where `GET /v0/management/logs` pages them with a cursor and `DELETE` clears them;
/// with `request-log: true` each request has its file. No planted secret is in any log file.
#[tokio::test]
async fn logging_to_file_writes_main_log_that_the_management_api_pages_and_clears() {
    use switchyard_testkit::upstream::MockUpstream;
    const CLIENT_KEY: &str = "client-key-9e2a-file-logs";
    const MGMT_KEY: &str = "mgmt-key-for-the-file-log-test";
    const TOKEN: &str = "sk-ant-oat01-planted-file-log-token";
    let upstream = MockUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let auths = dir.path().join("auths");
    std::fs::create_dir_all(&auths).unwrap();
    let expired = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let file = json!({"type": "claude", "email": "f@example.com", "access_token": TOKEN,
                      "refresh_token": "rt-planted-file-log", "expired": expired});
    let path = auths.join("claude-f@example.com.json");
    std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let extra = format!(
        "api-keys: [{CLIENT_KEY}]\nremote-management:\n  secret-key: {MGMT_KEY}\nlogging-to-file: true\nrequest-log: true\n{}",
        upstream.upstream_urls_yaml()
    );
    let config = write_config(dir.path(), port, &extra);
    let logs = dir.path().join("logs");
    let mut gateway = spawn(dir, &["--config", config.to_str().unwrap()], port, None);
    gateway.wait_ready().await;

    let chat = |gateway: &Gateway| {
        reqwest::Client::new()
            .post(format!("{}/v1/chat/completions", gateway.base))
            .bearer_auth(CLIENT_KEY)
            .json(&json!({"model": "claude-sonnet-4-5", "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
    };
    let response = chat(&gateway).await.unwrap();
    assert_eq!(response.status(), 200);
    let first_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    response.bytes().await.unwrap();

    // Polls a management GET until `done` holds (the writer thread appends shortly after).
    async fn poll(gateway: &Gateway, path: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + CHANGE_SEEN;
        loop {
            let page: Value =
                gateway.mgmt(reqwest::Method::GET, path, MGMT_KEY).send().await.unwrap().json().await.unwrap();
            if done(&page) {
                return page;
            }
            assert!(Instant::now() < deadline, "timed out polling {path}: {page}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let has = |id: &str| {
        let id = id.to_owned();
        move |page: &Value| {
            page["lines"].as_array().is_some_and(|l| l.iter().any(|l| l.as_str().unwrap().contains(&id)))
        }
    };
    let page = poll(&gateway, "/logs?limit=1000", has(&first_id)).await;
    assert!(logs.join("main.log").exists());
    for line in page["lines"].as_array().unwrap() {
        let line: Value = serde_json::from_str(line.as_str().unwrap()).expect("JSON lines");
        assert!(line["timestamp"].is_string(), "{line}");
    }
    assert!(page["latest-timestamp"].as_i64().unwrap() > 0);
    let cursor = page["next-cursor"].as_str().unwrap().to_owned();

    // The next page from the cursor holds the second request, not the first.
    let response = chat(&gateway).await.unwrap();
    let second_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    response.bytes().await.unwrap();
    let followed = poll(&gateway, &format!("/logs?cursor={cursor}"), has(&second_id)).await;
    let text = followed["lines"].to_string();
    assert!(!text.contains(&first_id), "{text}");

    // Each request has its log file, fetched by the id the client got.
    let by_id = gateway.mgmt(reqwest::Method::GET, &format!("/request-log-by-id/{first_id}"), MGMT_KEY);
    let by_id = by_id.send().await.unwrap();
    assert_eq!(by_id.status(), 200);
    assert!(by_id.text().await.unwrap().contains(&format!("Request ID: {first_id}")));

    for entry in std::fs::read_dir(&logs).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for secret in [CLIENT_KEY, TOKEN, MGMT_KEY, "rt-planted-file-log"] {
            assert!(!text.contains(secret), "{secret} reached a log file");
        }
    }

    let cleared: Value =
        gateway.mgmt(reqwest::Method::DELETE, "/logs", MGMT_KEY).send().await.unwrap().json().await.unwrap();
    assert_eq!(cleared["success"], true, "{cleared}");
    let after: Value = gateway
        .mgmt(reqwest::Method::GET, &format!("/logs?cursor={cursor}"), MGMT_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(after["cursor-reset"], true, "{after}");
    assert!(!after["lines"].to_string().contains(&first_id));
}
