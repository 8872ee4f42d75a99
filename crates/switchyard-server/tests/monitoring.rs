//! Monitoring end to end: requests through the gateway (against the mock upstream) land in the
//! SQLite records store and come back through `/v0/management/requests*` with the serving
//! account; a planted secret never reaches a list or an export; a new process over the same
//! auth dir still has them, and its `/auth-files` counters start from them.

mod common;
mod proxy_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use proxy_support::{MODEL, claude_file, gateway};
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_auth::CredentialStore;
use switchyard_config::ConfigHandle;
use switchyard_server::AppState;
use switchyard_testkit::upstream::{Fault, MockUpstream};

use common::TestServer;

const CLIENT_KEY: &str = "client-key-monitoring-0001";
const TOKEN: &str = "oat-MONITORING-0123456789abcdef";

async fn recording_gateway(upstream: &MockUpstream) -> TestServer {
    let extra = format!("api-keys: [{CLIENT_KEY}]\ndisable-cooling: true\nrequest-retry: 0\n");
    let server = gateway(upstream, &[claude_file("a", TOKEN, json!({}))], &extra).await;
    let writer = server.state.start_usage_store();
    assert!(writer.is_some(), "the store starts on the default usage-store settings");
    server
}

async fn wait_written(state: &AppState, count: u64) {
    let store = state.usage.store.get().expect("store open").clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.written() < count {
        assert!(Instant::now() < deadline, "{} of {count} records written", store.written());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn messages(server: &TestServer, stream: bool) -> u16 {
    let body =
        json!({"model": MODEL, "stream": stream, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]});
    let response =
        server.client.post(server.url("/v1/messages")).bearer_auth(CLIENT_KEY).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    let _ = response.bytes().await;
    status
}

async fn get(server: &TestServer, path: &str) -> (u16, Value) {
    common::json(server.mgmt(Method::GET, path).send().await.unwrap()).await
}

#[tokio::test]
async fn proxied_requests_are_listed_aggregated_and_exported_with_their_account() {
    let upstream = MockUpstream::start().await;
    let server = recording_gateway(&upstream).await;
    let auth_index = get(&server, "/auth-files").await.1["files"][0]["auth_index"].as_str().unwrap().to_owned();

    assert_eq!(messages(&server, false).await, 200);
    assert_eq!(messages(&server, true).await, 200);
    // An upstream failure whose body echoes the account's token and an email.
    upstream.push_fault(Fault::status(400).body(format!(
        r#"{{"type":"error","error":{{"type":"invalid_request_error","message":"bad token {TOKEN} for victim@example.com"}}}}"#
    )));
    assert_eq!(messages(&server, false).await, 400);
    wait_written(&server.state, 3).await;

    let (status, page) = get(&server, "/requests").await;
    assert_eq!(status, 200, "{page}");
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 3, "{page}");
    // Newest first: the failure, the stream, the whole answer.
    assert_eq!(records[0]["status"], 400);
    assert_eq!(records[0]["failed"], true);
    assert_eq!((records[1]["stream"].clone(), records[2]["stream"].clone()), (json!(true), json!(false)));
    for record in records {
        assert_eq!(record["auth_index"], auth_index.as_str(), "{record}");
        assert_eq!(record["account"], "claude-a@example.com.json");
        assert_eq!(record["provider"], "claude");
        assert_eq!(record["requested_model"], MODEL);
        assert_eq!(record["client_key"], "key-1");
        assert_eq!(record["attempts"], 1);
    }
    assert_eq!(records[2]["tokens"]["input"], 12, "{}", records[2]);
    let summary = records[0]["failure"].as_str().unwrap();
    assert!(summary.contains("bad token"), "{summary}");

    let (_, failed) = get(&server, "/requests?status=failed").await;
    assert_eq!(failed["records"].as_array().unwrap().len(), 1);
    let (_, by_account) = get(&server, "/requests/aggregate?by=account").await;
    let groups = by_account["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{by_account}");
    assert_eq!((groups[0]["key"].as_str(), groups[0]["requests"].as_u64()), (Some(auth_index.as_str()), Some(3)));
    assert_eq!(groups[0]["failures"], 1);
    let (_, sources) = get(&server, "/requests/failures").await;
    assert_eq!(sources["sources"][0]["status"], 400, "{sources}");

    let csv = server.mgmt(Method::GET, "/requests/export?format=csv").send().await.unwrap();
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = csv.text().await.unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    let json_export =
        server.mgmt(Method::GET, "/requests/export?format=json").send().await.unwrap().text().await.unwrap();
    for (what, text) in [("list", page.to_string()), ("csv", csv), ("json", json_export)] {
        assert!(!text.contains(TOKEN), "{what} leaks the token: {text}");
        assert!(!text.contains(CLIENT_KEY), "{what} leaks the client key");
        assert!(!text.contains("victim@example.com"), "{what} leaks the email");
    }

    // Bad input: precise 400s.
    for (path, field) in [
        ("/requests?status=teapot", "status"),
        ("/requests?from=yesterday", "from"),
        ("/requests?limit=0", "limit"),
        ("/requests/aggregate?by=colour", "by"),
        ("/requests/export?format=xml", "format"),
    ] {
        let (status, body) = get(&server, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"].as_str().unwrap().contains(field), "{path}: {body}");
    }
}

#[tokio::test]
async fn records_and_counters_survive_a_restart() {
    let upstream = MockUpstream::start().await;
    let server = recording_gateway(&upstream).await;
    for _ in 0..3 {
        assert_eq!(messages(&server, false).await, 200);
    }
    upstream.push_fault(Fault::status(400).body("nope"));
    assert_eq!(messages(&server, false).await, 400);
    wait_written(&server.state, 4).await;
    let auth_index = get(&server, "/auth-files").await.1["files"][0]["auth_index"].as_str().unwrap().to_owned();

    // A second process over the same config and auth dir.
    let (handle, _) = ConfigHandle::from_file(&server.config_path).unwrap();
    let store = CredentialStore::open(server.auth_dir.clone()).await.unwrap();
    let restarted = AppState::new(Arc::new(handle), store, None);
    assert!(restarted.start_usage_store().is_some());
    let history = restarted.usage.store.get().unwrap().list(&Default::default(), 10, None).unwrap();
    assert_eq!(history.records.len(), 4);
    assert!(history.records.iter().all(|r| r.record.auth_index == auth_index));
    let counts = restarted.usage.counters.snapshot(&auth_index, std::time::SystemTime::now());
    assert_eq!((counts.success, counts.failed), (3, 1));
    assert_eq!(counts.recent_requests.iter().map(|b| b.success + b.failed).sum::<u64>(), 4);
}

#[tokio::test]
async fn without_a_store_the_monitoring_routes_say_so() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[], "usage-store:\n  enabled: false\n").await;
    assert!(server.state.start_usage_store().is_none());
    let (status, body) = get(&server, "/requests").await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("usage-store.enabled"), "{body}");
}

/// Not timed (the latency side is `cargo run --release -p switchyard-bench`): a burst of 5,000
/// requests, 32 at a time, leaves exactly one stored record per request id and no drop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_five_thousand_requests_loses_no_record() {
    use futures::StreamExt;
    const BURST: usize = 5_000;
    let upstream = MockUpstream::start().await;
    let server = recording_gateway(&upstream).await;
    let body = json!({"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]});
    let (server_ref, body_ref) = (&server, &body);
    let ids: Vec<String> = futures::stream::iter(0..BURST)
        .map(|_| async move {
            let response = server_ref
                .client
                .post(server_ref.url("/v1/messages"))
                .bearer_auth(CLIENT_KEY)
                .json(body_ref)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
            let _ = response.bytes().await;
            id
        })
        .buffer_unordered(32)
        .collect()
        .await;
    wait_written(&server.state, BURST as u64).await;
    let store = server.state.usage.store.get().unwrap().clone();
    let mut stored = std::collections::HashMap::<String, usize>::new();
    store.each(&Default::default(), |r| *stored.entry(r.record.request_id).or_default() += 1).unwrap();
    assert_eq!(stored.len(), BURST, "one record per request");
    assert!(ids.iter().all(|id| stored.get(id) == Some(&1)), "every request id recorded exactly once");
    assert_eq!(server.state.usage.recorder.dropped(), 0);
}
