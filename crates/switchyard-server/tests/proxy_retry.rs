//! Retry rounds (CPA §4.5): after a round over the plan fails with a retryable status, wait for
//! the soonest cooled-down account (up to `max-retry-interval`) and go again, `request-retry`
//! times; `max-retry-credentials` accounts per round; streams only before their first byte.

mod common;
mod proxy_support;

use std::time::{Duration, Instant};

use proxy_support::{MODEL, bearers, claude_file, gateway};
use serde_json::{Value, json};
use switchyard_testkit::upstream::{Fault, MockUpstream};

fn chat() -> Value {
    json!({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]})
}

/// Gaps between the upstream's requests.
fn gaps(upstream: &MockUpstream) -> Vec<Duration> {
    let times: Vec<Instant> = upstream.requests().iter().map(|r| r.received).collect();
    times.windows(2).map(|w| w[1] - w[0]).collect()
}

const ROUNDS: &str = "request-retry: 2\nmax-retry-interval: 5\n";

#[tokio::test]
async fn three_rounds_wait_for_the_cooldown_in_order_and_then_succeed() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("a", "tok-a", json!({}))], ROUNDS).await;
    upstream.push_fault(Fault::status(429).retry_after(1));
    upstream.push_fault(Fault::status(429).retry_after(1));

    let started = Instant::now();
    let (status, body) =
        common::json(server.client.post(server.url("/v1/chat/completions")).json(&chat()).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(upstream.requests().len(), 3, "one request per round");
    for gap in gaps(&upstream) {
        // Each round waited out the 1 s Retry-After, and not much more.
        assert!(gap >= Duration::from_millis(900) && gap < Duration::from_secs(5), "{gap:?}");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn when_every_round_fails_the_final_429_carries_retry_after() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("a", "tok-a", json!({}))], ROUNDS).await;
    for _ in 0..3 {
        upstream.push_fault(Fault::status(429).retry_after(1));
    }
    let response = server.client.post(server.url("/v1/chat/completions")).json(&chat()).send().await.unwrap();
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert_eq!(retry_after, 1, "the last cooldown, from the upstream's Retry-After");
    assert_eq!(upstream.requests().len(), 3);
    let gaps = gaps(&upstream);
    assert!(gaps.iter().all(|g| *g >= Duration::from_millis(900)), "{gaps:?}");
}

#[tokio::test]
async fn a_cooldown_longer_than_max_retry_interval_is_not_waited_for() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("a", "tok-a", json!({}))], ROUNDS).await;
    upstream.push_fault(Fault::status(429).retry_after(60));
    let started = Instant::now();
    let response = server.client.post(server.url("/v1/chat/completions")).json(&chat()).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(started.elapsed() < Duration::from_secs(5));
    let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((55..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(upstream.requests().len(), 1);

    // max-retry-interval 0 never waits, whatever the cooldown.
    let upstream = MockUpstream::start().await;
    let server =
        gateway(&upstream, &[claude_file("a", "tok-a", json!({}))], "request-retry: 2\nmax-retry-interval: 0\n").await;
    upstream.push_fault(Fault::status(429).retry_after(1));
    let response = server.client.post(server.url("/v1/chat/completions")).json(&chat()).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(response.headers().contains_key("retry-after"));
    assert_eq!(upstream.requests().len(), 1);
}

#[tokio::test]
async fn max_retry_credentials_caps_each_round() {
    let files = [claude_file("a", "tok-a", json!({})), claude_file("b", "tok-b", json!({}))];
    // One account per round and no further round: the second account is never asked.
    let upstream = MockUpstream::start().await;
    let extra = "routing:\n  strategy: fill-first\nmax-retry-credentials: 1\nrequest-retry: 0\n";
    let server = gateway(&upstream, &files, extra).await;
    upstream.push_fault(Fault::status(500));
    let response = server.client.post(server.url("/v1/chat/completions")).json(&chat()).send().await.unwrap();
    assert_eq!(response.status(), 500);
    assert_eq!(bearers(&upstream), ["tok-a"]);

    // With a retry round, the next round's one account is the one not cooling.
    let upstream = MockUpstream::start().await;
    let extra = "routing:\n  strategy: fill-first\nmax-retry-credentials: 1\nrequest-retry: 1\nmax-retry-interval: 5\n";
    let server = gateway(&upstream, &files, extra).await;
    upstream.push_fault(Fault::status(503));
    let response = server.client.post(server.url("/v1/chat/completions")).json(&chat()).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(bearers(&upstream), ["tok-a", "tok-b"]);
}

#[tokio::test]
async fn an_account_with_request_retry_zero_sits_out_the_retry_rounds() {
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("a", "tok-a", json!({"request_retry": 0}))], ROUNDS).await;
    upstream.push_fault(Fault::status(429).retry_after(1));
    let response = server.client.post(server.url("/v1/chat/completions")).json(&chat()).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(upstream.requests().len(), 1);
}

#[tokio::test]
async fn streams_are_retried_only_before_their_first_byte() {
    let stream =
        json!({"model": MODEL, "stream": true, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]});
    // No cooldowns: a retry round, if any, would run at once.
    let extra = "disable-cooling: true\nrequest-retry: 3\n";

    // Refused before any byte: the next round succeeds.
    let upstream = MockUpstream::start().await;
    let server = gateway(&upstream, &[claude_file("a", "tok-a", json!({}))], extra).await;
    upstream.push_fault(Fault::status(503));
    let response = server.client.post(server.url("/v1/messages")).json(&stream).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("message_stop"), "{text}");
    assert_eq!(upstream.requests().len(), 2);

    // Broken after its first events reached the client: an error frame, and no second request.
    let upstream = MockUpstream::start().await;
    upstream.drop_streams_after(Some(2));
    let server = gateway(&upstream, &[claude_file("a", "tok-a", json!({}))], extra).await;
    let response = server.client.post(server.url("/v1/messages")).json(&stream).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("message_start") && text.contains("event: error"), "{text}");
    assert_eq!(upstream.requests().len(), 1);
}
