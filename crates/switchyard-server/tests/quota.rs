//! `GET /v0/management/quota` and `POST /quota/refresh` end to end: the listing never calls
//! upstream by itself; a refresh reads every account with a quota source from the quota mock;
//! failures keep the last good reading; quota seen in relayed answers (Codex headers, a 429
//! body) is kept with its source; an exhausted window drives health and (opted in) disables the
//! file until a reading with room enables it again; the schedule reads without being asked.

mod common;
mod health_support;
mod proxy_support;

use common::{TestServer, json};
use health_support::{auth_file, gateway_with_urls, health_of, on_disk, post, until};
use proxy_support::claude_file;
use reqwest::Method;
use serde_json::{Value, json};
use switchyard_testkit::quota::{self, MockQuota};
use switchyard_testkit::upstream::{Fault, MockUpstream};

const CODEX: &str = "codex-dev@example.com-Plus.json";
const CODEX_TOKEN: &str = "at-codex-0123456789abcdef";

fn codex_file() -> (String, Value) {
    let expired = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let body = json!({"type": "codex", "email": "dev@example.com", "access_token": CODEX_TOKEN,
        "refresh_token": "rt-codex-0123456789", "account_id": "acct-0001", "expired": expired});
    (CODEX.to_owned(), body)
}

fn gemini_file() -> (String, Value) {
    let expired = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let body = json!({"type": "gemini", "email": "g@example.com", "project_id": "proj-1",
        "token": {"access_token": "ya29.gemini-0123456789", "refresh_token": "rt-g", "expiry": expired}});
    ("gemini-g@example.com-proj-1.json".to_owned(), body)
}

struct Setup {
    upstream: MockUpstream,
    quota: MockQuota,
    server: TestServer,
}

async fn setup(extra: &str) -> Setup {
    let upstream = MockUpstream::start().await;
    let quota = MockQuota::start().await;
    let files = [codex_file(), claude_file("cl", "at-claude-0123456789", json!({})), gemini_file()];
    let server = gateway_with_urls(&upstream, &files, extra, |urls| quota.merged_into(&urls)).await;
    Setup { upstream, quota, server }
}

async fn listing(server: &TestServer, query: &str) -> Value {
    let (status, body) = json(server.mgmt(Method::GET, &format!("/quota{query}")).send().await.unwrap()).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn account<'a>(listing: &'a Value, name: &str) -> &'a Value {
    listing["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("{name}: {listing}"))
}

fn window<'a>(account: &'a Value, id: &str) -> &'a Value {
    account["windows"].as_array().unwrap().iter().find(|w| w["id"] == id).unwrap_or_else(|| panic!("{id}: {account}"))
}

#[tokio::test]
async fn listing_never_asks_upstream_and_a_refresh_reads_every_account_with_a_source() {
    let Setup { quota, server, .. } = setup("").await;
    let claude = claude_file("cl", "", json!({})).0;
    let before = listing(&server, "").await;
    assert_eq!(account(&before, CODEX)["state"], "unknown");
    assert_eq!(account(&before, CODEX)["windows"], json!([]));
    assert_eq!(account(&before, "gemini-g@example.com-proj-1.json")["state"], "unsupported");
    assert!(quota.requests().is_empty(), "a listing asked upstream");

    quota.require_token(Some(CODEX_TOKEN));
    let after = listing(&server, "?refresh=true").await;
    let codex = account(&after, CODEX);
    assert_eq!((codex["state"].as_str(), codex["plan"].as_str()), (Some("ok"), Some("plus")), "{codex}");
    assert_eq!(codex["source"], "api_query");
    assert_eq!(window(codex, "5h")["used_percent"], 23.0);
    assert_eq!(window(codex, "weekly")["used_percent"], 61.0);
    assert_eq!(codex["exhausted"], false);
    assert_eq!(quota.requests_to(quota::CODEX_PATH)[0].headers["chatgpt-account-id"], "acct-0001");
    // The Claude account's token is not the one the mock wants: its own 401, kept as the error.
    let claude = account(&after, &claude);
    assert_eq!(claude["state"], "error", "{claude}");
    assert_eq!(claude["error"]["kind"], "unauthorized");
    assert_eq!(claude["error"]["status"], 401);
    assert!(quota.requests_to(quota::COPILOT_PATH).is_empty());

    let aggregate = &after["aggregate"];
    assert_eq!(
        (aggregate["supported"].as_u64(), aggregate["read"].as_u64(), aggregate["failed"].as_u64()),
        (Some(2), Some(1), Some(1))
    );
    let weekly = aggregate["windows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["provider"] == "codex" && w["window"] == "weekly")
        .unwrap();
    assert_eq!((weekly["accounts"].as_u64(), weekly["average_used_percent"].as_f64()), (Some(1), Some(61.0)));

    // One account by auth_index.
    let index = auth_file(&server, CODEX).await["auth_index"].as_str().unwrap().to_owned();
    let one = listing(&server, &format!("?auth_index={index}")).await;
    assert_eq!(one["accounts"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_failed_fetch_keeps_the_last_reading_and_bad_calls_get_precise_errors() {
    let Setup { quota, server, .. } = setup("").await;
    let index = auth_file(&server, CODEX).await["auth_index"].as_str().unwrap().to_owned();
    let (status, body) = post(&server, "/quota/refresh", json!({"auth_index": index})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(account(&body, CODEX)["state"], "ok");

    quota.fail("codex", 503, None);
    let (_, body) = post(&server, "/quota/refresh", json!({"auth_index": index})).await;
    let codex = account(&body, CODEX);
    assert_eq!(
        (codex["state"].as_str(), codex["error"]["kind"].as_str()),
        (Some("error"), Some("upstream")),
        "{codex}"
    );
    assert_eq!(window(codex, "weekly")["used_percent"], 61.0, "the last good reading stays");
    quota.clear();
    quota.set_answer("codex.json", json!({"detail": "a shape nobody documented"}));
    let (_, body) = post(&server, "/quota/refresh", json!({"auth_index": index})).await;
    assert_eq!(account(&body, CODEX)["error"]["kind"], "parse");

    let gemini =
        auth_file(&server, "gemini-g@example.com-proj-1.json").await["auth_index"].as_str().unwrap().to_owned();
    let (status, body) = post(&server, "/quota/refresh", json!({"auth_index": gemini})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("no quota endpoint"), "{body}");
    let (status, _) = post(&server, "/quota/refresh", json!({"auth_index": "nope"})).await;
    assert_eq!(status, 404);
    let (status, _) = json(server.mgmt(Method::GET, "/quota?auth_index=nope").send().await.unwrap()).await;
    assert_eq!(status, 404);
    let (status, body) = json(server.mgmt(Method::GET, "/quota?refresh=maybe").send().await.unwrap()).await;
    assert_eq!(status, 400, "{body}");
    let malformed = server.mgmt(Method::POST, "/quota/refresh").body("{not json").send().await.unwrap();
    assert_eq!(malformed.status(), 400);
    assert_eq!(on_disk(&server, CODEX)["access_token"], CODEX_TOKEN, "no failure touched the credential");
}

#[tokio::test]
async fn quota_in_relayed_headers_and_429_bodies_is_kept_with_its_source() {
    // No retry round: the 429 is the answer.
    let Setup { upstream, quota, server } = setup("request-retry: 0\n").await;
    upstream.set_reply_headers(&[
        ("x-codex-primary-used-percent", "12"),
        ("x-codex-primary-window-minutes", "300"),
        ("x-codex-secondary-used-percent", "48"),
        ("x-codex-secondary-window-minutes", "10080"),
    ]);
    let body = json!({"model": "gpt-5.1-codex", "input": "hi", "stream": false});
    let answer = server.client.post(server.url("/v1/responses")).json(&body).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let read = listing(&server, "").await;
    let codex = account(&read, CODEX);
    assert_eq!((codex["state"].as_str(), codex["source"].as_str()), (Some("ok"), Some("response_header")), "{codex}");
    assert_eq!(window(codex, "weekly")["used_percent"], 48.0);
    assert!(quota.requests().is_empty(), "reading headers called the quota endpoint");

    upstream.set_reply_headers(&[]);
    upstream.push_fault(Fault::status(429));
    let answer = server.client.post(server.url("/v1/responses")).json(&body).send().await.unwrap();
    assert_eq!(answer.status(), 429);
    let read = listing(&server, "").await;
    let codex = account(&read, CODEX);
    assert_eq!(
        (codex["source"].as_str(), codex["exhausted"].as_bool()),
        (Some("response_body"), Some(true)),
        "{codex}"
    );
    let resets = chrono::DateTime::parse_from_rfc3339(codex["resets_at"].as_str().unwrap()).unwrap();
    let ahead = resets.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(ahead > chrono::Duration::minutes(55) && ahead <= chrono::Duration::hours(1), "{ahead}");
    let index = auth_file(&server, CODEX).await["auth_index"].as_str().unwrap().to_owned();
    // The router cools the account until the reset the body named, not for a default moment.
    let health = health_of(&server, &index).await;
    assert!(["cooling_down", "quota_exhausted"].contains(&health["health"].as_str().unwrap()), "{health}");
    let until = chrono::DateTime::parse_from_rfc3339(health["health_until"].as_str().unwrap()).unwrap();
    assert!((until.timestamp() - resets.timestamp()).abs() <= 2, "{health}");
}

#[tokio::test]
async fn an_exhausted_window_disables_the_file_when_opted_in_until_a_reading_has_room() {
    let Setup { quota, server, .. } = setup("health:\n  auto-disable: true\n").await;
    let index = auth_file(&server, CODEX).await["auth_index"].as_str().unwrap().to_owned();
    let mut full = quota::fixture("codex.json");
    full["rate_limit"]["limit_reached"] = json!(true);
    full["rate_limit"]["secondary_window"]["used_percent"] = json!(100);
    quota.set_answer("codex.json", full);
    let (status, body) = post(&server, "/quota/refresh", json!({"auth_index": index})).await;
    assert_eq!(status, 200, "{body}");
    let codex = account(&body, CODEX);
    assert_eq!(codex["exhausted"], true, "{codex}");
    assert_eq!(
        codex["resets_at"].as_str().map(|t| chrono::DateTime::parse_from_rfc3339(t).unwrap().timestamp()),
        Some(1_796_300_000)
    );
    let disk = on_disk(&server, CODEX);
    assert_eq!(
        (disk["disabled"].as_bool(), disk["switchyard_disabled_by"].as_str()),
        (Some(true), Some("quota")),
        "{disk}"
    );
    assert_eq!(health_of(&server, &index).await["health"], "disabled");

    quota.clear();
    post(&server, "/quota/refresh", json!({"auth_index": index})).await;
    let server_ref = &server;
    until("the quota enables the file again", || async move { on_disk(server_ref, CODEX)["disabled"] == false }).await;
}

#[tokio::test]
async fn the_schedule_reads_without_being_asked_and_zero_turns_it_off() {
    let Setup { quota, server, .. } = setup("quota:\n  refresh-interval-seconds: 60\n").await;
    let tasks = server.state.spawn_health_tasks();
    let quota_ref = &quota;
    until(
        "the schedule read the Codex account",
        || async move { !quota_ref.requests_to(quota::CODEX_PATH).is_empty() },
    )
    .await;
    let read = listing(&server, "").await;
    assert_eq!(account(&read, CODEX)["state"], "ok");
    assert_eq!(read["refresh_interval_seconds"], 60);
    tasks.iter().for_each(tokio::task::JoinHandle::abort);

    let Setup { quota, server, .. } = setup("").await;
    let tasks = server.state.spawn_health_tasks();
    // The schedule checks right at start; off, it asked nobody.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(quota.requests().is_empty());
    assert_eq!(account(&listing(&server, "").await, CODEX)["state"], "unknown");
    tasks.iter().for_each(tokio::task::JoinHandle::abort);
}
