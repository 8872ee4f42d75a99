//! The OAuth rules every mock authorization server here shares: request parameters, PKCE (S256)
//! checks, single-use authorization codes, issued and rotated tokens, Bearer checks, and the
//! answers (redirects, RFC 6749 error bodies). Each mock keeps its own quirks on top: which body
//! its token endpoint takes, whether refresh tokens rotate, how its errors look.

use std::collections::{HashMap, HashSet};

use axum::Json;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The loopback hosts an installed app may be redirected to.
pub(crate) const LOOPBACK_HOSTS: &[&str] = &["localhost", "127.0.0.1"];

/// Request parameters (authorize query, token form or JSON body); a missing one reads as `""`.
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    pub(crate) fn new(params: HashMap<String, String>) -> Params {
        Params(params)
    }

    /// An `application/x-www-form-urlencoded` body.
    pub(crate) fn form(body: &[u8]) -> Params {
        Params(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The string members of a JSON object body; `None` when the body is no JSON object.
    pub(crate) fn json_object(body: &[u8]) -> Option<Params> {
        let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
            return None;
        };
        let strings = object.into_iter().filter_map(|(key, value)| match value {
            Value::String(text) => Some((key, text)),
            _ => None,
        });
        Some(Params(strings.collect()))
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&String, &String)> {
        self.0.iter()
    }

    pub(crate) fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or_default()
    }
}

/// Whether the request's `Content-Type` is `mime` (parameters and case aside).
pub(crate) fn content_type_is(headers: &HeaderMap, mime: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with(mime))
}

/// `redirect_uri` as a URL when it is `http` on one of `hosts` (any port, RFC 8252).
pub(crate) fn loopback_redirect(redirect_uri: &str, hosts: &[&str]) -> Option<url::Url> {
    let url = url::Url::parse(redirect_uri).ok()?;
    let loopback = url.host_str().is_some_and(|host| hosts.contains(&host));
    (url.scheme() == "http" && loopback).then_some(url)
}

/// The first problem of an authorization request from a PKCE client, worded as the real servers
/// word it (scope rules differ per server and are checked after this).
pub(crate) fn pkce_authorize_problem(params: &Params) -> Option<&'static str> {
    if params.get("response_type") != "code" {
        Some("response_type must be code")
    } else if params.get("code_challenge").is_empty() {
        Some("code_challenge is required")
    } else if params.get("code_challenge_method") != "S256" {
        Some("code_challenge_method must be S256")
    } else if params.get("state").is_empty() {
        Some("state is required")
    } else {
        None
    }
}

/// Whether `verifier` is the one behind an S256 `challenge` (RFC 7636).
pub(crate) fn s256_matches(verifier: &str, challenge: &str) -> bool {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()).as_slice()) == challenge
}

/// Authorization codes waiting to be exchanged, each with what it was issued for.
pub(crate) struct Codes<G>(HashMap<String, G>);

impl<G> Default for Codes<G> {
    fn default() -> Self {
        Codes(HashMap::new())
    }
}

impl<G> Codes<G> {
    pub(crate) fn insert(&mut self, code: String, grant: G) {
        self.0.insert(code, grant);
    }

    /// Single use: the first exchange spends the code, whatever its outcome.
    pub(crate) fn redeem(&mut self, code: &str) -> Option<G> {
        self.0.remove(code)
    }
}

/// What a PKCE authorize request bound its code to.
pub(crate) struct PkceGrant {
    pub(crate) client_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: String,
    pub(crate) scope: String,
    /// The request's state, when the server binds the code to it too (Anthropic does).
    pub(crate) state: Option<String>,
}

impl PkceGrant {
    pub(crate) fn new(authorize: &Params, bind_state: bool) -> PkceGrant {
        PkceGrant {
            client_id: authorize.get("client_id").into(),
            redirect_uri: authorize.get("redirect_uri").into(),
            code_challenge: authorize.get("code_challenge").into(),
            scope: authorize.get("scope").into(),
            state: bind_state.then(|| authorize.get("state").into()),
        }
    }

    /// Why the token request `token` may not redeem the code (an `invalid_grant` description).
    pub(crate) fn redeem_problem(&self, token: &Params) -> Option<&'static str> {
        if self.client_id != token.get("client_id") {
            Some("Code was issued to another client")
        } else if self.redirect_uri != token.get("redirect_uri") {
            Some("redirect_uri does not match the authorization request")
        } else if self.state.as_deref().is_some_and(|state| state != token.get("state")) {
            Some("state does not match the authorization request")
        } else if !s256_matches(token.get("code_verifier"), &self.code_challenge) {
            Some("Invalid code verifier")
        } else {
            None
        }
    }
}

impl Codes<PkceGrant> {
    /// Redeems the code of a PKCE token request: its grant, or why not (an `invalid_grant`
    /// description).
    pub(crate) fn redeem_pkce(&mut self, token: &Params) -> Result<PkceGrant, &'static str> {
        let grant = self.redeem(token.get("code")).ok_or("Invalid or already used code")?;
        match grant.redeem_problem(token) {
            Some(problem) => Err(problem),
            None => Ok(grant),
        }
    }
}

/// A token pair issued by a mock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: String,
}

/// What a refresh token presented for rotation turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Rotation {
    /// Live until now; spent by this use.
    Rotated,
    /// Already used once.
    Spent,
    Unknown,
}

/// The tokens a mock issued that still work: access tokens, and refresh tokens with the client
/// each was issued to; plus the refresh tokens rotation has spent.
#[derive(Default)]
pub(crate) struct Tokens {
    access: HashSet<String>,
    refresh: HashMap<String, String>,
    spent: HashSet<String>,
}

impl Tokens {
    pub(crate) fn add_access(&mut self, token: &str) {
        self.access.insert(token.to_owned());
    }

    pub(crate) fn add_refresh(&mut self, token: &str, client_id: &str) {
        self.refresh.insert(token.to_owned(), client_id.to_owned());
    }

    /// Records a fresh pair for `client_id`.
    pub(crate) fn add_pair(&mut self, tokens: &IssuedTokens, client_id: &str) {
        self.add_access(&tokens.access_token);
        self.add_refresh(&tokens.refresh_token, client_id);
    }

    /// The client a live refresh token was issued to (for servers that do not rotate).
    pub(crate) fn refresh_owner(&self, token: &str) -> Option<&str> {
        self.refresh.get(token).map(String::as_str)
    }

    /// Rotation: a refresh token works once.
    pub(crate) fn rotate(&mut self, token: &str) -> Rotation {
        if self.refresh.remove(token).is_some() {
            self.spent.insert(token.to_owned());
            Rotation::Rotated
        } else if self.spent.contains(token) {
            Rotation::Spent
        } else {
            Rotation::Unknown
        }
    }

    /// Whether `headers` carry `Authorization: Bearer <a live access token>`.
    pub(crate) fn bearer_ok(&self, headers: &HeaderMap) -> bool {
        let bearer =
            headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "));
        bearer.is_some_and(|token| self.access.contains(token))
    }

    /// Every refresh and access token stops working (the user removed the app's access).
    pub(crate) fn revoke_all(&mut self) {
        self.refresh.clear();
        self.access.clear();
    }
}

pub(crate) fn found(location: &str) -> Response {
    (StatusCode::FOUND, [(header::LOCATION, location)]).into_response()
}

/// An RFC 6749 error answer: `{"error": ..., "error_description": ...}`.
pub(crate) fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (status, Json(json!({"error": error, "error_description": description}))).into_response()
}

/// `429 rate_limit_exceeded` with `Retry-After: <seconds>`.
pub(crate) fn rate_limited(description: &str, retry_after: u64) -> Response {
    let mut response = oauth_error(StatusCode::TOO_MANY_REQUESTS, "rate_limit_exceeded", description);
    response.headers_mut().insert(header::RETRY_AFTER, retry_after.into());
    response
}

/// `500` with an HTML page, as a token endpoint behind a failing front end answers.
pub(crate) fn html_server_error() -> Response {
    (StatusCode::INTERNAL_SERVER_ERROR, "<html><body>Internal Server Error</body></html>").into_response()
}

/// `200` with a token answer cut off inside its `access_token` value.
pub(crate) fn truncated_token_answer(access_token: &str) -> Response {
    (StatusCode::OK, format!(r#"{{"access_token": "{access_token}"#)).into_response()
}

/// `302` back to the client with `error=access_denied`, as when the user declines consent.
pub(crate) fn consent_denied(mut location: url::Url, description: Option<&str>, state: &str) -> Response {
    {
        let mut query = location.query_pairs_mut();
        query.append_pair("error", "access_denied");
        if let Some(description) = description {
            query.append_pair("error_description", description);
        }
        query.append_pair("state", state);
    }
    found(location.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_the_rfc_7636_example() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(s256_matches(verifier, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
        assert!(!s256_matches("other", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    }

    #[test]
    fn rotated_refresh_tokens_are_spent() {
        let mut tokens = Tokens::default();
        tokens.add_refresh("rt-1", "client");
        assert_eq!(tokens.refresh_owner("rt-1"), Some("client"));
        assert_eq!(tokens.rotate("rt-1"), Rotation::Rotated);
        assert_eq!(tokens.rotate("rt-1"), Rotation::Spent);
        assert_eq!(tokens.rotate("rt-2"), Rotation::Unknown);
    }

    #[test]
    fn json_params_keep_strings_only() {
        let params = Params::json_object(br#"{"a": "x", "b": 1}"#).unwrap();
        assert_eq!((params.get("a"), params.get("b"), params.get("c")), ("x", "", ""));
        assert!(Params::json_object(b"[1]").is_none());
        assert!(Params::json_object(b"a=b").is_none());
    }
}
