//! The Markdown report: one table of every row, each gateway row as a ratio to the floor proxy on
//! the same scenario and upstream, then the targets, each met or missed by how much.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::load::Outcome;
use crate::{Scenario, Upstream, cpu_model, ms};

/// Who answered the load generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// Straight at the mock.
    Direct,
    /// The minimal proxy on the same HTTP stack.
    Floor,
    Switchyard,
}

impl Via {
    pub fn label(self) -> &'static str {
        match self {
            Via::Direct => "direct to mock",
            Via::Floor => "floor proxy",
            Via::Switchyard => "switchyard",
        }
    }
}

pub struct Row {
    pub scenario: Scenario,
    /// The upstream transport (none for the direct row).
    pub upstream: Option<Upstream>,
    pub via: Via,
    pub outcome: Outcome,
    /// CPU time (user + system) of the process in the path per completed request in the window.
    pub cpu_per_request: Option<Duration>,
    /// Highest VmRSS of that process sampled during the row, KiB.
    pub rss_max: Option<u64>,
    /// Upstream requests per client request seen by the mock in this row (fast mock only).
    pub upstream_per_request: Option<f64>,
}

/// What the heading says about the run.
pub struct Context {
    pub concurrency: usize,
    pub warmup: f64,
    pub duration: f64,
    pub mock: String,
    pub mock_threads: usize,
    pub client_threads: usize,
    pub event_delay_ms: u64,
    pub binary: PathBuf,
    /// Cores the bench could use before pinning itself.
    pub cores: usize,
    pub pinned: bool,
    pub load_before: String,
    /// Idle RSS (KiB) of switchyard and of the floor proxy, per upstream.
    pub idle_rss: Vec<(Upstream, Option<u64>, Option<u64>)>,
}

/// The targets (see bench/README.md).
const PASS_THROUGH_CPU_RATIO: f64 = 1.2;
const TRANSLATED_CPU_RATIO: f64 = 1.6;
const ADDED_P50_MS: f64 = 0.100;
/// Megabytes of 10^6 bytes, as the issue states it.
const IDLE_RSS_MB: f64 = 12.0;

fn p50(h: &Histogram<u64>) -> Option<f64> {
    (!h.is_empty()).then(|| ms(h.value_at_quantile(0.5)))
}

fn quantile(h: &Histogram<u64>, q: f64) -> String {
    if h.is_empty() { "—".to_owned() } else { format!("{:.2}", ms(h.value_at_quantile(q))) }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

impl Row {
    fn same_case(&self, other: &Row) -> bool {
        self.scenario.id == other.scenario.id && self.upstream == other.upstream
    }
}

fn find<'a>(rows: &'a [Row], like: &Row, via: Via) -> Option<&'a Row> {
    rows.iter().find(|r| r.via == via && r.scenario.id == like.scenario.id && (via == Via::Direct || r.same_case(like)))
}

/// p50 of `row` minus p50 of the direct row of its scenario.
fn added_p50(rows: &[Row], row: &Row) -> Option<f64> {
    Some(p50(&row.outcome.latency)? - p50(&find(rows, row, Via::Direct)?.outcome.latency)?)
}

pub fn render(context: &Context, rows: &[Row]) -> String {
    let cores = context.cores;
    let mut out = String::new();
    let _ = writeln!(out, "\n## switchyard-bench, {}\n", chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"));
    let placement = if context.pinned {
        "switchyard and the floor proxy pinned to CPU 0, the load generator and the mock to CPU 1".to_owned()
    } else {
        format!("{cores} cores shared by the load generator, the mock and the proxy under test (not pinned)")
    };
    let idle: Vec<String> = context
        .idle_rss
        .iter()
        .map(|(upstream, gateway, floor)| {
            format!(
                "{}: switchyard {:.1} MiB, floor {:.1} MiB",
                upstream.label(),
                gateway.unwrap_or(0) as f64 / 1024.0,
                floor.unwrap_or(0) as f64 / 1024.0
            )
        })
        .collect();
    let _ = writeln!(
        out,
        "Machine: {} ({}); {placement}; 1-minute load average {} when the run began. Settings: concurrency {}, \
         {} s warm-up + {} s measured per row, mock `{}` (mock runtime threads {}, client runtime threads {}, event \
         delay {} ms), `{}` with `RUST_LOG=warn`. Idle RSS after the first request: {}.\n",
        cpu_model(),
        format_args!("{cores} cores"),
        context.load_before,
        context.concurrency,
        context.warmup,
        context.duration,
        context.mock,
        context.mock_threads,
        context.client_threads,
        context.event_delay_ms,
        context.binary.display(),
        idle.join("; "),
    );
    let _ = writeln!(
        out,
        "| Scenario | Upstream | Path | req/s | p50 ms | p99 ms | TTFB p50 ms | added p50 ms | CPU µs/req \
         | CPU × floor | added p50 × floor | p50 over floor ms | max RSS MiB | ok | errors |"
    );
    let _ = writeln!(out, "|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for row in rows {
        let o = &row.outcome;
        let floor = (row.via == Via::Switchyard).then(|| find(rows, row, Via::Floor)).flatten();
        let dash = || "—".to_owned();
        let added = (row.via != Via::Direct).then(|| added_p50(rows, row)).flatten();
        let cpu_ratio = floor
            .and_then(|f| Some(micros(row.cpu_per_request?) / micros(f.cpu_per_request?)))
            .map_or_else(dash, |r| format!("{r:.2}×"));
        let added_ratio = floor
            .and_then(|f| {
                let floor_added = added_p50(rows, f)?;
                (floor_added > 0.0).then(|| Some(added? / floor_added)).flatten()
            })
            .map_or_else(dash, |r| format!("{r:.2}×"));
        let over_floor = floor
            .and_then(|f| Some(p50(&o.latency)? - p50(&f.outcome.latency)?))
            .map_or_else(dash, |d| format!("{d:+.3}"));
        let errors = if o.errors > 0 { format!("**{}**", o.errors) } else { "0".to_owned() };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.scenario.title(),
            row.upstream.map_or("—", Upstream::label),
            row.via.label(),
            o.rps(),
            quantile(&o.latency, 0.5),
            quantile(&o.latency, 0.99),
            if row.scenario.stream { quantile(&o.ttfb, 0.5) } else { dash() },
            added.map_or_else(dash, |a| format!("{a:+.2}")),
            row.cpu_per_request.map_or_else(dash, |d| format!("{:.0}", micros(d))),
            cpu_ratio,
            added_ratio,
            over_floor,
            row.rss_max.map_or_else(dash, |k| format!("{:.1}", k as f64 / 1024.0)),
            o.completed,
            errors,
        );
    }
    let mut notes = Vec::new();
    for row in rows {
        let name = format!(
            "{} via {}{}",
            row.scenario.id,
            row.via.label(),
            row.upstream.map(|u| format!(" ({})", u.label())).unwrap_or_default()
        );
        if let Some(error) = &row.outcome.first_error {
            notes.push(format!("- {name}: {} failed, first: `{}`", row.outcome.errors, error.replace('`', "'")));
        }
        if let Some(ratio) = row.upstream_per_request
            && (ratio - 1.0).abs() > 0.01
        {
            notes.push(format!("- {name}: {ratio:.2} upstream requests per client request"));
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(out, "\n{}", notes.join("\n"));
    }
    out.push_str(&targets(context, rows));
    out
}

fn verdict(met: bool, by: String) -> String {
    if met { "met".to_owned() } else { format!("**missed** by {by}") }
}

/// The targets against this run.
fn targets(context: &Context, rows: &[Row]) -> String {
    let mut out = String::from("\n| Target | Case | Measured | |\n|---|---|--:|---|\n");
    for row in rows.iter().filter(|r| r.via == Via::Switchyard) {
        let case = format!("{}, {}", row.scenario.id, row.upstream.map_or("—", Upstream::label));
        let Some(floor) = find(rows, row, Via::Floor) else { continue };
        if let (Some(own), Some(base)) = (row.cpu_per_request, floor.cpu_per_request) {
            let ratio = micros(own) / micros(base);
            let limit = if row.scenario.translated { TRANSLATED_CPU_RATIO } else { PASS_THROUGH_CPU_RATIO };
            let _ = writeln!(
                out,
                "| CPU ≤ {limit}× floor | {case} | {ratio:.2}× | {} |",
                verdict(ratio <= limit, format!("{:.0}%", (ratio / limit - 1.0) * 100.0))
            );
        }
        if let (Some(own), Some(base)) = (p50(&row.outcome.latency), p50(&floor.outcome.latency)) {
            let over = own - base;
            let _ = writeln!(
                out,
                "| p50 over the floor ≤ {:.0} µs | {case} | {:+.0} µs | {} |",
                ADDED_P50_MS * 1000.0,
                over * 1000.0,
                verdict(over <= ADDED_P50_MS, format!("{:.0} µs", (over - ADDED_P50_MS) * 1000.0))
            );
        }
    }
    for (upstream, gateway, _) in &context.idle_rss {
        if let Some(kib) = gateway {
            let mb = *kib as f64 * 1024.0 / 1e6;
            let _ = writeln!(
                out,
                "| idle RSS ≤ {IDLE_RSS_MB} MB | switchyard, {} | {mb:.1} MB | {} |",
                upstream.label(),
                verdict(mb <= IDLE_RSS_MB, format!("{:.1} MB", mb - IDLE_RSS_MB))
            );
        }
    }
    out
}
