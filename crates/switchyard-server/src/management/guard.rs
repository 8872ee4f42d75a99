//! Who may call the management API: a key check (bcrypt), local-only unless allowed, and a
//! per-IP ban after repeated failures.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use switchyard_config::Config;

use crate::ApiError;

pub const MAX_FAILURES: u32 = 5;
pub const BAN_DURATION: Duration = Duration::from_secs(30 * 60);
/// Failure records untouched for this long are forgotten.
const IDLE_FORGET: Duration = Duration::from_secs(2 * 60 * 60);
/// In-memory hashing cost; the hash never leaves the process, so the default's extra cost buys nothing.
const BCRYPT_COST: u32 = 10;

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
        if let Some(remaining) = self.ban_remaining(ip) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("IP banned due to too many failed attempts. Try again in {}", format_remaining(remaining)),
            ));
        }
        let remote_allowed = config.remote_management.allow_remote || self.password.is_some();
        if !is_local(ip) && !remote_allowed {
            return Err(ApiError::new(StatusCode::FORBIDDEN, "remote management disabled"));
        }
        let Some(key) = presented_key(headers) else {
            self.record_failure(ip);
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "missing management key"));
        };
        if self.key_matches(config, &key).await {
            self.attempts.lock().expect("attempts lock").remove(&ip);
            Ok(())
        } else {
            self.record_failure(ip);
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
        let key_owned = key.to_owned();
        let verified = tokio::task::spawn_blocking(move || bcrypt::verify(key_owned, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
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
    /// writes it back hashed). Computed off the reactor, once per distinct secret.
    pub async fn hash_for(&self, secret: &str) -> Option<Arc<str>> {
        if let Some(hash) = self.with_current(secret, |h| h.hash.clone()) {
            return Some(hash);
        }
        let hash: Arc<str> = if is_bcrypt_hash(secret) {
            secret.into()
        } else {
            let plain = secret.to_owned();
            tokio::task::spawn_blocking(move || bcrypt::hash(plain, BCRYPT_COST)).await.ok()?.ok()?.into()
        };
        *self.hashed.lock().expect("hash lock") =
            Some(HashedSecret { secret_digest: digest(secret), hash: hash.clone(), verified: HashSet::new() });
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

    fn record_failure(&self, ip: IpAddr) {
        let now = Instant::now();
        let mut attempts = self.attempts.lock().expect("attempts lock");
        let entry = attempts.entry(ip).or_insert(Attempts { failures: 0, banned_until: None, last_seen: now });
        entry.failures += 1;
        entry.last_seen = now;
        if entry.failures >= MAX_FAILURES {
            entry.banned_until = Some(now + BAN_DURATION);
            tracing::warn!(%ip, minutes = BAN_DURATION.as_secs() / 60, "management access banned after repeated failures");
        }
    }
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
    fn remaining_format() {
        assert_eq!(format_remaining(Duration::from_secs(1800)), "30m");
        assert_eq!(format_remaining(Duration::from_secs(1799)), "29m59s");
        assert_eq!(format_remaining(Duration::from_millis(10)), "1s");
    }
}
