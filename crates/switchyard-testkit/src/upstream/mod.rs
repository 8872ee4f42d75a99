//! Mock upstream model APIs on one loopback port, replaying the recorded fixtures of
//! `shared/fixtures/upstream` the way the real services send them:
//!
//! | route | API | streams |
//! |---|---|---|
//! | `POST …/v1/messages`, `…/v1/messages/count_tokens` | Anthropic | `"stream": true` → SSE with `event:` lines |
//! | `POST …/chat/completions` | OpenAI Chat | `"stream": true` → `data:` lines, then `data: [DONE]` |
//! | `POST /v1/responses`, `/v1/responses/input_tokens` | OpenAI Responses | `"stream": true` → SSE with `event:` lines |
//! | `POST /backend-api/codex/responses` | ChatGPT Codex backend | SSE only: `stream` not `true` → 400 |
//! | `POST …/models/{model}:{generateContent,streamGenerateContent,countTokens}` | Gemini (also Vertex paths) | `?alt=sse` → SSE, else a JSON array |
//! | `POST /v1internal:{generateContent,streamGenerateContent,countTokens}` | Code Assist (Gemini CLI, Antigravity) | as Gemini, each body inside `{"response": …}` |
//!
//! Knobs: which fixture each API replays ([`MockUpstream::replay`]), the credential every route
//! requires ([`MockUpstream::require_auth`]; wrong → 401 in that API's error shape), the Code
//! Assist project ([`MockUpstream::require_project`]), one-shot faults for the next requests
//! ([`MockUpstream::push_fault`]), cutting streams after N events, pacing events, and holding the
//! headers back. Every request is recorded (headers and body) for assertions.

mod http;
mod routes;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

use crate::RecordedRequest;
use http::Pacing;

pub use routes::{TRACE_ID, sse_events};

/// Path prefix of the ChatGPT Codex backend (`https://chatgpt.com/backend-api/codex`).
pub const CODEX_PREFIX: &str = "/backend-api/codex";

/// The API families whose fixture can be chosen. Code Assist and Vertex replay [`Api::Gemini`]'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Api {
    Anthropic,
    OpenAiChat,
    /// `/v1/responses` and the Codex backend.
    OpenAiResponses,
    Gemini,
}

impl Api {
    const ALL: [Api; 4] = [Api::Anthropic, Api::OpenAiChat, Api::OpenAiResponses, Api::Gemini];

    /// The fixtures replayed until [`MockUpstream::replay`] says otherwise: plain text answers.
    pub fn default_fixtures(self) -> (&'static str, &'static str) {
        match self {
            Api::Anthropic => {
                ("anthropic-messages/anthropic-text.json", "anthropic-messages/anthropic-text.chunks.txt")
            }
            Api::OpenAiChat => ("openai-chat/openai-text.json", "openai-chat/azure-model-router.1.chunks.txt"),
            Api::OpenAiResponses => (
                "openai-responses/issue-20047-openai-responses.json",
                "openai-responses/issue-20047-openai-responses.chunks.txt",
            ),
            Api::Gemini => ("gemini/google-text.json", "gemini/google-text.chunks.txt"),
        }
    }
}

/// The credential every route demands. A request without it gets 401.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequiredAuth {
    /// `Authorization: Bearer <value>`.
    Bearer(String),
    /// `x-api-key: <value>` (Anthropic).
    XApiKey(String),
    /// `x-goog-api-key: <value>` or `?key=<value>` (Gemini, Vertex).
    GoogApiKey(String),
}

/// A one-shot answer for the next request, whatever its route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub status: u16,
    /// `None`: the route's API error body for `status` (Gemini 429: the recorded quota error).
    pub body: Option<String>,
    pub retry_after: Option<u64>,
    /// Close the connection without any response byte.
    pub hangup: bool,
}

impl Fault {
    pub fn status(status: u16) -> Self {
        Fault { status, body: None, retry_after: None, hangup: false }
    }

    /// Reads the request, then closes the connection without answering.
    pub fn hangup() -> Self {
        Fault { status: 0, body: None, retry_after: None, hangup: true }
    }

    pub fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

/// A caller-supplied credential check on a request's headers (e.g. "a live access token of
/// this mock authorization server").
pub type AuthCheck = Arc<dyn Fn(&axum::http::HeaderMap) -> bool + Send + Sync>;

/// Knob values, read by the routes on every request.
struct State {
    json_fixture: [String; 4],
    stream_fixture: [String; 4],
    auth: Option<RequiredAuth>,
    auth_check: Option<AuthCheck>,
    project: Option<String>,
    faults: VecDeque<Fault>,
    pacing: Pacing,
    /// Added to every reply (quota headers such as `x-codex-primary-used-percent`).
    reply_headers: Vec<(String, String)>,
    requests: Vec<RecordedRequest>,
}

impl Default for State {
    fn default() -> Self {
        State {
            json_fixture: Api::ALL.map(|api| api.default_fixtures().0.to_owned()),
            stream_fixture: Api::ALL.map(|api| api.default_fixtures().1.to_owned()),
            auth: None,
            auth_check: None,
            project: None,
            faults: VecDeque::new(),
            pacing: Pacing::default(),
            reply_headers: Vec::new(),
            requests: Vec::new(),
        }
    }
}

impl State {
    fn fixture(&self, api: Api, stream: bool) -> &str {
        let index = Api::ALL.iter().position(|a| *a == api).expect("every Api is in ALL");
        if stream { &self.stream_fixture[index] } else { &self.json_fixture[index] }
    }
}

/// The running mock. Dropping it stops accepting connections.
pub struct MockUpstream {
    base: String,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MockUpstream {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let base = format!("http://{}", listener.local_addr().expect("local addr"));
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                // Stream events are small writes; without this each waits for a delayed ACK.
                let _ = socket.set_nodelay(true);
                tokio::spawn(serve_connection(socket, shared.clone()));
            }
        });
        MockUpstream { base, state, task }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `upstream-urls` config pointing every executor here.
    pub fn upstream_urls_yaml(&self) -> String {
        let b = &self.base;
        format!(
            "upstream-urls:\n  claude:\n    api: {b}\n  codex:\n    api: {b}{CODEX_PREFIX}\n  openai:\n    api: {b}/v1\n  \
             gemini-cli:\n    code-assist: {b}\n  antigravity:\n    api: {b}\n  gemini:\n    api: {b}\n  vertex:\n    api: {b}\n"
        )
    }

    /// Replays `file` (relative to the fixtures dir) for `api`: a `.json` file becomes the
    /// non-stream body, a `.chunks.txt` file the stream.
    pub fn replay(&self, api: Api, file: &str) {
        let index = Api::ALL.iter().position(|a| *a == api).expect("every Api is in ALL");
        let mut state = self.lock();
        if file.ends_with(".chunks.txt") {
            state.stream_fixture[index] = file.to_owned();
        } else {
            state.json_fixture[index] = file.to_owned();
        }
    }

    /// The credential every route requires from now on (`None`: anything goes).
    pub fn require_auth(&self, auth: Option<RequiredAuth>) {
        self.lock().auth = auth;
    }

    /// A check every request's headers must pass from now on (`None`: no check), on top of
    /// [`require_auth`](Self::require_auth); failing requests get 401 in their API's shape. For
    /// credentials that change while the mock runs (tokens an authorization mock issues).
    pub fn require_auth_check(&self, check: Option<AuthCheck>) {
        self.lock().auth_check = check;
    }

    /// The only project Code Assist accepts (`None`: any non-empty project).
    pub fn require_project(&self, project: Option<&str>) {
        self.lock().project = project.map(str::to_owned);
    }

    /// Queues a fault; each request takes the oldest one, if any.
    pub fn push_fault(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Cuts every stream after `events` events (`None`: streams run to their end).
    pub fn drop_streams_after(&self, events: Option<usize>) {
        self.lock().pacing.drop_after = events;
    }

    /// Pause between stream events.
    pub fn set_event_delay(&self, delay: Duration) {
        self.lock().pacing.event_delay = delay;
    }

    /// Headers every reply carries from now on (replacing earlier ones).
    pub fn set_reply_headers(&self, headers: &[(&str, &str)]) {
        self.lock().reply_headers = headers.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())).collect();
    }

    /// Pause before the status line of every response.
    pub fn set_header_delay(&self, delay: Duration) {
        self.lock().pacing.header_delay = delay;
    }

    /// Every request received, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Requests whose path is exactly `path`.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.requests().into_iter().filter(|r| r.path == path).collect()
    }

    /// The most recent request (panics when there is none: a test helper).
    pub fn last_request(&self) -> RecordedRequest {
        self.requests().pop().expect("the mock received a request")
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().expect("mock state lock")
    }
}

async fn serve_connection(mut socket: TcpStream, state: Arc<Mutex<State>>) {
    let Ok(Some(request)) = http::read_request(&mut socket).await else {
        return;
    };
    let (reply, pacing) = {
        let mut state = state.lock().expect("mock state lock");
        state.requests.push(request.clone());
        let mut reply = routes::respond(&mut state, &request);
        if let http::Reply::Full { headers, .. } | http::Reply::Stream { headers, .. } = &mut reply {
            headers.extend(state.reply_headers.iter().cloned());
        }
        (reply, state.pacing)
    };
    let _ = http::write_reply(&mut socket, reply, pacing).await;
}
