//! `GET /v0/management/health[?auth_index=]`: every account's health state with its reason
//! (`"Source · detail"`), the recommended action, who disabled it, and its recent evidence
//! (newest first). An unknown `auth_index` is a 404.

use std::sync::Arc;

use axum::Json;
use axum::extract::{RawQuery, State};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::auth_files::query_value;
use super::auth_listing::rfc3339;
use crate::account_health::{AccountStanding, evidence_json, file_standing, key_standing};
use crate::{ApiError, AppState};

/// The `health*` fields `/auth-files` and `/health` share.
#[derive(Serialize)]
pub(crate) struct HealthFields {
    health: &'static str,
    health_reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    health_until: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    health_action: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_by: Option<&'static str>,
}

impl HealthFields {
    pub(crate) fn of(standing: &AccountStanding) -> Self {
        let health = &standing.health;
        HealthFields {
            health: health.state.name(),
            health_reason: health.reason(),
            health_until: health.state.until().map(rfc3339),
            health_action: health.action.map(|action| action.as_str()),
            disabled_by: standing.disabled_by.filter(|_| standing.disabled).map(|owner| owner.as_str()),
        }
    }
}

fn add_health_fields(entry: &mut Map<String, Value>, standing: &AccountStanding) {
    if let Ok(Value::Object(fields)) = serde_json::to_value(HealthFields::of(standing)) {
        entry.extend(fields);
    }
}

fn entry(state: &AppState, standing: &AccountStanding) -> Value {
    let mut entry = Map::new();
    entry.insert("auth_index".into(), json!(standing.auth_index));
    entry.insert("name".into(), json!(standing.account_id));
    entry.insert("provider".into(), json!(standing.provider));
    entry.insert("disabled".into(), json!(standing.disabled));
    add_health_fields(&mut entry, standing);
    let health = &standing.health;
    entry.insert("source".into(), json!(health.source));
    entry.insert("detail".into(), json!(health.detail));
    entry.insert("observed_at".into(), json!(health.at));
    let evidence: Vec<Value> =
        state.health.book.evidence(&standing.account_id).iter().rev().map(evidence_json).collect();
    entry.insert("evidence".into(), Value::Array(evidence));
    Value::Object(entry)
}

pub async fn health(State(state): State<Arc<AppState>>, RawQuery(query): RawQuery) -> Result<Json<Value>, ApiError> {
    let index = query_value(&query, "auth_index").filter(|i| !i.trim().is_empty());
    let config = state.config.get();
    let mut standings: Vec<AccountStanding> =
        state.store.list().iter().filter(|s| s.credential().is_some()).map(|s| file_standing(&state, s)).collect();
    standings.extend(state.router.accounts().iter().filter_map(|a| key_standing(&state, &config, a)));
    if let Some(index) = index.as_deref().map(str::trim) {
        standings.retain(|s| s.auth_index == index);
        if standings.is_empty() {
            return Err(ApiError::not_found("auth not found"));
        }
    }
    standings.sort_by_key(|s| s.account_id.to_lowercase());
    let accounts: Vec<Value> = standings.iter().map(|s| entry(&state, s)).collect();
    Ok(Json(json!({ "accounts": accounts })))
}
