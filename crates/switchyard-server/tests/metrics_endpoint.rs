//! `GET /metrics` against the real router and mock upstreams: the text parses with a Prometheus
//! text parser, and after real requests (a refreshed token, a stream, a refusal, a rate limit)
//! the series moved by exactly what happened. The endpoint is guarded like the management API
//! unless `metrics.public`, and gone with `metrics.enabled: false`.

mod common;
mod proxy_support;

use prometheus_parse::{LineInfo, Sample, Scrape, Value};
use proxy_support::MODEL;
use serde_json::json;
use switchyard_testkit::claude::{MockClaudeAuth, PROFILE_PATH, TOKEN_PATH};
use switchyard_testkit::upstream::{Fault, MockUpstream};

use common::{KEY, Options, TestServer, start_with};

async fn scrape(server: &TestServer) -> Scrape {
    let response = server.client.get(server.url("/metrics")).bearer_auth(KEY).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.unwrap();
    for line in text.lines() {
        assert!(!matches!(LineInfo::parse(line), LineInfo::Ignored), "not exposition format: {line}");
    }
    Scrape::parse(text.lines().map(|line| Ok(line.to_owned()))).unwrap()
}

/// The value of the sample `name` whose labels include `labels`; 0 when there is none (a
/// counter not yet counted). Histograms give their count.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<&Sample> = scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert!(matching.len() <= 1, "{name} {labels:?} is ambiguous: {matching:?}");
    match matching.first().map(|s| &s.value) {
        None => 0.0,
        Some(Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v)) => *v,
        Some(Value::Histogram(buckets)) => {
            buckets.iter().find(|b| b.less_than == f64::INFINITY).map_or(0.0, |b| b.count)
        }
        Some(other) => panic!("{name}: unexpected {other:?}"),
    }
}

#[tokio::test]
async fn a_scrape_after_real_requests_parses_and_shows_what_moved() {
    let auth = MockClaudeAuth::start().await;
    let tokens = auth.issue_tokens();
    let upstream = MockUpstream::start().await;
    // The OAuth account's token expires within the refresh skew: its first use refreshes it.
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(5)).to_rfc3339();
    let file = json!({"type": "claude", "email": "m@example.com", "access_token": tokens.access_token,
                      "refresh_token": tokens.refresh_token, "expired": soon});
    let yaml = format!(
        "upstream-urls:\n  claude:\n    api: {}\n    token: {}\n    profile: {}\n\
         force-model-prefix: true\nrequest-retry: 0\n\
         claude-api-key:\n  - api-key: sk-ant-metrics-0001\n    prefix: key\n",
        upstream.base(),
        auth.url(TOKEN_PATH),
        auth.url(PROFILE_PATH)
    );
    let server = start_with(Options { extra_yaml: &yaml, ..Default::default() }).await;
    std::fs::write(server.file("claude-m@example.com.json"), serde_json::to_vec(&file).unwrap()).unwrap();
    server.state.store.rescan().await.unwrap();
    server.state.sync_accounts();

    let before = scrape(&server).await;
    assert_eq!(value(&before, "switchyard_accounts", &[("state", "active")]), 2.0);
    assert_eq!(value(&before, "switchyard_token_refreshes_total", &[("outcome", "ok")]), 0.0);
    assert_eq!(value(&before, "switchyard_active_streams", &[]), 0.0);

    let post = |body: serde_json::Value| server.client.post(server.url("/v1/messages")).json(&body).send();
    let message = |model: &str, stream: bool| json!({"model": model, "stream": stream, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]});
    assert_eq!(post(message(MODEL, false)).await.unwrap().status(), 200);
    let streamed = post(message(MODEL, true)).await.unwrap();
    assert_eq!(streamed.status(), 200);
    assert!(streamed.text().await.unwrap().contains("message_stop"));
    assert_eq!(post(json!({"messages": []})).await.unwrap().status(), 400);
    upstream.push_fault(Fault::status(429).retry_after(60));
    let keyed = format!("key/{MODEL}");
    assert_eq!(post(message(&keyed, false)).await.unwrap().status(), 429);

    let after = scrape(&server).await;
    let requests = |model: &str, provider: &str, class: &str| {
        value(&after, "switchyard_requests_total", &[("provider", provider), ("model", model), ("status_class", class)])
    };
    assert_eq!(requests(MODEL, "claude", "2xx"), 2.0);
    assert_eq!(requests(&keyed, "claude", "4xx"), 1.0);
    assert_eq!(requests("none", "none", "4xx"), 1.0, "refused before routing");
    // anthropic-text: 12 in / 29 out whole, 12 in / 30 out streamed.
    assert_eq!(value(&after, "switchyard_tokens_total", &[("provider", "claude"), ("kind", "input")]), 24.0);
    assert_eq!(value(&after, "switchyard_tokens_total", &[("provider", "claude"), ("kind", "output")]), 59.0);
    let claude = [("provider", "claude")];
    assert_eq!(value(&after, "switchyard_request_duration_seconds", &claude), 3.0);
    assert_eq!(value(&after, "switchyard_request_duration_seconds_count", &claude), 3.0);
    assert_eq!(value(&after, "switchyard_time_to_first_byte_seconds", &claude), 3.0);
    assert_eq!(value(&after, "switchyard_active_streams", &[]), 0.0, "the stream ended");
    assert_eq!(value(&after, "switchyard_token_refreshes_total", &[("outcome", "ok")]), 1.0);
    assert_eq!(auth.refresh_calls(), 1);
    assert_eq!(value(&after, "switchyard_cooldowns_active", &[]), 1.0, "the 429 cools the key account's model");
    assert_eq!(value(&after, "switchyard_accounts", &[("state", "active")]), 1.0);
    assert_eq!(value(&after, "switchyard_accounts", &[("state", "error")]), 1.0, "one model cooling");
    assert_eq!(value(&after, "switchyard_usage_records_dropped_total", &[]), 0.0);
    assert!(!format!("{after:?}").contains("sk-ant-metrics-0001"));
}

#[tokio::test]
async fn the_endpoint_is_guarded_like_the_management_api_unless_public() {
    let server = start_with(Options::default()).await;
    let get = |key: Option<&str>| {
        let request = server.client.get(server.url("/metrics"));
        match key {
            Some(key) => request.bearer_auth(key),
            None => request,
        }
        .send()
    };
    assert_eq!(get(None).await.unwrap().status(), 401);
    assert_eq!(get(Some("wrong-key")).await.unwrap().status(), 401);
    assert_eq!(get(Some(KEY)).await.unwrap().status(), 200);

    let public = start_with(Options { extra_yaml: "metrics:\n  public: true\n", ..Default::default() }).await;
    let response = public.client.get(public.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("# TYPE switchyard_requests_total counter"));

    let off = start_with(Options { extra_yaml: "metrics:\n  enabled: false\n", ..Default::default() }).await;
    assert_eq!(off.client.get(off.url("/metrics")).bearer_auth(KEY).send().await.unwrap().status(), 404);

    // Without a management key there is nothing to check a scraper against: not found.
    let unkeyed = start_with(Options { secret_key: None, ..Default::default() }).await;
    assert_eq!(unkeyed.client.get(unkeyed.url("/metrics")).send().await.unwrap().status(), 404);
}
