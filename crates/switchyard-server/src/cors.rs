//! Browser access to every route, as CPA grants it: any origin, the usual methods, any request
//! header, and `OPTIONS` answered 204 before routing (so preflights need no key, on the
//! management API and the public API alike).
//!
//! Two details differ from a literal `*`: `Access-Control-Allow-Headers: *` does not cover
//! `Authorization` in browsers (Fetch spec), so a preflight's requested headers are echoed back;
//! and the headers panels read from answers (`X-CPA-*`, `X-Server-*`) are listed in
//! `Access-Control-Expose-Headers`, since cross-origin scripts can read only the listed ones.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE, OPTIONS";

/// Response headers a cross-origin page may read: the version headers panels show (CPA's names
/// and the fallbacks the official panel also reads), the request id and `Retry-After`.
pub const EXPOSE_HEADERS: &str = "X-CPA-VERSION, X-CPA-COMMIT, X-CPA-BUILD-DATE, X-CPA-SUPPORT-PLUGIN, \
                                  X-Server-Version, X-Server-Build-Date, X-Request-Id, Retry-After";

pub async fn allow_browsers(request: Request, next: Next) -> Response {
    if request.method() == Method::OPTIONS {
        let mut response = StatusCode::NO_CONTENT.into_response();
        add_headers(response.headers_mut(), request.headers());
        return response;
    }
    let requested = request.headers().clone();
    let mut response = next.run(request).await;
    add_headers(response.headers_mut(), &requested);
    response
}

fn add_headers(headers: &mut HeaderMap, request: &HeaderMap) {
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
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
