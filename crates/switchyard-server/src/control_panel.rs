//! The embedded management panel (`web/` at the repository root): `GET /management.html` (where
//! CPA serves its panel) and `GET /` for browsers, plus its scripts and styles under `/panel/`.
//! The files are compiled into the binary, so the panel works offline and needs no build step.
//! `remote-management.disable-control-panel: true` turns all of it off (404), read per request
//! so a hot reload applies at once; `/` then, and for non-browser clients always, is CPA's JSON
//! banner.
//!
//! Every answer carries a strict Content-Security-Policy: scripts and styles only from this
//! server, no inline script, no inline style attributes, no frames, nothing from outside.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::{ApiError, AppState};

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// One embedded file: its path under `web/`, content type, bytes.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! assets {
    ($(($path:literal, $type:expr)),* $(,)?) => {
        &[$(Asset { path: $path, content_type: $type, bytes: include_bytes!(concat!("../../../web/", $path)) }),*]
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of `web/` (a test checks the list is complete).
static ASSETS: &[Asset] = assets![
    ("management.html", "text/html; charset=utf-8"),
    ("app.css", "text/css; charset=utf-8"),
    ("favicon.svg", "image/svg+xml"),
    ("js/app.js", JS),
    ("js/api.js", JS),
    ("js/dom.js", JS),
    ("js/i18n.js", JS),
    ("js/i18n-zh.js", JS),
    ("js/accounts.js", JS),
    ("js/login-flow.js", JS),
    ("js/monitor.js", JS),
    ("js/charts.js", JS),
    ("js/pages/dashboard.js", JS),
    ("js/pages/monitoring.js", JS),
    ("js/pages/inspection.js", JS),
    ("js/pages/providers.js", JS),
    ("js/pages/quota.js", JS),
    ("js/pages/oauth.js", JS),
    ("js/pages/auth-files.js", JS),
    ("js/pages/auth-detail.js", JS),
    ("js/pages/ai-providers.js", JS),
    ("js/pages/model-rules.js", JS),
    ("js/pages/config.js", JS),
    ("js/pages/clients.js", JS),
    ("vendor/qr.js", JS),
    ("vendor/LICENSE-qr.txt", "text/plain; charset=utf-8"),
];

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/management.html", get(page)).route("/panel/{*path}", get(asset)).route("/", get(root))
}

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

fn serve(asset: &Asset) -> Response {
    let mut response = asset.bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    // Assets change with the binary only; `no-cache` revalidates so an upgrade is picked up.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn enabled(state: &AppState) -> bool {
    !state.config.get().remote_management.disable_control_panel
}

async fn page(State(state): State<Arc<AppState>>) -> Response {
    match (enabled(&state), find("management.html")) {
        (true, Some(asset)) => serve(asset),
        _ => ApiError::not_found("not found").into_response(),
    }
}

async fn asset(State(state): State<Arc<AppState>>, Path(path): Path<String>) -> Response {
    // The page itself lives at /management.html only.
    match (enabled(&state), find(&path).filter(|a| a.path != "management.html")) {
        (true, Some(asset)) => serve(asset),
        _ => ApiError::not_found("not found").into_response(),
    }
}

/// Browsers (asking for HTML) get the panel; API clients keep CPA's JSON banner.
async fn root(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|kind| kind.trim().starts_with("text/html")));
    if wants_html && enabled(&state) {
        return page(State(state)).await;
    }
    crate::health::banner().await.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files_under(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                files_under(&entry.path(), &format!("{name}/"), out);
            } else {
                out.push(name);
            }
        }
    }

    #[test]
    fn every_file_of_web_is_embedded() {
        let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
        let mut on_disk = Vec::new();
        files_under(&web, "", &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "web/ and control_panel::ASSETS must list the same files");
    }

    #[test]
    fn no_asset_loads_anything_from_outside_or_runs_inline_script() {
        for asset in ASSETS {
            let text = std::str::from_utf8(asset.bytes).unwrap();
            if asset.path.ends_with(".html") {
                assert!(!text.contains("<script>"), "{}: inline script", asset.path);
                assert!(!text.contains(" style="), "{}: inline style", asset.path);
                for handler in ["onclick=", "onload=", "onerror=", "onsubmit=", "onchange=", "oninput="] {
                    assert!(!text.contains(handler), "{}: inline handler {handler}", asset.path);
                }
            }
            for outside in ["src=\"http", "href=\"http", "@import", "url(http"] {
                assert!(!text.contains(outside), "{}: loads from outside ({outside})", asset.path);
            }
        }
    }
}
