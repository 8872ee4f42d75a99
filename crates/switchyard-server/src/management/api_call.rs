//! `POST /api-call` `{auth_index?, method, url, header?, data?, proxy_url?}` → `{status_code,
//! header, body}`: one HTTP call made by the server on behalf of a panel (quota pages, model
//! discovery, connectivity tests), with `$TOKEN$` in header values replaced by the credential's
//! fresh token and through the credential's proxy.
//!
//! Never an open relay: the URL's origin (scheme, host, port) must be one the named credential's
//! provider talks to — its endpoints' defaults and their `upstream-urls` overrides, a config
//! key's `base-url` — and without a credential, one config names. Redirects are not followed
//! (a 3xx is the answer), so an allowed host cannot forward the call elsewhere.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value, json};
use switchyard_auth::login::RefreshError;
use switchyard_config::{Config, Timeouts};
use switchyard_router::AccountKind;

use super::auth_files::read_json_object;
use super::call_targets::{Origin, allowed_for_config, allowed_for_file, allowed_for_key};
use super::credential_index::{Indexed, auth_index_field, find};
use crate::{ApiError, AppState};

const TOKEN_PLACEHOLDER: &str = "$TOKEN$";
/// An access token must stay valid at least this long to be handed out.
const TOKEN_SKEW: Duration = Duration::from_secs(60);
/// Quota and model-list answers are small; past this the call is refused as a whole.
pub(super) const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The request, validated.
struct CallSpec {
    auth_index: Option<String>,
    method: reqwest::Method,
    url: url::Url,
    headers: Vec<(HeaderName, String)>,
    data: Option<String>,
    proxy_url: Option<String>,
}

fn parse(body: &Map<String, Value>) -> Result<CallSpec, ApiError> {
    let auth_index = auth_index_field(body)?;
    let method = match body.get("method") {
        Some(Value::String(method)) if !method.trim().is_empty() => {
            let method = method.trim().to_ascii_uppercase();
            reqwest::Method::from_bytes(method.as_bytes())
                .map_err(|_| ApiError::bad_request(format!("method: `{method}` is not an HTTP method")))?
        }
        None | Some(Value::Null) => return Err(ApiError::bad_request("method is required")),
        Some(_) => return Err(ApiError::bad_request("method must be a non-empty string")),
    };
    let url = match body.get("url") {
        Some(Value::String(url)) if !url.trim().is_empty() => url::Url::parse(url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| ApiError::bad_request("url must be an absolute http:// or https:// URL"))?,
        None | Some(Value::Null) => return Err(ApiError::bad_request("url is required")),
        Some(_) => return Err(ApiError::bad_request("url must be a non-empty string")),
    };
    let mut headers = Vec::new();
    match body.get("header").or_else(|| body.get("headers")) {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (name, value) in map {
                let Value::String(value) = value else {
                    return Err(ApiError::bad_request(format!("header.{name} must be a string")));
                };
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| ApiError::bad_request(format!("header.{name} is not a valid header name")))?;
                headers.push((name, value.clone()));
            }
        }
        Some(_) => return Err(ApiError::bad_request("header must be an object of header names to strings")),
    }
    let data = match body.get("data") {
        None | Some(Value::Null) => None,
        Some(Value::String(data)) => Some(data.clone()),
        // A panel that hands over the JSON itself means that JSON as the body.
        Some(value @ (Value::Object(_) | Value::Array(_))) => Some(value.to_string()),
        Some(_) => return Err(ApiError::bad_request("data must be a string (the request body)")),
    };
    let proxy_url = match body.get("proxy_url").or_else(|| body.get("proxyUrl")) {
        None | Some(Value::Null) => None,
        Some(Value::String(proxy)) => Some(proxy.trim().to_owned()).filter(|p| !p.is_empty()),
        Some(_) => return Err(ApiError::bad_request("proxy_url must be a string")),
    };
    Ok(CallSpec { auth_index, method, url, headers, data, proxy_url })
}

/// What the call authenticates with and which origins it may reach.
struct Subject {
    /// The `$TOKEN$` value, resolved only when a header uses it.
    token: TokenSource,
    /// The credential's own proxy setting (auth file `proxy_url`, key entry `proxy-url`).
    own_proxy: Option<String>,
    allowed: Vec<Origin>,
}

enum TokenSource {
    None,
    File(String),
    Key(String),
}

fn subject(state: &AppState, config: &Config, index: Option<&str>) -> Result<Subject, ApiError> {
    let Some(index) = index else {
        return Ok(Subject { token: TokenSource::None, own_proxy: None, allowed: allowed_for_config(config) });
    };
    match find(state, config, index).ok_or_else(|| ApiError::not_found("auth not found"))? {
        Indexed::File(stored) => {
            let credential = stored
                .credential()
                .ok_or_else(|| ApiError::conflict("auth file cannot be parsed; fix or replace it first"))?;
            Ok(Subject {
                token: TokenSource::File(stored.name.clone()),
                own_proxy: credential.proxy_url().map(str::to_owned),
                allowed: allowed_for_file(config, credential),
            })
        }
        Indexed::Key(account) => {
            let key = account.kind.config_key(config).ok_or_else(|| ApiError::not_found("auth not found"))?;
            let compat = matches!(account.kind, AccountKind::Compat { .. });
            Ok(Subject {
                token: TokenSource::Key(key.key.to_owned()),
                own_proxy: Some(key.proxy_url.to_owned()),
                allowed: allowed_for_key(config, &key, compat),
            })
        }
    }
}

/// The token `$TOKEN$` stands for: a fresh access token of an OAuth file (refreshed if it is
/// about to expire), else the file's `api_key` / `token` / `id_token` / `cookie` (CPA's order),
/// or a config key.
async fn token(state: &AppState, source: &TokenSource) -> Result<String, ApiError> {
    let name = match source {
        TokenSource::None => {
            return Err(ApiError::bad_request(format!(
                "header uses {TOKEN_PLACEHOLDER} but no auth_index names the credential to take it from"
            )));
        }
        TokenSource::Key(key) if key.is_empty() => {
            return Err(ApiError::bad_request(format!("{TOKEN_PLACEHOLDER}: this credential has no key")));
        }
        TokenSource::Key(key) => return Ok(key.clone()),
        TokenSource::File(name) => name,
    };
    let stored = state.store.get(name).ok_or_else(|| ApiError::not_found("auth not found"))?;
    let credential = stored.credential().ok_or_else(|| ApiError::conflict("auth file cannot be parsed"))?;
    if credential.access_token().is_some() || credential.refresh_token().is_some() {
        return state.refresher.fresh_access_token(name, TOKEN_SKEW).await.map_err(|error| match error {
            RefreshError::Revoked(reason) => ApiError::conflict(format!("credential needs re-login: {reason}")),
            other => ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("could not refresh the credential's token: {}", switchyard_redact::text(&other.to_string())),
            ),
        });
    }
    ["api_key", "token", "id_token", "cookie"]
        .iter()
        .find_map(|field| credential.str_field(field).filter(|v| !v.is_empty()).map(str::to_owned))
        .ok_or_else(|| ApiError::bad_request(format!("{TOKEN_PLACEHOLDER}: this credential has no token")))
}

/// Reads at most `limit` bytes of the answer; `None` when it is longer.
pub(super) async fn read_capped(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Option<Bytes>, reqwest::Error> {
    if response.content_length().is_some_and(|length| length > limit as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(Bytes::from(body)))
}

/// `content-type` → `Content-Type`, as CPA (Go's `http.Header`) spells answer headers.
fn canonical_header_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|first| first.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn bad_gateway(message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, message)
}

pub async fn call(State(state): State<Arc<AppState>>, body: Body) -> Result<Json<Value>, ApiError> {
    let body = read_json_object(body).await?;
    let spec = parse(&body)?;
    let config = state.config.get();
    let subject = subject(&state, &config, spec.auth_index.as_deref())?;
    let target = Origin::of_url(&spec.url);
    if !subject.allowed.iter().any(|allowed| allowed.admits(&target)) {
        let whose = if spec.auth_index.is_some() { "this credential's provider" } else { "the config" };
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "api-call refused: {target} is not a host {whose} talks to (an auth_index allows its provider's hosts)"
            ),
        )
        .with("allowed", subject.allowed.iter().map(ToString::to_string).collect::<Vec<_>>()));
    }

    let uses_token = spec.headers.iter().any(|(_, value)| value.contains(TOKEN_PLACEHOLDER));
    let token = if uses_token { Some(token(&state, &subject.token).await?) } else { None };
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &spec.headers {
        let value = match &token {
            Some(token) => value.replace(TOKEN_PLACEHOLDER, token),
            None => value.clone(),
        };
        let value = HeaderValue::from_str(&value)
            .map_err(|_| ApiError::bad_request(format!("header.{name} is not a valid header value")))?;
        headers.append(name.clone(), value);
    }

    let own_proxy = spec.proxy_url.as_deref().or(subject.own_proxy.as_deref());
    let http = state.http_clients.for_account_without_redirects(&config, own_proxy).await.map_err(|error| {
        if spec.proxy_url.is_some() {
            ApiError::bad_request(format!("proxy_url: {error}"))
        } else {
            bad_gateway(error.to_string())
        }
    })?;
    let mut request = http.request(spec.method.clone(), spec.url.clone()).headers(headers);
    if let Some(data) = spec.data {
        request = request.body(data);
    }
    let exchange = async {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let answer_headers = response.headers().clone();
        let body = read_capped(response, MAX_RESPONSE_BYTES).await?;
        Ok::<_, reqwest::Error>((status, answer_headers, body))
    };
    let limit = Timeouts::limit(config.timeouts.upstream_total);
    let outcome = match limit {
        Some(limit) => tokio::time::timeout(limit, exchange).await.map_err(|_| {
            ApiError::new(StatusCode::GATEWAY_TIMEOUT, format!("api-call: {target} did not answer within {limit:?}"))
        })?,
        None => exchange.await,
    };
    let (status, answer_headers, body) =
        outcome.map_err(|error| bad_gateway(format!("api-call: {target} unreachable: {}", error.without_url())))?;
    let body = body.ok_or_else(|| bad_gateway(format!("api-call: the answer exceeds {MAX_RESPONSE_BYTES} bytes")))?;
    tracing::info!(
        auth_index = spec.auth_index.as_deref().unwrap_or("-"),
        method = %spec.method,
        target = %target,
        path = spec.url.path(),
        status,
        "api-call"
    );

    // The token went upstream; an upstream that echoes it does not get it into the answer.
    let mask = |text: &str| match &token {
        Some(token) if !token.is_empty() => text.replace(token.as_str(), &switchyard_redact::secret(token).to_string()),
        _ => text.to_owned(),
    };
    let mut header = Map::new();
    for (name, value) in &answer_headers {
        let values = header.entry(canonical_header_name(name.as_str())).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = values {
            values.push(Value::String(mask(&String::from_utf8_lossy(value.as_bytes()))));
        }
    }
    let text = mask(&String::from_utf8_lossy(&body));
    let body = serde_json::from_str::<Value>(&text).unwrap_or(Value::String(text));
    Ok(Json(json!({"status_code": status, "header": header, "body": body})))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: Value) -> Result<CallSpec, String> {
        parse(body.as_object().unwrap()).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn bad_fields_are_named() {
        let url = "https://api.anthropic.com/api/oauth/usage";
        assert_eq!(spec(json!({"url": url})).err().unwrap(), "method is required");
        assert_eq!(spec(json!({"method": "GET"})).err().unwrap(), "url is required");
        assert!(spec(json!({"method": "G ET", "url": url})).err().unwrap().starts_with("method:"));
        assert!(spec(json!({"method": "GET", "url": "ftp://x"})).err().unwrap().starts_with("url must be"));
        assert!(spec(json!({"method": "GET", "url": "/relative"})).err().unwrap().starts_with("url must be"));
        assert_eq!(
            spec(json!({"method": "GET", "url": url, "header": {"a": 1}})).err().unwrap(),
            "header.a must be a string"
        );
        assert!(spec(json!({"method": "GET", "url": url, "header": []})).err().unwrap().starts_with("header must be"));
        assert!(spec(json!({"method": "GET", "url": url, "data": 5})).err().unwrap().starts_with("data must be"));
        assert_eq!(
            spec(json!({"method": "GET", "url": url, "authIndex": 7})).err().unwrap(),
            "authIndex must be a string"
        );
    }

    #[test]
    fn camel_case_index_and_json_data_are_accepted() {
        let parsed = spec(json!({"authIndex": "abc", "method": "post", "url": "https://x.example/a",
                                 "header": {"Authorization": "Bearer $TOKEN$"}, "data": {"a": 1}}))
        .unwrap();
        assert_eq!(parsed.auth_index.as_deref(), Some("abc"));
        assert_eq!(parsed.method, reqwest::Method::POST);
        assert_eq!(parsed.data.as_deref(), Some(r#"{"a":1}"#));
        assert_eq!(parsed.headers[0].0.as_str(), "authorization");
    }

    #[test]
    fn header_names_are_canonical() {
        assert_eq!(canonical_header_name("content-type"), "Content-Type");
        assert_eq!(canonical_header_name("x-ratelimit-remaining"), "X-Ratelimit-Remaining");
        assert_eq!(canonical_header_name("etag"), "Etag");
    }
}
