//! iFlow's cookie login (spec providers-extra §4.2): the user pastes the cookie of a signed-in
//! `platform.iflow.cn` session; its `BXAuth` value is what authenticates there. The platform's
//! API-key endpoint shows the account's key (`GET`) and issues a new one (`POST {"name"}`), and
//! the new key with its `expireTime` is what is saved. Cookie files renew their key the same way
//! when it expires within 48 h.
//!
//! The platform answers like a browser API: `{"success", "code", "message", "data"}` with
//! HTTP 200 even for refusals, gzipped. Only `BXAuth=<value>;` is stored, never the rest of the
//! cookie, and no text here ever holds a cookie or key.

use std::time::Duration;

use chrono::Utc;
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Map, Value, json};
use switchyard_auth::Credential;
use switchyard_auth::login::{
    ImportInput, ImportLogin, ImportSpec, LoginContext, LoginError, LoginOutcome, RefreshError,
};

use super::{PLATFORM_API_KEY_URL, PROVIDER, envelope_message};
use crate::oauth_http::{self, Reply, str_at};

const BXAUTH: &str = "BXAuth";
const PLATFORM_ORIGIN: &str = "https://platform.iflow.cn";
const PLATFORM_REFERER: &str = "https://platform.iflow.cn/";
/// A desktop Chrome, as the platform expects its callers to be.
const BROWSER_USER_AGENT: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
/// The encodings reqwest decodes here (`br` is left out: it could not be read).
const ACCEPT_ENCODING: &str = "gzip, deflate";
/// Cookie files renew their key when it expires sooner than this.
const KEY_RENEW_WINDOW: Duration = Duration::from_secs(48 * 60 * 60);
/// `expireTime` as the platform writes it.
const EXPIRE_TIME_FORMAT: &str = "%Y-%m-%d %H:%M";

/// The cookie login, an import reading `options["cookie"]`.
pub struct IflowCookie;

#[async_trait::async_trait]
impl ImportLogin for IflowCookie {
    fn spec(&self) -> ImportSpec<'_> {
        ImportSpec { name: PROVIDER, aliases: &[] }
    }

    async fn import(&self, ctx: &LoginContext, input: ImportInput<'_>) -> Result<LoginOutcome, LoginError> {
        let cookie = normalise_cookie(input.options.get("cookie").map(String::as_str).unwrap_or_default());
        if cookie.is_empty() {
            return Err(LoginError::InvalidInput("cookie is required".into()));
        }
        let bxauth =
            bxauth_value(&cookie).ok_or_else(|| LoginError::InvalidInput("cookie missing BXAuth field".into()))?;
        if let Some(existing_file) = duplicate_of(input.existing, bxauth) {
            return Err(LoginError::Duplicate { existing_file });
        }
        let shown = read_key(ctx, &cookie).await.map_err(PlatformError::into_login_error)?;
        let name = shown.name.ok_or_else(|| LoginError::Provider("failed to extract email from token".into()))?;
        let renewed = renew_key(ctx, &cookie, &name).await.map_err(PlatformError::into_login_error)?;
        let api_key = renewed
            .api_key
            .ok_or_else(|| LoginError::Provider("iFlow platform issued no API key for this account".into()))?;
        let expired = renewed.expire_time.or(shown.expire_time).unwrap_or_default();

        let now = Utc::now().timestamp();
        let file_name = match sanitise_file_part(&name) {
            part if part.is_empty() => format!("iflow-{now}.json"),
            part => format!("iflow-{part}-{now}.json"),
        };
        let mut credential = Credential::new(PROVIDER);
        let fields = credential.fields_mut();
        for key in ["access_token", "refresh_token"] {
            fields.insert(key.into(), "".into());
        }
        fields.insert("last_refresh".into(), oauth_http::now().into());
        fields.insert("expired".into(), expired.into());
        fields.insert("api_key".into(), api_key.into());
        fields.insert("email".into(), name.into());
        for key in ["token_type", "scope"] {
            fields.insert(key.into(), "".into());
        }
        fields.insert("cookie".into(), format!("{BXAUTH}={bxauth};").into());
        Ok(LoginOutcome { file_name, credential })
    }
}

/// Whether the file is a cookie login's (it has a cookie to renew its key with).
pub(super) fn is_cookie_file(credential: &Credential) -> bool {
    credential.str_field("cookie").is_some()
}

/// Renews a cookie file's API key when it expires within 48 h (or its expiry is unknown);
/// otherwise nothing changes. A refused cookie means the browser session is over: re-login.
pub(super) async fn refresh(ctx: &LoginContext, credential: &Credential) -> Result<Map<String, Value>, RefreshError> {
    let cookie = normalise_cookie(credential.str_field("cookie").unwrap_or_default());
    let window = chrono::Duration::from_std(KEY_RENEW_WINDOW).expect("48 h fits");
    if credential.expiry().is_some_and(|expiry| expiry - Utc::now() > window) {
        return Ok(Map::new());
    }
    let name = match credential.email() {
        Some(name) => name.to_owned(),
        None => read_key(ctx, &cookie)
            .await
            .map_err(PlatformError::into_refresh_error)?
            .name
            .ok_or_else(|| RefreshError::Transient("iFlow platform answer has no account name".into()))?,
    };
    let renewed = renew_key(ctx, &cookie, &name).await.map_err(PlatformError::into_refresh_error)?;
    let api_key = renewed.api_key.ok_or_else(|| RefreshError::Transient("iFlow platform issued no API key".into()))?;
    let mut fields = Map::new();
    fields.insert("api_key".into(), api_key.into());
    if let Some(expired) = renewed.expire_time {
        fields.insert("expired".into(), expired.into());
    }
    fields.insert("last_refresh".into(), oauth_http::now().into());
    Ok(fields)
}

/// The cookie as pasted, trimmed, with every whitespace run made one space and a final `;`
/// (empty stays empty).
pub fn normalise_cookie(raw: &str) -> String {
    let mut cookie = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if !cookie.is_empty() && !cookie.ends_with(';') {
        cookie.push(';');
    }
    cookie
}

/// The non-blank value of the cookie's `BXAuth` pair.
fn bxauth_value(cookie: &str) -> Option<&str> {
    cookie
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| name.trim() == BXAUTH)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
}

/// The iFlow file already holding a cookie with this `BXAuth` value.
fn duplicate_of(existing: &[(String, Credential)], bxauth: &str) -> Option<String> {
    existing
        .iter()
        .filter(|(_, credential)| credential.provider().as_deref() == Some(PROVIDER))
        .find(|(_, credential)| {
            let cookie = normalise_cookie(credential.str_field("cookie").unwrap_or_default());
            bxauth_value(&cookie) == Some(bxauth)
        })
        .map(|(name, _)| name.clone())
}

/// An account name fit for a file name: `[A-Za-z0-9_@.-]` kept, `*` (masked digits) as `x`,
/// anything else dropped.
pub fn sanitise_file_part(name: &str) -> String {
    name.trim()
        .chars()
        .filter_map(|c| match c {
            '*' => Some('x'),
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '@' | '.' | '-') => Some(c),
            _ => None,
        })
        .collect()
}

/// The `data` of the API-key endpoint's answer.
struct KeyInfo {
    name: Option<String>,
    api_key: Option<String>,
    expire_time: Option<String>,
}

/// How a platform call failed.
enum PlatformError {
    /// `success: false`: the platform's own message; `signed_out` when it says the session is over.
    Refused { message: String, signed_out: bool },
    /// A non-2xx status.
    Status { status: StatusCode, retry_after: Option<Duration> },
    /// Transport failure or an unreadable answer.
    Broken(String),
}

impl PlatformError {
    fn into_login_error(self) -> LoginError {
        match self {
            PlatformError::Refused { message, .. } => {
                LoginError::InvalidInput(format!("iFlow platform refused the cookie: {message}"))
            }
            PlatformError::Status { status, .. } if matches!(status.as_u16(), 401 | 403) => {
                LoginError::InvalidInput(format!("iFlow platform refused the cookie: HTTP {}", status.as_u16()))
            }
            PlatformError::Status { status, .. } => {
                LoginError::Provider(format!("iFlow platform answered HTTP {}", status.as_u16()))
            }
            PlatformError::Broken(reason) => LoginError::Provider(reason),
        }
    }

    fn into_refresh_error(self) -> RefreshError {
        match self {
            PlatformError::Refused { message, signed_out: true } => {
                RefreshError::Revoked(format!("iFlow platform refused the cookie: {message}"))
            }
            PlatformError::Refused { message, signed_out: false } => {
                RefreshError::Transient(format!("iFlow platform refused to renew the key: {message}"))
            }
            PlatformError::Status { status, .. } if matches!(status.as_u16(), 401 | 403) => {
                RefreshError::Revoked(format!("iFlow platform refused the cookie: HTTP {}", status.as_u16()))
            }
            PlatformError::Status { status: StatusCode::TOO_MANY_REQUESTS, retry_after } => {
                RefreshError::RateLimited { retry_after }
            }
            PlatformError::Status { status, .. } => {
                RefreshError::Transient(format!("iFlow platform answered HTTP {}", status.as_u16()))
            }
            PlatformError::Broken(reason) => RefreshError::Transient(reason),
        }
    }
}

/// `GET {platform-api-key}`: the account's name, current key and its expiry.
async fn read_key(ctx: &LoginContext, cookie: &str) -> Result<KeyInfo, PlatformError> {
    let request = ctx.http.get(platform_url(ctx)).headers(browser_headers(cookie)?);
    call(request).await
}

/// `POST {platform-api-key}` `{"name"}`: a new key (the old one stops working) and its expiry.
async fn renew_key(ctx: &LoginContext, cookie: &str, name: &str) -> Result<KeyInfo, PlatformError> {
    let request = ctx
        .http
        .post(platform_url(ctx))
        .headers(browser_headers(cookie)?)
        .header(header::ORIGIN, PLATFORM_ORIGIN)
        .header(header::REFERER, PLATFORM_REFERER)
        .json(&json!({"name": name}));
    call(request).await
}

fn platform_url(ctx: &LoginContext) -> String {
    ctx.endpoint(PROVIDER, "platform-api-key", PLATFORM_API_KEY_URL)
}

/// The headers a browser on the platform site sends, with the cookie marked sensitive.
fn browser_headers(cookie: &str) -> Result<HeaderMap, PlatformError> {
    let mut headers = HeaderMap::new();
    let mut cookie = HeaderValue::from_str(cookie).map_err(|_| PlatformError::Refused {
        message: "the cookie is not valid header text".into(),
        signed_out: false,
    })?;
    cookie.set_sensitive(true);
    headers.insert(header::COOKIE, cookie);
    for (name, value) in [
        (header::ACCEPT, "application/json, text/plain, */*"),
        (header::USER_AGENT, BROWSER_USER_AGENT),
        (header::ACCEPT_LANGUAGE, "zh-CN,zh;q=0.9,en;q=0.8"),
        (header::ACCEPT_ENCODING, ACCEPT_ENCODING),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    for (name, value) in [("sec-fetch-dest", "empty"), ("sec-fetch-mode", "cors"), ("sec-fetch-site", "same-origin")] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    Ok(headers)
}

async fn call(request: RequestBuilder) -> Result<KeyInfo, PlatformError> {
    let reply = oauth_http::send(request)
        .await
        .map_err(|e| PlatformError::Broken(format!("iFlow platform request failed: {e}")))?;
    read_answer(&reply)
}

fn read_answer(reply: &Reply) -> Result<KeyInfo, PlatformError> {
    if !reply.status.is_success() {
        return Err(PlatformError::Status { status: reply.status, retry_after: reply.retry_after });
    }
    let body = reply.json().filter(Value::is_object).ok_or_else(|| {
        PlatformError::Broken(format!("iFlow platform answered HTTP {} without a JSON object", reply.status.as_u16()))
    })?;
    if body.get("success").and_then(Value::as_bool) != Some(true) {
        let code = match body.get("code") {
            Some(Value::String(code)) => code.trim().to_owned(),
            Some(Value::Number(code)) => code.to_string(),
            _ => String::new(),
        };
        let signed_out = matches!(code.as_str(), "401" | "403");
        return Err(PlatformError::Refused { message: envelope_message(&body, ""), signed_out });
    }
    let field = |key: &str| str_at(&body, &["data", key]).map(str::to_owned);
    let expire_time = field("expireTime").filter(|t| {
        // Kept verbatim as the platform wrote it; anything else is not an expiry we can use.
        chrono::NaiveDateTime::parse_from_str(t, EXPIRE_TIME_FORMAT).is_ok()
    });
    Ok(KeyInfo { name: field("name"), api_key: field("apiKey"), expire_time })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_trimmed_collapsed_and_terminated() {
        assert_eq!(normalise_cookie("  a=1;\n\t BXAuth=xyz  "), "a=1; BXAuth=xyz;");
        assert_eq!(normalise_cookie("BXAuth=xyz;"), "BXAuth=xyz;");
        assert_eq!(normalise_cookie(" \n "), "");
    }

    #[test]
    fn bxauth_is_found_among_other_pairs_and_must_have_a_value() {
        assert_eq!(bxauth_value("a=1; BXAuth=xyz; b=2;"), Some("xyz"));
        assert_eq!(bxauth_value("BXAuth = xyz ;"), Some("xyz"));
        assert_eq!(bxauth_value("a=1; BXAuth=;"), None);
        assert_eq!(bxauth_value("xBXAuth=1; bxauth=2;"), None);
    }

    #[test]
    fn file_parts_keep_safe_characters_and_unmask_stars() {
        assert_eq!(sanitise_file_part("138****8000"), "138xxxx8000");
        assert_eq!(sanitise_file_part(" Jane.Doe+tag@example.com "), "Jane.Doetag@example.com");
        assert_eq!(sanitise_file_part("用户/../x"), "..x");
        assert_eq!(sanitise_file_part("用户"), "");
    }

    #[test]
    fn duplicates_are_found_by_bxauth_value_in_iflow_files_only() {
        let file = |file_type: &str, cookie: &str| {
            let mut credential = Credential::new(file_type);
            credential.fields_mut().insert("cookie".into(), cookie.into());
            credential
        };
        let existing = vec![
            ("other-a.json".to_owned(), file("other", "BXAuth=same;")),
            ("iflow-a.json".to_owned(), file("iflow", "BXAuth=other;")),
            ("iflow-b.json".to_owned(), file("iflow", "  BXAuth=same ")),
        ];
        assert_eq!(duplicate_of(&existing, "same").as_deref(), Some("iflow-b.json"));
        assert_eq!(duplicate_of(&existing, "new"), None);
    }

    fn reply(status: u16, body: Value) -> Reply {
        Reply::new(StatusCode::from_u16(status).unwrap(), body.to_string().into_bytes())
    }

    #[test]
    fn answers_are_read_from_the_envelope_whatever_the_status() {
        let ok = json!({"success": true, "data": {"name": "n", "apiKey": "k", "expireTime": "2030-01-02 03:04"}});
        let info = read_answer(&reply(200, ok)).ok().unwrap();
        assert_eq!((info.name.as_deref(), info.api_key.as_deref()), (Some("n"), Some("k")));
        assert_eq!(info.expire_time.as_deref(), Some("2030-01-02 03:04"));

        let odd_time = json!({"success": true, "data": {"expireTime": "soon"}});
        assert!(read_answer(&reply(200, odd_time)).ok().unwrap().expire_time.is_none());

        let signed_out = json!({"success": false, "code": "401", "message": "not logged in"});
        assert!(matches!(
            read_answer(&reply(200, signed_out)).err().unwrap().into_refresh_error(),
            RefreshError::Revoked(m) if m.contains("not logged in")
        ));
        let busy = json!({"success": false, "code": 500, "message": "busy"});
        assert!(matches!(
            read_answer(&reply(200, busy)).err().unwrap().into_refresh_error(),
            RefreshError::Transient(_)
        ));
        assert!(matches!(
            read_answer(&reply(403, json!({}))).err().unwrap().into_refresh_error(),
            RefreshError::Revoked(_)
        ));
        assert!(matches!(
            read_answer(&reply(429, json!({}))).err().unwrap().into_refresh_error(),
            RefreshError::RateLimited { .. }
        ));
        assert!(matches!(
            read_answer(&reply(200, json!("html"))).err().unwrap().into_login_error(),
            LoginError::Provider(_)
        ));
    }
}
