//! `switchyard-mock`: the mock upstream APIs of [`switchyard_testkit::upstream::MockUpstream`] as a
//! process, for test suites outside Rust (tests/sdk drives it from pytest).
//!
//! ```text
//! switchyard-mock [--port PORT] [--control-port PORT]
//! ```
//!
//! Starts the mock on 127.0.0.1 (`--port`, default 0 = any free port) and a control endpoint on
//! another loopback port, prints one JSON line to stdout and serves until killed:
//!
//! ```json
//! {"base": "http://127.0.0.1:P", "control": "http://127.0.0.1:C", "upstream_urls_yaml": "upstream-urls:\n  ...",
//!  "login_urls_yaml": "  kimi:\n    device: ...\n  xai:\n    issuer: ...\n",
//!  "claude_login": {"authorize": ..., "token": ..., "profile": ...}}
//! ```
//!
//! `claude_login`: a Claude OAuth server ([`MockClaudeAuth`]) with its consent page on, for
//! browser-login suites; its URLs go under `upstream-urls.claude` (kept apart from
//! `login_urls_yaml`, whose suites expect Claude's real authorize URL).
//!
//! Control API (JSON bodies; every answer is JSON, errors are 400 `{"error": "..."}`):
//!
//! | request | effect |
//! |---|---|
//! | `POST /__ctl/replay {"api", "file"}` | `api`: `anthropic`, `openai-chat`, `openai-responses` or `gemini`; `file` relative to the fixtures dir (`.json` = non-stream body, `.chunks.txt` = stream) |
//! | `POST /__ctl/fault {"status", "retry_after"?, "body"?, "hangup"?}` | queues a one-shot fault for the next upstream request |
//! | `POST /__ctl/drop-after {"events"}` | cuts every stream after `events` events (`null`: never) |
//! | `POST /__ctl/event-delay {"ms"}` | pause between stream events |
//! | `POST /__ctl/auth {"bearer"? \| "x_api_key"? \| "goog_api_key"?}` | the credential every route requires (`{}`: none) |
//! | `POST /__ctl/project {"project"}` | the only Code Assist project accepted (`null`: any) |
//! | `POST /__ctl/reset` | default fixtures, no auth, no project, no drop, no delay (queued faults and the request log stay) |
//! | `GET /__ctl/requests` | every request received: `[{"method", "path", "query", "headers", "body"}]`, oldest first |
//! | `POST /__ctl/quota {"provider"?, "status"?, "answer"?, "file"?}` | the quota mock ([`MockQuota`], its URLs already in `upstream_urls_yaml`): `provider` answers `status` until cleared; `file` (e.g. `codex.json`) is answered as `answer`; `{}` clears both |

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use switchyard_testkit::claude::{self, MockClaudeAuth};
use switchyard_testkit::fixtures;
use switchyard_testkit::kimi::{self, MockKimi};
use switchyard_testkit::quota::{self, MockQuota};
use switchyard_testkit::upstream::{Api, Fault, MockUpstream, RequiredAuth};
use switchyard_testkit::xai::MockXai;
use tokio::net::TcpListener;

const USAGE: &str = "usage: switchyard-mock [--port PORT] [--control-port PORT]";
const ALL_APIS: [Api; 4] = [Api::Anthropic, Api::OpenAiChat, Api::OpenAiResponses, Api::Gemini];

type Mock = Arc<MockUpstream>;

#[tokio::main]
async fn main() {
    let (port, control_port) = match parse_args(std::env::args().skip(1)) {
        Ok(ports) => ports,
        Err(message) => {
            eprintln!("switchyard-mock: {message}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let (mock, base) = start_mock(port).await;
    let mock = Arc::new(mock);
    let control = match TcpListener::bind(("127.0.0.1", control_port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("switchyard-mock: cannot listen on 127.0.0.1:{control_port}: {error}");
            std::process::exit(1);
        }
    };
    let control_base = format!("http://{}", control.local_addr().expect("local addr"));
    // Device-login servers for the panel's xAI and Kimi login starts; kept alive until exit.
    let (xai, kimi) = (MockXai::start().await, MockKimi::start().await);
    // Quota endpoints of every provider; Claude's profile stays the login mock's.
    let quota = Arc::new(MockQuota::start().await);
    let claude_auth = MockClaudeAuth::start().await;
    claude_auth.set_consent_page(true);
    // Kimi's and xAI's quota URLs go with their login URLs (one YAML key per provider).
    let login_urls_yaml = format!(
        "  kimi:\n    device: {}\n    token: {}\n    usage: {}\n  xai:\n    issuer: {}\n    billing: {}\n",
        kimi.url(kimi::DEVICE_PATH),
        kimi.url(kimi::TOKEN_PATH),
        quota.url(quota::KIMI_PATH),
        xai.base,
        quota.url(quota::XAI_PATH),
    );
    let line = json!({
        "base": base,
        "control": control_base,
        "upstream_urls_yaml": quota
            .merged_into_except(
                &mock.upstream_urls_yaml().replace(mock.base(), &base),
                &[("claude", "profile"), ("kimi", "usage"), ("xai", "billing")],
            ),
        "login_urls_yaml": login_urls_yaml,
        "claude_login": {
            "authorize": claude_auth.url(claude::AUTHORIZE_PATH),
            "token": claude_auth.url(claude::TOKEN_PATH),
            "profile": claude_auth.url(claude::PROFILE_PATH),
        },
        "fixtures_dir": fixtures::fixtures_dir().display().to_string(),
    });
    println!("{line}");
    // The reader waits for this line; make sure it leaves now, not at exit.
    use std::io::Write as _;
    let _ = std::io::stdout().flush();

    let app = Router::new()
        .route("/__ctl/replay", post(replay))
        .route("/__ctl/fault", post(fault))
        .route("/__ctl/drop-after", post(drop_after))
        .route("/__ctl/event-delay", post(event_delay))
        .route("/__ctl/auth", post(auth))
        .route("/__ctl/project", post(project))
        .route("/__ctl/reset", post(reset))
        .route("/__ctl/requests", get(requests))
        .with_state(mock)
        .merge(Router::new().route("/__ctl/quota", post(quota_control)).with_state(quota));
    if let Err(error) = axum::serve(control, app).await {
        eprintln!("switchyard-mock: control endpoint failed: {error}");
        std::process::exit(1);
    }
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(u16, u16), String> {
    let (mut port, mut control_port) = (0u16, 0u16);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        let target = match name.as_str() {
            "--port" => &mut port,
            "--control-port" => &mut control_port,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument `{other}`")),
        };
        let value = inline.or_else(|| args.next()).ok_or_else(|| format!("{name} needs a value"))?;
        *target = value.parse().map_err(|_| format!("{name}: `{value}` is not a port number"))?;
    }
    Ok((port, control_port))
}

/// The mock, and the base URL clients use. `MockUpstream` always takes a free port of its own;
/// a fixed `--port` is served by a loopback forwarder in front of it (byte for byte, closes
/// included, so cut streams and hang-ups look the same through it).
async fn start_mock(port: u16) -> (MockUpstream, String) {
    let mock = MockUpstream::start().await;
    if port == 0 {
        let base = mock.base().to_owned();
        return (mock, base);
    }
    let listener = match TcpListener::bind(("127.0.0.1", port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("switchyard-mock: cannot listen on 127.0.0.1:{port}: {error}");
            std::process::exit(1);
        }
    };
    let inner = mock.base().trim_start_matches("http://").to_owned();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let inner = inner.clone();
            tokio::spawn(async move {
                if let Ok(mut upstream) = tokio::net::TcpStream::connect(&inner).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    });
    (mock, format!("http://127.0.0.1:{port}"))
}

#[derive(Deserialize)]
struct QuotaBody {
    #[serde(default)]
    provider: Option<String>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    answer: Option<Value>,
}

async fn quota_control(State(quota): State<Arc<MockQuota>>, Json(body): Json<QuotaBody>) -> Response {
    match (body.provider, body.status, body.file, body.answer) {
        (None, None, None, None) => quota.clear(),
        (Some(provider), Some(status), None, None) if (100..=999).contains(&status) => {
            quota.fail(&provider, status, None)
        }
        (None, None, Some(file), Some(answer)) => quota.set_answer(&file, answer),
        _ => return bad("give {\"provider\", \"status\"}, {\"file\", \"answer\"} or {} to clear"),
    }
    ok()
}

fn bad(message: impl Into<String>) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message.into()}))).into_response()
}

fn ok() -> Response {
    Json(json!({"ok": true})).into_response()
}

fn api_named(name: &str) -> Option<Api> {
    match name {
        "anthropic" => Some(Api::Anthropic),
        "openai-chat" => Some(Api::OpenAiChat),
        "openai-responses" | "codex" => Some(Api::OpenAiResponses),
        "gemini" => Some(Api::Gemini),
        _ => None,
    }
}

#[derive(Deserialize)]
struct ReplayBody {
    api: String,
    file: String,
}

async fn replay(State(mock): State<Mock>, Json(body): Json<ReplayBody>) -> Response {
    let Some(api) = api_named(&body.api) else {
        return bad(format!("unknown api `{}` (anthropic, openai-chat, openai-responses, gemini)", body.api));
    };
    if !body.file.ends_with(".json") && !body.file.ends_with(".chunks.txt") {
        return bad(format!("`{}`: a fixture is a .json body or a .chunks.txt stream", body.file));
    }
    // The mock reads the file on each request and panics on a missing one: refuse it here.
    let path = fixtures::fixtures_dir().join(&body.file);
    if body.file.contains("..") || !path.is_file() {
        return bad(format!("no fixture {}", path.display()));
    }
    mock.replay(api, &body.file);
    ok()
}

#[derive(Deserialize)]
struct FaultBody {
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    retry_after: Option<u64>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    hangup: bool,
}

async fn fault(State(mock): State<Mock>, Json(body): Json<FaultBody>) -> Response {
    let mut fault = if body.hangup {
        Fault::hangup()
    } else {
        match body.status {
            Some(status) if (100..=999).contains(&status) => Fault::status(status),
            _ => return bad("`status` (100..=999) is required unless `hangup` is true"),
        }
    };
    if let Some(seconds) = body.retry_after {
        fault = fault.retry_after(seconds);
    }
    match body.body {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => fault = fault.body(text),
        Some(other) => fault = fault.body(other.to_string()),
    }
    mock.push_fault(fault);
    ok()
}

#[derive(Deserialize)]
struct DropBody {
    events: Option<usize>,
}

async fn drop_after(State(mock): State<Mock>, Json(body): Json<DropBody>) -> Response {
    mock.drop_streams_after(body.events);
    ok()
}

#[derive(Deserialize)]
struct DelayBody {
    ms: u64,
}

async fn event_delay(State(mock): State<Mock>, Json(body): Json<DelayBody>) -> Response {
    mock.set_event_delay(Duration::from_millis(body.ms));
    ok()
}

#[derive(Deserialize)]
struct AuthBody {
    #[serde(default)]
    bearer: Option<String>,
    #[serde(default)]
    x_api_key: Option<String>,
    #[serde(default)]
    goog_api_key: Option<String>,
}

async fn auth(State(mock): State<Mock>, Json(body): Json<AuthBody>) -> Response {
    let required = match (body.bearer, body.x_api_key, body.goog_api_key) {
        (None, None, None) => None,
        (Some(token), None, None) => Some(RequiredAuth::Bearer(token)),
        (None, Some(key), None) => Some(RequiredAuth::XApiKey(key)),
        (None, None, Some(key)) => Some(RequiredAuth::GoogApiKey(key)),
        _ => return bad("give at most one of `bearer`, `x_api_key`, `goog_api_key`"),
    };
    mock.require_auth(required);
    ok()
}

#[derive(Deserialize)]
struct ProjectBody {
    project: Option<String>,
}

async fn project(State(mock): State<Mock>, Json(body): Json<ProjectBody>) -> Response {
    mock.require_project(body.project.as_deref());
    ok()
}

async fn reset(State(mock): State<Mock>) -> Response {
    for api in ALL_APIS {
        let (json_file, stream_file) = api.default_fixtures();
        mock.replay(api, json_file);
        mock.replay(api, stream_file);
    }
    mock.require_auth(None);
    mock.require_project(None);
    mock.drop_streams_after(None);
    mock.set_event_delay(Duration::ZERO);
    ok()
}

async fn requests(State(mock): State<Mock>) -> Json<Value> {
    let list: Vec<Value> = mock
        .requests()
        .into_iter()
        .map(|request| {
            let mut headers = serde_json::Map::new();
            for (name, value) in &request.headers {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                match headers.get_mut(name.as_str()) {
                    // Repeated headers are joined the way HTTP folds them.
                    Some(Value::String(existing)) => {
                        existing.push_str(", ");
                        existing.push_str(&value);
                    }
                    _ => {
                        headers.insert(name.as_str().to_owned(), Value::String(value));
                    }
                }
            }
            let body = serde_json::from_slice::<Value>(&request.body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&request.body).into_owned()));
            json!({
                "method": request.method.as_str(),
                "path": request.path,
                "query": request.query,
                "headers": headers,
                "body": body,
            })
        })
        .collect();
    Json(Value::Array(list))
}
