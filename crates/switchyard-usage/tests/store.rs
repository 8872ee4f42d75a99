//! The SQLite record store over real files: batching through the recorder's queue, restart
//! survival, retention by age and by size, a corrupt file moved aside, every filter, the
//! aggregates, failure sources, and exports parsed back.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use switchyard_usage::store::{self, AggregateBy, Filter, RecordStore, StatusFilter, StoreSettings};
use switchyard_usage::{Recorder, Tokens, UsageRecord};

fn record(n: u32, at: DateTime<Utc>) -> UsageRecord {
    UsageRecord {
        timestamp: at,
        request_id: format!("req-{n}"),
        client_key: format!("key-{}", n % 2 + 1),
        client_key_hash: format!("hash{}", n % 2 + 1),
        requested_model: if n.is_multiple_of(3) { "claude-sonnet-4".into() } else { "gpt-5".into() },
        upstream_model: if n.is_multiple_of(3) { "claude-sonnet-4-20250514".into() } else { "gpt-5".into() },
        provider: if n.is_multiple_of(3) { "claude".into() } else { "codex".into() },
        auth_index: format!("acct{}", n % 3),
        account: format!("file-{}.json", n % 3),
        endpoint: "/v1/chat/completions".into(),
        dialect_in: "openai-chat".into(),
        dialect_out: "openai-chat".into(),
        stream: n.is_multiple_of(2),
        status: if n % 5 == 4 { 429 } else { 200 },
        latency_ms: u64::from(n) * 10,
        ttfb_ms: Some(u64::from(n)),
        tokens: Tokens {
            input: 10,
            output: 5,
            cached: 2,
            cache_creation: 1,
            reasoning: 3,
            estimated: n.is_multiple_of(4),
        },
        attempts: 1 + n % 2,
        failure: (n % 5 == 4).then(|| format!("rate limited, request {n}, \"quoted\", comma")),
    }
}

fn no_limits() -> StoreSettings {
    StoreSettings { path: "unused".into(), retention_days: 0, max_size_mb: 0 }
}

fn wait_written(store: &RecordStore, count: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.written() < count {
        assert!(Instant::now() < deadline, "only {} of {count} records written", store.written());
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A store holding `count` records, timestamps one second apart ending now.
fn filled(dir: &Path, count: u32) -> (Arc<RecordStore>, DateTime<Utc>) {
    let path = dir.join("usage.sqlite");
    let store = RecordStore::open(&path).unwrap();
    let (recorder, receiver) = Recorder::channel(10_000);
    let writer = store.spawn_writer(receiver, no_limits).unwrap();
    let start = Utc::now() - chrono::Duration::seconds(i64::from(count));
    for n in 0..count {
        recorder.record(record(n, start + chrono::Duration::seconds(i64::from(n))));
    }
    drop(recorder);
    writer.join().unwrap();
    assert_eq!(store.written(), u64::from(count));
    (store, start)
}

fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn records_arrive_in_batches_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.sqlite");
    let store = RecordStore::open(&path).unwrap();
    let (recorder, receiver) = Recorder::channel(10_000);
    let writer = store.spawn_writer(receiver, no_limits).unwrap();
    let now = Utc::now();
    for n in 0..2_500 {
        recorder.record(record(n, now));
    }
    assert_eq!(recorder.dropped(), 0);
    // Readable while the writer still runs (its own connection).
    wait_written(&store, 2_500);
    assert_eq!(store.list(&Filter::default(), 10, None).unwrap().records[0].record.request_id, "req-2499");
    drop(recorder);
    writer.join().unwrap();
    drop(store);

    let reopened = RecordStore::open(&path).unwrap();
    let page = reopened.list(&Filter::default(), 3_000, None).unwrap();
    assert_eq!(page.records.len(), 2_500);
    assert_eq!(page.next_before, None);
    let first = page.records.last().unwrap();
    assert_eq!(first.record, record(0, DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap()));
}

#[test]
fn paging_walks_newest_first_without_repeats() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = filled(dir.path(), 25);
    let mut seen = Vec::new();
    let mut before = None;
    loop {
        let page = store.list(&Filter::default(), 10, before).unwrap();
        seen.extend(page.records.iter().map(|r| r.record.request_id.clone()));
        match page.next_before {
            Some(next) => before = Some(next),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).rev().map(|n| format!("req-{n}")).collect();
    assert_eq!(seen, expected);
}

#[test]
fn every_filter_narrows_the_list() {
    let dir = tempfile::tempdir().unwrap();
    let (store, start) = filled(dir.path(), 30);
    let ids = |pairs: &[(&str, &str)]| -> Vec<u32> {
        let filter = Filter::from_query(&query(pairs)).unwrap();
        let mut ids: Vec<u32> = store
            .list(&filter, 100, None)
            .unwrap()
            .records
            .iter()
            .map(|r| r.record.request_id.trim_start_matches("req-").parse().unwrap())
            .collect();
        ids.sort();
        ids
    };
    let matching = |keep: fn(u32) -> bool| (0..30).filter(|n| keep(*n)).collect::<Vec<u32>>();

    assert_eq!(ids(&[("auth_index", "acct1")]), matching(|n| n % 3 == 1));
    assert_eq!(ids(&[("provider", "claude")]), matching(|n| n % 3 == 0));
    assert_eq!(ids(&[("model", "claude-sonnet-4-20250514")]), matching(|n| n % 3 == 0));
    assert_eq!(ids(&[("model", "gpt-5")]), matching(|n| n % 3 != 0));
    assert_eq!(ids(&[("client_key", "key-2")]), matching(|n| n % 2 == 1));
    assert_eq!(ids(&[("client_key", "hash1")]), matching(|n| n % 2 == 0));
    assert_eq!(ids(&[("status", "failed")]), matching(|n| n % 5 == 4));
    assert_eq!(ids(&[("status", "success")]), matching(|n| n % 5 != 4));
    assert_eq!(ids(&[("status", "429")]), matching(|n| n % 5 == 4));
    assert_eq!(ids(&[("status", "4xx")]), matching(|n| n % 5 == 4));
    assert_eq!(ids(&[("status", "5xx")]), Vec::<u32>::new());
    assert_eq!(ids(&[("q", "request 14,")]), vec![14]);
    assert_eq!(ids(&[("q", "req-2")]), vec![2, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29]);
    // A LIKE wildcard in the text is taken literally.
    assert_eq!(ids(&[("q", "%")]), Vec::<u32>::new());
    let from = (start + chrono::Duration::seconds(10)).timestamp().to_string();
    let to = (start + chrono::Duration::seconds(20)).to_rfc3339();
    assert_eq!(ids(&[("from", &from), ("to", &to)]), (10..20).collect::<Vec<_>>());
    assert_eq!(ids(&[("provider", "codex"), ("status", "failed")]), matching(|n| n % 3 != 0 && n % 5 == 4));
}

#[test]
fn bad_filters_name_the_field_and_the_fix() {
    let error = Filter::from_query(&query(&[("status", "teapot")])).unwrap_err();
    assert_eq!(error.field, "status");
    assert!(error.to_string().contains("4xx"), "{error}");
    assert_eq!(Filter::from_query(&query(&[("from", "yesterday")])).unwrap_err().field, "from");
    assert_eq!(Filter::from_query(&query(&[("from", "200"), ("to", "100")])).unwrap_err().field, "to");
    assert_eq!(StatusFilter::parse("9xx").unwrap_err().field, "status");
    assert_eq!(AggregateBy::parse(Some("colour"), None).unwrap_err().field, "by");
    assert_eq!(AggregateBy::parse(Some("time"), Some("5w")).unwrap_err().field, "bucket");
    assert_eq!(AggregateBy::parse(Some("time"), Some("0h")).unwrap_err().field, "bucket");
    assert_eq!(AggregateBy::parse(Some("time"), Some("5m")).unwrap(), AggregateBy::Time(300_000));
}

#[test]
fn aggregates_count_rates_latencies_and_tokens_per_group() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = filled(dir.path(), 30);
    let by_account = store.aggregate(&Filter::default(), AggregateBy::Account).unwrap();
    assert_eq!(by_account.len(), 3);
    let acct1 = by_account.iter().find(|a| a.key == "acct1").unwrap();
    let members: Vec<u64> = (0..30u64).filter(|n| n % 3 == 1).collect();
    assert_eq!(acct1.requests, members.len() as u64);
    assert_eq!(acct1.failures, members.iter().filter(|n| *n % 5 == 4).count() as u64);
    assert_eq!(acct1.account.as_deref(), Some("file-1.json"));
    assert_eq!(acct1.provider.as_deref(), Some("codex"));
    assert_eq!(acct1.input_tokens, 10 * members.len() as u64);
    assert_eq!(acct1.reasoning_tokens, 3 * members.len() as u64);
    assert_eq!(acct1.estimated_requests, members.iter().filter(|n| *n % 4 == 0).count() as u64);
    let latencies: Vec<u64> = members.iter().map(|n| n * 10).collect();
    assert_eq!(acct1.latency_avg_ms, latencies.iter().sum::<u64>() as f64 / latencies.len() as f64);
    // Nearest rank: of 10 values the 5th and the 10th.
    assert_eq!(acct1.latency_p50_ms, latencies[4]);
    assert_eq!(acct1.latency_p95_ms, latencies[9]);
    let expected_rate = (acct1.requests - acct1.failures) as f64 / acct1.requests as f64;
    assert!((acct1.success_rate - expected_rate).abs() < 1e-9);

    let by_model = store.aggregate(&Filter::default(), AggregateBy::Model).unwrap();
    let models: Vec<(&str, u64)> = by_model.iter().map(|a| (a.key.as_str(), a.requests)).collect();
    assert_eq!(models, [("claude-sonnet-4", 10), ("gpt-5", 20)]);
    let by_key = store.aggregate(&Filter::default(), AggregateBy::ClientKey).unwrap();
    assert_eq!(by_key.iter().map(|a| (a.key.as_str(), a.requests)).collect::<Vec<_>>(), [("key-1", 15), ("key-2", 15)]);
    let by_time = store.aggregate(&Filter::default(), AggregateBy::Time(3_600_000)).unwrap();
    assert_eq!(by_time.iter().map(|a| a.requests).sum::<u64>(), 30);
    assert!(by_time.iter().all(|a| DateTime::parse_from_rfc3339(&a.key).is_ok()), "{by_time:?}");
    // Filters apply to aggregates too.
    let claude = Filter { provider: Some("claude".into()), ..Filter::default() };
    let providers = store.aggregate(&claude, AggregateBy::Provider).unwrap();
    assert_eq!(providers.iter().map(|a| (a.key.as_str(), a.requests)).collect::<Vec<_>>(), [("claude", 10)]);
}

#[test]
fn failure_sources_rank_accounts_with_rates_and_the_last_summary() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = filled(dir.path(), 30);
    let sources = store.failures(&Filter::default()).unwrap();
    // Failures are n = 4, 9, 14, 19, 24, 29, on accounts n % 3.
    assert_eq!(sources.iter().map(|s| s.failures).sum::<u64>(), 6);
    for source in &sources {
        assert_eq!(source.status, 429);
        assert!((source.failure_rate - source.failures as f64 / 10.0).abs() < 1e-9, "{source:?}");
    }
    let acct2 = sources.iter().find(|s| s.auth_index == "acct2").unwrap();
    // acct2 failed at n = 14 and 29; 29 is the latest.
    assert_eq!(acct2.failures, 2);
    assert!(acct2.last_summary.as_deref().unwrap().contains("request 29,"), "{acct2:?}");
}

#[test]
fn exports_carry_every_record_and_parse_back() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = filled(dir.path(), 12);
    let mut csv_bytes = Vec::new();
    store.export_csv(&Filter::default(), &mut csv_bytes).unwrap();
    let mut reader = csv::Reader::from_reader(csv_bytes.as_slice());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(header, store::export::csv_header());
    assert_eq!(&header[..3], ["id", "timestamp", "request_id"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 12);
    let column = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert_eq!(&rows[4][column("failure")], "rate limited, request 4, \"quoted\", comma");
    assert_eq!(&rows[4][column("status")], "429");
    assert_eq!(&rows[3][column("failure")], "");

    let failed = Filter { status: Some(StatusFilter::Failed), ..Filter::default() };
    let json: Vec<serde_json::Value> = serde_json::from_slice(&store.export_json(&failed).unwrap()).unwrap();
    assert_eq!(json.len(), 2);
    assert_eq!(json[0]["request_id"], "req-4");
    assert_eq!(json[0]["tokens"]["input"], 10);
}

#[test]
fn retention_deletes_by_age_then_oldest_first_down_to_the_size_cap() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.sqlite");
    let kept = |store: &RecordStore| store.list(&Filter::default(), 100_000, None).unwrap().records;
    // Age: one record per hour over ten days, three days kept.
    let now = Utc::now();
    {
        let store = RecordStore::open(&path).unwrap();
        let (recorder, receiver) = Recorder::channel(50_000);
        let writer = store.spawn_writer(receiver, no_limits).unwrap();
        for hour in 0..240 {
            recorder.record(record(hour, now - chrono::Duration::hours(i64::from(240 - hour))));
        }
        drop(recorder);
        writer.join().unwrap();
        assert_eq!(kept(&store).len(), 240);
    }
    let aged = StoreSettings { path: path.clone(), retention_days: 3, max_size_mb: 0 };
    let trimmed = store::trim_now(&path, &aged).unwrap();
    let store = RecordStore::open(&path).unwrap();
    let left = kept(&store);
    assert_eq!(trimmed as usize + left.len(), 240);
    assert!((71..=73).contains(&left.len()), "{} left", left.len());
    let cutoff = now - chrono::Duration::days(3) - chrono::Duration::minutes(1);
    assert!(left.iter().all(|r| r.record.timestamp > cutoff));

    // Size: 2,000 records with 4 KiB summaries are far past 1 MiB; trimming keeps the newest.
    let (recorder, receiver) = Recorder::channel(50_000);
    let writer = store.spawn_writer(receiver, no_limits).unwrap();
    for n in 0..2_000 {
        let mut r = record(n, Utc::now());
        r.request_id = format!("big-{n}");
        r.failure = Some("x".repeat(4096));
        recorder.record(r);
    }
    drop(recorder);
    writer.join().unwrap();
    drop(store);
    let size_before = std::fs::metadata(&path).unwrap().len();
    assert!(size_before > 4 * 1024 * 1024, "{size_before}");
    let capped = StoreSettings { path: path.clone(), retention_days: 0, max_size_mb: 1 };
    store::trim_now(&path, &capped).unwrap();
    let store = RecordStore::open(&path).unwrap();
    let left = kept(&store);
    assert!(!left.is_empty() && left.len() < 400, "{} left", left.len());
    assert_eq!(left[0].record.request_id, "big-1999", "the newest record stays");
    let size_after = std::fs::metadata(&path).unwrap().len();
    assert!(size_after < size_before / 2, "{size_after} vs {size_before}");
}

#[test]
fn a_corrupt_database_is_moved_aside_and_a_new_one_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("usage.sqlite");
    let garbage: &[u8] = b"this is not a database, but it is someone's file";
    std::fs::write(&path, garbage).unwrap();
    let store = RecordStore::open(&path).unwrap();
    assert!(store.list(&Filter::default(), 10, None).unwrap().records.is_empty());
    let aside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(dir.path().join(&aside[0])).unwrap(), garbage);
}

#[test]
fn account_history_gives_totals_and_recent_outcomes_for_the_counters() {
    let dir = tempfile::tempdir().unwrap();
    let (store, start) = filled(dir.path(), 30);
    let since = (start + chrono::Duration::seconds(20)).timestamp_millis();
    let history = store.account_history(since).unwrap();
    // acct2 = n 2, 5, ..., 29: ten requests, failures at 14 and 29.
    assert_eq!(history.totals["acct2"], (8, 2));
    assert_eq!(history.recent.values().map(Vec::len).sum::<usize>(), 10);
    let expected: Vec<(i64, bool)> =
        [20i64, 23, 26, 29].iter().map(|n| (start.timestamp_millis() + n * 1_000, n % 5 != 4)).collect();
    assert_eq!(history.recent["acct2"], expected);
}
