//! In-memory login sessions keyed by `state` (spec §2.7): who is waiting for which callback,
//! and how each login ended, for `/get-auth-status`, `/oauth-callback` and the CLI.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use super::{CallbackParams, LoginError};

/// Pending and failed sessions live this long (device flows wait up to 30 min); setting an
/// error restarts it so the UI can still read the error.
pub const SESSION_TTL: Duration = Duration::from_secs(30 * 60);
/// A completed session is kept this long, so a status poll right after completion sees it.
pub const COMPLETED_TTL: Duration = Duration::from_secs(60);
/// [`SessionStore::wait_outcome`] re-checks at least this often, because expiry is lazy and
/// wakes nobody.
const OUTCOME_RECHECK: Duration = Duration::from_secs(1);

/// Where a login stands, as the management API reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStatus {
    /// Never registered, expired, or cancelled.
    Unknown,
    Pending,
    /// The login failed; the error is the one the login ended with.
    Failed(LoginError),
    Completed {
        file_name: String,
    },
}

/// One session as seen from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The login name it was registered for (e.g. `anthropic`).
    pub provider: String,
    pub status: SessionStatus,
    pub created_at: DateTime<Utc>,
    /// For device-code logins: what the user has to enter, and where.
    pub device: Option<DeviceDisplay>,
}

/// The public half of a device authorization, kept with its session so a status poll (or a
/// panel that reloads) can show the code again. Holds no secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDisplay {
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    /// When the engine stops polling.
    pub expires_at: DateTime<Utc>,
}

/// Why a callback was not handed to its session. [`DeliverError::http_status`] and
/// [`DeliverError::message`] are what `POST /oauth-callback` answers (spec §2.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliverError {
    UnknownState,
    AlreadyCompleted,
    /// The session already failed; carries its error.
    Failed(LoginError),
    ProviderMismatch,
    /// A callback for this session was already accepted: each login completes once.
    AlreadyDelivered,
    /// The session is pending but nobody waits for a callback any more (its wait just timed
    /// out, or it is a device-flow session, which takes no callbacks).
    NotWaiting,
}

impl DeliverError {
    /// The HTTP status `POST /oauth-callback` answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            DeliverError::UnknownState => 404,
            DeliverError::ProviderMismatch => 400,
            DeliverError::AlreadyCompleted
            | DeliverError::Failed(_)
            | DeliverError::AlreadyDelivered
            | DeliverError::NotWaiting => 409,
        }
    }

    /// The error text for the response body (the same as `Display`).
    pub fn message(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for DeliverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            DeliverError::UnknownState => "unknown or expired state",
            DeliverError::AlreadyCompleted => "oauth flow is already completed",
            DeliverError::Failed(error) => return fmt::Display::fmt(error, f),
            DeliverError::ProviderMismatch => "provider does not match state",
            DeliverError::AlreadyDelivered => "oauth callback already received",
            DeliverError::NotWaiting => "oauth flow is no longer waiting for a callback",
        };
        f.write_str(text)
    }
}

impl std::error::Error for DeliverError {}

/// The receiving end of a session's one callback.
pub struct SessionWaiter {
    receiver: oneshot::Receiver<CallbackParams>,
}

impl SessionWaiter {
    /// The delivered callback; [`LoginError::Timeout`] when none arrives in time;
    /// [`LoginError::Cancelled`] when the session was cancelled, replaced or expired.
    pub async fn wait(self, timeout: Duration) -> Result<CallbackParams, LoginError> {
        match tokio::time::timeout(timeout, self.receiver).await {
            Ok(Ok(params)) => Ok(params),
            Ok(Err(_)) => Err(LoginError::Cancelled),
            Err(_) => Err(LoginError::Timeout),
        }
    }

    /// Resolves once the session is gone (cancelled, replaced, expired) or has settled. Device
    /// sessions take no callback, so for them this only ever means "stop polling".
    pub async fn ended(&mut self) {
        let _ = (&mut self.receiver).await;
    }
}

enum Phase {
    Pending,
    /// Claimed by [`SessionStore::start_saving`]: reported as pending, but no longer
    /// cancellable, so a cancel can never race with the write.
    Saving,
    Failed(LoginError),
    Completed {
        file_name: String,
    },
}

struct Session {
    provider: String,
    phase: Phase,
    created_at: DateTime<Utc>,
    expires_at: Instant,
    /// Taken by the first accepted callback. Device sessions keep it untaken: its only job
    /// there is to be dropped, which tells the poll loop the session was cancelled.
    delivery: Option<oneshot::Sender<CallbackParams>>,
    device: Option<DeviceDisplay>,
}

impl Session {
    fn status(&self) -> SessionStatus {
        match &self.phase {
            Phase::Pending | Phase::Saving => SessionStatus::Pending,
            Phase::Failed(error) => SessionStatus::Failed(error.clone()),
            Phase::Completed { file_name } => SessionStatus::Completed { file_name: file_name.clone() },
        }
    }
}

/// All login sessions of this process. Share as `Arc<SessionStore>`.
#[derive(Default)]
pub struct SessionStore {
    sessions: Mutex<HashMap<String, Session>>,
    /// Woken on every status change.
    changed: Notify,
}

impl fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore").finish_non_exhaustive()
    }
}

impl SessionStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a pending session for `state`, replacing any session with the same state (whose
    /// waiter then sees [`LoginError::Cancelled`]).
    pub fn register(&self, provider: &str, state: &str) -> SessionWaiter {
        self.insert(provider, state, None, SESSION_TTL)
    }

    /// Like [`register`](Self::register), for a device-code login: callbacks are refused
    /// ([`DeliverError::NotWaiting`]) and `device` is reported with the session. The session
    /// outlives the code (a 30-minute code would otherwise expire with its session, and the
    /// login would end "unknown" instead of "expired").
    pub fn register_device(&self, provider: &str, state: &str, device: DeviceDisplay) -> SessionWaiter {
        let code_left = (device.expires_at - Utc::now()).to_std().unwrap_or_default();
        let ttl = SESSION_TTL.max(code_left + COMPLETED_TTL);
        self.insert(provider, state, Some(device), ttl)
    }

    fn insert(&self, provider: &str, state: &str, device: Option<DeviceDisplay>, ttl: Duration) -> SessionWaiter {
        let (sender, receiver) = oneshot::channel();
        let session = Session {
            provider: provider.to_owned(),
            phase: Phase::Pending,
            created_at: Utc::now(),
            expires_at: Instant::now() + ttl,
            delivery: Some(sender),
            device,
        };
        self.lock().insert(state.to_owned(), session);
        self.changed.notify_waiters();
        SessionWaiter { receiver }
    }

    /// Hands a callback to the pending session for `state`. With `provider`, the session must
    /// belong to that login (compared case-insensitively; callers map aliases first).
    pub fn deliver(&self, state: &str, provider: Option<&str>, params: CallbackParams) -> Result<(), DeliverError> {
        let mut sessions = self.lock();
        let session = sessions.get_mut(state).ok_or(DeliverError::UnknownState)?;
        match &session.phase {
            Phase::Completed { .. } => return Err(DeliverError::AlreadyCompleted),
            Phase::Failed(error) => return Err(DeliverError::Failed(error.clone())),
            Phase::Pending | Phase::Saving => {}
        }
        if provider.is_some_and(|p| !p.eq_ignore_ascii_case(&session.provider)) {
            return Err(DeliverError::ProviderMismatch);
        }
        if session.device.is_some() {
            return Err(DeliverError::NotWaiting);
        }
        let sender = session.delivery.take().ok_or(DeliverError::AlreadyDelivered)?;
        sender.send(params).map_err(|_| DeliverError::NotWaiting)
    }

    pub fn status(&self, state: &str) -> SessionStatus {
        self.lock().get(state).map_or(SessionStatus::Unknown, Session::status)
    }

    pub fn info(&self, state: &str) -> Option<SessionInfo> {
        self.lock().get(state).map(|s| SessionInfo {
            provider: s.provider.clone(),
            status: s.status(),
            created_at: s.created_at,
            device: s.device.clone(),
        })
    }

    /// Pending (including while its result is being saved).
    pub fn is_pending(&self, state: &str) -> bool {
        self.status(state) == SessionStatus::Pending
    }

    /// Marks a not yet completed session failed and keeps it (with its error) for another
    /// [`SESSION_TTL`]. Later callbacks are refused with the error.
    pub fn fail(&self, state: &str, error: LoginError) {
        let mut sessions = self.lock();
        let Some(session) = sessions.get_mut(state) else { return };
        if matches!(session.phase, Phase::Completed { .. }) {
            return;
        }
        session.phase = Phase::Failed(error);
        session.expires_at = Instant::now() + SESSION_TTL;
        session.delivery = None;
        drop(sessions);
        self.changed.notify_waiters();
    }

    /// Marks a pending session completed with the file it saved; kept for [`COMPLETED_TTL`].
    /// Other sessions, even of the same provider, are not touched.
    pub fn complete(&self, state: &str, file_name: &str) {
        let mut sessions = self.lock();
        let Some(session) = sessions.get_mut(state) else { return };
        if !matches!(session.phase, Phase::Pending | Phase::Saving) {
            return;
        }
        session.phase = Phase::Completed { file_name: file_name.to_owned() };
        session.expires_at = Instant::now() + COMPLETED_TTL;
        session.delivery = None;
        drop(sessions);
        self.changed.notify_waiters();
    }

    /// Removes a pending session: its waiter sees [`LoginError::Cancelled`] and nothing gets
    /// saved for it. False when there is no such session, it already ended, or its result is
    /// already being saved.
    pub fn cancel(&self, state: &str) -> bool {
        let mut sessions = self.lock();
        if !sessions.get(state).is_some_and(|s| matches!(s.phase, Phase::Pending)) {
            return false;
        }
        sessions.remove(state);
        drop(sessions);
        self.changed.notify_waiters();
        true
    }

    /// The last step before a login writes its file: moves a pending session to "saving", after
    /// which [`cancel`](Self::cancel) refuses it. False when it is no longer pending (cancelled,
    /// expired, failed) — the caller must then not write anything.
    pub fn start_saving(&self, state: &str) -> bool {
        let mut sessions = self.lock();
        match sessions.get_mut(state) {
            Some(session) if matches!(session.phase, Phase::Pending) => {
                session.phase = Phase::Saving;
                true
            }
            _ => false,
        }
    }

    /// Waits until the session is no longer pending and returns how it ended
    /// ([`SessionStatus::Unknown`] when it was cancelled or expired).
    pub async fn wait_outcome(&self, state: &str) -> SessionStatus {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            // Registered before reading the status, so a change in between still wakes us.
            changed.as_mut().enable();
            let status = self.status(state);
            if status != SessionStatus::Pending {
                return status;
            }
            let _ = tokio::time::timeout(OUTCOME_RECHECK, changed).await;
        }
    }

    /// The map with expired sessions dropped (lazy expiry: every access purges).
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        // Every update is a single insert/remove/field write, so a poisoned map is consistent.
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        sessions.retain(|_, s| s.expires_at > now);
        sessions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn callback(code: &str, state: &str) -> CallbackParams {
        CallbackParams { code: Some(code.into()), state: Some(state.into()), error: None }
    }

    #[tokio::test]
    async fn delivered_callback_reaches_the_waiter_once() {
        let store = SessionStore::new();
        let waiter = store.register("anthropic", "s1");
        assert!(store.is_pending("s1"));
        store.deliver("s1", Some("ANTHROPIC"), callback("c", "s1")).unwrap();
        assert_eq!(store.deliver("s1", None, callback("c2", "s1")), Err(DeliverError::AlreadyDelivered));
        assert_eq!(waiter.wait(Duration::from_secs(5)).await.unwrap(), callback("c", "s1"));
        assert_eq!(store.status("s1"), SessionStatus::Pending);
    }

    #[tokio::test]
    async fn deliver_errors_follow_cpa_order_and_statuses() {
        let store = SessionStore::new();
        assert_eq!(store.deliver("nope", None, callback("c", "nope")), Err(DeliverError::UnknownState));

        let _w = store.register("codex", "s1");
        assert_eq!(store.deliver("s1", Some("anthropic"), callback("c", "s1")), Err(DeliverError::ProviderMismatch));
        store.fail("s1", LoginError::StateMismatch);
        assert_eq!(store.status("s1"), SessionStatus::Failed(LoginError::StateMismatch));
        let refused = store.deliver("s1", Some("anthropic"), callback("c", "s1"));
        assert_eq!(refused, Err(DeliverError::Failed(LoginError::StateMismatch)));
        assert_eq!(refused.unwrap_err().message(), "State code error");

        let _w2 = store.register("codex", "s2");
        store.complete("s2", "codex-a.json");
        assert_eq!(store.status("s2"), SessionStatus::Completed { file_name: "codex-a.json".into() });
        assert_eq!(store.deliver("s2", None, callback("c", "s2")), Err(DeliverError::AlreadyCompleted));
        store.fail("s2", LoginError::Provider("late".into()));
        assert_eq!(store.status("s2"), SessionStatus::Completed { file_name: "codex-a.json".into() });

        let http = |e: DeliverError| (e.http_status(), e.message());
        assert_eq!(http(DeliverError::UnknownState), (404, "unknown or expired state".into()));
        assert_eq!(http(DeliverError::AlreadyCompleted), (409, "oauth flow is already completed".into()));
        assert_eq!(http(DeliverError::Failed(LoginError::Provider("boom".into()))), (409, "boom".into()));
        let timeout = DeliverError::Failed(LoginError::Timeout);
        assert_eq!(http(timeout), (409, "Timeout waiting for OAuth callback".into()));
        assert_eq!(http(DeliverError::ProviderMismatch), (400, "provider does not match state".into()));
        assert_eq!(DeliverError::AlreadyDelivered.http_status(), 409);
        assert_eq!(DeliverError::NotWaiting.http_status(), 409);
    }

    #[tokio::test]
    async fn waiter_times_out_and_late_callbacks_are_refused() {
        let store = SessionStore::new();
        let waiter = store.register("xai", "s1");
        assert_eq!(waiter.wait(Duration::from_millis(10)).await, Err(LoginError::Timeout));
        assert_eq!(store.deliver("s1", None, callback("c", "s1")), Err(DeliverError::NotWaiting));
    }

    #[tokio::test]
    async fn cancel_only_pending_sessions_and_wakes_the_waiter() {
        let store = SessionStore::new();
        let waiter = store.register("anthropic", "s1");
        assert!(store.cancel("s1"));
        assert!(!store.cancel("s1"));
        assert_eq!(store.status("s1"), SessionStatus::Unknown);
        assert_eq!(waiter.wait(Duration::from_secs(5)).await, Err(LoginError::Cancelled));
        assert_eq!(store.deliver("s1", None, callback("c", "s1")), Err(DeliverError::UnknownState));

        let _w = store.register("anthropic", "s2");
        store.fail("s2", LoginError::Provider("x".into()));
        assert!(!store.cancel("s2"));
        let _w = store.register("anthropic", "s3");
        assert!(store.start_saving("s3"));
        assert!(!store.cancel("s3"), "a session being saved cannot be cancelled");
        assert!(store.is_pending("s3"));
        assert!(!store.start_saving("s3"));
        assert!(!store.start_saving("unknown"));
    }

    #[tokio::test]
    async fn register_overwrites_and_cancels_the_old_waiter() {
        let store = SessionStore::new();
        let old = store.register("anthropic", "s1");
        store.fail("s1", LoginError::Provider("x".into()));
        let new = store.register("codex", "s1");
        assert_eq!(old.wait(Duration::from_secs(5)).await, Err(LoginError::Cancelled));
        assert_eq!(store.info("s1").unwrap().provider, "codex");
        assert_eq!(store.status("s1"), SessionStatus::Pending);
        store.deliver("s1", Some("codex"), callback("c", "s1")).unwrap();
        assert!(new.wait(Duration::from_secs(5)).await.is_ok());
    }

    #[tokio::test]
    async fn completion_touches_only_its_own_state() {
        let store = SessionStore::new();
        let _a = store.register("anthropic", "a");
        let _b = store.register("anthropic", "b");
        store.complete("a", "claude-a.json");
        assert_eq!(store.status("a"), SessionStatus::Completed { file_name: "claude-a.json".into() });
        assert_eq!(store.status("b"), SessionStatus::Pending);
    }

    #[tokio::test(start_paused = true)]
    async fn ttls_expire_lazily() {
        let store = SessionStore::new();
        let _p = store.register("p", "pending");
        let _f = store.register("p", "failed");
        let _c = store.register("p", "done");
        store.complete("done", "p-x.json");

        tokio::time::advance(COMPLETED_TTL + Duration::from_secs(1)).await;
        assert_eq!(store.status("done"), SessionStatus::Unknown);
        assert_eq!(store.status("pending"), SessionStatus::Pending);

        tokio::time::advance(SESSION_TTL - COMPLETED_TTL - Duration::from_secs(2)).await;
        store.fail("failed", LoginError::Provider("boom".into())); // refreshes the TTL
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(store.status("pending"), SessionStatus::Unknown);
        assert_eq!(store.status("failed"), SessionStatus::Failed(LoginError::Provider("boom".into())));
        tokio::time::advance(SESSION_TTL).await;
        assert_eq!(store.status("failed"), SessionStatus::Unknown);
    }

    #[tokio::test]
    async fn wait_outcome_returns_when_the_session_settles() {
        let store = std::sync::Arc::new(SessionStore::new());
        let _w = store.register("p", "s1");
        let waiting = tokio::spawn({
            let store = store.clone();
            async move { store.wait_outcome("s1").await }
        });
        store.complete("s1", "p-1.json");
        let outcome = tokio::time::timeout(Duration::from_secs(5), waiting).await.unwrap().unwrap();
        assert_eq!(outcome, SessionStatus::Completed { file_name: "p-1.json".into() });
        assert_eq!(store.wait_outcome("never-registered").await, SessionStatus::Unknown);
    }
}
