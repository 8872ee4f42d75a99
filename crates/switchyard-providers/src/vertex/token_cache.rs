//! Access tokens minted from service accounts, cached in memory for the whole process and never
//! written anywhere: the auth file holds the key, not a token.
//!
//! Entries are keyed by a SHA-256 of the account's `client_email`, `private_key_id` and the token
//! URL (a token from one issuer means nothing to another) — never by the key itself. A token is
//! reused until [`RENEW_MARGIN`] before it expires. Each entry has its own async lock held across
//! the mint, so concurrent requests of one account share one mint while other accounts mint in
//! parallel. A token the API rejected is dropped ([`forget`]) so the next request mints anew.
//!
//! Signing runs on the blocking pool. Measured on the development machine: 2.5 ms per RSA-2048
//! assertion including parsing the key (`service_account::tests::signing_cost`; `openssl speed`
//! gives 0.33 ms for the bare signature). Either is far past the ~100 µs a task should hold the
//! reactor for, and minting happens about once an hour per account, so the thread hop costs
//! nothing that matters.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::service_account::ServiceAccount;
use crate::oauth_http::{self, Standard, Wording};

/// A cached token is renewed once less than this is left of it.
pub(crate) const RENEW_MARGIN: Duration = Duration::from_secs(5 * 60);
/// Lifetime assumed when the token endpoint names none (Google's tokens live an hour).
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
pub(crate) const JWT_BEARER_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// Which account at which token endpoint: a hash, so no key material is kept as a map key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey([u8; 32]);

impl CacheKey {
    pub(crate) fn new(client_email: &str, private_key_id: Option<&str>, token_url: &str) -> CacheKey {
        let mut hash = Sha256::new();
        for part in [client_email, private_key_id.unwrap_or_default(), token_url] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part.as_bytes());
        }
        CacheKey(hash.finalize().into())
    }
}

/// An access token; its `Debug` never shows it.
#[derive(Clone)]
pub(crate) struct AccessToken {
    pub(crate) value: String,
    /// Minted by this call (not taken from the cache).
    pub(crate) fresh: bool,
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessToken").field("fresh", &self.fresh).finish_non_exhaustive()
    }
}

/// Why no token could be minted. Texts never hold a token or an assertion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum MintError {
    /// The token endpoint refused the account (deleted key, bad signature, ...): another try
    /// with the same file fails the same way.
    Refused(String),
    /// Transport failure, 5xx, 429 or a malformed answer: may work later.
    Unavailable(String),
    /// The key could not sign.
    Key(String),
}

struct Cached {
    value: String,
    expires_at: Instant,
}

type Slot = Arc<tokio::sync::Mutex<Option<Cached>>>;

static CACHE: LazyLock<Mutex<HashMap<CacheKey, Slot>>> = LazyLock::new(Mutex::default);

fn slot(key: CacheKey) -> Slot {
    CACHE.lock().expect("token cache lock").entry(key).or_default().clone()
}

/// A token for the account behind `key`: the cached one while it has more than
/// [`RENEW_MARGIN`] left, else a new one from `mint_account()` (called only when minting, so the
/// key is parsed only then).
pub(crate) async fn access_token(
    http: &reqwest::Client,
    key: CacheKey,
    token_url: &str,
    mint_account: impl FnOnce() -> Result<ServiceAccount, String>,
) -> Result<AccessToken, MintError> {
    let slot = slot(key);
    let mut cached = slot.lock().await;
    if let Some(token) = cached.as_ref()
        && token.expires_at.saturating_duration_since(Instant::now()) > RENEW_MARGIN
    {
        return Ok(AccessToken { value: token.value.clone(), fresh: false });
    }
    let account = mint_account().map_err(MintError::Key)?;
    let minted = mint(http, account, token_url).await?;
    let value = minted.value.clone();
    *cached = Some(minted);
    Ok(AccessToken { value, fresh: true })
}

/// Drops the cached token of `key` if it is still `rejected` (a newer one minted meanwhile by
/// another request stays).
pub(crate) async fn forget(key: CacheKey, rejected: &str) {
    let slot = slot(key);
    let mut cached = slot.lock().await;
    if cached.as_ref().is_some_and(|token| token.value == rejected) {
        *cached = None;
    }
}

/// One JWT-bearer grant (RFC 7523 §2.1) at `token_url`.
async fn mint(http: &reqwest::Client, account: ServiceAccount, token_url: &str) -> Result<Cached, MintError> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let audience = token_url.to_owned();
    let assertion = tokio::task::spawn_blocking(move || account.assertion(&audience, now))
        .await
        .map_err(|_| MintError::Key("signing the assertion was interrupted".into()))?
        .map_err(MintError::Key)?;
    let form = [("grant_type", JWT_BEARER_GRANT), ("assertion", assertion.as_str())];
    let request = http.post(token_url).header(reqwest::header::ACCEPT, "application/json").form(&form);
    let started = Instant::now();
    let reply = oauth_http::send(request).await.map_err(|e| MintError::Unavailable(switchyard_redact::text(&e)))?;
    if !reply.status.is_success() {
        let text = format!("token endpoint answered {}", Standard.error_answer(&reply));
        let retryable = reply.status.is_server_error() || reply.status == reqwest::StatusCode::TOO_MANY_REQUESTS;
        return Err(if retryable { MintError::Unavailable(text) } else { MintError::Refused(text) });
    }
    let tokens = reply.tokens().map_err(MintError::Unavailable)?;
    let lifetime = match tokens.json().get("expires_in") {
        Some(Value::Number(n)) => n.as_u64().map(Duration::from_secs),
        Some(Value::String(s)) => s.trim().parse().ok().map(Duration::from_secs),
        _ => None,
    }
    .unwrap_or(DEFAULT_LIFETIME);
    tracing::debug!(lifetime_secs = lifetime.as_secs(), "minted a Vertex AI access token");
    // The lifetime counts from when the endpoint answered; `started` errs on the early side.
    Ok(Cached { value: tokens.access_token().to_owned(), expires_at: started + lifetime })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_accounts_key_ids_and_issuers() {
        let base = CacheKey::new("a@p.iam.gserviceaccount.com", Some("k1"), "https://t/token");
        assert!(base == CacheKey::new("a@p.iam.gserviceaccount.com", Some("k1"), "https://t/token"));
        assert!(base != CacheKey::new("b@p.iam.gserviceaccount.com", Some("k1"), "https://t/token"));
        assert!(base != CacheKey::new("a@p.iam.gserviceaccount.com", Some("k2"), "https://t/token"));
        assert!(base != CacheKey::new("a@p.iam.gserviceaccount.com", Some("k1"), "https://u/token"));
        assert!(base != CacheKey::new("a@p.iam.gserviceaccount.com", None, "https://t/token"));
        // Length-prefixed parts: moving text between fields gives another key.
        assert!(CacheKey::new("ab", Some("c"), "d") != CacheKey::new("a", Some("bc"), "d"));
    }

    #[test]
    fn token_debug_hides_the_value() {
        let token = AccessToken { value: "ya29.secret-token".into(), fresh: true };
        assert!(!format!("{token:?}").contains("ya29"));
    }
}
