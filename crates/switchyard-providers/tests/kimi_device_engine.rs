//! `LoginEngine::start_device` with Kimi against the mock Kimi server over real HTTP: the poll
//! intervals as the server sees them, `slow_down`, expired and denied codes, the deadline, and
//! cancelling while waiting and while a poll is in flight. Waits are bounded; the only timing
//! checks are lower bounds the engine guarantees (it never polls early).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use switchyard_auth::CredentialStore;
use switchyard_auth::login::{DeviceLogin, LoginEngine, LoginError, LoginOptions, SessionStatus, StartedDevice};
use switchyard_config::ConfigHandle;
use switchyard_providers::kimi::Kimi;
use switchyard_testkit::kimi::{DeviceAnswer, MockKimi, TOKEN_PATH};
use tempfile::TempDir;
use tokio::time::Instant;

/// Bound on every wait: a broken engine fails instead of hanging.
const DEADLINE: Duration = Duration::from_secs(60);

struct Harness {
    _tmp: TempDir,
    dir: PathBuf,
    mock: MockKimi,
    engine: Arc<LoginEngine>,
    /// The login the engine runs; the poll task holds the other references while it lives.
    login: Arc<dyn DeviceLogin>,
}

impl Harness {
    async fn start() -> Harness {
        let mock = MockKimi::start().await;
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("auths");
        let config = tmp.path().join("config.yaml");
        std::fs::write(&config, format!("auth-dir: {}\n{}", dir.display(), mock.upstream_urls_yaml())).unwrap();
        let (handle, _) = ConfigHandle::from_file(&config).unwrap();
        let store = CredentialStore::open(dir.clone()).await.unwrap();
        let engine = LoginEngine::new(store, Arc::new(handle), Arc::new(switchyard_http::HttpClients::new()));
        Harness { _tmp: tmp, dir, mock, engine, login: Arc::new(Kimi) }
    }

    async fn begin(&self) -> StartedDevice {
        self.engine.start_device(self.login.clone(), LoginOptions::new()).await.expect("device login starts")
    }

    async fn outcome(&self, state: &str) -> Result<String, LoginError> {
        tokio::time::timeout(DEADLINE, self.engine.wait(state)).await.expect("the login ends in time")
    }

    fn files(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return Vec::new() };
        entries.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
    }

    async fn until(&self, what: &str, done: impl Fn(&Harness) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn poll_task_ended(&self) {
        self.until("the poll task ended", |h| Arc::strong_count(&h.login) == 1).await;
    }
}

#[tokio::test]
async fn pending_then_slow_down_then_approval_with_the_interval_grown_by_five_seconds() {
    let h = Harness::start().await;
    h.mock.set_device_timing(600, 1);
    h.mock.set_answers(&[DeviceAnswer::Pending, DeviceAnswer::SlowDown, DeviceAnswer::Approve]);
    let started = h.begin().await;
    assert!(started.state.starts_with("kmi-"), "{}", started.state);
    assert_eq!(started.interval, Duration::from_secs(1));
    assert_eq!(h.engine.sessions().status(&started.state), SessionStatus::Pending);

    let file = h.outcome(&started.state).await.expect("approved");
    let polls = h.mock.poll_times();
    assert_eq!(polls.len(), 3, "pending, slow_down, approval: the mock never had to say slow down itself");
    assert!(polls[1] - polls[0] >= Duration::from_secs(1), "{:?}", polls[1] - polls[0]);
    assert!(polls[2] - polls[1] >= Duration::from_secs(6), "slow_down adds 5 s: {:?}", polls[2] - polls[1]);

    assert!(file.starts_with("kimi-") && file.ends_with(".json"), "{file}");
    let path = h.dir.join(&file);
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    let saved: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(saved["type"], "kimi");
    let device_id = saved["device_id"].as_str().unwrap();
    for poll in h.mock.requests_to(TOKEN_PATH) {
        assert_eq!(poll.headers["x-msh-device-id"], device_id, "one device id for the whole login");
    }
    assert_eq!(h.engine.sessions().status(&started.state), SessionStatus::Completed { file_name: file });
}

#[tokio::test]
async fn an_expired_code_and_a_denial_end_the_login_and_write_nothing() {
    let h = Harness::start().await;
    h.mock.set_device_timing(600, 1);
    h.mock.set_answers(&[DeviceAnswer::Pending, DeviceAnswer::Expire]);
    let started = h.begin().await;
    assert_eq!(h.outcome(&started.state).await, Err(LoginError::DeviceCodeExpired));
    assert_eq!(h.engine.sessions().status(&started.state), SessionStatus::Failed(LoginError::DeviceCodeExpired));
    assert_eq!(h.mock.polls(), 2);

    h.mock.set_answers(&[DeviceAnswer::Deny]);
    let started = h.begin().await;
    let denied = h.outcome(&started.state).await.unwrap_err();
    assert_eq!(denied.to_string(), "Authentication failed: the user denied the device login");
    assert!(h.files().is_empty(), "{:?}", h.files());
}

#[tokio::test]
async fn a_code_nobody_confirms_ends_at_its_expires_in_without_a_poll_past_it() {
    let h = Harness::start().await;
    h.mock.set_device_timing(3, 1);
    h.mock.set_answers(&[DeviceAnswer::Pending]);
    let started = h.begin().await;
    assert_eq!(started.expires_in, Duration::from_secs(3));
    assert_eq!(h.outcome(&started.state).await, Err(LoginError::DeviceCodeExpired));
    // Polls at 1 s and 2 s; the next one would be due at the deadline, so there is none. (The
    // mock would also have answered it `expired_token`.)
    assert_eq!(h.mock.polls(), 2);
    h.poll_task_ended().await;
    assert!(h.files().is_empty());
}

#[tokio::test]
async fn cancel_between_polls_sends_no_further_request() {
    let h = Harness::start().await;
    h.mock.set_device_timing(600, 1);
    h.mock.set_answers(&[DeviceAnswer::Pending]);
    let started = h.begin().await;
    h.until("the first poll", |h| h.mock.polls() == 1).await;
    assert!(h.engine.sessions().cancel(&started.state));
    h.poll_task_ended().await;
    assert_eq!(h.mock.polls(), 1, "no poll after the cancel");
    assert_eq!(h.engine.sessions().status(&started.state), SessionStatus::Unknown);
    assert_eq!(h.outcome(&started.state).await, Err(LoginError::Cancelled));
    assert!(h.files().is_empty());
}

#[tokio::test]
async fn cancel_while_a_poll_is_in_flight_abandons_it_and_writes_nothing() {
    let h = Harness::start().await;
    h.mock.set_device_timing(600, 1);
    h.mock.set_answers(&[DeviceAnswer::Approve]);
    h.mock.hold_polls(true);
    let started = h.begin().await;
    h.until("a poll is held at the mock", |h| h.mock.polls() == 1).await;

    assert!(h.engine.sessions().cancel(&started.state));
    // The task ends while the mock still holds the poll: it did not wait for the answer.
    h.poll_task_ended().await;
    h.mock.hold_polls(false);
    assert_eq!(h.mock.polls(), 1);
    assert!(h.files().is_empty(), "an approval that arrives after the cancel saves nothing");
    assert_eq!(h.engine.sessions().status(&started.state), SessionStatus::Unknown);
}
