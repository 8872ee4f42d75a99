//! Mock of everything a Kiro account talks to, on one loopback port:
//!
//! | path | stands for |
//! |---|---|
//! | `POST /oidc/{region}/client/register`, `/device_authorization`, `/token` | AWS SSO-OIDC of that region (`https://oidc.{region}.amazonaws.com`) |
//! | `GET /social/login`, `POST /social/oauth/token`, `/social/refreshToken` | the Kiro auth service |
//! | `POST /codewhisperer/generateAssistantResponse` | CodeWhisperer streaming (`X-Amz-Target` `…GenerateAssistantResponse`, origin `AI_EDITOR`) |
//! | `POST /q/` | Amazon Q developer streaming (`…SendMessage`, origin `CLI`) |
//!
//! Rules of the real services it keeps: clients are registered per region and only work there;
//! CreateToken answers `authorization_pending` / `slow_down` (also when polled faster than the
//! interval) / `expired_token` / `access_denied` with HTTP 400; device and authorization codes
//! are single use; PKCE binds the social code; refresh tokens rotate (a spent one is refused);
//! the chat APIs want a live bearer, the right target and origin, no `profileArn` with Builder ID
//! / IdC tokens, and answer in AWS event-stream frames cut into small chunks. Knobs: the device
//! poll script, approval by user code, revocation, JWT access tokens with an email, scripted
//! answer frames and one-shot API faults (429, 403 SUSPENDED, token 403, 402, 500, a corrupt CRC,
//! a cut mid-frame, an exception frame).

mod api;
pub mod eventstream;
mod oidc;
mod social;

use std::collections::{HashMap, VecDeque};
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

pub use eventstream::{Frame, default_frames, encode, fixture_frames};

pub use crate::oauth::IssuedTokens;
use crate::oauth::{Codes, Tokens};
use crate::{MockServer, serve};

pub const SOCIAL_PREFIX: &str = "/social";
pub const CODEWHISPERER_PATH: &str = "/codewhisperer/generateAssistantResponse";
pub const Q_PATH: &str = "/q/";
pub const REDIRECT_URI: &str = "kiro://kiro.kiroAgent/authenticate-success";
pub const PROFILE_ARN: &str = "arn:aws:codewhisperer:us-east-1:000000000000:profile/MOCKPROFILE01";
/// The recorded event stream (`text.eventstream`, written from [`fixture_frames`]) and its
/// sidecar (`text.events.json`: each frame's headers and payload), also read by the botocore
/// check in `tests/sdk/test_kiro_eventstream.py`.
pub const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/kiro");

/// The sidecar of a recorded stream: what an independent decoder must find in it.
pub fn sidecar(frames: &[Frame]) -> serde_json::Value {
    json!({
        "about": "AWS event-stream frames written by switchyard-testkit's Kiro mock (aws_smithy_eventstream::frame::write_message_to); regenerate with: KIRO_WRITE_FIXTURES=1 cargo nextest run -p switchyard-providers --test kiro_events the_recorded_stream_is_what_the_mock_writes",
        "frames": frames.iter().map(Frame::describe).collect::<Vec<_>>(),
    })
}

/// Where every token and code this mock issues starts (for "nothing leaked" checks).
pub const TOKEN_MARK: &str = "mock-kiro-";

/// The path of an SSO-OIDC operation in `region` (`/oidc/us-east-1/token`).
pub fn oidc_path(region: &str, operation: &str) -> String {
    format!("/oidc/{region}/{operation}")
}

/// What the next CreateToken poll (of any device code) answers, ahead of the device's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PollAnswer {
    Pending,
    SlowDown,
    /// The user confirmed: tokens.
    Approve,
    Deny,
    Expire,
}

/// The chat API a fault is meant for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Api {
    CodeWhisperer,
    AmazonQ,
}

/// A one-shot answer for the next chat request to an API.
#[derive(Clone, Debug, PartialEq)]
pub enum ApiFault {
    /// `429 ThrottlingException`.
    Throttle,
    /// `403` with `TEMPORARILY_SUSPENDED`.
    Suspended,
    /// `403` saying the bearer token is invalid (what an expired token gets).
    InvalidToken,
    /// `402` monthly limit.
    MonthlyLimit,
    /// `500 InternalServerException`.
    ServerError,
    /// The answer's frame `frame` has one payload byte flipped (its message CRC fails).
    CorruptCrc { frame: usize },
    /// The answer stops half-way through frame `frame`.
    CutMidFrame { frame: usize },
    /// The answer is this exception frame alone.
    Exception { kind: String, message: String },
}

#[derive(Clone)]
struct Client {
    secret: String,
    region: String,
}

struct Device {
    client_id: String,
    region: String,
    user_code: String,
    expires_at: Instant,
    interval: u64,
    approved: Option<bool>,
    redeemed: bool,
    last_poll: Option<Instant>,
}

struct SocialGrant {
    challenge: String,
}

/// Who a token was issued through (Builder ID / IdC tokens must not carry a profile ARN).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Issuer {
    Oidc,
    Social,
}

struct State {
    serial: u64,
    clients: HashMap<String, Client>,
    devices: HashMap<String, Device>,
    script: VecDeque<PollAnswer>,
    interval: u64,
    device_lifetime: u64,
    expires_in: i64,
    jwt_email: Option<String>,
    revoke_refresh: bool,
    deny_social: bool,
    /// Refresh tokens and their owner: `oidc:<region>:<client id>` or `social`.
    tokens: Tokens,
    issuers: HashMap<String, Issuer>,
    social_codes: Codes<SocialGrant>,
    frames: Vec<Frame>,
    faults: VecDeque<(Api, ApiFault)>,
    chunk: usize,
    oidc_refreshes: usize,
    social_refreshes: usize,
}

impl Default for State {
    fn default() -> Self {
        State {
            serial: 0,
            clients: HashMap::new(),
            devices: HashMap::new(),
            script: VecDeque::new(),
            interval: 1,
            device_lifetime: 600,
            expires_in: 3600,
            jwt_email: None,
            revoke_refresh: false,
            deny_social: false,
            tokens: Tokens::default(),
            issuers: HashMap::new(),
            social_codes: Codes::default(),
            frames: default_frames(),
            faults: VecDeque::new(),
            chunk: 7,
            oidc_refreshes: 0,
            social_refreshes: 0,
        }
    }
}

impl State {
    fn next_id(&mut self, kind: &str) -> String {
        self.serial += 1;
        format!("{TOKEN_MARK}{kind}-{:04}", self.serial)
    }

    /// A fresh pair for `owner`; the access token is a JWT with the email when that knob is set.
    fn issue(&mut self, owner: &str, issuer: Issuer) -> IssuedTokens {
        let opaque = self.next_id("at");
        let access_token = match &self.jwt_email {
            Some(email) => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
                let claims = json!({"email": email, "sub": "mock-kiro-subject", "jti": opaque, "exp": now + 3600});
                let encode = |text: String| URL_SAFE_NO_PAD.encode(text);
                format!(
                    "{}.{}.{}",
                    encode(json!({"alg": "RS256", "typ": "JWT"}).to_string()),
                    encode(claims.to_string()),
                    encode("mock-signature".into())
                )
            }
            None => opaque,
        };
        let tokens = IssuedTokens { access_token, refresh_token: self.next_id("rt") };
        self.tokens.add_pair(&tokens, owner);
        self.issuers.insert(tokens.access_token.clone(), issuer);
        tokens
    }
}

type Shared = Arc<Mutex<State>>;

fn lock(state: &Shared) -> MutexGuard<'_, State> {
    state.lock().expect("kiro mock lock")
}

/// The running mock. Dropping it stops the server.
pub struct MockKiro {
    server: MockServer,
    state: Shared,
}

impl Deref for MockKiro {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

impl MockKiro {
    pub async fn start() -> Self {
        let state: Shared = Arc::new(Mutex::new(State::default()));
        let router = Router::new()
            .route("/oidc/{region}/client/register", post(oidc::register))
            .route("/oidc/{region}/device_authorization", post(oidc::device_authorization))
            .route("/oidc/{region}/token", post(oidc::token))
            .route("/social/login", get(social::login))
            .route("/social/oauth/token", post(social::token))
            .route("/social/refreshToken", post(social::refresh))
            .route(CODEWHISPERER_PATH, post(api::codewhisperer))
            .route(Q_PATH, post(api::amazon_q))
            .with_state(state.clone());
        MockKiro { server: serve(router).await, state }
    }

    /// `upstream-urls` config pointing every Kiro endpoint here (`{region}` left for the
    /// provider to fill).
    pub fn upstream_urls_yaml(&self) -> String {
        format!(
            "upstream-urls:\n  kiro:\n    oidc: {}/oidc/{{region}}\n    social: {}{SOCIAL_PREFIX}\n    api: {}/codewhisperer\n    q-api: {}/q\n",
            self.base, self.base, self.base, self.base
        )
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// The next polls answer these, in order, before the device's own state decides.
    pub fn script_polls(&self, answers: &[PollAnswer]) {
        self.lock().script.extend(answers.iter().copied());
    }

    /// The user confirms the device code shown as `user_code`. False if there is none.
    pub fn approve(&self, user_code: &str) -> bool {
        self.decide(user_code, true)
    }

    pub fn deny(&self, user_code: &str) -> bool {
        self.decide(user_code, false)
    }

    fn decide(&self, user_code: &str, approved: bool) -> bool {
        let mut state = self.lock();
        let device = state.devices.values_mut().find(|d| d.user_code == user_code && d.approved.is_none());
        device.map(|d| d.approved = Some(approved)).is_some()
    }

    /// The interval announced by new device authorizations (seconds).
    pub fn set_interval(&self, seconds: u64) {
        self.lock().interval = seconds;
    }

    /// The lifetime of new device codes (seconds).
    pub fn set_device_lifetime(&self, seconds: u64) {
        self.lock().device_lifetime = seconds;
    }

    /// `expiresIn` of token answers.
    pub fn set_expires_in(&self, seconds: i64) {
        self.lock().expires_in = seconds;
    }

    /// Access tokens become JWTs carrying this email (`None`: opaque, as AWS usually issues).
    pub fn set_jwt_email(&self, email: Option<&str>) {
        self.lock().jwt_email = email.map(str::to_owned);
    }

    /// Every refresh grant is refused as a dead token (the user signed out / revoked).
    pub fn revoke_refresh_tokens(&self, revoked: bool) {
        self.lock().revoke_refresh = revoked;
    }

    /// The social login page redirects with `error=access_denied`.
    pub fn deny_social_login(&self, deny: bool) {
        self.lock().deny_social = deny;
    }

    /// The frames every chat answer consists of.
    pub fn set_frames(&self, frames: Vec<Frame>) {
        self.lock().frames = frames;
    }

    /// Bytes per body chunk of chat answers.
    pub fn set_chunk_size(&self, bytes: usize) {
        self.lock().chunk = bytes.max(1);
    }

    /// The next chat request to `api` gets `fault` (one-shot, in order).
    pub fn push_fault(&self, api: Api, fault: ApiFault) {
        self.lock().faults.push_back((api, fault));
    }

    /// Issues a live token pair without a login: through SSO-OIDC for a registered client of
    /// `region` (registered here if new), for tests that start from a saved Builder ID file.
    pub fn issue_oidc_tokens(&self, region: &str, client_id: &str, client_secret: &str) -> IssuedTokens {
        let mut state = self.lock();
        state.clients.insert(client_id.into(), Client { secret: client_secret.into(), region: region.into() });
        state.issue(&format!("oidc:{region}:{client_id}"), Issuer::Oidc)
    }

    /// Issues a live social token pair without a login.
    pub fn issue_social_tokens(&self) -> IssuedTokens {
        self.lock().issue("social", Issuer::Social)
    }

    /// Refresh grants received at SSO-OIDC / the social service, successful or not.
    pub fn refresh_calls(&self) -> (usize, usize) {
        let state = self.lock();
        (state.oidc_refreshes, state.social_refreshes)
    }
}
