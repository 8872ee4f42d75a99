//! `GET /latest-version` → `{"latest-version": "<tag>"}` from a GitHub-style release feed
//! (`releases/latest`: `tag_name`, else `name`), fetched through the global `proxy-url`.
//!
//! The feed's URL is `upstream-urls.switchyard.releases`. There is no built-in default: CPA's
//! own feed would announce CPA versions, which say nothing about Switchyard's, and Switchyard
//! publishes no feed yet. Unconfigured, unreachable or unusable, the answer is a 502 saying
//! which — never a made-up version.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use crate::{ApiError, AppState};

pub const FEED_PROVIDER: &str = "switchyard";
pub const FEED_ENDPOINT: &str = "releases";
/// A release document is a few KiB (its notes included).
const MAX_FEED_BYTES: usize = 1024 * 1024;
/// The panel's button waits on this; a feed slower than this counts as unreachable.
const FEED_TIMEOUT: Duration = Duration::from_secs(15);

fn bad_gateway(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_GATEWAY, message)
}

pub async fn latest(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let config = state.config.get();
    let Some(url) = config.upstream_url(FEED_PROVIDER, FEED_ENDPOINT).map(str::to_owned) else {
        return Err(bad_gateway(format!(
            "no release feed configured: set upstream-urls.{FEED_PROVIDER}.{FEED_ENDPOINT} to a GitHub-style \
             releases/latest URL"
        )));
    };
    let http = state.global_http().await.map_err(|error| bad_gateway(format!("release feed: {error}")))?;
    let request = http
        .get(&url)
        .header("accept", "application/vnd.github+json")
        .header("user-agent", concat!("switchyard/", env!("CARGO_PKG_VERSION")));
    let fetched = tokio::time::timeout(FEED_TIMEOUT, async {
        let response = request.send().await?;
        let status = response.status();
        let body = super::api_call::read_capped(response, MAX_FEED_BYTES).await?;
        Ok::<_, reqwest::Error>((status, body))
    })
    .await;
    let (status, body) = match fetched {
        Err(_) => return Err(bad_gateway(format!("release feed unreachable: no answer within {FEED_TIMEOUT:?}"))),
        // The URL is configured, but may carry a token: keep it out of the message.
        Ok(Err(error)) => return Err(bad_gateway(format!("release feed unreachable: {}", error.without_url()))),
        Ok(Ok(answer)) => answer,
    };
    if !status.is_success() {
        return Err(bad_gateway(format!("release feed answered HTTP {}", status.as_u16())));
    }
    let body = body.ok_or_else(|| bad_gateway("release feed answer is too large"))?;
    let release: Value = serde_json::from_slice(&body).map_err(|_| bad_gateway("release feed answer is not JSON"))?;
    let version = ["tag_name", "name"]
        .iter()
        .filter_map(|key| release.get(*key).and_then(Value::as_str))
        .map(str::trim)
        .find(|v| !v.is_empty())
        .ok_or_else(|| bad_gateway("release feed answer has no tag_name or name"))?;
    Ok(Json(json!({"latest-version": version})))
}
