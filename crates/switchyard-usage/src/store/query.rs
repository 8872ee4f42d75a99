//! Reading the records back: one [`Filter`] (parsed from a query string, with precise errors)
//! shared by the list, the aggregates, the failure sources and the export.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Row, params_from_iter};
use serde::Serialize;

use super::{RecordStore, StoreError};
use crate::records::{Tokens, UsageRecord};

/// Which requests a query covers; every field narrows it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// Unix milliseconds, inclusive.
    pub from: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub to: Option<i64>,
    pub auth_index: Option<String>,
    pub provider: Option<String>,
    /// Requested or upstream model.
    pub model: Option<String>,
    /// Client key alias (`key-1`) or hash.
    pub client_key: Option<String>,
    pub status: Option<StatusFilter>,
    /// Free text: model, account, request id, failure summary.
    pub text: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    Success,
    Failed,
    Code(u16),
    /// `4xx` → 4.
    Class(u16),
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {message}")]
pub struct FilterError {
    pub field: &'static str,
    pub message: String,
}

fn time_value(field: &'static str, value: &str) -> Result<i64, FilterError> {
    if let Ok(seconds) = value.parse::<i64>() {
        return Ok(seconds * 1000);
    }
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.timestamp_millis())
        .map_err(|_| FilterError { field, message: format!("{value:?} is neither unix seconds nor an RFC 3339 time") })
}

impl StatusFilter {
    pub fn parse(value: &str) -> Result<Self, FilterError> {
        let bad = || FilterError {
            field: "status",
            message: format!("{value:?}: use success, failed, a status code (429) or a class (4xx)"),
        };
        match value.to_ascii_lowercase().as_str() {
            "success" | "ok" => Ok(Self::Success),
            "failed" | "failure" | "error" => Ok(Self::Failed),
            v if v.len() == 3 && v.ends_with("xx") => {
                v[..1].parse::<u16>().ok().filter(|c| (1..=5).contains(c)).map(Self::Class).ok_or_else(bad)
            }
            v => v.parse::<u16>().ok().filter(|c| (100..=599).contains(c)).map(Self::Code).ok_or_else(bad),
        }
    }
}

impl Filter {
    /// From query parameters `from`, `to`, `auth_index`, `provider`, `model`, `client_key`,
    /// `status`, `q`; other names are left to the caller (paging, format).
    pub fn from_query(query: &HashMap<String, String>) -> Result<Filter, FilterError> {
        let text = |name: &str| query.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let filter = Filter {
            from: text("from").map(|v| time_value("from", &v)).transpose()?,
            to: text("to").map(|v| time_value("to", &v)).transpose()?,
            auth_index: text("auth_index"),
            provider: text("provider"),
            model: text("model"),
            client_key: text("client_key"),
            status: text("status").map(|v| StatusFilter::parse(&v)).transpose()?,
            text: text("q"),
        };
        if let (Some(from), Some(to)) = (filter.from, filter.to)
            && from >= to
        {
            return Err(FilterError { field: "to", message: "must be after from".into() });
        }
        Ok(filter)
    }

    /// The `WHERE` clause (always non-empty) and its parameters.
    fn sql(&self) -> (String, Vec<SqlValue>) {
        let mut clauses = vec!["1 = 1".to_owned()];
        let mut values = Vec::new();
        if let Some(from) = self.from {
            clauses.push("ts_ms >= ?".into());
            values.push(SqlValue::Integer(from));
        }
        if let Some(to) = self.to {
            clauses.push("ts_ms < ?".into());
            values.push(SqlValue::Integer(to));
        }
        for (column, value) in [("auth_index", &self.auth_index), ("provider", &self.provider)] {
            if let Some(value) = value {
                clauses.push(format!("{column} = ?"));
                values.push(SqlValue::Text(value.clone()));
            }
        }
        if let Some(model) = &self.model {
            clauses.push("(requested_model = ? OR upstream_model = ?)".into());
            values.extend([SqlValue::Text(model.clone()), SqlValue::Text(model.clone())]);
        }
        if let Some(key) = &self.client_key {
            clauses.push("(client_key = ? OR client_key_hash = ?)".into());
            values.extend([SqlValue::Text(key.clone()), SqlValue::Text(key.clone())]);
        }
        match self.status {
            Some(StatusFilter::Success) => clauses.push("failed = 0".into()),
            Some(StatusFilter::Failed) => clauses.push("failed = 1".into()),
            Some(StatusFilter::Code(code)) => {
                clauses.push("status = ?".into());
                values.push(SqlValue::Integer(code.into()));
            }
            Some(StatusFilter::Class(class)) => {
                clauses.push("status >= ? AND status < ?".into());
                values.extend([
                    SqlValue::Integer(i64::from(class) * 100),
                    SqlValue::Integer(i64::from(class) * 100 + 100),
                ]);
            }
            None => {}
        }
        if let Some(text) = &self.text {
            let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let pattern = format!("%{escaped}%");
            clauses.push(
                "(requested_model LIKE ?1x ESCAPE '\\' OR upstream_model LIKE ?1x ESCAPE '\\' OR account LIKE ?1x \
                 ESCAPE '\\' OR request_id LIKE ?1x ESCAPE '\\' OR failure LIKE ?1x ESCAPE '\\')"
                    .replace("?1x", "?"),
            );
            values.extend(std::iter::repeat_n(SqlValue::Text(pattern), 5));
        }
        (clauses.join(" AND "), values)
    }
}

/// One stored record with its row id (the paging cursor).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredRecord {
    pub id: i64,
    pub failed: bool,
    #[serde(flatten)]
    pub record: UsageRecord,
}

#[derive(Debug, Serialize)]
pub struct Page {
    pub records: Vec<StoredRecord>,
    /// Pass as `before` for the next (older) page; `None` at the end.
    pub next_before: Option<i64>,
}

fn text(row: &Row<'_>, name: &str) -> rusqlite::Result<String> {
    row.get(name)
}

fn u64_of(row: &Row<'_>, name: &str) -> rusqlite::Result<u64> {
    Ok(row.get::<_, i64>(name)?.max(0) as u64)
}

fn stored(row: &Row<'_>) -> rusqlite::Result<StoredRecord> {
    let ts: i64 = row.get("ts_ms")?;
    Ok(StoredRecord {
        id: row.get("id")?,
        failed: row.get("failed")?,
        record: UsageRecord {
            timestamp: DateTime::from_timestamp_millis(ts).unwrap_or_default(),
            request_id: text(row, "request_id")?,
            client_key: text(row, "client_key")?,
            client_key_hash: text(row, "client_key_hash")?,
            requested_model: text(row, "requested_model")?,
            upstream_model: text(row, "upstream_model")?,
            provider: text(row, "provider")?,
            auth_index: text(row, "auth_index")?,
            account: text(row, "account")?,
            endpoint: text(row, "endpoint")?,
            dialect_in: text(row, "dialect_in")?,
            dialect_out: text(row, "dialect_out")?,
            stream: row.get("stream")?,
            status: row.get("status")?,
            latency_ms: u64_of(row, "latency_ms")?,
            ttfb_ms: row.get::<_, Option<i64>>("ttfb_ms")?.map(|t| t.max(0) as u64),
            tokens: Tokens {
                input: u64_of(row, "input_tokens")?,
                output: u64_of(row, "output_tokens")?,
                cached: u64_of(row, "cached_tokens")?,
                cache_creation: u64_of(row, "cache_creation_tokens")?,
                reasoning: u64_of(row, "reasoning_tokens")?,
                estimated: row.get("tokens_estimated")?,
            },
            attempts: row.get("attempts")?,
            failure: row.get("failure")?,
        },
    })
}

/// What an aggregate groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregateBy {
    Account,
    Model,
    ClientKey,
    Provider,
    /// Time buckets of this many milliseconds.
    Time(i64),
}

impl AggregateBy {
    /// `by` (`account`, `model`, `client_key`, `provider`, `time`) and, for `time`, `bucket`
    /// (`30s`, `5m`, `1h`, `1d`; default `1h`).
    pub fn parse(by: Option<&str>, bucket: Option<&str>) -> Result<Self, FilterError> {
        match by.unwrap_or("account") {
            "account" | "auth_index" => Ok(Self::Account),
            "model" => Ok(Self::Model),
            "client_key" | "key" => Ok(Self::ClientKey),
            "provider" => Ok(Self::Provider),
            "time" => {
                let bucket = bucket.unwrap_or("1h");
                let bad = || FilterError {
                    field: "bucket",
                    message: format!("{bucket:?}: use a number with s, m, h or d (e.g. 1h)"),
                };
                let (number, unit) = bucket.split_at(bucket.len().saturating_sub(1));
                let n: i64 = number.parse().ok().filter(|n| *n > 0).ok_or_else(bad)?;
                let unit_ms = match unit {
                    "s" => 1_000,
                    "m" => 60_000,
                    "h" => 3_600_000,
                    "d" => 86_400_000,
                    _ => return Err(bad()),
                };
                Ok(Self::Time(n * unit_ms))
            }
            other => Err(FilterError {
                field: "by",
                message: format!("{other:?}: use account, model, client_key, provider or time"),
            }),
        }
    }
}

/// One group's numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Aggregate {
    /// The account's `auth_index`, the model, the client key alias, the provider, or the
    /// bucket's start (RFC 3339).
    pub key: String,
    /// For accounts: the file name or config key id last seen serving.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    pub requests: u64,
    pub failures: u64,
    pub success_rate: f64,
    pub latency_avg_ms: f64,
    pub latency_p50_ms: u64,
    pub latency_p95_ms: u64,
    pub ttfb_avg_ms: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_tokens: u64,
    pub cache_creation_tokens: u64,
    pub reasoning_tokens: u64,
    /// Requests whose counts are estimated.
    pub estimated_requests: u64,
}

/// Failures of one (provider, account, status).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FailureSource {
    pub provider: String,
    pub auth_index: String,
    pub account: String,
    pub status: u16,
    pub failures: u64,
    /// Of all the account's requests in the range.
    pub failure_rate: f64,
    pub last_seen: DateTime<Utc>,
    pub last_summary: Option<String>,
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

impl RecordStore {
    /// Newest first, at most `limit`, older than row id `before` when given.
    pub fn list(&self, filter: &Filter, limit: usize, before: Option<i64>) -> Result<Page, StoreError> {
        let (mut clause, mut values) = filter.sql();
        if let Some(before) = before {
            clause.push_str(" AND id < ?");
            values.push(SqlValue::Integer(before));
        }
        values.push(SqlValue::Integer(limit as i64));
        let records = self.read(|conn| {
            let mut statement =
                conn.prepare(&format!("SELECT * FROM requests WHERE {clause} ORDER BY id DESC LIMIT ?"))?;
            statement.query_map(params_from_iter(values), stored)?.collect::<rusqlite::Result<Vec<_>>>()
        })?;
        let next_before = (records.len() == limit).then(|| records.last().map(|r| r.id)).flatten();
        Ok(Page { records, next_before })
    }

    /// Every record the filter covers, oldest first (export).
    pub fn each(&self, filter: &Filter, mut visit: impl FnMut(StoredRecord)) -> Result<(), StoreError> {
        let (clause, values) = filter.sql();
        self.read(|conn| {
            let mut statement = conn.prepare(&format!("SELECT * FROM requests WHERE {clause} ORDER BY id"))?;
            let mut rows = statement.query(params_from_iter(values))?;
            while let Some(row) = rows.next()? {
                visit(stored(row)?);
            }
            Ok(())
        })
    }

    pub fn aggregate(&self, filter: &Filter, by: AggregateBy) -> Result<Vec<Aggregate>, StoreError> {
        let key = match by {
            AggregateBy::Account => "auth_index".to_owned(),
            AggregateBy::Model => "requested_model".to_owned(),
            AggregateBy::ClientKey => "client_key".to_owned(),
            AggregateBy::Provider => "provider".to_owned(),
            AggregateBy::Time(ms) => format!("CAST((ts_ms / {ms}) * {ms} AS TEXT)"),
        };
        let (clause, values) = filter.sql();
        let sql = format!(
            "SELECT {key} AS k, account, provider, failed, latency_ms, ttfb_ms, input_tokens, output_tokens, \
             cached_tokens, cache_creation_tokens, reasoning_tokens, tokens_estimated \
             FROM requests WHERE {clause} ORDER BY id"
        );
        let mut groups: BTreeMap<String, (Aggregate, Vec<u64>, u64, u64)> = BTreeMap::new();
        self.read(|conn| {
            let mut statement = conn.prepare(&sql)?;
            let mut rows = statement.query(params_from_iter(values))?;
            while let Some(row) = rows.next()? {
                let k: String = row.get("k")?;
                let (group, latencies, ttfb_sum, ttfb_count) = groups.entry(k.clone()).or_default();
                group.key = k;
                if by == AggregateBy::Account {
                    group.account = Some(row.get("account")?);
                    group.provider = Some(row.get("provider")?);
                }
                group.requests += 1;
                group.failures += u64::from(row.get::<_, bool>("failed")?);
                latencies.push(u64_of(row, "latency_ms")?);
                if let Some(ttfb) = row.get::<_, Option<i64>>("ttfb_ms")? {
                    *ttfb_sum += ttfb.max(0) as u64;
                    *ttfb_count += 1;
                }
                group.input_tokens += u64_of(row, "input_tokens")?;
                group.output_tokens += u64_of(row, "output_tokens")?;
                group.cached_tokens += u64_of(row, "cached_tokens")?;
                group.cache_creation_tokens += u64_of(row, "cache_creation_tokens")?;
                group.reasoning_tokens += u64_of(row, "reasoning_tokens")?;
                group.estimated_requests += u64::from(row.get::<_, bool>("tokens_estimated")?);
            }
            Ok(())
        })?;
        Ok(groups
            .into_values()
            .map(|(mut group, mut latencies, ttfb_sum, ttfb_count)| {
                latencies.sort_unstable();
                let n = group.requests.max(1) as f64;
                group.success_rate = (group.requests - group.failures) as f64 / n;
                group.latency_avg_ms = latencies.iter().sum::<u64>() as f64 / n;
                group.latency_p50_ms = percentile(&latencies, 0.50);
                group.latency_p95_ms = percentile(&latencies, 0.95);
                group.ttfb_avg_ms = if ttfb_count > 0 { ttfb_sum as f64 / ttfb_count as f64 } else { 0.0 };
                if let AggregateBy::Time(_) = by {
                    let start: i64 = group.key.parse().unwrap_or_default();
                    group.key = DateTime::from_timestamp_millis(start)
                        .unwrap_or_default()
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                }
                group
            })
            .collect())
    }

    /// Failures by (provider, account, status), most first.
    pub fn failures(&self, filter: &Filter) -> Result<Vec<FailureSource>, StoreError> {
        let (clause, values) = filter.sql();
        let sql = format!(
            "WITH scope AS (SELECT * FROM requests WHERE {clause}), \
             totals AS (SELECT provider, auth_index, COUNT(*) AS n FROM scope GROUP BY provider, auth_index) \
             SELECT f.provider, f.auth_index, MAX(f.account) AS account, f.status, COUNT(*) AS failures, \
             MAX(f.ts_ms) AS last_ms, t.n AS total, \
             (SELECT failure FROM scope l WHERE l.provider = f.provider AND l.auth_index = f.auth_index \
              AND l.status = f.status AND l.failed = 1 ORDER BY l.id DESC LIMIT 1) AS last_summary \
             FROM scope f JOIN totals t ON t.provider = f.provider AND t.auth_index = f.auth_index \
             WHERE f.failed = 1 GROUP BY f.provider, f.auth_index, f.status ORDER BY failures DESC, last_ms DESC"
        );
        self.read(|conn| {
            let mut statement = conn.prepare(&sql)?;
            statement
                .query_map(params_from_iter(values), |row| {
                    let failures = u64_of(row, "failures")?;
                    let total = u64_of(row, "total")?.max(1);
                    Ok(FailureSource {
                        provider: row.get("provider")?,
                        auth_index: row.get("auth_index")?,
                        account: row.get("account")?,
                        status: row.get("status")?,
                        failures,
                        failure_rate: failures as f64 / total as f64,
                        last_seen: DateTime::from_timestamp_millis(row.get("last_ms")?).unwrap_or_default(),
                        last_summary: row.get("last_summary")?,
                    })
                })?
                .collect()
        })
    }

    /// Per account: all-time (success, failed) and the (time, success) of requests since
    /// `since_ms` — what the in-memory counters start from after a restart.
    pub fn account_history(&self, since_ms: i64) -> Result<AccountHistory, StoreError> {
        self.read(|conn| {
            let mut totals = HashMap::new();
            let mut statement = conn.prepare(
                "SELECT auth_index, SUM(failed = 0), SUM(failed = 1) FROM requests WHERE auth_index != '' \
                 GROUP BY auth_index",
            )?;
            let mut rows = statement.query([])?;
            while let Some(row) = rows.next()? {
                totals.insert(row.get::<_, String>(0)?, (row.get::<_, i64>(1)? as u64, row.get::<_, i64>(2)? as u64));
            }
            let mut recent: HashMap<String, Vec<(i64, bool)>> = HashMap::new();
            let mut statement = conn.prepare(
                "SELECT auth_index, ts_ms, failed FROM requests WHERE auth_index != '' AND ts_ms >= ? ORDER BY id",
            )?;
            let mut rows = statement.query([since_ms])?;
            while let Some(row) = rows.next()? {
                recent.entry(row.get(0)?).or_default().push((row.get(1)?, !row.get::<_, bool>(2)?));
            }
            Ok(AccountHistory { totals, recent })
        })
    }
}

/// See [`RecordStore::account_history`].
#[derive(Debug, Default)]
pub struct AccountHistory {
    pub totals: HashMap<String, (u64, u64)>,
    /// Unix milliseconds and success, oldest first.
    pub recent: HashMap<String, Vec<(i64, bool)>>,
}
