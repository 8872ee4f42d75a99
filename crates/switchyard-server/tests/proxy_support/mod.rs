//! Shared set-up of the proxy suites (scrubbing, timeouts, retry rounds): a gateway whose
//! accounts call mock upstreams.

#![allow(dead_code)] // each test binary uses a different part

use serde_json::{Value, json};
use switchyard_testkit::upstream::MockUpstream;

use crate::common::{Options, TestServer, start_with};

pub const MODEL: &str = "claude-sonnet-4-5";

/// A Claude OAuth account whose token is valid for a day; `extra` fields are merged in.
pub fn claude_file(name: &str, token: &str, extra: Value) -> (String, Value) {
    let expired = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let mut body = json!({"type": "claude", "email": format!("{name}@example.com"), "access_token": token,
                          "refresh_token": format!("rt-{name}-0123456789"), "expired": expired});
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    (format!("claude-{name}@example.com.json"), body)
}

/// A gateway whose Claude OAuth accounts call `upstream`, with `files` in its auth dir.
pub async fn gateway(upstream: &MockUpstream, files: &[(String, Value)], extra: &str) -> TestServer {
    let yaml = format!("{}{extra}", upstream.upstream_urls_yaml());
    let server = start_with(Options { extra_yaml: &yaml, ..Default::default() }).await;
    add_files(&server, files).await;
    server
}

/// Writes `files` into the auth dir and makes the gateway route them at once.
pub async fn add_files(server: &TestServer, files: &[(String, Value)]) {
    for (name, body) in files {
        std::fs::write(server.file(name), serde_json::to_vec(body).unwrap()).unwrap();
    }
    server.state.store.rescan().await.unwrap();
    server.state.sync_accounts();
}

/// The bearer tokens the upstream saw, in order.
pub fn bearers(upstream: &MockUpstream) -> Vec<String> {
    upstream
        .requests()
        .iter()
        .filter_map(|r| {
            r.headers.get("authorization").map(|v| v.to_str().unwrap().trim_start_matches("Bearer ").to_owned())
        })
        .collect()
}

/// The four client dialects, each as (name, path, body) for a non-stream or stream call of `MODEL`.
pub fn dialect_calls(stream: bool) -> Vec<(&'static str, String, Value)> {
    let messages = json!([{"role": "user", "content": "Hi"}]);
    let gemini_action = if stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
    vec![
        ("openai-chat", "/v1/chat/completions".into(), json!({"model": MODEL, "stream": stream, "messages": messages})),
        ("openai-responses", "/v1/responses".into(), json!({"model": MODEL, "stream": stream, "input": "Hi"})),
        (
            "anthropic",
            "/v1/messages".into(),
            json!({"model": MODEL, "stream": stream, "max_tokens": 32, "messages": messages}),
        ),
        (
            "gemini",
            format!("/v1beta/models/{MODEL}:{gemini_action}"),
            json!({"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}),
        ),
    ]
}
