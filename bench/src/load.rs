//! A closed-loop load generator: `concurrency` workers each send one request after another for a
//! warm-up and then a measured window; every answer is checked and every failure counted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;

/// One kind of request and how to tell a good answer.
pub struct Target {
    pub url: String,
    pub body: Bytes,
    /// Extra request headers (name, value).
    pub headers: Vec<(&'static str, &'static str)>,
    pub stream: bool,
    pub expect: Expect,
}

/// What a successful answer must look like (on top of a 2xx status).
pub enum Expect {
    /// Exactly these bytes (the mock's own fixture, for direct rows).
    Exact(Bytes),
    /// Contains every one of these byte strings.
    Contains(Vec<&'static str>),
}

impl Expect {
    fn check(&self, body: &[u8]) -> Result<(), String> {
        match self {
            Expect::Exact(expected) if body == expected.as_ref() => Ok(()),
            Expect::Exact(expected) => {
                Err(format!("body differs from the fixture ({} bytes, expected {})", body.len(), expected.len()))
            }
            Expect::Contains(needles) => match needles.iter().find(|n| !contains(body, n.as_bytes())) {
                None => Ok(()),
                Some(missing) => Err(format!("body lacks {missing:?}: {}", snippet(body))),
            },
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.chars().take(200).collect();
    text.replace('\n', "\\n")
}

pub struct Settings {
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// What one row measured.
pub struct Outcome {
    /// Whole-request latency in µs, requests that started and ended inside the window.
    pub latency: Histogram<u64>,
    /// Time to the first body chunk in µs (streams only).
    pub ttfb: Histogram<u64>,
    /// Successful requests that completed inside the measured window.
    pub completed: u64,
    /// Failed requests over the whole row, warm-up included.
    pub errors: u64,
    pub first_error: Option<String>,
    /// Every request that finished, warm-up and failures included.
    pub finished: u64,
    pub window: Duration,
}

impl Outcome {
    pub fn total_requests(&self) -> u64 {
        self.finished
    }

    pub fn rps(&self) -> f64 {
        self.completed as f64 / self.window.as_secs_f64()
    }
}

pub fn histogram() -> Histogram<u64> {
    // 1 µs .. 120 s at 3 significant digits.
    Histogram::new_with_bounds(1, 120_000_000, 3).expect("valid histogram bounds")
}

pub fn client(concurrency: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .pool_max_idle_per_host(concurrency * 2)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// Runs the warm-up and the window; `window_start` is told when measuring begins (for CPU
/// sampling) and the caller reads counters again when this returns.
pub async fn run(
    client: &reqwest::Client,
    target: Arc<Target>,
    settings: &Settings,
    window_start: tokio::sync::oneshot::Sender<()>,
) -> Outcome {
    let begin = Instant::now();
    let measure_from = begin + settings.warmup;
    let end = measure_from + settings.duration;
    let mut workers = Vec::with_capacity(settings.concurrency);
    for _ in 0..settings.concurrency {
        let client = client.clone();
        let target = target.clone();
        workers.push(tokio::spawn(async move {
            let mut out = Outcome {
                latency: histogram(),
                ttfb: histogram(),
                completed: 0,
                errors: 0,
                first_error: None,
                finished: 0,
                window: Duration::ZERO,
            };
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let result = one(&client, &target, started).await.map(|answer| answer.ttfb);
                let finished = Instant::now();
                out.finished += 1;
                match result {
                    Ok(ttfb) => {
                        let in_window = finished >= measure_from && finished <= end;
                        if in_window {
                            out.completed += 1;
                        }
                        if in_window && started >= measure_from {
                            let _ = out.latency.record(micros(finished - started));
                            if let Some(ttfb) = ttfb {
                                let _ = out.ttfb.record(micros(ttfb));
                            }
                        }
                    }
                    Err(error) => {
                        out.errors += 1;
                        out.first_error.get_or_insert(error);
                        // Do not spin on a dead target.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            out
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let _ = window_start.send(());

    let mut total = Outcome {
        latency: histogram(),
        ttfb: histogram(),
        completed: 0,
        errors: 0,
        first_error: None,
        finished: 0,
        window: settings.duration,
    };
    for worker in workers {
        match worker.await {
            Ok(out) => {
                total.latency.add(&out.latency).expect("same bounds");
                total.ttfb.add(&out.ttfb).expect("same bounds");
                total.completed += out.completed;
                total.errors += out.errors;
                total.finished += out.finished;
                if total.first_error.is_none() {
                    total.first_error = out.first_error;
                }
            }
            Err(error) => {
                total.errors += 1;
                total.first_error.get_or_insert(format!("worker panicked: {error}"));
            }
        }
    }
    total
}

pub fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).max(1)
}

/// A good answer to one request.
pub struct Answer {
    /// Time to the first body chunk (streams only).
    pub ttfb: Option<Duration>,
    /// The gateway's `X-Request-Id` (absent on direct rows: the mock sends none).
    pub request_id: Option<String>,
}

/// One request, read to its end and checked.
pub async fn one(client: &reqwest::Client, target: &Target, started: Instant) -> Result<Answer, String> {
    one_with(client, target, started, || {}).await
}

/// [`one`], calling `on_headers` once the answer's status and headers arrived.
pub async fn one_with(
    client: &reqwest::Client,
    target: &Target,
    started: Instant,
    on_headers: impl FnOnce(),
) -> Result<Answer, String> {
    let mut request = client.post(&target.url).header("content-type", "application/json").body(target.body.clone());
    for (name, value) in &target.headers {
        request = request.header(*name, *value);
    }
    let mut response = request.send().await.map_err(|e| format!("send: {e:#}"))?;
    on_headers();
    let status = response.status();
    let request_id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    if !target.stream {
        let body = response.bytes().await.map_err(|e| format!("body: {e:#}"))?;
        if !status.is_success() {
            return Err(format!("HTTP {status}: {}", snippet(&body)));
        }
        target.expect.check(&body)?;
        return Ok(Answer { ttfb: None, request_id });
    }
    let mut ttfb = None;
    let mut body = Vec::with_capacity(4096);
    while let Some(chunk) = response.chunk().await.map_err(|e| format!("stream: {e:#}"))? {
        if ttfb.is_none() {
            ttfb = Some(started.elapsed());
        }
        body.extend_from_slice(&chunk);
    }
    if !status.is_success() {
        return Err(format!("HTTP {status}: {}", snippet(&body)));
    }
    target.expect.check(&body)?;
    Ok(Answer { ttfb: Some(ttfb.ok_or("empty stream")?), request_id })
}
