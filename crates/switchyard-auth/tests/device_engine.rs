//! The device-code poll loop of `LoginEngine::start_device`, with a scripted `DeviceLogin` on a
//! paused clock: intervals, `slow_down`, the deadline, cancellation at every stage, the save
//! (re-login keeps user fields), and what the session reports. Virtual time makes the timing
//! checks exact; real HTTP against a provider mock is covered by the Kimi tests.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value, json};
use switchyard_auth::login::{
    CallbackParams, DeliverError, DeviceAuthorization, DeviceLogin, DevicePoll, DeviceSpec, LoginContext, LoginEngine,
    LoginError, LoginOptions, LoginOutcome, SessionStatus, StartedDevice,
};
use switchyard_auth::{Credential, CredentialStore};
use switchyard_config::ConfigHandle;
use tempfile::TempDir;
use tokio::sync::watch;
use tokio::time::Instant;

const NAME: &str = "scripted";
const FILE: &str = "scripted-user@example.com.json";
/// Bound on every wait; virtual, so it costs nothing unless something hangs.
const WAIT: Duration = Duration::from_secs(3 * 60 * 60);

/// What one poll does.
#[derive(Clone, Copy, Debug)]
enum Step {
    Pending,
    SlowDown,
    Grant,
    Deny,
    Expired,
    /// A provider error (e.g. `invalid_client`).
    Fail,
    /// Never answers until `release` opens.
    Hang,
}

/// A device login whose polls follow a script and whose every step is observable.
struct Scripted {
    expires_in: Duration,
    interval: Duration,
    max_wait: Duration,
    steps: Mutex<VecDeque<Step>>,
    /// When each poll started.
    polls: Mutex<Vec<Instant>>,
    /// Polls and finishes that ran to their end (the others were dropped mid-way).
    polls_done: AtomicUsize,
    finish_started: AtomicUsize,
    finish_done: AtomicUsize,
    /// Hanging polls and `finish` wait for this to be true.
    release: watch::Sender<bool>,
    hold_finish: bool,
    fail_start: bool,
    fail_finish: bool,
}

impl Scripted {
    fn new(steps: &[Step]) -> Scripted {
        Scripted {
            expires_in: Duration::from_secs(600),
            interval: Duration::from_secs(5),
            max_wait: Duration::from_secs(15 * 60),
            steps: Mutex::new(steps.iter().copied().collect()),
            polls: Mutex::default(),
            polls_done: AtomicUsize::new(0),
            finish_started: AtomicUsize::new(0),
            finish_done: AtomicUsize::new(0),
            release: watch::Sender::new(false),
            hold_finish: false,
            fail_start: false,
            fail_finish: false,
        }
    }

    fn polls(&self) -> usize {
        self.polls.lock().unwrap().len()
    }

    /// Seconds from `start` to each poll.
    fn poll_offsets(&self, start: Instant) -> Vec<u64> {
        self.polls.lock().unwrap().iter().map(|at| at.duration_since(start).as_secs()).collect()
    }
}

#[async_trait::async_trait]
impl DeviceLogin for Scripted {
    fn spec(&self) -> DeviceSpec<'_> {
        DeviceSpec { name: NAME, aliases: &["script"], state_prefix: "scr-", max_wait: self.max_wait }
    }

    async fn start(&self, _ctx: &LoginContext, options: &LoginOptions) -> Result<DeviceAuthorization, LoginError> {
        if self.fail_start {
            return Err(LoginError::Provider("device authorization endpoint answered HTTP 503".into()));
        }
        let mut extra = Map::new();
        extra.insert("verifier".into(), json!("secret-verifier"));
        extra.insert("account".into(), json!(options.get("account").cloned().unwrap_or_else(|| "user".into())));
        Ok(DeviceAuthorization {
            device_code: "secret-device-code".into(),
            user_code: "WDJB-MJHT".into(),
            verification_uri: "https://example.com/device".into(),
            verification_uri_complete: Some("https://example.com/device?user_code=WDJB-MJHT".into()),
            expires_in: self.expires_in,
            interval: self.interval,
            extra,
        })
    }

    async fn poll(&self, _ctx: &LoginContext, device: &DeviceAuthorization) -> Result<DevicePoll, LoginError> {
        assert_eq!(device.extra["verifier"], "secret-verifier", "start's data reaches every poll");
        self.polls.lock().unwrap().push(Instant::now());
        let step = {
            let mut steps = self.steps.lock().unwrap();
            if steps.len() > 1 { steps.pop_front() } else { steps.front().copied() }.unwrap_or(Step::Pending)
        };
        let answer = match step {
            Step::Pending => Ok(DevicePoll::Pending),
            Step::SlowDown => Ok(DevicePoll::SlowDown),
            Step::Grant => {
                let mut grant = Map::new();
                grant.insert("access_token".into(), json!("at-new"));
                grant.insert("refresh_token".into(), json!("rt-new"));
                Ok(DevicePoll::Granted(grant))
            }
            Step::Deny => Err(LoginError::Denied("the user denied the device login".into())),
            Step::Expired => Err(LoginError::DeviceCodeExpired),
            Step::Fail => Err(LoginError::TokenExchange("token endpoint answered HTTP 401: invalid_client".into())),
            Step::Hang => {
                let _ = self.release.subscribe().wait_for(|open| *open).await;
                Ok(DevicePoll::Pending)
            }
        };
        self.polls_done.fetch_add(1, Ordering::SeqCst);
        answer
    }

    async fn finish(
        &self,
        _ctx: &LoginContext,
        device: &DeviceAuthorization,
        grant: Map<String, Value>,
        _options: &LoginOptions,
    ) -> Result<LoginOutcome, LoginError> {
        self.finish_started.fetch_add(1, Ordering::SeqCst);
        if self.hold_finish {
            let _ = self.release.subscribe().wait_for(|open| *open).await;
        }
        self.finish_done.fetch_add(1, Ordering::SeqCst);
        if self.fail_finish {
            return Err(LoginError::Identity("profile endpoint answered HTTP 500".into()));
        }
        let mut credential = Credential::new(NAME);
        let fields = credential.fields_mut();
        fields.insert("access_token".into(), grant["access_token"].clone());
        fields.insert("refresh_token".into(), grant["refresh_token"].clone());
        fields.insert("email".into(), json!(format!("{}@example.com", device.extra["account"].as_str().unwrap())));
        fields.insert("disabled".into(), json!(false));
        Ok(LoginOutcome { file_name: FILE.into(), credential })
    }
}

struct Harness {
    _tmp: TempDir,
    dir: PathBuf,
    store: Arc<CredentialStore>,
    engine: Arc<LoginEngine>,
}

impl Harness {
    async fn new() -> Harness {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("auths");
        let store = CredentialStore::open(dir.clone()).await.unwrap();
        let engine = LoginEngine::new(
            store.clone(),
            Arc::new(ConfigHandle::embedded()),
            Arc::new(switchyard_http::HttpClients::new()),
        );
        Harness { _tmp: tmp, dir, store, engine }
    }

    async fn start(&self, login: &Arc<Scripted>) -> StartedDevice {
        self.engine.start_device(login.clone(), LoginOptions::new()).await.expect("device login starts")
    }

    fn status(&self, state: &str) -> SessionStatus {
        self.engine.sessions().status(state)
    }

    async fn outcome(&self, state: &str) -> Result<String, LoginError> {
        tokio::time::timeout(WAIT, self.engine.wait(state)).await.expect("the login ends")
    }

    fn files(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        let mut names: Vec<String> = entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }
}

/// Waits (virtual time, bounded) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the engine's poll task for `login` is gone (it holds the only other references).
async fn poll_task_ended(login: &Arc<Scripted>) {
    until("the poll task ended", || Arc::strong_count(login) == 1).await;
}

#[tokio::test(start_paused = true)]
async fn polls_at_the_interval_and_slow_down_adds_five_seconds() {
    let h = Harness::new().await;
    let login = Arc::new(Scripted::new(&[Step::Pending, Step::SlowDown, Step::Pending, Step::SlowDown, Step::Grant]));
    let start = Instant::now();
    let started = h.start(&login).await;
    assert!(started.state.starts_with("scr-"), "{}", started.state);
    assert_eq!(started.interval, Duration::from_secs(5));

    assert_eq!(h.outcome(&started.state).await.unwrap(), FILE);
    // 5 s, then 5 s, then 10 s after the first slow_down, then 10 s, then 15 s after the second.
    assert_eq!(login.poll_offsets(start), [5, 10, 20, 30, 45]);
    assert_eq!(h.status(&started.state), SessionStatus::Completed { file_name: FILE.into() });
}

#[tokio::test(start_paused = true)]
async fn an_announced_interval_below_the_floor_is_raised_to_one_second() {
    let h = Harness::new().await;
    let mut script = Scripted::new(&[Step::Pending, Step::Pending, Step::Grant]);
    script.interval = Duration::ZERO;
    let login = Arc::new(script);
    let start = Instant::now();
    let started = h.start(&login).await;
    assert_eq!(started.interval, switchyard_auth::login::DEVICE_POLL_FLOOR);
    h.outcome(&started.state).await.unwrap();
    assert_eq!(login.poll_offsets(start), [1, 2, 3]);
}

#[tokio::test(start_paused = true)]
async fn only_pending_answers_end_at_the_device_codes_deadline_without_a_late_poll() {
    let h = Harness::new().await;
    let mut script = Scripted::new(&[Step::Pending]);
    script.expires_in = Duration::from_secs(12);
    let login = Arc::new(script);
    let start = Instant::now();
    let started = h.start(&login).await;
    assert_eq!(started.expires_in, Duration::from_secs(12));

    assert_eq!(h.outcome(&started.state).await, Err(LoginError::DeviceCodeExpired));
    assert_eq!(start.elapsed(), Duration::from_secs(12), "ends exactly at the deadline");
    assert_eq!(login.poll_offsets(start), [5, 10], "no poll after the code expired");
    let SessionStatus::Failed(error) = h.status(&started.state) else { panic!("failed") };
    assert_eq!(error.to_string(), "device code expired before the login was confirmed; start the login again");
    assert!(h.files().is_empty());
}

#[tokio::test(start_paused = true)]
async fn the_providers_max_wait_caps_a_long_lived_code() {
    let h = Harness::new().await;
    let mut script = Scripted::new(&[Step::Pending]);
    script.expires_in = Duration::from_secs(3600);
    script.max_wait = Duration::from_secs(900);
    script.interval = Duration::from_secs(60);
    let login = Arc::new(script);
    let start = Instant::now();
    let started = h.start(&login).await;
    assert_eq!(started.expires_in, Duration::from_secs(900));
    let shown = h.engine.sessions().info(&started.state).unwrap().device.unwrap();
    let left = shown.expires_at - chrono::Utc::now();
    assert!(left <= chrono::Duration::seconds(900) && left > chrono::Duration::seconds(890), "{left}");

    assert_eq!(h.outcome(&started.state).await, Err(LoginError::DeviceCodeExpired));
    assert_eq!(start.elapsed(), Duration::from_secs(900));
    assert_eq!(login.polls(), 14, "a poll every minute until 14:00; 15:00 is the deadline");
}

#[tokio::test(start_paused = true)]
async fn a_code_living_as_long_as_a_session_still_ends_as_expired_for_a_panel_that_polls() {
    let h = Harness::new().await;
    let mut script = Scripted::new(&[Step::Pending]);
    script.expires_in = switchyard_auth::login::SESSION_TTL;
    script.max_wait = switchyard_auth::login::SESSION_TTL;
    script.interval = Duration::from_secs(60);
    let login = Arc::new(script);
    let started = h.start(&login).await;
    // A panel polls the status every few seconds (each look also purges expired sessions).
    let sessions = h.engine.sessions().clone();
    let state = started.state.clone();
    let panel = tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let _ = sessions.status(&state);
        }
    });
    assert_eq!(h.outcome(&started.state).await, Err(LoginError::DeviceCodeExpired));
    assert_eq!(h.status(&started.state), SessionStatus::Failed(LoginError::DeviceCodeExpired));
    panel.abort();
}

#[tokio::test(start_paused = true)]
async fn terminal_answers_fail_the_session_with_their_message() {
    for (step, expected) in [
        (Step::Deny, LoginError::Denied("the user denied the device login".into())),
        (Step::Expired, LoginError::DeviceCodeExpired),
        (Step::Fail, LoginError::TokenExchange("token endpoint answered HTTP 401: invalid_client".into())),
    ] {
        let h = Harness::new().await;
        let login = Arc::new(Scripted::new(&[Step::Pending, step]));
        let started = h.start(&login).await;
        assert_eq!(h.outcome(&started.state).await, Err(expected.clone()), "{step:?}");
        assert_eq!(h.status(&started.state), SessionStatus::Failed(expected), "{step:?}");
        assert_eq!(login.polls(), 2, "{step:?}: nothing is polled after a terminal answer");
        assert!(h.files().is_empty(), "{step:?}");
        poll_task_ended(&login).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_finish_fails_the_session_and_writes_nothing() {
    let h = Harness::new().await;
    let mut script = Scripted::new(&[Step::Grant]);
    script.fail_finish = true;
    let login = Arc::new(script);
    let started = h.start(&login).await;
    let error = h.outcome(&started.state).await.unwrap_err();
    assert_eq!(error.to_string(), "Failed to fetch user info: profile endpoint answered HTTP 500");
    assert!(h.files().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failing_start_registers_no_session() {
    let h = Harness::new().await;
    let mut script = Scripted::new(&[Step::Grant]);
    script.fail_start = true;
    let login = Arc::new(script);
    let error = h.engine.start_device(login.clone(), LoginOptions::new()).await.unwrap_err();
    assert_eq!(error, LoginError::Provider("device authorization endpoint answered HTTP 503".into()));
    assert_eq!(Arc::strong_count(&login), 1, "no poll task was started");
    assert_eq!(login.polls(), 0);
}

#[tokio::test(start_paused = true)]
async fn cancel_while_waiting_between_polls_stops_at_once() {
    let h = Harness::new().await;
    let login = Arc::new(Scripted::new(&[Step::Pending]));
    let started = h.start(&login).await;
    until("the first poll", || login.polls_done.load(Ordering::SeqCst) == 1).await;

    let cancelled_at = Instant::now();
    assert!(h.engine.sessions().cancel(&started.state));
    poll_task_ended(&login).await;
    assert!(cancelled_at.elapsed() < Duration::from_secs(5), "the task did not wait for the next interval");
    assert_eq!(h.outcome(&started.state).await, Err(LoginError::Cancelled));
    assert_eq!(h.status(&started.state), SessionStatus::Unknown);

    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(login.polls(), 1, "no poll after the cancel");
    assert!(h.files().is_empty());
}

#[tokio::test(start_paused = true)]
async fn cancel_during_a_poll_abandons_the_request() {
    let h = Harness::new().await;
    let login = Arc::new(Scripted::new(&[Step::Hang, Step::Grant]));
    let started = h.start(&login).await;
    until("the poll is in flight", || login.polls() == 1).await;

    assert!(h.engine.sessions().cancel(&started.state));
    poll_task_ended(&login).await;
    assert_eq!(login.polls_done.load(Ordering::SeqCst), 0, "the hanging poll was dropped, not awaited");
    login.release.send_replace(true);
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(login.polls(), 1);
    assert_eq!(login.finish_started.load(Ordering::SeqCst), 0);
    assert!(h.files().is_empty());
}

#[tokio::test(start_paused = true)]
async fn cancel_while_finish_runs_saves_nothing() {
    let h = Harness::new().await;
    let mut script = Scripted::new(&[Step::Grant]);
    script.hold_finish = true;
    let login = Arc::new(script);
    let started = h.start(&login).await;
    until("finish is running", || login.finish_started.load(Ordering::SeqCst) == 1).await;
    assert_eq!(h.status(&started.state), SessionStatus::Pending);

    assert!(h.engine.sessions().cancel(&started.state));
    poll_task_ended(&login).await;
    login.release.send_replace(true);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(login.finish_done.load(Ordering::SeqCst), 0, "finish was abandoned mid-way");
    assert_eq!(h.outcome(&started.state).await, Err(LoginError::Cancelled));
    assert!(h.files().is_empty(), "nothing written: {:?}", h.files());
}

#[tokio::test(start_paused = true)]
async fn a_relogin_replaces_the_tokens_and_keeps_the_users_fields() {
    let h = Harness::new().await;
    let mut old = Credential::new(NAME);
    for (key, value) in [
        ("access_token", json!("at-old")),
        ("refresh_token", json!("rt-old")),
        ("email", json!("user@example.com")),
        ("prefix", json!("work")),
        ("note", json!("team account")),
        ("priority", json!(7)),
        ("proxy_url", json!("socks5://127.0.0.1:1080")),
        ("disabled", json!(true)),
    ] {
        old.fields_mut().insert(key.into(), value);
    }
    h.store.save(FILE, &old).await.unwrap();

    let login = Arc::new(Scripted::new(&[Step::Grant]));
    let started = h.start(&login).await;
    assert_eq!(h.outcome(&started.state).await.unwrap(), FILE);
    let saved: Value = serde_json::from_slice(&std::fs::read(h.dir.join(FILE)).unwrap()).unwrap();
    assert_eq!(saved["access_token"], "at-new");
    assert_eq!(saved["refresh_token"], "rt-new");
    for (key, value) in [
        ("prefix", json!("work")),
        ("note", json!("team account")),
        ("priority", json!(7)),
        ("proxy_url", json!("socks5://127.0.0.1:1080")),
        ("disabled", json!(true)),
    ] {
        assert_eq!(saved[key], value, "{key} survives the re-login");
    }
    assert_eq!(h.files(), [FILE]);
}

#[tokio::test(start_paused = true)]
async fn the_session_shows_the_code_while_waiting_then_the_file() {
    let h = Harness::new().await;
    let login = Arc::new(Scripted::new(&[Step::Pending, Step::Pending, Step::Grant]));
    let started = h.start(&login).await;
    assert_eq!(started.user_code, "WDJB-MJHT");
    assert_eq!(started.display_uri(), "https://example.com/device?user_code=WDJB-MJHT");

    let info = h.engine.sessions().info(&started.state).unwrap();
    assert_eq!(info.provider, NAME);
    assert_eq!(info.status, SessionStatus::Pending);
    let device = info.device.expect("a device session shows its code");
    assert_eq!(device.user_code, "WDJB-MJHT");
    assert_eq!(device.verification_uri, "https://example.com/device");
    assert_eq!(device.verification_uri_complete.as_deref(), Some("https://example.com/device?user_code=WDJB-MJHT"));
    // The display holds nothing secret.
    let shown = format!("{device:?}");
    assert!(!shown.contains("secret-device-code") && !shown.contains("secret-verifier"), "{shown}");

    assert_eq!(h.outcome(&started.state).await.unwrap(), FILE);
    assert_eq!(h.status(&started.state), SessionStatus::Completed { file_name: FILE.into() });
}

#[tokio::test(start_paused = true)]
async fn callbacks_delivered_to_a_device_session_are_refused() {
    let h = Harness::new().await;
    let login = Arc::new(Scripted::new(&[Step::Pending, Step::Grant]));
    let started = h.start(&login).await;
    let callback = || CallbackParams { code: Some("stolen".into()), state: Some(started.state.clone()), error: None };
    let refused = h.engine.sessions().deliver(&started.state, Some(NAME), callback()).unwrap_err();
    assert_eq!(refused, DeliverError::NotWaiting);
    assert_eq!(refused.http_status(), 409);
    assert_eq!(h.status(&started.state), SessionStatus::Pending, "a refused callback changes nothing");

    h.outcome(&started.state).await.unwrap();
    let refused = h.engine.sessions().deliver(&started.state, None, callback()).unwrap_err();
    assert_eq!((refused.http_status(), refused), (409, DeliverError::AlreadyCompleted));
}

#[tokio::test(start_paused = true)]
async fn concurrent_device_logins_are_independent() {
    let h = Harness::new().await;
    let slow = Arc::new(Scripted::new(&[Step::Pending]));
    let fast = Arc::new(Scripted::new(&[Step::Grant]));
    let first = h.start(&slow).await;
    let second = h.start(&fast).await;
    assert_ne!(first.state, second.state);
    assert_eq!(h.outcome(&second.state).await.unwrap(), FILE);
    assert_eq!(h.status(&first.state), SessionStatus::Pending, "completing one login leaves the other waiting");
    assert!(h.engine.sessions().cancel(&first.state));
    poll_task_ended(&slow).await;
}
