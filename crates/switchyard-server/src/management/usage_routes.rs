//! `GET /api-key-usage` and `GET /usage-queue` (spec §6), filled from the counters and queue the
//! proxy pipeline records into.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::Json;
use axum::extract::{RawQuery, State};
use serde_json::{Map, Value, json};
use switchyard_usage::CounterSnapshot;

use super::api_key_auth_index;
use super::auth_files::query_value;
use crate::{ApiError, AppState};

/// One pop returns at most this many records.
const MAX_POP: usize = 10_000;

/// `{<provider or compat name>: {"<base_url>|<api_key>": {success, failed, recent_requests}}}` for
/// every config API key with a non-blank key. The key is shown as configured: this answer is
/// behind the management key, and panels match it against `/config`'s entries.
pub async fn api_key_usage(State(state): State<Arc<AppState>>) -> Json<Value> {
    let config = state.config.get();
    let now = SystemTime::now();
    let mut out: BTreeMap<String, Map<String, Value>> = BTreeMap::new();
    for account in state.router.accounts() {
        let Some(key) = account.kind.config_key(&config) else { continue };
        if key.key.trim().is_empty() {
            continue;
        }
        let provider =
            account.provider.strip_prefix("openai-compatibility:").unwrap_or(&account.provider).to_lowercase();
        let snapshot = state.usage.counters.snapshot(&api_key_auth_index(key.section, key.base_url, key.key), now);
        let composite = format!("{}|{}", key.base_url.trim(), key.key.trim());
        let entries = out.entry(provider).or_default();
        let merged = match entries.remove(&composite) {
            Some(existing) => merge(existing, &snapshot),
            None => serde_json::to_value(&snapshot).unwrap_or_default(),
        };
        entries.insert(composite, merged);
    }
    Json(json!(out))
}

/// Two config entries with the same base URL and key are one line in CPA's answer.
fn merge(mut existing: Value, add: &CounterSnapshot) -> Value {
    let add_to = |value: &mut Value, n: u64| *value = json!(value.as_u64().unwrap_or(0) + n);
    add_to(&mut existing["success"], add.success);
    add_to(&mut existing["failed"], add.failed);
    if let Some(buckets) = existing["recent_requests"].as_array_mut() {
        for (bucket, more) in buckets.iter_mut().zip(&add.recent_requests) {
            add_to(&mut bucket["success"], more.success);
            add_to(&mut bucket["failed"], more.failed);
        }
    }
    existing
}

/// `GET /usage-queue?count=N` (default 1): pops the N oldest records → JSON array. With
/// `usage-statistics-enabled: false` nothing is queued and the answer is `[]`.
pub async fn usage_queue(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let count = match query_value(&query, "count").filter(|c| !c.trim().is_empty()) {
        None => 1,
        Some(raw) => match raw.trim().parse::<usize>() {
            Ok(n) if n > 0 => n.min(MAX_POP),
            _ => return Err(ApiError::bad_request("count: must be a positive integer")),
        },
    };
    let config = state.config.get();
    if !config.usage_statistics_enabled {
        state.usage.queue.clear();
        return Ok(Json(json!([])));
    }
    let retention = Duration::from_secs(config.redis_usage_queue_retention_seconds.clamp(1, 3600) as u64);
    Ok(Json(Value::Array(state.usage.queue.pop(count, retention, Instant::now()))))
}
