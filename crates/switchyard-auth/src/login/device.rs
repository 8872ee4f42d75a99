//! Device-code logins (RFC 8628) and imports, run by the same [`LoginEngine`] and sessions as
//! browser logins: `get-auth-status`, `DELETE /oauth-session` and the CLI's wait work alike.
//!
//! The poll loop honours the provider's `interval`, adds [`SLOW_DOWN_STEP`] on `slow_down`,
//! ends with [`LoginError::DeviceCodeExpired`] at the device code's deadline (its
//! `expires_in`, capped by the provider's `max_wait`), and stops at once when the session is
//! cancelled: the wait, the poll request and the provider's finishing calls are all abandoned
//! mid-flight, and nothing is written.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;

use super::{
    DeviceAuthorization, DeviceDisplay, DeviceLogin, DevicePoll, ImportInput, ImportLogin, LoginContext, LoginEngine,
    LoginError, LoginOptions, LoginOutcome, SessionWaiter, new_state,
};

/// Polls are never closer together than this, whatever `interval` a server announces.
pub const DEVICE_POLL_FLOOR: Duration = Duration::from_secs(1);
/// RFC 8628 §3.5: every `slow_down` adds 5 s to the interval.
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// A started device login: show `user_code` and the verification URI; the outcome shows up in
/// the session for `state`.
#[derive(Clone, Debug)]
pub struct StartedDevice {
    pub state: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    /// Time left to confirm: the device code's lifetime, capped by the provider's `max_wait`.
    pub expires_in: Duration,
    /// The polling interval the engine starts with.
    pub interval: Duration,
}

impl StartedDevice {
    /// The URI to show: the complete form (code embedded) when the provider gives one.
    pub fn display_uri(&self) -> &str {
        self.verification_uri_complete.as_deref().unwrap_or(&self.verification_uri)
    }
}

/// A finished import: the file it was saved as and the credential as saved.
#[derive(Debug)]
pub struct Imported {
    pub file_name: String,
    pub credential: crate::Credential,
}

impl LoginEngine {
    /// Requests a device code (synchronously, so a provider error fails here) and starts the
    /// background poll; returns what the user has to see.
    pub async fn start_device(
        self: &Arc<Self>,
        login: Arc<dyn DeviceLogin>,
        options: LoginOptions,
    ) -> Result<StartedDevice, LoginError> {
        let ctx = self.context().await?;
        let device = login.start(&ctx, &options).await?;
        let spec = login.spec();
        let lifetime = device.expires_in.min(spec.max_wait);
        let interval = device.interval.max(DEVICE_POLL_FLOOR);
        let state = format!("{}{}", spec.state_prefix, new_state());
        let expires_at = Utc::now() + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::zero());
        let display = DeviceDisplay {
            user_code: device.user_code.clone(),
            verification_uri: device.verification_uri.clone(),
            verification_uri_complete: device.verification_uri_complete.clone(),
            expires_at,
        };
        let waiter = self.sessions.register_device(spec.name, &state, display);
        let started = StartedDevice {
            state: state.clone(),
            user_code: device.user_code.clone(),
            verification_uri: device.verification_uri.clone(),
            verification_uri_complete: device.verification_uri_complete.clone(),
            expires_in: lifetime,
            interval,
        };
        let engine = self.clone();
        let deadline = Instant::now() + lifetime;
        tokio::spawn(async move {
            let poll = DevicePollRun { login: login.clone(), ctx, device, options, state, deadline, interval };
            // The device code is the grant's secret; a server may echo it in an error.
            let result =
                engine.poll_device(&poll, waiter).await.map_err(|error| error.masking(&[&poll.device.device_code]));
            engine.settle(login.spec().name, &poll.state, result);
        });
        Ok(started)
    }

    async fn poll_device(&self, run: &DevicePollRun, mut waiter: SessionWaiter) -> Result<String, LoginError> {
        let mut interval = run.interval;
        loop {
            let wake = Instant::now() + interval;
            // A poll at (or after) the deadline could only be told `expired_token`.
            if wake >= run.deadline {
                tokio::select! {
                    () = waiter.ended() => return Err(LoginError::Cancelled),
                    () = tokio::time::sleep_until(run.deadline) => return Err(LoginError::DeviceCodeExpired),
                }
            }
            tokio::select! {
                () = waiter.ended() => return Err(LoginError::Cancelled),
                () = tokio::time::sleep_until(wake) => {}
            }
            let answer = tokio::select! {
                () = waiter.ended() => return Err(LoginError::Cancelled),
                answer = run.login.poll(&run.ctx, &run.device) => answer?,
            };
            match answer {
                DevicePoll::Pending => {}
                DevicePoll::SlowDown => interval += SLOW_DOWN_STEP,
                DevicePoll::Granted(grant) => {
                    let outcome = tokio::select! {
                        () = waiter.ended() => return Err(LoginError::Cancelled),
                        outcome = run.login.finish(&run.ctx, &run.device, grant, &run.options) => outcome?,
                    };
                    // Cancel race guard, as for browser logins: past this point the session
                    // cannot be cancelled; if it already was, nothing is written.
                    if !self.sessions.start_saving(&run.state) {
                        return Err(LoginError::Cancelled);
                    }
                    return self.save(outcome).await;
                }
            }
        }
    }

    /// Runs an import and saves its credential with re-login semantics (an existing file of the
    /// same name keeps its user fields). Nothing is written when the import fails.
    pub async fn import(
        &self,
        login: &dyn ImportLogin,
        file: Option<&[u8]>,
        options: &LoginOptions,
    ) -> Result<Imported, LoginError> {
        let ctx = self.context().await?;
        let existing: Vec<(String, crate::Credential)> = self
            .store
            .list()
            .iter()
            .filter_map(|stored| stored.credential().map(|c| (stored.name.clone(), c.clone())))
            .collect();
        let LoginOutcome { file_name, credential } =
            login.import(&ctx, ImportInput { file, options, existing: &existing }).await?;
        let file_name = self.save(LoginOutcome { file_name, credential }).await?;
        let saved = self
            .store
            .get(&file_name)
            .and_then(|stored| stored.credential().cloned())
            .ok_or_else(|| LoginError::Save(format!("{file_name} is not readable after saving")))?;
        tracing::info!(provider = login.spec().name, file = %file_name, "import saved");
        Ok(Imported { file_name, credential: saved })
    }
}

/// Everything one device login's poll loop needs.
struct DevicePollRun {
    login: Arc<dyn DeviceLogin>,
    ctx: LoginContext,
    device: DeviceAuthorization,
    options: LoginOptions,
    state: String,
    deadline: Instant,
    interval: Duration,
}
