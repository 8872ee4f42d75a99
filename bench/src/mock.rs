//! The upstream the bench talks to, on its own thread and tokio runtime so its work never queues
//! behind the load generator's.
//!
//! Two implementations serve the same recorded fixtures byte for byte (the testkit's default
//! plain-text answers for Anthropic Messages and OpenAI Chat):
//!
//! - [`MockKind::Fast`] (default): a minimal axum server, fixtures loaded once into memory,
//!   HTTP/1.1 keep-alive, `TCP_NODELAY`, nothing recorded, no lock on the request path.
//! - [`MockKind::Testkit`]: the testkit's `MockUpstream`, which the integration tests use. It
//!   answers one request per connection (`Connection: close`), records every request under a
//!   mutex and reads the fixture from disk on every request: right for tests, but it measures
//!   TCP connection set-up more than anything else (see bench/README.md for the numbers).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::serve::ListenerExt;
use switchyard_testkit::fixtures;
use switchyard_testkit::upstream::{Api, MockUpstream, sse_events};
use tokio::sync::oneshot;

use crate::tls::{self, Certificates};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MockKind {
    /// Minimal in-memory axum mock with keep-alive (the default).
    Fast,
    /// The testkit `MockUpstream` (one request per connection, every request recorded).
    Testkit,
}

/// The exact bytes each native endpoint answers.
#[derive(Clone)]
pub struct Fixtures {
    pub anthropic_json: Bytes,
    pub anthropic_events: Vec<Bytes>,
    pub openai_json: Bytes,
    pub openai_events: Vec<Bytes>,
}

impl Fixtures {
    /// The testkit's default fixtures, with the events exactly as `MockUpstream` frames them.
    pub fn load() -> Self {
        let events = |api: Api| -> Vec<Bytes> {
            sse_events(api, api.default_fixtures().1).into_iter().map(Bytes::from).collect()
        };
        Fixtures {
            anthropic_json: Bytes::from(fixtures::read(Api::Anthropic.default_fixtures().0)),
            anthropic_events: events(Api::Anthropic),
            openai_json: Bytes::from(fixtures::read(Api::OpenAiChat.default_fixtures().0)),
            openai_events: events(Api::OpenAiChat),
        }
    }
}

/// A running mock; dropping it stops the server and joins its thread.
pub struct Mock {
    /// Plain HTTP/1.1.
    pub base: String,
    /// The same routes over TLS offering only `http/1.1`, and only `h2` (fast mock, when given
    /// certificates).
    pub https_h1: Option<String>,
    pub https_h2: Option<String>,
    /// Requests answered so far (fast mock only; the testkit mock is not polled during a run).
    pub hits: Option<Arc<AtomicU64>>,
    /// Token-endpoint calls (fast mock only): the scale mode's refresh wave.
    pub refreshes: Option<Arc<RefreshCounter>>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Mock {
    pub fn hits(&self) -> Option<u64> {
        self.hits.as_ref().map(|h| h.load(Ordering::Relaxed))
    }
}

/// Refresh calls the fast mock's token endpoint (`POST /oauth/token`) answered: how many, and
/// the most that were in flight at once (each is held for the mock's refresh delay).
#[derive(Default)]
pub struct RefreshCounter {
    pub completed: AtomicU64,
    pub in_flight: AtomicU64,
    pub max_in_flight: AtomicU64,
}

/// [`start`] without TLS, the fast mock's token endpoint holding each refresh for
/// `refresh_delay` (so the refreshes in flight at once can be counted).
pub fn start_with_refresh_delay(
    kind: MockKind,
    threads: usize,
    event_delay: Duration,
    fixtures: Fixtures,
    refresh_delay: Duration,
) -> anyhow::Result<Mock> {
    start_full(kind, threads, event_delay, fixtures, None, refresh_delay)
}

/// Starts the mock on a dedicated thread: a current-thread runtime when `threads` is 1, else a
/// multi-thread runtime with that many workers.
pub fn start(
    kind: MockKind,
    threads: usize,
    event_delay: Duration,
    fixtures: Fixtures,
    certs: Option<&Certificates>,
) -> anyhow::Result<Mock> {
    start_full(kind, threads, event_delay, fixtures, certs, Duration::ZERO)
}

fn start_full(
    kind: MockKind,
    threads: usize,
    event_delay: Duration,
    fixtures: Fixtures,
    certs: Option<&Certificates>,
    refresh_delay: Duration,
) -> anyhow::Result<Mock> {
    let acceptors = match certs {
        Some(certs) if kind == MockKind::Fast => Some((certs.acceptor(b"http/1.1")?, certs.acceptor(b"h2")?)),
        _ => None,
    };
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    }
    .context("mock runtime")?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<anyhow::Result<Ready>>();
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new().name("mock-upstream".into()).spawn(move || {
        runtime.block_on(async move {
            match kind {
                MockKind::Fast => {
                    let bind = || async {
                        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
                        let addr = listener.local_addr()?;
                        anyhow::Ok((listener, addr))
                    };
                    let (listener, addr) = match bind().await {
                        Ok(bound) => bound,
                        Err(error) => {
                            let _ = ready_tx.send(Err(error));
                            return;
                        }
                    };
                    let hits = Arc::new(AtomicU64::new(0));
                    let refreshes = Arc::new(RefreshCounter::default());
                    let state = Arc::new(FastState {
                        fixtures,
                        event_delay,
                        hits: hits.clone(),
                        refreshes: refreshes.clone(),
                        refresh_delay,
                    });
                    let app = Router::new()
                        .route("/v1/messages", post(messages))
                        .route("/v1/chat/completions", post(chat))
                        .route("/oauth/token", post(token))
                        .with_state(state);
                    let mut ready = Ready {
                        base: format!("http://{addr}"),
                        hits: Some(hits),
                        refreshes: Some(refreshes),
                        https: None,
                    };
                    let mut tls_tasks = Vec::new();
                    if let Some((h1, h2)) = acceptors {
                        let (Ok((l1, a1)), Ok((l2, a2))) = (bind().await, bind().await) else {
                            let _ = ready_tx.send(Err(anyhow::anyhow!("cannot bind the TLS listeners")));
                            return;
                        };
                        tls_tasks.push(tokio::spawn(tls::serve(l1, h1, app.clone())));
                        tls_tasks.push(tokio::spawn(tls::serve(l2, h2, app.clone())));
                        ready.https = Some((format!("https://{a1}"), format!("https://{a2}")));
                    }
                    let _ = ready_tx.send(Ok(ready));
                    // Real upstreams flush each SSE event at once: no Nagle delay on the mock's side.
                    let listener = listener.tap_io(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    });
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move {
                            let _ = shutdown_rx.await;
                        })
                        .await;
                    tls_tasks.iter().for_each(|task| task.abort());
                }
                MockKind::Testkit => {
                    let upstream = MockUpstream::start().await;
                    upstream.set_event_delay(event_delay);
                    let _ = ready_tx.send(Ok(Ready {
                        base: upstream.base().to_owned(),
                        hits: None,
                        refreshes: None,
                        https: None,
                    }));
                    let _ = shutdown_rx.await;
                    drop(upstream);
                }
            }
        });
    })?;
    let ready = ready_rx.recv().context("mock thread died")??;
    let (https_h1, https_h2) = ready.https.unzip();
    Ok(Mock {
        base: ready.base,
        https_h1,
        https_h2,
        hits: ready.hits,
        refreshes: ready.refreshes,
        shutdown: Some(shutdown_tx),
        thread: Some(thread),
    })
}

/// What the mock thread reports once it listens.
struct Ready {
    base: String,
    hits: Option<Arc<AtomicU64>>,
    refreshes: Option<Arc<RefreshCounter>>,
    /// (TLS with `http/1.1`, TLS with `h2`).
    https: Option<(String, String)>,
}

/// `upstream-urls` for Switchyard: the Claude API (and Claude's OAuth endpoints, so nothing can
/// ever leave the machine) on the mock.
pub fn upstream_urls_yaml(base: &str) -> String {
    format!(
        "upstream-urls:\n  claude:\n    api: {base}\n    token: {base}/oauth/token\n    profile: {base}/oauth/profile\n    \
         authorize: {base}/oauth/authorize\n"
    )
}

struct FastState {
    fixtures: Fixtures,
    event_delay: Duration,
    hits: Arc<AtomicU64>,
    refreshes: Arc<RefreshCounter>,
    refresh_delay: Duration,
}

/// A refresh-token grant answered with new tokens valid for 30 days (any refresh token is
/// accepted). Counts the calls in flight, so a wave shows whether the worker limit held.
async fn token(State(state): State<Arc<FastState>>) -> Response {
    let counter = &state.refreshes;
    let now = counter.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    counter.max_in_flight.fetch_max(now, Ordering::SeqCst);
    if !state.refresh_delay.is_zero() {
        tokio::time::sleep(state.refresh_delay).await;
    }
    let n = counter.completed.load(Ordering::Relaxed);
    let body = serde_json::json!({
        "access_token": format!("bench-refreshed-access-{n}"),
        "refresh_token": format!("bench-refreshed-refresh-{n}"),
        "expires_in": 30 * 24 * 3600,
        "token_type": "Bearer",
    });
    counter.in_flight.fetch_sub(1, Ordering::SeqCst);
    counter.completed.fetch_add(1, Ordering::SeqCst);
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

#[derive(serde::Deserialize)]
struct Probe {
    #[serde(default)]
    stream: Option<bool>,
}

async fn messages(State(state): State<Arc<FastState>>, body: Bytes) -> Response {
    let f = &state.fixtures;
    reply(&state, &body, &f.anthropic_json, &f.anthropic_events)
}

async fn chat(State(state): State<Arc<FastState>>, body: Bytes) -> Response {
    let f = &state.fixtures;
    reply(&state, &body, &f.openai_json, &f.openai_events)
}

fn reply(state: &FastState, body: &[u8], json: &Bytes, events: &[Bytes]) -> Response {
    state.hits.fetch_add(1, Ordering::Relaxed);
    let Ok(probe) = serde_json::from_slice::<Probe>(body) else {
        return (StatusCode::BAD_REQUEST, [(header::CONTENT_TYPE, "application/json")], r#"{"error":"bad json"}"#)
            .into_response();
    };
    if probe.stream != Some(true) {
        return ([(header::CONTENT_TYPE, "application/json")], json.clone()).into_response();
    }
    let events = events.to_vec();
    let delay = state.event_delay;
    let body = if delay.is_zero() {
        Body::from_stream(futures::stream::iter(events.into_iter().map(Ok::<_, Infallible>)))
    } else {
        Body::from_stream(futures::stream::unfold((events.into_iter(), true), move |(mut rest, first)| async move {
            let event = rest.next()?;
            if !first {
                tokio::time::sleep(delay).await;
            }
            Some((Ok::<_, Infallible>(event), (rest, false)))
        }))
    };
    ([(header::CONTENT_TYPE, "text/event-stream; charset=utf-8"), (header::CACHE_CONTROL, "no-cache")], body)
        .into_response()
}
