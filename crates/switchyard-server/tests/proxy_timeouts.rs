//! Upstream timeouts: a silent upstream is a failover-worthy failure, and alone it is a 504 in
//! the caller's dialect naming the stage; a stream that goes quiet after its first bytes ends
//! with the dialect's error frame naming the stage.

mod common;
mod proxy_support;

use std::time::{Duration, Instant};

use proxy_support::{MODEL, claude_file, dialect_calls, gateway};
use serde_json::{Value, json};
use switchyard_testkit::upstream::MockUpstream;

const TIMEOUTS: &str = "timeouts:\n  upstream-first-byte: 1\n  upstream-stream-first-byte: 1\n  upstream-stream-idle: 1\n  upstream-total: 0\n";
/// Far beyond the 1 s limits, far within what a test may take.
const SILENCE: Duration = Duration::from_secs(30);
/// "It answered because of our timeout, not because the upstream did."
const GENEROUS: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_never_answering_account_fails_over_to_the_next_one() {
    let silent = MockUpstream::start().await;
    silent.set_header_delay(SILENCE);
    let answering = MockUpstream::start().await;
    // Fill-first over id order: the auth file before the config key.
    let extra = format!(
        "{TIMEOUTS}routing:\n  strategy: fill-first\nclaude-api-key:\n  - api-key: key-b-0123456789\n    base-url: {}\n",
        answering.base()
    );
    let server = gateway(&silent, &[claude_file("a", "tok-a", json!({}))], &extra).await;

    for (stream, path, body) in [
        (false, "/v1/chat/completions", json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]})),
        (
            true,
            "/v1/messages",
            json!({"model": MODEL, "stream": true, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}),
        ),
    ] {
        let before = (silent.requests().len(), answering.requests().len());
        let started = Instant::now();
        let response = server.client.post(server.url(path)).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "stream={stream}");
        let text = response.text().await.unwrap();
        assert!(started.elapsed() < GENEROUS, "stream={stream}: {:?}", started.elapsed());
        assert!(!text.contains("error"), "stream={stream}: {text}");
        if stream {
            assert!(text.contains("message_stop"), "{text}");
        }
        // The second request finds the silent account cooling and goes straight to the other.
        let tried_silent = silent.requests().len() - before.0;
        assert_eq!(tried_silent, usize::from(!stream), "stream={stream}");
        assert_eq!(answering.requests().len() - before.1, 1, "stream={stream}");
    }

    // The timed-out account is cooling like after a transient upstream error.
    let (_, listing) = common::json(server.mgmt(reqwest::Method::GET, "/auth-files").send().await.unwrap()).await;
    let file = listing["files"].as_array().unwrap().iter().find(|f| f["name"] == "claude-a@example.com.json").unwrap();
    assert_eq!(file["status"], "error", "{file}");
    assert_eq!(file["cooldowns"][0]["status"], 504, "{file}");
}

/// The error message of an error answer in any of the four dialects.
fn error_message(body: &Value) -> String {
    body["error"]["message"].as_str().map(str::to_owned).unwrap_or_else(|| panic!("no error message: {body}"))
}

#[tokio::test]
async fn alone_a_silent_upstream_is_a_504_naming_the_stage_in_every_dialect() {
    let silent = MockUpstream::start().await;
    silent.set_header_delay(SILENCE);
    // No cooldowns (each call meets the same account) and no retry rounds (each tries it once).
    let extra = format!("{TIMEOUTS}disable-cooling: true\nrequest-retry: 0\n");
    let server = gateway(&silent, &[claude_file("a", "tok-a", json!({}))], &extra).await;

    let calls: Vec<(bool, &str, String, Value)> = [false, true]
        .into_iter()
        .flat_map(|stream| dialect_calls(stream).into_iter().map(move |(d, p, b)| (stream, d, p, b)))
        .collect();
    let started = Instant::now();
    // All at once: each waits out the same 1 s limit.
    let answers = futures::future::join_all(calls.iter().map(|(_, _, path, body)| {
        let request = server.client.post(server.url(path)).json(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    }))
    .await;
    assert!(started.elapsed() < GENEROUS, "{:?}", started.elapsed());
    for ((stream, dialect, _, _), (status, body)) in calls.iter().zip(answers) {
        assert_eq!(status, 504, "{dialect} stream={stream}: {body}");
        let message = error_message(&body);
        let stage = if *stream {
            "waiting for the first byte (stream) after 1s"
        } else {
            "waiting for the first byte after 1s"
        };
        assert!(message.contains(stage), "{dialect} stream={stream}: {message}");
    }
    // The upstream never answered: it was still holding its headers back.
    assert_eq!(silent.requests().len(), calls.len());
}

#[tokio::test]
async fn the_total_limit_bounds_a_whole_non_stream_call() {
    let silent = MockUpstream::start().await;
    silent.set_header_delay(SILENCE);
    let extra = "timeouts:\n  upstream-first-byte: 0\n  upstream-total: 1\nrequest-retry: 0\n";
    let server = gateway(&silent, &[claude_file("a", "tok-a", json!({}))], extra).await;
    let started = Instant::now();
    let body = json!({"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]});
    let response = server.client.post(server.url("/v1/messages")).json(&body).send().await.unwrap();
    assert_eq!(response.status(), 504);
    let message = error_message(&response.json().await.unwrap());
    assert!(message.contains("longer than 1s (total)"), "{message}");
    assert!(started.elapsed() < GENEROUS);
}

#[tokio::test]
async fn a_stream_that_goes_quiet_ends_with_an_error_frame_naming_the_idle_stage() {
    let slow = MockUpstream::start().await;
    slow.set_event_delay(Duration::from_secs(5));
    let server = gateway(&slow, &[claude_file("a", "tok-a", json!({}))], TIMEOUTS).await;
    let messages = json!([{"role": "user", "content": "Hi"}]);
    let calls = [
        ("/v1/messages", json!({"model": MODEL, "stream": true, "max_tokens": 16, "messages": messages})),
        ("/v1/chat/completions", json!({"model": MODEL, "stream": true, "messages": messages})),
    ];
    let started = Instant::now();
    let answers = futures::future::join_all(calls.iter().map(|(path, body)| {
        let request = server.client.post(server.url(path)).json(body);
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    }))
    .await;
    assert!(started.elapsed() < GENEROUS, "{:?}", started.elapsed());
    for ((path, _), (status, text)) in calls.iter().zip(answers) {
        // The first event went out, so the status was already 200: the error is in the stream.
        assert_eq!(status, 200, "{path}");
        assert!(text.contains("message_start") || text.contains("chat.completion.chunk"), "{path}: {text}");
        assert!(text.contains("no stream data (stream idle) for 1s"), "{path}: {text}");
        assert!(!text.contains("message_stop") && !text.contains("[DONE]"), "{path}: must not end normally: {text}");
    }
    // Bytes had reached the client: no second attempt.
    assert_eq!(slow.requests().len(), calls.len());
}
