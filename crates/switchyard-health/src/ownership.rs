//! Who disabled an account, and the rule that only they re-enable it automatically (§4.5): an
//! account a person disabled is never switched back on by a machine, and a quota cooldown does
//! not undo an inspection's decision.

use serde::{Deserialize, Serialize};

/// Auth-file key holding who disabled the account (`manual`, `inspection`, `quota`,
/// `auth-issue`). CPA keeps keys it does not know, so files stay compatible.
pub const DISABLED_BY_KEY: &str = "switchyard_disabled_by";
/// Auth-file key with the reason code of an automatic disable (`token_revoked`, ...).
pub const DISABLED_REASON_KEY: &str = "switchyard_disabled_reason";
/// Auth-file key with the fingerprint (a truncated hash, never the token) of the credential an
/// auth issue disabled: a file whose credential differs was logged in again.
pub const DISABLED_CREDENTIAL_KEY: &str = "switchyard_disabled_credential";

/// Who switches accounts off and on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Actor {
    /// A person, through the management API (or by editing the file).
    Manual,
    /// An inspection run's recommendation.
    Inspection,
    /// An exhausted quota window.
    Quota,
    /// A high-confidence credential failure (revoked token, deactivated workspace).
    AuthIssue,
}

impl Actor {
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::Manual => "manual",
            Actor::Inspection => "inspection",
            Actor::Quota => "quota",
            Actor::AuthIssue => "auth-issue",
        }
    }

    pub fn parse(text: &str) -> Option<Actor> {
        match text.trim() {
            "manual" => Some(Actor::Manual),
            "inspection" => Some(Actor::Inspection),
            "quota" => Some(Actor::Quota),
            "auth-issue" => Some(Actor::AuthIssue),
            _ => None,
        }
    }
}

/// Whether `actor` may enable an account `owner` disabled. A person always may; a machine
/// only undoes its own disable. An account disabled with no recorded owner was switched off
/// outside Switchyard's actions and counts as manual.
pub fn may_enable(owner: Option<Actor>, actor: Actor) -> bool {
    actor == Actor::Manual || owner.unwrap_or(Actor::Manual) == actor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_owner_or_a_person_enables() {
        let machines = [Actor::Inspection, Actor::Quota, Actor::AuthIssue];
        for owner in [None, Some(Actor::Manual), Some(Actor::Inspection), Some(Actor::Quota), Some(Actor::AuthIssue)] {
            assert!(may_enable(owner, Actor::Manual), "{owner:?}");
            for actor in machines {
                assert_eq!(may_enable(owner, actor), owner == Some(actor), "{owner:?} / {actor:?}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for actor in [Actor::Manual, Actor::Inspection, Actor::Quota, Actor::AuthIssue] {
            assert_eq!(Actor::parse(actor.as_str()), Some(actor));
            assert_eq!(serde_json::to_value(actor).unwrap(), actor.as_str());
        }
        assert_eq!(Actor::parse("robot"), None);
    }
}
