//! Refresher against a loopback OAuth token endpoint: single flight, merge into the file,
//! re-login marking, backoff, rate limits and the background loop.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{TimeDelta, Utc};
use serde_json::{Map, Value, json};
use switchyard_auth::login::{LoginContext, RefreshCounts, RefreshError, Refresher, RefresherLookup, TokenRefresher};
use switchyard_auth::{Credential, CredentialStore};
use switchyard_config::ConfigHandle;
use tempfile::TempDir;

const WAIT: Duration = Duration::from_secs(10);
const LEAD: Duration = Duration::from_secs(1800);
const SKEW: Duration = Duration::from_secs(60);

#[derive(Clone, Copy)]
enum Answer {
    Tokens,
    InvalidGrant,
    ServerError,
    TooManyRequests,
}

/// A token endpoint: answers per refresh token ([`Answer::Tokens`] unless told otherwise) and
/// remembers every refresh token it was sent.
#[derive(Default)]
struct TokenServer {
    answers: Mutex<HashMap<String, Answer>>,
    received: Mutex<Vec<String>>,
    issued: AtomicUsize,
}

impl TokenServer {
    fn calls_with(&self, refresh_token: &str) -> usize {
        self.received.lock().unwrap().iter().filter(|t| *t == refresh_token).count()
    }

    fn calls(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}

async fn token(State(server): State<Arc<TokenServer>>, Form(form): Form<HashMap<String, String>>) -> Response {
    assert_eq!(form["grant_type"], "refresh_token");
    let refresh_token = form["refresh_token"].clone();
    server.received.lock().unwrap().push(refresh_token.clone());
    // Slow enough that 200 concurrent callers really overlap.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = server.answers.lock().unwrap().get(&refresh_token).copied().unwrap_or(Answer::Tokens);
    match answer {
        Answer::Tokens => {
            let n = server.issued.fetch_add(1, Ordering::SeqCst) + 1;
            let body = json!({"access_token": format!("new-at-{n}"), "refresh_token": format!("new-rt-{n}"), "expires_in": 3600});
            axum::Json(body).into_response()
        }
        Answer::InvalidGrant => {
            (StatusCode::BAD_REQUEST, axum::Json(json!({"error": "invalid_grant"}))).into_response()
        }
        Answer::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response(),
        Answer::TooManyRequests => {
            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "120")], "slow down").into_response()
        }
    }
}

/// A provider refresher the way real ones map token-endpoint answers.
struct TestRefresher {
    token_url: String,
}

#[async_trait::async_trait]
impl TokenRefresher for TestRefresher {
    fn refresh_lead(&self) -> Option<Duration> {
        Some(LEAD)
    }

    async fn refresh(&self, ctx: &LoginContext, credential: &Credential) -> Result<Map<String, Value>, RefreshError> {
        let refresh_token = credential.refresh_token().ok_or(RefreshError::NoRefreshToken)?;
        let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
        let transient = |e: &dyn std::fmt::Display| RefreshError::Transient(e.to_string());
        let response = ctx.http.post(&self.token_url).form(&form).send().await.map_err(|e| transient(&e))?;
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(RefreshError::RateLimited { retry_after });
        }
        if status == StatusCode::BAD_REQUEST && body["error"] == "invalid_grant" {
            return Err(RefreshError::Revoked("invalid_grant".into()));
        }
        if !status.is_success() {
            return Err(RefreshError::Transient(format!("token endpoint answered {status}")));
        }
        let now = Utc::now();
        let expires_in = body["expires_in"].as_i64().ok_or_else(|| transient(&"no expires_in"))?;
        let mut fields = Map::new();
        fields.insert("access_token".into(), body["access_token"].clone());
        fields.insert("refresh_token".into(), body["refresh_token"].clone());
        fields.insert("expired".into(), json!((now + TimeDelta::seconds(expires_in)).to_rfc3339()));
        fields.insert("last_refresh".into(), json!(now.to_rfc3339()));
        Ok(fields)
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers.get(header::RETRY_AFTER)?.to_str().ok()?.parse().ok()?;
    Some(Duration::from_secs(seconds))
}

struct Lookup(Arc<TestRefresher>);

impl RefresherLookup for Lookup {
    fn refresher_for(&self, credential: &Credential) -> Option<Arc<dyn TokenRefresher>> {
        (credential.provider().as_deref() == Some("mock")).then(|| self.0.clone() as Arc<dyn TokenRefresher>)
    }
}

struct Harness {
    _tmp: TempDir,
    dir: PathBuf,
    store: Arc<CredentialStore>,
    server: Arc<TokenServer>,
    refresher: Arc<Refresher>,
}

impl Harness {
    /// An auth dir holding `files` (name, JSON or raw bytes), a token server and a refresher.
    async fn new(files: &[(&str, Vec<u8>)]) -> Harness {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("auths");
        fs::create_dir(&dir).unwrap();
        for (name, bytes) in files {
            fs::write(dir.join(name), bytes).unwrap();
        }
        let store = CredentialStore::open(dir.clone()).await.unwrap();

        let server = Arc::new(TokenServer::default());
        let app = axum::Router::new().route("/token", axum::routing::post(token)).with_state(server.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let token_url = format!("http://{}/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let lookup = Arc::new(Lookup(Arc::new(TestRefresher { token_url })));
        let http = Arc::new(switchyard_http::HttpClients::new());
        let refresher = Refresher::new(store.clone(), lookup, Arc::new(ConfigHandle::embedded()), http);
        Harness { _tmp: tmp, dir, store, server, refresher }
    }

    fn answer(&self, refresh_token: &str, answer: Answer) {
        self.server.answers.lock().unwrap().insert(refresh_token.into(), answer);
    }

    fn bytes(&self, name: &str) -> Vec<u8> {
        fs::read(self.dir.join(name)).unwrap()
    }

    fn json(&self, name: &str) -> Value {
        serde_json::from_slice(&self.bytes(name)).unwrap()
    }
}

/// A mock credential whose access token expires `expires_in_secs` from now.
fn credential(refresh_token: &str, expires_in_secs: i64) -> Vec<u8> {
    let value = json!({
        "type": "mock",
        "email": "a@example.com",
        "access_token": format!("old-at-{refresh_token}"),
        "refresh_token": refresh_token,
        "expired": (Utc::now() + TimeDelta::seconds(expires_in_secs)).to_rfc3339(),
        "note": "keep me",
        "custom": {"nested": [1, 2]}
    });
    serde_json::to_vec_pretty(&value).unwrap()
}

fn with_field(bytes: Vec<u8>, key: &str, value: Value) -> Vec<u8> {
    let mut object: Value = serde_json::from_slice(&bytes).unwrap();
    object[key] = value;
    serde_json::to_vec_pretty(&object).unwrap()
}

/// Bounded wait for something another task does.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !condition() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_concurrent_callers_share_one_refresh() {
    let h = Harness::new(&[("mock-a.json", credential("rt-0", 10))]).await;

    let callers: Vec<_> = (0..200)
        .map(|_| {
            let refresher = h.refresher.clone();
            tokio::spawn(async move { refresher.fresh_access_token("mock-a.json", SKEW).await })
        })
        .collect();
    for caller in callers {
        let token = tokio::time::timeout(WAIT, caller).await.expect("caller finished").unwrap();
        assert_eq!(token, Ok("new-at-1".to_owned()));
    }

    assert_eq!(h.server.calls(), 1, "exactly one refresh request");
    assert_eq!(h.server.calls_with("rt-0"), 1);
    assert_eq!(
        h.refresher.outcome_counts(),
        RefreshCounts { ok: 1, ..Default::default() },
        "one attempt, counted once"
    );
    let saved = h.json("mock-a.json");
    assert_eq!(saved["access_token"], "new-at-1");
    assert_eq!(saved["refresh_token"], "new-rt-1");
    assert_eq!(saved["note"], "keep me");
    assert_eq!(saved["custom"], json!({"nested": [1, 2]}));
    assert_eq!(fs::metadata(h.dir.join("mock-a.json")).unwrap().permissions().mode() & 0o777, 0o600);

    // Now valid for an hour: no further call.
    assert_eq!(h.refresher.fresh_access_token("mock-a.json", SKEW).await, Ok("new-at-1".to_owned()));
    assert_eq!(h.server.calls(), 1);
    let state = h.refresher.state("mock-a.json").unwrap();
    assert!(state.last_refreshed.is_some() && !state.refreshing && state.last_error.is_none());
}

#[tokio::test]
async fn a_valid_token_is_returned_without_a_call() {
    let h = Harness::new(&[("mock-a.json", credential("rt-0", 7200))]).await;
    assert_eq!(h.refresher.fresh_access_token("mock-a.json", SKEW).await, Ok("old-at-rt-0".to_owned()));
    assert_eq!(h.server.calls(), 0);
    assert!(matches!(h.refresher.fresh_access_token("nope.json", SKEW).await, Err(RefreshError::Unavailable(_))));
}

#[tokio::test]
async fn revoked_refresh_token_marks_needs_relogin_and_leaves_the_file_alone() {
    let h = Harness::new(&[("mock-a.json", credential("rt-dead", 10))]).await;
    h.answer("rt-dead", Answer::InvalidGrant);
    let before = h.bytes("mock-a.json");

    let err = h.refresher.fresh_access_token("mock-a.json", SKEW).await.unwrap_err();
    assert_eq!(err, RefreshError::Revoked("invalid_grant".into()));
    let state = h.refresher.state("mock-a.json").unwrap();
    assert_eq!(state.needs_relogin.as_deref(), Some("invalid_grant"));
    assert_eq!(state.last_error.as_deref(), Some("needs re-login: invalid_grant"));
    assert_eq!(h.bytes("mock-a.json"), before);

    // No further upstream attempt on demand...
    assert_eq!(h.refresher.fresh_access_token("mock-a.json", SKEW).await, Err(err));
    assert_eq!(h.server.calls(), 1);
    assert_eq!(h.refresher.outcome_counts(), RefreshCounts { needs_relogin: 1, ..Default::default() });

    // ...nor from the background loop: it refreshes a newly added due file, not this one.
    let background = h.refresher.spawn_background(Duration::from_millis(50));
    h.store.put_raw("mock-b.json", &credential("rt-b", 10)).await.unwrap();
    wait_until("mock-b refreshed", || h.server.issued.load(Ordering::SeqCst) == 1).await;
    wait_until("mock-b saved", || h.json("mock-b.json")["access_token"] == "new-at-1").await;
    assert_eq!(h.server.calls_with("rt-dead"), 1);
    assert_eq!(h.bytes("mock-a.json"), before);

    // A re-login (the file changes) clears the mark and the loop picks it up again.
    h.store
        .update("mock-a.json", |c| {
            c.fields_mut().insert("refresh_token".into(), json!("rt-relogin"));
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(h.refresher.state("mock-a.json").unwrap().needs_relogin, None);
    wait_until("mock-a refreshed after re-login", || h.json("mock-a.json")["access_token"] == "new-at-2").await;
    assert_eq!(h.server.calls_with("rt-relogin"), 1);
    background.abort();
}

#[tokio::test]
async fn transient_failure_backs_off_and_keeps_the_file() {
    let h = Harness::new(&[("mock-a.json", credential("rt-a", 10))]).await;
    h.answer("rt-a", Answer::ServerError);
    let before = h.bytes("mock-a.json");

    let started = Utc::now();
    let err = h.refresher.force_refresh("mock-a.json").await.unwrap_err();
    assert_eq!(err, RefreshError::Transient("token endpoint answered 500 Internal Server Error".into()));
    let state = h.refresher.state("mock-a.json").unwrap();
    assert_eq!(state.needs_relogin, None);
    assert_eq!(state.last_error.as_deref(), Some("refresh failed: token endpoint answered 500 Internal Server Error"));
    let next = state.next_attempt_after.expect("backoff recorded");
    assert!(next >= started + TimeDelta::seconds(59) && next <= Utc::now() + TimeDelta::seconds(61), "{next}");
    assert_eq!(h.bytes("mock-a.json"), before);

    // The second failure in a row doubles the wait.
    h.refresher.force_refresh("mock-a.json").await.unwrap_err();
    assert_eq!(h.refresher.outcome_counts().failed, 2);
    let next = h.refresher.state("mock-a.json").unwrap().next_attempt_after.unwrap();
    assert!(next >= Utc::now() + TimeDelta::seconds(115), "{next}");

    // The background loop respects the backoff: it refreshes another due file but not this one.
    let background = h.refresher.spawn_background(Duration::from_millis(50));
    h.store.put_raw("mock-b.json", &credential("rt-b", 10)).await.unwrap();
    wait_until("mock-b saved", || h.json("mock-b.json")["access_token"] == "new-at-1").await;
    assert_eq!(h.server.calls_with("rt-a"), 2);
    assert_eq!(h.bytes("mock-a.json"), before);
    background.abort();

    // Once the endpoint recovers, a request that needs a token gets one despite the backoff.
    h.answer("rt-a", Answer::Tokens);
    assert_eq!(h.refresher.fresh_access_token("mock-a.json", SKEW).await, Ok("new-at-2".to_owned()));
    let state = h.refresher.state("mock-a.json").unwrap();
    assert_eq!((state.last_error, state.next_attempt_after), (None, None));
}

#[tokio::test]
async fn rate_limit_waits_as_told() {
    let h = Harness::new(&[("mock-a.json", credential("rt-a", 10))]).await;
    h.answer("rt-a", Answer::TooManyRequests);

    let err = h.refresher.fresh_access_token("mock-a.json", SKEW).await.unwrap_err();
    assert_eq!(err, RefreshError::RateLimited { retry_after: Some(Duration::from_secs(120)) });
    let next = h.refresher.state("mock-a.json").unwrap().next_attempt_after.unwrap();
    assert!(next > Utc::now() + TimeDelta::seconds(110) && next <= Utc::now() + TimeDelta::seconds(120), "{next}");

    // Within the window, callers are told to wait instead of hitting the endpoint again.
    match h.refresher.fresh_access_token("mock-a.json", SKEW).await {
        Err(RefreshError::RateLimited { retry_after: Some(left) }) => assert!(left <= Duration::from_secs(120)),
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(h.server.calls(), 1);
    // Only the attempt that reached the endpoint counts.
    assert_eq!(h.refresher.outcome_counts(), RefreshCounts { rate_limited: 1, ..Default::default() });
}

#[tokio::test]
async fn background_loop_refreshes_only_what_is_due() {
    let h = Harness::new(&[
        ("mock-soon.json", credential("rt-soon", 600)),
        ("mock-far.json", credential("rt-far", 5 * 3600)),
        ("mock-disabled.json", with_field(credential("rt-disabled", 10), "disabled", json!(true))),
        ("mock-corrupt.json", b"{ not json".to_vec()),
        ("other-soon.json", with_field(credential("rt-other", 10), "type", json!("other"))),
    ])
    .await;
    let untouched: Vec<_> =
        ["mock-far.json", "mock-disabled.json", "mock-corrupt.json", "other-soon.json"].map(|n| (n, h.bytes(n))).into();

    let background = h.refresher.spawn_background(Duration::from_millis(50));
    wait_until("mock-soon refreshed", || h.json("mock-soon.json")["access_token"] == "new-at-1").await;
    assert_eq!(h.json("mock-soon.json")["note"], "keep me");
    // A file added later is picked up by a later pass, which also proves earlier passes ended.
    h.store.put_raw("mock-late.json", &credential("rt-late", 10)).await.unwrap();
    wait_until("mock-late refreshed", || h.json("mock-late.json")["access_token"] == "new-at-2").await;
    background.abort();

    let mut received = h.server.received.lock().unwrap().clone();
    received.sort();
    assert_eq!(received, ["rt-late", "rt-soon"]);
    for (name, before) in untouched {
        assert_eq!(h.bytes(name), before, "{name} must be left alone");
    }
    assert!(h.refresher.state("mock-corrupt.json").is_none());
}

#[tokio::test]
async fn force_refresh_renews_a_token_far_from_expiry() {
    let h = Harness::new(&[("mock-far.json", credential("rt-far", 5 * 3600))]).await;
    h.refresher.force_refresh("mock-far.json").await.unwrap();
    assert_eq!(h.server.calls_with("rt-far"), 1);
    let saved = h.json("mock-far.json");
    assert_eq!((saved["access_token"].as_str(), saved["refresh_token"].as_str()), (Some("new-at-1"), Some("new-rt-1")));
    assert!(h.refresher.state("mock-far.json").unwrap().last_refreshed.is_some());
}

/// Records what it hears.
#[derive(Default)]
struct Heard(Mutex<Vec<(String, Result<(), RefreshError>)>>);

impl switchyard_auth::login::RefreshObserver for Heard {
    fn refreshed(&self, name: &str, result: &Result<(), RefreshError>) {
        self.0.lock().unwrap().push((name.to_owned(), result.clone()));
    }
}

#[tokio::test]
async fn the_observer_hears_every_finished_attempt_after_it_is_saved() {
    let h = Harness::new(&[("mock-a.json", credential("rt-0", 10)), ("mock-b.json", credential("rt-dead", 10))]).await;
    h.answer("rt-dead", Answer::InvalidGrant);
    let heard = Arc::new(Heard::default());
    h.refresher.set_observer(heard.clone());

    assert!(h.refresher.fresh_access_token("mock-a.json", SKEW).await.is_ok());
    assert!(h.refresher.fresh_access_token("mock-b.json", SKEW).await.is_err());
    // Already refused: no new attempt, so nothing new to hear.
    assert!(h.refresher.fresh_access_token("mock-b.json", SKEW).await.is_err());
    let heard = heard.0.lock().unwrap().clone();
    assert_eq!(
        heard,
        [
            ("mock-a.json".to_owned(), Ok(())),
            ("mock-b.json".to_owned(), Err(RefreshError::Revoked("invalid_grant".into())))
        ]
    );
    // By the time the success is heard, the new tokens are in the store.
    assert_eq!(h.store.get("mock-a.json").unwrap().credential().unwrap().refresh_token(), Some("new-rt-1"));
}
