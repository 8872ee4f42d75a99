//! Secret-safe relay: whatever an upstream echoes of the credential an attempt used (access,
//! refresh and id tokens, cookies, config API keys) reaches the client masked, for every client
//! dialect, streamed or not, in error bodies, stream error events and normal answers alike.

mod common;
mod proxy_support;

use proxy_support::{MODEL, claude_file, dialect_calls, gateway};
use serde_json::{Value, json};
use switchyard_testkit::upstream::{Api, Fault, MockUpstream};

// No well-known prefix and no `"..._token": "..."` form around them in the echoes, so only the
// per-attempt scrubbing (not the generic redaction heuristics) can catch them.
const ACCESS: &str = "oat-ACCESS-0123456789abcdef";
const REFRESH: &str = "ort-REFRESH-0123456789abcdef";
const ID_TOKEN: &str = "idt-IDTOKEN-0123456789abcdef";
const COOKIE: &str = "sessionKey=COOKIE-0123456789abcdef";
const CONFIG_KEY: &str = "cfg-CONFIGKEY-0123456789abcdef";
const ALL: [&str; 5] = [ACCESS, REFRESH, ID_TOKEN, COOKIE, CONFIG_KEY];

/// No cooldowns and no retry rounds: every request meets exactly the fault pushed for it.
const ONE_SHOT: &str = "disable-cooling: true\nrequest-retry: 0\n";

fn oauth_account() -> (String, Value) {
    let (name, mut body) = claude_file("a", ACCESS, json!({"id_token": ID_TOKEN, "cookie": COOKIE}));
    body["refresh_token"] = json!(REFRESH);
    (name, body)
}

fn assert_masked(what: &str, text: &str) {
    for secret in ALL {
        assert!(!text.contains(secret), "{what}: {secret} reached the client: {text}");
    }
    assert!(text.contains("[redacted"), "{what}: expected a mask in {text}");
}

/// Every status an upstream refuses with, echoing `echo`, in Anthropic's error shape and as
/// plain text.
fn faults(echo: &str) -> Vec<Fault> {
    let json_body =
        |message: &str| json!({"type": "error", "error": {"type": "api_error", "message": message}}).to_string();
    let mut faults: Vec<Fault> = [400, 403, 404, 422, 429, 500, 503, 529]
        .into_iter()
        .map(|status| Fault::status(status).body(json_body(&format!("credential {echo} rejected"))))
        .collect();
    faults.push(Fault::status(502).body(format!("<html>bad gateway for {echo}</html>")));
    faults
}

#[tokio::test]
async fn upstream_errors_echoing_oauth_tokens_are_masked_in_every_dialect() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[oauth_account()], ONE_SHOT).await;
    let echo = format!("{ACCESS} / {REFRESH} / {ID_TOKEN} / {COOKIE}");
    for stream in [false, true] {
        for (dialect, path, body) in dialect_calls(stream) {
            for fault in faults(&echo) {
                let status = fault.status;
                upstream.push_fault(fault);
                let response = server.client.post(server.url(&path)).json(&body).send().await.unwrap();
                assert_eq!(response.status().as_u16(), status, "{dialect} stream={stream}");
                let text = response.text().await.unwrap();
                assert_masked(&format!("{dialect} stream={stream} status={status}"), &text);
            }
        }
    }
}

#[tokio::test]
async fn upstream_errors_echoing_a_config_key_are_masked() {
    let upstream = MockUpstream::start().await;
    let extra = format!("{ONE_SHOT}claude-api-key:\n  - api-key: {CONFIG_KEY}\n");
    let server = gateway(&upstream, &[], &extra).await;
    for stream in [false, true] {
        for (dialect, path, body) in dialect_calls(stream) {
            for fault in faults(&format!("x-api-key {CONFIG_KEY}")) {
                let status = fault.status;
                upstream.push_fault(fault);
                let response = server.client.post(server.url(&path)).json(&body).send().await.unwrap();
                assert_eq!(response.status().as_u16(), status, "{dialect} stream={stream}");
                assert_masked(&format!("{dialect} stream={stream} status={status}"), &response.text().await.unwrap());
            }
        }
    }
    // The key really was the one sent upstream.
    assert_eq!(upstream.last_request().headers["x-api-key"], CONFIG_KEY);
}

#[tokio::test]
async fn credential_shaped_text_in_an_error_is_masked_even_when_it_is_not_ours() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[oauth_account()], ONE_SHOT).await;
    upstream.push_fault(Fault::status(400).body(r#"{"type":"error","error":{"type":"invalid_request_error","message":"got Authorization: Bearer someone-elses-token-123456"}}"#));
    let (_, path, body) = dialect_calls(false).remove(0);
    let response = server.client.post(server.url(&path)).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(!text.contains("someone-elses-token-123456"), "{text}");
    assert!(text.contains("got Authorization: Bearer [redacted"), "the rest of the message stays: {text}");
}

/// The default Anthropic stream with `edit` applied to its events (one JSON per line).
fn anthropic_stream_with(dir: &std::path::Path, name: &str, edit: impl Fn(&mut Vec<Value>)) -> String {
    let mut events: Vec<Value> = switchyard_testkit::fixtures::chunks(Api::Anthropic.default_fixtures().1)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    edit(&mut events);
    let path = dir.join(name);
    let lines: Vec<String> = events.iter().map(Value::to_string).collect();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    // An absolute path replaces the fixtures dir when joined to it.
    path.to_str().unwrap().to_owned()
}

#[tokio::test]
async fn answers_and_stream_events_echoing_the_token_are_masked_passed_through_or_translated() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[oauth_account()], ONE_SHOT).await;
    let dir = tempfile::tempdir().unwrap();

    // A normal answer whose text echoes the token (whole and streamed).
    let echoing = anthropic_stream_with(dir.path(), "echo.chunks.txt", |events| {
        let delta = events.iter_mut().find(|e| e["type"] == "content_block_delta").unwrap();
        delta["delta"]["text"] = json!(format!("your token is {ACCESS} and your refresh token {REFRESH}"));
    });
    let mut whole: Value =
        serde_json::from_slice(&switchyard_testkit::fixtures::read(Api::Anthropic.default_fixtures().0)).unwrap();
    whole["content"][0]["text"] = json!(format!("your token is {ACCESS}"));
    let whole_path = dir.path().join("echo.json");
    std::fs::write(&whole_path, whole.to_string()).unwrap();
    upstream.replay(Api::Anthropic, &echoing);
    upstream.replay(Api::Anthropic, whole_path.to_str().unwrap());
    for stream in [false, true] {
        for (dialect, path, body) in dialect_calls(stream) {
            let response = server.client.post(server.url(&path)).json(&body).send().await.unwrap();
            assert_eq!(response.status(), 200, "{dialect} stream={stream}");
            let text = response.text().await.unwrap();
            assert_masked(&format!("answer {dialect} stream={stream}"), &text);
            assert!(text.contains("your token is [redacted"), "{dialect} stream={stream}: the answer is kept: {text}");
        }
    }

    // A stream that ends in an error event echoing the token.
    let failing = anthropic_stream_with(dir.path(), "error.chunks.txt", |events| {
        events.truncate(3);
        events.push(json!({"type": "error", "error": {"type": "overloaded_error", "message": format!("token {ACCESS} overloaded")}}));
    });
    upstream.replay(Api::Anthropic, &failing);
    for (dialect, path, body) in dialect_calls(true) {
        let response = server.client.post(server.url(&path)).json(&body).send().await.unwrap();
        let text = response.text().await.unwrap();
        assert_masked(&format!("error event {dialect}"), &text);
        assert!(text.contains("overloaded"), "{dialect}: the error reaches the client: {text}");
    }
    assert!(!upstream.requests().is_empty());
    let _ = MODEL;
}
