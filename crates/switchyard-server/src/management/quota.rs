//! Quota routes:
//!
//! - `GET /quota[?auth_index=][&refresh=true]`: every account's last reading (or why there is
//!   none) and an aggregate per provider and window; `refresh=true` asks the quota endpoints
//!   first (only then: the listing itself never calls upstream).
//! - `POST /quota/refresh` `{"auth_index"?}`: asks them (one account, or all with a quota
//!   source) and answers the listing. One account without a quota source is a 400.
//! - `POST /reset-quota` `{"auth_index"}`: forgets the router's cooldowns and 429 backoff of
//!   that credential, so the next request may use it at once (after a quota window was reset
//!   upstream, for instance).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Query, State};
use serde_json::{Value, json};

use super::auth_files::read_json_object;
use super::credential_index::{auth_index_field, find};
use crate::error::ok_with;
use crate::quota::{self, Unfetchable};
use crate::{ApiError, AppState};

pub async fn list(
    State(state): State<Arc<AppState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let index = query.get("auth_index").or_else(|| query.get("authIndex")).map(|i| i.trim()).filter(|i| !i.is_empty());
    let refresh = match query.get("refresh").map(String::as_str) {
        None | Some("" | "false" | "0") => false,
        Some("true" | "1") => true,
        Some(other) => return Err(ApiError::bad_request(format!("refresh must be true or false, not `{other}`"))),
    };
    if refresh {
        refresh_accounts(&state, index, false).await?;
    }
    listing(&state, index)
}

pub async fn refresh(State(state): State<Arc<AppState>>, body: Body) -> Result<Json<Value>, ApiError> {
    let body = read_json_object(body).await?;
    let index = auth_index_field(&body)?;
    refresh_accounts(&state, index.as_deref(), true).await?;
    listing(&state, index.as_deref())
}

/// Asks the quota endpoints of the account with `index` (or of all); `strict` refuses one
/// account that has no quota source.
async fn refresh_accounts(state: &AppState, index: Option<&str>, strict: bool) -> Result<(), ApiError> {
    let Some(index) = index else {
        quota::refresh(state, None).await;
        return Ok(());
    };
    let config = state.config.get();
    let found = find(state, &config, index).ok_or_else(|| ApiError::not_found("auth not found"))?;
    match quota::fetch_account(state, found.account_id()).await {
        Ok(_) => Ok(()),
        Err(Unfetchable::NotFound) => Err(ApiError::not_found("auth not found")),
        Err(Unfetchable::NoSource { provider }) if strict => {
            Err(ApiError::bad_request(format!("{provider}: this account has no quota endpoint to ask")))
        }
        Err(Unfetchable::NoSource { .. }) => Ok(()),
    }
}

fn listing(state: &AppState, index: Option<&str>) -> Result<Json<Value>, ApiError> {
    let listed = quota::accounts(state, index);
    if index.is_some() && listed.is_empty() {
        return Err(ApiError::not_found("auth not found"));
    }
    let aggregate = quota::aggregate_json(&listed);
    let accounts: Vec<Value> = listed.into_iter().map(|l| l.json).collect();
    Ok(Json(json!({
        "accounts": accounts,
        "aggregate": aggregate,
        "refresh_interval_seconds": state.config.get().quota.refresh_interval_seconds,
    })))
}

pub async fn reset(State(state): State<Arc<AppState>>, body: Body) -> Result<Json<Value>, ApiError> {
    let body = read_json_object(body).await?;
    let index = auth_index_field(&body)?.ok_or_else(|| ApiError::bad_request("auth_index is required"))?;
    let config = state.config.get();
    let found = find(&state, &config, &index).ok_or_else(|| ApiError::not_found("auth not found"))?;
    // An auth file the router does not route (unknown type) has no cooldowns to forget.
    let known = state.router.reset_health(found.account_id());
    crate::account_health::feed::limits_reset(&state, found.account_id());
    tracing::info!(auth_index = %index, account = found.account_id(), known, "cooldowns reset via management API");
    Ok(ok_with(json!({"auth_index": index})))
}
