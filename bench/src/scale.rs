//! `--scale`: the gateway with 5,000 auth files of mixed providers and 500 config keys, against
//! the targets of issue 13 — start-up to serving, RSS, the `/auth-files` listing, per-request
//! routing cost next to a 10-account gateway (same model, same mock, alternating rounds), a hot
//! reload of one file (`switchyard_auth_file_reads_total` shows what was re-read) and a refresh
//! wave (1,000 Claude tokens due in the same minute, answered by the mock's token endpoint,
//! which counts the refreshes in flight). Prints one Markdown table; never asserts on timings.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use serde_json::{Map, Value, json};
use switchyard_config::Config;
use switchyard_providers::{Provider, Registry};

use crate::gateway::{Gateway, MODEL, cpu_time, rss_kib, write_private};
use crate::load::{self, Expect, Settings, Target};
use crate::mock::{self, Fixtures, Mock, MockKind};

/// Auth files in the big gateway.
const ACCOUNTS: usize = 5000;
/// Config keys in the big gateway (client `api-keys` and provider key lists).
const CONFIG_KEYS: usize = 500;
/// Claude accounts whose tokens come due in the same minute.
const WAVE: usize = 1000;
/// Auth files in the comparison gateway.
const SMALL_ACCOUNTS: usize = 10;
/// `auth-auto-refresh-workers` of both gateways.
const REFRESH_WORKERS: u64 = 8;
/// The mock holds each refresh this long, so refreshes overlap and can be counted in flight.
const REFRESH_DELAY: Duration = Duration::from_millis(50);
/// The wave's tokens come due between this long after the files are written and a minute later.
const WAVE_AFTER: Duration = Duration::from_secs(100);
const CLIENT_KEY: &str = "bench-client-key";
/// `/auth-files` calls measured.
const LISTING_CALLS: usize = 20;
/// Rounds per gateway in the routing comparison (alternating which goes first).
const ROUTING_ROUNDS: usize = 3;
const STARTUP_LIMIT: Duration = Duration::from_secs(60);

/// Runs the whole scenario and returns the report.
pub async fn run(binary: &Path) -> anyhow::Result<String> {
    let load_before = load_average();
    let fixtures = Fixtures::load();
    let mock = mock::start_with_refresh_delay(MockKind::Fast, 2, Duration::ZERO, fixtures, REFRESH_DELAY)?;
    eprintln!("bench: mock upstream on {}", mock.base);
    let key = random_key()?;
    let providers = served_providers();
    eprintln!("bench: auth files of {}", providers.iter().map(|p| p.id()).collect::<Vec<_>>().join(", "));
    let urls = upstream_urls_yaml(&mock.base);
    let client = load::client(8);

    // The big gateway first: its start-up is measured from a cold process.
    let wave_due = chrono::Utc::now() + chrono::Duration::from_std(claude_lead() + WAVE_AFTER)?;
    let big_yaml = gateway_yaml(&key, &mock.base, CONFIG_KEYS);
    let files_started = Instant::now();
    let mut big =
        Gateway::spawn_with(binary, &urls, &big_yaml, |dir| fill_auth_dir(dir, &providers, ACCOUNTS, WAVE, wave_due))?;
    let files_written = big.started - files_started;
    let (healthz, served) = startup(&mut big, &client).await.context("starting the 5,000-account gateway")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_idle = rss_kib(big.pid).unwrap_or(0);
    let reads_at_start = file_reads(&client, &big, &key).await?;
    eprintln!("bench: 5,000 accounts: /healthz after {healthz:?}, served after {served:?}, RSS {rss_idle} KiB");

    let listing = listing_latency(&client, &big, &key).await?;
    eprintln!("bench: /auth-files median {:.1} ms", listing.median_ms());

    let mut small = Gateway::spawn_with(binary, &urls, &gateway_yaml(&key, &mock.base, 1), |dir| {
        fill_auth_dir(dir, &providers, SMALL_ACCOUNTS, 0, wave_due)
    })?;
    startup(&mut small, &client).await.context("starting the 10-account gateway")?;
    let small_rss_idle = rss_kib(small.pid).unwrap_or(0);
    let routing = routing_comparison(&small, &big).await;
    let rss_after_load = rss_kib(big.pid).unwrap_or(0);
    // Accounts whose provider's upstream is a 404 on the mock fail and cool down: part of what
    // routing works around, so it is shown.
    let health_after_load = match management_get(&client, &big, &key, "/metrics").await {
        Ok(text) => text
            .lines()
            .filter(|l| l.starts_with("switchyard_cooldowns_active") || l.starts_with("switchyard_accounts{"))
            .map(|l| format!("`{l}`"))
            .collect::<Vec<_>>()
            .join(", "),
        Err(error) => format!("(no /metrics: {error})"),
    };
    drop(small);

    let reload = hot_reload(&client, &big, &key).await?;
    eprintln!("bench: hot reload visible after {:?}, {} files read", reload.visible_after, reload.files_read);

    let wave = refresh_wave(&big, &mock).await?;
    let rss_after_wave = rss_kib(big.pid).unwrap_or(0);
    if !big.is_running() {
        bail!("switchyard died during the run:\n{}", big.log_tail());
    }
    let warnings = big.log_lines();

    let figures = Figures {
        providers: providers.iter().map(|p| p.id()).collect(),
        files_written,
        healthz,
        served,
        rss_idle,
        small_rss_idle,
        rss_after_load,
        rss_after_wave,
        reads_at_start,
        listing,
        routing,
        reload,
        wave,
        warnings,
        load_before,
        health_after_load,
    };
    Ok(report(&figures))
}

/// Providers that serve requests and whose generic auth file (below) passes the upload check.
fn served_providers() -> Vec<&'static dyn Provider> {
    let registry = Registry::new(&Config::default());
    switchyard_providers::all()
        .iter()
        .copied()
        .filter(|p| p.executor().is_some())
        .filter(|p| {
            let Value::Object(document) = credential(p.file_types()[0], 0, chrono::Utc::now()) else {
                return false;
            };
            let name = format!("{}-0.json", p.file_types()[0]);
            match registry.check_upload(&name, &document) {
                Ok(_) => true,
                Err(problem) => {
                    eprintln!("bench: no {} files: {}", p.id(), problem.message);
                    false
                }
            }
        })
        .collect()
}

/// A credential of `file_type` with tokens valid until `expired`.
fn credential(file_type: &str, i: usize, expired: chrono::DateTime<chrono::Utc>) -> Value {
    json!({
        "type": file_type,
        "email": format!("user{i}@scale.example"),
        "access_token": format!("scale-access-{i}"),
        "refresh_token": format!("scale-refresh-{i}"),
        "expired": expired.to_rfc3339(),
        "project_id": format!("scale-project-{i}"),
        "auth_method": "social",
        "disabled": false,
    })
}

/// `count` files round-robin over `providers`, the first `wave` of them Claude files whose
/// tokens come due within the minute after `wave_due` (the Claude lead subtracted); every
/// other token is valid for 30 days (past every provider's refresh lead).
fn fill_auth_dir(
    dir: &Path,
    providers: &[&'static dyn Provider],
    count: usize,
    wave: usize,
    wave_due: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    let valid = chrono::Utc::now() + chrono::Duration::days(30);
    for i in 0..count {
        let (file_type, expired) = if i < wave {
            ("claude", wave_due + chrono::Duration::seconds((i % 60) as i64))
        } else {
            (providers[i % providers.len()].file_types()[0], valid)
        };
        let name = format!("{file_type}-user{i}@scale.example.json");
        write_private(&dir.join(name), &serde_json::to_vec_pretty(&credential(file_type, i, expired))?)?;
    }
    Ok(())
}

fn claude_lead() -> Duration {
    switchyard_providers::by_id("claude")
        .and_then(|p| p.refresher())
        .and_then(|r| r.refresh_lead())
        .unwrap_or(Duration::from_secs(4 * 3600))
}

/// Every endpoint of every provider on the mock: Claude's API and token endpoint answer, the
/// rest are 404s there, so nothing ever leaves the machine.
fn upstream_urls_yaml(base: &str) -> String {
    let mut yaml = String::from("upstream-urls:\n");
    for provider in switchyard_providers::all() {
        let _ = writeln!(yaml, "  {}:", provider.id());
        for endpoint in provider.endpoints() {
            let url = match (provider.id(), endpoint.name) {
                ("claude", "api") => base.to_owned(),
                ("claude", "token") => format!("{base}/oauth/token"),
                (id, name) => format!("{base}/unused/{id}/{name}"),
            };
            let _ = writeln!(yaml, "    {}: {url}", endpoint.name);
        }
    }
    yaml
}

/// The management key, refresh workers, no schedules that call upstream, and `keys` config
/// keys: a fifth client keys, the rest spread over Claude/Gemini/Codex key lists and
/// `openai-compatibility` entries, all on the mock.
fn gateway_yaml(management_key: &str, base: &str, keys: usize) -> String {
    let mut yaml = format!(
        "remote-management:\n  secret-key: {management_key}\nauth-auto-refresh-workers: {REFRESH_WORKERS}\n\
         quota:\n  refresh-interval-seconds: 0\nhealth:\n  inspection-interval-minutes: 0\napi-keys:\n  - {CLIENT_KEY}\n"
    );
    let clients = keys / 5;
    for i in 1..clients {
        let _ = writeln!(yaml, "  - scale-client-{i}");
    }
    let per_list = keys.saturating_sub(clients.max(1)) / 4;
    for section in ["claude-api-key", "gemini-api-key", "codex-api-key"] {
        if per_list > 0 {
            let _ = writeln!(yaml, "{section}:");
        }
        for i in 0..per_list {
            let _ = writeln!(yaml, "  - api-key: scale-{section}-{i}\n    base-url: {base}");
        }
    }
    if per_list > 0 {
        yaml.push_str("openai-compatibility:\n");
    }
    for i in 0..per_list {
        let _ = writeln!(
            yaml,
            "  - name: compat-{i}\n    base-url: {base}/v1\n    api-key-entries:\n      - api-key: scale-compat-{i}\n    \
             models:\n      - name: gpt-4o-mini\n        alias: compat-model-{i}"
        );
    }
    yaml
}

fn random_key() -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn target(gateway: &Gateway) -> Arc<Target> {
    let body = json!({"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Hi"}]});
    Arc::new(Target {
        url: format!("{}/v1/messages", gateway.base),
        body: Bytes::from(serde_json::to_vec(&body).expect("JSON")),
        headers: vec![("x-api-key", CLIENT_KEY), ("anthropic-version", "2023-06-01")],
        stream: false,
        expect: Expect::Contains(vec!["Hello!", "end_turn"]),
    })
}

/// Time from spawn to the first `/healthz` 200, and to the first routed request answered.
async fn startup(gateway: &mut Gateway, client: &reqwest::Client) -> anyhow::Result<(Duration, Duration)> {
    let deadline = gateway.started + STARTUP_LIMIT;
    let healthz = loop {
        if !gateway.is_running() {
            bail!("switchyard exited early:\n{}", gateway.log_tail());
        }
        let answer = client.get(format!("{}/healthz", gateway.base)).send().await;
        if answer.is_ok_and(|r| r.status().is_success()) {
            break gateway.started.elapsed();
        }
        if Instant::now() > deadline {
            bail!("no /healthz after {STARTUP_LIMIT:?}:\n{}", gateway.log_tail());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let target = target(gateway);
    let served = loop {
        match load::one(client, &target, Instant::now()).await {
            Ok(_) => break gateway.started.elapsed(),
            Err(error) if Instant::now() > deadline => bail!("no request served: {error}\n{}", gateway.log_tail()),
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    };
    Ok((healthz, served))
}

async fn management_get(
    client: &reqwest::Client,
    gateway: &Gateway,
    key: &str,
    path_and_query: &str,
) -> anyhow::Result<String> {
    let response = client.get(format!("{}{path_and_query}", gateway.base)).bearer_auth(key).send().await?;
    let status = response.status();
    let text = response.text().await?;
    if !status.is_success() {
        bail!("GET {path_and_query}: HTTP {status}: {}", text.chars().take(300).collect::<String>());
    }
    Ok(text)
}

/// `switchyard_auth_file_reads_total` from `/metrics`.
async fn file_reads(client: &reqwest::Client, gateway: &Gateway, key: &str) -> anyhow::Result<u64> {
    let text = management_get(client, gateway, key, "/metrics").await?;
    text.lines()
        .find_map(|line| line.strip_prefix("switchyard_auth_file_reads_total "))
        .and_then(|v| v.trim().parse().ok())
        .context("/metrics has no switchyard_auth_file_reads_total")
}

struct Listing {
    /// Sorted.
    times: Vec<Duration>,
    entries: usize,
    bytes: usize,
}

impl Listing {
    fn median_ms(&self) -> f64 {
        self.times[self.times.len() / 2].as_secs_f64() * 1000.0
    }
    fn max_ms(&self) -> f64 {
        self.times.last().map_or(0.0, |t| t.as_secs_f64() * 1000.0)
    }
}

async fn listing_latency(client: &reqwest::Client, gateway: &Gateway, key: &str) -> anyhow::Result<Listing> {
    let mut times = Vec::with_capacity(LISTING_CALLS);
    let (mut entries, mut bytes) = (0, 0);
    for _ in 0..LISTING_CALLS {
        let started = Instant::now();
        let text = management_get(client, gateway, key, "/v0/management/auth-files").await?;
        times.push(started.elapsed());
        let listing: Value = serde_json::from_str(&text)?;
        entries = listing["files"].as_array().map_or(0, Vec::len);
        bytes = text.len();
    }
    times.sort();
    Ok(Listing { times, entries, bytes })
}

/// One gateway's rounds of the routing comparison.
#[derive(Default)]
struct RoutingRow {
    latency: Option<Histogram<u64>>,
    completed: u64,
    errors: u64,
    first_error: Option<String>,
    cpu: Duration,
}

impl RoutingRow {
    fn cpu_per_request_us(&self) -> f64 {
        if self.completed == 0 { 0.0 } else { self.cpu.as_secs_f64() * 1e6 / self.completed as f64 }
    }
    fn p50_ms(&self) -> f64 {
        self.latency.as_ref().map_or(0.0, |h| h.value_at_quantile(0.5) as f64 / 1000.0)
    }
}

/// The same request through both gateways in alternating rounds (4 in flight, 1 s warm-up,
/// 4 s measured): gateway CPU per request and latency.
async fn routing_comparison(small: &Gateway, big: &Gateway) -> [RoutingRow; 2] {
    let settings = Settings { concurrency: 4, warmup: Duration::from_secs(1), duration: Duration::from_secs(4) };
    let mut rows = [RoutingRow::default(), RoutingRow::default()];
    let client = load::client(settings.concurrency);
    for round in 0..ROUTING_ROUNDS * 2 {
        // small, big, big, small, small, big: each goes first as often.
        let which = if (round / 2 + round) % 2 == 0 { 0 } else { 1 };
        let gateway = [small, big][which];
        let (window_tx, window_rx) = tokio::sync::oneshot::channel();
        let pid = gateway.pid;
        let cpu_at_window = tokio::spawn(async move { window_rx.await.ok().and_then(|()| cpu_time(pid)) });
        let outcome = load::run(&client, target(gateway), &settings, window_tx).await;
        let cpu_end = cpu_time(pid);
        let row = &mut rows[which];
        if let (Ok(Some(start)), Some(end)) = (cpu_at_window.await, cpu_end) {
            row.cpu += end.saturating_sub(start);
        }
        row.completed += outcome.completed;
        row.errors += outcome.errors;
        if row.first_error.is_none() {
            row.first_error = outcome.first_error;
        }
        match &mut row.latency {
            Some(h) => h.add(&outcome.latency).expect("same bounds"),
            None => row.latency = Some(outcome.latency),
        }
        eprintln!("bench: routing round {round} on {} accounts: {} requests", [10, 5000][which], outcome.completed);
    }
    rows
}

struct Reload {
    visible_after: Duration,
    /// Auth files read from the rewrite until a second after it was visible.
    files_read: u64,
}

/// Rewrites one auth file (a new `note`) as another program would, and times until
/// `/auth-files` shows it; the read counter tells how many files the gateway re-read.
async fn hot_reload(client: &reqwest::Client, gateway: &Gateway, key: &str) -> anyhow::Result<Reload> {
    let name = format!("{}-user{}@scale.example.json", "codex", find_codex_index(gateway)?);
    let path = gateway.auth_dir.join(&name);
    let mut document: Map<String, Value> = serde_json::from_slice(&std::fs::read(&path)?)?;
    document.insert("note".into(), json!("hot reload"));
    let before = file_reads(client, gateway, key).await?;
    let started = Instant::now();
    write_private(&path, &serde_json::to_vec_pretty(&document)?)?;
    let query = format!("/v0/management/auth-files?name={}", name.replace('@', "%40"));
    let visible_after = loop {
        let text = management_get(client, gateway, key, &query).await?;
        let listing: Value = serde_json::from_str(&text)?;
        if listing["files"][0]["note"] == "hot reload" {
            break started.elapsed();
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the rewrite of {name} never showed in /auth-files");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let files_read = file_reads(client, gateway, key).await? - before;
    Ok(Reload { visible_after, files_read })
}

/// The index of some Codex file (not one of the wave's Claude files).
fn find_codex_index(gateway: &Gateway) -> anyhow::Result<usize> {
    for entry in std::fs::read_dir(&gateway.auth_dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(i) = name.strip_prefix("codex-user").and_then(|r| r.strip_suffix("@scale.example.json")) {
            return Ok(i.parse()?);
        }
    }
    bail!("no Codex file in the auth dir")
}

struct Wave {
    before: Histogram<u64>,
    before_window: Duration,
    during: Histogram<u64>,
    during_window: Duration,
    errors: u64,
    first_error: Option<String>,
    completed: u64,
    max_in_flight: u64,
}

/// Load (4 in flight) until the first refresh reaches the mock ("before"), then until all
/// [`WAVE`] refreshes are answered ("during").
async fn refresh_wave(gateway: &Gateway, mock: &Mock) -> anyhow::Result<Wave> {
    let counter = mock.refreshes.clone().context("the fast mock counts refreshes")?;
    let started_before = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, counter) = (stop.clone(), counter.clone());
        tokio::spawn(async move {
            while counter.completed.load(Ordering::SeqCst) + counter.in_flight.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            stop.store(true, Ordering::SeqCst);
        })
    };
    if counter.completed.load(Ordering::SeqCst) > 0 {
        eprintln!("bench: the wave began before its 'before' window (earlier phases ran long)");
    }
    let (before, mut errors, mut first_error) = load_until(gateway, stop).await;
    watcher.await?;
    let before_window = started_before.elapsed();
    eprintln!("bench: refresh wave began after {before_window:?} of load");

    let started_during = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (stop, counter) = (stop.clone(), counter.clone());
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(300);
            while counter.completed.load(Ordering::SeqCst) < WAVE as u64 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            stop.store(true, Ordering::SeqCst);
        })
    };
    let (during, more_errors, error) = load_until(gateway, stop).await;
    watcher.await?;
    errors += more_errors;
    first_error = first_error.or(error);
    Ok(Wave {
        before,
        before_window,
        during,
        during_window: started_during.elapsed(),
        errors,
        first_error,
        completed: counter.completed.load(Ordering::SeqCst),
        max_in_flight: counter.max_in_flight.load(Ordering::SeqCst),
    })
}

/// Four workers sending the request until `stop`; latencies of the good answers.
async fn load_until(gateway: &Gateway, stop: Arc<AtomicBool>) -> (Histogram<u64>, u64, Option<String>) {
    let client = load::client(4);
    let target = target(gateway);
    let errors = Arc::new(AtomicU64::new(0));
    let mut workers = Vec::new();
    for _ in 0..4 {
        let (client, target, stop, errors) = (client.clone(), target.clone(), stop.clone(), errors.clone());
        workers.push(tokio::spawn(async move {
            let mut latency = load::histogram();
            let mut first_error = None;
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                match load::one(&client, &target, started).await {
                    Ok(_) => {
                        let _ = latency.record(load::micros(started.elapsed()));
                    }
                    Err(error) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        first_error.get_or_insert(error);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            (latency, first_error)
        }));
    }
    let mut total = load::histogram();
    let mut first_error = None;
    for worker in workers {
        if let Ok((latency, error)) = worker.await {
            total.add(&latency).expect("same bounds");
            first_error = first_error.or(error);
        }
    }
    (total, errors.load(Ordering::Relaxed), first_error)
}

struct Figures {
    providers: Vec<&'static str>,
    files_written: Duration,
    healthz: Duration,
    served: Duration,
    rss_idle: u64,
    small_rss_idle: u64,
    rss_after_load: u64,
    rss_after_wave: u64,
    reads_at_start: u64,
    listing: Listing,
    routing: [RoutingRow; 2],
    reload: Reload,
    wave: Wave,
    warnings: usize,
    load_before: String,
    health_after_load: String,
}

/// `/proc/loadavg`'s 1-minute figure: how busy the shared machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// "met" or "missed by X" for a figure that must stay at or under `target`.
fn verdict(value: f64, target: f64, unit: &str) -> String {
    if value <= target { "met".into() } else { format!("missed by {:.1} {unit}", value - target) }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn quantile_ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

fn report(f: &Figures) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Scale: {ACCOUNTS} auth files ({} of them Claude files in the refresh wave; the rest round-robin over {}), \
         {CONFIG_KEYS} config keys, `auth-auto-refresh-workers: {REFRESH_WORKERS}`, mock token endpoint holding each \
         refresh {} ms. Files written in {:.0} ms (not counted).\n",
        WAVE,
        f.providers.join(", "),
        REFRESH_DELAY.as_millis(),
        ms(f.files_written),
    );
    let _ = writeln!(out, "| what | measured | target | result |\n|---|---|---|---|");
    // MB as the targets mean them (10^6 bytes), as the main bench reads its idle-RSS target.
    let mb = |kib: u64| kib as f64 * 1024.0 / 1e6;
    let mut row = |what: &str, measured: String, target: &str, result: String| {
        let _ = writeln!(out, "| {what} | {measured} | {target} | {result} |");
    };
    row(
        "spawn → first `/healthz` 200",
        format!("{:.0} ms", ms(f.healthz)),
        "≤ 2 s",
        verdict(ms(f.healthz), 2000.0, "ms"),
    );
    row(
        "spawn → first routed request answered",
        format!("{:.0} ms", ms(f.served)),
        "≤ 2 s",
        verdict(ms(f.served), 2000.0, "ms"),
    );
    row(
        "auth files read at start-up (`switchyard_auth_file_reads_total`)",
        format!("{}", f.reads_at_start),
        &format!("{ACCOUNTS} (each once)"),
        if f.reads_at_start <= ACCOUNTS as u64 {
            "met".into()
        } else {
            format!("{}× each", f.reads_at_start as f64 / ACCOUNTS as f64)
        },
    );
    row(
        "RSS idle after start (10-account gateway)",
        format!("{:.1} MB ({:.1} MB)", mb(f.rss_idle), mb(f.small_rss_idle)),
        "≤ 64 MB",
        verdict(mb(f.rss_idle), 64.0, "MB"),
    );
    row(
        "RSS after the routing rounds / after the refresh wave",
        format!("{:.1} / {:.1} MB", mb(f.rss_after_load), mb(f.rss_after_wave)),
        "≤ 64 MB",
        verdict(mb(f.rss_after_load.max(f.rss_after_wave)), 64.0, "MB"),
    );
    row(
        &format!("`GET /v0/management/auth-files` median / max of {LISTING_CALLS}"),
        format!(
            "{:.1} / {:.1} ms ({} entries, {:.1} MB)",
            f.listing.median_ms(),
            f.listing.max_ms(),
            f.listing.entries,
            f.listing.bytes as f64 / 1e6
        ),
        "≤ 150 ms",
        verdict(f.listing.max_ms(), 150.0, "ms"),
    );
    let [small, big] = &f.routing;
    for (label, r) in [("10 accounts", small), ("5,000 accounts", big)] {
        let errors = match (&r.first_error, r.errors) {
            (Some(e), n) => format!(", {n} errors (first: {})", e.chars().take(80).collect::<String>()),
            (None, _) => String::new(),
        };
        row(
            &format!("`/v1/messages` {MODEL}, {label}: gateway CPU per request, p50"),
            format!("{:.0} µs, {:.2} ms ({} requests{errors})", r.cpu_per_request_us(), r.p50_ms(), r.completed),
            "same as 10 accounts",
            if std::ptr::eq(r, small) {
                "baseline".into()
            } else {
                let extra = r.cpu_per_request_us() - small.cpu_per_request_us();
                let share =
                    if small.cpu_per_request_us() > 0.0 { extra / small.cpu_per_request_us() * 100.0 } else { 0.0 };
                format!("{extra:+.0} µs ({share:+.0} %)")
            },
        );
    }
    row(
        "hot reload of one file: visible in `/auth-files` after",
        format!("{:.0} ms", ms(f.reload.visible_after)),
        "—",
        "(watcher debounce is 300 ms)".into(),
    );
    row(
        "hot reload of one file: auth files re-read",
        format!("{}", f.reload.files_read),
        "1",
        if f.reload.files_read <= 1 { "met".into() } else { format!("missed by {}", f.reload.files_read - 1) },
    );
    let w = &f.wave;
    row(
        "refresh wave: refreshes answered / most in flight at once",
        format!("{} / {}", w.completed, w.max_in_flight),
        &format!("{WAVE} / ≤ {REFRESH_WORKERS}"),
        match (w.completed >= WAVE as u64, w.max_in_flight <= REFRESH_WORKERS) {
            (true, true) => "met".into(),
            (done, limit) => format!(
                "{}{}",
                if done { "" } else { "not all refreshed; " },
                if limit { "" } else { "worker limit exceeded" }
            ),
        },
    );
    row(
        "request p50 / p99 before the wave",
        format!(
            "{:.2} / {:.2} ms ({} requests in {:.0} s)",
            quantile_ms(&w.before, 0.5),
            quantile_ms(&w.before, 0.99),
            w.before.len(),
            w.before_window.as_secs_f64()
        ),
        "—",
        "baseline".into(),
    );
    row(
        "request p50 / p99 during the wave",
        format!(
            "{:.2} / {:.2} ms ({} requests in {:.0} s, {} errors)",
            quantile_ms(&w.during, 0.5),
            quantile_ms(&w.during, 0.99),
            w.during.len(),
            w.during_window.as_secs_f64(),
            w.errors
        ),
        "not delayed",
        format!("p99 {:+.2} ms", quantile_ms(&w.during, 0.99) - quantile_ms(&w.before, 0.99)),
    );
    if let Some(error) = &w.first_error {
        let _ = writeln!(out, "\nFirst failed request during the wave: {error}");
    }
    let _ = writeln!(out, "\nThe 5,000-account gateway after the routing rounds: {}.", f.health_after_load);
    let _ = writeln!(out, "The 5,000-account gateway logged {} warning/error lines.", f.warnings);
    let _ = writeln!(out, "Load average (1 min) at the start / end: {} / {}.", f.load_before, load_average());
    out
}
