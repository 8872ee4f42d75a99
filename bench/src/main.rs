//! `cargo run --release -p switchyard-bench`: the real `switchyard` release binary against a
//! loopback mock upstream, each scenario measured straight at the mock and through the gateway,
//! printed as one Markdown table. Never asserts on timings; failed requests are counted and shown.
//! Every gateway row has a floor row beside it (a minimal proxy on the same HTTP stack, see
//! [`floor`]) and is printed as a ratio to it, for a plain HTTP/1.1, an HTTPS HTTP/1.1 and an HTTPS
//! HTTP/2 upstream. `--burst N` measures the request records instead (see [`burst`]).

mod burst;
mod floor;
mod gateway;
mod load;
mod mock;
mod peers;
mod pin;
mod report;
mod scale;
mod streams;
mod tls;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use serde_json::json;

use gateway::{ChildSettings, Gateway, MODEL, cpu_time, rss_kib};
use load::{Expect, Settings, Target};
use mock::{Fixtures, MockKind};
use report::{Row, Via};

#[derive(Parser)]
#[command(name = "switchyard-bench", about = "Load benchmark: direct to a mock upstream vs through switchyard")]
struct Args {
    /// Concurrent requests in flight (closed loop: each worker waits for its answer).
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Seconds of warm-up per row, not measured.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Seconds measured per row.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Which mock upstream to use.
    #[arg(long, value_enum, default_value_t = MockKind::Fast)]
    mock: MockKind,
    /// Worker threads of the mock's runtime (1: a current-thread runtime).
    #[arg(long, default_value_t = 1)]
    mock_threads: usize,
    /// Worker threads of the load generator's runtime (1: a current-thread runtime).
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Pause between stream events in the mock, in milliseconds (0: none).
    #[arg(long, default_value_t = 0)]
    event_delay_ms: u64,
    /// The switchyard binary (default: <target>/release/switchyard).
    #[arg(long)]
    switchyard_bin: Option<PathBuf>,
    /// Do not run `cargo build --release -p switchyard` first.
    #[arg(long)]
    no_build: bool,
    /// Only these scenarios (comma separated): a whole id (`nonstream-passthrough`,
    /// `nonstream-translated`, `stream-passthrough`, `stream-translated`) or one of its words
    /// (`stream`, `translated`, ...).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Burst mode: N requests (default 5000) through a gateway with `usage-store.enabled: true` and
    /// one with it false, then the records stored; `--only` picks the scenarios (default
    /// `nonstream-passthrough`), `--warmup` and `--duration` do not apply.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "5000")]
    burst: Option<usize>,
    /// Burst mode: bursts per gateway, alternating which gateway goes first.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Side-by-side mode (`bench/peers`): Switchyard, LiteLLM proxy, claude-code-router and the
    /// Portkey gateway installed under DIR, each through the same scenarios (see `peers`).
    #[arg(long, value_name = "DIR")]
    peers: Option<PathBuf>,
    /// Upstream transports to run every scenario on (comma separated).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "http1,https-h1,https-h2")]
    upstreams: Vec<Upstream>,
    /// Open-streams mode: N streams held open at once through switchyard and through the floor
    /// proxy (upstream: the mock's HTTPS HTTP/2 listener), their peak RSS and failures; the
    /// mock's event gap is `--event-delay-ms` (2000 when not given).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "10000")]
    open_streams: Option<usize>,
    /// Scale mode: 5,000 auth files and 500 config keys against the issue-13 targets (see
    /// `scale.rs`); the other options do not apply.
    #[arg(long)]
    scale: bool,
    /// Do not pin (default on 2+ cores: the gateway and the floor proxy on CPU 0, the load
    /// generator and the mock on CPU 1).
    #[arg(long)]
    no_pin: bool,
}

/// How the gateway (and the floor proxy) reach the mock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Upstream {
    /// Plain HTTP/1.1.
    Http1,
    /// HTTPS (rustls, the bench's own CA) offering only `http/1.1`.
    HttpsH1,
    /// HTTPS offering only `h2`.
    HttpsH2,
}

impl Upstream {
    pub fn label(self) -> &'static str {
        match self {
            Upstream::Http1 => "HTTP/1.1",
            Upstream::HttpsH1 => "HTTPS, HTTP/1.1",
            Upstream::HttpsH2 => "HTTPS, HTTP/2",
        }
    }

    fn base(self, mock: &mock::Mock) -> Option<&str> {
        match self {
            Upstream::Http1 => Some(&mock.base),
            Upstream::HttpsH1 => mock.https_h1.as_deref(),
            Upstream::HttpsH2 => mock.https_h2.as_deref(),
        }
    }
}

#[derive(Clone, Copy)]
pub struct Scenario {
    pub id: &'static str,
    pub stream: bool,
    /// OpenAI client over the Claude upstream (else Anthropic client, passed through).
    pub translated: bool,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario { id: "nonstream-passthrough", stream: false, translated: false },
    Scenario { id: "nonstream-translated", stream: false, translated: true },
    Scenario { id: "stream-passthrough", stream: true, translated: false },
    Scenario { id: "stream-translated", stream: true, translated: true },
];

impl Scenario {
    pub fn title(self) -> &'static str {
        match (self.stream, self.translated) {
            (false, false) => "non-stream pass-through (Anthropic → Claude, `/v1/messages`)",
            (false, true) => "non-stream translated (OpenAI → Claude, `/v1/chat/completions`)",
            (true, false) => "stream pass-through (Anthropic → Claude, `/v1/messages`)",
            (true, true) => "stream translated (OpenAI → Claude, `/v1/chat/completions`)",
        }
    }

    fn path(self) -> &'static str {
        if self.translated { "/v1/chat/completions" } else { "/v1/messages" }
    }

    fn body(self) -> Bytes {
        let messages = json!([{"role": "user", "content": "Hi"}]);
        // The same small chat for both dialects (both accept `max_tokens`).
        let body = json!({"model": MODEL, "max_tokens": 64, "messages": messages, "stream": self.stream});
        Bytes::from(serde_json::to_vec(&body).expect("JSON"))
    }

    fn headers(self) -> Vec<(&'static str, &'static str)> {
        if self.translated {
            vec![("authorization", "Bearer bench-client-key")]
        } else {
            vec![("x-api-key", "bench-client-key"), ("anthropic-version", "2023-06-01")]
        }
    }

    /// Direct and floor rows: the mock's exact bytes. Gateway rows: the markers of a complete answer.
    fn expect(self, direct: bool, fixtures: &Fixtures) -> Expect {
        let concat = |events: &[Bytes]| Bytes::from(events.concat());
        match (direct, self.stream, self.translated) {
            (true, false, false) => Expect::Exact(fixtures.anthropic_json.clone()),
            (true, false, true) => Expect::Exact(fixtures.openai_json.clone()),
            (true, true, false) => Expect::Exact(concat(&fixtures.anthropic_events)),
            (true, true, true) => Expect::Exact(concat(&fixtures.openai_events)),
            (false, false, false) => Expect::Contains(vec!["Hello!", "end_turn"]),
            (false, false, true) => Expect::Contains(vec!["chat.completion", "Hello!", "\"stop\""]),
            (false, true, false) => Expect::Contains(vec!["message_start", "content_block_delta", "message_stop"]),
            (false, true, true) => Expect::Contains(vec!["chat.completion.chunk", "\"content\":\"Hello", "[DONE]"]),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(floor::SUBCOMMAND) {
        return floor::main(&argv[2..]);
    }
    let args = Args::parse();
    if args.concurrency == 0 || args.duration <= 0.0 || args.warmup < 0.0 || args.burst == Some(0) {
        bail!("--concurrency, --duration and --burst must be positive, --warmup not negative");
    }
    let binary = args.switchyard_bin.clone().unwrap_or_else(gateway::default_binary);
    if !args.no_build && args.switchyard_bin.is_none() {
        gateway::build_release()?;
    }
    // Pinned before any thread starts, so the runtime, the mock thread and every child inherit it.
    let cores = pin::allowed_cpus();
    let pinned = !args.no_pin && cores >= 2;
    if pinned {
        pin::to_cpu(1).context("pinning the bench to CPU 1")?;
    }
    let certs_dir = tempfile::tempdir()?;
    let certs = tls::Certificates::generate(certs_dir.path())?;
    gateway::set_child_settings(ChildSettings { cpu: pinned.then_some(0), ca_file: Some(certs.ca_file.clone()) });
    let runtime = if args.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.client_threads).enable_all().build()?
    };
    runtime.block_on(run(args, binary, certs, cores, pinned))
}

async fn run(args: Args, binary: PathBuf, certs: tls::Certificates, cores: usize, pinned: bool) -> anyhow::Result<()> {
    if args.scale {
        print!("{}", scale::run(&binary).await?);
        return Ok(());
    }
    // A burst runs one scenario unless told otherwise: it is about the records, not the dialects.
    let only = if args.only.is_empty() && args.burst.is_some() {
        vec!["nonstream-passthrough".into()]
    } else {
        args.only.clone()
    };
    let scenarios: Vec<Scenario> = SCENARIOS
        .into_iter()
        .filter(|s| only.is_empty() || only.iter().any(|o| s.id == o || s.id.split('-').any(|w| w == o)))
        .collect();
    if scenarios.is_empty() {
        bail!("--only matched no scenario (ids: {})", SCENARIOS.map(|s| s.id).join(", "));
    }

    let fixtures = Fixtures::load();
    let event_delay = match (args.open_streams, args.event_delay_ms) {
        (Some(_), 0) => Duration::from_secs(2),
        (_, ms) => Duration::from_millis(ms),
    };
    let mock = mock::start(args.mock, args.mock_threads, event_delay, fixtures.clone(), Some(&certs))?;
    eprintln!("bench: mock upstream ({:?}) on {}", args.mock, mock.base);

    if let Some(streams) = args.open_streams {
        let settings = streams::OpenStreams { streams, event_delay };
        print!("{}", streams::run(&binary, &mock, &settings).await?);
        return Ok(());
    }
    if let Some(dir) = &args.peers {
        let settings = Settings {
            concurrency: args.concurrency,
            warmup: Duration::from_secs_f64(args.warmup),
            duration: Duration::from_secs_f64(args.duration),
        };
        print!("{}", peers::run(dir, &binary, &mock, &settings).await?);
        return Ok(());
    }
    if let Some(requests) = args.burst {
        let settings = burst::BurstSettings { requests, concurrency: args.concurrency, rounds: args.rounds.max(1) };
        print!("{}", burst::run(&binary, &mock, &fixtures, &scenarios, &settings).await?);
        return Ok(());
    }
    // One switchyard and one floor proxy per upstream transport.
    let mut pairs = Vec::new();
    for upstream in args.upstreams.iter().copied() {
        let Some(base) = upstream.base(&mock) else {
            bail!("the {:?} mock has no {} listener (only the fast mock speaks TLS)", args.mock, upstream.label());
        };
        let mut gateway = Gateway::spawn(&binary, &mock::upstream_urls_yaml(base), "")?;
        gateway.wait_ready(&load::client(1)).await.context("starting switchyard")?;
        let mut floor = Gateway::spawn_floor(base)?;
        floor.wait_ready(&load::client(1)).await.context("starting the floor proxy")?;
        let idle = (rss_kib(gateway.pid), rss_kib(floor.pid));
        eprintln!(
            "bench: {}: switchyard pid {} (idle RSS {} KiB), floor proxy pid {} (idle RSS {} KiB)",
            upstream.label(),
            gateway.pid,
            idle.0.unwrap_or(0),
            floor.pid,
            idle.1.unwrap_or(0)
        );
        pairs.push((upstream, gateway, floor, idle));
    }
    let load_before = load_average();
    let settings = Settings {
        concurrency: args.concurrency,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
    };
    let context = report::Context {
        concurrency: args.concurrency,
        warmup: args.warmup,
        duration: args.duration,
        mock: format!("{:?}", args.mock),
        mock_threads: args.mock_threads,
        client_threads: args.client_threads,
        event_delay_ms: args.event_delay_ms,
        binary: binary.clone(),
        cores,
        pinned,
        load_before,
        idle_rss: pairs.iter().map(|(upstream, _, _, idle)| (*upstream, idle.0, idle.1)).collect(),
    };
    let mut rows = Vec::new();
    for scenario in scenarios {
        let direct = Target {
            url: format!("{}{}", mock.base, scenario.path()),
            body: scenario.body(),
            headers: scenario.headers(),
            stream: scenario.stream,
            expect: scenario.expect(true, &fixtures),
        };
        rows.push(measure(None, &mock, scenario, None, Via::Direct, Arc::new(direct), &settings).await);
        for (upstream, gateway, floor, _) in pairs.iter_mut() {
            for via in [Via::Floor, Via::Switchyard] {
                let child = if via == Via::Floor { &*floor } else { &*gateway };
                let target = Arc::new(Target {
                    url: format!("{}{}", child.base, scenario.path()),
                    body: scenario.body(),
                    headers: scenario.headers(),
                    stream: scenario.stream,
                    expect: scenario.expect(via == Via::Floor, &fixtures),
                });
                rows.push(measure(Some(child), &mock, scenario, Some(*upstream), via, target, &settings).await);
            }
            for (name, child) in [("switchyard", &mut *gateway), ("the floor proxy", &mut *floor)] {
                if !child.is_running() {
                    print!("{}", report::render(&context, &rows));
                    bail!("{name} died during the run:\n{}", child.log_tail());
                }
            }
        }
    }
    print!("{}", report::render(&context, &rows));
    for (upstream, gateway, _, _) in &pairs {
        let log_lines = gateway.log_lines();
        if log_lines > 0 {
            eprintln!(
                "bench: switchyard ({}) logged {log_lines} warning/error lines; the last ones:\n{}",
                upstream.label(),
                gateway.log_tail()
            );
        }
    }
    Ok(())
}

async fn measure(
    child: Option<&Gateway>,
    mock: &mock::Mock,
    scenario: Scenario,
    upstream: Option<Upstream>,
    via: Via,
    target: Arc<Target>,
    settings: &Settings,
) -> Row {
    eprintln!(
        "bench: {} via {}{} ({} s + {} s warm-up)",
        scenario.id,
        via.label(),
        upstream.map(|u| format!(" ({})", u.label())).unwrap_or_default(),
        settings.duration.as_secs_f64(),
        settings.warmup.as_secs_f64()
    );
    let client = load::client(settings.concurrency);
    let (window_tx, window_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    // The direct row has no process of ours in the path: its counters read our own (ignored).
    let pid = child.map_or(std::process::id(), |c| c.pid);
    // Samples RSS all along the row and the CPU counter when the window opens.
    let sampler = tokio::spawn(async move {
        let mut rss_max = rss_kib(pid).unwrap_or(0);
        let mut window_rx = window_rx;
        let mut cpu_start = None;
        let mut interval = tokio::time::interval(Duration::from_millis(100));
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                Ok(()) = &mut window_rx, if cpu_start.is_none() => {
                    cpu_start = cpu_time(pid);
                }
                _ = interval.tick() => rss_max = rss_max.max(rss_kib(pid).unwrap_or(0)),
            }
        }
        (cpu_start, rss_max)
    });
    let hits_before = mock.hits();
    let outcome = load::run(&client, target, settings, window_tx).await;
    let cpu_end = cpu_time(pid);
    let hits_after = mock.hits();
    let _ = stop_tx.send(());
    let (cpu_start, rss_max) = sampler.await.unwrap_or((None, 0));

    let direct = via == Via::Direct;
    let cpu_per_request = match (direct, cpu_start, cpu_end) {
        (false, Some(start), Some(end)) if outcome.completed > 0 => {
            Some(end.saturating_sub(start) / outcome.completed as u32)
        }
        _ => None,
    };
    // Every request the mock answered during the row (warm-up included), per client request.
    let upstream_per_request = match (hits_before, hits_after) {
        (Some(before), Some(after)) if !direct => {
            let all = outcome.total_requests();
            (all > 0).then(|| (after - before) as f64 / all as f64)
        }
        _ => None,
    };
    eprintln!(
        "bench:   {:.0} req/s, p50 {:.2} ms, {} errors{}",
        outcome.rps(),
        ms(outcome.latency.value_at_quantile(0.5)),
        outcome.errors,
        cpu_per_request.map(|c| format!(", {:.0} µs CPU/req", c.as_secs_f64() * 1e6)).unwrap_or_default()
    );
    Row {
        scenario,
        upstream,
        via,
        outcome,
        cpu_per_request,
        rss_max: (!direct).then_some(rss_max),
        upstream_per_request,
    }
}

pub fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// `/proc/loadavg`'s 1-minute figure: how busy the shared machine was when the run began.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
