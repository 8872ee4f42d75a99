//! Prometheus metrics of the request path, rendered in the text exposition format (0.0.4).
//!
//! Recording is a few atomic adds under a read lock: series are found by `&str` in maps keyed by
//! provider and model, and only a provider or model seen for the first time allocates (and takes
//! the write lock). Gauges that other parts own (accounts by health state, active cooldowns,
//! refresh outcomes, dropped usage records) are not copied here: the caller reads them at scrape
//! time and hands them to [`Metrics::render`] in a [`Scrape`].

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::records::Tokens;

/// Upper bounds (seconds) of the latency and time-to-first-byte buckets.
pub const DURATION_BUCKETS: [f64; 15] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];

/// Models tracked per provider; further ones are counted as `other` (model names come from
/// config and the catalogue, but a cap keeps a scrape small whatever happens).
const MAX_MODELS_PER_PROVIDER: usize = 256;

/// The `status_class` label values, by [`status_class`] index.
const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// The `kind` label values of the token counter, in [`ProviderSeries::tokens`] order.
const TOKEN_KINDS: [&str; 5] = ["input", "output", "cached", "cache_creation", "reasoning"];

/// The label value of a request that reached no provider (refused before routing).
const UNROUTED: &str = "none";

/// Everything counted since start. Share as `Arc` (or inside one).
#[derive(Default)]
pub struct Metrics {
    /// By provider (`none` for unrouted requests).
    providers: RwLock<HashMap<String, ProviderSeries>>,
    active_streams: Arc<AtomicI64>,
}

#[derive(Default)]
struct ProviderSeries {
    /// Requests by model, per status class.
    models: HashMap<String, [AtomicU64; STATUS_CLASSES.len()]>,
    latency: Histogram,
    ttfb: Histogram,
    tokens: [AtomicU64; TOKEN_KINDS.len()],
}

/// Cumulative buckets are computed at render time; each slot here counts its own range, the
/// last one everything above the largest bound.
struct Histogram {
    counts: [AtomicU64; DURATION_BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self { counts: std::array::from_fn(|_| AtomicU64::new(0)), sum_micros: AtomicU64::new(0) }
    }
}

impl Histogram {
    fn observe(&self, value: Duration) {
        let seconds = value.as_secs_f64();
        let slot = DURATION_BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(DURATION_BUCKETS.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(value.as_micros().min(u128::from(u64::MAX)) as u64, Ordering::Relaxed);
    }
}

/// One finished request, as the metrics see it.
pub struct RequestSample<'a> {
    /// Empty when the request reached no provider.
    pub provider: &'a str,
    /// The model the client asked for; ignored for unrouted requests (it could be anything).
    pub model: &'a str,
    /// 0 when the client went away first.
    pub status: u16,
    pub latency: Duration,
    pub ttfb: Option<Duration>,
    pub tokens: &'a Tokens,
}

/// Values owned elsewhere, read when scraped.
#[derive(Debug, Default, Clone)]
pub struct Scrape {
    /// Token refreshes by outcome, since start.
    pub refreshes: Vec<(&'static str, u64)>,
    /// Accounts by health state, now.
    pub accounts: Vec<(&'static str, u64)>,
    /// Cooldowns in force now (credential-wide and per model).
    pub cooldowns_active: u64,
    /// Usage records dropped because the store fell behind, since start.
    pub records_dropped: u64,
}

/// Counts one relayed stream while it lives.
pub struct ActiveStream(Arc<AtomicI64>);

impl Drop for ActiveStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

fn status_class(status: u16) -> usize {
    match status {
        100..=199 => 0,
        200..=299 => 1,
        300..=399 => 2,
        400..=499 => 3,
        0 => 5,
        _ => 4,
    }
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a finished request: its status class, latency, time to first byte and tokens.
    pub fn request_done(&self, sample: &RequestSample<'_>) {
        let (provider, model) =
            if sample.provider.is_empty() { (UNROUTED, UNROUTED) } else { (sample.provider, sample.model) };
        let record = |series: &ProviderSeries, counts: &[AtomicU64; STATUS_CLASSES.len()]| {
            counts[status_class(sample.status)].fetch_add(1, Ordering::Relaxed);
            series.latency.observe(sample.latency);
            if let Some(ttfb) = sample.ttfb {
                series.ttfb.observe(ttfb);
            }
            let t = sample.tokens;
            for (slot, value) in series.tokens.iter().zip([t.input, t.output, t.cached, t.cache_creation, t.reasoning])
            {
                if value > 0 {
                    slot.fetch_add(value, Ordering::Relaxed);
                }
            }
        };
        {
            let providers = self.providers.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(series) = providers.get(provider)
                && let Some(counts) = series.models.get(model)
            {
                return record(series, counts);
            }
        }
        let mut providers = self.providers.write().unwrap_or_else(PoisonError::into_inner);
        let series = providers.entry(provider.to_owned()).or_default();
        let model = if series.models.len() >= MAX_MODELS_PER_PROVIDER && !series.models.contains_key(model) {
            "other"
        } else {
            model
        };
        series.models.entry(model.to_owned()).or_insert_with(|| std::array::from_fn(|_| AtomicU64::new(0)));
        record(&*series, &series.models[model]);
    }

    /// A streamed answer starts being relayed; it counts as active until the guard drops.
    pub fn stream_started(&self) -> ActiveStream {
        self.active_streams.fetch_add(1, Ordering::Relaxed);
        ActiveStream(self.active_streams.clone())
    }

    /// Streams being relayed now.
    pub fn active_streams(&self) -> i64 {
        self.active_streams.load(Ordering::Relaxed)
    }

    /// The text exposition of everything counted, plus `scrape`'s values.
    pub fn render(&self, scrape: &Scrape) -> String {
        let mut out = Exposition::default();
        let providers = self.providers.read().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<&String> = providers.keys().collect();
        names.sort();

        out.family("switchyard_requests_total", "counter", "Proxied requests by provider, model and status class.");
        for provider in &names {
            let series = &providers[*provider];
            let mut models: Vec<&String> = series.models.keys().collect();
            models.sort();
            for model in models {
                for (class, count) in STATUS_CLASSES.iter().zip(&series.models[model]) {
                    let count = count.load(Ordering::Relaxed);
                    if count > 0 {
                        let labels = [("provider", provider.as_str()), ("model", model), ("status_class", class)];
                        out.sample("switchyard_requests_total", &labels, count);
                    }
                }
            }
        }
        /// Which of a provider's histograms a family shows.
        type Pick = fn(&ProviderSeries) -> &Histogram;
        let histograms: [(&str, &str, Pick); 2] = [
            (
                "switchyard_request_duration_seconds",
                "Time from a request's arrival to its end (a stream's last byte).",
                |s| &s.latency,
            ),
            ("switchyard_time_to_first_byte_seconds", "Time from a request's arrival to its first byte sent.", |s| {
                &s.ttfb
            }),
        ];
        for (name, help, pick) in histograms {
            out.family(name, "histogram", help);
            for provider in &names {
                out.histogram(name, provider, pick(&providers[*provider]));
            }
        }
        out.family(
            "switchyard_tokens_total",
            "counter",
            "Tokens of proxied requests (reported by the upstream or estimated).",
        );
        for provider in &names {
            for (kind, count) in TOKEN_KINDS.iter().zip(&providers[*provider].tokens) {
                out.sample(
                    "switchyard_tokens_total",
                    &[("provider", provider), ("kind", kind)],
                    count.load(Ordering::Relaxed),
                );
            }
        }
        drop(providers);

        out.family("switchyard_active_streams", "gauge", "Streamed answers being relayed now.");
        out.sample("switchyard_active_streams", &[], self.active_streams().max(0) as u64);
        out.family("switchyard_token_refreshes_total", "counter", "Access-token refreshes by outcome.");
        for (outcome, count) in &scrape.refreshes {
            out.sample("switchyard_token_refreshes_total", &[("outcome", outcome)], *count);
        }
        out.family(
            "switchyard_cooldowns_active",
            "gauge",
            "Account cooldowns in force (credential-wide and per model).",
        );
        out.sample("switchyard_cooldowns_active", &[], scrape.cooldowns_active);
        out.family("switchyard_accounts", "gauge", "Accounts by health state.");
        for (state, count) in &scrape.accounts {
            out.sample("switchyard_accounts", &[("state", state)], *count);
        }
        out.family(
            "switchyard_usage_records_dropped_total",
            "counter",
            "Usage records dropped because the store fell behind.",
        );
        out.sample("switchyard_usage_records_dropped_total", &[], scrape.records_dropped);
        out.text
    }
}

/// Writes the text format: `# HELP` / `# TYPE` per family (counters named with their `_total`,
/// as the Go client writes them), one line per sample.
#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: u64) {
        self.text.push_str(name);
        self.labels(labels);
        let _ = writeln!(self.text, " {value}");
    }

    fn labels(&mut self, labels: &[(&str, &str)]) {
        if labels.is_empty() {
            return;
        }
        self.text.push('{');
        for (n, (name, value)) in labels.iter().enumerate() {
            if n > 0 {
                self.text.push(',');
            }
            let _ = write!(self.text, "{name}=\"");
            for c in value.chars() {
                match c {
                    '\\' => self.text.push_str("\\\\"),
                    '"' => self.text.push_str("\\\""),
                    '\n' => self.text.push_str("\\n"),
                    c => self.text.push(c),
                }
            }
            self.text.push('"');
        }
        self.text.push('}');
    }

    fn histogram(&mut self, name: &str, provider: &str, histogram: &Histogram) {
        let mut cumulative = 0;
        let bounds = DURATION_BUCKETS.iter().map(|b| b.to_string()).chain(["+Inf".to_owned()]);
        for (bound, count) in bounds.zip(&histogram.counts) {
            cumulative += count.load(Ordering::Relaxed);
            self.text.push_str(name);
            self.text.push_str("_bucket");
            self.labels(&[("provider", provider), ("le", &bound)]);
            let _ = writeln!(self.text, " {cumulative}");
        }
        let sum = histogram.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = write!(self.text, "{name}_sum");
        self.labels(&[("provider", provider)]);
        let _ = writeln!(self.text, " {sum}");
        let _ = write!(self.text, "{name}_count");
        self.labels(&[("provider", provider)]);
        let _ = writeln!(self.text, " {cumulative}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(provider: &'a str, model: &'a str, status: u16, tokens: &'a Tokens) -> RequestSample<'a> {
        RequestSample {
            provider,
            model,
            status,
            latency: Duration::from_millis(30),
            ttfb: Some(Duration::from_millis(7)),
            tokens,
        }
    }

    #[test]
    fn requests_are_counted_by_provider_model_and_status_class() {
        let metrics = Metrics::new();
        let tokens = Tokens { input: 10, output: 5, cached: 2, ..Tokens::default() };
        metrics.request_done(&sample("claude", "claude-sonnet-4-5", 200, &tokens));
        metrics.request_done(&sample("claude", "claude-sonnet-4-5", 200, &tokens));
        metrics.request_done(&sample("claude", "claude-sonnet-4-5", 429, &Tokens::default()));
        metrics.request_done(&sample("", "made-up-model", 400, &Tokens::default()));
        metrics.request_done(&sample("codex", "gpt-5", 0, &Tokens::default()));
        let text = metrics.render(&Scrape::default());
        for line in [
            r#"switchyard_requests_total{provider="claude",model="claude-sonnet-4-5",status_class="2xx"} 2"#,
            r#"switchyard_requests_total{provider="claude",model="claude-sonnet-4-5",status_class="4xx"} 1"#,
            r#"switchyard_requests_total{provider="none",model="none",status_class="4xx"} 1"#,
            r#"switchyard_requests_total{provider="codex",model="gpt-5",status_class="none"} 1"#,
            r#"switchyard_tokens_total{provider="claude",kind="input"} 20"#,
            r#"switchyard_tokens_total{provider="claude",kind="cached"} 4"#,
            r#"switchyard_request_duration_seconds_bucket{provider="claude",le="0.025"} 0"#,
            r#"switchyard_request_duration_seconds_bucket{provider="claude",le="0.05"} 3"#,
            r#"switchyard_request_duration_seconds_bucket{provider="claude",le="+Inf"} 3"#,
            r#"switchyard_request_duration_seconds_count{provider="claude"} 3"#,
            r#"switchyard_time_to_first_byte_seconds_bucket{provider="claude",le="0.01"} 3"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        assert!(!text.contains("made-up-model"), "unrouted models are not labels");
    }

    #[test]
    fn active_streams_follow_their_guards() {
        let metrics = Metrics::new();
        let a = metrics.stream_started();
        let b = metrics.stream_started();
        assert_eq!(metrics.active_streams(), 2);
        drop(a);
        assert_eq!(metrics.active_streams(), 1);
        drop(b);
        assert!(metrics.render(&Scrape::default()).lines().any(|l| l == "switchyard_active_streams 0"));
    }

    #[test]
    fn label_values_are_escaped() {
        let metrics = Metrics::new();
        metrics.request_done(&sample("p", "a\"b\\c\nd", 200, &Tokens::default()));
        let text = metrics.render(&Scrape::default());
        assert!(text.contains(r#"model="a\"b\\c\nd""#), "{text}");
    }

    #[test]
    fn models_past_the_cap_share_one_series() {
        let metrics = Metrics::new();
        for n in 0..MAX_MODELS_PER_PROVIDER + 3 {
            metrics.request_done(&sample("p", &format!("m{n}"), 200, &Tokens::default()));
        }
        let text = metrics.render(&Scrape::default());
        assert!(text.contains(r#"model="other",status_class="2xx"} 3"#), "{text}");
    }
}
