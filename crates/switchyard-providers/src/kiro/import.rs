//! Importing the Kiro IDE's token cache (`~/.aws/sso/cache/kiro-auth-token.json`, camelCase),
//! spec §2.3. The document becomes one of our snake_case files. Unlike CPA (which drops them,
//! so an imported Builder ID token later tries the social refresh and fails), the client id and
//! secret are kept when the file has them, so Builder ID / IdC imports keep refreshing at
//! SSO-OIDC.

use serde_json::{Map, Value};
use switchyard_auth::Credential;
use switchyard_auth::login::{ImportInput, ImportLogin, ImportSpec, LoginContext, LoginError, LoginOutcome};

use super::{BUILDER_ID_START_URL, DEFAULT_REGION, ID, email_from_token, kiro_file_name, put};
use crate::oauth_http;

/// Where the Kiro IDE keeps its login (the CLI expands `~`).
pub const IDE_TOKEN_FILE: &str = "~/.aws/sso/cache/kiro-auth-token.json";

/// Members only the IDE's token file has, besides `accessToken`.
const IDE_MARKERS: &[&str] = &["refreshToken", "expiresAt", "authMethod", "profileArn", "clientIdHash"];

pub struct KiroImport;

fn invalid(text: impl Into<String>) -> LoginError {
    LoginError::InvalidInput(text.into())
}

/// A string member: absent → `None`; present but not a string → an error naming it.
fn text<'a>(document: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, LoginError> {
    match document.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.trim()).filter(|s| !s.is_empty())),
        Some(_) => Err(invalid(format!("the Kiro token file's {key} must be a string"))),
    }
}

/// `auth_method` for the IDE's `authMethod`: `social`, or (for `IdC`, which the IDE writes for
/// Builder ID too) `builder-id` on Builder ID's start URL and `idc` on any other.
fn auth_method(raw: Option<&str>, start_url: Option<&str>, has_client: bool) -> Result<&'static str, LoginError> {
    let builder_id = start_url.is_none_or(|url| url.trim_end_matches('/') == BUILDER_ID_START_URL);
    match raw.map(str::to_ascii_lowercase).as_deref() {
        Some("social") => Ok("social"),
        Some("idc" | "builder-id" | "builderid") => Ok(if builder_id { "builder-id" } else { "idc" }),
        None if has_client => Ok(if builder_id { "builder-id" } else { "idc" }),
        None => Ok("social"),
        Some(_) => Err(invalid(format!(
            "the Kiro token file's authMethod {:?} is not one of social, IdC",
            raw.unwrap_or_default()
        ))),
    }
}

#[async_trait::async_trait]
impl ImportLogin for KiroImport {
    fn spec(&self) -> ImportSpec<'_> {
        ImportSpec { name: ID, aliases: &[] }
    }

    async fn import(&self, _ctx: &LoginContext, input: ImportInput<'_>) -> Result<LoginOutcome, LoginError> {
        let bytes = input
            .file
            .filter(|b| !b.iter().all(u8::is_ascii_whitespace))
            .ok_or_else(|| invalid(format!("no file given: choose the Kiro IDE token file ({IDE_TOKEN_FILE})")))?;
        let document = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(document)) => document,
            Ok(_) => return Err(invalid("the Kiro token file is not a JSON object")),
            // Position only: the text around it may be a token.
            Err(e) => {
                return Err(invalid(format!(
                    "the Kiro token file is not valid JSON (line {}, column {})",
                    e.line(),
                    e.column()
                )));
            }
        };
        if document.contains_key("type") || document.contains_key("access_token") {
            return Err(invalid(
                "this is already a Switchyard/CLIProxyAPI auth file, not the Kiro IDE's token file; add it as an auth file",
            ));
        }
        let access_token =
            text(&document, "accessToken")?.ok_or_else(|| invalid("the Kiro token file has no accessToken"))?;
        let refresh_token = text(&document, "refreshToken")?;
        let expires_at = match text(&document, "expiresAt")? {
            None => None,
            Some(raw) => Some(
                chrono::DateTime::parse_from_rfc3339(raw)
                    .map(oauth_http::rfc3339)
                    .map_err(|_| invalid(format!("the Kiro token file's expiresAt {raw:?} is not an RFC 3339 time")))?,
            ),
        };
        let client_id = text(&document, "clientId")?;
        let client_secret = text(&document, "clientSecret")?;
        let client = client_id.zip(client_secret);
        let start_url = text(&document, "startUrl")?;
        let method = auth_method(text(&document, "authMethod")?, start_url, client.is_some())?;
        let region = text(&document, "region")?.unwrap_or(DEFAULT_REGION);
        if !super::valid_region(region) {
            return Err(invalid(format!("the Kiro token file's region {region:?} is not an AWS region name")));
        }
        let provider = text(&document, "provider")?;
        let profile_arn = text(&document, "profileArn")?;
        let email = text(&document, "email")?.map(str::to_owned).or_else(|| email_from_token(access_token));

        if let Some(refresh) = refresh_token
            && let Some((existing, _)) = input
                .existing
                .iter()
                .find(|(_, c)| c.provider().as_deref() == Some(ID) && c.refresh_token() == Some(refresh))
        {
            return Err(LoginError::Duplicate { existing_file: existing.clone() });
        }

        let mut credential = Credential::new(ID);
        let fields = credential.fields_mut();
        fields.insert("access_token".into(), access_token.into());
        put(fields, "refresh_token", refresh_token);
        put(fields, "profile_arn", profile_arn);
        put(fields, "expires_at", expires_at.as_deref());
        fields.insert("auth_method".into(), method.into());
        put(fields, "provider", provider);
        if let Some((id, secret)) = client {
            fields.insert("client_id".into(), id.into());
            fields.insert("client_secret".into(), secret.into());
        }
        fields.insert("region".into(), region.into());
        put(fields, "start_url", start_url);
        put(fields, "email", email.as_deref());
        let kind = provider.map(str::to_ascii_lowercase).unwrap_or_else(|| "imported".into());
        let file_name = kiro_file_name(&kind, email.as_deref(), profile_arn);
        Ok(LoginOutcome { file_name, credential })
    }

    fn recognises_upload(&self, document: &Map<String, Value>) -> bool {
        !document.contains_key("type")
            && document.get("accessToken").and_then(Value::as_str).is_some_and(|t| !t.trim().is_empty())
            && IDE_MARKERS.iter().any(|key| document.contains_key(*key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_methods_follow_the_start_url() {
        assert_eq!(auth_method(Some("social"), None, false).unwrap(), "social");
        assert_eq!(auth_method(Some("IdC"), None, true).unwrap(), "builder-id");
        assert_eq!(auth_method(Some("IdC"), Some("https://view.awsapps.com/start/"), true).unwrap(), "builder-id");
        assert_eq!(auth_method(Some("IdC"), Some("https://acme.awsapps.com/start"), true).unwrap(), "idc");
        assert_eq!(auth_method(None, None, true).unwrap(), "builder-id");
        assert_eq!(auth_method(None, None, false).unwrap(), "social");
        let error = auth_method(Some("password"), None, false).unwrap_err();
        assert_eq!(error.to_string(), "the Kiro token file's authMethod \"password\" is not one of social, IdC");
    }
}
