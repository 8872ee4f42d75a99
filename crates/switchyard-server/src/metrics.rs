//! `GET /metrics`: the Prometheus text exposition of [`switchyard_usage::Metrics`] plus what is
//! read at scrape time — accounts by health state and active cooldowns from the router, refresh
//! outcomes from the refresher, dropped usage records from the recorder. Guarded like the
//! management API (its key; local callers unless remote management is allowed) unless
//! `metrics.public: true`; `metrics.enabled: false` answers 404.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use switchyard_router::HealthStatus;
use switchyard_usage::metrics::Scrape;

use crate::{ApiError, AppState};

/// The text format's content type (Prometheus 0.0.4).
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/metrics", get(scrape))
}

async fn scrape(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let config = state.config.get();
    if !config.metrics.enabled {
        return ApiError::not_found("not found").into_response();
    }
    if !config.metrics.public
        && let Err(error) = state.management.authorize(&config, peer.ip(), &headers).await
    {
        return error.into_response();
    }
    let mut text = state.usage.metrics.render(&scrape_values(&state));
    text.push_str(&auth_file_reads(&state));
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

/// `switchyard_auth_file_reads_total`: auth files read from disk since start (a hot reload of
/// one file adds one, not the whole dir).
fn auth_file_reads(state: &AppState) -> String {
    format!(
        "# HELP switchyard_auth_file_reads_total Auth files read from disk since start.\n\
         # TYPE switchyard_auth_file_reads_total counter\nswitchyard_auth_file_reads_total {}\n",
        state.store.file_reads()
    )
}

/// The values other parts own, as of now.
fn scrape_values(state: &AppState) -> Scrape {
    const STATES: [&str; 5] = ["active", "error", "cooling", "disabled", "unservable"];
    let now = Instant::now();
    let mut accounts = [0u64; STATES.len()];
    let mut cooldowns_active = 0;
    for account in state.router.accounts() {
        let health = state.router.health(&account.id, now);
        cooldowns_active += health.models.len() as u64 + u64::from(health.reason.is_some());
        let slot = if account.unservable.is_some() {
            4
        } else if account.disabled {
            3
        } else {
            match health.status {
                HealthStatus::Active => 0,
                HealthStatus::Error => 1,
                HealthStatus::Cooling => 2,
            }
        };
        accounts[slot] += 1;
    }
    Scrape {
        refreshes: state.refresher.outcome_counts().by_outcome().to_vec(),
        accounts: STATES.into_iter().zip(accounts).collect(),
        cooldowns_active,
        records_dropped: state.usage.recorder.dropped(),
    }
}
