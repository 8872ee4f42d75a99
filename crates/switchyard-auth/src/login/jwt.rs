//! Reading a JWT's claims without checking its signature: every id_token we read came straight
//! from the token endpoint over the connection we opened, which is what vouches for it (OIDC
//! Core §3.1.3.7 allows TLS server validation in place of signature checks there).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

/// Why a token's claims could not be read. Never includes the token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    #[error("not a JWT (expected three dot-separated parts)")]
    NotJwt,
    #[error("payload is not base64url")]
    NotBase64,
    #[error("payload is not a JSON object")]
    NotObject,
}

/// The payload claims of `token`.
pub fn jwt_claims(token: &str) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.split('.');
    let (Some(_header), Some(payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::NotJwt);
    };
    // Some issuers pad their base64url; the alphabet is the same either way.
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).map_err(|_| JwtError::NotBase64)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err(JwtError::NotObject),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_claims_with_or_without_padding() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"email":"a@b.c","sub":"1"}"#);
        assert_eq!(jwt_claims(&format!("h.{payload}.s")).unwrap()["email"], "a@b.c");
        assert_eq!(jwt_claims(&format!("h.{payload}==.s")).unwrap()["sub"], "1");
    }

    #[test]
    fn rejects_what_is_not_a_jwt() {
        assert_eq!(jwt_claims("nope"), Err(JwtError::NotJwt));
        assert_eq!(jwt_claims("a.b.c.d"), Err(JwtError::NotJwt));
        assert_eq!(jwt_claims("a.!!!.c"), Err(JwtError::NotBase64));
        let array = URL_SAFE_NO_PAD.encode("[1]");
        assert_eq!(jwt_claims(&format!("a.{array}.c")), Err(JwtError::NotObject));
    }
}
