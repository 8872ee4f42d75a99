//! The end of one proxied request: its usage-queue record (when management is enabled and
//! `usage-statistics-enabled: true`) and its request log file (`request-log: true`, or an
//! `error-*.log` when it failed). Everything here is already scrubbed or redacted: headers through
//! `switchyard_redact::header`, bodies through the attempt's scrubber (answers) or
//! `switchyard_redact::json`/`text` (the client's request).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use switchyard_config::Config;
use switchyard_usage::request_files::{self, RequestRecord, capped_extend};

use super::UsageState;

/// What a request log needs beyond the request log line's fields.
pub(crate) struct RequestSink {
    usage: Arc<UsageState>,
    /// Push a usage-queue record.
    queue: bool,
    /// Write a request log (`Some(request_log)`), or nothing when neither setting asks for one.
    files: Option<FileSettings>,
    pub started_at: DateTime<Utc>,
    pub method: String,
    pub endpoint: String,
    user_agent: String,
    forwarded_for: String,
    headers: Vec<(String, String)>,
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
    pub latency_ms: u64,
    pub ttft_ms: u64,
    pub error: Option<&'a str>,
}

impl RequestSink {
    /// `None` when nothing would be recorded for this request.
    pub fn new(
        usage: Arc<UsageState>,
        config: &Config,
        management_enabled: bool,
        method: &str,
        endpoint: &str,
        headers: &HeaderMap,
    ) -> Option<Self> {
        let queue = management_enabled && config.usage_statistics_enabled;
        let error_logs_max_files = config.error_logs_max_files.max(0) as usize;
        let files = (config.request_log || error_logs_max_files > 0).then_some(FileSettings {
            request_log: config.request_log,
            error_logs_max_files,
            max_total_bytes: (config.logs_max_total_size_mb.max(0) as u64).saturating_mul(1024 * 1024),
        });
        if !queue && files.is_none() {
            return None;
        }
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let redacted = headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes());
                (name.as_str().to_owned(), switchyard_redact::header(name.as_str(), &value))
            })
            .collect();
        Some(Self {
            usage,
            queue,
            files,
            started_at: Utc::now(),
            method: method.to_owned(),
            endpoint: endpoint.to_owned(),
            user_agent: header("user-agent"),
            forwarded_for: header("x-forwarded-for"),
            headers: redacted,
            request_body: Bytes::new(),
            response_body: Vec::new(),
        })
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
        let failed = done.status >= 400 || done.status == 0 || done.error.is_some();
        if self.queue {
            let record = json!({
                "timestamp": self.started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "latency_ms": done.latency_ms,
                "ttft_ms": done.ttft_ms,
                "source": done.account,
                "auth_index": done.auth_index,
                "client_ip": done.client_ip,
                "x_forwarded_for": switchyard_redact::text(&self.forwarded_for),
                "user_agent": switchyard_redact::text(&self.user_agent),
                // Token counts are not read from answers yet: zeros, as CPA reports unknown counts.
                "tokens": {
                    "input_tokens": 0, "output_tokens": 0, "reasoning_tokens": 0, "cached_tokens": 0,
                    "cache_read_tokens": 0, "cache_read_tokens_present": false,
                    "cache_creation_tokens": 0, "total_tokens": 0,
                },
                "failed": failed,
                "generate": done.generate,
                "fail": {
                    "status_code": if failed { done.status } else { 0 },
                    "body": if failed { done.error.unwrap_or_default() } else { "" },
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
            request_headers: self.headers,
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
