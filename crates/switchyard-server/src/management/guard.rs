//! Who may call the management API: pages of allowed origins only, a key check (bcrypt),
//! local-only unless allowed, and a per-IP ban after repeated failures.
//!
//! bcrypt reads only the first 72 bytes of a password. So that no byte of a key is ignored:
//! - a plain-text `secret-key` of at most 72 bytes is bcrypt-hashed as is, and only keys of at
//!   most 72 bytes can match it;
//! - a longer plain-text `secret-key` is pre-hashed (hex SHA-256, then bcrypt), and so is every
//!   presented key longer than 72 bytes; shorter keys cannot match it;
//! - a `secret-key` that already is a bcrypt hash (`$2a$`/`$2b$`/`$2y$`, as CPA writes it back)
//!   is verified as is, so keys longer than 72 bytes never match it (a long key has to be
//!   configured in plain text). [`secret_key_notice`] says which case applies.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode, header};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchyard_config::Config;

use crate::ApiError;
use crate::browser_policy::{origin_allowed, request_origin};

pub const MAX_FAILURES: u32 = 5;
pub const BAN_DURATION: Duration = Duration::from_secs(30 * 60);
/// Failure records untouched for this long are forgotten.
const IDLE_FORGET: Duration = Duration::from_secs(2 * 60 * 60);
/// In-memory hashing cost; the hash never leaves the process, so the default's extra cost buys nothing.
const BCRYPT_COST: u32 = 10;
/// bcrypt ignores password bytes past this.
pub const BCRYPT_MAX_BYTES: usize = 72;

pub struct Guard {
    /// `MANAGEMENT_PASSWORD`: compared in constant time, and allows remote callers.
    password: Option<String>,
    hashed: Mutex<Option<HashedSecret>>,
    attempts: Mutex<HashMap<IpAddr, Attempts>>,
}

/// The configured `secret-key` as a bcrypt hash, plus digests of keys already verified against it,
/// so a panel polling every second costs one bcrypt verification, not one per request.
struct HashedSecret {
    secret_digest: [u8; 32],
    hash: Arc<str>,
    /// The secret was longer than [`BCRYPT_MAX_BYTES`] and was pre-hashed.
    long: bool,
    verified: HashSet<[u8; 32]>,
}

struct Attempts {
    failures: u32,
    banned_until: Option<Instant>,
    last_seen: Instant,
}

fn digest(value: &str) -> [u8; 32] {
    Sha256::digest(value.as_bytes()).into()
}

fn is_bcrypt_hash(value: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|prefix| value.starts_with(prefix))
}

fn is_long(key: &str) -> bool {
    key.len() > BCRYPT_MAX_BYTES
}

/// What bcrypt is given for a plain-text key: the key itself when bcrypt reads all of it, else
/// the hex SHA-256 of the whole key (64 bytes). Never more than 72 bytes, so bcrypt's
/// truncation never applies. (The crate's `non_truncating_*` functions refuse exactly 72 bytes
/// too, because the terminating NUL no longer fits, though all 72 bytes still count.)
fn bcrypt_input(key: &str) -> String {
    if is_long(key) { hex::encode(digest(key)) } else { key.to_owned() }
}

/// How the configured `remote-management.secret-key` is checked, for `check-config` and the
/// startup log, when that is worth saying (it never includes the key).
pub fn secret_key_notice(config: &Config) -> Option<String> {
    let secret = config.management_secret()?;
    if is_bcrypt_hash(secret) {
        Some(format!(
            "remote-management.secret-key is a bcrypt hash: management keys longer than {BCRYPT_MAX_BYTES} bytes \
             can never match it (bcrypt reads {BCRYPT_MAX_BYTES} bytes); configure a longer key in plain text"
        ))
    } else if is_long(secret) {
        Some(format!(
            "remote-management.secret-key is {} bytes, more than bcrypt's {BCRYPT_MAX_BYTES}: it is checked as \
             SHA-256 then bcrypt, so every byte of the key counts",
            secret.len()
        ))
    } else {
        None
    }
}

/// Loopback only: `X-Forwarded-For` is not trusted, since anyone can send it.
pub fn is_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// `Authorization: Bearer <key>` (any other Authorization value is taken whole), else `X-Management-Key`.
fn presented_key(headers: &HeaderMap) -> Option<String> {
    let from_authorization = headers.get("authorization").and_then(|v| v.to_str().ok()).map(|value| {
        let value = value.trim();
        match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim().to_owned(),
            _ => value.to_owned(),
        }
    });
    from_authorization
        .or_else(|| headers.get("x-management-key").and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned()))
        .filter(|key| !key.is_empty())
}

fn format_remaining(remaining: Duration) -> String {
    let secs = remaining.as_secs().max(1);
    match (secs / 60, secs % 60) {
        (0, s) => format!("{s}s"),
        (m, 0) => format!("{m}m"),
        (m, s) => format!("{m}m{s}s"),
    }
}

impl Guard {
    pub fn new(password: Option<String>) -> Self {
        Self {
            password: password.filter(|p| !p.is_empty()),
            hashed: Mutex::new(None),
            attempts: Mutex::new(HashMap::new()),
        }
    }

    /// Management routes exist only when some key is configured.
    pub fn enabled(&self, config: &Config) -> bool {
        self.password.is_some() || config.management_secret().is_some()
    }

    /// Decides whether this caller may proceed. Errors are the exact answers CPA gives.
    pub async fn authorize(&self, config: &Config, ip: IpAddr, headers: &HeaderMap) -> Result<(), ApiError> {
        if !self.enabled(config) {
            return Err(ApiError::not_found("not found"));
        }
        // Before any failure is counted: a foreign page's keyless requests (which need no
        // preflight) must not get the user's own IP banned.
        if let Some(origin) = request_origin(headers)
            && !origin_allowed(config, origin, headers.get(header::HOST).and_then(|v| v.to_str().ok()))
        {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "origin not allowed: add it to allowed-origins"));
        }
        if let Some(remaining) = self.ban_remaining(ip) {
            return Err(banned(remaining));
        }
        let remote_allowed = config.remote_management.allow_remote || self.password.is_some();
        if !is_local(ip) && !remote_allowed {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "remote management disabled"));
        }
        // Counted as a failure before the check, so concurrent guesses cannot all be verified
        // before the ban lands; a success takes it back.
        self.reserve_attempt(ip).map_err(banned)?;
        let Some(key) = presented_key(headers) else {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "missing management key"));
        };
        if self.key_matches(config, &key).await {
            self.attempts.lock().expect("attempts lock").remove(&ip);
            Ok(())
        } else {
            tracing::warn!(%ip, "management request with an invalid key");
            Err(ApiError::new(StatusCode::UNAUTHORIZED, "invalid management key"))
        }
    }

    async fn key_matches(&self, config: &Config, key: &str) -> bool {
        if let Some(password) = &self.password
            && bool::from(password.as_bytes().ct_eq(key.as_bytes()))
        {
            return true;
        }
        let Some(secret) = config.management_secret() else { return false };
        let Some(hash) = self.hash_for(secret).await else { return false };
        let key_digest = digest(key);
        if self.with_current(secret, |h| h.verified.contains(&key_digest)) == Some(true) {
            return true;
        }
        let Some(long_secret) = self.with_current(secret, |h| h.long) else { return false };
        // Only a key of the secret's length class can match; bcrypt still runs either way, so
        // the answer's timing does not tell which class the secret is in.
        let same_class = is_long(key) == long_secret;
        let input = bcrypt_input(key);
        let verified =
            tokio::task::spawn_blocking(move || bcrypt::verify(input, &hash).unwrap_or(false)).await.unwrap_or(false)
                && same_class;
        if verified {
            self.with_current(secret, |h| h.verified.insert(key_digest));
        }
        verified
    }

    /// Runs `f` on the cached hash if it belongs to `secret`.
    fn with_current<T>(&self, secret: &str, f: impl FnOnce(&mut HashedSecret) -> T) -> Option<T> {
        let mut hashed = self.hashed.lock().expect("hash lock");
        hashed.as_mut().filter(|h| h.secret_digest == digest(secret)).map(f)
    }

    /// The bcrypt hash of the configured secret (the secret itself when it already is one, as CPA
    /// writes it back hashed; a long plain-text secret pre-hashed, see the module docs).
    /// Computed off the reactor, once per distinct secret.
    pub async fn hash_for(&self, secret: &str) -> Option<Arc<str>> {
        if let Some(hash) = self.with_current(secret, |h| h.hash.clone()) {
            return Some(hash);
        }
        let (hash, long): (Arc<str>, bool) = if is_bcrypt_hash(secret) {
            (secret.into(), false)
        } else {
            let input = bcrypt_input(secret);
            let hash = tokio::task::spawn_blocking(move || bcrypt::hash(input, BCRYPT_COST)).await.ok()?.ok()?;
            (hash.into(), is_long(secret))
        };
        *self.hashed.lock().expect("hash lock") =
            Some(HashedSecret { secret_digest: digest(secret), hash: hash.clone(), long, verified: HashSet::new() });
        Some(hash)
    }

    fn ban_remaining(&self, ip: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let mut attempts = self.attempts.lock().expect("attempts lock");
        attempts
            .retain(|_, a| now.duration_since(a.last_seen) < IDLE_FORGET || a.banned_until.is_some_and(|t| t > now));
        let entry = attempts.get_mut(&ip)?;
        match entry.banned_until {
            Some(until) if until > now => Some(until - now),
            Some(_) => {
                // Ban served: start counting afresh.
                attempts.remove(&ip);
                None
            }
            None => None,
        }
    }

    /// Counts one attempt from `ip` as failed, unless the IP is banned (the time left). The
    /// attempt that reaches [`MAX_FAILURES`] starts the ban but is still checked itself.
    fn reserve_attempt(&self, ip: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let mut attempts = self.attempts.lock().expect("attempts lock");
        let entry = attempts.entry(ip).or_insert(Attempts { failures: 0, banned_until: None, last_seen: now });
        match entry.banned_until {
            Some(until) if until > now => return Err(until - now),
            Some(_) => *entry = Attempts { failures: 0, banned_until: None, last_seen: now },
            None => {}
        }
        entry.failures += 1;
        entry.last_seen = now;
        if entry.failures >= MAX_FAILURES {
            entry.banned_until = Some(now + BAN_DURATION);
            tracing::warn!(%ip, minutes = BAN_DURATION.as_secs() / 60, "management access banned after repeated failures");
        }
        Ok(())
    }
}

fn banned(remaining: Duration) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!("IP banned due to too many failed attempts. Try again in {}", format_remaining(remaining)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locality() {
        assert!(is_local("127.0.0.1".parse().unwrap()));
        assert!(is_local("127.8.9.1".parse().unwrap()));
        assert!(is_local("::1".parse().unwrap()));
        assert!(is_local("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!is_local("10.0.0.1".parse().unwrap()));
        assert!(!is_local("::ffff:192.168.1.4".parse().unwrap()));
        assert!(!is_local("2001:db8::1".parse().unwrap()));
    }

    #[test]
    fn key_sources() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_key(&headers), None);
        headers.insert("x-management-key", "k2".parse().unwrap());
        assert_eq!(presented_key(&headers).as_deref(), Some("k2"));
        headers.insert("authorization", "Bearer k1".parse().unwrap());
        assert_eq!(presented_key(&headers).as_deref(), Some("k1"));
        headers.insert("authorization", "k3".parse().unwrap());
        assert_eq!(presented_key(&headers).as_deref(), Some("k3"));
    }

    #[test]
    fn attempts_are_counted_before_the_check() {
        let guard = Guard::new(None);
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(guard.reserve_attempt(ip).is_ok());
        }
        let remaining = guard.reserve_attempt(ip).unwrap_err();
        assert!(remaining > BAN_DURATION - Duration::from_secs(60));
        assert!(guard.ban_remaining(ip).is_some());
        // Another IP is not affected.
        assert!(guard.reserve_attempt("10.1.2.4".parse().unwrap()).is_ok());
    }

    #[test]
    fn long_keys_are_pre_hashed_whole() {
        let short = "k".repeat(BCRYPT_MAX_BYTES);
        assert_eq!(bcrypt_input(&short), short);
        let long_a = format!("{}a", "k".repeat(BCRYPT_MAX_BYTES));
        let long_b = format!("{}b", "k".repeat(BCRYPT_MAX_BYTES));
        assert_eq!(bcrypt_input(&long_a).len(), 64);
        assert_ne!(bcrypt_input(&long_a), bcrypt_input(&long_b));
    }

    #[test]
    fn notices() {
        let mut config = Config::default();
        assert_eq!(secret_key_notice(&config), None);
        config.remote_management.secret_key = "short".into();
        assert_eq!(secret_key_notice(&config), None);
        config.remote_management.secret_key = "x".repeat(80);
        let notice = secret_key_notice(&config).unwrap();
        assert!(notice.contains("80 bytes") && notice.contains("SHA-256"), "{notice}");
        assert!(!notice.contains("xxxx"), "the key never appears: {notice}");
        config.remote_management.secret_key = "$2b$10$abcdefghijklmnopqrstuu".into();
        assert!(secret_key_notice(&config).unwrap().contains("bcrypt hash"));
    }

    #[test]
    fn remaining_format() {
        assert_eq!(format_remaining(Duration::from_secs(1800)), "30m");
        assert_eq!(format_remaining(Duration::from_secs(1799)), "29m59s");
        assert_eq!(format_remaining(Duration::from_millis(10)), "1s");
    }
}
