//! `--open-streams N`: N streams open at the same time through one proxy, the upstream sending an
//! event every `--event-delay-ms`. What it costs to hold them: the proxy's peak RSS with every
//! stream open, and whether any request failed. Switchyard and the floor proxy are measured the
//! same way.
//!
//! The upstream is the mock's HTTPS HTTP/2 listener, so all N streams share one upstream
//! connection as they would to a real provider; on HTTP/1.1 each would hold its own socket and N
//! client sockets plus N upstream sockets would not fit this machine's 20,000-descriptor limit.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::Semaphore;

use crate::MODEL;
use crate::gateway::{Gateway, rss_kib};
use crate::load::{self, Expect, Target};
use crate::mock::{self, Mock};

/// Connections being set up at once (the listen backlog is 1024).
const CONNECTING_AT_ONCE: usize = 256;

pub struct OpenStreams {
    pub streams: usize,
    pub event_delay: Duration,
}

/// One proxy's result.
struct Held {
    name: &'static str,
    idle_rss_kib: Option<u64>,
    peak_rss_kib: u64,
    /// Most streams open (headers received, body not finished) at one time.
    peak_open: usize,
    ok: usize,
    failed: usize,
    first_error: Option<String>,
    took: Duration,
}

pub async fn run(binary: &std::path::Path, mock: &Mock, settings: &OpenStreams) -> anyhow::Result<String> {
    let base = mock.https_h2.as_deref().context("the fast mock's HTTPS HTTP/2 listener is needed")?;
    let mut results = Vec::new();
    for name in ["switchyard", "floor proxy"] {
        let mut child = if name == "switchyard" {
            // Every client comes from 127.0.0.1: the per-IP cap would refuse most of them.
            Gateway::spawn(binary, &mock::upstream_urls_yaml(base), "max-connections-per-ip: 0\n")?
        } else {
            Gateway::spawn_floor(base)?
        };
        child.wait_ready(&load::client(1)).await.with_context(|| format!("starting {name}"))?;
        eprintln!(
            "bench: {} streams through {name} (pid {}), an event every {:?}",
            settings.streams, child.pid, settings.event_delay
        );
        let target = Arc::new(Target {
            url: format!("{}/v1/messages", child.base),
            body: scenario_body(),
            headers: vec![("x-api-key", "bench-client-key"), ("anthropic-version", "2023-06-01")],
            stream: true,
            expect: Expect::Contains(vec!["message_start", "message_stop"]),
        });
        let held = hold(name, &child, target, settings.streams).await;
        eprintln!(
            "bench:   peak {} open, peak RSS {:.1} MiB, {} ok, {} failed",
            held.peak_open,
            held.peak_rss_kib as f64 / 1024.0,
            held.ok,
            held.failed
        );
        results.push(held);
        if !child.is_running() {
            anyhow::bail!("{name} died holding the streams:\n{}", child.log_tail());
        }
    }
    Ok(render(settings, &results))
}

fn scenario_body() -> bytes::Bytes {
    let body = serde_json::json!({
        "model": MODEL, "max_tokens": 64, "stream": true, "messages": [{"role": "user", "content": "Hi"}],
    });
    bytes::Bytes::from(serde_json::to_vec(&body).expect("JSON"))
}

async fn hold(name: &'static str, child: &Gateway, target: Arc<Target>, streams: usize) -> Held {
    let pid = child.pid;
    let idle_rss_kib = rss_kib(pid);
    // Each stream needs its own connection: no pooling limit below N.
    let client = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .pool_max_idle_per_host(streams)
        .timeout(Duration::from_secs(600))
        .build()
        .expect("reqwest client");
    let open = Arc::new(AtomicUsize::new(0));
    let peak_open = Arc::new(AtomicUsize::new(0));
    let connecting = Arc::new(Semaphore::new(CONNECTING_AT_ONCE));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(streams);
    for _ in 0..streams {
        let (client, target, open, peak_open, connecting) =
            (client.clone(), target.clone(), open.clone(), peak_open.clone(), connecting.clone());
        tasks.push(tokio::spawn(async move {
            let permit = connecting.acquire_owned().await.expect("semaphore open");
            let answered = AtomicBool::new(false);
            let result = load::one_with(&client, &target, Instant::now(), || {
                drop(permit);
                answered.store(true, Ordering::Relaxed);
                let now = open.fetch_add(1, Ordering::Relaxed) + 1;
                peak_open.fetch_max(now, Ordering::Relaxed);
            })
            .await;
            if answered.load(Ordering::Relaxed) {
                open.fetch_sub(1, Ordering::Relaxed);
            }
            result.map(|_| ())
        }));
    }
    // RSS while the streams are held, every 100 ms.
    let done = Arc::new(AtomicBool::new(false));
    let sampling = {
        let done = done.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid).unwrap_or(0));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            peak
        })
    };
    let (mut ok, mut failed, mut first_error) = (0, 0, None);
    for task in tasks {
        match task.await {
            Ok(Ok(())) => ok += 1,
            Ok(Err(error)) => {
                failed += 1;
                first_error.get_or_insert(error);
            }
            Err(error) => {
                failed += 1;
                first_error.get_or_insert(format!("task: {error}"));
            }
        }
    }
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let peak_rss_kib = sampling.await.unwrap_or(0);
    Held {
        name,
        idle_rss_kib,
        peak_rss_kib,
        peak_open: peak_open.load(Ordering::Relaxed),
        ok,
        failed,
        first_error,
        took,
    }
}

fn render(settings: &OpenStreams, results: &[Held]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n## switchyard-bench --open-streams {}, {}\n\nAn event every {} ms from the mock's HTTPS HTTP/2 \
         listener; clients on HTTP/1.1, one connection per stream.\n",
        settings.streams,
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        settings.event_delay.as_millis()
    );
    let _ = writeln!(
        out,
        "| Proxy | streams | most open at once | ok | failed | took s | idle RSS MiB | peak RSS MiB | KiB per open stream |"
    );
    let _ = writeln!(out, "|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for held in results {
        let idle = held.idle_rss_kib.unwrap_or(0);
        let per_stream = held.peak_rss_kib.saturating_sub(idle) as f64 / held.peak_open.max(1) as f64;
        let failed = if held.failed > 0 { format!("**{}**", held.failed) } else { "0".into() };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {failed} | {:.1} | {:.1} | {:.1} | {per_stream:.1} |",
            held.name,
            settings.streams,
            held.peak_open,
            held.ok,
            held.took.as_secs_f64(),
            idle as f64 / 1024.0,
            held.peak_rss_kib as f64 / 1024.0,
        );
    }
    for held in results {
        if let Some(error) = &held.first_error {
            let _ = writeln!(out, "\n- {}: first failure: `{}`", held.name, error.replace('`', "'"));
        }
    }
    if let Some(switchyard) = results.iter().find(|h| h.name == "switchyard") {
        let mb = switchyard.peak_rss_kib as f64 * 1024.0 / 1e6;
        let met = mb <= 150.0 && switchyard.failed == 0 && switchyard.peak_open == settings.streams;
        let _ = writeln!(
            out,
            "\nTarget: {} streams open at once ≤ 150 MB RSS with no request failing: {mb:.1} MB peak, {} failed, {} open at \
             once — {}.",
            settings.streams,
            switchyard.failed,
            switchyard.peak_open,
            if met { "met" } else { "**missed**" }
        );
    }
    out
}
