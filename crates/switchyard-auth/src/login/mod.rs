//! OAuth login and token refresh: the engine (state, PKCE, login sessions, the one-shot callback
//! listener, pasted callback URLs, the refresher) and the traits a provider implements to plug
//! into it. Providers live in `switchyard-providers`; nothing here knows any provider by name.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};
use switchyard_config::Config;

use crate::Credential;

mod device;
mod engine;
mod jwt;
mod listener;
mod paste;
mod pkce;
mod refresher;
mod sessions;

pub use device::{DEVICE_POLL_FLOOR, Imported, SLOW_DOWN_STEP, StartedDevice};
pub use engine::{CLI_CALLBACK_TIMEOUT, LoginEngine, StartOptions, StartedLogin, WEB_CALLBACK_TIMEOUT};
pub use jwt::{JwtError, jwt_claims};
pub use listener::{CallbackListener, bind_callback_listener, deliver_callback_page};
pub use paste::{CallbackParams, PasteError, parse_callback_fields, parse_callback_input};
pub use pkce::{InvalidState, new_state, s256_challenge, validate_state};
pub use refresher::{RefreshCounts, RefreshObserver, RefreshState, Refresher, RefresherLookup};
pub use sessions::{
    COMPLETED_TTL, DeliverError, DeviceDisplay, SESSION_TTL, SessionInfo, SessionStatus, SessionStore, SessionWaiter,
};

/// What a provider's login and refresh code gets to talk to the outside world.
#[derive(Clone)]
pub struct LoginContext {
    pub http: reqwest::Client,
    pub config: Arc<Config>,
}

impl LoginContext {
    pub fn new(http: reqwest::Client, config: Arc<Config>) -> Self {
        Self { http, config }
    }

    /// The URL of one upstream endpoint: `upstream-urls.<provider>.<endpoint>` from config when
    /// set (tests point these at loopback mocks), else the provider's built-in default.
    pub fn endpoint(&self, provider: &str, endpoint: &str, default: &str) -> String {
        self.config.upstream_url(provider, endpoint).unwrap_or(default).to_owned()
    }
}

/// RFC 7636 PKCE pair (method S256).
#[derive(Clone)]
pub struct Pkce {
    pub verifier: String,
    pub challenge: String,
}

/// Provider-specific login options (e.g. Gemini CLI's `project_id`), from the CLI flags or the
/// management start request's query.
pub type LoginOptions = BTreeMap<String, String>;

/// Everything a provider needs to build the authorize URL and later finish the login.
pub struct AuthorizeRequest<'a> {
    pub state: &'a str,
    /// Present when the provider uses PKCE.
    pub pkce: Option<&'a Pkce>,
    pub redirect_uri: &'a str,
    pub options: &'a LoginOptions,
}

/// A finished login: the credential to save and the file it goes to (`<provider>-<id>.json`).
pub struct LoginOutcome {
    pub file_name: String,
    pub credential: Credential,
}

/// Why a login failed. Display texts are what `/get-auth-status` and the CLI show, so they are
/// human-readable and never contain tokens or codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// The user (or the authorization server) refused: `error=access_denied` and friends.
    #[error("Authentication failed: {0}")]
    Denied(String),
    #[error("State code error")]
    StateMismatch,
    #[error("Timeout waiting for OAuth callback")]
    Timeout,
    #[error("login cancelled")]
    Cancelled,
    #[error("callback port {port} is already in use: {reason}")]
    PortInUse { port: u16, reason: String },
    #[error("Failed to exchange authorization code for tokens: {0}")]
    TokenExchange(String),
    #[error("Failed to fetch user info: {0}")]
    Identity(String),
    /// Any other provider step (project onboarding, API enablement, ...), already phrased.
    #[error("{0}")]
    Provider(String),
    #[error("Failed to save authentication tokens: {0}")]
    Save(String),
    /// A device code ran out (`expired_token`, or its `expires_in` passed) before the user
    /// confirmed it.
    #[error("device code expired before the login was confirmed; start the login again")]
    DeviceCodeExpired,
    /// What the user handed in (an imported file, a cookie, a login option) is unusable; the
    /// text says exactly what is wrong with it. Nothing was saved.
    #[error("{0}")]
    InvalidInput(String),
    /// The account is already stored under `existing_file` (e.g. the same iFlow cookie).
    #[error("duplicate: this account is already stored as {existing_file}")]
    Duplicate { existing_file: String },
}

impl LoginError {
    /// The same error with every one of `secrets` (the login's code, state, verifier, device
    /// code) masked in its text wherever it appears: a server may echo what it was sent, and a
    /// short code escapes the shape-based masks.
    pub fn masking(self, secrets: &[&str]) -> LoginError {
        let mask = |text: String| switchyard_redact::values(&text, secrets);
        match self {
            LoginError::Denied(text) => LoginError::Denied(mask(text)),
            LoginError::PortInUse { port, reason } => LoginError::PortInUse { port, reason: mask(reason) },
            LoginError::TokenExchange(text) => LoginError::TokenExchange(mask(text)),
            LoginError::Identity(text) => LoginError::Identity(mask(text)),
            LoginError::Provider(text) => LoginError::Provider(mask(text)),
            LoginError::Save(text) => LoginError::Save(mask(text)),
            LoginError::InvalidInput(text) => LoginError::InvalidInput(mask(text)),
            other @ (LoginError::StateMismatch
            | LoginError::Timeout
            | LoginError::Cancelled
            | LoginError::DeviceCodeExpired
            | LoginError::Duplicate { .. }) => other,
        }
    }
}

/// What a browser login is called, where its callback arrives and whether it uses PKCE: the
/// part of a login that is data, not behaviour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoginSpec<'a> {
    /// Session key and the name in `GET /v0/management/<name>-auth-url` and
    /// `switchyard login <name>` (e.g. `anthropic`, `codex`, `antigravity`, `gemini-cli`).
    pub name: &'a str,
    /// Other names accepted for the same login (e.g. `claude` for `anthropic`).
    pub aliases: &'a [&'a str],
    /// Segment of the main-port callback route `/<segment>/callback` (e.g. `anthropic`, `google`).
    pub callback_route: &'a str,
    /// Port the local callback listener uses by default (`oauth-callback-ports` overrides).
    pub default_callback_port: u16,
    /// Path the provider redirects to on that port, e.g. `/callback`.
    pub callback_path: &'a str,
    /// Whether the login sends a PKCE (S256) challenge.
    pub pkce: bool,
}

impl LoginSpec<'_> {
    /// Whether `name` is the login's name or one of its aliases (ASCII case-insensitive).
    pub fn answers_to(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name) || self.aliases.iter().any(|alias| alias.eq_ignore_ascii_case(name))
    }
}

/// A browser (authorization-code) login, with or without PKCE.
#[async_trait::async_trait]
pub trait BrowserLogin: Send + Sync {
    /// The login's names, callback route and port, and whether it uses PKCE.
    fn spec(&self) -> LoginSpec<'_>;
    /// The registered redirect URI for a listener on `port`.
    fn redirect_uri(&self, port: u16) -> String {
        format!("http://localhost:{port}{}", self.spec().callback_path)
    }
    /// Whether the provider redirects to a loopback `http://` URL a local listener can take.
    /// False for custom-scheme redirects (Kiro's `kiro://...`): the engine then never binds a
    /// listener and the callback can only arrive as a pasted URL.
    fn local_callback(&self) -> bool {
        true
    }
    fn authorize_url(&self, ctx: &LoginContext, request: &AuthorizeRequest<'_>) -> Result<String, LoginError>;
    /// Exchanges `code`, looks up the identity, runs any provider step (project onboarding) and
    /// returns the credential to save. Must not write files: the engine saves.
    async fn finish(
        &self,
        ctx: &LoginContext,
        code: &str,
        request: &AuthorizeRequest<'_>,
    ) -> Result<LoginOutcome, LoginError>;
}

/// Why a refresh failed; decides what the refresher does next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// The refresh token is dead (`invalid_grant`, revoked, 401): the account needs a re-login.
    /// Nothing is retried until the file changes.
    #[error("needs re-login: {0}")]
    Revoked(String),
    /// The credential has no refresh token to use.
    #[error("no refresh token")]
    NoRefreshToken,
    /// Upstream asked us to slow down.
    #[error("rate limited by the token endpoint")]
    RateLimited { retry_after: Option<Duration> },
    /// Network error, 5xx, malformed answer: retried with backoff.
    #[error("refresh failed: {0}")]
    Transient(String),
    /// Reported by the [`Refresher`], never by a provider: there is nothing to refresh (the file
    /// is gone or corrupt, or no refresher handles its type).
    #[error("{0}")]
    Unavailable(String),
}

/// Renews a credential's access token.
#[async_trait::async_trait]
pub trait TokenRefresher: Send + Sync {
    /// How long before expiry the background refresher renews; `None` = only on use.
    fn refresh_lead(&self) -> Option<Duration>;
    /// Calls the token endpoint with the credential's refresh token and returns the fields to
    /// merge into the file (`access_token`, `refresh_token` when rotated, `expired`,
    /// `last_refresh`, ...). Must not write files: the refresher saves.
    async fn refresh(&self, ctx: &LoginContext, credential: &Credential) -> Result<Map<String, Value>, RefreshError>;
}

/// Names a device-code login answers to; the part of it that is data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceSpec<'a> {
    /// Session key and the name in `GET /v0/management/<name>-auth-url` and
    /// `switchyard login <name>` (e.g. `kimi`, `github-copilot`).
    pub name: &'a str,
    pub aliases: &'a [&'a str],
    /// Prefix of the session `state` (CPA: `kmi-`, `xai-`, `gh-`, `kiro-`, ...), followed by
    /// random hex.
    pub state_prefix: &'a str,
    /// Longest the engine polls, whatever `expires_in` says (GitHub, Kimi: 15 min).
    pub max_wait: Duration,
}

impl DeviceSpec<'_> {
    /// Whether `name` is the login's name or one of its aliases (ASCII case-insensitive).
    pub fn answers_to(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name) || self.aliases.iter().any(|alias| alias.eq_ignore_ascii_case(name))
    }
}

/// A device authorization the user has to confirm (RFC 8628 §3.2), plus what the provider
/// needs to carry from [`DeviceLogin::start`] to [`DeviceLogin::poll`] and
/// [`DeviceLogin::finish`] (a PKCE verifier, a freshly registered client, ...).
#[derive(Clone)]
pub struct DeviceAuthorization {
    /// Secret: identifies the grant at the token endpoint. Never logged or shown.
    pub device_code: String,
    /// What the user types (or finds pre-filled in `verification_uri_complete`).
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    /// How long the device code lives, from the provider's `expires_in`.
    pub expires_in: Duration,
    /// The provider's polling interval (the engine never polls faster than
    /// [`DEVICE_POLL_FLOOR`]).
    pub interval: Duration,
    /// Provider data for the later steps; may hold secrets (client secrets, verifiers), so it
    /// is never logged or returned by any API.
    pub extra: Map<String, Value>,
}

impl DeviceAuthorization {
    /// The URI to show: the complete form (code embedded) when the provider gives one.
    pub fn display_uri(&self) -> &str {
        self.verification_uri_complete.as_deref().unwrap_or(&self.verification_uri)
    }
}

impl std::fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// One answer of the token endpoint while the user has not confirmed yet (RFC 8628 §3.5).
/// Terminal refusals are errors: `expired_token` → [`LoginError::DeviceCodeExpired`],
/// `access_denied` → [`LoginError::Denied`], anything else → a [`LoginError`] naming it.
pub enum DevicePoll {
    /// `authorization_pending`: ask again after the interval.
    Pending,
    /// `slow_down`: the engine adds [`SLOW_DOWN_STEP`] to the interval.
    SlowDown,
    /// The user confirmed: the token endpoint's JSON answer (or whatever the provider's flow
    /// yields at this point, e.g. Codex's authorization code and verifier).
    Granted(Map<String, Value>),
}

/// A device-code login (RFC 8628 and the providers' variants of it).
#[async_trait::async_trait]
pub trait DeviceLogin: Send + Sync {
    fn spec(&self) -> DeviceSpec<'_>;
    /// Everything up to and including the device-authorization request (client registration,
    /// OIDC discovery, PKCE).
    async fn start(&self, ctx: &LoginContext, options: &LoginOptions) -> Result<DeviceAuthorization, LoginError>;
    /// One poll of the token endpoint.
    async fn poll(&self, ctx: &LoginContext, device: &DeviceAuthorization) -> Result<DevicePoll, LoginError>;
    /// Turns the grant into the credential to save (identity lookups, second token exchanges).
    /// Must not write files: the engine saves.
    async fn finish(
        &self,
        ctx: &LoginContext,
        device: &DeviceAuthorization,
        grant: Map<String, Value>,
        options: &LoginOptions,
    ) -> Result<LoginOutcome, LoginError>;
}

/// Names an import answers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportSpec<'a> {
    /// e.g. `vertex`, `kiro`, `iflow` (cookie).
    pub name: &'a str,
    pub aliases: &'a [&'a str],
}

/// What the user hands in for an import: a file's bytes (a service-account key, the Kiro IDE's
/// token cache) and/or options (`location`, `cookie`, ...).
pub struct ImportInput<'a> {
    pub file: Option<&'a [u8]>,
    pub options: &'a LoginOptions,
    /// The auth dir's valid credentials (file name, content), for duplicate checks.
    pub existing: &'a [(String, Credential)],
}

/// A login without a browser or a device code: a credential built from something the user
/// already has (a service-account key, another tool's token file, a browser cookie).
#[async_trait::async_trait]
pub trait ImportLogin: Send + Sync {
    fn spec(&self) -> ImportSpec<'_>;
    /// Validates the input (precise [`LoginError::InvalidInput`] texts), runs any provider call
    /// it needs and returns the credential to save. Must not write files: the engine saves.
    async fn import(&self, ctx: &LoginContext, input: ImportInput<'_>) -> Result<LoginOutcome, LoginError>;
    /// Whether an uploaded auth file is really this import's input (e.g. the Kiro IDE's
    /// camelCase token file, which has no `type`), so `POST /auth-files` can import it.
    fn recognises_upload(&self, _document: &Map<String, Value>) -> bool {
        false
    }
}

/// A login of any kind, as the registry hands it out.
#[derive(Clone)]
pub enum Login {
    Browser(Arc<dyn BrowserLogin>),
    Device(Arc<dyn DeviceLogin>),
    Import(Arc<dyn ImportLogin>),
}

impl Login {
    /// The session / file-type name of the login (`anthropic`, `kimi`, `vertex`, ...).
    pub fn name(&self) -> &str {
        match self {
            Login::Browser(login) => login.spec().name,
            Login::Device(login) => login.spec().name,
            Login::Import(login) => login.spec().name,
        }
    }

    pub fn answers_to(&self, name: &str) -> bool {
        match self {
            Login::Browser(login) => login.spec().answers_to(name),
            Login::Device(login) => login.spec().answers_to(name),
            Login::Import(login) => {
                let spec = login.spec();
                spec.name.eq_ignore_ascii_case(name) || spec.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
            }
        }
    }
}
