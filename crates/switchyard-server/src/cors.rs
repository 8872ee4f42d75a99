//! Browser access to every route, for allowed origins only (see [`crate::browser_policy`]):
//! loopback origins, `allowed-origins` and the server's own. Their requests get
//! `Access-Control-Allow-Origin: <that origin>` (never `*`), and their `OPTIONS` preflights are
//! answered 204 before routing (so preflights need no key, on the management API and the public
//! API alike). A preflight from any other origin is a 403 without CORS headers, so the browser
//! never sends the request; other answers to such pages carry no CORS headers, so their script
//! cannot read them. Every answer says `Vary: Origin`, since it depends on it.
//!
//! Two more details: `Access-Control-Allow-Headers: *` does not cover `Authorization` in
//! browsers (Fetch spec), so a preflight's requested headers are echoed back; and the headers
//! panels read from answers (`X-CPA-*`, `X-Server-*`) are listed in
//! `Access-Control-Expose-Headers`, since cross-origin scripts can read only the listed ones.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::browser_policy::{origin_allowed, request_host, request_origin};
use crate::{ApiError, AppState};

const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";

/// Response headers a cross-origin page may read: the version headers panels show (CPA's names
/// and the fallbacks the official panel also reads), the request id and `Retry-After`.
pub const EXPOSE_HEADERS: &str = "X-CPA-VERSION, X-CPA-COMMIT, X-CPA-BUILD-DATE, X-CPA-SUPPORT-PLUGIN, \
                                  X-Server-Version, X-Server-Build-Date, X-Request-Id, Retry-After";

pub async fn allow_browsers(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let config = state.config.get();
    let origin = request_origin(request.headers()).map(str::to_owned);
    let allowed = origin
        .as_deref()
        .filter(|origin| origin_allowed(&config, origin, request_host(request.headers(), request.uri())))
        .and_then(|origin| HeaderValue::from_str(origin).ok());
    if request.method() == Method::OPTIONS {
        if origin.is_some() && allowed.is_none() {
            let mut response =
                ApiError::new(StatusCode::FORBIDDEN, "origin not allowed: add it to allowed-origins").into_response();
            vary(response.headers_mut());
            return response;
        }
        let mut response = StatusCode::NO_CONTENT.into_response();
        add_headers(response.headers_mut(), request.headers(), allowed);
        return response;
    }
    let requested = request.headers().clone();
    let mut response = next.run(request).await;
    add_headers(response.headers_mut(), &requested, allowed);
    response
}

fn vary(headers: &mut HeaderMap) {
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
}

/// CORS headers for an allowed `origin`; without one only `Vary`.
fn add_headers(headers: &mut HeaderMap, request: &HeaderMap, origin: Option<HeaderValue>) {
    vary(headers);
    let Some(origin) = origin else { return };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static(ALLOW_METHODS));
    let allow_headers = request
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .filter(|value| !value.is_empty())
        .cloned()
        .unwrap_or_else(|| HeaderValue::from_static("*"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSE_HEADERS));
    // The echoed request headers make the answer depend on them.
    headers.append(header::VARY, HeaderValue::from_static("Access-Control-Request-Headers"));
}
