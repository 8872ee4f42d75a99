//! Runs a [`BrowserLogin`] end to end: state and PKCE, the optional local callback listener,
//! the session, waiting for the callback, the provider's token exchange, and the re-login save
//! (spec §0.3, §2.3).

use std::sync::Arc;
use std::time::Duration;

use switchyard_config::ConfigHandle;
use switchyard_http::HttpClients;

use super::{
    AuthorizeRequest, BrowserLogin, CallbackListener, LoginContext, LoginError, LoginOptions, LoginOutcome, Pkce,
    SessionStatus, SessionStore, SessionWaiter, bind_callback_listener, new_state,
};
use crate::{CredentialStore, StoreError};

/// How long `switchyard login` waits for the browser (CPA's CLI: 5 min).
pub const CLI_CALLBACK_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// How long a management (web UI) login waits: as long as its session lives.
pub const WEB_CALLBACK_TIMEOUT: Duration = super::SESSION_TTL;
/// The local listener only ever serves this machine's browser.
const CALLBACK_HOST: &str = "127.0.0.1";

/// How to run one login.
#[derive(Clone, Debug)]
pub struct StartOptions {
    /// Start the local callback listener (CLI). Without it the callback must arrive through
    /// [`SessionStore::deliver`] (main-port route, `POST /oauth-callback`, a pasted URL).
    pub listen: bool,
    /// Callback port instead of the provider's default; 0 = any free port (needs `listen`).
    pub callback_port: Option<u16>,
    /// How long to wait for the callback: [`CLI_CALLBACK_TIMEOUT`] or [`WEB_CALLBACK_TIMEOUT`].
    pub timeout: Duration,
    pub options: LoginOptions,
}

/// A started login: open `url` in a browser; the outcome shows up in the session for `state`.
pub struct StartedLogin {
    pub state: String,
    pub url: String,
    pub redirect_uri: String,
    /// The port the local listener is bound to, when one was started.
    pub listener_port: Option<u16>,
}

/// Everything the waiting task needs to finish one login.
struct Flow {
    login: Arc<dyn BrowserLogin>,
    ctx: LoginContext,
    state: String,
    pkce: Option<Pkce>,
    redirect_uri: String,
    options: LoginOptions,
}

impl Flow {
    fn request(&self) -> AuthorizeRequest<'_> {
        AuthorizeRequest {
            state: &self.state,
            pkce: self.pkce.as_ref(),
            redirect_uri: &self.redirect_uri,
            options: &self.options,
        }
    }
}

/// Runs browser logins. Share as `Arc<LoginEngine>`.
pub struct LoginEngine {
    pub(super) sessions: Arc<SessionStore>,
    pub(super) store: Arc<CredentialStore>,
    /// Logins go through the global `proxy-url` (the account and its own proxy do not exist yet).
    pub(super) http: Arc<HttpClients>,
    pub(super) config: Arc<ConfigHandle>,
}

impl LoginEngine {
    pub fn new(store: Arc<CredentialStore>, config: Arc<ConfigHandle>, http: Arc<HttpClients>) -> Arc<Self> {
        Arc::new(LoginEngine { sessions: Arc::new(SessionStore::new()), store, http, config })
    }

    /// What a login's provider calls get: the current config and its global-proxy client.
    pub(super) async fn context(&self) -> Result<LoginContext, LoginError> {
        let config = self.config.get();
        let http = self.http.global(&config).await.map_err(|error| LoginError::Provider(error.to_string()))?;
        Ok(LoginContext::new(http, config))
    }

    pub fn sessions(&self) -> &Arc<SessionStore> {
        &self.sessions
    }

    /// Prepares the login and returns at once; a background task waits for the callback and
    /// finishes it. With `listen`, the listener is bound first, so a taken port fails here
    /// ([`LoginError::PortInUse`]) and port 0 resolves before the redirect URI is built.
    pub async fn start(
        self: &Arc<Self>,
        login: Arc<dyn BrowserLogin>,
        opts: StartOptions,
    ) -> Result<StartedLogin, LoginError> {
        let StartOptions { listen, callback_port, timeout, options } = opts;
        let spec = login.spec();
        let configured = self.config.get().oauth_callback_ports.get(spec.name).copied();
        let mut port = callback_port.or(configured).unwrap_or(spec.default_callback_port);
        let listener = if listen && login.local_callback() {
            let sessions = self.sessions.clone();
            let listener = bind_callback_listener(CALLBACK_HOST, port, spec.callback_path, sessions, spec.name).await?;
            port = listener.port();
            Some(listener)
        } else if port == 0 {
            // No listener, but the redirect URI must still name a port: take one that is free
            // now. The browser lands on a dead page whose URL the user pastes back.
            port = free_loopback_port().await?;
            None
        } else {
            None
        };
        let flow = Flow {
            ctx: self.context().await?,
            state: new_state(),
            pkce: spec.pkce.then(Pkce::generate),
            redirect_uri: login.redirect_uri(port),
            options,
            login,
        };
        let url = flow.login.authorize_url(&flow.ctx, &flow.request())?;
        let waiter = self.sessions.register(flow.login.spec().name, &flow.state);
        let started = StartedLogin {
            state: flow.state.clone(),
            url,
            redirect_uri: flow.redirect_uri.clone(),
            listener_port: listener.as_ref().map(CallbackListener::port),
        };
        let engine = self.clone();
        tokio::spawn(async move {
            let result = engine.run(&flow, waiter, timeout).await;
            // The listener lives exactly as long as the login waits.
            drop(listener);
            engine.settle(flow.login.spec().name, &flow.state, result);
        });
        Ok(started)
    }

    /// Waits for the login of `state` to end: the saved file's name, or why it failed
    /// ([`LoginError::Cancelled`] when the session was cancelled or is unknown).
    pub async fn wait(&self, state: &str) -> Result<String, LoginError> {
        match self.sessions.wait_outcome(state).await {
            SessionStatus::Completed { file_name } => Ok(file_name),
            SessionStatus::Failed(error) => Err(error),
            SessionStatus::Unknown | SessionStatus::Pending => Err(LoginError::Cancelled),
        }
    }

    async fn run(&self, flow: &Flow, waiter: SessionWaiter, timeout: Duration) -> Result<String, LoginError> {
        let params = waiter.wait(timeout).await?;
        let verifier = flow.pkce.as_ref().map_or("", |pkce| pkce.verifier.as_str());
        if let Some(error) = params.error {
            let code = params.code.as_deref().unwrap_or_default();
            return Err(LoginError::Denied(error).masking(&[code, &flow.state, verifier]));
        }
        if params.state.as_deref() != Some(flow.state.as_str()) {
            return Err(LoginError::StateMismatch);
        }
        let code = params.code.ok_or_else(|| LoginError::Provider("callback URL missing code".into()))?;
        // Whatever the provider's own masking missed, the values of this login never show.
        let outcome = flow
            .login
            .finish(&flow.ctx, &code, &flow.request())
            .await
            .map_err(|error| error.masking(&[&code, &flow.state, verifier]))?;
        // Cancel race guard: from here on the session cannot be cancelled; if it already was,
        // nothing is written.
        if !self.sessions.start_saving(&flow.state) {
            return Err(LoginError::Cancelled);
        }
        self.save(outcome).await
    }

    /// Writes the login's credential with re-login semantics: an existing valid file of the
    /// same name keeps its user fields and gets the new tokens, in one atomic replace under
    /// the store's lock (the old file is never removed first).
    pub(super) async fn save(&self, outcome: LoginOutcome) -> Result<String, LoginError> {
        let LoginOutcome { file_name, credential } = outcome;
        let save_error = |err: StoreError| LoginError::Save(err.to_string());
        let fresh = credential.clone();
        let merged = self
            .store
            .update(&file_name, move |current| {
                let mut merged = fresh;
                merged.carry_over_user_fields(current);
                *current = merged;
                Ok(())
            })
            .await;
        match merged {
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => {
                self.store.save(&file_name, &credential).await.map_err(save_error)?;
            }
            Err(err) => return Err(save_error(err)),
        }
        Ok(file_name)
    }

    /// Records how the login of `state` ended.
    pub(super) fn settle(&self, provider: &str, state: &str, result: Result<String, LoginError>) {
        match result {
            Ok(file_name) => {
                tracing::info!(provider, file = %file_name, "login completed");
                self.sessions.complete(state, &file_name);
            }
            // A cancelled session is gone; there is nothing left to mark.
            Err(LoginError::Cancelled) if !self.sessions.is_pending(state) => {
                tracing::info!(provider, "login cancelled");
            }
            Err(err) => {
                tracing::warn!(provider, error = %err, "login failed");
                self.sessions.fail(state, err);
            }
        }
    }
}

async fn free_loopback_port() -> Result<u16, LoginError> {
    let probe = tokio::net::TcpListener::bind((CALLBACK_HOST, 0))
        .await
        .map_err(|e| LoginError::Provider(format!("cannot find a free callback port: {e}")))?;
    probe
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| LoginError::Provider(format!("cannot find a free callback port: {e}")))
}
