//! One usage record per proxied request, read from the recorder's receiving end (as the store
//! reads it), against the real router and mock upstreams: token counts from the upstream's usage
//! (passed through or translated, whole or streamed) or estimated, failures with a redacted
//! summary, failover, streams cut by the upstream or abandoned by the client, and no planted
//! secret in any record.

mod common;
mod proxy_support;

use std::time::{Duration, Instant};

use proxy_support::{MODEL, claude_file, dialect_calls, gateway};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use switchyard_testkit::upstream::{Api, Fault, MockUpstream};
use switchyard_usage::{RecordReceiver, UsageRecord};

use common::TestServer;

const CLIENT_KEY: &str = "client-key-records-0001";
/// Records on, a client key, no cooldowns or retry rounds: each request meets the fault pushed for it.
const RECORDS: &str =
    "usage-statistics-enabled: true\napi-keys: [client-key-records-0001]\ndisable-cooling: true\nrequest-retry: 0\n";

/// A gateway with records on and the receiving end of its records.
async fn recording(upstream: &MockUpstream, files: &[(String, Value)], extra: &str) -> (TestServer, RecordReceiver) {
    let server = gateway(upstream, files, &format!("{RECORDS}{extra}")).await;
    let records = server.state.usage.take_records().expect("the records are not taken yet");
    (server, records)
}

/// The next record; a stream's is written when its body ends, after the client saw the end.
async fn next_record(records: &RecordReceiver) -> UsageRecord {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(record) = records.try_recv() {
            return *record;
        }
        assert!(Instant::now() < deadline, "no usage record arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn send(server: &TestServer, path: &str, body: &Value) -> (u16, String) {
    let response = server.client.post(server.url(path)).bearer_auth(CLIENT_KEY).json(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

fn messages(stream: bool) -> Value {
    json!({"model": MODEL, "stream": stream, "max_tokens": 32, "messages": [{"role": "user", "content": "Hi"}]})
}

#[tokio::test]
async fn every_dialect_records_the_upstreams_token_counts_passed_through_or_translated() {
    let upstream = MockUpstream::start().await;
    let (server, records) = recording(&upstream, &[claude_file("a", "tok-a-records-0001", json!({}))], "").await;
    let listing = common::json(server.mgmt(Method::GET, "/auth-files").send().await.unwrap()).await.1;
    let auth_index = listing["files"][0]["auth_index"].as_str().unwrap().to_owned();
    let key_hash = hex::encode(&Sha256::digest(CLIENT_KEY.as_bytes())[..8]);

    for stream in [false, true] {
        for (dialect, path, body) in dialect_calls(stream) {
            let before = chrono::Utc::now();
            let (status, text) = send(&server, &path, &body).await;
            assert_eq!(status, 200, "{dialect} stream={stream}: {text}");
            let record = next_record(&records).await;
            let what = format!("{dialect} stream={stream}: {record:?}");
            // anthropic-text.json reports 12 in / 29 out; its stream 12 in / 30 out.
            let output = if stream { 30 } else { 29 };
            let t = &record.tokens;
            assert_eq!((t.input, t.output, t.cached, t.reasoning, t.estimated), (12, output, 0, 0, false), "{what}");
            assert_eq!(record.status, 200, "{what}");
            assert_eq!(record.stream, stream, "{what}");
            assert_eq!(record.endpoint, path.split('?').next().unwrap(), "{what}");
            assert_eq!(record.dialect_out, "anthropic-messages", "{what}");
            assert_eq!(record.dialect_in == "anthropic-messages", dialect == "anthropic", "{what}");
            assert_eq!((record.provider.as_str(), record.account.as_str()), ("claude", "claude-a@example.com.json"));
            assert_eq!(record.auth_index, auth_index, "{what}");
            assert_eq!((record.requested_model.as_str(), record.upstream_model.as_str()), (MODEL, MODEL));
            assert_eq!((record.client_key.as_str(), record.client_key_hash.as_str()), ("key-1", key_hash.as_str()));
            assert_eq!((record.attempts, record.failure.as_deref()), (1, None), "{what}");
            assert!(record.ttfb_ms.is_some_and(|t| t <= record.latency_ms), "{what}");
            assert!(
                record.timestamp >= before - chrono::Duration::seconds(1) && record.timestamp <= chrono::Utc::now()
            );
            assert!(!record.failed());
        }
    }
    // The CPA usage queue carries the same counts.
    let (status, queued) = common::json(server.mgmt(Method::GET, "/usage-queue?count=8").send().await.unwrap()).await;
    assert_eq!(status, 200);
    let queued = queued.as_array().unwrap();
    assert_eq!(queued.len(), 8);
    for (n, record) in queued.iter().enumerate() {
        let tokens = &record["tokens"];
        assert_eq!(tokens["input_tokens"], 12, "{record}");
        assert_eq!(tokens["output_tokens"], if n < 4 { 29 } else { 30 }, "{record}");
        assert_eq!(
            tokens["total_tokens"],
            tokens["input_tokens"].as_u64().unwrap() + tokens["output_tokens"].as_u64().unwrap()
        );
        assert_eq!(tokens["cache_read_tokens_present"], true, "{record}");
    }
}

#[tokio::test]
async fn an_answer_without_usage_gets_a_four_characters_per_token_estimate() {
    let upstream = MockUpstream::start().await;
    let (server, records) = recording(&upstream, &[claude_file("a", "tok-a-records-0002", json!({}))], "").await;
    let dir = tempfile::tempdir().unwrap();
    let mut answer: Value =
        serde_json::from_slice(&switchyard_testkit::fixtures::read(Api::Anthropic.default_fixtures().0)).unwrap();
    answer.as_object_mut().unwrap().remove("usage");
    let text_len = answer["content"][0]["text"].as_str().unwrap().len() as u64;
    let path = dir.path().join("no-usage.json");
    std::fs::write(&path, answer.to_string()).unwrap();
    upstream.replay(Api::Anthropic, path.to_str().unwrap());

    // Passed through: the request is never parsed, so its size stands in for its text.
    let body = messages(false);
    assert_eq!(send(&server, "/v1/messages", &body).await.0, 200);
    let record = next_record(&records).await;
    let request_len = serde_json::to_vec(&body).unwrap().len() as u64;
    let t = &record.tokens;
    assert_eq!((t.input, t.output, t.estimated), (request_len.div_ceil(4), text_len.div_ceil(4), true), "{record:?}");

    // Translated: the neutral request's text ("Hi") is counted.
    let chat = json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    assert_eq!(send(&server, "/v1/chat/completions", &chat).await.0, 200);
    let t = next_record(&records).await.tokens;
    assert_eq!((t.input, t.output, t.estimated), (1, text_len.div_ceil(4), true));
}

#[tokio::test]
async fn upstream_failures_and_our_refusals_are_recorded_with_status_and_summary() {
    let upstream = MockUpstream::start().await;
    let (server, records) = recording(&upstream, &[claude_file("a", "tok-a-records-0003", json!({}))], "").await;

    let error = r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: 999999 > 64000"}}"#;
    upstream.push_fault(Fault::status(400).body(error));
    assert_eq!(send(&server, "/v1/messages", &messages(false)).await.0, 400);
    let record = next_record(&records).await;
    assert_eq!((record.status, record.attempts, record.provider.as_str()), (400, 1, "claude"), "{record:?}");
    let failure = record.failure.as_deref().expect("a failure summary");
    assert!(failure.contains("max_tokens: 999999 > 64000"), "the upstream's body: {failure}");
    assert_eq!(record.tokens, Default::default(), "a failure costs no tokens");

    upstream.push_fault(Fault::status(503).body("<html>upstream overloaded</html>"));
    assert_eq!(send(&server, "/v1/chat/completions", &messages(false)).await.0, 503);
    let record = next_record(&records).await;
    assert_eq!((record.status, record.dialect_in.as_str()), (503, "openai-chat"), "{record:?}");
    assert!(record.failure.as_deref().unwrap().contains("upstream overloaded"), "{record:?}");

    // Refused before routing: no provider, our own reason.
    assert_eq!(send(&server, "/v1/messages", &json!({"messages": []})).await.0, 400);
    let record = next_record(&records).await;
    assert_eq!((record.status, record.provider.as_str(), record.attempts), (400, "", 0), "{record:?}");
    assert!(record.failure.as_deref().unwrap().contains("model"), "{record:?}");
    assert!(record.failed() && record.ttfb_ms.is_some());
}

#[tokio::test]
async fn failover_records_the_attempts_and_the_serving_account() {
    let upstream = MockUpstream::start().await;
    let files = [claude_file("a", "tok-a-records-0004", json!({})), claude_file("b", "tok-b-records-0005", json!({}))];
    let (server, records) = recording(&upstream, &files, "routing:\n  strategy: fill-first\n").await;
    upstream.push_fault(Fault::status(500).body("boom"));
    assert_eq!(send(&server, "/v1/messages", &messages(false)).await.0, 200);
    let record = next_record(&records).await;
    assert_eq!(record.attempts, 2, "{record:?}");
    assert_eq!(record.account, "claude-b@example.com.json", "{record:?}");
    assert_eq!((record.status, record.failure.as_deref()), (200, None), "the request succeeded: {record:?}");
    assert_eq!((record.tokens.input, record.tokens.estimated), (12, false));
}

#[tokio::test]
async fn a_stream_cut_midway_records_the_break_and_the_tokens_so_far() {
    let upstream = MockUpstream::start().await;
    let b = upstream.base().to_owned();
    let compat = format!(
        "openai-compatibility:\n  - name: Local\n    base-url: {b}/v1\n    api-key-entries:\n      - {{api-key: sk-compat-records}}\n    models:\n      - {{name: gpt-4o-mini, alias: compat-model}}\n"
    );
    let (server, records) = recording(&upstream, &[claude_file("a", "tok-a-records-0006", json!({}))], &compat).await;
    upstream.drop_streams_after(Some(3));

    // Anthropic's message_start (the first event) carried the input: passed through and translated.
    for (path, dialect_in) in [("/v1/messages", "anthropic-messages"), ("/v1/chat/completions", "openai-chat")] {
        let (status, text) = send(&server, path, &messages(true)).await;
        assert_eq!(status, 200, "{text}");
        let record = next_record(&records).await;
        assert_eq!(record.dialect_in, dialect_in);
        let failure = record.failure.as_deref().unwrap_or_else(|| panic!("{path}: a broken stream fails: {record:?}"));
        assert!(failure.contains("broke off"), "{failure}");
        let t = &record.tokens;
        assert_eq!((t.input, t.output, t.estimated), (12, 1, false), "{path}: {record:?}");
        assert!(record.failed());
    }

    // OpenAI Chat reports usage in its last chunk only: cut before it, the counts are estimated.
    let chat = json!({"model": "compat-model", "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let (status, text) = send(&server, "/v1/chat/completions", &chat).await;
    assert_eq!(status, 200, "{text}");
    let record = next_record(&records).await;
    assert_eq!(record.provider, "openai-compatibility:Local", "{record:?}");
    assert!(record.failure.is_some(), "{record:?}");
    let t = &record.tokens;
    assert!(t.estimated && t.input > 0 && t.output > 0, "{record:?}");
}

#[tokio::test]
async fn a_client_that_goes_away_mid_stream_is_recorded_as_gone() {
    let upstream = MockUpstream::start().await;
    let (server, records) = recording(&upstream, &[claude_file("a", "tok-a-records-0007", json!({}))], "").await;
    // Slow enough that the client is gone long before the stream would end.
    upstream.set_event_delay(Duration::from_millis(500));
    let mut response = server
        .client
        .post(server.url("/v1/messages"))
        .bearer_auth(CLIENT_KEY)
        .json(&messages(true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let first = response.chunk().await.unwrap().expect("a first chunk");
    assert!(!first.is_empty());
    assert_eq!(server.state.usage.metrics.active_streams(), 1, "the stream is being relayed");
    drop(response);

    let record = next_record(&records).await;
    assert_eq!(record.status, 0, "{record:?}");
    assert!(record.failure.as_deref().unwrap().contains("client went away"), "{record:?}");
    assert!(record.stream && record.ttfb_ms.is_some(), "{record:?}");
    assert_eq!((record.tokens.input, record.tokens.estimated), (12, false), "message_start got through: {record:?}");
    assert_eq!(server.state.usage.metrics.active_streams(), 0);
}

// Secrets planted in what the upstream echoes: no well-known prefix, so only the attempt's own
// scrubbing (tokens, keys) and the summary's rules (emails, header-style pairs) can catch them.
const ACCESS: &str = "oat-RECORDS-0123456789abcdef";
const CONFIG_KEY: &str = "cfg-RECORDS-0123456789abcdef";
const COOKIE_VALUE: &str = "COOKIE-RECORDS-0123456789";
const EMAIL: &str = "victim.person@example.com";

fn echoing_body(secret: &str) -> String {
    let message = format!(
        "account {EMAIL}: invalid x-api-key {secret}; Authorization: Basic {secret}; cookie: sid={COOKIE_VALUE}"
    );
    json!({"type": "error", "error": {"type": "authentication_error", "message": message}}).to_string()
}

fn assert_clean(what: &str, text: &str) {
    for planted in [ACCESS, CONFIG_KEY, COOKIE_VALUE, EMAIL, CLIENT_KEY] {
        assert!(!text.contains(planted), "{what}: {planted} leaked into {text}");
    }
}

#[tokio::test]
async fn planted_secrets_in_error_bodies_and_events_never_reach_a_record() {
    let upstream = MockUpstream::start().await;
    // The key account serves `key/<model>` only; the OAuth account the bare model.
    let extra = format!("force-model-prefix: true\nclaude-api-key:\n  - api-key: {CONFIG_KEY}\n    prefix: key\n");
    let (server, records) = recording(&upstream, &[claude_file("a", ACCESS, json!({}))], &extra).await;

    for (model, secret) in [(MODEL.to_owned(), ACCESS), (format!("key/{MODEL}"), CONFIG_KEY)] {
        // (No 401: it would send the OAuth account to its real token endpoint for a refresh.)
        for status in [403, 400] {
            upstream.push_fault(Fault::status(status).body(echoing_body(secret)));
            let body = json!({"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "Hi"}]});
            assert_eq!(send(&server, "/v1/messages", &body).await.0, status);
            let record = next_record(&records).await;
            let failure = record.failure.clone().expect("failed");
            assert!(failure.contains("[redacted") && failure.contains("v***@example.com"), "{failure}");
            assert_clean(&format!("{model} {status}"), &serde_json::to_string(&record).unwrap());
        }
    }

    // A passed-through stream that ends in the upstream's error event echoing the token.
    let dir = tempfile::tempdir().unwrap();
    let mut events: Vec<Value> = switchyard_testkit::fixtures::chunks(Api::Anthropic.default_fixtures().1)
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    events.truncate(3);
    let message = format!("token {ACCESS} of {EMAIL} is overloaded");
    events.push(json!({"type": "error", "error": {"type": "overloaded_error", "message": message}}));
    let file = dir.path().join("error.chunks.txt");
    std::fs::write(&file, events.iter().map(Value::to_string).collect::<Vec<_>>().join("\n")).unwrap();
    upstream.replay(Api::Anthropic, file.to_str().unwrap());
    let (status, text) = send(&server, "/v1/messages", &messages(true)).await;
    assert_eq!(status, 200);
    assert!(text.contains("overloaded"), "{text}");
    let record = next_record(&records).await;
    let failure = record.failure.clone().expect("the error event fails the request");
    assert!(failure.contains("overloaded"), "{failure}");
    assert_clean("error event", &serde_json::to_string(&record).unwrap());

    // The CPA usage queue's failure bodies are the same summaries.
    let queued = common::json(server.mgmt(Method::GET, "/usage-queue?count=10").send().await.unwrap()).await.1;
    assert_eq!(queued.as_array().unwrap().len(), 5);
    assert_clean("usage queue", &queued.to_string());
}

#[tokio::test]
async fn with_the_usage_store_off_no_record_is_made_but_metrics_count() {
    let upstream = MockUpstream::start().await;
    let server =
        gateway(&upstream, &[claude_file("a", "tok-a-records-0008", json!({}))], "usage-store:\n  enabled: false\n")
            .await;
    let records = server.state.usage.take_records().unwrap();
    let response = server.client.post(server.url("/v1/messages")).json(&messages(false)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // A whole answer's record would be handed over before the answer leaves.
    assert!(records.try_recv().is_err(), "no record with usage-store.enabled: false");
    let text = server.state.usage.metrics.render(&Default::default());
    let line = format!(r#"switchyard_requests_total{{provider="claude",model="{MODEL}",status_class="2xx"}} 1"#);
    assert!(text.lines().any(|l| l == line), "{text}");
}
