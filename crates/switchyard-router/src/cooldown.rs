//! How long an upstream failure keeps an account away from a model (CPA §4.5).

use std::fmt;
use std::time::Duration;

const AUTH_FAILURE: Duration = Duration::from_secs(30 * 60);
const NOT_FOUND: Duration = Duration::from_secs(12 * 60 * 60);
const BACKOFF_CAP: Duration = Duration::from_secs(30 * 60);
/// What `transient-error-cooldown-seconds: 0` means (CPA's legacy value).
const DEFAULT_TRANSIENT: Duration = Duration::from_secs(60);

/// Why an account is cooling down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CooldownReason {
    /// 401.
    Unauthorized,
    /// 402 / 403.
    PaymentRequired,
    /// 404: the account cannot serve the model.
    NotFound,
    /// 429 for one model.
    Quota,
    /// 429 for every model of the account.
    CredentialQuota,
    /// 408 / 5xx / connection failure.
    Transient,
}

impl CooldownReason {
    /// CPA's wording, as shown in auth-file listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::PaymentRequired => "payment_required",
            Self::NotFound => "not_found",
            Self::Quota => "quota",
            Self::CredentialQuota => "credential_quota",
            Self::Transient => "transient upstream error",
        }
    }
}

impl fmt::Display for CooldownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cooldown for a failure with upstream `status` (0 = no response: connection error or
/// timeout), or `None` when the status does not cool (e.g. 400: the request was at fault).
/// `backoff_level` counts consecutive 429s without `Retry-After`; it grows here and only a
/// success resets it.
pub(crate) fn cooldown_for(
    status: u16,
    retry_after: Option<Duration>,
    credential_wide: bool,
    backoff_level: &mut u32,
    transient_error_cooldown_seconds: i64,
) -> Option<(Duration, CooldownReason)> {
    match status {
        401 => Some((AUTH_FAILURE, CooldownReason::Unauthorized)),
        402 | 403 => Some((AUTH_FAILURE, CooldownReason::PaymentRequired)),
        404 => Some((NOT_FOUND, CooldownReason::NotFound)),
        429 => {
            let reason = if credential_wide { CooldownReason::CredentialQuota } else { CooldownReason::Quota };
            Some((retry_after.unwrap_or_else(|| backoff(backoff_level)), reason))
        }
        0 | 408 | 500 | 502 | 503 | 504 => {
            let duration = match transient_error_cooldown_seconds {
                0 => DEFAULT_TRANSIENT,
                s => Duration::from_secs(u64::try_from(s).ok()?),
            };
            Some((duration, CooldownReason::Transient))
        }
        _ => None,
    }
}

/// 1 s · 2^level, capped; the level stops growing at the cap so it cannot overflow.
fn backoff(level: &mut u32) -> Duration {
    let duration = Duration::from_secs(1u64 << (*level).min(20)).min(BACKOFF_CAP);
    if duration < BACKOFF_CAP {
        *level += 1;
    }
    duration
}
