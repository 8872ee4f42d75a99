//! Keys whose change opens the gateway up. A config file caught half-written is a prefix of the
//! real one, so it can lose any of these; a hot reload applies such a change only once the file
//! has stayed so for [`SECURITY_HOLD`] (see `ConfigHandle::reload`). README lists them.

use std::time::Duration;

use crate::Config;

/// How long a reloaded file that loosens a [`SECURITY_KEYS`] entry must stay unchanged before
/// it is applied. Far longer than any save takes, short enough for a deliberate edit.
pub const SECURITY_HOLD: Duration = Duration::from_secs(2);

/// Each key, and what counts as loosening it.
pub const SECURITY_KEYS: &[(&str, &str)] = &[
    ("api-keys", "from a non-empty list to empty or missing (client auth off)"),
    ("remote-management.secret-key", "removed or emptied"),
    ("remote-management.allow-remote", "turned on"),
    ("metrics.public", "turned on"),
];

/// The [`SECURITY_KEYS`] that going from `old` to `new` loosens, in that order.
pub fn dropped_security_keys(old: &Config, new: &Config) -> Vec<String> {
    let loosened = [
        !old.api_keys.is_empty() && new.api_keys.is_empty(),
        old.management_secret().is_some() && new.management_secret().is_none(),
        !old.remote_management.allow_remote && new.remote_management.allow_remote,
        !old.metrics.public && new.metrics.public,
    ];
    SECURITY_KEYS
        .iter()
        .zip(loosened)
        .filter(|(_, loosened)| *loosened)
        .map(|((key, _), _)| (*key).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(yaml: &str) -> Config {
        crate::parse(yaml).unwrap().config
    }

    #[test]
    fn loosening_is_named_tightening_is_not() {
        let strict = config("api-keys: [k]\nremote-management:\n  secret-key: s\nmetrics:\n  public: false\n");
        let open = config("remote-management:\n  allow-remote: true\nmetrics:\n  public: true\n");
        assert_eq!(
            dropped_security_keys(&strict, &open),
            ["api-keys", "remote-management.secret-key", "remote-management.allow-remote", "metrics.public"]
        );
        assert!(dropped_security_keys(&open, &strict).is_empty());
        let fewer = config("api-keys: [other]\nremote-management:\n  secret-key: t\n");
        assert!(dropped_security_keys(&strict, &fewer).is_empty(), "changed, not dropped");
    }
}
