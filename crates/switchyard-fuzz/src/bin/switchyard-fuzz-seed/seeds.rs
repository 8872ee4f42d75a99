//! The corpus being built, and the hand-written seeds: request bodies (the fixtures hold only
//! answers), Kiro frames of every kind, pasted callbacks, auth files, configs and edge cases.

use std::collections::BTreeMap;
use std::path::Path;
use std::{fs, io};

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use switchyard_fuzz::SESSION_STATE;

/// Seed files by target, then by file name.
#[derive(Default)]
pub struct Corpus(BTreeMap<&'static str, BTreeMap<String, Vec<u8>>>);

impl Corpus {
    pub fn add(&mut self, target: &'static str, name: &str, bytes: Vec<u8>) {
        assert!(switchyard_fuzz::TARGETS.iter().any(|(t, _)| *t == target), "seed for unknown target {target}");
        self.0.entry(target).or_default().insert(format!("seed-{name}"), bytes);
    }

    /// Writes every file under `dir/<target>/`; returns the count per target.
    pub fn write(&self, dir: &Path) -> io::Result<Vec<(&'static str, usize)>> {
        let mut counts = Vec::new();
        for (target, files) in &self.0 {
            let target_dir = dir.join(target);
            fs::create_dir_all(&target_dir)?;
            for (name, bytes) in files {
                fs::write(target_dir.join(name), bytes)?;
            }
            counts.push((*target, files.len()));
        }
        Ok(counts)
    }
}

pub fn hand_written(corpus: &mut Corpus) {
    requests(corpus);
    sse_edges(corpus);
    encoder_sequences(corpus);
    kiro_frames(corpus);
    callbacks(corpus);
    auth_files(corpus);
    configs(corpus);
}

/// Request bodies per dialect (selector byte first).
const REQUESTS: &[(u8, &str, &str)] = &[
    (
        0,
        "chat-text",
        r#"{"model":"gpt-5","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"temperature":0.2,"max_tokens":64,"stop":["\n"],"stream":true}"#,
    ),
    (
        0,
        "chat-tools",
        r#"{"model":"gpt-5","messages":[{"role":"user","content":[{"type":"text","text":"weather?"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"sunny"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"w","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}],"tool_choice":{"type":"function","function":{"name":"get_weather"}},"reasoning_effort":"high","user":"u1"}"#,
    ),
    (
        1,
        "responses-text",
        r#"{"model":"gpt-5","instructions":"be brief","input":"hi","max_output_tokens":100,"reasoning":{"effort":"low","summary":"auto"},"stream":true}"#,
    ),
    (
        1,
        "responses-items",
        r#"{"model":"gpt-5","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"},{"type":"input_image","image_url":"https://example.com/a.png"}]},{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"thought"}],"encrypted_content":"enc"},{"type":"function_call","call_id":"c1","name":"f","arguments":"{}"},{"type":"function_call_output","call_id":"c1","output":"ok"}],"tools":[{"type":"function","name":"f","parameters":{"type":"object"}}],"tool_choice":"required"}"#,
    ),
    (
        2,
        "messages-text",
        r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"system":[{"type":"text","text":"be brief"}],"messages":[{"role":"user","content":"hi"}],"stop_sequences":["END"],"temperature":1,"metadata":{"user_id":"u1"}}"#,
    ),
    (
        2,
        "messages-tools",
        r#"{"model":"claude-sonnet-4-5","max_tokens":2048,"thinking":{"type":"enabled","budget_tokens":1024},"messages":[{"role":"user","content":[{"type":"text","text":"weather?"},{"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]},{"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"sig"},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}]},{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"sunny"}],"is_error":false}]}],"tools":[{"name":"get_weather","description":"w","input_schema":{"type":"object"}}],"tool_choice":{"type":"tool","name":"get_weather"},"stream":true}"#,
    ),
    (
        3,
        "gemini-text",
        r#"{"systemInstruction":{"parts":[{"text":"be brief"}]},"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":64,"temperature":0.5,"topP":0.9,"stopSequences":["x"],"thinkingConfig":{"thinkingBudget":512,"includeThoughts":true}}}"#,
    ),
    (
        3,
        "gemini-tools",
        r#"{"contents":[{"role":"user","parts":[{"text":"weather?"},{"inlineData":{"mimeType":"image/png","data":"iVBORw0KGgo="}}]},{"role":"model","parts":[{"thought":true,"text":"hmm","thoughtSignature":"sig"},{"functionCall":{"name":"get_weather","args":{"city":"Paris"}}}]},{"role":"user","parts":[{"functionResponse":{"name":"get_weather","response":{"result":"sunny"}}}]}],"tools":[{"functionDeclarations":[{"name":"get_weather","description":"w","parameters":{"type":"OBJECT"}}]}],"toolConfig":{"functionCallingConfig":{"mode":"ANY","allowedFunctionNames":["get_weather"]}}}"#,
    ),
    (0, "empty-object", "{}"),
    (2, "nulls", r#"{"model":null,"max_tokens":null,"messages":[{"role":"user","content":null}],"tools":null}"#),
    (
        1,
        "huge-numbers",
        r#"{"model":"m","input":"x","max_output_tokens":9223372036854775807,"temperature":1e308,"top_p":-0.0}"#,
    ),
];

fn requests(corpus: &mut Corpus) {
    for (selector, name, body) in REQUESTS {
        let mut bytes = vec![*selector];
        bytes.extend_from_slice(body.as_bytes());
        corpus.add("dialect_request", name, bytes);
    }
    for (name, status, body) in [
        ("bare-string", 503u16, r#"{"error":"overloaded"}"#),
        ("message-only", 401, r#"{"message":"bad key"}"#),
        ("not-json", 502, "<html>Bad Gateway</html>"),
        ("status-zero", 0, "{}"),
        ("status-max", u16::MAX, r#"{"error":{"type":"x","message":"y","code":12}}"#),
    ] {
        for selector in 0..4u8 {
            let mut bytes = vec![selector, (status >> 8) as u8, status as u8];
            bytes.extend_from_slice(body.as_bytes());
            corpus.add("dialect_error", &format!("{name}-{selector}"), bytes);
        }
    }
}

fn sse_edges(corpus: &mut Corpus) {
    let cases: &[(&str, &[u8])] = &[
        ("cr-only", b"data: a\r\rdata: b\r\r"),
        ("mixed-ends", b"event: x\r\ndata: 1\n\r\ndata: 2\rdata: 3\n\n"),
        ("comments-and-fields", b": ping\n\nid: 1\nretry: 10\ndata\ndata:\ndata:  two spaces\n\n"),
        ("no-final-blank", b"event: message_start\ndata: {\"a\":1}"),
        ("split-utf8", "data: \u{f7}\u{d7}\u{2713}\u{1f600}\n\n".as_bytes()),
        ("invalid-utf8", b"data: \xff\xfe\xc3\n\nevent: \xe2\x82\n\n"),
        ("event-without-data", b"event: ping\n\nevent: a\nevent: b\ndata: x\n\n"),
    ];
    for (name, bytes) in cases {
        corpus.add("sse_parser", name, bytes.to_vec());
        for selector in 0..4u8 {
            let mut prefixed = vec![selector];
            prefixed.extend_from_slice(bytes);
            corpus.add("stream_decoder", &format!("{name}-{selector}"), prefixed);
        }
    }
}

/// Event sequences in `stream_encoder`'s byte language (op byte, then its fields): a text
/// answer, a tool call, reasoning with a signature, an error mid-block, out-of-order blocks.
fn encoder_sequences(corpus: &mut Corpus) {
    let text = |s: &str| {
        let mut out = vec![s.len() as u8];
        out.extend_from_slice(s.as_bytes());
        out
    };
    let start = [vec![0], text("id_1"), text("model")].concat();
    let sequences: Vec<(&str, Vec<u8>)> = vec![
        (
            "text",
            [start.clone(), vec![1, 0], vec![2, 0], text("Hello"), vec![8, 0, 9, 3, 4, 0, 0, 0, 10, 0, 13]].concat(),
        ),
        (
            "tool",
            [
                start.clone(),
                vec![6, 0],
                text("call_1"),
                text("f"),
                vec![7, 0],
                text("{\"a\":"),
                vec![7, 0],
                text("1}"),
                vec![8, 0, 10, 3, 13],
            ]
            .concat(),
        ),
        (
            "thinking",
            [
                start.clone(),
                vec![3, 0, 4, 0],
                text("hmm"),
                vec![5, 0],
                text("sig"),
                vec![8, 0, 1, 1, 2, 1],
                text("ok"),
                vec![8, 1, 10, 0, 13],
            ]
            .concat(),
        ),
        (
            "error-mid-block",
            [start.clone(), vec![1, 0, 2, 0], text("par"), vec![11, 143], text("overloaded"), text("busy")].concat(),
        ),
        (
            "disorder",
            [
                vec![2, 3],
                text("no start"),
                vec![8, 255, 7, 254],
                text("x"),
                vec![13, 13, 9, 255, 254, 253, 0, 1, 0, 255],
            ]
            .concat(),
        ),
    ];
    for (name, bytes) in sequences {
        corpus.add("stream_encoder", name, bytes);
    }
}

fn frame(headers: &[(&str, &str)], payload: &str) -> Vec<u8> {
    let mut message = Message::new(payload.as_bytes().to_vec());
    for (name, value) in headers {
        message = message.add_header(Header::new(name.to_string(), HeaderValue::String(value.to_string().into())));
    }
    let mut out = Vec::new();
    write_message_to(&message, &mut out).expect("a small frame always encodes");
    out
}

fn event(event_type: &str, payload: &str) -> Vec<u8> {
    frame(&[(":message-type", "event"), (":event-type", event_type), (":content-type", "application/json")], payload)
}

fn kiro_frames(corpus: &mut Corpus) {
    let tool = [
        event("assistantResponseEvent", r#"{"content":"<thinking>plan</thinking>Let me look."}"#),
        event("toolUseEvent", r#"{"toolUseId":"t1","name":"get_weather","input":"{\"city\":"}"#),
        event("toolUseEvent", r#"{"toolUseId":"t1","name":"get_weather","input":"\"Paris\"}","stop":true}"#),
        event("supplementaryWebLinksEvent", r#"{"supplementaryWebLinks":[],"inputTokens":12,"outputTokens":7}"#),
        event("messageStopEvent", r#"{"stopReason":"tool_use"}"#),
    ]
    .concat();
    let inline_tools = [
        event("assistantResponseEvent", r#"{"content":"[Called get_weather with args: {\"city\": \"Paris\"}] done","toolUses":[{"toolUseId":"t2","name":"f","input":{"a":1}}]}"#),
        frame(&[], r#"{"toolUseId":"t3","name":"g","input":"{}","stop":true}"#),
        frame(&[], r#"{"content":"untyped"}"#),
        event("followupPromptEvent", "{}"),
        event("meteringEvent", ""),
    ]
    .concat();
    let exception = [
        event("assistantResponseEvent", r#"{"content":"partial"}"#),
        frame(
            &[(":message-type", "exception"), (":exception-type", "ThrottlingException")],
            r#"{"message":"slow down"}"#,
        ),
    ]
    .concat();
    let error = frame(&[(":message-type", "error"), (":error-code", "InternalError"), (":error-message", "boom")], "");
    let typed_error = event("assistantResponseEvent", r#"{"_type":"error","message":"nope"}"#);
    let not_json = event("assistantResponseEvent", "not json");
    let mut bad_crc = tool.clone();
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0xff;
    let mut bad_length = tool.clone();
    bad_length[..4].copy_from_slice(&u32::MAX.to_be_bytes());
    let truncated = tool[..tool.len() - 5].to_vec();
    for (name, bytes) in [
        ("tool-use", tool),
        ("inline-tools", inline_tools),
        ("exception", exception),
        ("error", error),
        ("typed-error", typed_error),
        ("not-json", not_json),
        ("bad-crc", bad_crc),
        ("bad-length", bad_length),
        ("truncated", truncated),
    ] {
        corpus.add("kiro_event_stream", name, bytes);
    }
}

fn callbacks(corpus: &mut Corpus) {
    let s = SESSION_STATE;
    let cases = [
        ("full-url", format!("http://localhost:54545/callback?code=abc123&state={s}")),
        ("no-scheme", format!("localhost:1455/auth/callback?state={s}&code=4/0Ab-x_y")),
        ("query-only", format!("?code=c&state={s}#frag=1")),
        ("bare-pairs", format!("code=c%20d&state={s}&scope=openid")),
        ("code-hash-state", format!("code=abc#{s}")),
        ("fragment", format!("https://console.anthropic.com/oauth/code/callback#code=c&state={s}")),
        ("error", "http://localhost/cb?error=access_denied&error_description=no&state=other".into()),
        ("other-state", "http://localhost/cb?code=c&state=fuzz-state-0123456788".into()),
        ("blank-values", format!("http://localhost/cb?code=%20&state=+{s}+&code=real")),
        ("whitespace", format!("  \n\thttp://[::1]:8080/cb?code=c&state={s}\n")),
        ("garbage", "http://%zz:99999/?".into()),
        ("empty", String::new()),
    ];
    for (name, text) in cases {
        corpus.add("pasted_callback", name, text.into_bytes());
    }
}

fn auth_files(corpus: &mut Corpus) {
    let cases = [
        (
            "claude",
            r#"{"type":"claude","email":"a@example.com","access_token":"sk-ant-oat01-x","refresh_token":"sk-ant-ort01-y","expired":"2026-01-01T00:00:00Z","last_refresh":"2025-12-31T23:00:00+01:00","priority":2,"weight":5,"disabled":false}"#,
        ),
        (
            "codex",
            r#"{"type":"codex","id_token":"a.b.c","access_token":"t","refresh_token":"r","account_id":"acc","email":"b@example.com","expired":"2026-01-01T00:00:00.123Z","note":"work","x-custom":{"nested":[1,2,{"k":null}]}}"#,
        ),
        (
            "gemini-nested-token",
            r#"{"type":"gemini","project_id":"p1","email":"c@example.com","token":{"access_token":"t","refresh_token":"r","expiry":"2026-01-01T00:00:00Z","token_type":"Bearer"},"checked":true}"#,
        ),
        (
            "legacy-keys",
            r#"{"type":"vertex","proxy-url":"socks5://127.0.0.1:1080","proxy_url":"http://127.0.0.1:8080","base-url":"https://x","excluded-models":["a"],"prefix":"p/"}"#,
        ),
        (
            "float-ints",
            r#"{"type":"kiro","priority":5.0,"weight":1e3,"expires_at":1767225600,"expiresAt":"not a date"}"#,
        ),
        (
            "odd-types",
            r#"{"type":7,"email":[],"priority":null,"weight":-9223372036854775808,"disabled":null,"label":{"x":1}}"#,
        ),
        (
            "unicode",
            "{\"type\":\"qwen\",\"email\":\"\u{e9}\u{1f600}@example.com\",\"\u{0}key\":\"\\u0000\\ud83d\\ude00\"}",
        ),
        ("duplicate-keys", r#"{"type":"a","type":"b","weight":1,"weight":"x"}"#),
        ("not-object", "[1,2,3]"),
        ("empty", " \n"),
    ];
    for (name, text) in cases {
        corpus.add("auth_file", name, text.as_bytes().to_vec());
    }
}

fn configs(corpus: &mut Corpus) {
    corpus.add("config", "default.yaml", switchyard_config::DEFAULT_YAML.as_bytes().to_vec());
    let cases = [
        (
            "keys",
            "port: 8317\napi-keys:\n  - k1\nclaude-api-key:\n  - api-key: sk\n    base-url: https://x\n    base-ur: typo\nrouting:\n  strategy: round-robin\n",
        ),
        ("bad-port", "port: 99999\n"),
        ("bad-type", "host: [1, 2]\nport: eighty\n"),
        ("not-mapping", "- a\n- b\n"),
        ("anchors", "a: &x {k: v}\nb: *x\nremote-management:\n  secret-key: \"\"\n  allow-remote: yes\n"),
        ("tabs-and-cr", "port:\t8317\r\nhost: \"::1\"\rdebug: true\r\n"),
        ("empty-values", "api-keys:\nproxy-url:\nopenai-compatibility:\n  - name:\n"),
        ("deep", "a: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n"),
        ("unterminated", "host: \"127.0.0.1\nport: 1\n"),
        ("comments-only", "# nothing\n\n"),
    ];
    for (name, text) in cases {
        corpus.add("config", &format!("{name}.yaml"), text.as_bytes().to_vec());
    }
}
