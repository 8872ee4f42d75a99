//! A Google service-account key: reading and checking the JSON the Cloud console downloads, and
//! signing the RS256 JWT assertion (RFC 7523) that the token endpoint trades for an access token.
//!
//! Texts of [`KeyProblem`] name the defect only; no key material, token or assertion is ever part
//! of one, and the `Debug` of [`ServiceAccount`] shows no key.

use std::fmt;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

/// The only scope Vertex AI needs.
pub(crate) const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// How long an assertion is valid; Google refuses anything longer than an hour.
pub(crate) const ASSERTION_LIFETIME_SECS: u64 = 3600;
/// The `type` of a service-account key file.
const SERVICE_ACCOUNT_TYPE: &str = "service_account";

/// A usable service-account key.
#[derive(Clone)]
pub(crate) struct ServiceAccount {
    pub(crate) project_id: String,
    pub(crate) client_email: String,
    pub(crate) private_key_id: Option<String>,
    key: EncodingKey,
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("project_id", &self.project_id)
            .field("client_email", &self.client_email)
            .field("private_key_id", &self.private_key_id)
            .finish_non_exhaustive()
    }
}

/// Why a document is not a usable service-account key. The `Display` text starts with CPA's
/// error word for the case (`invalid json`, `invalid service account`, `project_id missing`),
/// then a colon and the precise reason.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyProblem {
    #[error("invalid json: the service-account key is not valid JSON ({0})")]
    NotJson(String),
    #[error("invalid json: the service-account key must be a JSON object, not {0}")]
    NotObject(&'static str),
    #[error("invalid service account: {0}")]
    Invalid(String),
    #[error("project_id missing: the service-account key has no project_id")]
    NoProject,
}

impl ServiceAccount {
    /// Reads a key file's bytes (see [`ServiceAccount::from_document`]).
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<(ServiceAccount, Map<String, Value>), KeyProblem> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| KeyProblem::NotJson(json_error(&e)))?;
        let Value::Object(document) = value else {
            return Err(KeyProblem::NotObject(json_kind(&value)));
        };
        ServiceAccount::from_document(document)
    }

    /// Checks a key file's object and returns the key with the object to store. A Switchyard /
    /// CPA Vertex auth file (`type: vertex` around a `service_account`) is taken for the key it
    /// holds, so an exported account can be imported again.
    pub(crate) fn from_document(
        document: Map<String, Value>,
    ) -> Result<(ServiceAccount, Map<String, Value>), KeyProblem> {
        let document = match (document.get("type").and_then(Value::as_str), document.get("service_account")) {
            (Some("vertex"), Some(Value::Object(inner))) => inner.clone(),
            _ => document,
        };
        let account = ServiceAccount::from_key(&document)?;
        Ok((account, document))
    }

    /// Checks the fields of a service-account key object, in the order a user fixes them.
    pub(crate) fn from_key(key: &Map<String, Value>) -> Result<ServiceAccount, KeyProblem> {
        check_type(key)?;
        let invalid = |why: &str| KeyProblem::Invalid(why.to_owned());
        let pem = text(key, "private_key").ok_or_else(|| invalid("private_key is missing"))?;
        let key_pair = rsa_key(pem)?;
        let client_email = text(key, "client_email").ok_or_else(|| invalid("client_email is missing"))?;
        let project_id = text(key, "project_id").ok_or(KeyProblem::NoProject)?;
        Ok(ServiceAccount {
            project_id: project_id.to_owned(),
            client_email: client_email.to_owned(),
            private_key_id: text(key, "private_key_id").map(str::to_owned),
            key: key_pair,
        })
    }

    /// The signed assertion for `token_url`, issued at `now` (Unix seconds). Runs the RSA
    /// signature: call it off the async reactor.
    pub(crate) fn assertion(&self, token_url: &str, now: u64) -> Result<String, String> {
        let claims = AssertionClaims {
            iss: &self.client_email,
            scope: CLOUD_PLATFORM_SCOPE,
            aud: token_url,
            iat: now,
            exp: now + ASSERTION_LIFETIME_SECS,
        };
        sign(&claims, self.private_key_id.as_deref(), &self.key)
    }
}

#[derive(serde::Serialize)]
struct AssertionClaims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

fn sign(claims: &AssertionClaims<'_>, kid: Option<&str>, key: &EncodingKey) -> Result<String, String> {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    // jsonwebtoken's errors describe the key's defect, never its bytes.
    jsonwebtoken::encode(&header, claims, key).map_err(|e| format!("cannot sign with the service-account key: {e}"))
}

/// `type` must be `service_account`; the files people confuse with it get their own words.
fn check_type(key: &Map<String, Value>) -> Result<(), KeyProblem> {
    let invalid = |why: String| Err(KeyProblem::Invalid(why));
    if ["installed", "web"].iter().any(|k| key.get(*k).is_some_and(Value::is_object)) {
        return invalid(
            "this is an OAuth client file (client_secret_*.json), not a service-account key; create a JSON key \
             under IAM & Admin → Service Accounts → Keys"
                .into(),
        );
    }
    match key.get("type") {
        None | Some(Value::Null) => {
            invalid("`type` is missing; a service-account key has \"type\": \"service_account\"".into())
        }
        Some(Value::String(t)) if t.trim() == SERVICE_ACCOUNT_TYPE => Ok(()),
        Some(Value::String(t)) if t.trim() == "authorized_user" => invalid(
            "this is a user credential (\"type\": \"authorized_user\", e.g. from gcloud auth application-default \
             login), not a service-account key"
                .into(),
        ),
        Some(Value::String(t)) if t.trim() == "external_account" => invalid(
            "this is a workload identity federation config (\"type\": \"external_account\"), not a service-account \
             key"
            .into(),
        ),
        Some(Value::String(t)) => {
            let shown: String = t.chars().take(40).collect();
            invalid(format!("`type` is {shown:?}, expected \"service_account\""))
        }
        Some(other) => invalid(format!("`type` is {}, expected the string \"service_account\"", json_kind(other))),
    }
}

/// The PEM as a key jsonwebtoken can sign with. Parsing the PEM does not look inside the RSA
/// structure, so a trial signature proves the key really works.
fn rsa_key(pem: &str) -> Result<EncodingKey, KeyProblem> {
    let problem = |why: &str| KeyProblem::Invalid(format!("private_key is not an RSA private key in PEM form: {why}"));
    if !pem.contains("-----BEGIN") {
        return Err(problem("no PEM block (-----BEGIN PRIVATE KEY-----) found"));
    }
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| match e.kind() {
        jsonwebtoken::errors::ErrorKind::InvalidKeyFormat => problem("the PEM block holds no RSA key"),
        _ => problem("the PEM block cannot be read"),
    })?;
    let trial = AssertionClaims { iss: "trial", scope: CLOUD_PLATFORM_SCOPE, aud: "trial", iat: 0, exp: 1 };
    sign(&trial, None, &key).map_err(|_| problem("the RSA key inside is malformed"))?;
    Ok(key)
}

/// A trimmed, non-blank string field.
fn text<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// How a JSON value is named in an error: "a string", "an array", ...
pub(crate) fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// serde_json's syntax error with its position. For untyped parsing its messages name the
/// syntax problem only ("expected value", "EOF while parsing a string"), never the input.
fn json_error(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let what = text.split(" at line ").next().unwrap_or(&text);
    format!("{what} at line {} column {}", error.line(), error.column())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn json_errors_give_line_and_column_without_the_input() {
        let error = serde_json::from_slice::<Value>(b"{\n  \"a\": secret-value\n}").unwrap_err();
        let text = json_error(&error);
        assert!(text.starts_with("expected value at line 2 column "), "{text}");
        assert!(!text.contains("secret"));
    }

    /// Not an assertion (timings never are): how long one RSA-2048 signature takes here, which
    /// decided that minting signs on the blocking pool. `cargo test -p switchyard-providers
    /// --lib signing_cost -- --nocapture` shows it.
    #[test]
    fn signing_cost() {
        let pem = include_str!("../../../switchyard-testkit/keys/sa-test-key.pem");
        let key = rsa_key(pem).expect("the test key loads");
        let claims = AssertionClaims { iss: "a@b.c", scope: CLOUD_PLATFORM_SCOPE, aud: "x", iat: 1, exp: 2 };
        let started = Instant::now();
        for _ in 0..20 {
            sign(&claims, Some("kid"), &key).expect("signs");
        }
        eprintln!("RSA-2048 JWT signature: {:?} each", started.elapsed() / 20);
    }
}
