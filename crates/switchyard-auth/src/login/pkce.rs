//! OAuth `state` values and RFC 7636 PKCE pairs (spec §0.1).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::Pkce;

const STATE_BYTES: usize = 16;
/// 96 bytes encode to exactly 128 base64url characters, the RFC 7636 maximum.
const VERIFIER_BYTES: usize = 96;
const MAX_STATE_CHARS: usize = 128;

/// Why a `state` value is refused. Deliberately says nothing about the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid state")]
pub struct InvalidState;

/// A fresh login state: 16 random bytes as 32 lower-case hex characters.
pub fn new_state() -> String {
    let mut bytes = [0u8; STATE_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// CPA's state check for values arriving from outside (callbacks, management requests):
/// non-empty after trimming, at most 128 characters, only `[A-Za-z0-9-_.]`, and no `..` (the
/// state ends up in file names). Like CPA, surrounding whitespace is ignored.
pub fn validate_state(state: &str) -> Result<(), InvalidState> {
    let state = state.trim();
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if state.is_empty() || state.len() > MAX_STATE_CHARS || !state.chars().all(allowed) || state.contains("..") {
        return Err(InvalidState);
    }
    Ok(())
}

/// The S256 code challenge for `verifier`: base64url (no padding) of its SHA-256.
pub fn s256_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()).as_slice())
}

impl Pkce {
    /// A new random verifier (128 base64url characters) and its S256 challenge.
    pub fn generate() -> Pkce {
        let mut bytes = [0u8; VERIFIER_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let verifier = URL_SAFE_NO_PAD.encode(bytes);
        let challenge = s256_challenge(&verifier);
        Pkce { verifier, challenge }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_pairs_are_well_formed_and_distinct() {
        let a = Pkce::generate();
        let b = Pkce::generate();
        assert_eq!(a.verifier.len(), 128);
        assert!(a.verifier.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(a.challenge, s256_challenge(&a.verifier));
        assert_eq!(a.challenge.len(), 43);
        assert_ne!(a.verifier, b.verifier);
    }

    #[test]
    fn states_are_32_lower_hex_and_valid() {
        let s = new_state();
        assert_eq!(s.len(), 32);
        assert!(s.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
        assert_ne!(s, new_state());
        assert_eq!(validate_state(&s), Ok(()));
    }

    #[test]
    fn state_validation() {
        for ok in ["abc", "A-Z_0.9", "kmi-1755853200000", " padded ", &"a".repeat(128)] {
            assert_eq!(validate_state(ok), Ok(()), "{ok:?}");
        }
        let too_long = "a".repeat(129);
        for bad in ["", "   ", "a/b", "a\\b", "a..b", "..", "a b", "a%2F", "ä", "a#b", "a?b", too_long.as_str()] {
            assert_eq!(validate_state(bad), Err(InvalidState), "{bad:?}");
        }
    }
}
