//! `platform.iflow.cn/api/openapi/apikey`: the API key of the account whose browser session the
//! `BXAuth` cookie is. `GET` shows it, `POST {"name": <account name>}` issues a new one (the old
//! key stops working). Answers are gzipped whenever the client accepts gzip, as the site's front
//! end does.

use std::io::Write;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};

use super::{Fault, IflowState, PLATFORM_ORIGIN, PlatformAccount, Shared, envelope, html_error};

pub(super) async fn read_key(State(state): Shared, headers: HeaderMap) -> Response {
    let answer = {
        let state = state.lock().expect("mock state lock");
        match account(&state, &headers) {
            Err(refusal) => refusal,
            Ok((_, account)) => envelope(true, "200", "success", key_data(account)),
        }
    };
    gzipped(&headers, answer).await
}

pub(super) async fn renew_key(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    let answer = renew(&mut state.lock().expect("mock state lock"), &headers, &body);
    gzipped(&headers, answer).await
}

fn renew(state: &mut IflowState, headers: &HeaderMap, body: &[u8]) -> Response {
    let bxauth = match account(state, headers) {
        Err(refusal) => return refusal,
        Ok((bxauth, _)) => bxauth,
    };
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if origin != Some(PLATFORM_ORIGIN) {
        return html_error(StatusCode::FORBIDDEN, "cross-site request refused");
    }
    let content_type_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("application/json"));
    let name = serde_json::from_slice::<Value>(body).ok().and_then(|b| b.get("name")?.as_str().map(str::to_owned));
    let Some(name) = name.filter(|_| content_type_json) else {
        return envelope(false, "400", "参数错误 (invalid parameters)", Value::Null);
    };
    if state.cookies[&bxauth].name != name {
        return envelope(false, "400", "名称不匹配 (name does not match the account)", Value::Null);
    }
    let old = state.cookies[&bxauth].api_key.clone();
    state.live_keys.remove(&old);
    let api_key = state.new_api_key();
    let expire_time = state.expire_time();
    let account = state.cookies.get_mut(&bxauth).expect("checked above");
    account.api_key = api_key;
    account.expire_time = expire_time;
    envelope(true, "200", "success", key_data(account))
}

/// The account the request's `BXAuth` cookie belongs to, or the platform's refusal.
fn account<'a>(state: &'a IflowState, headers: &HeaderMap) -> Result<(String, &'a PlatformAccount), Response> {
    if state.fault == Fault::PlatformServerError {
        return Err(html_error(StatusCode::BAD_GATEWAY, "Bad Gateway"));
    }
    let bxauth = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == "BXAuth")
        .map(|(_, value)| value.trim().to_owned());
    match bxauth.as_ref().and_then(|v| state.cookies.get(v).map(|a| (v, a))) {
        Some((value, account)) if !account.dead => Ok((value.clone(), account)),
        _ => Err(envelope(false, "401", "登录已失效，请重新登录 (not logged in)", Value::Null)),
    }
}

fn key_data(account: &PlatformAccount) -> Value {
    let mask = format!("{}****{}", &account.api_key[..5], &account.api_key[account.api_key.len() - 4..]);
    json!({
        "hasExpired": false,
        "expireTime": account.expire_time,
        "name": account.name,
        "apiKey": account.api_key,
        "apiKeyMask": mask,
    })
}

/// `response` with its body gzipped when the request accepts gzip.
async fn gzipped(headers: &HeaderMap, response: Response) -> Response {
    let accepts_gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|coding| coding.trim().split(';').next() == Some("gzip")));
    if !accepts_gzip {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(&bytes).expect("writing to a Vec");
    let compressed = encoder.finish().expect("writing to a Vec");
    parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts.headers.remove(header::CONTENT_LENGTH);
    (parts, compressed).into_response()
}
