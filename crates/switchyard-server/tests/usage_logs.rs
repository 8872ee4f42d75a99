//! Usage and logs in CPA's shapes, against the real router and mock upstreams: per-account
//! counters in `/auth-files` and `/api-key-usage`, the usage queue, `/logs` paging, request logs
//! by id and error logs. No secret reaches any of these answers or files.

mod common;
mod proxy_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use proxy_support::{MODEL, claude_file, gateway};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_testkit::upstream::{Fault, MockUpstream};

use common::{TestServer, json};

fn chat() -> Value {
    json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]})
}

async fn post_chat(server: &TestServer, body: &Value) -> (u16, String, String) {
    let response = server.client.post(server.url("/v1/chat/completions")).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    (status, id, response.text().await.unwrap())
}

async fn get(server: &TestServer, path: &str) -> (u16, Value) {
    json(server.mgmt(Method::GET, path).send().await.unwrap()).await
}

fn entry<'a>(listing: &'a Value, name: &str) -> &'a Value {
    listing["files"].as_array().unwrap().iter().find(|f| f["name"] == name).unwrap_or_else(|| panic!("{name} listed"))
}

/// The log directory of a test server: `logs/` next to its config file.
fn log_dir(server: &TestServer) -> PathBuf {
    server.config_path.parent().unwrap().join("logs")
}

/// Request logs are written off the reactor once the answer has gone out; wait for the file.
async fn wait_for_file(dir: &Path, suffix: &str) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().ends_with(suffix) {
                    return entry.path();
                }
            }
        }
        assert!(Instant::now() < deadline, "no file *{suffix} in {}", dir.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn every_file_text(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| std::fs::read_to_string(e.path()).unwrap_or_default()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn failover_counts_one_failure_on_the_failed_account_and_one_success_on_the_serving_one() {
    let upstream = MockUpstream::start().await;
    let files = [claude_file("a", "tok-a-secret-0001", json!({})), claude_file("b", "tok-b-secret-0002", json!({}))];
    let server = gateway(&upstream, &files, "routing:\n  strategy: fill-first\n").await;

    upstream.push_fault(Fault::status(500));
    let (status, _, body) = post_chat(&server, &chat()).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = post_chat(&server, &chat()).await;
    assert_eq!(status, 200, "{body}");

    let (status, listing) = get(&server, "/auth-files").await;
    assert_eq!(status, 200);
    let a = entry(&listing, "claude-a@example.com.json");
    let b = entry(&listing, "claude-b@example.com.json");
    // fill-first: a failed once (500), b served both requests (a is cooling down for the second).
    assert_eq!((a["success"].as_u64(), a["failed"].as_u64()), (Some(0), Some(1)), "{a}");
    assert_eq!((b["success"].as_u64(), b["failed"].as_u64()), (Some(2), Some(0)), "{b}");
    for account in [a, b] {
        let buckets = account["recent_requests"].as_array().unwrap();
        assert_eq!(buckets.len(), 20);
        for bucket in buckets {
            let time = bucket["time"].as_str().unwrap();
            let (start, end) = time.split_once('-').unwrap();
            assert!(start.len() == 5 && end.len() == 5 && start.ends_with('0') && end.ends_with('0'), "{time}");
            assert!(bucket["success"].is_u64() && bucket["failed"].is_u64(), "{bucket}");
        }
        // Everything happened just now: in the last (current) bucket.
        let last = buckets.last().unwrap();
        assert_eq!((&last["success"], &last["failed"]), (&account["success"], &account["failed"]), "{account}");
    }
    // The auth_index filter returns the same counts.
    let index = b["auth_index"].as_str().unwrap();
    let (_, filtered) = get(&server, &format!("/auth-files?auth_index={index}")).await;
    assert_eq!(filtered["files"][0]["success"], 2);
    let text = listing.to_string();
    assert!(!text.contains("tok-a-secret-0001") && !text.contains("tok-b-secret-0002"));
}

#[tokio::test]
async fn api_key_usage_groups_config_keys_by_provider_and_base_url_with_key() {
    let upstream = MockUpstream::start().await;
    let b = upstream.base().to_owned();
    let yaml = format!(
        "claude-api-key:\n\
         \x20 - {{api-key: sk-ant-usage-1, prefix: one}}\n\
         \x20 - {{api-key: sk-ant-usage-2, prefix: two}}\n\
         openai-compatibility:\n\
         \x20 - name: Local\n\
         \x20   base-url: {b}/v1\n\
         \x20   api-key-entries:\n\
         \x20     - {{api-key: sk-compat-usage}}\n\
         \x20   models:\n\
         \x20     - {{name: gpt-4o-mini, alias: compat-model}}\n"
    );
    let server = gateway(&upstream, &[], &yaml).await;
    let messages =
        |model: &str| json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]});
    for _ in 0..2 {
        let response = server.client.post(server.url("/v1/messages")).json(&messages(&format!("one/{MODEL}"))).send();
        assert_eq!(response.await.unwrap().status(), 200);
    }
    upstream.push_fault(
        Fault::status(400).body(r#"{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}"#),
    );
    let response = server.client.post(server.url("/v1/messages")).json(&messages(&format!("two/{MODEL}"))).send();
    assert_eq!(response.await.unwrap().status(), 400);
    let (status, _, body) =
        post_chat(&server, &json!({"model": "compat-model", "messages": [{"role": "user", "content": "Hi"}]})).await;
    assert_eq!(status, 200, "{body}");

    let (status, usage) = get(&server, "/api-key-usage").await;
    assert_eq!(status, 200);
    let claude = usage["claude"].as_object().unwrap_or_else(|| panic!("claude group: {usage}"));
    assert_eq!(claude.len(), 2, "{usage}");
    let one = &claude["|sk-ant-usage-1"];
    assert_eq!((one["success"].as_u64(), one["failed"].as_u64()), (Some(2), Some(0)), "{usage}");
    assert_eq!(one["recent_requests"].as_array().unwrap().len(), 20);
    assert_eq!(one["recent_requests"][19]["success"], 2);
    let two = &claude["|sk-ant-usage-2"];
    assert_eq!((two["success"].as_u64(), two["failed"].as_u64()), (Some(0), Some(1)), "{usage}");
    let compat = &usage["local"][format!("{b}/v1|sk-compat-usage")];
    assert_eq!(compat["success"], 1, "{usage}");
}

#[tokio::test]
async fn the_usage_queue_pops_the_oldest_records_first_and_only_when_enabled() {
    let upstream = MockUpstream::start().await;
    let files = [claude_file("q", "tok-q-secret-0003", json!({}))];
    let server =
        gateway(&upstream, &files, "usage-statistics-enabled: true\napi-keys: [client-key-usage-0004]\n").await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let response = server
            .client
            .post(server.url("/v1/chat/completions"))
            .bearer_auth("client-key-usage-0004")
            .header("user-agent", "usage-test/1.0")
            .json(&chat())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        ids.push(response.headers()["x-request-id"].to_str().unwrap().to_owned());
        response.bytes().await.unwrap();
    }
    // The record is queued when the request log ends, just after the body went out.
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.state.usage.queue.len() < 3 {
        assert!(Instant::now() < deadline, "records not queued");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let (status, first) = get(&server, "/usage-queue?count=2").await;
    assert_eq!(status, 200);
    let first = first.as_array().unwrap().clone();
    assert_eq!(first.iter().map(|r| r["request_id"].as_str().unwrap()).collect::<Vec<_>>(), [&ids[0], &ids[1]]);
    let record = &first[0];
    let listing = get(&server, "/auth-files").await.1;
    let auth_index = entry(&listing, "claude-q@example.com.json")["auth_index"].clone();
    assert_eq!(record["auth_index"], auth_index, "{record}");
    assert_eq!(record["provider"], "claude", "{record}");
    assert_eq!(record["model"], MODEL, "{record}");
    assert_eq!(record["alias"], MODEL, "{record}");
    assert_eq!(record["endpoint"], "/v1/chat/completions", "{record}");
    assert_eq!(record["auth_type"], "oauth", "{record}");
    assert_eq!(record["failed"], false, "{record}");
    assert_eq!(record["api_key"], "key-1", "{record}");
    assert_eq!(record["user_agent"], "usage-test/1.0", "{record}");
    assert_eq!(record["client_ip"], "127.0.0.1", "{record}");
    assert!(record["latency_ms"].is_u64() && record["ttft_ms"].is_u64(), "{record}");
    assert!(chrono::DateTime::parse_from_rfc3339(record["timestamp"].as_str().unwrap()).is_ok());
    for field in ["input_tokens", "output_tokens", "total_tokens", "cached_tokens", "reasoning_tokens"] {
        assert!(record["tokens"][field].is_u64(), "{field}: {record}");
    }
    assert_eq!(record["fail"]["status_code"], 0);

    // Default count is 1; then the queue is empty.
    let (_, next) = get(&server, "/usage-queue").await;
    assert_eq!(next.as_array().unwrap().len(), 1);
    assert_eq!(next[0]["request_id"], ids[2].as_str());
    assert_eq!(get(&server, "/usage-queue?count=5").await.1, json!([]));

    for bad in ["0", "-1", "many"] {
        let (status, body) = get(&server, &format!("/usage-queue?count={bad}")).await;
        assert_eq!(status, 400, "{bad}");
        assert!(body["error"].as_str().unwrap().contains("count"), "{body}");
    }
    // The key is needed, as for every management call.
    let anonymous = server.client.get(server.url("/v0/management/usage-queue")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let dump = format!("{first:?}{next:?}");
    assert!(!dump.contains("client-key-usage-0004") && !dump.contains("tok-q-secret-0003"));
}

#[tokio::test]
async fn with_usage_statistics_off_nothing_is_queued() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("n", "tok-n-secret-0005", json!({}))], "").await;
    let (status, _, body) = post_chat(&server, &chat()).await;
    assert_eq!(status, 200, "{body}");
    assert!(server.state.usage.queue.is_empty());
    assert_eq!(get(&server, "/usage-queue?count=10").await, (200, json!([])));
}

#[tokio::test]
async fn a_failed_request_is_kept_as_an_error_log_listed_fetched_by_name_and_by_id() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("e", "tok-e-secret-0006", json!({}))], "request-retry: 0\n").await;
    let (status, ok_id, _) = post_chat(&server, &chat()).await;
    assert_eq!(status, 200);
    upstream.push_fault(
        Fault::status(400)
            .body(r#"{"type":"error","error":{"type":"invalid_request_error","message":"tok-e-secret-0006 is bad"}}"#),
    );
    let (status, failed_id, body) = post_chat(&server, &chat()).await;
    assert_eq!(status, 400, "{body}");

    let dir = log_dir(&server);
    let path = wait_for_file(&dir, &format!("-{failed_id}.log")).await;
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("error-v1-chat-completions-"), "{name}");

    let (status, listed) = get(&server, "/request-error-logs").await;
    assert_eq!(status, 200);
    let files = listed["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "only the failure is kept: {listed}");
    assert_eq!(files[0]["name"], name.as_str());
    assert!(files[0]["size"].as_u64().unwrap() > 0 && files[0]["modified"].as_i64().unwrap() > 0);

    let by_name = server.mgmt(Method::GET, &format!("/request-error-logs/{name}")).send().await.unwrap();
    assert_eq!(by_name.status(), 200);
    assert!(by_name.headers()["content-disposition"].to_str().unwrap().contains(&name));
    let text = by_name.text().await.unwrap();
    assert!(text.contains(&format!("Request ID: {failed_id}")), "{text}");
    assert!(text.contains("Status: 400") && text.contains("\"content\": \"Hi\""), "{text}");
    assert!(text.contains("is bad"), "the relayed error body: {text}");

    let by_id = server.mgmt(Method::GET, &format!("/request-log-by-id/{failed_id}")).send().await.unwrap();
    assert_eq!(by_id.status(), 200);
    assert_eq!(by_id.text().await.unwrap(), text);
    let (status, body) = get(&server, &format!("/request-log-by-id/{ok_id}")).await;
    assert_eq!(status, 404, "request-log is off: successes are not kept: {body}");

    // Names that are not bare error-log names are refused; nothing outside the directory is read.
    std::fs::write(dir.join("main.log"), "x\n").unwrap();
    for (path, expected) in [
        ("/request-error-logs/..%2Fconfig.yaml", 400),
        ("/request-error-logs/error-..%2F..%2Fconfig.yaml", 400),
        ("/request-error-logs/main.log", 404),
        ("/request-error-logs/error-missing.log", 404),
        ("/request-log-by-id/..%2F..%2Fconfig", 400),
    ] {
        let (status, body) = get(&server, path).await;
        assert_eq!(status, expected, "{path}: {body}");
        assert!(body["error"].is_string(), "{body}");
    }
    assert!(!every_file_text(&dir).contains("tok-e-secret-0006"), "the account's token reached a log file");
}

#[tokio::test]
async fn with_request_log_every_request_has_a_file_and_headers_are_redacted() {
    let upstream = MockUpstream::start().await;
    let files = [claude_file("r", "tok-r-secret-0007", json!({}))];
    let server = gateway(&upstream, &files, "request-log: true\napi-keys: [client-key-reqlog-0008]\n").await;
    let response = server
        .client
        .post(server.url("/v1/chat/completions"))
        .bearer_auth("client-key-reqlog-0008")
        .json(&chat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    let answer = response.text().await.unwrap();

    let path = wait_for_file(&log_dir(&server), &format!("-{id}.log")).await;
    assert!(path.file_name().unwrap().to_string_lossy().starts_with("v1-chat-completions-"));
    let download = server.mgmt(Method::GET, &format!("/request-log-by-id/{id}")).send().await.unwrap();
    assert_eq!(download.status(), 200);
    let text = download.text().await.unwrap();
    assert!(text.contains("Status: 200") && text.contains(&answer), "the answer as relayed: {text}");
    assert!(text.contains("authorization: "), "{text}");
    assert!(!text.contains("client-key-reqlog-0008"), "the client key reached the request log: {text}");
    assert!(!every_file_text(&log_dir(&server)).contains("tok-r-secret-0007"));
    // CPA lists no error logs while every request is logged.
    assert_eq!(get(&server, "/request-error-logs").await.1, json!({"files": []}));
}

#[tokio::test]
async fn logs_are_paged_with_a_cursor_and_cleared_when_logging_to_file_is_on() {
    let server = common::start().await;
    let (status, body) = get(&server, "/logs").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("logging to file disabled")));
    let deleted = json(server.mgmt(Method::DELETE, "/logs").send().await.unwrap()).await;
    assert_eq!(deleted.0, 400);

    let yaml = std::fs::read_to_string(&server.config_path).unwrap() + "logging-to-file: true\n";
    server.state.config.replace_yaml(&yaml).unwrap();
    // No file yet: an empty page.
    let (status, empty) = get(&server, "/logs?limit=10").await;
    assert_eq!(status, 200, "{empty}");
    assert_eq!(empty["lines"], json!([]));

    // The lines the binary's writer thread appends (its own test drives the real writer).
    let dir = log_dir(&server);
    std::fs::create_dir_all(&dir).unwrap();
    let line =
        |n: u32| format!("{{\"timestamp\":\"2026-12-02T07:00:{n:02}Z\",\"level\":\"INFO\",\"message\":\"line {n}\"}}");
    let append = |lines: &[String]| {
        use std::io::Write;
        let mut file = std::fs::File::options().create(true).append(true).open(dir.join("main.log")).unwrap();
        for l in lines {
            writeln!(file, "{l}").unwrap();
        }
    };
    append(&(0..5).map(line).collect::<Vec<_>>());
    let (status, page) = get(&server, "/logs?limit=3").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["lines"], json!([line(2), line(3), line(4)]));
    assert_eq!(page["line-count"], 5);
    let latest = chrono::DateTime::parse_from_rfc3339("2026-12-02T07:00:04Z").unwrap().timestamp();
    assert_eq!(page["latest-timestamp"], latest);
    assert!(page.get("cursor-reset").is_none());
    let cursor = page["next-cursor"].as_str().unwrap().to_owned();
    assert!(!cursor.is_empty());

    append(&[line(5), line(6)]);
    let (_, next) = get(&server, &format!("/logs?limit=100&cursor={cursor}")).await;
    assert_eq!(next["lines"], json!([line(5), line(6)]));
    let (_, after) = get(&server, &format!("/logs?after={latest}")).await;
    assert_eq!(after["lines"], json!([line(5), line(6)]));
    let (status, bad) = get(&server, "/logs?limit=zero").await;
    assert_eq!(status, 400);
    assert!(bad["error"].as_str().unwrap().contains("limit"));

    let (status, cleared) = json(server.mgmt(Method::DELETE, "/logs").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(cleared["success"], true);
    assert_eq!(std::fs::metadata(dir.join("main.log")).unwrap().len(), 0, "main.log is truncated");
    append(&[line(7)]);
    let next_cursor = next["next-cursor"].as_str().unwrap();
    let (_, reset) = get(&server, &format!("/logs?cursor={next_cursor}")).await;
    assert_eq!(reset["cursor-reset"], true, "{reset}");
    assert_eq!(reset["lines"], json!([line(7)]));
}
