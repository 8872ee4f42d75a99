//! `cargo run --release -p switchyard-bench`: the real `switchyard` release binary against a
//! loopback mock upstream, each scenario measured straight at the mock and through the gateway,
//! printed as one Markdown table. Never asserts on timings; failed requests are counted and shown.
//! `--burst N` measures the request records instead (see [`burst`]).

mod burst;
mod gateway;
mod load;
mod mock;
mod scale;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Parser;
use serde_json::json;

use gateway::{Gateway, MODEL, cpu_time, rss_kib};
use load::{Expect, Outcome, Settings, Target};
use mock::{Fixtures, MockKind};

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
    #[arg(long, default_value_t = 15.0)]
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
    /// Scale mode: 5,000 auth files and 500 config keys against the issue-13 targets (see
    /// `scale.rs`); the other options do not apply.
    #[arg(long)]
    scale: bool,
}

#[derive(Clone, Copy)]
struct Scenario {
    id: &'static str,
    stream: bool,
    /// OpenAI client over the Claude upstream (else Anthropic client, passed through).
    translated: bool,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario { id: "nonstream-passthrough", stream: false, translated: false },
    Scenario { id: "nonstream-translated", stream: false, translated: true },
    Scenario { id: "stream-passthrough", stream: true, translated: false },
    Scenario { id: "stream-translated", stream: true, translated: true },
];

impl Scenario {
    fn title(self) -> &'static str {
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

    /// Direct rows: the mock's exact bytes. Gateway rows: the markers of a complete answer.
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

struct Row {
    scenario: Scenario,
    direct: bool,
    outcome: Outcome,
    /// Gateway CPU time (user + system) per completed request in the window.
    cpu_per_request: Option<Duration>,
    /// Highest gateway VmRSS sampled during the row, KiB.
    rss_max: Option<u64>,
    /// Upstream requests per client request seen by the mock in this row (fast mock only).
    upstream_per_request: Option<f64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.concurrency == 0 || args.duration <= 0.0 || args.warmup < 0.0 || args.burst == Some(0) {
        bail!("--concurrency, --duration and --burst must be positive, --warmup not negative");
    }
    let runtime = if args.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.client_threads).enable_all().build()?
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let binary = args.switchyard_bin.clone().unwrap_or_else(gateway::default_binary);
    if !args.no_build && args.switchyard_bin.is_none() {
        tokio::task::spawn_blocking(gateway::build_release).await??;
    }
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
    let event_delay = Duration::from_millis(args.event_delay_ms);
    let mock = mock::start(args.mock, args.mock_threads, event_delay, fixtures.clone())?;
    eprintln!("bench: mock upstream ({:?}) on {}", args.mock, mock.base);

    if let Some(requests) = args.burst {
        let settings = burst::BurstSettings { requests, concurrency: args.concurrency, rounds: args.rounds.max(1) };
        print!("{}", burst::run(&binary, &mock, &fixtures, &scenarios, &settings).await?);
        return Ok(());
    }
    let mut gateway = Gateway::spawn(&binary, &mock::upstream_urls_yaml(&mock.base), "")?;
    gateway.wait_ready(&load::client(1)).await.context("starting switchyard")?;
    let idle_rss = rss_kib(gateway.pid);
    eprintln!("bench: switchyard pid {} on {} (idle RSS {} KiB)", gateway.pid, gateway.base, idle_rss.unwrap_or(0));

    let load_before = load_average();
    let settings = Settings {
        concurrency: args.concurrency,
        warmup: Duration::from_secs_f64(args.warmup),
        duration: Duration::from_secs_f64(args.duration),
    };
    let mut rows = Vec::new();
    for scenario in scenarios {
        for direct in [true, false] {
            let base = if direct { &mock.base } else { &gateway.base };
            let target = Arc::new(Target {
                url: format!("{base}{}", scenario.path()),
                body: scenario.body(),
                headers: scenario.headers(),
                stream: scenario.stream,
                expect: scenario.expect(direct, &fixtures),
            });
            eprintln!(
                "bench: {} via {} ({} s + {} s warm-up)",
                scenario.id,
                if direct { "direct" } else { "switchyard" },
                args.duration,
                args.warmup
            );
            let row = measure(&gateway, &mock, scenario, direct, target, &settings).await;
            eprintln!(
                "bench:   {:.0} req/s, p50 {:.2} ms, {} errors",
                row.outcome.rps(),
                ms(row.outcome.latency.value_at_quantile(0.5)),
                row.outcome.errors
            );
            rows.push(row);
            if !gateway.is_running() {
                print!("{}", report(&args, &binary, idle_rss, &load_before, &rows));
                bail!("switchyard died during the run:\n{}", gateway.log_tail());
            }
        }
    }
    print!("{}", report(&args, &binary, idle_rss, &load_before, &rows));
    let log_lines = gateway.log_lines();
    if log_lines > 0 {
        eprintln!("bench: switchyard logged {log_lines} warning/error lines; the last ones:\n{}", gateway.log_tail());
    }
    Ok(())
}

async fn measure(
    gateway: &Gateway,
    mock: &mock::Mock,
    scenario: Scenario,
    direct: bool,
    target: Arc<Target>,
    settings: &Settings,
) -> Row {
    let client = load::client(settings.concurrency);
    let (window_tx, window_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let pid = gateway.pid;
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
    Row { scenario, direct, outcome, cpu_per_request, rss_max: (!direct).then_some(rss_max), upstream_per_request }
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// `/proc/loadavg`'s 1-minute figure: how busy the shared machine was when the run began.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

fn report(args: &Args, binary: &std::path::Path, idle_rss: Option<u64>, load_before: &str, rows: &[Row]) -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "\n## switchyard-bench, {}\n", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"));
    let _ = writeln!(
        out,
        "Machine: {cores} cores ({}), shared by the load generator, the mock and switchyard; 1-minute load average \
         {load_before} when the run began. Settings: concurrency {}, \
         {} s warm-up + {} s measured per row, mock `{:?}` (mock runtime threads {}, client runtime threads {}, event \
         delay {} ms), `{}` with `RUST_LOG=warn`, idle RSS {:.1} MiB.\n",
        cpu_model(),
        args.concurrency,
        args.warmup,
        args.duration,
        args.mock,
        args.mock_threads,
        args.client_threads,
        args.event_delay_ms,
        binary.display(),
        idle_rss.unwrap_or(0) as f64 / 1024.0,
    );
    let _ = writeln!(
        out,
        "| Scenario | Path | req/s | p50 ms | p99 ms | TTFB p50 ms | TTFB p99 ms | added p50 ms | switchyard CPU µs/req \
         | switchyard max RSS MiB | ok | errors |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for row in rows {
        let o = &row.outcome;
        let p = |h: &hdrhistogram::Histogram<u64>, q: f64| {
            if h.is_empty() { "—".to_owned() } else { format!("{:.2}", ms(h.value_at_quantile(q))) }
        };
        let ttfb = |q: f64| if row.scenario.stream { p(&o.ttfb, q) } else { "—".to_owned() };
        let added = if row.direct {
            "—".to_owned()
        } else {
            rows.iter()
                .find(|r| r.direct && r.scenario.id == row.scenario.id)
                .filter(|d| !d.outcome.latency.is_empty() && !o.latency.is_empty())
                .map(|d| {
                    let delta = ms(o.latency.value_at_quantile(0.5)) - ms(d.outcome.latency.value_at_quantile(0.5));
                    format!("{delta:+.2}")
                })
                .unwrap_or_else(|| "—".to_owned())
        };
        let cpu = row.cpu_per_request.map(|d| format!("{:.0}", d.as_secs_f64() * 1e6)).unwrap_or_else(|| "—".into());
        let rss = row.rss_max.map(|k| format!("{:.1}", k as f64 / 1024.0)).unwrap_or_else(|| "—".into());
        let errors = if o.errors > 0 { format!("**{}**", o.errors) } else { "0".to_owned() };
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.scenario.title(),
            if row.direct { "direct to mock" } else { "through switchyard" },
            o.rps(),
            p(&o.latency, 0.5),
            p(&o.latency, 0.99),
            ttfb(0.5),
            ttfb(0.99),
            added,
            cpu,
            rss,
            o.completed,
            errors,
        );
    }
    let mut notes = Vec::new();
    for row in rows {
        if let Some(error) = &row.outcome.first_error {
            notes.push(format!(
                "- {} via {}: {} failed, first: `{}`",
                row.scenario.id,
                if row.direct { "direct" } else { "switchyard" },
                row.outcome.errors,
                error.replace('`', "'")
            ));
        }
        if let Some(ratio) = row.upstream_per_request
            && (ratio - 1.0).abs() > 0.01
        {
            notes
                .push(format!("- {} via switchyard: {ratio:.2} upstream requests per client request", row.scenario.id));
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "\n{}", notes.join("\n"));
    }
    out
}
