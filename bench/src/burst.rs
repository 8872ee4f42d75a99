//! `--burst N`: N requests of one scenario through two gateway processes on the same mock, one
//! with `usage-store.enabled: true` and one with it `false`, to see what the request records cost
//! (req/s, latency, CPU per request) and whether every request of the burst got its record.
//!
//! The record check goes through the gateway's own management API, as an operator would: the
//! bench configures a random management key, waits (bounded) until the store holds as many records
//! since the burst began as requests succeeded, exports them and matches them to the
//! `X-Request-Id` of every answer; the dropped-record counter comes from `/metrics`
//! (`switchyard_usage_records_dropped_total`, the recorder's count of records a full queue refused).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Read as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde_json::Value;

use crate::gateway::{Gateway, cpu_time, thread_cpu_time};
use crate::load::{self, Target};
use crate::mock::{self, Fixtures, Mock};
use crate::{Scenario, ms};

/// Requests sent to each gateway before its burst (not measured): connections, caches and the
/// store's first batch are warm when the burst begins.
const WARMUP_REQUESTS: usize = 200;
/// Pause after a burst before the gateway's CPU counter is read: the writer's last batch
/// (`BATCH_WINDOW` 200 ms in `switchyard-usage`) is committed by then and counted.
const SETTLE: Duration = Duration::from_secs(1);
/// The name of the records writer thread in `switchyard-usage`.
const WRITER_THREAD: &str = "usage-store";
/// How long the bench waits for the writer to store the burst's records.
const FLUSH_WAIT: Duration = Duration::from_secs(60);

pub struct BurstSettings {
    pub requests: usize,
    pub concurrency: usize,
    /// Bursts per gateway, alternating which one goes first.
    pub rounds: usize,
}

/// One burst through one gateway.
struct Burst {
    latency: Histogram<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    /// User + system CPU of the gateway from the burst's start to [`SETTLE`] after its end.
    cpu: Option<Duration>,
    /// The part of `cpu` spent by the records writer thread (`usage-store`), off the request path.
    writer_cpu: Option<Duration>,
    /// `X-Request-Id` of every successful answer.
    request_ids: Vec<String>,
    /// When the first request was sent (the records' `from` filter).
    started_at: chrono::DateTime<chrono::Utc>,
}

impl Burst {
    /// Adds another burst of the same gateway to this one (latencies, counts, time, CPU, ids).
    fn absorb(&mut self, other: Burst) {
        self.latency.add(&other.latency).expect("same bounds");
        self.ok += other.ok;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.elapsed += other.elapsed;
        self.cpu = self.cpu.zip(other.cpu).map(|(a, b)| a + b);
        self.writer_cpu = self.writer_cpu.zip(other.writer_cpu).map(|(a, b)| a + b);
        self.request_ids.extend(other.request_ids);
    }

    fn rps(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64()
    }

    fn cpu_per_request_us(&self) -> Option<f64> {
        self.per_request_us(self.cpu)
    }

    fn per_request_us(&self, cpu: Option<Duration>) -> Option<f64> {
        cpu.filter(|_| self.ok > 0).map(|cpu| cpu.as_secs_f64() * 1e6 / self.ok as f64)
    }
}

/// What the records-on gateway stored for one burst.
struct RecordCheck {
    /// Records whose request id is one of the burst's answers, each counted once.
    matched: usize,
    /// Answers without a record.
    missing: usize,
    /// Request ids with more than one record.
    duplicated: usize,
    /// Records since the burst began whose id is none of the answers (failed requests).
    other: usize,
    /// `switchyard_usage_records_dropped_total` after the burst.
    dropped: Option<f64>,
    /// Seconds from the burst's end until the store held every record (`None`: it never did).
    flushed_after: Option<f64>,
}

/// 32 hex characters from the OS's random source: the management key of this run only.
fn random_key() -> anyhow::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

pub async fn run(
    binary: &Path,
    mock: &Mock,
    fixtures: &Fixtures,
    scenarios: &[Scenario],
    settings: &BurstSettings,
) -> anyhow::Result<String> {
    let key = random_key()?;
    let upstream = mock::upstream_urls_yaml(&mock.base);
    let config = |enabled: bool| {
        format!(
            "remote-management:\n  secret-key: {key}\nusage-store:\n  enabled: {enabled}\n  retention-days: 0\n  \
             max-size-mb: 0\n"
        )
    };
    let probe = load::client(1);
    let mut off = Gateway::spawn(binary, &upstream, &config(false))?;
    off.wait_ready(&probe).await.context("starting switchyard with records off")?;
    let mut on = Gateway::spawn(binary, &upstream, &config(true))?;
    on.wait_ready(&probe).await.context("starting switchyard with records on")?;
    eprintln!("bench: records off: pid {} on {}; records on: pid {} on {}", off.pid, off.base, on.pid, on.base);

    let load_before = crate::load_average();
    let mut out = String::new();
    let _ = writeln!(out, "\n## switchyard-bench --burst {}, {}\n", settings.requests, now_label());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let _ = writeln!(
        out,
        "Machine: {cores} cores ({}), shared by the load generator, the mock and both gateways; 1-minute load \
         average {load_before} when the run began. {} rounds of one burst of {} requests per gateway at \
         concurrency {} ({WARMUP_REQUESTS} warm-up requests each first, not measured), which gateway goes first \
         alternating by round; each row sums its rounds; `{}` with `RUST_LOG=warn`.\n",
        crate::cpu_model(),
        settings.rounds,
        settings.requests,
        settings.concurrency,
        binary.display(),
    );
    let _ = writeln!(
        out,
        "| Scenario | usage-store | req/s | p50 ms | p99 ms | switchyard CPU µs/req | of which the records writer | ok | \
         errors |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|");
    let mut notes = Vec::new();
    let mut checks = Vec::new();
    for scenario in scenarios {
        let target_of = |gateway: &Gateway| {
            Arc::new(Target {
                url: format!("{}{}", gateway.base, scenario.path()),
                body: scenario.body(),
                headers: scenario.headers(),
                stream: scenario.stream,
                expect: scenario.expect(false, fixtures),
            })
        };
        let client = load::client(settings.concurrency);
        for gateway in [&off, &on] {
            let _ = send_all(&client, &target_of(gateway), WARMUP_REQUESTS, settings.concurrency).await;
        }
        // [off, on], each the sum of its rounds. The order alternates round by round, so a drift
        // of the machine's load does not favour one side.
        let total = || Burst { cpu: Some(Duration::ZERO), writer_cpu: Some(Duration::ZERO), ..empty() };
        let mut bursts = [total(), total()];
        let started_at = chrono::Utc::now();
        for round in 0..settings.rounds {
            let order = if round % 2 == 0 { [false, true] } else { [true, false] };
            for records in order {
                let gateway = if records { &mut on } else { &mut off };
                eprintln!(
                    "bench: round {} of {}: burst of {} {} with records {}",
                    round + 1,
                    settings.rounds,
                    settings.requests,
                    scenario.id,
                    on_off(records)
                );
                let target = target_of(gateway);
                let burst = burst(gateway, &client, target, settings).await;
                eprintln!(
                    "bench:   {:.0} req/s, p50 {:.2} ms, {} errors",
                    burst.rps(),
                    ms(burst.latency.value_at_quantile(0.5)),
                    burst.errors
                );
                if !gateway.is_running() {
                    bail!("switchyard (records {}) died during the burst:\n{}", on_off(records), gateway.log_tail());
                }
                if let Some(error) = &burst.first_error {
                    notes.push(format!(
                        "- {} with records {}: {} failed, first: `{}`",
                        scenario.id,
                        on_off(records),
                        burst.errors,
                        error.replace('`', "'")
                    ));
                }
                bursts[usize::from(records)].absorb(burst);
            }
        }
        bursts[1].started_at = started_at;
        let (off_burst, on_burst) = (&bursts[0], &bursts[1]);
        for (label, burst) in [("off", off_burst), ("on", on_burst)] {
            let _ = writeln!(
                out,
                "| {} | {label} | {:.0} | {} | {} | {} | {} | {} | {} |",
                scenario.title(),
                burst.rps(),
                quantile(&burst.latency, 0.5),
                quantile(&burst.latency, 0.99),
                burst.cpu_per_request_us().map_or("—".into(), |c| format!("{c:.0}")),
                burst.per_request_us(burst.writer_cpu).map_or("—".into(), |c| format!("{c:.0}")),
                burst.ok,
                if burst.errors > 0 { format!("**{}**", burst.errors) } else { "0".into() },
            );
        }
        let difference = |f: &dyn Fn(&Burst) -> Option<f64>, digits: usize| match (f(on_burst), f(off_burst)) {
            (Some(on), Some(off)) if off != 0.0 => {
                format!("{:+.digits$} ({:+.0} %)", on - off, (on - off) / off * 100.0)
            }
            _ => "—".into(),
        };
        let p = |q: f64| move |b: &Burst| (!b.latency.is_empty()).then(|| ms(b.latency.value_at_quantile(q)));
        let _ = writeln!(
            out,
            "| {} | on − off | {} | {} | {} | {} | | | |",
            scenario.title(),
            difference(&|b| Some(b.rps()), 0),
            difference(&p(0.5), 2),
            difference(&p(0.99), 2),
            difference(&|b| b.cpu_per_request_us(), 0),
        );
        let check = check_records(&on, &key, on_burst).await?;
        checks.push((scenario.id, settings.requests * settings.rounds, on_burst.ok, check));
    }
    let _ = writeln!(out, "\nRecords kept by the gateway with `usage-store.enabled: true` (management API):\n");
    let _ = writeln!(
        out,
        "| Scenario | records stored / requests sent | answers without a record | ids recorded twice | other \
         records | dropped (`/metrics`) | stored within |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|");
    for (id, sent, ok, check) in &checks {
        let _ = writeln!(
            out,
            "| {id} | {} / {sent}{} | {} | {} | {} | {} | {} |",
            check.matched,
            if *ok != *sent as u64 { format!(" ({ok} answered 2xx)") } else { String::new() },
            check.missing,
            check.duplicated,
            check.other,
            check.dropped.map_or("?".into(), |d| format!("{d:.0}")),
            check.flushed_after.map_or("never (gave up)".into(), |s| format!("{s:.1} s")),
        );
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "\n{}", notes.join("\n"));
    }
    for (gateway, records) in [(&off, false), (&on, true)] {
        if gateway.log_lines() > 0 {
            eprintln!(
                "bench: switchyard (records {}) logged {} warning/error lines; the last ones:\n{}",
                on_off(records),
                gateway.log_lines(),
                gateway.log_tail()
            );
        }
    }
    Ok(out)
}

fn on_off(records: bool) -> &'static str {
    if records { "on" } else { "off" }
}

fn now_label() -> String {
    chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string()
}

fn quantile(h: &Histogram<u64>, q: f64) -> String {
    if h.is_empty() { "—".to_owned() } else { format!("{:.2}", ms(h.value_at_quantile(q))) }
}

/// `settings.requests` requests shared by `settings.concurrency` closed-loop workers.
async fn burst(gateway: &Gateway, client: &reqwest::Client, target: Arc<Target>, settings: &BurstSettings) -> Burst {
    let cpu_start = cpu_time(gateway.pid);
    let writer_start = thread_cpu_time(gateway.pid, WRITER_THREAD);
    let started_at = chrono::Utc::now();
    let begin = Instant::now();
    let mut burst = send_all(client, &target, settings.requests, settings.concurrency).await;
    burst.elapsed = begin.elapsed();
    burst.started_at = started_at;
    tokio::time::sleep(SETTLE).await;
    burst.cpu = match (cpu_start, cpu_time(gateway.pid)) {
        (Some(start), Some(end)) => Some(end.saturating_sub(start)),
        _ => None,
    };
    // No writer thread (records off) spends nothing.
    burst.writer_cpu = match (writer_start, thread_cpu_time(gateway.pid, WRITER_THREAD)) {
        (Some(start), Some(end)) => Some(end.saturating_sub(start)),
        _ => Some(Duration::ZERO),
    };
    burst
}

async fn send_all(client: &reqwest::Client, target: &Arc<Target>, requests: usize, concurrency: usize) -> Burst {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.min(requests.max(1)) {
        let (client, target, next) = (client.clone(), target.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut out = empty();
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let started = Instant::now();
                match load::one(&client, &target, started).await {
                    Ok(answer) => {
                        out.ok += 1;
                        let _ = out.latency.record(load::micros(started.elapsed()));
                        out.request_ids.extend(answer.request_id);
                    }
                    Err(error) => {
                        out.errors += 1;
                        out.first_error.get_or_insert(error);
                    }
                }
            }
            out
        }));
    }
    let mut total = empty();
    for worker in workers {
        match worker.await {
            Ok(out) => total.absorb(out),
            Err(error) => {
                total.errors += 1;
                total.first_error.get_or_insert(format!("worker panicked: {error}"));
            }
        }
    }
    total
}

fn empty() -> Burst {
    Burst {
        latency: load::histogram(),
        ok: 0,
        errors: 0,
        first_error: None,
        elapsed: Duration::ZERO,
        cpu: None,
        writer_cpu: None,
        request_ids: Vec::new(),
        started_at: chrono::Utc::now(),
    }
}

/// A management API call to the records-on gateway; any failure means the bench cannot check.
async fn management(
    client: &reqwest::Client,
    gateway: &Gateway,
    key: &str,
    path: &str,
    query: &[(&str, &str)],
) -> anyhow::Result<Value> {
    let response = client
        .get(format!("{}{path}", gateway.base))
        .bearer_auth(key)
        .query(query)
        .send()
        .await
        .with_context(|| format!("GET {path}"))?;
    let status = response.status();
    let text = response.text().await.with_context(|| format!("GET {path}"))?;
    if !status.is_success() {
        bail!("GET {path}: HTTP {status}: {}", text.chars().take(300).collect::<String>());
    }
    serde_json::from_str(&text).with_context(|| format!("GET {path}: not JSON"))
}

/// Waits until the store holds a record for every successful answer of `burst` (or stops
/// growing for long, or [`FLUSH_WAIT`] passed), then matches the records to the answers by id.
async fn check_records(gateway: &Gateway, key: &str, burst: &Burst) -> anyhow::Result<RecordCheck> {
    let client = load::client(1);
    let from = burst.started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let since = [("from", from.as_str())];
    let ended = Instant::now() - SETTLE;
    let deadline = Instant::now() + FLUSH_WAIT;
    let mut flushed_after = None;
    loop {
        let groups = management(
            &client,
            gateway,
            key,
            "/v0/management/requests/aggregate",
            &[("by", "provider"), ("from", from.as_str())],
        )
        .await?;
        let stored: u64 =
            groups["groups"].as_array().map(|g| g.iter().filter_map(|g| g["requests"].as_u64()).sum()).unwrap_or(0);
        if stored >= burst.ok {
            flushed_after = Some(ended.elapsed().as_secs_f64());
            break;
        }
        if Instant::now() > deadline {
            eprintln!(
                "bench: after {FLUSH_WAIT:?} the store holds {stored} of {} records; checking what is there",
                burst.ok
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let exported =
        management(&client, gateway, key, "/v0/management/requests/export", &[("format", "json"), since[0]]).await?;
    let mut per_id: HashMap<&str, usize> = HashMap::new();
    for record in exported.as_array().map(Vec::as_slice).unwrap_or_default() {
        if let Some(id) = record["request_id"].as_str() {
            *per_id.entry(id).or_default() += 1;
        }
    }
    let mut check = RecordCheck { matched: 0, missing: 0, duplicated: 0, other: 0, dropped: None, flushed_after };
    for id in &burst.request_ids {
        match per_id.remove(id.as_str()) {
            None => check.missing += 1,
            Some(count) => {
                check.matched += 1;
                check.duplicated += usize::from(count > 1);
            }
        }
    }
    // Answers without an `X-Request-Id` cannot be matched: count them as missing.
    check.missing += (burst.ok as usize).saturating_sub(burst.request_ids.len());
    check.other = per_id.values().sum();
    let response =
        client.get(format!("{}/metrics", gateway.base)).bearer_auth(key).send().await.context("GET /metrics")?;
    let metrics = response.text().await.context("GET /metrics")?;
    check.dropped = metrics
        .lines()
        .find_map(|line| line.strip_prefix("switchyard_usage_records_dropped_total "))
        .and_then(|v| v.trim().parse().ok());
    Ok(check)
}
