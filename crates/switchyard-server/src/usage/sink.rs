//! The end of one proxied request: its metrics (always), its [`UsageRecord`] for the store
//! (`usage-statistics-enabled: true`), its usage-queue record (also only with management
//! enabled) and its request log file (`request-log: true`, or an `error-*.log` when it failed).
//! Everything here is already scrubbed or redacted: headers through `switchyard_redact::header`,
//! bodies through the attempt's scrubber (answers) or `switchyard_redact::json`/`text` (the
//! client's request), failure summaries through `switchyard_redact::failure_summary`.
//!
//! [`UsageRecord`]: switchyard_usage::UsageRecord

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use switchyard_config::Config;
use switchyard_usage::Tokens;
use switchyard_usage::metrics::{ActiveStream, RequestSample};
use switchyard_usage::request_files::{self, RequestRecord, capped_extend};

use super::UsageState;
use super::record::{failure, queue_tokens, usage_record};

/// What a request log needs beyond the request log line's fields.
pub(crate) struct RequestSink {
    usage: Arc<UsageState>,
    /// Hand a [`UsageRecord`](switchyard_usage::UsageRecord) to the store.
    records: bool,
    /// Push a usage-queue record.
    queue: bool,
    /// Write a request log (`Some(request_log)`), or nothing when neither setting asks for one.
    files: Option<FileSettings>,
    pub started_at: DateTime<Utc>,
    pub method: String,
    pub endpoint: String,
    user_agent: String,
    forwarded_for: String,
    /// The request's headers, kept (their values are shared, not copied) only when a request or
    /// error log may be written; redacted only when one is.
    headers: HeaderMap,
    /// The client's bytes as received (a cheap shared handle); scrubbed only if a file is written.
    request_body: Bytes,
    response_body: Vec<u8>,
}

#[derive(Clone, Copy)]
struct FileSettings {
    request_log: bool,
    error_logs_max_files: usize,
    /// `logs-max-total-size-mb` in bytes; 0 = no cap.
    max_total_bytes: u64,
}

/// The request-log line's fields the sink reads when the request ends.
pub(crate) struct Finished<'a> {
    pub request_id: &'a str,
    pub client_key: &'a str,
    pub client_key_hash: &'a str,
    pub client_ip: &'a str,
    pub requested_model: &'a str,
    pub upstream_model: &'a str,
    pub provider: &'a str,
    pub auth_index: &'a str,
    pub account: &'a str,
    pub auth_type: &'a str,
    pub attempts: u32,
    pub status: u16,
    pub generate: bool,
    pub dialect_in: &'a str,
    /// Empty when no attempt was made.
    pub dialect_out: &'a str,
    pub stream: bool,
    pub latency: Duration,
    pub latency_ms: u64,
    /// `None` when nothing reached the client.
    pub ttfb: Option<Duration>,
    pub ttfb_ms: Option<u64>,
    pub tokens: Tokens,
    /// Why the request failed (our message, already scrubbed).
    pub error: Option<&'a str>,
    /// The upstream's error body (or error event) behind that failure, credentials scrubbed.
    pub upstream_error: Option<&'a str>,
}

impl Finished<'_> {
    pub fn failed(&self) -> bool {
        self.status >= 400 || self.status == 0 || self.error.is_some()
    }
}

impl RequestSink {
    pub fn new(
        usage: Arc<UsageState>,
        config: &Config,
        management_enabled: bool,
        method: &str,
        endpoint: &str,
        headers: &HeaderMap,
    ) -> Self {
        // Our own records (monitoring) follow `usage-store.enabled`; CPA's key governs its queue.
        let records = config.usage_store.enabled;
        let queue = management_enabled && config.usage_statistics_enabled;
        let error_logs_max_files = config.error_logs_max_files.max(0) as usize;
        let files = (config.request_log || error_logs_max_files > 0).then_some(FileSettings {
            request_log: config.request_log,
            error_logs_max_files,
            max_total_bytes: (config.logs_max_total_size_mb.max(0) as u64).saturating_mul(1024 * 1024),
        });
        // Only what some output needs is copied out of the request.
        let header = |name: &str| {
            let value = headers.get(name).and_then(|v| v.to_str().ok()).filter(|_| queue);
            value.unwrap_or_default().to_owned()
        };
        let kept = files.map_or_else(HeaderMap::new, |_| headers.clone());
        Self {
            usage,
            records,
            queue,
            files,
            started_at: Utc::now(),
            method: method.to_owned(),
            endpoint: endpoint.to_owned(),
            user_agent: header("user-agent"),
            forwarded_for: header("x-forwarded-for"),
            headers: kept,
            request_body: Bytes::new(),
            response_body: Vec::new(),
        }
    }

    /// Counts a streamed answer as active in the metrics until the guard drops.
    pub fn stream_started(&self) -> ActiveStream {
        self.usage.metrics.stream_started()
    }

    /// The client's request body, for the request log.
    pub fn request_body(&mut self, bytes: &Bytes) {
        if self.files.is_some() {
            self.request_body = bytes.clone();
        }
    }

    /// Bytes relayed to the client (already scrubbed), for the request log.
    pub fn response_bytes(&mut self, bytes: &[u8]) {
        if self.files.is_some() {
            capped_extend(&mut self.response_body, bytes);
        }
    }

    pub fn wants_response(&self) -> bool {
        self.files.is_some()
    }

    pub fn finish(self, done: Finished<'_>) {
        let failed = done.failed();
        self.usage.metrics.request_done(&RequestSample {
            provider: done.provider,
            model: done.requested_model,
            status: done.status,
            latency: done.latency,
            ttfb: done.ttfb,
            tokens: &done.tokens,
        });
        let summary = failure(&done);
        if self.records {
            self.usage.recorder.record(usage_record(&done, self.started_at, &self.endpoint));
        }
        if self.queue {
            let record = json!({
                "timestamp": self.started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "latency_ms": done.latency_ms,
                "ttft_ms": done.ttfb_ms.unwrap_or(done.latency_ms),
                "source": done.account,
                "auth_index": done.auth_index,
                "client_ip": done.client_ip,
                "x_forwarded_for": switchyard_redact::text(&self.forwarded_for),
                "user_agent": switchyard_redact::text(&self.user_agent),
                "tokens": queue_tokens(&done.tokens),
                "failed": failed,
                "generate": done.generate,
                "fail": {
                    "status_code": if failed { done.status } else { 0 },
                    "body": summary.as_deref().unwrap_or_default(),
                },
                "accounting_version": 1,
                "token_breakdown": {},
                "provider": done.provider,
                "executor_type": done.provider,
                "model": done.upstream_model,
                "alias": done.requested_model,
                "endpoint": self.endpoint,
                "auth_type": done.auth_type,
                // The client key's alias (`key-<n>`), never the key.
                "api_key": done.client_key,
                "request_id": done.request_id,
                "reasoning_effort": "",
                "service_tier": "",
            });
            self.usage.queue.push(record, Instant::now());
        }
        let Some(files) = self.files else { return };
        if !files.request_log && !failed {
            return;
        }
        let record = RequestRecord {
            request_id: done.request_id.to_owned(),
            method: self.method,
            endpoint: self.endpoint,
            started: Some(self.started_at),
            request_headers: redacted_headers(&self.headers),
            request_body: Vec::new(),
            status: done.status,
            provider: done.provider.to_owned(),
            auth_index: done.auth_index.to_owned(),
            model: done.requested_model.to_owned(),
            upstream_model: done.upstream_model.to_owned(),
            attempts: done.attempts,
            latency_ms: done.latency_ms,
            response_body: self.response_body,
            error: done.error.map(str::to_owned),
        };
        let dir = self.usage.log_dir.clone();
        let raw_request = self.request_body;
        let write = move || {
            let record = RequestRecord { request_body: scrubbed_request(&raw_request), ..record };
            if let Err(error) = request_files::write(&dir, &record, files.request_log, files.error_logs_max_files) {
                tracing::warn!(dir = %dir.display(), %error, "could not write the request log");
            }
            if files.max_total_bytes > 0 {
                let _ = switchyard_usage::log_writer::enforce_total_cap(&dir, files.max_total_bytes);
            }
        };
        // Off the reactor: the file write may be slow.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn_blocking(write);
            }
            Err(_) => write(),
        }
    }
}

/// Every header as text, credentials masked (`switchyard_redact::header`).
fn redacted_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes());
            (name.as_str().to_owned(), switchyard_redact::header(name.as_str(), &value))
        })
        .collect()
}

/// The client's body with secret-looking fields masked (JSON), or scrubbed as text, capped.
fn scrubbed_request(bytes: &[u8]) -> Vec<u8> {
    let scrubbed = match serde_json::from_slice::<Value>(bytes) {
        Ok(value) => serde_json::to_vec_pretty(&switchyard_redact::json(&value)).unwrap_or_default(),
        Err(_) => switchyard_redact::text(&String::from_utf8_lossy(bytes)).into_bytes(),
    };
    let mut out = Vec::new();
    capped_extend(&mut out, &scrubbed);
    out
}
