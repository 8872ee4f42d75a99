//! Client API keys (`api-keys`), accepted the ways CPA accepts them: `Authorization: Bearer`
//! (any other Authorization value whole), `X-Goog-Api-Key`, `X-Api-Key`, `?key=`, `?auth_token=`.
//! With no keys configured every request is allowed, except one a web page of a foreign origin
//! sends: without a key to require, the `Origin` check is what stops any site the user visits
//! from spending their quota with a form-like `text/plain` POST (no preflight needed). With keys
//! configured the origin is not checked here: a page would need a key anyway.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use subtle::ConstantTimeEq;
use switchyard_dialects::Dialect;
use switchyard_providers::executor::Operation;

use super::ClientCall;
use super::request_log::RequestTag;
use crate::AppState;
use crate::browser_policy::{origin_allowed, request_host, request_origin};

fn presented_key(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty());
    if let Some(value) = header("authorization") {
        return Some(match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim().to_owned(),
            _ => value.to_owned(),
        });
    }
    if let Some(value) = header("x-goog-api-key").or_else(|| header("x-api-key")) {
        return Some(value.to_owned());
    }
    let pairs = url::form_urlencoded::parse(query.unwrap_or("").as_bytes());
    let mut from_query = None;
    for (name, value) in pairs {
        match name.as_ref() {
            "key" => return Some(value.into_owned()),
            "auth_token" if from_query.is_none() => from_query = Some(value.into_owned()),
            _ => {}
        }
    }
    from_query.filter(|k| !k.is_empty())
}

/// The dialect a path speaks, for answering in it.
fn dialect_of(path: &str) -> Dialect {
    if path.starts_with("/v1beta") || (path.starts_with("/v1/models/") && path.contains(':')) {
        Dialect::Gemini
    } else if path.starts_with("/v1/messages") {
        Dialect::AnthropicMessages
    } else if path.ends_with("/responses") {
        Dialect::OpenAiResponses
    } else {
        Dialect::OpenAiChat
    }
}

/// Checks the client key and records which one it was, as `key-<n>` (its 1-based position in
/// `api-keys`) and a hash of it, for the request log and usage records: the key itself is never
/// logged or kept.
pub async fn require_client_key(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    let config = state.config.get();
    let call = ClientCall::new(dialect_of(request.uri().path()), Operation::Generate, HeaderMap::new());
    if config.api_keys.is_empty() {
        let headers = request.headers();
        if let Some(origin) = request_origin(headers)
            && !origin_allowed(&config, origin, request_host(headers, request.uri()))
        {
            return call.error(
                403,
                "permission",
                "requests from this web origin are refused: add it to allowed-origins",
            );
        }
        return next.run(request).await;
    }
    let presented = presented_key(request.headers(), request.uri().query());
    let Some(key) = presented else {
        return call.error(401, "authentication", "Missing API key");
    };
    // Every key is compared (constant time each), so the position found leaks no timing.
    let mut found = None;
    for (index, known) in config.api_keys.iter().enumerate() {
        if bool::from(known.as_bytes().ct_eq(key.as_bytes())) && found.is_none() {
            found = Some(index);
        }
    }
    let Some(index) = found else {
        return call.error(401, "authentication", "Invalid API key");
    };
    if let Some(tag) = request.extensions_mut().get_mut::<RequestTag>() {
        tag.client_key = format!("key-{}", index + 1);
        tag.client_key_hash = crate::usage::record::client_key_hash(&key);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_sources_in_cpa_order() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_key(&headers, Some("key=q1&auth_token=q2")).as_deref(), Some("q1"));
        assert_eq!(presented_key(&headers, Some("auth_token=q2")).as_deref(), Some("q2"));
        assert_eq!(presented_key(&headers, None), None);
        headers.insert("x-api-key", "x".parse().unwrap());
        assert_eq!(presented_key(&headers, Some("key=q1")).as_deref(), Some("x"));
        headers.insert("x-goog-api-key", "g".parse().unwrap());
        assert_eq!(presented_key(&headers, None).as_deref(), Some("g"));
        headers.insert("authorization", "Bearer b".parse().unwrap());
        assert_eq!(presented_key(&headers, None).as_deref(), Some("b"));
    }

    #[test]
    fn paths_answer_in_their_dialect() {
        assert_eq!(dialect_of("/v1beta/models/x:generateContent"), Dialect::Gemini);
        assert_eq!(dialect_of("/v1/models/x:streamGenerateContent"), Dialect::Gemini);
        assert_eq!(dialect_of("/v1/models"), Dialect::OpenAiChat);
        assert_eq!(dialect_of("/v1/messages/count_tokens"), Dialect::AnthropicMessages);
        assert_eq!(dialect_of("/backend-api/codex/responses"), Dialect::OpenAiResponses);
        assert_eq!(dialect_of("/v1/chat/completions"), Dialect::OpenAiChat);
    }
}
