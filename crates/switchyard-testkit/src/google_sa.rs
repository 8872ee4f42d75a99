//! Mock of Google's OAuth token endpoint (`oauth2.googleapis.com/token`) for service accounts:
//! the JWT-bearer grant (RFC 7523) as Vertex AI clients use it, plus a throwaway key pair and a
//! helper that writes a service-account key file for it.
//!
//! The real endpoint's rules are kept: a form body only; `grant_type` must be
//! `urn:ietf:params:oauth:grant-type:jwt-bearer`; the assertion's RS256 signature is checked with
//! the public key registered for its `iss` (and `kid`, when the key has an id); `aud` must be this
//! token URL; `iat`/`exp` must span at most an hour around now; a `scope` is required. Failures
//! are Google's `{"error", "error_description"}` answers with status 400 (`invalid_grant`,
//! `invalid_scope`, `unsupported_grant_type`, `invalid_request`). Successful answers are
//! `{"access_token", "expires_in", "token_type": "Bearer"}` with numbered `ya29.` tokens, so tests
//! know the n-th one in advance ([`access_token`]).
//!
//! Knobs: the `expires_in` it reports, a delay before each answer (to make concurrent callers
//! overlap), and faults (`invalid_grant` as for a deleted key, `500`). It counts successful
//! mints and records every request.

use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value, json};

use crate::oauth::{self, Params, oauth_error};
use crate::{MockServer, serve};

pub const TOKEN_PATH: &str = "/token";
pub const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// The scope Vertex AI needs.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Access-token lifetime Google reports for service accounts.
pub const EXPIRES_IN: u64 = 3599;
/// Google refuses assertions that live longer than an hour.
const MAX_ASSERTION_LIFETIME: u64 = 3600;
/// Clock skew the mock tolerates on `iat`.
const CLOCK_SKEW: u64 = 300;

/// Throwaway RSA-2048 key (PKCS#8) of the mock service account; see `keys/README.md`.
pub const TEST_PRIVATE_KEY: &str = include_str!("../keys/sa-test-key.pem");
pub const TEST_PUBLIC_KEY: &str = include_str!("../keys/sa-test-key.pub.pem");
/// A second throwaway RSA key: assertions signed with it fail a check against [`TEST_PUBLIC_KEY`].
pub const OTHER_PRIVATE_KEY: &str = include_str!("../keys/sa-other-key.pem");
pub const OTHER_PUBLIC_KEY: &str = include_str!("../keys/sa-other-key.pub.pem");
/// A throwaway EC P-256 key: valid PEM, but not RSA.
pub const EC_PRIVATE_KEY: &str = include_str!("../keys/ec-test-key.pem");
/// `private_key_id` of the keys built by [`service_account`].
pub const PRIVATE_KEY_ID: &str = "5f0c9e3a7b2d41e8a6c4f1b09d3e7a2c5b8f6d10";

/// The n-th access token the mock issues (1-based), whichever account asked.
pub fn access_token(n: usize) -> String {
    format!("ya29.c.mock-service-account-token-{n:04}")
}

/// A Google service-account key file, as the Cloud console downloads it, signed by
/// [`TEST_PRIVATE_KEY`].
pub fn service_account(project_id: &str, client_email: &str) -> Map<String, Value> {
    let encoded_email = client_email.replace('@', "%40");
    let value = json!({
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": PRIVATE_KEY_ID,
        "private_key": TEST_PRIVATE_KEY,
        "client_email": client_email,
        "client_id": "104242424242424242424",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": format!("https://www.googleapis.com/robot/v1/metadata/x509/{encoded_email}"),
        "universe_domain": "googleapis.com",
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// A failure to inject; stays in effect until replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    #[default]
    None,
    /// `400 invalid_grant`, as Google answers for a deleted or disabled service account.
    InvalidGrant,
    /// `500` with an HTML page.
    ServerError,
}

/// A service account the mock knows: its public key, and its key id when it checks one.
struct Account {
    public_key: DecodingKey,
    key_id: Option<String>,
}

#[derive(Default)]
struct SaState {
    accounts: HashMap<String, Account>,
    fault: Fault,
    expires_in: Option<u64>,
    delay: Duration,
    issued: Vec<String>,
    token_url: String,
}

/// The running mock (its [`MockServer`] too). Dropping it stops the server.
pub struct MockGoogleSa {
    server: MockServer,
    state: Arc<Mutex<SaState>>,
}

impl Deref for MockGoogleSa {
    type Target = MockServer;

    fn deref(&self) -> &MockServer {
        &self.server
    }
}

impl MockGoogleSa {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(SaState::default()));
        let router = Router::new().route(TOKEN_PATH, post(token)).with_state(state.clone());
        let server = serve(router).await;
        state.lock().expect("mock state lock").token_url = server.url(TOKEN_PATH);
        Self { server, state }
    }

    pub fn token_url(&self) -> String {
        self.url(TOKEN_PATH)
    }

    /// `upstream-urls` config pointing the Vertex provider's token endpoint here.
    pub fn upstream_urls_yaml(&self) -> String {
        format!("upstream-urls:\n  vertex:\n    token: {}\n", self.token_url())
    }

    /// Makes `client_email` a known service account whose key is `public_key_pem` (with key id
    /// `key_id`, checked against the assertion's `kid` when given).
    pub fn register(&self, client_email: &str, key_id: Option<&str>, public_key_pem: &str) {
        let public_key = DecodingKey::from_rsa_pem(public_key_pem.as_bytes()).expect("a valid RSA public key");
        self.lock().accounts.insert(client_email.to_owned(), Account { public_key, key_id: key_id.map(str::to_owned) });
    }

    /// A key file from [`service_account`] for an account registered here, its `token_uri`
    /// pointing at this mock.
    pub fn service_account(&self, project_id: &str, client_email: &str) -> Map<String, Value> {
        self.register(client_email, Some(PRIVATE_KEY_ID), TEST_PUBLIC_KEY);
        let mut key = service_account(project_id, client_email);
        key.insert("token_uri".into(), self.token_url().into());
        key
    }

    pub fn set_fault(&self, fault: Fault) {
        self.lock().fault = fault;
    }

    /// The `expires_in` of issued tokens (`None`: Google's [`EXPIRES_IN`]).
    pub fn set_expires_in(&self, seconds: Option<u64>) {
        self.lock().expires_in = seconds;
    }

    /// Pause before every answer, so concurrent callers overlap.
    pub fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    /// Access tokens issued so far (successful mints), oldest first.
    pub fn issued(&self) -> Vec<String> {
        self.lock().issued.clone()
    }

    pub fn mints(&self) -> usize {
        self.lock().issued.len()
    }

    fn lock(&self) -> MutexGuard<'_, SaState> {
        self.state.lock().expect("mock state lock")
    }
}

type Shared = State<Arc<Mutex<SaState>>>;

/// What the assertion says about itself.
#[derive(serde::Deserialize)]
struct Claims {
    #[serde(default)]
    iss: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    aud: String,
    #[serde(default)]
    iat: u64,
    #[serde(default)]
    exp: u64,
}

async fn token(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let delay = state.lock().expect("mock state lock").delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut state = state.lock().expect("mock state lock");
    match state.fault {
        Fault::None => {}
        Fault::ServerError => return oauth::html_server_error(),
        Fault::InvalidGrant => {
            return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", "Invalid grant: account not found");
        }
    }
    if !oauth::content_type_is(&headers, "application/x-www-form-urlencoded") {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Invalid Content-Type");
    }
    let form = Params::form(&body);
    if form.get("grant_type") != JWT_BEARER_GRANT {
        let description = format!("Invalid grant_type: {}", form.get("grant_type"));
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type", &description);
    }
    let assertion = form.get("assertion");
    if assertion.is_empty() {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "Missing required parameter: assertion");
    }
    if let Err(problem) = check_assertion(&state, assertion) {
        return problem;
    }
    let n = state.issued.len() + 1;
    let access_token = access_token(n);
    state.issued.push(access_token.clone());
    let answer = json!({
        "access_token": access_token,
        "expires_in": state.expires_in.unwrap_or(EXPIRES_IN),
        "token_type": "Bearer",
    });
    ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], Json(answer)).into_response()
}

/// Google's checks of a JWT-bearer assertion, in its order, with its error texts.
fn check_assertion(state: &SaState, assertion: &str) -> Result<(), Response> {
    let invalid_grant = |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
    let bad_signature = || invalid_grant("Invalid JWT Signature.");
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| invalid_grant("Invalid JWT: malformed"))?;
    if header.alg != Algorithm::RS256 {
        return Err(bad_signature());
    }
    let unverified: Claims = unverified_claims(assertion).ok_or_else(|| invalid_grant("Invalid JWT: malformed"))?;
    let account =
        state.accounts.get(&unverified.iss).ok_or_else(|| invalid_grant("Invalid grant: account not found"))?;
    if account.key_id.as_deref().is_some_and(|kid| header.kid.as_deref() != Some(kid)) {
        return Err(bad_signature());
    }
    // Signature only here; the claims are checked below with Google's texts.
    let mut validation = Validation::new(Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_aud = false;
    let claims = jsonwebtoken::decode::<Claims>(assertion, &account.public_key, &validation)
        .map_err(|_| bad_signature())?
        .claims;
    if claims.aud != state.token_url {
        let description = format!("Invalid JWT: Failed audience check. The right audience is {}", state.token_url);
        return Err(invalid_grant(&description));
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let timely = claims.exp > now
        && claims.iat <= now + CLOCK_SKEW
        && claims.exp > claims.iat
        && claims.exp - claims.iat <= MAX_ASSERTION_LIFETIME;
    if !timely {
        return Err(invalid_grant(
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your \
             iat and exp values in the JWT claim.",
        ));
    }
    if !claims.scope.split(' ').any(|s| s == CLOUD_PLATFORM_SCOPE) {
        return Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        ));
    }
    Ok(())
}

/// The payload of a JWT, read without checking anything (to find the account).
fn unverified_claims(jwt: &str) -> Option<Claims> {
    use base64::Engine;
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The claims of an assertion a test captured at the mock, read without checking the signature.
pub fn assertion_claims(jwt: &str) -> Value {
    use base64::Engine;
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON payload")
}

/// The header of an assertion a test captured at the mock.
pub fn assertion_header(jwt: &str) -> Value {
    use base64::Engine;
    let head = jwt.split('.').next().expect("a JWT has a header");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head).expect("base64url header");
    serde_json::from_slice(&bytes).expect("JSON header")
}
