//! `--peers DIR` (run by `bench/peers`): Switchyard side by side with LiteLLM proxy,
//! claude-code-router and the Portkey gateway, installed under DIR, on the same fast mock and the
//! same scenarios, with the same `/proc` counters summed over each gateway's process tree.
//!
//! Every gateway (Switchyard included, as one row like the others) is a child process pinned to
//! CPU 0; the load generator and the mock are pinned to CPU 1. Each row's config points the
//! gateway's OpenAI upstream at the mock's `/v1/chat/completions`. A scenario a gateway cannot do
//! is "—"; a gateway that fails prints its first error and the run goes on.

use std::fmt::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use serde_json::json;
use tempfile::TempDir;

use crate::gateway::{cpu_time, rss_kib};
use crate::load::{self, Expect, Outcome, Settings, Target};
use crate::mock::{Mock, upstream_urls_yaml};

/// The model every peer exposes, served by the mock's OpenAI fixture.
const PEER_MODEL: &str = "bench-gpt";
/// Node and Python gateways take a while to import everything.
const STARTUP: Duration = Duration::from_secs(90);
/// LiteLLM's proxy refuses to start without one (it must start with `sk-`).
const LITELLM_MASTER_KEY: &str = "sk-bench-client-key";
const GATEWAY_CPU: usize = 0;
const BENCH_CPU: usize = 1;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// OpenAI client, OpenAI upstream.
    OpenAiPassthrough,
    /// Anthropic client (`/v1/messages`), OpenAI upstream.
    AnthropicToOpenAi,
    AnthropicToOpenAiStream,
    OpenAiPassthroughStream,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario::OpenAiPassthrough,
    Scenario::AnthropicToOpenAi,
    Scenario::AnthropicToOpenAiStream,
    Scenario::OpenAiPassthroughStream,
];

impl Scenario {
    fn title(self) -> &'static str {
        match self {
            Scenario::OpenAiPassthrough => "OpenAI chat pass-through",
            Scenario::AnthropicToOpenAi => "Anthropic → OpenAI translated",
            Scenario::AnthropicToOpenAiStream => "translated stream",
            Scenario::OpenAiPassthroughStream => "pass-through stream",
        }
    }

    fn stream(self) -> bool {
        matches!(self, Scenario::AnthropicToOpenAiStream | Scenario::OpenAiPassthroughStream)
    }

    fn anthropic_client(self) -> bool {
        matches!(self, Scenario::AnthropicToOpenAi | Scenario::AnthropicToOpenAiStream)
    }

    fn path(self) -> &'static str {
        if self.anthropic_client() { "/v1/messages" } else { "/v1/chat/completions" }
    }

    fn body(self) -> Bytes {
        let body = json!({
            "model": PEER_MODEL, "max_tokens": 64, "stream": self.stream(),
            "messages": [{"role": "user", "content": "Hi"}],
        });
        Bytes::from(serde_json::to_vec(&body).expect("JSON"))
    }

    fn expect(self) -> Expect {
        match self {
            Scenario::OpenAiPassthrough => Expect::Contains(vec!["chat.completion", "\"choices\"", "\"content\""]),
            Scenario::AnthropicToOpenAi => Expect::Contains(vec!["\"message\"", "\"content\"", "\"text\""]),
            Scenario::AnthropicToOpenAiStream => {
                Expect::Contains(vec!["message_start", "content_block_delta", "message_stop"])
            }
            Scenario::OpenAiPassthroughStream => Expect::Contains(vec!["chat.completion.chunk", "\"delta\"", "[DONE]"]),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Switchyard,
    ClaudeCodeRouter,
    Portkey,
    LiteLlm,
}

const KINDS: [Kind; 4] = [Kind::Switchyard, Kind::ClaudeCodeRouter, Kind::Portkey, Kind::LiteLlm];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Switchyard => "Switchyard",
            Kind::ClaudeCodeRouter => "claude-code-router",
            Kind::Portkey => "Portkey gateway",
            Kind::LiteLlm => "LiteLLM proxy",
        }
    }

    /// What the gateway can do; the rest is "—". claude-code-router only serves Anthropic
    /// Messages; Portkey's `/v1/messages` answers an OpenAI provider with HTTP 500 "messages is
    /// not supported by openai" (it passes Messages only to providers that speak it).
    fn supports(self, scenario: Scenario) -> bool {
        match self {
            Kind::ClaudeCodeRouter => scenario.anthropic_client(),
            Kind::Portkey => !scenario.anthropic_client(),
            _ => true,
        }
    }

    /// Extra request headers the gateway needs to know its upstream (Portkey's are per request).
    fn headers(self, scenario: Scenario, openai_base: &str) -> Vec<(String, String)> {
        let mut headers = if scenario.anthropic_client() {
            vec![("x-api-key".into(), "bench-client-key".into()), ("anthropic-version".into(), "2023-06-01".into())]
        } else {
            vec![("authorization".into(), "Bearer bench-client-key".into())]
        };
        match self {
            Kind::Portkey => {
                headers.push(("x-portkey-provider".into(), "openai".into()));
                headers.push(("x-portkey-custom-host".into(), openai_base.into()));
            }
            // LiteLLM refuses to start without a master key; it takes it in either header.
            Kind::LiteLlm => {
                headers.retain(|(name, _)| name != "authorization" && name != "x-api-key");
                headers.push(("authorization".into(), format!("Bearer {LITELLM_MASTER_KEY}")));
            }
            _ => {}
        }
        headers
    }
}

/// The paths of the installed peers under `dir` (see `bench/peers`).
struct Installed {
    dir: PathBuf,
    switchyard: PathBuf,
}

impl Installed {
    fn node_package(&self, package: &str) -> PathBuf {
        self.dir.join("node/node_modules").join(package)
    }

    fn version(&self, kind: Kind) -> Option<String> {
        let from_package_json = |package: &str| -> Option<String> {
            let text = std::fs::read_to_string(self.node_package(package).join("package.json")).ok()?;
            let value: serde_json::Value = serde_json::from_str(&text).ok()?;
            value["version"].as_str().map(str::to_owned)
        };
        match kind {
            Kind::Switchyard => {
                let output = Command::new(&self.switchyard).arg("--version").output().ok()?;
                let text = String::from_utf8_lossy(&output.stdout);
                text.split_whitespace().last().map(str::to_owned)
            }
            Kind::ClaudeCodeRouter => from_package_json("@musistudio/claude-code-router"),
            Kind::Portkey => from_package_json("@portkey-ai/gateway"),
            Kind::LiteLlm => {
                let site = std::fs::read_dir(self.dir.join("litellm-venv/lib")).ok()?.flatten().next()?.path();
                let dist = std::fs::read_dir(site.join("site-packages")).ok()?.flatten().find(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.starts_with("litellm-") && name.ends_with(".dist-info")
                })?;
                let name = dist.file_name().to_string_lossy().into_owned();
                Some(name.trim_start_matches("litellm-").trim_end_matches(".dist-info").to_owned())
            }
        }
    }
}

/// A gateway child process in its own process group (node and python fork workers: the whole
/// group is killed on drop).
struct Peer {
    child: Child,
    pid: u32,
    base: String,
    log: PathBuf,
    _dir: TempDir,
}

impl Drop for Peer {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's process group.
        unsafe {
            libc::kill(-(self.pid as i32), libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

impl Peer {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(8)..].join("\n")
    }

    /// The first log line that names an error, trimmed.
    fn first_error_line(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.log).ok()?;
        let line = text.lines().find(|l| l.contains("Error") || l.contains("error:"))?;
        Some(line.trim().chars().take(200).collect())
    }

    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The gateway's config in a fresh directory (also its `HOME`) and the command that runs it.
fn launch(kind: Kind, installed: &Installed, mock_base: &str, pin: bool) -> anyhow::Result<Peer> {
    let dir = tempfile::tempdir()?;
    let port = free_port()?;
    let home = dir.path();
    let openai_base = format!("{mock_base}/v1");
    let mut command = match kind {
        Kind::Switchyard => {
            let auth_dir = home.join("auths");
            std::fs::create_dir_all(&auth_dir)?;
            let yaml = format!(
                "host: 127.0.0.1\nport: {port}\nauth-dir: {}\n{}openai-compatibility:\n  - name: mock\n    \
                 base-url: {openai_base}\n    api-key-entries:\n      - api-key: bench-upstream-key\n    models:\n      \
                 - name: {PEER_MODEL}\n        alias: {PEER_MODEL}\n",
                auth_dir.display(),
                upstream_urls_yaml(mock_base),
            );
            let config = home.join("config.yaml");
            std::fs::write(&config, yaml)?;
            let mut command = Command::new(&installed.switchyard);
            command.arg("--config").arg(config).env("RUST_LOG", "warn");
            command
        }
        Kind::ClaudeCodeRouter => {
            let config_dir = home.join(".claude-code-router");
            std::fs::create_dir_all(&config_dir)?;
            let config = json!({
                "HOST": "127.0.0.1", "PORT": port, "LOG": false, "NON_INTERACTIVE_MODE": true,
                "Providers": [{
                    "name": "mock", "api_base_url": format!("{openai_base}/chat/completions"),
                    "api_key": "bench-upstream-key", "models": [PEER_MODEL],
                }],
                "Router": {"default": format!("mock,{PEER_MODEL}")},
            });
            std::fs::write(config_dir.join("config.json"), serde_json::to_vec_pretty(&config)?)?;
            let cli = installed.node_package("@musistudio/claude-code-router").join("dist/cli.js");
            if !cli.is_file() {
                bail!("not installed ({} missing): run bench/peers", cli.display());
            }
            let mut command = Command::new("node");
            command.arg(cli).arg("start");
            command
        }
        Kind::Portkey => {
            let server = installed.node_package("@portkey-ai/gateway").join("build/start-server.js");
            if !server.is_file() {
                bail!("not installed ({} missing): run bench/peers", server.display());
            }
            let mut command = Command::new("node");
            command.arg(server).arg(format!("--port={port}")).arg("--headless").env("NODE_ENV", "production");
            command
        }
        Kind::LiteLlm => {
            let litellm = installed.dir.join("litellm-venv/bin/litellm");
            if !litellm.is_file() {
                bail!("not installed ({} missing): run bench/peers", litellm.display());
            }
            let yaml = format!(
                "model_list:\n  - model_name: {PEER_MODEL}\n    litellm_params:\n      model: openai/{PEER_MODEL}\n      \
                 api_base: {openai_base}\n      api_key: bench-upstream-key\n\
                 general_settings:\n  master_key: {LITELLM_MASTER_KEY}\n\
                 router_settings:\n  disable_cooldowns: true\n"
            );
            let config = home.join("litellm.yaml");
            std::fs::write(&config, yaml)?;
            let mut command = Command::new(litellm);
            command
                .arg("--config")
                .arg(config)
                .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--num_workers", "1"])
                // The model cost map is fetched from the internet at start unless told otherwise.
                .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                // Else `/v1/messages` to an `openai/` model goes to the Responses API, which
                // neither the mock nor most OpenAI-compatible upstreams serve.
                .env("LITELLM_USE_CHAT_COMPLETIONS_URL_FOR_ANTHROPIC_MESSAGES", "True")
                .env("LITELLM_LOG", "ERROR");
            command
        }
    };
    let log = home.join("gateway.log");
    command
        .current_dir(home)
        .env("HOME", home)
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env_remove("MANAGEMENT_PASSWORD");
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
        command.env_remove(var);
    }
    // One file, one offset: stdout and stderr interleave instead of overwriting each other.
    let log_file = std::fs::File::create(&log)?;
    command.stdin(Stdio::null()).stdout(log_file.try_clone()?).stderr(log_file);
    command.process_group(0);
    if pin {
        // SAFETY: only async-signal-safe calls (sched_setaffinity) between fork and exec.
        unsafe {
            command.pre_exec(|| {
                pin_thread(0, GATEWAY_CPU);
                Ok(())
            });
        }
    }
    let child = command.spawn().with_context(|| format!("cannot start {}", kind.name()))?;
    let pid = child.id();
    Ok(Peer { child, pid, base: format!("http://127.0.0.1:{port}"), log, _dir: dir })
}

/// Pins thread `tid` (0: the calling thread) to one CPU; best effort.
fn pin_thread(tid: libc::pid_t, cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the calls only read it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Pins every thread of this process (load generator, mock, reqwest's resolver pool) to `cpu`;
/// threads started later inherit it from the thread that starts them.
fn pin_this_process(cpu: usize) {
    for task in std::fs::read_dir("/proc/self/task").into_iter().flatten().flatten() {
        if let Ok(tid) = task.file_name().to_string_lossy().parse::<libc::pid_t>() {
            pin_thread(tid, cpu);
        }
    }
}

/// `root` and every descendant (node/python workers), from the parent links in `/proc/*/stat`.
fn process_tree(root: u32) -> Vec<u32> {
    let mut parents = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) {
            parents.push((pid, ppid));
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    tree
}

fn tree_cpu(root: u32) -> Option<Duration> {
    let times: Vec<Duration> = process_tree(root).into_iter().filter_map(cpu_time).collect();
    (!times.is_empty()).then(|| times.into_iter().sum())
}

fn tree_rss(root: u32) -> u64 {
    process_tree(root).into_iter().filter_map(rss_kib).sum()
}

/// What one gateway did in one scenario.
enum Cell {
    Unsupported,
    Failed(String),
    Measured(Box<Measured>),
}

struct Measured {
    outcome: Outcome,
    cpu_per_request: Option<Duration>,
    rss_max_kib: u64,
}

struct PeerRow {
    kind: Kind,
    version: Option<String>,
    idle_rss_kib: Option<u64>,
    cells: Vec<(Scenario, Cell)>,
}

/// Runs every gateway through every scenario; returns the Markdown report.
pub async fn run(dir: &Path, switchyard: &Path, mock: &Mock, settings: &Settings) -> anyhow::Result<String> {
    // Absolute: each gateway runs in its own temporary directory.
    let absolute = |p: &Path| std::fs::canonicalize(p).with_context(|| p.display().to_string());
    let installed = Installed { dir: absolute(dir)?, switchyard: absolute(switchyard)? };
    let cpus = online_cpus();
    let pin = cpus >= 2;
    if pin {
        pin_this_process(BENCH_CPU);
    }
    eprintln!(
        "peers: {} (gateways on CPU {GATEWAY_CPU}, bench and mock on CPU {BENCH_CPU})",
        if pin { "pinned" } else { "not pinned: fewer than 2 CPUs" }
    );
    let openai_base = format!("{}/v1", mock.base);
    let load_before = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    let mut rows = Vec::new();
    for kind in KINDS {
        let version = installed.version(kind);
        eprintln!("peers: {} {}", kind.name(), version.as_deref().unwrap_or("(version unknown)"));
        let mut row = PeerRow { kind, version, idle_rss_kib: None, cells: Vec::new() };
        let mut peer = match launch(kind, &installed, &mock.base, pin) {
            Ok(peer) => peer,
            Err(error) => {
                let message = format!("{error:#}");
                row.cells = SCENARIOS
                    .map(|s| (s, if kind.supports(s) { Cell::Failed(message.clone()) } else { Cell::Unsupported }))
                    .into();
                rows.push(row);
                continue;
            }
        };
        let targets: Vec<(Scenario, Arc<Target>)> = SCENARIOS
            .into_iter()
            .filter(|s| kind.supports(*s))
            .map(|s| (s, Arc::new(target(kind, s, &peer.base, &openai_base))))
            .collect();
        let ready = wait_ready(&mut peer, &targets).await;
        row.idle_rss_kib = Some(tree_rss(peer.pid));
        for scenario in SCENARIOS {
            let Some((_, target)) = targets.iter().find(|(s, _)| *s == scenario) else {
                row.cells.push((scenario, Cell::Unsupported));
                continue;
            };
            if let Err(error) = &ready {
                row.cells.push((scenario, Cell::Failed(error.clone())));
                continue;
            }
            if !peer.is_running() {
                row.cells.push((scenario, Cell::Failed(format!("exited: {}", peer.log_tail()))));
                continue;
            }
            // A first request outside the window: a scenario that cannot work fails fast.
            let probe = load::one(&load::client(1), target, Instant::now()).await;
            if let Err(mut error) = probe {
                // The gateway's own log often says more than its HTTP 500 (Portkey's stream).
                if let Some(line) = peer.first_error_line() {
                    error = format!("{error}; its log: {line}");
                }
                eprintln!("peers:   {}: {error}", scenario.title());
                row.cells.push((scenario, Cell::Failed(error)));
                continue;
            }
            eprintln!(
                "peers:   {} ({} s + {} s warm-up)",
                scenario.title(),
                settings.duration.as_secs_f64(),
                settings.warmup.as_secs_f64()
            );
            let measured = measure(peer.pid, target.clone(), settings).await;
            eprintln!(
                "peers:   {:.0} req/s, p50 {:.2} ms, {} errors",
                measured.outcome.rps(),
                crate::ms(measured.outcome.latency.value_at_quantile(0.5)),
                measured.outcome.errors
            );
            row.cells.push((scenario, Cell::Measured(Box::new(measured))));
        }
        drop(peer);
        rows.push(row);
    }
    Ok(report(&rows, settings, cpus, pin, &load_before))
}

fn target(kind: Kind, scenario: Scenario, base: &str, openai_base: &str) -> Target {
    // `Target` takes static header strings: the few per-peer values are leaked once per run.
    let headers = kind
        .headers(scenario, openai_base)
        .into_iter()
        .map(|(n, v)| (&*Box::leak(n.into_boxed_str()), &*Box::leak(v.into_boxed_str())))
        .collect();
    Target {
        url: format!("{base}{}", scenario.path()),
        body: scenario.body(),
        headers,
        stream: scenario.stream(),
        expect: scenario.expect(),
    }
}

/// Until any supported scenario answers 2xx (the server is up); the error says why not.
async fn wait_ready(peer: &mut Peer, targets: &[(Scenario, Arc<Target>)]) -> Result<(), String> {
    let client = load::client(1);
    let deadline = Instant::now() + STARTUP;
    let mut last = String::from("no answer");
    loop {
        if !peer.is_running() {
            return Err(format!("exited at start: {}", peer.log_tail()));
        }
        for (_, target) in targets {
            let mut request =
                client.post(&target.url).header("content-type", "application/json").body(target.body.clone());
            for (name, value) in &target.headers {
                request = request.header(*name, *value);
            }
            match request.send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    last = format!("HTTP {status}: {}", body.chars().take(200).collect::<String>());
                }
                Err(error) => last = format!("{error:#}"),
            }
        }
        // A gateway that answers but refuses everything is up: its scenarios print the refusal.
        if last.starts_with("HTTP ") {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("not serving after {STARTUP:?} (last: {last}): {}", peer.log_tail()));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn measure(pid: u32, target: Arc<Target>, settings: &Settings) -> Measured {
    let client = load::client(settings.concurrency);
    let (window_tx, window_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let sampler = tokio::spawn(async move {
        let mut rss_max = tree_rss(pid);
        let mut window_rx = window_rx;
        let mut cpu_start = None;
        let mut interval = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = &mut stop_rx => break,
                Ok(()) = &mut window_rx, if cpu_start.is_none() => cpu_start = tree_cpu(pid),
                _ = interval.tick() => rss_max = rss_max.max(tree_rss(pid)),
            }
        }
        (cpu_start, rss_max)
    });
    let outcome = load::run(&client, target, settings, window_tx).await;
    let cpu_end = tree_cpu(pid);
    let _ = stop_tx.send(());
    let (cpu_start, rss_max_kib) = sampler.await.unwrap_or((None, 0));
    let cpu_per_request = match (cpu_start, cpu_end) {
        (Some(start), Some(end)) if outcome.completed > 0 => Some(end.saturating_sub(start) / outcome.completed as u32),
        _ => None,
    };
    Measured { outcome, cpu_per_request, rss_max_kib }
}

fn online_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    usize::try_from(n).unwrap_or(1)
}

fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn report(rows: &[PeerRow], settings: &Settings, cpus: usize, pin: bool, load_before: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n## bench/peers, {}\n", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"));
    let _ = writeln!(
        out,
        "Machine: {cpus} CPUs ({}), {}; 1-minute load average {load_before} at the start. Concurrency {}, {} s \
         warm-up + {} s measured per cell, fast mock (OpenAI fixture on `/v1/chat/completions`). CPU and RSS are \
         summed over each gateway's process tree from `/proc`. Ratios are to Switchyard in the same run: req/s ÷ \
         (how many times fewer), CPU × (how many times more).\n",
        crate::cpu_model(),
        if pin { "gateway pinned to CPU 0, load generator and mock on CPU 1" } else { "not pinned" },
        settings.concurrency,
        settings.warmup.as_secs_f64(),
        settings.duration.as_secs_f64(),
    );
    let reference = rows.iter().find(|r| r.kind == Kind::Switchyard);
    let reference_cell = |scenario: Scenario| -> Option<&Measured> {
        reference?.cells.iter().find_map(|(s, c)| match c {
            Cell::Measured(m) if *s == scenario && m.outcome.completed > 0 => Some(&**m),
            _ => None,
        })
    };
    let _ = write!(out, "| gateway |");
    for scenario in SCENARIOS {
        let _ = write!(out, " {} |", scenario.title());
    }
    let _ = writeln!(out, " CPU per request (same order) | max RSS under load |");
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|");
    let mut notes = Vec::new();
    for row in rows {
        let label = match &row.version {
            Some(version) => format!("{} {version}", row.kind.name()),
            None => row.kind.name().to_owned(),
        };
        let _ = write!(out, "| {label} |");
        let mut cpu = Vec::new();
        let mut rss_max = 0;
        for (scenario, cell) in &row.cells {
            match cell {
                Cell::Unsupported => {
                    let _ = write!(out, " — |");
                }
                Cell::Failed(error) => {
                    let _ = write!(out, " (failed) |");
                    notes.push(format!("{label}, {}: {}", scenario.title(), one_line(error)));
                }
                Cell::Measured(m) => {
                    rss_max = rss_max.max(m.rss_max_kib);
                    let rps = m.outcome.rps();
                    let ratio = match reference_cell(*scenario) {
                        Some(r) if row.kind != Kind::Switchyard && rps > 0.0 => {
                            format!(" (÷{:.1})", r.outcome.rps() / rps)
                        }
                        _ => String::new(),
                    };
                    let errors =
                        if m.outcome.errors > 0 { format!(", **{} errors**", m.outcome.errors) } else { String::new() };
                    let _ = write!(out, " {} req/s{ratio}{errors} |", thousands(rps));
                    if let Some(first) = &m.outcome.first_error {
                        notes.push(format!(
                            "{label}, {}: {} errors, first: {}",
                            scenario.title(),
                            m.outcome.errors,
                            one_line(first)
                        ));
                    }
                    if let Some(c) = m.cpu_per_request {
                        let ratio = match reference_cell(*scenario).and_then(|r| r.cpu_per_request) {
                            Some(r) if row.kind != Kind::Switchyard && !r.is_zero() => {
                                format!(" (×{:.1})", c.as_secs_f64() / r.as_secs_f64())
                            }
                            _ => String::new(),
                        };
                        cpu.push(format!("{}{ratio}", thousands(c.as_secs_f64() * 1e6)));
                    }
                }
            }
        }
        let cpu = if cpu.is_empty() { "—".to_owned() } else { format!("{} µs", cpu.join(" / ")) };
        let rss = if rss_max > 0 { format!("{:.0} MB", rss_max as f64 / 1024.0) } else { "—".to_owned() };
        let _ = writeln!(out, " {cpu} | {rss} |");
    }
    let _ = writeln!(out, "\nDetail (p50 / p99 ms, ok, idle RSS):\n");
    let _ = writeln!(
        out,
        "| gateway | scenario | req/s | p50 ms | p99 ms | CPU µs/req | max RSS MiB | idle RSS MiB | ok | errors |"
    );
    let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for row in rows {
        for (scenario, cell) in &row.cells {
            let Cell::Measured(m) = cell else { continue };
            let o = &m.outcome;
            let q = |q: f64| {
                if o.latency.is_empty() {
                    "—".into()
                } else {
                    format!("{:.2}", crate::ms(o.latency.value_at_quantile(q)))
                }
            };
            let _ = writeln!(
                out,
                "| {} | {} | {:.0} | {} | {} | {} | {:.1} | {} | {} | {} |",
                row.kind.name(),
                scenario.title(),
                o.rps(),
                q(0.5),
                q(0.99),
                m.cpu_per_request.map_or("—".into(), |c| format!("{:.0}", c.as_secs_f64() * 1e6)),
                m.rss_max_kib as f64 / 1024.0,
                row.idle_rss_kib.map_or("—".into(), |k| format!("{:.1}", k as f64 / 1024.0)),
                o.completed,
                o.errors,
            );
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "\nFailures:\n");
        for note in notes {
            let _ = writeln!(out, "- {note}");
        }
    }
    out
}

fn one_line(text: &str) -> String {
    let text: String = text.chars().take(300).collect();
    text.replace('\n', " ⏎ ").replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_tree_holds_the_grandchildren() {
        // A shell that forks a sleeper: the tree must hold both, as for node/python workers.
        let mut child = Command::new("sh").args(["-c", "sleep 30 & wait"]).process_group(0).spawn().expect("sh");
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut tree = process_tree(pid);
        while tree.len() < 2 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            tree = process_tree(pid);
        }
        // SAFETY: kill(2) on the group of the child just spawned.
        unsafe {
            libc::kill(-(pid as i32), libc::SIGKILL);
        }
        let _ = child.wait();
        assert_eq!(tree[0], pid);
        assert_eq!(tree.len(), 2, "shell and sleeper: {tree:?}");
        assert_eq!(process_tree(u32::MAX), vec![u32::MAX]);
    }

    #[test]
    fn report_marks_unsupported_and_failed_cells_and_ratios() {
        let measured = |rps_count: u64, cpu_us: u64| {
            let mut outcome = Outcome {
                latency: load::histogram(),
                ttfb: load::histogram(),
                completed: rps_count,
                errors: 0,
                first_error: None,
                finished: rps_count,
                window: Duration::from_secs(1),
            };
            let _ = outcome.latency.record(1000);
            Cell::Measured(Box::new(Measured {
                outcome,
                cpu_per_request: Some(Duration::from_micros(cpu_us)),
                rss_max_kib: 20 * 1024,
            }))
        };
        let rows = vec![
            PeerRow {
                kind: Kind::Switchyard,
                version: Some("0.1.0".into()),
                idle_rss_kib: Some(1024),
                cells: vec![(Scenario::AnthropicToOpenAi, measured(2000, 100))],
            },
            PeerRow {
                kind: Kind::ClaudeCodeRouter,
                version: Some("2.0.0".into()),
                idle_rss_kib: Some(1024),
                cells: vec![
                    (Scenario::OpenAiPassthrough, Cell::Unsupported),
                    (Scenario::AnthropicToOpenAi, measured(500, 1000)),
                    (Scenario::AnthropicToOpenAiStream, Cell::Failed("stream failed".into())),
                ],
            },
        ];
        let settings = Settings { concurrency: 16, warmup: Duration::ZERO, duration: Duration::from_secs(1) };
        let text = report(&rows, &settings, 2, true, "0.5");
        let line = text.lines().find(|l| l.starts_with("| claude-code-router 2.0.0 |")).expect("peer row");
        assert_eq!(line, "| claude-code-router 2.0.0 | — | 500 req/s (÷4.0) | (failed) | 1,000 (×10.0) µs | 20 MB |");
        assert!(text.contains("- claude-code-router 2.0.0, translated stream: stream failed"), "{text}");
        assert!(text.contains("| Switchyard 0.1.0 | 2,000 req/s | 100 µs | 20 MB |"), "{text}");
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(thousands(12_300.0), "12,300");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
    }
}
